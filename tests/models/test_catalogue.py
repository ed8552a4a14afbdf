"""Known backbones: short names, and where their cached weights are found (never fetched)."""
import pytest

from contraclust.models import catalogue


@pytest.fixture
def caches(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("CONTRACLUST_BACKBONES", raising=False)
    return tmp_path


def model_folder(folder, weights="model.safetensors"):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / weights).write_bytes(b"0")
    return folder


def test_short_names_map_to_their_hub_ids():
    assert catalogue.resolve_backbone_name("dinov2-small") == "hf:facebook/dinov2-small"
    assert catalogue.resolve_backbone_name("clip-vit-b32") == "hf:openai/clip-vit-base-patch32"
    assert catalogue.resolve_backbone_name("hf:some/model") == "hf:some/model"


def test_nothing_cached_finds_nothing_and_incomplete_or_pickled_weights_do_not_count(caches):
    assert catalogue.find_cached_backbone() is None
    model_folder(caches / "hub" / "models--facebook--dinov2-small" / "snapshots" / "a", "pytorch_model.bin")
    (caches / "hub" / "models--facebook--dinov2-base" / "snapshots" / "b").mkdir(parents=True)
    assert catalogue.find_cached_backbone() is None


def test_the_preferred_backbone_wins_and_the_named_folder_is_looked_in_first(caches, monkeypatch):
    clip = model_folder(caches / "hub" / "models--openai--clip-vit-base-patch32" / "snapshots" / "c")
    assert catalogue.find_cached_backbone() == catalogue.CachedBackbone(catalogue.SHORT_NAMES["clip-vit-b32"], clip)
    base = model_folder(caches / "hub" / "models--facebook--dinov2-base" / "snapshots" / "d")
    assert catalogue.find_cached_backbone().weights == base
    monkeypatch.setenv("CONTRACLUST_BACKBONES", str(caches / "mine"))
    small = model_folder(caches / "mine" / "dinov2-small")
    assert catalogue.find_cached_backbone() == catalogue.CachedBackbone(catalogue.SHORT_NAMES["dinov2-small"], small)


def test_torchvisions_checkpoint_in_torch_hub_is_found(caches):
    checkpoints = caches / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "resnet50-11ad3fa6.pth").write_bytes(b"0")
    assert catalogue.find_cached_backbone().backbone.short == "resnet50"


def test_mobilenet_is_found_in_torch_hub_and_the_named_folder_and_comes_last(caches, monkeypatch):
    checkpoints = caches / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "mobilenet_v2-b0353104.pth").write_bytes(b"0")
    assert catalogue.find_cached_backbone() == catalogue.CachedBackbone(
        catalogue.SHORT_NAMES["mobilenet-v2"], checkpoints / "mobilenet_v2-b0353104.pth")
    monkeypatch.setenv("CONTRACLUST_BACKBONES", str(caches / "mine"))
    (caches / "mine").mkdir()
    (caches / "mine" / "mobilenet-v2.pth").write_bytes(b"0")
    assert catalogue.find_cached_backbone().weights == caches / "mine" / "mobilenet-v2.pth"
    (checkpoints / "resnet50-11ad3fa6.pth").write_bytes(b"0")  # any other known backbone is preferred
    assert catalogue.find_cached_backbone().backbone.short == "resnet50"
