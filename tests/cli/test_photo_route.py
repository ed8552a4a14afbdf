"""auto on colour photos: a cached known backbone is used frozen, else a hint says how to fetch one."""
import json

import numpy as np
import pytest
from PIL import Image

from helpers import run_cli, tiny_dinov2

transformers = pytest.importorskip("transformers")


def colour_photos(root, n=36):
    """Three classes of 32 px colour images (a red, a green and a blue tint under noise)."""
    rng = np.random.default_rng(0)
    for i in range(n):
        label = i % 3
        pixels = rng.integers(0, 120, (32, 32, 3))
        pixels[..., label] += 120
        (root / f"c{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8)).save(root / f"c{label}" / f"{i:03d}.png")
    return root


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty Hugging Face and torch caches, and no CONTRACLUST_BACKBONES: what a fresh machine has."""
    hub = tmp_path / "hf-hub"
    hub.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("CONTRACLUST_BACKBONES", raising=False)
    return hub


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
