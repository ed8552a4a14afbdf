"""``.ccpack``: an image folder packed once into a memory-mappable store, for sets larger than memory.

A pack is a folder ``NAME.ccpack/`` holding
- ``meta.json``: format, version, ``size``, ``channels``, ``n``, how many are ``packed``, the class
  names, the source folder and a digest of its file list;
- ``images.npy`` (``--format raw``, the default): the images resized to ``size`` x ``size`` as one
  uint8 (N, C, S, S) array, read through a memory map (``np.load(mmap_mode=...)`` without pickles:
  loading never runs code); or, with ``--format jpeg`` (for large S: about a tenth of the bytes),
  ``jpeg.bin``, the resized images encoded as JPEG one after another, and ``offsets.npy`` (N + 1
  int64), where each starts; these decode per batch (``JpegImages``);
- ``labels.npy`` (int64, -1 where unlabelled), ``sides.npy`` (each file's larger side before
  resizing) and ``paths.txt`` (each image's source file, one per line).

Packing decodes the files in chunks on worker processes and writes each chunk into the preallocated
array; ``meta.json`` records the rows done after each chunk, so a killed packing resumes at the
first chunk not recorded and the result is byte-identical to an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from contraclust.console import progress_bar, say
from contraclust.data.dataset import ImageSet
from contraclust.data.images import class_counts, decode_image, list_image_folder, looks_grey
from contraclust.errors import DataError, WriteError
from contraclust.files import why_not_written, write_whole

PACK_SUFFIX = ".ccpack"
FORMAT, VERSION = "contraclust-pack", 1
CHUNK = 512


def is_pack(path: str | Path) -> bool:
    return Path(path).suffix == PACK_SUFFIX


def _file_digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(os.fsencode(f"{file}|{stat.st_size}|{stat.st_mtime_ns}\n"))
    return digest.hexdigest()


def _decode_chunk(job: tuple[list[str], int, int, int]) -> tuple[np.ndarray | list[bytes], np.ndarray]:
    """For one chunk of files (in a worker process): the (n, C, S, S) uint8 images, or with a JPEG
    ``quality`` above 0 the resized images encoded as JPEG, and the files' larger sides before resizing."""
    files, size, channels, quality = job
    mode = "L" if channels == 1 else "RGB"
    images = np.empty((len(files), size, size, channels), np.uint8)
    sides = np.empty(len(files), np.int32)
    for i, file in enumerate(files):
        image, sides[i] = decode_image(file, mode, size)
        images[i] = image.reshape(size, size, channels)
    if quality:
        return [_encode_jpeg(image, quality) for image in images], sides
    return images.transpose(0, 3, 1, 2), sides


def _encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(out, "JPEG", quality=quality)
    return out.getvalue()


def _guess_channels(files: list[Path]) -> int:
    """1 when the first 64 files all look grey, else 3."""
    return 1 if all(looks_grey(decode_image(file, "RGB")[0]) for file in files[:64]) else 3


def _write_json(path: Path, obj: dict) -> None:
    write_whole(path, json.dumps(obj, indent=1))


