"""The papers' benchmark readers, on tiny fake copies of each standard layout (and the real CIFAR-10)."""
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from contraclust.data.benchmarks import (
    BENCHMARKS, IMAGENET10_WNIDS, IMAGENET_DOGS_WNIDS, read_benchmark,
)
from contraclust.data.subset import stratified_indices
from contraclust.errors import DataError

SHARED_CIFAR10 = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "cifar10"


def write_jpegs(folder: Path, n: int, size=(40, 30), seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"{i}.JPEG")


def test_stratified_indices_keep_class_proportions_and_are_seeded():
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    picked = stratified_indices(labels, 50, seed=3)
    assert len(picked) == 50 and np.bincount(labels[picked]).tolist() == [5, 10, 15, 20]
    assert (picked == stratified_indices(labels, 50, seed=3)).all()
    assert np.bincount(labels[stratified_indices(labels, 4)]).tolist() == [1, 1, 1, 1]
    assert len(stratified_indices(labels, 1000)) == 100
    with pytest.raises(DataError, match="at least 1"):
        stratified_indices(labels, 0)


def test_cifar10_pickle_and_jpeg_layouts(tmp_path):
    root = tmp_path / "pickles" / "cifar-10-batches-py"
    root.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(root / name, "wb") as f:
            pickle.dump({b"data": np.full((10, 3072), 7, np.uint8), b"labels": list(range(10))}, f)
    data = read_benchmark("cifar10", tmp_path / "pickles").samples
    assert data.images.shape == (60, 3, 32, 32) and np.bincount(data.labels).tolist() == [6] * 10
    assert np.bincount(read_benchmark("cifar10", tmp_path / "pickles", limit=20).samples.labels).tolist() == [2] * 10

    jpegs = tmp_path / "jpegs"
    for split, n in (("train", 3), ("test", 1)):
        for c in range(10):
            write_jpegs(jpegs / split / f"class{c}", n, size=(32, 32), seed=c)
    data = read_benchmark("cifar10", jpegs, limit=20, progress=False).samples
    assert data.images.shape == (20, 3, 32, 32) and np.bincount(data.labels).tolist() == [2] * 10
    assert len(read_benchmark("cifar10", jpegs, progress=False).samples) == 40


def test_cifar_wrong_layouts_name_the_expected_one(tmp_path):
    for c in range(3):
        write_jpegs(tmp_path / "three" / "train" / f"c{c}", 1)
        write_jpegs(tmp_path / "three" / "test" / f"c{c}", 1)
    with pytest.raises(DataError, match="CIFAR-10 has 10.*train/<class>"):
        read_benchmark("cifar10", tmp_path / "three", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="not a cifar100 folder; expected cifar-100-python/"):
        read_benchmark("cifar100", tmp_path / "empty")
    with pytest.raises(DataError, match="does not exist; expected cifar-10-batches-py"):
        read_benchmark("cifar10", tmp_path / "nowhere")
    with pytest.raises(DataError, match="unknown benchmark 'mnist'"):
        read_benchmark("mnist", tmp_path)


def write_stl(root: Path, images: np.ndarray, labels: np.ndarray | None, split: str):
    """Write (N, 3, 96, 96) row-major images in STL-10's column-major byte order."""
    root.mkdir(parents=True, exist_ok=True)
    np.ascontiguousarray(images.transpose(0, 1, 3, 2)).tofile(root / f"{split}_X.bin")
    if labels is not None:
        (labels + 1).astype(np.uint8).tofile(root / f"{split}_y.bin")


