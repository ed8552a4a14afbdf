"""Backbones that map a batch to an (N, D) representation; ``out_dim`` is D.

The ResNets are built from scratch (no torchvision), Kaiming-normal (fan_out) convolutions and
BN weight 1 / bias 0, without the final fc layer, as in CC's ``modules/resnet.py``.
"""
from __future__ import annotations

import torch
from torch import nn

from contraclust.config import ModelConfig
from contraclust.errors import ConfigError


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Module:
    if stride == 1 and in_planes == out_planes:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride, bias=False), nn.BatchNorm2d(out_planes))


RESNET_LAYOUTS = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


class ResNet(nn.Module):
    """ResNet without fc. ``stem='imagenet'``: 7x7/2 conv + 3x3/2 max-pool (CC, 224 px);
    ``stem='cifar'``: 3x3/1 conv, no pool (32 px inputs)."""

    def __init__(self, depth: str = "resnet34", stem: str = "imagenet", in_channels: int = 3, width: int = 64):
        super().__init__()
        block, counts = RESNET_LAYOUTS[depth]
        if stem == "imagenet":
            self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        elif stem == "cifar":
            self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                                      nn.ReLU(inplace=True))
        else:
            raise ConfigError(f"model.stem must be imagenet or cifar, got {stem!r}")
        layers, in_planes = [], width
        for i, count in enumerate(counts):
            planes = width * 2 ** i
            for j in range(count):
                layers.append(block(in_planes, planes, stride=2 if i > 0 and j == 0 else 1))
                in_planes = planes * block.expansion
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = in_planes
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.layers(self.stem(x))), 1)


class SmallCNN(nn.Module):
    """A VGG-like CNN for small grey images (28 px digits): three conv stages, global average pool."""

    def __init__(self, in_channels: int = 1, width: int = 32):
        super().__init__()

        def stage(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                    nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *stage(in_channels, width), nn.MaxPool2d(2),
            *stage(width, 2 * width), nn.MaxPool2d(2),
            *stage(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1),
        )
        self.out_dim = 4 * width
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.features(x), 1)


class MLP(nn.Module):
    """Linear-BN-ReLU blocks for feature vectors (embeddings), after an input normalisation that is part
    of the model (so that predictions normalise new samples as training did): ``standardize`` (per
    feature, by the training data's mean and spread, set with ``fit_input``), ``l2`` (each vector to
    unit length, as embeddings are compared by cosine) or ``none``."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...] = (512, 512), input_norm: str = "standardize"):
        super().__init__()
        self.input_norm = input_norm
        self.register_buffer("input_mean", torch.zeros(in_dim))
        self.register_buffer("input_scale", torch.ones(in_dim))
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_dim, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
            in_dim = width
        self.net = nn.Sequential(*layers)
        self.out_dim = in_dim

    @torch.no_grad()
    def fit_input(self, features: torch.Tensor) -> None:
        """Take the per-feature mean and spread of the training data (constant features keep scale 1)."""
        features = features.float()
        std = features.std(dim=0, unbiased=False) if len(features) > 1 else torch.ones_like(features[0])
        self.input_mean.copy_(features.mean(dim=0))
        self.input_scale.copy_(torch.where(std > 1e-8, std, torch.ones_like(std)))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_norm == "standardize":
            return (x - self.input_mean) / self.input_scale
        if self.input_norm == "l2":
            return torch.nn.functional.normalize(x, dim=1)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalise(x))


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


BACKBONES = ("resnet18", "resnet34", "resnet50", "small_cnn", "mlp")


def build_backbone(cfg: ModelConfig, sample_shape: tuple[int, ...]) -> nn.Module:
    """Backbone for samples of ``sample_shape``: (C, H, W) images or (D,) feature vectors."""
    if len(sample_shape) == 1:
        if cfg.backbone != "mlp":
            raise ConfigError(f"feature vectors need model.backbone=mlp, got {cfg.backbone!r}")
        return MLP(sample_shape[0], cfg.mlp_hidden, cfg.input_norm)
    channels = sample_shape[0]
    if cfg.backbone in RESNET_LAYOUTS:
        return ResNet(cfg.backbone, cfg.stem, channels, cfg.width)
    if cfg.backbone == "small_cnn":
        return SmallCNN(channels, cfg.width)
    raise ConfigError(f"unknown backbone {cfg.backbone!r} for images; choose one of {', '.join(BACKBONES[:-1])}")
