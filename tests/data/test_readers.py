import gzip
import pickle

import numpy as np
import pytest
from PIL import Image

from contraclust.data import load_data, read_cifar, read_image_folder, read_mnist5k, read_sklearn_digits
from contraclust.data.readers import fine_to_coarse_cifar100, from_array
from contraclust.errors import DataError


def write_images(folder, n, size=(12, 10), color=True):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        arr = rng.integers(0, 255, (size[1], size[0], 3) if color else (size[1], size[0]), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"{i}.png")


def test_mnist5k_is_real_and_balanced():
    data = read_mnist5k()
    assert data.images.shape == (5000, 1, 28, 28)
    assert np.bincount(data.labels).tolist() == [500] * 10
    assert data.images.float().mean() > 20  # real digits, not zeros


def test_sklearn_digits():
    data = read_sklearn_digits()
    assert data.images.shape == (1797, 1, 8, 8) and data.images.max() == 255


def test_image_folder_with_classes_and_cache(tmp_path):
    write_images(tmp_path / "imgs" / "cat", 3)
    write_images(tmp_path / "imgs" / "dog", 2)
    data = read_image_folder(tmp_path / "imgs", progress=False)
    assert data.images.shape == (5, 3, 10, 12)
    assert data.labels.tolist() == [0, 0, 0, 1, 1] and data.class_names == ["cat", "dog"]
    again = read_image_folder(tmp_path / "imgs", progress=False)  # from the cache
    assert np.array_equal(again.images.numpy(), data.images.numpy())
    assert list((tmp_path / "cache").glob("*.npz"))


def test_split_folders_share_class_labels(tmp_path):
    for split in ("train", "test"):
        write_images(tmp_path / "c10" / split / "a", 2)
        write_images(tmp_path / "c10" / split / "b", 1)
    data = read_image_folder(tmp_path / "c10", progress=False)
    assert data.labels.tolist() == [0, 0, 1, 0, 0, 1] and data.class_names == ["a", "b"]


def test_flat_folder_of_mixed_sizes_is_resized(tmp_path):
    write_images(tmp_path / "flat", 2, size=(20, 20))
    write_images(tmp_path / "flat2", 1, size=(30, 12))
    (tmp_path / "flat2" / "0.png").rename(tmp_path / "flat" / "z.png")
    data = read_image_folder(tmp_path / "flat", progress=False)
    assert data.labels is None and data.images.shape == (3, 3, 20, 20)
    sized = read_image_folder(tmp_path / "flat", size=8, progress=False)
    assert sized.images.shape == (3, 3, 8, 8)


def test_corrupt_image_is_a_clear_error(tmp_path):
    write_images(tmp_path / "bad" / "a", 2)
    (tmp_path / "bad" / "a" / "broken.jpg").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="corrupt or unreadable image file .*broken.jpg"):
        read_image_folder(tmp_path / "bad", progress=False)


def test_empty_and_missing_paths(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        load_data(tmp_path / "empty")
    with pytest.raises(DataError, match="does not exist"):
        load_data(tmp_path / "nope")


def test_cifar10_and_cifar100_pickles(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": np.full((2, 3072), 7, dtype=np.uint8), b"labels": [1, 2]}
        with open(root / name, "wb") as f:
            pickle.dump(batch, f)
    data = load_data(tmp_path)
    assert data.images.shape == (12, 3, 32, 32) and data.labels.tolist() == [1, 2] * 6

    root100 = tmp_path / "c100" / "cifar-100-python"
    root100.mkdir(parents=True)
    for name in ("train", "test"):
        with open(root100 / name, "wb") as f:
            pickle.dump({b"data": np.zeros((3, 3072), np.uint8), b"fine_labels": [72, 73, 85]}, f)
    data = read_cifar(tmp_path / "c100")
    assert data.name == "cifar100-20" and data.labels.tolist() == [0, 1, 19] * 2


def test_coarse_table_covers_all_fine_labels():
    table = fine_to_coarse_cifar100()
    assert (table >= 0).all() and np.bincount(table).tolist() == [5] * 20


def test_arrays_npy_npz(tmp_path):
    np.save(tmp_path / "feats.npy", np.random.rand(10, 4).astype(np.float32))
    assert not load_data(tmp_path / "feats.npy").is_image
    np.savez(tmp_path / "imgs.npz", x=np.zeros((5, 8, 8, 3), np.uint8), y=np.arange(5))
    data = load_data(tmp_path / "imgs.npz")
    assert data.images.shape == (5, 3, 8, 8) and data.labels.tolist() == list(range(5))
    with pytest.raises(DataError, match="shape"):
        from_array(np.zeros((2, 3, 4, 5, 6)))
    with pytest.raises(DataError, match="samples but labels"):
        from_array(np.zeros((4, 8, 8)), np.arange(3))


def test_shared_cifar10_jpeg_folder_reads(tmp_path):
    import os
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "cifar10"
    if not root.is_dir():
        pytest.skip("../shared/datasets/cifar10 not present")
    # read one class of the test split only, to keep the test fast; the reader is the same
    data = read_image_folder(root / "test", progress=False)
    assert data.images.shape == (10000, 3, 32, 32)
    assert np.bincount(data.labels).tolist() == [1000] * 10
    assert data.class_names[0] == "airplane" and data.class_names[-1] == "truck"
    assert os.environ["CONTRACLUST_CACHE"] in str(next((tmp_path / "cache").glob("*.npz")))