def pack_folder(source: str | Path, output: str | Path, size: int, channels: int | None = None,
                workers: int | None = None, progress: bool = True, stop_after: int | None = None,
                image_format: str = "raw", quality: int = 90) -> Path:
    """Pack the image folder ``source`` (class sub-folders give labels) into ``output`` (a ``.ccpack``
    folder) as raw pixels or, with ``image_format="jpeg"``, JPEG bytes of that ``quality``; resumes a
    pack of the same files left unfinished. ``stop_after``: stop once that many rows are packed (tests
    simulate a killed packing with it)."""
    source, output = Path(source), Path(output)
    if output.suffix != PACK_SUFFIX:
        raise DataError(f"--output {output} must end in {PACK_SUFFIX}")
    if not 4 <= size <= 1024:
        raise DataError(f"--size {size} must be between 4 and 1024 pixels")
    if channels not in (None, 1, 3):
        raise DataError(f"--channels must be 1 or 3, got {channels}")
    if image_format not in ("raw", "jpeg") or not 1 <= quality <= 100:
        raise DataError(f"--format must be raw or jpeg and --quality 1..100, got {image_format!r}, {quality}")
    if source.is_dir() and source.resolve() in output.resolve().parents:
        raise DataError(f"--output {output} lies inside the folder it packs, {source}: choose a place outside it")
    files, labels, classes = list_image_folder(source)
    digest = _file_digest(files)
    meta_path = output / "meta.json"
    meta = _resume_meta(output, digest, size, channels, image_format) if meta_path.exists() else None
    if meta is None:
        if output.exists() and any(output.iterdir()):
            raise DataError(f"{output} exists and is not a pack; remove it or choose another --output")
        channels = channels or _guess_channels(files)
        created = not output.exists()
        output.mkdir(parents=True, exist_ok=True)
        if image_format == "raw":
            _reserve(output, created, (len(files), channels, size, size))
        else:
            (output / "jpeg.bin").write_bytes(b"")
            np.save(output / "offsets.npy", np.zeros(len(files) + 1, np.int64))
        np.save(output / "labels.npy", np.asarray(labels, np.int64))
        np.save(output / "sides.npy", np.zeros(len(files), np.int32))
        (output / "paths.txt").write_text(_paths_text(files, source), errors="surrogateescape")
        meta = {"format": FORMAT, "version": VERSION, "kind": image_format, "size": size, "channels": channels,
                "n": len(files), "packed": 0, "classes": classes, "source": str(source.resolve()),
                "files_digest": digest}
        _write_json(meta_path, meta)
    elif meta["packed"]:
        say(f"pack: resuming {output} at image {meta['packed']} of {meta['n']}")
    writer = _RawWriter(output) if meta["kind"] == "raw" else _JpegWriter(output, meta["packed"])
    sides = np.load(output / "sides.npy", mmap_mode="r+")
    channels, start = meta["channels"], meta["packed"]
    jpeg_quality = quality if meta["kind"] == "jpeg" else 0
    jobs = [([str(f) for f in files[i: i + CHUNK]], size, channels, jpeg_quality)
            for i in range(start, len(files), CHUNK)]
    bar = progress_bar(len(files) - start, progress, f"packing {source.name} at {size} px", unit="img")
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    with contextlib.closing(bar), ProcessPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:
        for chunk, chunk_sides in (pool.map if pool else map)(_decode_chunk, jobs):
            end = start + len(chunk)
            writer.write(start, chunk)
            sides[start:end] = chunk_sides
            sides.flush()
            meta["packed"] = start = end  # recorded only once the chunk is on disk
            _write_json(meta_path, meta)
            bar.update(len(chunk))
            if stop_after is not None and end >= stop_after:
                break
    writer.close()
    if meta["packed"] == meta["n"]:
        say(class_counts(source, labels, classes))
    return output


