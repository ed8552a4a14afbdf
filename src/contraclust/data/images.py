"""Image files: listing a folder of them (class sub-folders give labels), decoding them with Pillow, and
the cache of decoded arrays. The readers (``readers.py``), the benchmarks' readers and ``contraclust
pack`` all read images through here, so that neither imports the other.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import threading
import zipfile
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from contraclust.console import progress_iter, say
from contraclust.data.dataset import ImageSet
from contraclust.errors import DataError, WriteError
from contraclust.files import open_whole
from contraclust.markers import FOLDER_MARKERS
from contraclust.threads import ThreadTuner, worker_counts

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


# Folder names read as splits of a data set (each holding the class folders), never as classes.
SPLIT_NAMES = {"train", "training", "test", "testing", "val", "valid", "validation", "eval", "evaluation", "dev"}


def list_image_folder(root: Path) -> tuple[list[Path], list[int], list[str]]:
    """The image files under ``root`` with their class indices and the class names.

    The folders directly below ``root`` are its classes, except those named like a split (``train``,
    ``test``, ``val``...: ``SPLIT_NAMES``), whose own sub-folders are the classes (their files merged over
    the splits). Every image below a class folder, at any depth, belongs to that class. A flat folder
    (no sub-folders) is unlabelled. Hidden files and folders (``.name``, macOS's ``._*``) are skipped, and
    so are folders that contraclust wrote (a run folder, images sorted by ``predict --copy-into``), with a
    warning; links are followed once, never in a loop, and each file is read once. Images beside class
    folders (in ``root`` or in a split) belong to no class, so they are refused rather than dropped."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder of images")
    subdirs = _data_folders(root)
    if not subdirs:
        files = _unique([p for p in _entries(root) if _is_image(p)])
        if not files:
            raise DataError(f"{root} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))}); put images in it, "
                            f"in one sub-folder per class or flat")
        return files, [-1] * len(files), []
    class_dirs: list[Path] = []  # split by split (in name order), then class by class
    for folder in subdirs:
        if folder.name.lower() in SPLIT_NAMES:
            _refuse_loose_images(folder)
            class_dirs += _data_folders(folder)
        else:
            class_dirs.append(folder)
    _refuse_loose_images(root)
    classes = sorted({folder.name for folder in class_dirs})
    index = {name: i for i, name in enumerate(classes)}
    files: list[Path] = []
    labels: list[int] = []
    seen: set[tuple[int, int]] = set()
    for folder in class_dirs:
        found = [f for f in _images_below(folder, set()) if _first_time(f, seen)]
        files += found
        labels += [index[folder.name]] * len(found)
    if not files:
        raise DataError(f"{root} holds no image files in its class folders ({', '.join(classes[:5])}"
                        f"{'...' if len(classes) > 5 else ''})")
    return files, labels, classes


def class_counts(root: Path, labels: list[int], classes: list[str]) -> str:
    """How many images each class got, in one line (said once the images have been read)."""
    if not classes:
        return f"{root}: {len(labels)} images, no classes (a flat folder)"
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(classes))
    return (f"{root}: {len(labels)} images in {len(classes)} classes: "
            + ", ".join(f"{name} {count}" for name, count in zip(classes, counts)))


def _entries(folder: Path) -> list[Path]:
    """The visible entries of ``folder``, sorted (hidden files and folders skipped)."""
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise DataError(f"cannot list {folder}: {exc.strerror or exc}") from None


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def _written_by_contraclust(folder: Path) -> bool:
    """A run folder or sorted copies (said once, with a warning): contraclust's output is not data."""
    if any((folder / marker).exists() for marker in FOLDER_MARKERS):
        say(f"warning: skipping {folder}: contraclust wrote it (a run folder or sorted copies), it is not data")
        return True
    return False


def _data_folders(folder: Path) -> list[Path]:
    return [p for p in _entries(folder) if p.is_dir() and not _written_by_contraclust(p)]


