"""auto on colour photos: a cached known backbone is used frozen, else a hint says how to fetch one."""
import json

import pytest

from helpers import colour_photos, run_cli, tiny_dinov2

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
