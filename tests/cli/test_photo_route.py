"""auto on colour photos: a cached known backbone is used frozen, else a hint says how to fetch one."""
import json

import pytest

from helpers import colour_photos, record_decodes, run_cli, tiny_dinov2

transformers = pytest.importorskip("transformers")


def fit(tmp_path, *extra):
    out = tmp_path / "run"
    done = run_cli("fit", "--data", str(colour_photos(tmp_path / "photos")), "-k", "3", "--epochs", "1", "--device",
                   "cpu", "--no-progress", "--no-report", "--out", str(out), *extra)
    assert done.returncode == 0, done.stderr
    return done, json.loads((out / "config.json").read_text())


def test_a_cached_dinov2_makes_auto_take_the_frozen_route(tmp_path, caches):
    snapshot = tiny_dinov2(caches / "models--facebook--dinov2-small" / "snapshots" / "0123abcd", layers=1)
    done, config = fit(tmp_path)
    assert "backbone: dinov2-small (DINOv2 ViT-S/14, 22 M parameters), frozen: colour photos" in done.stderr
    assert "embedded 36 images with hf:facebook/dinov2-small into 32-d vectors" in done.stderr
    assert config["frozen_backbone"] == "hf:facebook/dinov2-small" and config["backbone_weights"] == str(snapshot)
    assert "hint:" not in done.stderr


def test_without_a_cached_backbone_the_hint_names_the_command_and_the_run_trains_from_scratch(tmp_path, caches):
    done, config = fit(tmp_path)
    hints = [line for line in done.stderr.splitlines() if line.startswith("hint:")]
    assert len(hints) == 1 and "--backbone dinov2-small --freeze --download` fetches" in hints[0]
    assert "(88 MB)" in hints[0] and f"--data {tmp_path / 'photos'} -k 3" in hints[0]
    assert config["frozen_backbone"] is None and config["model"]["backbone"] != "mlp"


def test_no_pretrained_keeps_training_from_scratch_beside_a_cached_backbone(tmp_path, caches, monkeypatch):
    monkeypatch.setenv("CONTRACLUST_BACKBONES", str(tmp_path / "mine"))
    tiny_dinov2(tmp_path / "mine" / "dinov2-small", layers=1)
    done, config = fit(tmp_path, "--no-pretrained")
    assert config["frozen_backbone"] is None and "embedded" not in done.stderr and "hint:" not in done.stderr
    presets = run_cli("presets", "--data", str(tmp_path / "photos"), "--device", "cpu")
    assert "fit embeds the images through dinov2-small" in presets.stdout and str(tmp_path / "mine") in presets.stdout


def test_photo_files_are_read_at_the_backbones_input_side_not_whole(tmp_path, caches, monkeypatch):
    import numpy as np
    import torch
    from PIL import Image

    from contraclust.models import pretrained
    from contraclust.prepare import Reading, read_embedded

    snapshot = tiny_dinov2(tmp_path / "dinov2", layers=1)  # its processor: shorter side 36, centre 32
    photos = tmp_path / "phone"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):  # 4:3 photos far larger than the backbone takes
        Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(photos / f"{i}.jpg")
    seen = []
    embed = pretrained.embed_images
    monkeypatch.setattr(pretrained, "embed_images", lambda images, *a, **k: seen.append(images.tensor.shape)
                        or embed(images, *a, **k))
    reading = Reading(progress=False)
    vectors = read_embedded(photos, reading, f"hf:{snapshot}", None, False, torch.device("cpu"))
    assert seen == [(4, 3, 36, 36)] and vectors.tensor.shape == (4, 32)
    reading.image_size = 48  # --image-size still says how large
    read_embedded(photos, reading, f"hf:{snapshot}", None, False, torch.device("cpu"))
    assert seen[-1] == (4, 3, 48, 48)


def test_the_auto_photo_route_reads_a_folder_once(tmp_path, caches, monkeypatch):
    from contraclust.cli.main import main

    tiny_dinov2(caches / "models--facebook--dinov2-small" / "snapshots" / "0123abcd", layers=1)
    photos = colour_photos(tmp_path / "photos")
    decoded = record_decodes(monkeypatch)
    assert main(["fit", "--data", str(photos), "-k", "3", "--epochs", "1", "--device", "cpu", "--no-progress",
                 "--no-report", "--out", str(tmp_path / "run")]) == 0
    assert sorted(file for file, _ in decoded) == sorted(photos.rglob("*.png"))  # each photo decoded once,
    assert {how for _, how in decoded} == {(36, None, True)}  # as the tiny DINOv2 takes it: side 36, centre square
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["frozen_backbone"] == "hf:facebook/dinov2-small"
    from PIL import Image

    grey = tmp_path / "grey"
    for file in sorted(photos.rglob("*.png")):  # the same folder in grey: read again, trained from scratch
        (grey / file.parent.name).mkdir(parents=True, exist_ok=True)
        Image.open(file).convert("L").save(grey / file.parent.name / file.name)
    assert main(["fit", "--data", str(grey), "-k", "3", "--epochs", "1", "--device", "cpu", "--no-progress",
                 "--no-report", "--out", str(tmp_path / "grey-run")]) == 0
    config = json.loads((tmp_path / "grey-run" / "config.json").read_text())
    assert config["frozen_backbone"] is None and config["model"]["backbone"] != "mlp"