def _images_below(folder: Path, visited: set[tuple[int, int]]) -> list[Path]:
    """Every image file at any depth below ``folder``; links are followed, each folder once."""
    try:
        stat = folder.stat()
    except OSError:
        return []
    key = (stat.st_dev, stat.st_ino)
    if key in visited:  # a link back up, or to a folder already read
        return []
    visited.add(key)
    if _written_by_contraclust(folder):
        return []
    found = []
    for entry in _entries(folder):
        if entry.is_dir():
            found += _images_below(entry, visited)
        elif _is_image(entry):
            found.append(entry)
    return found


def _first_time(file: Path, seen: set[tuple[int, int]]) -> bool:
    """False for a file already listed (the same file reached through a link)."""
    stat = file.stat()
    key = (stat.st_dev, stat.st_ino)
    if key in seen:
        return False
    seen.add(key)
    return True


def _unique(files: list[Path]) -> list[Path]:
    seen: set[tuple[int, int]] = set()
    return [f for f in files if _first_time(f, seen)]


def _refuse_loose_images(folder: Path) -> None:
    loose = [p for p in _entries(folder) if _is_image(p)]
    if loose:
        raise DataError(f"{folder} holds {len(loose)} image file(s) beside its class folders (e.g. {loose[0].name}): "
                        f"they belong to no class; move them into a class folder, or into a folder of their own")


def decode_image_files(files: list[Path], labels: list[int], classes: list[str], root: Path,
                       size: int | None = None, channels: int | None = None, cache_dir: str | Path | None = None,
                       progress: bool = True, max_size: int | None = None, centre_crop: bool = False) -> ImageSet:
    """Decode ``files`` (with their class indices into ``classes``; empty ``classes``: unlabelled) into
    one ImageSet named after ``root``, as :func:`read_image_folder` describes; cached by file list."""
    from PIL import Image

    cache_file = _cache_path(root, files, f"{size}/{max_size}" + ("/centre-crop" if centre_crop else ""),
                             channels or "auto", cache_dir)
    cached = _read_cache(cache_file)
    if cached is not None:
        images, cached_labels, native = cached
        return ImageSet(torch.from_numpy(images), cached_labels if classes else None, root.name, classes, native,
                        [str(f) for f in files])

    mode = "L" if channels == 1 else "RGB"
    decoded, sides = [], []
    all_grey = channels is None
    decoding = decode_in_order(files, mode, size, max_size, centre_crop)
    for image, side in progress_iter(decoding, f"decoding {root.name}", progress, total=len(files)):
        decoded.append(image)
        sides.append(side)
        all_grey = all_grey and looks_grey(image)
    if len({arr.shape for arr in decoded}) > 1:
        side = max_size or decoded[0].shape[1]
        decoded = [arr if arr.shape[:2] == (side, side)
                   else np.asarray(Image.fromarray(arr).resize((side, side), Image.BILINEAR)) for arr in decoded]
    images = np.stack(decoded)
    if all_grey and images.ndim == 4:
        images = np.rint(images.mean(axis=3)).astype(np.uint8)
    images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    images = np.ascontiguousarray(images)
    label_array = np.asarray(labels, dtype=np.int64)
    native = int(np.median(sides))
    if cache_file is not None:
        _atomic_savez(cache_file, images=images, labels=label_array, native_size=np.array(native))
    return ImageSet(torch.from_numpy(images), label_array if classes else None, root.name, classes, native,
                    [str(f) for f in files])


