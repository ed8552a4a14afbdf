import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Decoded-image caches go to a per-test folder, never the user's cache; the pretrained-weight caches
    are empty ones there too (a fresh machine), so no test finds the user's backbones."""
    monkeypatch.setenv("CONTRACLUST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("CONTRACLUST_BACKBONES", raising=False)
    torch.manual_seed(0)


@pytest.fixture
def caches(tmp_path):
    """The test's (empty) Hugging Face hub cache, made: put a backbone in it to make it "cached"."""
    hub = tmp_path / "hf-hub"
    hub.mkdir(exist_ok=True)
    return hub
