"""Known pretrained backbones: short names, where their weights live once fetched, and which one ``auto``
prefers when several are at hand.

The rule (first found wins): DINOv2 ViT-S/14 (88 MB, the smallest and fastest of the transformers on a
CPU, and DINOv2's features are the strongest of these for nearest-neighbour and k-means use, the DINOv2
paper's k-NN tables), DINOv2 ViT-B/14, CLIP ViT-B/16, CLIP ViT-B/32, torchvision's ResNet-50, then
MobileNetV2 (14 MB; about a tenth of DINOv2-S's compute per image, 0.3 GFLOPs against 4.6 at 224 px: 24
photos/s on 2 CPU cores, with weaker features; docs/vectors-and-backbones.md, "Photos through pretrained
features", measures what it gives). Weights are looked for, never fetched, in: a folder named once by
``CONTRACLUST_BACKBONES`` (``<short name>/`` holding a ``save_pretrained`` folder, or ``<short name>.pth``
for torchvision's and the built-in networks), Hugging Face's hub cache (``HF_HUB_CACHE``, ``HF_HOME/hub`` or
``~/.cache/huggingface/hub``; safetensors only, which load without running code) and torch's hub cache
(``TORCH_HOME/hub/checkpoints``, torchvision's file names).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

FOLDER_VARIABLE = "CONTRACLUST_BACKBONES"


@dataclass(frozen=True)
class KnownBackbone:
    short: str
    spec: str          # family:name as ``load_backbone`` takes it
    megabytes: int     # the weights' download
    summary: str
    torch_file: str = ""  # torchvision's checkpoint file name in torch's hub cache


KNOWN_BACKBONES = (
    KnownBackbone("dinov2-small", "hf:facebook/dinov2-small", 88, "DINOv2 ViT-S/14, 22 M parameters"),
    KnownBackbone("dinov2-base", "hf:facebook/dinov2-base", 346, "DINOv2 ViT-B/14, 86 M parameters"),
    KnownBackbone("clip-vit-b16", "hf:openai/clip-vit-base-patch16", 599, "CLIP ViT-B/16 image features"),
    KnownBackbone("clip-vit-b32", "hf:openai/clip-vit-base-patch32", 605, "CLIP ViT-B/32 image features"),
    KnownBackbone("resnet50", "torchvision:resnet50", 98, "torchvision's ImageNet ResNet-50",
                  "resnet50-11ad3fa6.pth"),
    KnownBackbone("mobilenet-v2", "builtin:mobilenet-v2", 14, "MobileNetV2 (ImageNet-1k), 1280-d features",
                  "mobilenet_v2-b0353104.pth"),
)
SHORT_NAMES = {b.short: b for b in KNOWN_BACKBONES}


def resolve_backbone_name(spec: str) -> str:
    """A short name (``dinov2-small``) as its ``family:name``; anything else unchanged."""
    return SHORT_NAMES[spec].spec if spec in SHORT_NAMES else spec


@dataclass(frozen=True)
class CachedBackbone:
    backbone: KnownBackbone
    weights: Path  # a model folder (hf) or a checkpoint file (torchvision)


def hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME")
    return Path(home) / "hub" if home else Path.home() / ".cache" / "huggingface" / "hub"


def torch_cache() -> Path:
    home = os.environ.get("TORCH_HOME")
    return (Path(home) if home else Path.home() / ".cache" / "torch") / "hub" / "checkpoints"


def _complete_model_folder(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def _hub_snapshot(repo: str) -> Path | None:
    snapshots = hub_cache() / f"models--{repo.replace('/', '--')}" / "snapshots"
    found = sorted((p for p in snapshots.glob("*") if _complete_model_folder(p)), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def where_cached(backbone: KnownBackbone) -> Path | None:
    """The local weights of ``backbone``, if any of the caches holds them whole."""
    named = os.environ.get(FOLDER_VARIABLE)
    family, _, name = backbone.spec.partition(":")
    if named:
        folder = Path(named) / backbone.short
        if family == "hf" and _complete_model_folder(folder):
            return folder
        if family in ("torchvision", "builtin") and folder.with_suffix(".pth").is_file():
            return folder.with_suffix(".pth")
    if family == "hf":
        return _hub_snapshot(name)
    if backbone.torch_file and (torch_cache() / backbone.torch_file).is_file():
        return torch_cache() / backbone.torch_file
    return None


def find_cached_backbone() -> CachedBackbone | None:
    """The preferred known backbone whose weights are already on this machine (see the module's rule)."""
    for backbone in KNOWN_BACKBONES:
        weights = where_cached(backbone)
        if weights is not None:
            return CachedBackbone(backbone, weights)
    return None


def fetch_hint(data: str | None, clusters: int | None, api: bool = False) -> str:
    """One line: the command (or, for the Python API, the estimator) that fetches the preferred backbone
    once and clusters through it."""
    first = KNOWN_BACKBONES[0]
    command = (f"ContrastiveClustering(n_clusters={clusters or 10}, backbone={first.short!r}, download=True)" if api
               else f"contraclust fit --data {data or 'PHOTOS'}{f' -k {clusters}' if clusters else ''} --backbone "
               f"{first.short} --freeze --download")
    return (f"hint: these are colour photos; clustering them on a frozen pretrained backbone usually separates "
            f"them far better than training from scratch (published heads on such features reach CIFAR-10 ACC "
            f"0.97 and above): `{command}` fetches {first.summary} once ({first.megabytes} MB), and later runs "
            f"find it in the cache by themselves")