def _reserve(output: Path, created: bool, shape: tuple[int, ...]) -> None:
    """``images.npy`` made and its blocks reserved at once: a pack that does not fit is refused now, in one
    line, with the pack removed, rather than failing on a memory-mapped write (SIGBUS) hours later."""
    path = output / "images.npy"
    np.lib.format.open_memmap(path, "w+", np.uint8, shape).flush()
    try:
        with open(path, "r+b") as handle:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(handle.fileno(), 0, path.stat().st_size)
    except OSError as exc:
        needed = path.stat().st_size
        if created:
            shutil.rmtree(output, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        size = f"{needed / 2**30:.2f} GB" if needed >= 2**30 else f"{needed / 2**20:.1f} MB"
        raise WriteError(f"{why_not_written(path, exc)}: the pack needs {size}") from None


class _RawWriter:
    """Rows into the preallocated ``images.npy``."""

    def __init__(self, output: Path):
        self.images = np.load(output / "images.npy", mmap_mode="r+")

    def write(self, start: int, chunk: np.ndarray) -> None:
        self.images[start: start + len(chunk)] = chunk
        self.images.flush()

    def close(self) -> None:
        del self.images


class _JpegWriter:
    """JPEG bytes appended to ``jpeg.bin`` from where row ``packed`` begins (a killed packing's
    unrecorded tail is cut off first), and their offsets into ``offsets.npy``."""

    def __init__(self, output: Path, packed: int):
        self.offsets = np.load(output / "offsets.npy", mmap_mode="r+")
        self.blob = open(output / "jpeg.bin", "r+b")
        self.blob.truncate(int(self.offsets[packed]))
        self.blob.seek(int(self.offsets[packed]))

    def write(self, start: int, chunk: list[bytes]) -> None:
        try:
            for i, encoded in enumerate(chunk):
                self.blob.write(encoded)
                self.offsets[start + i + 1] = self.offsets[start + i] + len(encoded)
            self.blob.flush()
            os.fsync(self.blob.fileno())
        except OSError as exc:  # a full disk: the unrecorded tail is cut off again, the pack resumable
            self.blob.truncate(int(self.offsets[start]))
            raise WriteError(f"{why_not_written(self.blob.name, exc)}; the pack holds {start} images and the same "
                             f"command continues it") from None
        self.offsets.flush()

    def close(self) -> None:
        self.blob.close()
        del self.offsets


def _resume_meta(output: Path, digest: str, size: int, channels: int | None, image_format: str) -> dict:
    meta = read_meta(output)
    if (meta["files_digest"] != digest or meta["size"] != size or channels not in (None, meta["channels"])
            or meta["kind"] != image_format):
        raise DataError(f"{output} holds a pack of other files or another --size/--channels/--format "
                        f"({meta['n']} {meta['kind']} images at {meta['size']} px, {meta['channels']} channels); "
                        f"remove it or choose another --output")
    return meta


# meta.json's fields and what each must be (a pack is data from anywhere: every field is checked).
META_FIELDS = {
    "kind": (lambda v: v in ("raw", "jpeg"), "raw or jpeg"),
    "size": (lambda v: _whole(v) and 4 <= v <= 1024, "a whole number of pixels from 4 to 1024"),
    "channels": (lambda v: v in (1, 3) and _whole(v), "1 or 3"),
    "n": (lambda v: _whole(v) and v >= 1, "a whole number of images, at least 1"),
    "packed": (lambda v: _whole(v) and v >= 0, "a whole number of images packed"),
    "classes": (lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v), "a list of class names"),
    "source": (lambda v: isinstance(v, str) and bool(v), "the folder the images came from"),
    "files_digest": (lambda v: isinstance(v, str), "a digest"),
}


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_meta(path: Path) -> dict:
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable {PACK_SUFFIX} ({type(exc).__name__}: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"{path}: meta.json is not a {PACK_SUFFIX} description")
    if meta.get("version") != VERSION:
        raise DataError(f"{path}: pack version {meta.get('version')} is not the {VERSION} this contraclust reads")
    meta.setdefault("kind", "raw")
    for name, (valid, what) in META_FIELDS.items():
        if name not in meta:
            raise DataError(f"{path}: meta.json has no {name!r} ({what}); the pack is damaged, pack it again")
        if not valid(meta[name]):
            raise DataError(f"{path}: meta.json's {name!r} is {meta[name]!r}, not {what}; the pack is damaged")
    if meta["packed"] > meta["n"]:
        raise DataError(f"{path}: meta.json says {meta['packed']} of {meta['n']} images are packed")
    return meta


def _paths_text(files: list[Path], source: Path) -> str:
    """paths.txt: each file's path relative to the pack's source folder, one JSON string a line (a name
    may hold a newline or bytes that are not UTF-8)."""
    return "".join(json.dumps(os.path.relpath(f, source)) + "\n" for f in files)


def read_paths(path: Path, source: str, n: int) -> list[str]:
    """The image files of a pack, each checked to lie inside its source folder: a pack is a file from
    anywhere, and its paths are what ``predict --copy-into`` copies."""
    root = Path(source)
    lines = (path / "paths.txt").read_text(errors="surrogateescape").splitlines()
    if len(lines) != n:
        raise DataError(f"{path}: paths.txt lists {len(lines)} files, meta.json says {n} images")
    paths = []
    for number, line in enumerate(lines, start=1):
        try:
            name = json.loads(line) if line.startswith('"') else line  # packs written before names were quoted
        except ValueError:
            raise DataError(f"{path}: line {number} of paths.txt is not a quoted path") from None
        if not isinstance(name, str) or not name:
            raise DataError(f"{path}: line {number} of paths.txt is not a path")
        full = Path(os.path.normpath(root / name))
        if full != root and root not in full.parents:
            raise DataError(f"{path}: line {number} of paths.txt points outside the pack's source folder {root} "
                            f"({name}); refusing the pack")
        paths.append(str(full))
    return paths


