"""Image files: listing a folder of them (class sub-folders give labels), decoding them with Pillow, and
the cache of decoded arrays. The readers (``readers.py``), the benchmarks' readers and ``contraclust
pack`` all read images through here, so that neither imports the other.
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from contraclust.console import progress_iter, say
from contraclust.data.dataset import ImageSet
from contraclust.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def list_image_folder(root: Path) -> tuple[list[Path], list[int], list[str]]:
    if not root.is_dir():
        raise DataError(f"{root} is not a folder of images")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files: list[Path] = []
    labels: list[int] = []
    if subdirs:
        # Class folders directly below root, or split folders (train/test) that each hold the class folders.
        class_dirs = subdirs
        if all(any(q.is_dir() for q in p.iterdir()) for p in subdirs):
            class_names = sorted({q.name for p in subdirs for q in p.iterdir() if q.is_dir()})
            class_dirs = [q for p in subdirs for q in sorted(p.iterdir()) if q.is_dir()]
        else:
            class_names = [p.name for p in subdirs]
        index = {name: i for i, name in enumerate(class_names)}
        for class_dir in class_dirs:
            for file in sorted(class_dir.rglob("*")):
                if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file():
                    files.append(file)
                    labels.append(index[class_dir.name])
    else:
        class_names = []
        files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        labels = [-1] * len(files)
    if not files:
        raise DataError(
            f"{root} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))}); "
            "put images in it, in one sub-folder per class or flat"
        )
    return files, labels, class_names


def decode_image_files(files: list[Path], labels: list[int], classes: list[str], root: Path,
                       size: int | None = None, channels: int | None = None, cache_dir: str | Path | None = None,
                       progress: bool = True, max_size: int | None = None) -> ImageSet:
    """Decode ``files`` (with their class indices into ``classes``; empty ``classes``: unlabelled) into
    one ImageSet named after ``root``, as :func:`read_image_folder` describes; cached by file list."""
    from PIL import Image

    cache_file = _cache_path(root, files, f"{size}/{max_size}", channels or "auto", cache_dir)
    cached = _read_cache(cache_file)
    if cached is not None:
        images, cached_labels, native = cached
        return ImageSet(torch.from_numpy(images), cached_labels if classes else None, root.name, classes, native,
                        [str(f) for f in files])

    mode = "L" if channels == 1 else "RGB"
    decoded, sides = [], []
    all_grey = channels is None
    for file in progress_iter(files, f"decoding {root.name}", progress):
        image, side = decode_image(file, mode, size, max_size)
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


def decode_image(file: str | Path, mode: str, size: int | None = None,
                 max_size: int | None = None) -> tuple[np.ndarray, int]:
    """One image file as a uint8 (H, W[, 3]) array in ``mode`` (``L`` or ``RGB``), resized to ``size`` x
    ``size`` (or, larger than ``max_size``, shrunk to it), and its larger side before resizing."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as img:
            side = max(img.size)
            img = _eight_bit(img).convert(mode)
            target = size or (max_size if max_size is not None and side > max_size else None)
            if target is not None and img.size != (target, target):
                img = img.resize((target, target), Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8), side
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"corrupt or unreadable image file {file}: {exc}") from None


def _eight_bit(img):
    """16- and 32-bit grey images (PIL modes I;16*, I) scaled to 8 bits by their bit depth; PIL's own
    conversion would clip every value above 255 to white."""
    from PIL import Image

    if not img.mode.startswith("I"):
        return img
    values = np.asarray(img).astype(np.float64)
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
    digest = hashlib.sha256(f"{root.resolve()}|{size}|{channels}".encode())
    for file in files:
        stat = file.stat()
        digest.update(f"{file}|{stat.st_size}|{stat.st_mtime_ns}".encode())
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only costs time on the next read
