"""The estimator's photo route: as the CLI's auto, a cached known backbone is used frozen, else a hint."""
import logging

import numpy as np
import pytest

from contraclust import ContrastiveClustering
from contraclust.errors import ConfigError
from helpers import TINY, colour_photos, record_decodes, tiny_dinov2

transformers = pytest.importorskip("transformers")


def estimator(**kw):
    return ContrastiveClustering(n_clusters=3, epochs=1, device="cpu", progress=False, random_state=0,
                                 overrides=TINY, **kw)


def test_a_cached_dinov2_makes_the_estimator_embed_and_predict_through_it(tmp_path, caches, caplog):
    snapshot = tiny_dinov2(caches / "models--facebook--dinov2-small" / "snapshots" / "0123abcd", layers=1)
    photos = colour_photos(tmp_path / "photos")
    with caplog.at_level(logging.INFO, logger="contraclust"):
        model = estimator().fit(str(photos))
    assert model.config_.frozen_backbone == "hf:facebook/dinov2-small"
    assert model.config_.backbone_weights == str(snapshot)
    assert model.config_.recipe["reasons"]["backbone"].startswith("dinov2-small (DINOv2 ViT-S/14")
    assert model.n_features_in_ == 32 and "hint:" not in caplog.text  # the tiny DINOv2's 32-d features
    assert np.array_equal(model.predict(str(photos)), model.labels_)  # new images embedded the same way
    loaded = ContrastiveClustering.load(model.save(tmp_path / "model.pt"))
    assert np.array_equal(loaded.predict(str(photos)), model.labels_)


def test_without_a_cached_backbone_the_estimator_hints_and_trains_from_scratch(tmp_path, caches, caplog):
    photos = colour_photos(tmp_path / "photos")
    with caplog.at_level(logging.INFO, logger="contraclust"):
        model = estimator().fit(str(photos))
    hints = [r.getMessage() for r in caplog.records if r.getMessage().startswith("hint:")]
    assert len(hints) == 1 and "ContrastiveClustering(n_clusters=3, backbone='dinov2-small', download=True)" in hints[0]
    assert model.config_.frozen_backbone is None and model.config_.model.backbone != "mlp"


def test_backbone_none_keeps_scratch_and_a_named_one_is_used(tmp_path, caches):
    tiny_dinov2(caches / "models--facebook--dinov2-small" / "snapshots" / "0123abcd", layers=1)
    photos = colour_photos(tmp_path / "photos")
    assert estimator(backbone="none").fit(str(photos)).config_.frozen_backbone is None
    named = estimator(backbone=f"hf:{tiny_dinov2(tmp_path / 'mine', layers=1)}").fit(str(photos))
    assert named.config_.frozen_backbone == f"hf:{tmp_path / 'mine'}" and named.n_features_in_ == 32
    with pytest.raises(ConfigError, match="embeds images, but X holds feature vectors"):
        estimator(backbone="dinov2-small").fit(np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32))


def test_the_estimator_reads_photo_files_at_the_backbones_input_side(tmp_path, caches, monkeypatch):
    from contraclust.models import pretrained

    tiny_dinov2(caches / "models--facebook--dinov2-small" / "snapshots" / "0123abcd", layers=1)
    photos = colour_photos(tmp_path / "photos")
    seen = []
    embed = pretrained.embed_images
    monkeypatch.setattr(pretrained, "embed_images", lambda images, *a, **k: seen.append(images.tensor.shape[1:])
                        or embed(images, *a, **k))
    model = estimator().fit(str(photos))
    model.predict(str(photos))
    assert seen == [(3, 36, 36), (3, 36, 36)]  # the tiny DINOv2's shorter side, for fit and for predict


def test_the_estimator_reads_a_photo_folder_once_on_its_photo_route(tmp_path, caches, monkeypatch):
    tiny_dinov2(caches / "models--facebook--dinov2-small" / "snapshots" / "0123abcd", layers=1)
    photos = colour_photos(tmp_path / "photos")
    decoded = record_decodes(monkeypatch)
    model = estimator().fit(str(photos))
    assert model.config_.frozen_backbone == "hf:facebook/dinov2-small"
    assert sorted(file for file, _ in decoded) == sorted(photos.rglob("*.png"))  # each photo once,
    assert {how for _, how in decoded} == {(36, None, True)}  # at the tiny DINOv2's side, its centre square
    from PIL import Image

    grey = tmp_path / "grey"
    for file in sorted(photos.rglob("*.png")):  # the same folder in grey: auto trains from scratch
        (grey / file.parent.name).mkdir(parents=True, exist_ok=True)
        Image.open(file).convert("L").save(grey / file.parent.name / file.name)
    model = estimator().fit(str(grey))
    assert model.config_.frozen_backbone is None and model.config_.model.backbone != "mlp"
