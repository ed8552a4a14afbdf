"""The one in-memory data interface: samples as a tensor, labels optional.

Images are held as ``uint8`` tensors of shape (N, C, H, W) so a whole data set fits on the
device (CIFAR-10's 60,000 images are 184 MB) and views are made there in batches. Feature
vectors (embeddings) are ``float32`` tensors of shape (N, D).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from contraclust.errors import DataError


@dataclass
class ImageSet:
    """A labelled-or-unlabelled set of images held as a uint8 (N, C, H, W) tensor."""

    images: torch.Tensor
    labels: np.ndarray | None = None
    name: str = "images"
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise DataError(
                f"{self.name}: images must be a uint8 tensor of shape (N, C, H, W), "
                f"got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.images.shape[1] not in (1, 3):
            raise DataError(f"{self.name}: images need 1 or 3 channels, got {self.images.shape[1]}")
        _check_labels(self.labels, len(self), self.name)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def is_image(self) -> bool:
        return True

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    @property
    def tensor(self) -> torch.Tensor:
        return self.images

    def to(self, device: torch.device | str) -> "ImageSet":
        return ImageSet(self.images.to(device), self.labels, self.name, self.class_names)


@dataclass
class FeatureSet:
    """A labelled-or-unlabelled set of feature vectors held as a float32 (N, D) tensor."""

    features: torch.Tensor
    labels: np.ndarray | None = None
    name: str = "features"
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.features.ndim != 2 or not self.features.is_floating_point():
            raise DataError(
                f"{self.name}: features must be a float tensor of shape (N, D), "
                f"got {self.features.dtype} {tuple(self.features.shape)}"
            )
        if not torch.isfinite(self.features).all():
            raise DataError(f"{self.name}: features contain NaN or infinite values")
        self.features = self.features.float()
        _check_labels(self.labels, len(self), self.name)

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def is_image(self) -> bool:
        return False

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.features.shape[1:])

    @property
    def tensor(self) -> torch.Tensor:
        return self.features

    def to(self, device: torch.device | str) -> "FeatureSet":
        return FeatureSet(self.features.to(device), self.labels, self.name, self.class_names)


Samples = ImageSet | FeatureSet


def _check_labels(labels: np.ndarray | None, n: int, name: str) -> None:
    if labels is None:
        return
    if labels.ndim != 1 or len(labels) != n:
        raise DataError(f"{name}: {n} samples but labels of shape {labels.shape}")
