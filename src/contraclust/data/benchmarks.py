"""Readers for the papers' benchmarks in their standard on-disk layouts, each with its paper protocol.

Every reader takes the path the user gives, checks the layout and says which one it expected when it
is not there. The protocol of each data set (spec ``cc_c3_tcl.md`` 1.5) is the default: CIFAR train
and test merged, STL-10 train and test for clustering plus the 100,000 unlabelled images for the
instance loss only, ImageNet-10 and ImageNet-Dogs as the classes of the spec's WNID lists taken
from an ImageNet train folder, Tiny-ImageNet's 100,000 train images with 200 clusters.

``limit`` takes a stratified subset (for smoke tests) before any image is decoded. Images are held
at their native side, and those larger than ``size`` (ImageNet's: 224 by default) are resized to
``size`` x ``size`` (CC's test transform is such a square resize); the views are made at the
preset's size on the device.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from contraclust.errors import DataError

if TYPE_CHECKING:  # the table below is read by the command line's parser: the readers import what they use
    import numpy as np

    from contraclust.data.dataset import ImageSet

# Spec 1.5: the ImageNet classes CC selects (sorted, as torchvision's ImageFolder numbers them).
IMAGENET10_WNIDS = ["n02056570", "n02085936", "n02128757", "n02690373", "n02692877",
                    "n03095699", "n04254680", "n04285008", "n04467665", "n07747607"]
IMAGENET_DOGS_WNIDS = ["n02085936", "n02086646", "n02088238", "n02091467", "n02097130", "n02099601",
                       "n02101388", "n02101556", "n02102177", "n02105056", "n02105412", "n02105855",
                       "n02107142", "n02110958", "n02112137"]
STL10_SIDE = 96
STL10_CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


@dataclass
class BenchmarkData:
    """A benchmark's images to cluster, and (STL-10) the extra images used for the instance loss only."""

    samples: ImageSet
    instance_only: ImageSet | None = None


@dataclass(frozen=True)
class Benchmark:
    name: str
    n_clusters: int
    protocol: str
    layout: str
    read: Callable[..., BenchmarkData]


def _subset_files(files: list[Path], labels: list[int], limit: int | None, seed: int) -> tuple[list[Path], list[int]]:
    import numpy as np

    from contraclust.data.subset import stratified_indices

    if limit is None:
        return files, labels
    keep = stratified_indices(np.asarray(labels), limit, seed)
    return [files[i] for i in keep], [labels[i] for i in keep]


def _subset_set(data: ImageSet, limit: int | None, seed: int) -> ImageSet:
    import torch

    from contraclust.data.dataset import ImageSet
    from contraclust.data.subset import stratified_indices

    if limit is None or limit >= len(data):
        return data
    keep = stratified_indices(data.labels, limit, seed, n=len(data))
    paths = [data.paths[i] for i in keep] if data.paths else []
    return ImageSet(data.images[torch.from_numpy(keep)].contiguous(),
                    None if data.labels is None else data.labels[keep], data.name, data.class_names,
                    data.native_size, paths)


def read_cifar_benchmark(path: Path, size: int | None = None, limit: int | None = None, seed: int = 0,
                         progress: bool = True, coarse: bool = True, expected: str = "cifar10") -> BenchmarkData:
    """CIFAR-10 or CIFAR-100 (20 super-classes): the python-pickle folder, or (CIFAR-10) JPEG class
    folders under ``train/`` and ``test/``; train and test merged (60,000 images)."""
    from contraclust.data.images import decode_image_files, list_image_folder
    from contraclust.data.readers import is_cifar_folder, read_cifar

    layout = BENCHMARKS[expected].layout
    if is_cifar_folder(path):
        data = read_cifar(path, coarse=coarse)
        if not data.name.startswith(expected):
            raise DataError(f"{path} holds {data.name}, not {expected}; expected {layout}")
        data.class_names = data.class_names or [str(c) for c in range(int(data.labels.max()) + 1)]
        return BenchmarkData(_subset_set(data, limit, seed))
    if expected == "cifar10" and (path / "train").is_dir() and (path / "test").is_dir():
        files, labels, classes = list_image_folder(path)
        if len(classes) != 10:
            raise DataError(f"{path}: found {len(classes)} class folders under train/ and test/, CIFAR-10 has 10; "
                            f"expected {layout}")
        files, labels = _subset_files(files, labels, limit, seed)
        # Decoded as ``load_data`` decodes the folder (own size, channels as found: CIFAR's 32 px colour),
        # so that both share one cache entry; the views are made at the preset's size on the device.
        return BenchmarkData(decode_image_files(files, labels, classes, path, progress=progress))
    raise DataError(f"{path} is not a {expected} folder; expected {layout}")


