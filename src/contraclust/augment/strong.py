"""Strong views for self-labelling: a RandAugment-like policy and a cutout, batched on the device.

As TCL's strong view (spec ``cc_c3_tcl.md`` section 3, "Mixed" augmentation) and SCAN's: each sample gets
``n_ops`` operations drawn from the set below, each at a uniformly random magnitude, then one square hole
of random side up to ``cutout`` of the image's, filled with grey (0.5). TCL draws 4 of 14 PIL operations;
Equalize (a per-image histogram) has no cheap batched form and is left out, the other 13 are here. Every
operation is computed for the whole batch and each sample keeps its own (``ops.select``): a handful of
kernel launches per round, the same on CPU and CUDA, no host read.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from contraclust.augment import ops

OPERATIONS = ("identity", "autocontrast", "rotate", "solarize", "colour", "contrast", "brightness", "sharpness",
              "shear_x", "shear_y", "translate_x", "translate_y", "posterize")
GEOMETRIC = {"rotate", "shear_x", "shear_y", "translate_x", "translate_y"}
ROTATE_DEGREES, SHEAR, TRANSLATE = 30.0, 0.1, 0.1  # TCL's ranges: rotate ±30°, shear and translate ±0.1


@dataclass
class StrongParams:
    chosen: torch.Tensor     # (rounds, N) operation index per round and sample
    magnitude: torch.Tensor  # (rounds, N) in [0, 1]
    sign: torch.Tensor       # (rounds, N) +1 or -1, for the symmetric operations
    hole: torch.Tensor       # (N, 3): centre y, centre x (fractions of the side), side (fraction)

    def index(self, rows: slice | torch.Tensor) -> "StrongParams":
        return StrongParams(self.chosen[:, rows], self.magnitude[:, rows], self.sign[:, rows], self.hole[rows])


def draw_strong(n: int, n_ops: int, cutout: float, generator: torch.Generator | None,
                device: torch.device) -> StrongParams:
    chosen = torch.randint(len(OPERATIONS), (n_ops, n), generator=generator, device=device)
    magnitude = torch.rand(n_ops, n, generator=generator, device=device)
    sign = torch.where(torch.rand(n_ops, n, generator=generator, device=device) < 0.5, -1.0, 1.0)
    hole = torch.rand(n, 3, generator=generator, device=device) * torch.tensor([1.0, 1.0, cutout], device=device)
    return StrongParams(chosen, magnitude, sign, hole)


def apply_strong(x: torch.Tensor, params: StrongParams) -> torch.Tensor:
    """``x`` (N, C, H, W) floats in [0, 1] after ``params``' operations, round by round, then the hole."""
    for chosen, magnitude, sign in zip(params.chosen, params.magnitude, params.sign):
        x = _geometric(x, chosen, magnitude, sign)
        for name in OPERATIONS:
            if name in GEOMETRIC or name == "identity":
                continue
            x = ops.select(chosen == OPERATIONS.index(name), _photometric(name, x, magnitude, sign), x)
    return _cutout(x, params.hole)


def _geometric(x: torch.Tensor, chosen: torch.Tensor, magnitude: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """Rotation, shears and shifts of this round in one resampling (identity for the other samples)."""
    size = x.shape[-1]
    signed = magnitude * sign
    is_op = {name: (chosen == OPERATIONS.index(name)).float() for name in GEOMETRIC}
    angle = is_op["rotate"] * signed * math.radians(ROTATE_DEGREES)
    shear_x, shear_y = is_op["shear_x"] * signed * SHEAR, is_op["shear_y"] * signed * SHEAR
    shift_x, shift_y = is_op["translate_x"] * signed * TRANSLATE * 2, is_op["translate_y"] * signed * TRANSLATE * 2
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin + shear_x, shift_x], dim=1),
                         torch.stack([sin + shear_y, cos, shift_y], dim=1)], dim=1)
    moved = ops.warp(x, theta, size)
    return ops.select(sum(is_op.values()) > 0, moved, x)


def _photometric(name: str, x: torch.Tensor, magnitude: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    factor = 1.0 + 0.9 * magnitude * sign  # PIL's enhancers at 0.1 .. 1.9, as RandAugment's
    if name == "autocontrast":
        low = x.amin(dim=(2, 3), keepdim=True)
        high = x.amax(dim=(2, 3), keepdim=True)
        return torch.where(high > low, (x - low) / (high - low).clamp_min(1e-6), x)
    if name == "solarize":
        threshold = (1.0 - magnitude).view(-1, 1, 1, 1)
        return torch.where(x >= threshold, 1.0 - x, x)
    if name == "colour":
        return ops.adjust_saturation(x, factor)
    if name == "contrast":
        return ops.adjust_contrast(x, factor)
    if name == "brightness":
        return ops.adjust_brightness(x, factor)
    if name == "sharpness":
        blurred = ops.gaussian_blur(x, torch.ones_like(magnitude), 3)
        return ops.affine_jitter(x, factor, blurred)
    if name == "posterize":
        levels = torch.pow(2.0, (8 - torch.floor(magnitude * 4.999)).view(-1, 1, 1, 1))  # 8 .. 4 bits
        return torch.floor(x * (levels - 1) + 0.5) / (levels - 1)
    raise ValueError(name)


def _cutout(x: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """One square of side ``hole[:, 2]`` (fraction of the side) at centre ``hole[:, :2]``, set to grey."""
    if not x.shape[0]:
        return x
    size_y, size_x = x.shape[-2:]
    ys = (torch.arange(size_y, device=x.device, dtype=torch.float32) + 0.5) / size_y
    xs = (torch.arange(size_x, device=x.device, dtype=torch.float32) + 0.5) / size_x
    half = (hole[:, 2] / 2).view(-1, 1, 1)
    inside_y = (ys.view(1, -1, 1) - hole[:, 0].view(-1, 1, 1)).abs() <= half
    inside_x = (xs.view(1, 1, -1) - hole[:, 1].view(-1, 1, 1)).abs() <= half
    return torch.where((inside_y & inside_x).unsqueeze(1), torch.full_like(x, 0.5), x)