def read_pack(path: str | Path) -> ImageSet:
    """An :class:`ImageSet` whose images are a memory map of the pack: nothing is read from disk until
    a batch is gathered (or the trainer copies the whole set to its device)."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path} is not a {PACK_SUFFIX} folder; make one with contraclust pack")
    meta = read_meta(path)
    if meta["packed"] < meta["n"]:
        raise DataError(f"{path} is unfinished ({meta['packed']} of {meta['n']} images packed); run the same "
                        f"contraclust pack command again to finish it")
    expected = (meta["n"], meta["channels"], meta["size"], meta["size"])
    try:
        labels = np.load(path / "labels.npy", allow_pickle=False)
        sides = np.load(path / "sides.npy", allow_pickle=False)
        paths = read_paths(path, meta["source"], meta["n"])
        if meta["kind"] == "raw":
            array = np.load(path / "images.npy", mmap_mode="c", allow_pickle=False)
            if array.dtype != np.uint8 or array.shape != expected:
                raise DataError(f"{path}: images.npy is {array.dtype} {array.shape}, meta.json says uint8 {expected}")
            images = torch.from_numpy(array)
        else:
            images = JpegImages(np.load(path / "offsets.npy", allow_pickle=False),
                                np.memmap(path / "jpeg.bin", np.uint8, "r"), expected, str(path))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: a file of the pack is unreadable ({type(exc).__name__}: {exc})") from None
    if labels.shape != (meta["n"],):
        raise DataError(f"{path}: labels.npy holds {labels.shape} labels, meta.json says {meta['n']} images")
    classes = list(meta["classes"])
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: labels.npy holds {labels.dtype} values; labels are whole numbers (-1: none)")
    low, high = int(labels.min()), int(labels.max())
    if (classes and not 0 <= low <= high < len(classes)) or (not classes and (low, high) != (-1, -1)):
        expected = f"0..{len(classes) - 1} for its {len(classes)} classes" if classes else "-1 (it names no classes)"
        raise DataError(f"{path}: labels.npy holds labels from {low} to {high}; meta.json allows {expected}")
    return ImageSet(images, labels if classes else None, path.stem, classes,
                    int(np.median(sides)) if len(sides) else 0, paths)


class JpegImages:
    """The images of a JPEG pack as a read-only uint8 (N, C, S, S) "tensor": indexing decodes the rows
    asked for (Pillow on the host); ``to_device`` decodes a batch on the GPU with
    ``torchvision.io.decode_jpeg`` where torchvision and CUDA are there, else on the host and copies;
    ``to(device)`` decodes the whole set (the resident path)."""

    dtype = torch.uint8
    ndim = 4

    def __init__(self, offsets: np.ndarray, blob: np.ndarray, shape: tuple[int, int, int, int],
                 name: str = "jpeg pack"):
        if offsets.shape != (shape[0] + 1,) or int(offsets[-1]) != len(blob):
            raise DataError(f"{name}: {len(offsets)} offsets ending at {int(offsets[-1])} for {shape[0]} images "
                            f"and {len(blob)} bytes")
        starts, ends = offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64)
        if offsets.dtype.kind not in "iu" or (ends - starts < 4).any():
            raise DataError(f"{name}: offsets.npy does not describe {shape[0]} images (an entry is empty or backwards)")
        # Every entry must begin and end as a JPEG does (markers SOI FFD8 and EOI FFD9): a damaged pack is
        # refused when it is opened, naming the image, not later in the middle of a run.
        whole = ((blob[starts] == 0xFF) & (blob[starts + 1] == 0xD8)
                 & (blob[ends - 2] == 0xFF) & (blob[ends - 1] == 0xD9))
        if not whole.all():
            raise DataError(f"{name}: image {int(np.flatnonzero(~whole)[0])} of the pack is not a whole JPEG; "
                            f"pack it again")
        self.offsets, self.blob, self.name = offsets, blob, name
        self.shape = torch.Size(shape)
        self.nbytes = int(np.prod(shape))  # decoded, which is what the device would hold

    def __len__(self) -> int:
        return self.shape[0]

    def _rows(self, index) -> tuple[np.ndarray, bool]:
        if isinstance(index, slice):
            return np.arange(len(self))[index], False
        if isinstance(index, (int, np.integer)):
            return np.array([int(index) % len(self)]), True
        rows = np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index, dtype=np.int64).reshape(-1)
        if len(rows) and (rows.min() < -len(self) or rows.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} packed images")
        return rows % len(self), False

    def __getitem__(self, index) -> torch.Tensor:
        import io

        from PIL import Image

        rows, single = self._rows(index)
        out = np.empty((len(rows), self.shape[2], self.shape[3], self.shape[1]), np.uint8)
        for i, row in enumerate(rows):
            try:
                with Image.open(io.BytesIO(self._bytes(row))) as img:
                    out[i] = np.asarray(img.convert("L" if self.shape[1] == 1 else "RGB")).reshape(out.shape[1:])
            except (OSError, ValueError, SyntaxError) as exc:
                raise DataError(f"{self.name}: image {int(row)} of the pack cannot be decoded ({exc})") from None
        batch = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
        return batch[0] if single else batch

    def digest(self) -> str:
        """A cheap fingerprint: every offset, and the bytes of up to 4,096 images spread over the pack."""
        digest = hashlib.sha256(np.ascontiguousarray(self.offsets).tobytes())
        for row in np.unique(np.linspace(0, len(self) - 1, min(len(self), 4096)).astype(np.int64)):
            digest.update(self._bytes(int(row)))
        return "jpeg:" + digest.hexdigest()

    def _bytes(self, row: int) -> bytes:
        return self.blob[int(self.offsets[row]): int(self.offsets[row + 1])].tobytes()

    def index_select(self, dim: int, rows: torch.Tensor) -> torch.Tensor:
        return self[rows]

    def to_device(self, rows: torch.Tensor, device: torch.device, keep: list | None = None) -> torch.Tensor:
        """The rows decoded on ``device``: nvJPEG through torchvision on CUDA when it decodes there, else
        Pillow on the host and a copy. ``keep`` receives the tensors that the returned batch is still
        being made from on the current stream (the caller holds them until that work has completed)."""
        decoder = gpu_jpeg_decoder(device) if device.type == "cuda" else None
        if decoder is not None:
            encoded = [torch.frombuffer(bytearray(self._bytes(int(r))), dtype=torch.uint8) for r in rows]
            mode = decoder.ImageReadMode.GRAY if self.shape[1] == 1 else decoder.ImageReadMode.RGB
            decoded = decoder.decode_jpeg(encoded, mode=mode, device=device)
            if keep is not None:
                keep.extend(decoded)
            return torch.stack(decoded)
        if device.type != "cuda":
            return self[rows]
        pinned = self[rows].pin_memory()
        if keep is not None:
            keep.append(pinned)
        return pinned.to(device, non_blocking=True)

    def to(self, device) -> torch.Tensor:
        device = torch.device(device)
        chunks = [self.to_device(torch.arange(start, min(start + 4096, len(self))), device)
                  for start in range(0, len(self), 4096)]
        return torch.cat(chunks)


_GPU_DECODERS: dict[str, object] = {}


def gpu_jpeg_decoder(device: torch.device):
    """torchvision.io where it imports (an optional extra) and a probe image decodes on ``device`` to the
    pixels Pillow gives (within JPEG's rounding), else None: Pillow decodes then. Probed once per device."""
    key = str(device)
    if key not in _GPU_DECODERS:
        _GPU_DECODERS[key] = _probe_gpu_decoder(device)
        if _GPU_DECODERS[key] is None:
            say(f"JPEG packs are decoded by Pillow on the host: torchvision's GPU decoder is absent or failed "
                f"its probe on {device}")
    return _GPU_DECODERS[key]


def _probe_gpu_decoder(device: torch.device):
    import io

    from PIL import Image

    try:
        import torchvision.io as decoder

        gradient = (np.add.outer(np.arange(16), np.arange(16)) * 8 % 256).astype(np.uint8)
        encoded = io.BytesIO()
        Image.fromarray(np.stack([gradient] * 3, axis=-1)).save(encoded, "JPEG", quality=95)
        raw = torch.frombuffer(bytearray(encoded.getvalue()), dtype=torch.uint8)
        on_gpu = decoder.decode_jpeg([raw], mode=decoder.ImageReadMode.RGB, device=device)[0].cpu()
        with Image.open(io.BytesIO(encoded.getvalue())) as image:
            expected = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)
        if on_gpu.shape != expected.shape or (on_gpu.int() - expected.int()).abs().max() > 8:
            return None
        return decoder
    except Exception:  # torchvision absent, built for another torch, or no working nvJPEG on this device
        return None
