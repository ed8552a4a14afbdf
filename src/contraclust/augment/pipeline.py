"""Two-view augmentation pipelines over whole batches: draw parameters, then apply them.

Drawing (``sample``) and applying (``apply``) are separate so that a reference path can apply the
very same random parameters one sample at a time, and so that tests can check the distributions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

import contraclust.augment.ops as ops
from contraclust.augment.strong import StrongParams, apply_strong, draw_strong
from contraclust.config import AugmentConfig

# Colour-jitter operations, indexed as in ``JitterParams.order``.
BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)


@dataclass
class ImageViewParams:
    """Per-sample random parameters of one view of a batch (every field has N rows)."""

    theta: torch.Tensor        # (N, 2, 3) sampling matrix: crop, flip, rotation, shear, shift
    crop_area: torch.Tensor    # (N,) crop area as a fraction of the image, for tests and plots
    jitter_factors: torch.Tensor  # (N, 4) brightness, contrast, saturation factors and hue shift
    jitter_order: torch.Tensor    # (N, 4) permutation of the four jitter operations
    grey: torch.Tensor         # (N,) bool
    blur: torch.Tensor         # (N,) bool
    blur_sigma: torch.Tensor   # (N,)
    strong: StrongParams | None = None  # the strong operations and hole, for strong views

    def index(self, rows: slice | torch.Tensor) -> "ImageViewParams":
        picked = {f.name: getattr(self, f.name) for f in fields(self)}
        return ImageViewParams(**{k: (v.index(rows) if isinstance(v, StrongParams) else v[rows])
                                  for k, v in picked.items() if v is not None})


class ImageAugmenter:
    """CC's augmentation (spec section 1.3) as batched tensor operations, plus optional affine terms.

    Order as in the official pipeline: RandomResizedCrop + flip (and, for digits, rotation/shear/
    translation folded into the same resampling), colour jitter with probability ``jitter_p`` in a
    random order per sample, grayscale, Gaussian blur. Inputs are uint8 (N, C, H, W); outputs are
    float32 in [0, 1] of size ``cfg.size`` (no mean/std normalisation, as in CC).
    """

    def __init__(self, cfg: AugmentConfig):
        self.cfg = cfg

    def sample(self, n: int, height: int, width: int, generator: torch.Generator | None,
               device: torch.device) -> ImageViewParams:
        cfg = self.cfg

        def uniform(low: float, high: float, size: tuple[int, ...] = (n,)) -> torch.Tensor:
            return low + (high - low) * torch.rand(size, generator=generator, device=device)

        def coin(p: float) -> torch.Tensor:
            return torch.rand(n, generator=generator, device=device) < p

        boxes = ops.sample_crop_boxes(n, height, width, cfg.crop_scale, cfg.crop_ratio, generator, device)
        flip = coin(cfg.flip_p)
        rotate = uniform(-1, 1) * math.radians(cfg.rotate_degrees)
        shear = uniform(-1, 1) * math.radians(cfg.shear_degrees)
        translate = uniform(-1, 1, (n, 2)) * cfg.translate
        theta = ops.affine_matrices(boxes, flip, rotate, shear, translate, height, width)
        s = cfg.jitter_strength
        strengths = (0.8 * s, 0.8 * s, cfg.saturation_factor * s)
        factors = torch.stack([uniform(max(0.0, 1 - b), 1 + b) for b in strengths]
                              + [uniform(-0.2 * s, 0.2 * s) if cfg.hue else torch.zeros(n, device=device)], dim=1)
        apply_jitter = coin(cfg.jitter_p)
        identity = (torch.arange(4, device=device) < HUE).float()  # (1, 1, 1, 0), made on the device: no copy
        factors = torch.where(apply_jitter[:, None], factors, identity)
        if cfg.jitter_order == "random":
            order = torch.argsort(torch.rand(n, 4, generator=generator, device=device), dim=1)
        else:
            order = torch.arange(4, device=device).expand(n, 4).clone()
        return ImageViewParams(
            theta=theta,
            crop_area=boxes[:, 2] * boxes[:, 3] / (height * width),
            jitter_factors=factors,
            jitter_order=order,
            grey=coin(cfg.grayscale_p),
            blur=coin(cfg.blur_p),
            blur_sigma=uniform(*cfg.blur_sigma),
            strong=(draw_strong(n, cfg.strong_ops, cfg.cutout, generator, device)
                    if cfg.strong_ops or cfg.cutout else None),
        )

    def apply(self, images: torch.Tensor, params: ImageViewParams) -> torch.Tensor:
        """Make one view of a uint8 batch with the given per-sample parameters."""
        x = images.float().div_(255.0)
        x = ops.warp(x, params.theta, self.cfg.size)
        x = self._jitter(x, params)
        if self.cfg.grayscale_p > 0 and x.shape[1] == 3:
            x = ops.select(params.grey, ops.to_grey(x).expand_as(x), x)
        if self.cfg.blur_p > 0:
            kernel = _odd_kernel(self.cfg.blur_kernel, self.cfg.size)
            x = ops.select(params.blur, ops.gaussian_blur(x, params.blur_sigma, kernel), x)
        if params.strong is not None:
            x = apply_strong(x, params.strong)
        return x

    def _jitter(self, x: torch.Tensor, params: ImageViewParams) -> torch.Tensor:
        """ColorJitter with each operation applied once per sample, in that sample's own order.

        Brightness, contrast and saturation are one blend towards a reference (0, the mean grey, the grey
        image), so a pass over the batch applies each sample's own operation at one position of its
        order. Hue (an HSV round trip) runs once for the whole batch: first the operations each sample
        orders before its hue (positions 0-2), then the hue, then those it orders after (positions 1-3)."""
        if self.cfg.jitter_p <= 0 or self.cfg.jitter_strength <= 0:
            return x
        order, factors = params.jitter_order, params.jitter_factors
        hue_position = (order == HUE).int().argmax(dim=1)
        for position in range(3):
            x = self._blend_at(x, order[:, position], factors, position < hue_position)
        if self.cfg.hue and x.shape[1] == 3:
            x = ops.adjust_hue(x, factors[:, HUE])
        for position in range(1, 4) if self.cfg.jitter_order == "random" else ():  # fixed: hue is last
            x = self._blend_at(x, order[:, position], factors, position > hue_position)
        return x

    @staticmethod
    def _blend_at(x: torch.Tensor, op: torch.Tensor, factors: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """Each sample's brightness, contrast or saturation (``op``, one per sample) where ``active``."""
        factor = factors.gather(1, op.clamp(max=SATURATION)[:, None]).squeeze(1)
        factor = torch.where(active & (op != HUE), factor, torch.ones_like(factor))
        grey = ops.to_grey(x)
        mean = grey.mean(dim=(1, 2, 3), keepdim=True)
        kind = op.view(-1, 1, 1, 1)
        reference = torch.where(kind == BRIGHTNESS, torch.zeros_like(mean), torch.where(kind == CONTRAST, mean, grey))
        return ops.affine_jitter(x, factor, reference)

    def draw(self, images: torch.Tensor, generator: torch.Generator | None = None) -> ImageViewParams:
        """Random parameters of one view of ``images``, drawn on their device."""
        return self.sample(images.shape[0], images.shape[2], images.shape[3], generator, images.device)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.apply(images, self.draw(images, generator))

    def eval_view(self, images: torch.Tensor) -> torch.Tensor:
        """The un-augmented view used for read-out: the whole image resized to ``size`` (CC's test transform)."""
        x = images.float().div_(255.0)
        if x.shape[-2:] != (self.cfg.size, self.cfg.size):
            x = F.interpolate(x, size=(self.cfg.size, self.cfg.size), mode="bilinear", align_corners=False,
                              antialias=self.cfg.size < x.shape[-1])
        return x


