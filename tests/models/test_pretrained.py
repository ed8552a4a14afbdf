"""Frozen pretrained backbones, tested offline with transformers models built from small configs."""
import numpy as np
import pytest
import torch
from PIL import Image

from contraclust.errors import ConfigError
from contraclust.models.pretrained import Preprocess, load_backbone
from helpers import run_cli, tiny_dinov2

transformers = pytest.importorskip("transformers")


def digit_folder(root, n=60):
    from contraclust.data import read_mnist5k

    digits = read_mnist5k()
    for i in range(n):
        label = int(digits.labels[i * 83])
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(digits.images[i * 83, 0].numpy()).save(root / str(label) / f"{i:03d}.png")
    return root


def test_preprocess_resizes_crops_and_normalises():
    x = Preprocess(resize=36, crop=32)(torch.full((2, 1, 28, 40), 255, dtype=torch.uint8))
    assert x.shape == (2, 3, 32, 32)
    assert torch.allclose(x[0, :, 5, 5], (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225]),
                          atol=1e-3)


def test_bad_specs_and_missing_weights_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="hf:NAME_OR_DIR"):
        load_backbone("dinov2")
    with pytest.raises(ConfigError, match="never downloaded without --download"):
        load_backbone(f"hf:{tmp_path / 'nowhere'}")


def test_embed_then_fit_on_a_frozen_dinov2_end_to_end(tmp_path):
    model = tiny_dinov2(tmp_path / "dinov2")
    images = digit_folder(tmp_path / "digits")
    embedded = run_cli("embed", "--data", str(images), "--backbone", f"hf:{model}", "--output",
                       str(tmp_path / "e.npz"), "--device", "cpu", "--no-progress")
    assert embedded.returncode == 0, embedded.stderr
    saved = np.load(tmp_path / "e.npz")
    assert saved["x"].shape == (60, 32) and len(saved["y"]) == 60 and saved["paths"][0].endswith(".png")
    assert "images/s" in embedded.stderr

    run = tmp_path / "run"
    fit = run_cli("fit", "--data", str(images), "--backbone", f"hf:{model}", "--freeze", "-k", "3", "--epochs", "2",
                  "--out", str(run), "--device", "cpu", "--no-progress", "--no-report")
    assert fit.returncode == 0, fit.stderr
    assert "NMI" in fit.stdout and "embedded 60 images" in fit.stderr
    evaluated = run_cli("evaluate", str(run), "--device", "cpu")  # embeds the run's images again
    assert evaluated.returncode == 0, evaluated.stderr
    refused = run_cli("fit", "--data", str(images), "--backbone", f"hf:{model}", "-k", "3", "--device", "cpu")
    assert refused.returncode == 1 and "add --freeze" in refused.stderr


def test_clip_vision_tower(tmp_path):
    config = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                           num_attention_heads=2, image_size=32, patch_size=8, projection_dim=16)
    transformers.CLIPVisionModel(config).save_pretrained(tmp_path / "clip")
    backbone = load_backbone(f"hf:{tmp_path / 'clip'}")
    features = backbone(torch.randint(0, 255, (4, 3, 40, 40), dtype=torch.uint8))
    assert features.shape == (4, 32)