def test_stl10_binary_layout_with_unlabelled_images(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "stl10_binary"
    train = rng.integers(0, 255, (20, 3, 96, 96), dtype=np.uint8)
    test = rng.integers(0, 255, (10, 3, 96, 96), dtype=np.uint8)
    write_stl(root, train, np.arange(20) % 10, "train")
    write_stl(root, test, np.arange(10), "test")
    write_stl(root, rng.integers(0, 255, (7, 3, 96, 96), dtype=np.uint8), None, "unlabeled")
    data = read_benchmark("stl10", tmp_path)
    assert data.samples.images.shape == (30, 3, 96, 96) and (data.samples.images[:20].numpy() == train).all()
    assert data.samples.labels.tolist() == list(range(10)) * 3 and data.samples.class_names[2] == "car"
    assert data.instance_only is not None and len(data.instance_only) == 7 and data.instance_only.labels is None
    small = read_benchmark("stl10", root, limit=10)
    assert np.bincount(small.samples.labels).tolist() == [1] * 10 and len(small.instance_only) == 7
    (root / "unlabeled_X.bin").unlink()
    assert read_benchmark("stl10", root).instance_only is None


def test_stl10_wrong_layouts(tmp_path):
    root = tmp_path / "stl10_binary"
    write_stl(root, np.zeros((2, 3, 96, 96), np.uint8), np.array([0, 1]), "train")
    with pytest.raises(DataError, match="missing test_X.bin, test_y.bin.*stl10_binary/ with train_X.bin"):
        read_benchmark("stl10", tmp_path)
    write_stl(root, np.zeros((2, 3, 96, 96), np.uint8), np.array([0, 1]), "test")
    (root / "test_X.bin").write_bytes(b"\0" * 100)
    with pytest.raises(DataError, match="not a whole number of 3x96x96"):
        read_benchmark("stl10", tmp_path)


@pytest.mark.parametrize("name, wnids", [("imagenet10", IMAGENET10_WNIDS), ("imagenet-dogs", IMAGENET_DOGS_WNIDS)])
def test_imagenet_subsets_select_the_spec_classes(tmp_path, name, wnids):
    train = tmp_path / "ILSVRC" / "train"
    for i, wnid in enumerate(wnids + ["n09999999"]):
        write_jpegs(train / wnid, 2, size=(40 + i, 30), seed=i)
    data = read_benchmark(name, tmp_path / "ILSVRC", size=16, progress=False).samples
    assert BENCHMARKS[name].n_clusters == len(wnids)
    assert data.images.shape == (2 * len(wnids), 3, 16, 16) and data.name == name
    assert np.bincount(data.labels).tolist() == [2] * len(wnids) and data.class_names == wnids
    assert len(read_benchmark(name, train, size=16, limit=len(wnids), progress=False).samples) == len(wnids)
    for f in (train / wnids[3]).iterdir():
        f.unlink()
    (train / wnids[3]).rmdir()
    with pytest.raises(DataError, match=f"1 of the {len(wnids)} {name} classes are missing.*{wnids[3]}"):
        read_benchmark(name, train, size=16)


def test_tiny_imagenet_train_split(tmp_path):
    root = tmp_path / "tiny-imagenet-200"
    wnids = ["n01443537", "n01629819", "n01641577"]
    (root).mkdir()
    (root / "wnids.txt").write_text("\n".join(reversed(wnids)) + "\n")
    for i, wnid in enumerate(wnids):
        write_jpegs(root / "train" / wnid / "images", 3, size=(64, 64), seed=i)
    data = read_benchmark("tiny-imagenet", tmp_path, progress=False).samples
    assert data.images.shape == (9, 3, 64, 64) and data.class_names == wnids
    assert np.bincount(data.labels).tolist() == [3, 3, 3] and BENCHMARKS["tiny-imagenet"].n_clusters == 200
    (root / "wnids.txt").unlink()
    with pytest.raises(DataError, match="not Tiny-ImageNet.*wnids.txt and train/<wnid>/images"):
        read_benchmark("tiny-imagenet", root)


@pytest.mark.slow
def test_shared_cifar10_gives_the_papers_60000_images(tmp_path):
    import os

    if not SHARED_CIFAR10.is_dir():
        pytest.skip("../shared/datasets/cifar10 not present")
    data = read_benchmark("cifar10", SHARED_CIFAR10, progress=False).samples
    assert data.images.shape == (60000, 3, 32, 32)
    assert np.bincount(data.labels).tolist() == [6000] * 10
    assert data.class_names[0] == "airplane" and data.class_names[-1] == "truck"
    assert os.environ["CONTRACLUST_CACHE"] in str(next((tmp_path / "cache").glob("*.npz")))  # decoded once, cached
    # the folder read as any other folder (what fit and the benchmarks' load_data do) is that same cache entry
    from contraclust.data import load_data

    again = load_data(SHARED_CIFAR10, progress=False)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1 and torch.equal(again.images, data.images)