def decode_in_order(files: list[Path], mode: str, size: int | None, max_size: int | None, centre_crop: bool = False):
    """:func:`decode_image` of each file, in the files' order, on up to a thread per core: Pillow lets go of
    the GIL while it decodes (two idle cores decode twice as fast). How many decode at once is chosen from
    the measured images per second (``threads.py``: beside a busy process fewer can be faster), unless the
    user set the threads. The first unreadable file stops the rest."""
    counts = worker_counts(min(8, os.cpu_count() or 1))
    if counts[0] == 1 or len(files) < 4 * counts[0]:
        yield from (decode_image(file, mode, size, max_size, centre_crop) for file in files)
        return
    at_once = [counts[0]]
    tuner = ThreadTuner("decoding images", "images", counts, lambda n: at_once.__setitem__(0, n), min_items=16,
                        min_seconds=0.3) if len(counts) > 1 else None
    pool = ThreadPoolExecutor(counts[0], thread_name_prefix="contraclust-decode")
    pending: deque = deque()
    waiting = iter(files)
    try:
        if tuner is not None:
            tuner.start()
        while True:
            for file in itertools.islice(waiting, max(0, at_once[0] - len(pending))):
                pending.append(pool.submit(decode_image, file, mode, size, max_size, centre_crop))
            if not pending:
                return
            decoded = pending.popleft().result()
            if tuner is not None:
                tuner.tick()
            yield decoded
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


MAX_PIXELS = 89_478_485  # Pillow's own bound for a decompression bomb: larger images are refused