def read_stl10(path: Path, size: int | None = None, limit: int | None = None, seed: int = 0,
               progress: bool = True) -> BenchmarkData:
    """STL-10's binary layout (``stl10_binary/``): train and test (13,000 labelled images) to cluster,
    ``unlabeled_X.bin`` (100,000 images) for CC's instance-only pass. Each image is 3 x 96 x 96 bytes,
    stored channel by channel in column-major order; labels are 1..10."""
    import numpy as np
    import torch

    from contraclust.data.dataset import ImageSet
    from contraclust.data.subset import stratified_indices

    root = path / "stl10_binary" if (path / "stl10_binary").is_dir() else path
    needed = ["train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin"]
    missing = [name for name in needed if not (root / name).is_file()]
    if missing:
        raise DataError(f"{root} is not STL-10's binary layout (missing {', '.join(missing)}); expected "
                        f"{BENCHMARKS['stl10'].layout}")
    images, labels = [], []
    for split in ("train", "test"):
        raw = _stl_images(root / f"{split}_X.bin")
        y = np.fromfile(root / f"{split}_y.bin", dtype=np.uint8).astype(np.int64) - 1
        if len(y) != len(raw) or (len(y) and (y.min() < 0 or y.max() > 9)):
            raise DataError(f"{root / f'{split}_y.bin'}: {len(y)} labels in 1..10 expected for {len(raw)} images")
        images.append(raw)
        labels.append(y)
    all_labels = np.concatenate(labels)
    keep = stratified_indices(all_labels, limit, seed) if limit else np.arange(len(all_labels))
    stacked = np.concatenate(images)[keep] if limit else np.concatenate(images)
    samples = ImageSet(torch.from_numpy(_stl_to_rows(stacked)), all_labels[keep], "stl10", list(STL10_CLASSES), STL10_SIDE)
    unlabelled = None
    if (root / "unlabeled_X.bin").is_file():
        raw = _stl_images(root / "unlabeled_X.bin")
        chosen = stratified_indices(None, limit, seed, n=len(raw)) if limit else slice(None)
        unlabelled = ImageSet(torch.from_numpy(_stl_to_rows(np.asarray(raw[chosen]))), None, "stl10-unlabeled",
                              native_size=STL10_SIDE)
    return BenchmarkData(samples, unlabelled)


def _stl_images(file: Path) -> np.ndarray:
    import numpy as np

    per_image = 3 * STL10_SIDE * STL10_SIDE
    count, rest = divmod(file.stat().st_size, per_image)
    if rest or not count:
        raise DataError(f"{file}: {file.stat().st_size} bytes is not a whole number of 3x96x96 STL-10 images")
    return np.memmap(file, dtype=np.uint8, mode="r", shape=(count, 3, STL10_SIDE, STL10_SIDE))


def _stl_to_rows(images: np.ndarray) -> np.ndarray:
    """STL-10 stores each channel column by column: swap to (N, C, H, W) rows."""
    import numpy as np

    return np.ascontiguousarray(np.asarray(images).transpose(0, 1, 3, 2))