@dataclass
class FeatureViewParams:
    noise: torch.Tensor  # (N, D) Gaussian noise, already scaled
    keep: torch.Tensor   # (N, D) bool dropout mask

    def index(self, rows: slice | torch.Tensor) -> "FeatureViewParams":
        return FeatureViewParams(self.noise[rows], self.keep[rows])


class FeatureAugmenter:
    """Views of feature vectors: additive Gaussian noise (``noise_std`` times each feature's spread in
    ``spread``, the training data's per-feature std; 1 when not given) and feature dropout (rescaled).
    ``spread`` lives on the device the views are made on (moved once, not per step)."""

    def __init__(self, cfg: AugmentConfig, spread: torch.Tensor | None = None):
        self.cfg = cfg
        self.spread = spread

    def sample(self, n: int, dim: int, generator: torch.Generator | None, device: torch.device) -> FeatureViewParams:
        noise = torch.randn(n, dim, generator=generator, device=device) * self.cfg.noise_std
        if self.spread is not None:
            if self.spread.device != torch.device(device):
                self.spread = self.spread.to(device)  # once: later views are made on the same device
            noise = noise * self.spread
        keep = torch.rand(n, dim, generator=generator, device=device) >= self.cfg.feature_dropout
        return FeatureViewParams(noise, keep)

    def apply(self, features: torch.Tensor, params: FeatureViewParams) -> torch.Tensor:
        scale = 1.0 / max(1e-6, 1.0 - self.cfg.feature_dropout)
        return (features + params.noise) * params.keep * scale

    def draw(self, features: torch.Tensor, generator: torch.Generator | None = None) -> FeatureViewParams:
        """Random parameters of one view of ``features``, drawn on their device."""
        return self.sample(features.shape[0], features.shape[1], generator, features.device)

    def __call__(self, features: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.apply(features, self.draw(features, generator))

    def eval_view(self, features: torch.Tensor) -> torch.Tensor:
        return features.float()


def _odd_kernel(kernel: int, size: int) -> int:
    """CC's 23-pixel kernel is about 10% of 224; keep that ratio at other sizes, odd and at least 3."""
    scaled = max(3, int(round(kernel * size / 224)))
    return scaled if scaled % 2 else scaled + 1


def build_augmenter(cfg: AugmentConfig, is_image: bool, samples: torch.Tensor | None = None,
                    device: torch.device | str | None = None) -> ImageAugmenter | FeatureAugmenter:
    """The augmenter for images or vectors; for vectors, ``samples`` (the training data) sets the noise's
    per-feature scale, kept on ``device`` (default: the samples')."""
    if is_image:
        return ImageAugmenter(cfg)
    spread = samples.float().std(dim=0, unbiased=False) if samples is not None and len(samples) > 1 else None
    if spread is not None and device is not None:
        spread = spread.to(device)
    return FeatureAugmenter(cfg, spread)
