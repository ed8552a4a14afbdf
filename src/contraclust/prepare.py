"""One way in: a :class:`FitRequest` (every parameter of a fit, as the CLI and the estimator take them) and
one :func:`prepare` that turns it into the run's config and data, which a :class:`~contraclust.run.Run`
then trains. ``contraclust fit``, the estimator, ``reproduce``, ``suggest-k`` and ``presets --data`` all come through here,
so the same request gives the same config whichever face it came by (tested field by field).

What :func:`prepare` does, once each: validates the request and parses its budget; reads the data (a
folder a frozen backbone will embed is read as that backbone takes its images, never twice); chooses the
frozen backbone (``--backbone X --freeze``, or under ``auto`` a known one already cached for colour
photos, else the one-line hint that says how to fetch one); embeds the images through it; takes K from
the class folders when none is given; resolves the config (``presets.build_config``: the preset or the
``auto`` recipe, then the explicit arguments and overrides); and sets every field a face used to set after
it (the table's label and id columns, the image size, ``uncertain_below``, the frozen backbone and its
weights, the time the report needs at the end of a budget). No field of the config is set after it.

The readers below (``read_data`` and friends) are also what ``evaluate``, ``predict``, ``report`` and
``views`` use to read data as a run took it.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from contraclust.config import RunConfig
from contraclust.console import say
from contraclust.data import FeatureSet, ImageSet, Samples, from_array, load_data
from contraclust.data.fingerprint import data_reference
from contraclust.data.readers import is_image_folder
from contraclust.errors import ConfigError
from contraclust.methods.prior import prior_overrides
from contraclust.models import pretrained
from contraclust.models.catalogue import fetch_hint, resolve_backbone_name
from contraclust.presets import build_config, get_preset
from contraclust.recipes.auto import (
    DataProfile, DeviceProfile, backbone_reason, budget_after_embedding, max_image_size, number_of_clusters,
    photo_backbone, read_for_a_cached_backbone,
)
from contraclust.report.html import report_seconds
from contraclust.request import FitRequest, Reading
from contraclust.training.device import resolve_device
from contraclust.training.trainer import require_samples


@dataclass
class Prepared:
    """What :func:`prepare` gives: the run's config, its data (embedded, when a frozen backbone took it), the
    device, the run folder (None: in memory) and the frozen backbone, loaded, when there is one."""

    config: RunConfig
    data: Samples
    device: Any
    out: Path | None
    backbone: Any = None


def prepare(request: FitRequest) -> Prepared:
    """The request's (config, data): module docstring."""
    started_at = request.started_at if request.started_at is not None else time.monotonic()
    budget = request.budget_seconds()
    if request.backbone not in (None, "none") and not request.freeze:
        raise ConfigError("--backbone trains nothing of the pretrained network: add --freeze (fine-tuning it is "
                          "not supported)")
    device = resolve_device(request.device)
    auto = request.preset in (None, "auto")
    data, backbone, cached = _read(request, device, auto)
    require_samples(data)
    k, k_reason = ((request.n_clusters, None) if request.n_clusters is not None
                   else number_of_clusters(data, request.path))
    if request.then not in (None, "self-label"):
        raise ConfigError(f"--then must be self-label, got {request.then!r}")
    overrides = (prior_overrides(request.cluster_prior, request.prior_weight)
                 + (["self_label.enabled=true"] if request.then == "self-label" else []) + list(request.overrides)
                 + ([] if request.reading.progress else ["train.progress=false"]))
    config = build_config(request.method, request.preset, data=request.path,
                          profile=DataProfile.of(data, backbone is not None) if auto else None, device=device, n_clusters=k,
                          epochs=request.epochs, budget=budget, batch_size=request.batch_size, seed=request.seed,
                          overrides=overrides, init=request.init is not None)
    reasons = config.recipe["reasons"] if config.recipe else None
    if cached is not None and reasons is not None:
        config.recipe["reasons"] = reasons = {"backbone": backbone_reason(cached), **reasons}
    if k_reason and reasons is not None:
        config.recipe["reasons"] = {"n_clusters": k_reason, **reasons}
    elif k_reason:
        say(k_reason)
    reading = request.reading
    config.image_size = reading.image_size
    config.label_column, config.id_column = reading.label_column, reading.id_column
    if request.uncertain_below is not None:
        config.uncertain_below = request.uncertain_below
    if backbone is not None:
        config.frozen_backbone = cached.backbone.spec if cached is not None else resolve_backbone_name(request.backbone)
        config.backbone_weights = _weights_reference(cached.weights if cached is not None else request.weights)
        if config.recipe and budget is None and request.epochs is None:
            budget_after_embedding(config, time.monotonic() - started_at, DeviceProfile.of(device))
    out = request.run_folder(config)
    if request.report and out is not None and config.train.budget_seconds:
        # the budget ends with the report written (a report that does not fit what is left shrinks)
        config.train.after_seconds = report_seconds(len(data), budget_seconds=config.train.budget_seconds)
    config.validate()
    return Prepared(config, data, device, out, backbone)


def _weights_reference(weights) -> str | None:
    """Local weights stored absolute (a run used from another folder finds them), anything else as given."""
    if weights is None:
        return None
    path = Path(weights).expanduser()
    return os.path.abspath(path) if path.exists() else str(weights)