def _imagenet_subset(name: str, wnids: list[str]) -> Callable[..., BenchmarkData]:
    def read(path: Path, size: int | None = None, limit: int | None = None, seed: int = 0,
             progress: bool = True) -> BenchmarkData:
        """The spec's classes from an ImageNet train folder (one folder per WNID), resized to ``size``."""
        from contraclust.data.images import IMAGE_SUFFIXES, decode_image_files

        root = next((p for p in (path, path / "train") if p.is_dir() and (p / wnids[0]).is_dir()), path)
        missing = [w for w in wnids if not (root / w).is_dir()]
        if missing:
            raise DataError(f"{path}: {len(missing)} of the {len(wnids)} {name} classes are missing (e.g. "
                            f"{missing[0]}/); expected {BENCHMARKS[name].layout}")
        files, labels = [], []
        for index, wnid in enumerate(wnids):
            found = sorted(f for f in (root / wnid).rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            if not found:
                raise DataError(f"{root / wnid} holds no images; expected {BENCHMARKS[name].layout}")
            files += found
            labels += [index] * len(found)
        files, labels = _subset_files(files, labels, limit, seed)
        data = decode_image_files(files, labels, list(wnids), root, None, 3, progress=progress,
                                  max_size=size or 224)
        data.name = name
        return BenchmarkData(data)

    return read


def read_tiny_imagenet(path: Path, size: int | None = None, limit: int | None = None, seed: int = 0,
                       progress: bool = True) -> BenchmarkData:
    """Tiny-ImageNet's train split: ``wnids.txt`` and ``train/<wnid>/images/*.JPEG`` (200 x 500 images)."""
    from contraclust.data.images import IMAGE_SUFFIXES, decode_image_files

    root = path / "tiny-imagenet-200" if (path / "tiny-imagenet-200").is_dir() else path
    layout = BENCHMARKS["tiny-imagenet"].layout
    if not (root / "wnids.txt").is_file() or not (root / "train").is_dir():
        raise DataError(f"{root} is not Tiny-ImageNet (no wnids.txt or train/); expected {layout}")
    wnids = sorted(line.strip() for line in (root / "wnids.txt").read_text().splitlines() if line.strip())
    files, labels = [], []
    for index, wnid in enumerate(wnids):
        found = sorted(f for f in (root / "train" / wnid).rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise DataError(f"{root / 'train' / wnid} holds no images; expected {layout}")
        files += found
        labels += [index] * len(found)
    files, labels = _subset_files(files, labels, limit, seed)
    data = decode_image_files(files, labels, wnids, root, None, 3, progress=progress, max_size=size)
    data.name = "tiny-imagenet"
    return BenchmarkData(data)


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in [
    Benchmark("cifar10", 10, "train + test merged: 60,000 images, 10 clusters",
              "cifar-10-batches-py/ (data_batch_1..5, test_batch) or JPEG class folders train/<class>/ and "
              "test/<class>/", read_cifar_benchmark),
    Benchmark("cifar100", 20, "train + test merged: 60,000 images, scored against the 20 super-classes",
              "cifar-100-python/ (train, test, meta)",
              lambda path, *args, **kw: read_cifar_benchmark(path, *args, expected="cifar100", **kw)),
    Benchmark("stl10", 10, "train + test: 13,000 images to cluster; the 100,000 unlabelled images train the "
              "instance loss only (CC's two passes per epoch)",
              "stl10_binary/ with train_X.bin, train_y.bin, test_X.bin, test_y.bin (and unlabeled_X.bin)", read_stl10),
    Benchmark("imagenet10", 10, "the 10 classes of the spec's WNID list from ImageNet's train split: 13,000 images",
              "an ImageNet train folder with one folder per WNID (n02056570/, ...), or a folder of just those "
              "classes", _imagenet_subset("imagenet10", IMAGENET10_WNIDS)),
    Benchmark("imagenet-dogs", 15, "the 15 dog classes of the spec's WNID list from ImageNet's train split: "
              "19,500 images", "an ImageNet train folder with one folder per WNID (n02085936/, ...), or a folder "
              "of just those classes", _imagenet_subset("imagenet-dogs", IMAGENET_DOGS_WNIDS)),
    Benchmark("tiny-imagenet", 200, "the train split: 100,000 images, 200 clusters",
              "tiny-imagenet-200/ with wnids.txt and train/<wnid>/images/*.JPEG", read_tiny_imagenet),
]}


def read_benchmark(name: str, path: str | Path, size: int | None = None, limit: int | None = None, seed: int = 0,
                   progress: bool = True) -> BenchmarkData:
    """Read benchmark ``name`` from ``path`` under its paper protocol (see the module docstring)."""
    if name not in BENCHMARKS:
        raise DataError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{name}: data path {path} does not exist; expected {BENCHMARKS[name].layout}")
    return BENCHMARKS[name].read(path, size, limit, seed, progress)
