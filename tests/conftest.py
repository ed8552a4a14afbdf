import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Decoded-image caches go to a per-test folder, never the user's cache."""
    monkeypatch.setenv("CONTRACLUST_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
