"""The one in-memory data interface: samples as a tensor, labels optional.

Images are held as ``uint8`` tensors of shape (N, C, H, W) so a whole data set fits on the
device (CIFAR-10's 60,000 images are 184 MB) and views are made there in batches. Feature
vectors (embeddings) are ``float32`` tensors of shape (N, D).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from contraclust.console import say
from contraclust.errors import DataError


MIN_IMAGE_SIDE = 4  # the small CNN halves its input twice


class _SampleSet:
    """What both kinds share; subclasses say which field holds the samples (``tensor``)."""

    labels: np.ndarray | None
    name: str
    is_image: bool

    @property
    def tensor(self) -> torch.Tensor:
        raise NotImplementedError

    def __len__(self) -> int:
        return int(self.tensor.shape[0])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.tensor.shape[1:])

    def _check_labels(self) -> None:
        if self.labels is not None and (self.labels.ndim != 1 or len(self.labels) != len(self)):
            raise DataError(f"{self.name}: {len(self)} samples but labels of shape {self.labels.shape}")


@dataclass
class ImageSet(_SampleSet):
    """A labelled-or-unlabelled set of images held as a uint8 (N, C, H, W) tensor. ``native_size``: the
    larger side of the files before a reader shrank them (the median over files; 0: as held).
    ``paths``: each image's source file, when read from a folder (empty otherwise)."""

    images: torch.Tensor
    labels: np.ndarray | None = None
    name: str = "images"
    class_names: list[str] = field(default_factory=list)
    native_size: int = 0
    paths: list[str] = field(default_factory=list)
    is_image = True

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise DataError(
                f"{self.name}: images must be a uint8 tensor of shape (N, C, H, W), "
                f"got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.images.shape[1] not in (1, 3):
            raise DataError(f"{self.name}: images need 1 or 3 channels, got {self.images.shape[1]}")
        if min(self.images.shape[2:]) < MIN_IMAGE_SIDE:
            raise DataError(f"{self.name}: images of {self.images.shape[2]}x{self.images.shape[3]} pixels are too "
                            f"small for a CNN (at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}); give them as (N, D) "
                            f"feature vectors instead")
        self._check_labels()
        if self.paths and len(self.paths) != len(self):
            raise DataError(f"{self.name}: {len(self)} images but {len(self.paths)} paths")

    @property
    def tensor(self) -> torch.Tensor:
        return self.images

    def to(self, device: torch.device | str) -> "ImageSet":
        return replace(self, images=self.images.to(device))

    def with_channels(self, channels: int) -> "ImageSet":
        """These images with ``channels`` channels: grey ones repeated into RGB, colour ones made grey by
        luma (ITU-R 601, as Pillow's ``L``); the same set when they have them already."""
        if channels == self.images.shape[1] or channels not in (1, 3):
            return self
        if channels == 3:
            return replace(self, images=self.images.expand(-1, 3, -1, -1).contiguous())
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        grey = (self.images.float() * weights).sum(dim=1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
        return replace(self, images=grey)


@dataclass
class FeatureSet(_SampleSet):
    """A labelled-or-unlabelled set of feature vectors held as a float32 (N, D) tensor. ``ids``: each
    sample's id from a table's id column (carried into assignments.csv; empty otherwise)."""

    features: torch.Tensor
    labels: np.ndarray | None = None
    name: str = "features"
    class_names: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    is_image = False

    def __post_init__(self) -> None:
        if self.features.ndim != 2 or not self.features.is_floating_point():
            raise DataError(
                f"{self.name}: features must be a float tensor of shape (N, D), "
                f"got {self.features.dtype} {tuple(self.features.shape)}"
            )
        if not torch.isfinite(self.features).all():
            raise DataError(f"{self.name}: features contain NaN or infinite values")
        self.features = self.features.float()
        if len(self.features) > 1 and bool((self.features == self.features[:1]).all()):
            say(f"warning: every sample of {self.name} has the same features: they cannot be told apart, so any "
                f"clustering of them is arbitrary")
        self._check_labels()
        if self.ids and len(self.ids) != len(self):
            raise DataError(f"{self.name}: {len(self)} samples but {len(self.ids)} ids")

    @property
    def tensor(self) -> torch.Tensor:
        return self.features

    def to(self, device: torch.device | str) -> "FeatureSet":
        return replace(self, features=self.features.to(device))


Samples = ImageSet | FeatureSet
