"""``.ccpack``: packing an image folder, reading it back exactly, resuming a killed packing, bad packs."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from contraclust.data import load_data, read_image_folder
from contraclust.data.pack import pack_folder, read_pack
from contraclust.errors import DataError


def image_folder(root, n_per_class=5, size=12, classes=("cat", "dog", "eel")):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n_per_class):
            side = size + i  # files of several sizes, resized on packing
            Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def test_pack_round_trips_exactly_against_the_folder_reader(tmp_path):
    folder = image_folder(tmp_path / "imgs")
    out = pack_folder(folder, tmp_path / "imgs.ccpack", size=10, workers=1, progress=False)
    packed = load_data(out)
    direct = read_image_folder(folder, size=10, channels=3, cache_dir=tmp_path / "cache", progress=False)
    assert packed.images.dtype == torch.uint8 and packed.images.shape == (15, 3, 10, 10)
    assert np.array_equal(packed.images.numpy(), direct.images.numpy())
    assert np.array_equal(packed.labels, direct.labels) and packed.class_names == ["cat", "dog", "eel"]
    assert packed.paths == direct.paths and packed.native_size == 14 and packed.name == "imgs"


def test_a_killed_packing_resumes_to_the_same_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr("contraclust.data.pack.CHUNK", 4)
    folder = image_folder(tmp_path / "imgs")
    whole = pack_folder(folder, tmp_path / "whole.ccpack", size=8, workers=1, progress=False)
    part = pack_folder(folder, tmp_path / "part.ccpack", size=8, workers=1, progress=False, stop_after=5)
    assert json.loads((part / "meta.json").read_text())["packed"] == 8
    with pytest.raises(DataError, match="unfinished .8 of 15"):
        read_pack(part)
    pack_folder(folder, part, size=8, workers=2, progress=False)
    assert (part / "images.npy").read_bytes() == (whole / "images.npy").read_bytes()
    assert np.array_equal(read_pack(part).labels, read_pack(whole).labels)


def test_packing_refuses_a_different_pack_and_reading_refuses_a_broken_one(tmp_path):
    folder = image_folder(tmp_path / "imgs")
    out = pack_folder(folder, tmp_path / "p.ccpack", size=8, workers=1, progress=False)
    with pytest.raises(DataError, match="another --size"):
        pack_folder(folder, out, size=9, workers=1, progress=False)
    with pytest.raises(DataError, match="must end in .ccpack"):
        pack_folder(folder, tmp_path / "p.npy", size=8)
    meta = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps({**meta, "size": 9}))
    with pytest.raises(DataError, match="meta.json says"):
        read_pack(out)
    (out / "meta.json").write_text("{not json")
    with pytest.raises(DataError, match="not a readable"):
        read_pack(out)
    with pytest.raises(DataError, match="not a .ccpack folder"):
        read_pack(tmp_path / "missing.ccpack")


def smooth_folder(root, n=6):
    """Gradients with a little texture: images JPEG keeps close to the original."""
    yy, xx = np.mgrid[0:24, 0:24]
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(n):
            image = np.stack([xx * 10 + i, yy * 10, (xx + yy) * 5 + 7 * i], -1).clip(0, 255).astype(np.uint8)
            Image.fromarray(image).save(root / c / f"{i}.png")
    return root


def test_a_jpeg_pack_decodes_close_to_the_raw_pack_and_resumes_byte_identically(tmp_path, monkeypatch):
    monkeypatch.setattr("contraclust.data.pack.CHUNK", 5)
    folder = smooth_folder(tmp_path / "imgs")
    raw = read_pack(pack_folder(folder, tmp_path / "raw.ccpack", size=16, workers=1, progress=False))
    whole = pack_folder(folder, tmp_path / "whole.ccpack", size=16, workers=1, progress=False,
                        image_format="jpeg", quality=95)
    part = pack_folder(folder, tmp_path / "part.ccpack", size=16, workers=1, progress=False, stop_after=5,
                       image_format="jpeg", quality=95)
    with open(part / "jpeg.bin", "ab") as blob:
        blob.write(b"half-written tail of a killed chunk")
    pack_folder(folder, part, size=16, workers=1, progress=False, image_format="jpeg", quality=95)
    assert (part / "jpeg.bin").read_bytes() == (whole / "jpeg.bin").read_bytes()
    jpeg = read_pack(whole)
    assert jpeg.images.shape == raw.images.shape == (12, 3, 16, 16) and np.array_equal(jpeg.labels, raw.labels)
    decoded = jpeg.images[torch.arange(12)]
    assert decoded.dtype == torch.uint8 and (decoded.float() - raw.images.float()).abs().mean() < 3
    assert torch.equal(jpeg.images[3], decoded[3]) and torch.equal(jpeg.images[2:5], decoded[2:5])
    assert torch.equal(jpeg.images.to("cpu"), decoded)
    assert (whole / "jpeg.bin").stat().st_size < (tmp_path / "raw.ccpack" / "images.npy").stat().st_size
    with pytest.raises(DataError, match="another --size/--channels/--format"):
        pack_folder(folder, whole, size=16, workers=1, progress=False)


def test_the_gpu_jpeg_decoder_is_used_only_when_a_probe_decodes_right(monkeypatch):
    """torchvision's nvJPEG path is taken only when a probe image decodes on the device to Pillow's pixels:
    a missing torchvision, a decoder that raises (a build for another CUDA, no nvJPEG) or one that decodes
    wrongly all leave the decoding to Pillow."""
    import sys
    import types

    from contraclust.data import pack

    def fake_torchvision(decode):
        io = types.SimpleNamespace(decode_jpeg=decode, ImageReadMode=types.SimpleNamespace(RGB="rgb", GRAY="gray"))
        return {"torchvision": types.SimpleNamespace(io=io), "torchvision.io": io}

    def pillow_decode(encoded, mode, device):
        import io as stdio

        from PIL import Image

        images = [np.array(Image.open(stdio.BytesIO(bytes(e.numpy()))).convert("RGB")) for e in encoded]
        return [torch.from_numpy(i).permute(2, 0, 1).contiguous() for i in images]

    def raises(encoded, mode, device):
        raise RuntimeError("nvjpeg: not supported on this device")

    def wrong(encoded, mode, device):
        return [torch.zeros(3, 16, 16, dtype=torch.uint8) for _ in encoded]

    device = torch.device("cpu")
    for decode, works in ((pillow_decode, True), (raises, False), (wrong, False)):
        with monkeypatch.context() as patched:
            for name, module in fake_torchvision(decode).items():
                patched.setitem(sys.modules, name, module)
            assert (pack._probe_gpu_decoder(device) is not None) == works, decode.__name__
    with monkeypatch.context() as patched:
        patched.setitem(sys.modules, "torchvision", None)  # not installed
        patched.setitem(sys.modules, "torchvision.io", None)
        assert pack._probe_gpu_decoder(device) is None


def test_a_file_name_with_a_newline_packs_and_reads_back(tmp_path):
    (tmp_path / "imgs" / "a").mkdir(parents=True)
    for name in ("plain.png", "two\nlines.png"):
        Image.fromarray(np.full((8, 8), 90, np.uint8)).save(tmp_path / "imgs" / "a" / name)
    data = load_data(pack_folder(tmp_path / "imgs", tmp_path / "p.ccpack", size=8, workers=1, progress=False))
    assert sorted(Path(p).name for p in data.paths) == ["plain.png", "two\nlines.png"]
    assert all(Path(p).is_file() for p in data.paths)


def test_a_pack_whose_paths_leave_its_source_folder_is_refused(tmp_path):
    (tmp_path / "imgs" / "a").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / "imgs" / "a" / f"{i}.png")
    pack = pack_folder(tmp_path / "imgs", tmp_path / "p.ccpack", size=8, workers=1, progress=False)
    good = (pack / "paths.txt").read_text()
    for hostile in ('"/etc/passwd"', '"../../x.png"', '"a/../../../etc/passwd"'):
        (pack / "paths.txt").write_text(hostile + "\n" + "\n".join(good.splitlines()[1:]) + "\n")
        with pytest.raises(DataError, match="points outside the pack's source folder"):
            load_data(pack)