def decode_image(file: str | Path, mode: str, size: int | None = None, max_size: int | None = None,
                 centre_crop: bool = False) -> tuple[np.ndarray, int]:
    """One image file as a uint8 (H, W[, 3]) array in ``mode`` (``L`` or ``RGB``), upright by its EXIF
    orientation (phones store sideways photos with an orientation tag), resized to ``size`` x ``size``
    (or, larger than ``max_size``, shrunk to it), and its larger side before resizing. ``centre_crop``:
    the shorter side resized to ``size`` and the centre ``size`` x ``size`` kept, as a pretrained
    backbone's own preprocessing does (no squashing of a 4:3 photo). An image of more than
    ``MAX_PIXELS`` pixels is refused before it is decoded (a header can claim 30000 x 30000)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with _open_lazily(file) as img:
            if img.width * img.height > MAX_PIXELS:
                raise DataError(f"image file {file} is {img.width} x {img.height} pixels, more than the "
                                f"{MAX_PIXELS:,} contraclust decodes (a decompression bomb, or shrink it first)")
            side = max(img.size)  # the same before and after the EXIF rotation
            target = size or (max_size if max_size is not None and side > max_size else None)
            if target is not None:  # a JPEG decodes at 1/2 to 1/8 scale, never below the target
                img.draft(None, (target, target))
            img = ImageOps.exif_transpose(img)
            img = _eight_bit(img, file).convert(mode)
            if target is not None and img.size != (target, target):
                img = _centre_square(img, target) if centre_crop else img.resize((target, target), Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8), side
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"image file {file} is too large to decode safely ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"corrupt or unreadable image file {file}: {exc}") from None


def _centre_square(img, side: int):
    """The shorter side resized to ``side`` (the aspect kept), then the centre ``side`` x ``side``."""
    from PIL import Image

    scale = side / min(img.size)
    width, height = max(side, round(img.width * scale)), max(side, round(img.height * scale))
    left, top = (width - side) // 2, (height - side) // 2
    return img.resize((width, height), Image.BILINEAR).crop((left, top, left + side, top + side))


_HEADER_LOCK = threading.Lock()


def _open_lazily(file: str | Path):
    """Pillow's image of ``file``, its header read and its pixels not yet decoded. Pillow's own pixel bound
    is lifted for the header (``decode_image`` sizes the image and refuses it with its own message); the
    bound is global, so one thread at a time lifts it."""
    from PIL import Image

    with _HEADER_LOCK:
        bound, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(file)
        finally:
            Image.MAX_IMAGE_PIXELS = bound


def _eight_bit(img, file):
    """16- and 32-bit grey images (PIL modes I;16*, I) scaled to 8 bits by their bit depth, and float
    images (mode F) by their range: 0..1, 0..255 or 0..65535 (PIL's own conversions would clip every value
    above 255 to white, or every float below 1 to black). Negative or other floats are refused."""
    from PIL import Image

    if not (img.mode.startswith("I") or img.mode == "F"):
        return img
    values = np.asarray(img).astype(np.float64)
    if img.mode == "F":
        top = float(values.max(initial=0.0)) if np.isfinite(values).all() else float("nan")
        if not np.isfinite(top) or values.min(initial=0.0) < 0:
            raise DataError(f"float image {file} holds negative or non-finite values; contraclust reads float images "
                            f"in 0..1, 0..255 or 0..65535")
        depth = next((d for d in (1.0, 255.0, 65535.0) if top <= d), None)
        if depth is None:
            raise DataError(f"float image {file} holds values up to {top:g}; contraclust reads float images in 0..1, "
                            f"0..255 or 0..65535")
    else:
        depth = 65535.0 if img.mode.startswith("I;16") or values.max(initial=0) <= 65535 else float(2**31 - 1)
    return Image.fromarray(np.rint(np.clip(values, 0, depth) * (255.0 / depth)).astype(np.uint8), mode="L")


def looks_grey(image: np.ndarray) -> bool:
    """True for an (H, W) image, or an (H, W, 3) one whose channels agree up to JPEG's chroma noise
    (mean channel difference under 1 level and 99.5% of pixels within 12 levels)."""
    if image.ndim == 2 or image.shape[-1] == 1:
        return True
    rgb = image.astype(np.int16)
    spread = np.maximum(np.abs(rgb[..., 0] - rgb[..., 1]), np.abs(rgb[..., 1] - rgb[..., 2]))
    return bool(spread.mean() < 1.0 and np.quantile(spread, 0.995) <= 12)


def default_cache_dir() -> Path:
    """``$CONTRACLUST_CACHE``, else ``$XDG_CACHE_HOME/contraclust``, else ``~/.cache/contraclust``."""
    if os.environ.get("CONTRACLUST_CACHE"):
        return Path(os.environ["CONTRACLUST_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "contraclust"


def _cache_path(root: Path, files: list[Path], size: str, channels: int | str,
                cache_dir: str | Path | None) -> Path | None:
    if os.environ.get("CONTRACLUST_NO_CACHE"):
        return None
    digest = hashlib.sha256(os.fsencode(f"{root.resolve()}|{size}|{channels}"))
    for file in files:
        # size and mtime alone are what cp -p and rsync -a keep when they replace a file; its inode and
        # change time they cannot keep. File names as bytes: a name need not be UTF-8.
        stat = file.stat()
        digest.update(os.fsencode(f"{file}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ctime_ns}|{stat.st_ino}"))
    directory = Path(cache_dir) if cache_dir else default_cache_dir()
    return directory / f"{root.name}-{digest.hexdigest()[:16]}.npz"


def _read_cache(cache_file: Path | None):
    """(images, labels, native size) from a decoded-image cache; an unreadable one is deleted (it is
    rebuilt from the image files) with a warning."""
    if cache_file is None or not cache_file.exists():
        return None
    try:
        with open(cache_file, "rb") as handle, np.load(handle, allow_pickle=False) as cached:
            images, labels = cached["images"], cached["labels"]
            native = int(cached["native_size"]) if "native_size" in cached.files else 0
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        say(f"warning: the image cache {cache_file} is unreadable ({type(exc).__name__}); decoding the images again")
        cache_file.unlink(missing_ok=True)
        return None
    if images.dtype != np.uint8 or images.ndim != 4:
        cache_file.unlink(missing_ok=True)
        return None
    return images, labels, native


def _atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    """The cache file, whole or not at all; one that cannot be written (a full disk) only costs time on the
    next read, and leaves no partial file behind."""
    try:
        with open_whole(path, "wb") as handle:
            np.savez(handle, **arrays)
    except WriteError:
        pass
