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


class CreatesAFile:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def test_a_cifar_batch_that_would_run_code_is_refused(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    marker = tmp_path / "code-ran"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(root / name, "wb") as f:
            pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1], b"x": CreatesAFile(marker)}, f)
    with pytest.raises(DataError, match="refusing CIFAR batch .* asks for io.open"):
        load_data(tmp_path)
    assert not marker.exists()


def test_a_stray_file_named_train_does_not_make_a_folder_cifar100(tmp_path):
    write_images(tmp_path / "a", 3)
    write_images(tmp_path / "b", 3)
    (tmp_path / "train").write_text("notes")
    data = load_data(tmp_path)
    assert data.name == tmp_path.name and len(data) == 6


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 64).astype(np.uint16).reshape(8, 8)
    folder = tmp_path / "deep" / "a"
    folder.mkdir(parents=True)
    Image.fromarray(ramp).save(folder / "ramp.png")  # a 16-bit grey PNG
    read = read_image_folder(tmp_path / "deep", cache_dir=tmp_path / "cache", progress=False).images[0, 0].numpy()
    expected = np.rint(ramp / 257.0).astype(np.uint8)
    assert np.abs(read.astype(int) - expected).max() <= 1 and read.max() == 255 and len(np.unique(read)) > 50

    array = from_array(np.stack([ramp, ramp // 2]))
    assert array.images.dtype.is_floating_point is False
    assert array.images[0, 0].numpy().tolist() == expected.tolist()
    floats = np.tile(np.array([[0.0, 0.5], [1.0, 0.25]]), (2, 2))[None]
    assert from_array(floats).images[0, 0, :2, :2].flatten().tolist() == [0, 128, 255, 64]
    ints = np.tile(np.array([[0, 100], [255, 7]], np.int64), (2, 2))[None]
    assert from_array(ints).images[0, 0, :2, :2].flatten().tolist() == [0, 100, 255, 7]
    with pytest.raises(DataError, match="too small"):
        from_array(np.zeros((3, 2, 2)))
    for bad, message in ((np.full((2, 4, 4), -1.0), "negative"), (np.full((2, 4, 4), 300.0), r"\[0, 255\]"),
                         (np.full((2, 4, 4), 70000), "above 65535"), (np.zeros((0, 4, 4)), "no pixels"),
                         (np.zeros((2, 4, 4), bool), "real numbers")):
        with pytest.raises(DataError, match=message):
            from_array(bad)


def test_an_empty_data_path_is_refused_rather_than_read_as_the_current_folder():
    for spec in ("", "  "):
        with pytest.raises(DataError, match="the data path is empty"):
            load_data(spec)


# ------------------------------------------------------------------ what a hostile tester found
def test_images_in_sub_folders_of_a_class_belong_to_it_and_each_class_is_counted(tmp_path, caplog):
    """cat/ and dog/ with 6 images each plus 2 in a sub-folder (thumbs/, extra/) are 16 samples, not 4 read as
    splits; only folders named like splits (train, test, val...) are splits."""
    caplog.set_level("INFO", logger="contraclust")
    for name, extra in (("cat", "thumbs"), ("dog", "extra")):
        write_images(tmp_path / "pets" / name, 6)
        write_images(tmp_path / "pets" / name / extra, 2)
    data = read_image_folder(tmp_path / "pets", progress=False)
    assert len(data) == 16 and data.class_names == ["cat", "dog"] and data.labels.tolist() == [0] * 8 + [1] * 8
    assert "16 images in 2 classes: cat 8, dog 8" in caplog.text


def test_links_are_followed_once_and_never_in_a_loop(tmp_path):
    write_images(tmp_path / "d" / "a", 3)
    write_images(tmp_path / "d" / "b", 2)
    (tmp_path / "d" / "a" / "loop").symlink_to(tmp_path / "d" / "a", target_is_directory=True)  # a loop
    (tmp_path / "d" / "b" / "again.png").symlink_to(tmp_path / "d" / "b" / "0.png")  # the same file twice
    write_images(tmp_path / "elsewhere", 1)
    (tmp_path / "d" / "b" / "more").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    data = read_image_folder(tmp_path / "d", progress=False)
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]  # b: 0.png, 1.png and the linked folder's one image
    assert len(set(data.paths)) == len(data.paths)


def test_hidden_files_are_skipped_and_loose_images_refused(tmp_path):
    write_images(tmp_path / "d" / "a", 2)
    write_images(tmp_path / "d" / "b", 2)
    (tmp_path / "d" / "a" / "._0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # macOS resource forks
    (tmp_path / "d" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    write_images(tmp_path / "d" / ".hidden", 3)
    assert len(read_image_folder(tmp_path / "d", progress=False)) == 4
    write_images(tmp_path / "d", 1)  # an image beside the class folders belongs to no class
    with pytest.raises(DataError, match=r"holds 1 image file\(s\) beside its class folders"):
        read_image_folder(tmp_path / "d", progress=False)


def test_folders_contraclust_wrote_inside_the_data_are_skipped_with_a_warning(tmp_path, caplog):
    from contraclust.markers import RUN_LOCK, SORTED_MARKER

    caplog.set_level("INFO", logger="contraclust")
    write_images(tmp_path / "d", 4)
    write_images(tmp_path / "d" / "run" / "report" / "samples", 5)  # a run's report thumbnails
    (tmp_path / "d" / "run" / RUN_LOCK).write_text("")
    write_images(tmp_path / "d" / "sorted" / "cluster_0", 2)
    (tmp_path / "d" / "sorted" / SORTED_MARKER).write_text("")
    data = read_image_folder(tmp_path / "d", progress=False)
    assert len(data) == 4 and data.labels is None  # flat: the two folders are not classes either
    assert caplog.text.count("contraclust wrote it") == 2


def test_phone_photos_are_turned_upright_by_their_exif_orientation(tmp_path):
    image = np.zeros((10, 20, 3), np.uint8)
    image[:, :10] = 255  # left half white, 20 wide and 10 high as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    (tmp_path / "p").mkdir()
    Image.fromarray(image).save(tmp_path / "p" / "phone.jpg", exif=exif, quality=95)
    data = read_image_folder(tmp_path / "p", progress=False)
    assert data.images.shape[2:] == (20, 10)  # displayed upright: 10 wide, 20 high
    top, bottom = data.images[0, :, :10].float().mean(), data.images[0, :, 10:].float().mean()
    assert top > 200 and bottom < 50  # the white half is on top once turned


def test_float_images_are_read_by_their_range_not_as_black(tmp_path):
    (tmp_path / "f").mkdir()
    for i, (top, expected) in enumerate(((0.5, 128), (200.0, 200), (30000.0, 117))):
        Image.fromarray(np.full((8, 8), top, np.float32), mode="F").save(tmp_path / "f" / f"{i}.tif")
    data = read_image_folder(tmp_path / "f", progress=False)
    assert [int(v) for v in data.images[:, 0, 0, 0]] == [128, 200, 117]
    Image.fromarray(np.full((8, 8), -1.0, np.float32), mode="F").save(tmp_path / "f" / "3.tif")
    with pytest.raises(DataError, match="negative or non-finite"):
        read_image_folder(tmp_path / "f", progress=False)


def test_the_decode_cache_never_serves_a_file_replaced_with_the_same_size_and_time(tmp_path):
    """cp -p and rsync -a keep a file's size and mtime; the cache key also holds its inode and ctime."""
    import os
    import shutil

    (tmp_path / "d" / "a").mkdir(parents=True)
    for i, level in enumerate((100, 150, 200)):
        Image.fromarray(np.full((10, 12), level, np.uint8)).save(tmp_path / "d" / "a" / f"{i}.png")
    first = read_image_folder(tmp_path / "d", progress=False)
    target = tmp_path / "d" / "a" / "1.png"
    stat = target.stat()
    Image.fromarray(np.full((10, 12), 7, np.uint8)).save(tmp_path / "other.png")
    assert (tmp_path / "other.png").stat().st_size == stat.st_size  # the same size...
    shutil.copyfile(tmp_path / "other.png", target)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ...and the same mtime, as cp -p leaves them
    again = read_image_folder(tmp_path / "d", progress=False)
    assert int(first.images[1].max()) == 150 and int(again.images[1].max()) == 7


def test_a_folder_named_like_a_built_in_set_is_read_and_said_so(tmp_path, monkeypatch, caplog):
    caplog.set_level("INFO", logger="contraclust")
    monkeypatch.chdir(tmp_path)
    write_images(tmp_path / "digits" / "a", 3)
    assert len(load_data("digits", progress=False)) == 3
    assert "the built-in data set of that name is --data builtin:digits" in caplog.text
    assert len(load_data("builtin:digits")) == 1797
    with pytest.raises(DataError, match="no built-in data set of that name"):
        load_data("builtin:cifar")


def test_file_names_that_are_not_utf8_are_read_and_cached(tmp_path):
    import os

    folder = tmp_path / "d" / "a"
    write_images(folder, 2)
    os.rename(folder / "0.png", os.fsdecode(bytes(folder) + b"/caf\xe9.png"))  # Latin-1 bytes in the name
    data = read_image_folder(tmp_path / "d", progress=False)
    assert len(data) == 2 and list((tmp_path / "cache").glob("*.npz"))
    assert len(read_image_folder(tmp_path / "d", progress=False)) == 2


def test_an_all_constant_table_or_array_is_said_to_be_arbitrary(tmp_path, caplog):
    caplog.set_level("INFO", logger="contraclust")
    np.save(tmp_path / "same.npy", np.ones((30, 4), np.float32))
    load_data(tmp_path / "same.npy")
    assert "every sample of same has the same features" in caplog.text


def _large_photo(path, seed=0, size=(1600, 1200), orientation=None):
    """A smooth colour photo, large enough for the JPEG decoder to scale it down by 8 at 32 px."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    photo = Image.fromarray(small).resize(size, Image.BICUBIC)
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    photo.save(path, quality=92, exif=exif)
    return np.asarray(photo)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_to_nearly_the_full_decodes_pixels(tmp_path, monkeypatch):
    from PIL import JpegImagePlugin

    from contraclust.data.images import decode_image

    _large_photo(tmp_path / "big.jpg")
    with Image.open(tmp_path / "big.jpg") as full:  # the full decode, then the same resize
        expected = np.asarray(full.convert("RGB").resize((32, 32), Image.BILINEAR)).astype(float)
    reduced_to = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def recording_draft(self, mode, size):
        result = draft(self, mode, size)
        reduced_to.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", recording_draft)
    image, side = decode_image(tmp_path / "big.jpg", "RGB", 32)
    assert reduced_to == [(200, 150)]  # libjpeg decoded 1/8 of each side: 64x fewer pixels
    assert side == 1600 and image.shape == (32, 32, 3)  # the larger side of the file, not of the reduced decode
    assert np.abs(image - expected).mean() < 2.0 and np.abs(image - expected).max() < 24


def test_a_folder_decoded_in_threads_keeps_file_order_exif_and_pillows_bound(tmp_path, monkeypatch):
    from PIL import Image as PILImage

    monkeypatch.setenv("CONTRACLUST_NO_CACHE", "1")
    folder = tmp_path / "photos" / "all"
    folder.mkdir(parents=True)
    photos = [_large_photo(folder / f"{i:03d}.jpg", seed=i, size=(480, 320), orientation=6 if i % 5 == 0 else None)
              for i in range(24)]
    bound = PILImage.MAX_IMAGE_PIXELS
    data = read_image_folder(tmp_path / "photos", size=16, progress=False)
    assert PILImage.MAX_IMAGE_PIXELS == bound  # lifted for each header under a lock, always put back
    for i, photo in enumerate(photos):
        upright = np.rot90(photo, k=-1) if i % 5 == 0 else photo  # orientation 6: turned clockwise
        expected = np.asarray(Image.fromarray(np.ascontiguousarray(upright)).resize((16, 16), Image.BILINEAR))
        assert np.abs(data.images[i].permute(1, 2, 0).numpy().astype(float) - expected).mean() < 6, i


def test_one_corrupt_file_among_many_stops_the_threaded_decode_with_its_name(tmp_path, monkeypatch):
    monkeypatch.setenv("CONTRACLUST_NO_CACHE", "1")
    write_images(tmp_path / "bad" / "a", 40)
    (tmp_path / "bad" / "a" / "img_0017_broken.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="corrupt or unreadable image file .*img_0017_broken.png"):
        read_image_folder(tmp_path / "bad", progress=False)


def test_centre_crop_keeps_the_aspect_and_the_middle_of_a_wide_photo(tmp_path):
    from contraclust.data.images import decode_image

    wide = np.zeros((100, 300, 3), np.uint8)
    wide[:, :100, 0] = 255   # red on the left third
    wide[:, 100:200, 1] = 255  # green in the middle
    wide[:, 200:, 2] = 255   # blue on the right
    (tmp_path / "flat").mkdir()
    Image.fromarray(wide).save(tmp_path / "flat" / "wide.png")
    cropped, side = decode_image(tmp_path / "flat" / "wide.png", "RGB", 20, centre_crop=True)
    assert side == 300 and cropped.shape == (20, 20, 3)
    inner = cropped[:, 2:-2]  # the edge columns blend a little with the thirds beside (antialiased resize)
    assert inner[..., 1].min() >= 250 and inner[..., [0, 2]].max() <= 5  # the green middle, not squeezed
    squashed, _ = decode_image(tmp_path / "flat" / "wide.png", "RGB", 20)
    assert squashed[:, 0, 0].min() >= 250 and squashed[:, -1, 2].min() >= 250  # all three thirds, squeezed
    folder = read_image_folder(tmp_path / "flat", size=20, centre_crop=True, progress=False, cache_dir=tmp_path / "c")
    again = read_image_folder(tmp_path / "flat", size=20, progress=False, cache_dir=tmp_path / "c")
    assert np.array_equal(folder.images[0].permute(1, 2, 0).numpy(), cropped)
    assert np.array_equal(again.images[0].permute(1, 2, 0).numpy(), squashed)  # cached apart