def _read(request: FitRequest, device, auto: bool):
    """(data, the frozen backbone loaded or None, the cached backbone ``auto`` chose or None)."""
    reading = request.reading
    if request.backbone not in (None, "none"):
        spec = resolve_backbone_name(request.backbone)
        if request.path is not None and is_image_folder(request.path):  # read once, as the backbone takes it
            backbone = pretrained.load_backbone(spec, request.weights, request.download)
            images = read_data(request.path, reading, backbone_side=backbone.input_side)
        else:
            images = _samples_or_read(request, None)
            if not images.is_image:
                raise request.not_images(images.name)
            backbone = pretrained.load_backbone(spec, request.weights, request.download)
        return pretrained.embed_images(images, backbone, device, progress=reading.progress), backbone, None
    if not auto:
        size = get_preset(request.preset).augment.size
        return _samples_or_read(request, size), None, None
    read_at = lambda side: read_data(request.path, reading, backbone_side=side)  # noqa: E731
    early = not request.scratch and request.path is not None and read_for_a_cached_backbone(request.path, read_at)
    if early:
        cached, backbone, images = early
    else:
        images = _samples_or_read(request, max_image_size(DeviceProfile.of(device)))
        cached = None if request.scratch else cached_photo_backbone(DataProfile.of(images), request)
        if cached is None:
            return images, None, None
        backbone = pretrained.load_backbone(cached.backbone.spec, cached.weights)
    return pretrained.embed_images(images, backbone, device, progress=reading.progress), backbone, cached


def _samples_or_read(request: FitRequest, max_size: int | None) -> Samples:
    if request.read is not None:
        return request.read(max_size)
    if request.path is not None or request.data is None:
        return read_data(request.path, request.reading, max_size=max_size)
    return as_samples(request.data, request.labels, max_size)


def cached_photo_backbone(profile: DataProfile, request: FitRequest):
    """For the ``auto`` recipe on colour photos: the cached backbone to embed them through, or None after the
    one-line hint that says how to fetch one (``recipes.auto.photo_backbone``)."""
    cached = photo_backbone(profile)
    if cached is None and profile.is_image and profile.channels == 3:
        say(fetch_hint(request.path, request.n_clusters, api=request.face == "api"))
    return cached


def as_samples(X: Any, y: np.ndarray | None = None, max_size: int | None = None) -> Samples:
    """Accept an ImageSet/FeatureSet, an array (images or feature vectors), a tensor, or a data path/name
    (folders of images larger than ``max_size`` are shrunk to it)."""
    import torch

    if isinstance(X, (ImageSet, FeatureSet)):
        return X
    if isinstance(X, (str, Path)):
        return load_data(X, max_size=max_size)
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    return from_array(X, y)


# --------------------------------------------------------------------------------------------- readers
def read_data(spec, reading: Reading, max_size: int | None = None, config: RunConfig | None = None,
              backbone_side: int | None = None, channels: int | None = None, side: int | None = None,
              device="auto") -> Samples:
    """The data named by ``spec``; a table's label and id columns from ``reading``, else from the run's
    ``config`` (so that a run on a table is predicted, evaluated or resumed without naming them again);
    for a run on a frozen backbone, its images embedded as that run's were. ``backbone_side``: image files
    read as a pretrained backbone takes them (shorter side to it, the centre square), unless
    ``reading.image_size`` says otherwise. ``channels`` and ``side``: image files read with that many
    channels (grey made RGB, or colour grey) at that square side, as a trained model takes them."""
    if config is not None and config.frozen_backbone:
        return read_embedded(spec, reading, config.frozen_backbone, config.backbone_weights, False,
                             resolve_device(device))
    own = config is not None and data_reference(spec) == config.data  # the run's own data: read as it was
    label_column = reading.label_column or (config.label_column if own else None)
    id_column = reading.id_column or (config.id_column if own else None)
    image_size = reading.image_size or (config.image_size if own else None) or side
    return load_data(spec, image_size=image_size or backbone_side, max_size=max_size, channels=channels,
                     progress=reading.progress, label_column=label_column, id_column=id_column,
                     centre_crop=backbone_side is not None and not image_size)


def read_embedded(spec, reading: Reading, backbone_spec: str, weights, download: bool, device,
                  batch_size: int = 64) -> FeatureSet:
    """The images named by ``spec`` through the frozen backbone, as a FeatureSet with their labels and
    paths. Image files are read at the size the backbone resizes to (never whole: a folder of 12 MP
    phone photos would need 36 MB each)."""
    backbone = pretrained.load_backbone(backbone_spec, weights, download)
    images = read_data(spec, reading, backbone_side=backbone.input_side)
    if not images.is_image:
        raise ConfigError(f"--backbone embeds images, but {images.name} holds feature vectors")
    return pretrained.embed_images(images, backbone, device, batch_size, reading.progress)


def read_for_the_recipe(spec, reading: Reading, device) -> tuple[Samples, DataProfile]:
    """Data for the ``auto`` recipe: images no larger than the device's cap, and the data's profile."""
    data = read_data(spec, reading, max_image_size(DeviceProfile.of(device)))
    return data, DataProfile.of(data)
