"""Batched image operations with per-sample parameters, on float images in [0, 1], shape (N, C, H, W).

Every function is a pure tensor function, so it runs unchanged on CPU and CUDA and a whole batch
is transformed in a handful of kernel launches. Parameters are drawn elsewhere (``pipeline``).
An identity parameter (factor 1, hue shift 0, probability mask False) leaves a sample unchanged.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_GREY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601-2 luma, as PIL and torchvision use


def sample_crop_boxes(n: int, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float],
                      generator: torch.Generator | None, device: torch.device, attempts: int = 10) -> torch.Tensor:
    """RandomResizedCrop boxes (top, left, h, w) in pixels, drawn as torchvision does, for ``n`` samples.

    Up to ``attempts`` draws of area ~ U(scale) * H * W and log-ratio ~ U(log ratio); the first draw
    that fits wins; samples with none fall back to the largest centred crop with a ratio in range.
    """
    area = height * width
    u = torch.rand(n, attempts, 2, generator=generator, device=device)
    target_area = area * (scale[0] + (scale[1] - scale[0]) * u[..., 0])
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[..., 1]
    aspect = torch.exp(log_r)
    w = torch.sqrt(target_area * aspect)
    h = torch.sqrt(target_area / aspect)
    fits = (w <= width) & (h <= height) & (w > 0) & (h > 0)
    first = torch.argmax(fits.int(), dim=1)
    has_fit = fits.any(dim=1)
    rows = torch.arange(n, device=device)
    w, h = w[rows, first], h[rows, first]
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fb_w, fb_h = float(width), width / ratio[0]
    elif in_ratio > ratio[1]:
        fb_w, fb_h = height * ratio[1], float(height)
    else:
        fb_w, fb_h = float(width), float(height)
    w = torch.where(has_fit, w, torch.full_like(w, fb_w))
    h = torch.where(has_fit, h, torch.full_like(h, fb_h))
    offsets = torch.rand(n, 2, generator=generator, device=device)
    top = torch.where(has_fit, offsets[:, 0] * (height - h), (height - h) / 2)
    left = torch.where(has_fit, offsets[:, 1] * (width - w), (width - w) / 2)
    return torch.stack([top, left, h, w], dim=1)


def affine_matrices(boxes: torch.Tensor, flip: torch.Tensor, rotate: torch.Tensor, shear: torch.Tensor,
                    translate: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """2x3 sampling matrices (normalised coordinates) for crop, horizontal flip, rotation, shear and shift.

    Output pixel coordinates u in [-1, 1]^2 map to input coordinates ``A @ u + t``: the crop box gives
    the scale and centre, flip negates the x scale, rotation (radians) and shear (radians, along x)
    act about the crop centre, and ``translate`` shifts by a fraction of the image.
    """
    top, left, h, w = boxes.unbind(1)
    scale_x = (w / width) * torch.where(flip, -1.0, 1.0)
    scale_y = h / height
    centre_x = (left + w / 2) / width * 2 - 1 + translate[:, 0] * 2
    centre_y = (top + h / 2) / height * 2 - 1 + translate[:, 1] * 2
    cos, sin, tan_shear = torch.cos(rotate), torch.sin(rotate), torch.tan(shear)
    # A = R(rotate) @ Shear_x @ diag(scale_x, scale_y)
    a11 = cos * scale_x
    a12 = (cos * tan_shear - sin) * scale_y
    a21 = sin * scale_x
    a22 = (sin * tan_shear + cos) * scale_y
    row1 = torch.stack([a11, a12, centre_x], dim=1)
    row2 = torch.stack([a21, a22, centre_y], dim=1)
    return torch.stack([row1, row2], dim=1)


def warp(images: torch.Tensor, theta: torch.Tensor, size: int) -> torch.Tensor:
    """Resample each image through its 2x3 matrix to ``size`` x ``size`` (bilinear).

    Inside the image the edge pixels are repeated (``border``), as PIL's crop-and-resize and so
    torchvision's RandomResizedCrop do: a crop reaching the image's edge keeps its edge values (zero
    padding would blend black into them, a dark frame). Only output pixels whose sampling point lies
    outside the image, space that a rotation, shear or shift uncovers, are filled with zeros."""
    grid = F.affine_grid(theta.to(images.dtype), [images.shape[0], images.shape[1], size, size], align_corners=False)
    warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    inside = (grid.abs() <= 1.0).all(dim=-1, keepdim=True).movedim(-1, 1)  # (N, 1, size, size)
    return warped * inside.to(warped.dtype)


def affine_jitter(images: torch.Tensor, factor: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``factor * x + (1 - factor) * reference``, clamped to [0, 1]: brightness (reference 0), contrast
    (the mean grey level) and saturation (the grey image) are each this blend, as in PIL's ImageEnhance."""
    f = _per_sample(factor)
    return (images * f + reference * (1 - f)).clamp_(0, 1)


def to_grey(images: torch.Tensor) -> torch.Tensor:
    """Luma of RGB images (N, 1, H, W); grey images are returned as they are."""
    if images.shape[1] == 1:
        return images
    r, g, b = images.unbind(1)
    return (_GREY_WEIGHTS[0] * r + _GREY_WEIGHTS[1] * g + _GREY_WEIGHTS[2] * b).unsqueeze(1)


def _per_sample(values: torch.Tensor) -> torch.Tensor:
    return values.view(-1, 1, 1, 1).to(torch.float32)


def adjust_brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (images * _per_sample(factor)).clamp_(0, 1)


def adjust_contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    mean = to_grey(images).mean(dim=(1, 2, 3), keepdim=True)
    return ((images - mean) * _per_sample(factor) + mean).clamp_(0, 1)


def adjust_saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    if images.shape[1] == 1:
        return images
    grey = to_grey(images)
    return ((images - grey) * _per_sample(factor) + grey).clamp_(0, 1)


def adjust_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate hue by ``shift`` (fraction of a turn, in [-0.5, 0.5]) through HSV, as torchvision does."""
    if images.shape[1] == 1:
        return images
    hue, sat, val = rgb_to_hsv(images).unbind(1)
    hue = torch.remainder(hue + shift.view(-1, 1, 1), 1.0)
    return hsv_to_rgb(torch.stack([hue, sat, val], dim=1))


def rgb_to_hsv(images: torch.Tensor) -> torch.Tensor:
    r, g, b = images.unbind(1)
    maxc, _ = images.max(dim=1)
    minc, _ = images.min(dim=1)
    delta = maxc - minc
    sat = delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc))
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    hue = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    hue = torch.where(delta > 0, torch.remainder(hue / 6.0, 1.0), torch.zeros_like(hue))
    return torch.stack([hue, sat, maxc], dim=1)


def hsv_to_rgb(images: torch.Tensor) -> torch.Tensor:
    """HSV back to RGB in closed form: channel c = V - V S clamp(min(k, 4 - k), 0, 1) with
    k = (n_c + 6 H) mod 6 and n = 5, 3, 1 for R, G, B (the six-sector table of torchvision, without
    building all six candidates per pixel)."""
    hue, sat, val = images.unbind(1)
    chroma = val * sat
    hue6 = hue * 6.0
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(hue6 + n, 6.0)
        channels.append(val - chroma * torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0))
    return torch.stack(channels, dim=1)


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Separable Gaussian blur with a per-sample sigma, reflect-101 borders (cv2's default)."""
    n, c, h, w = images.shape
    half = kernel_size // 2
    offsets = torch.arange(-half, half + 1, device=images.device, dtype=torch.float32)
    weights = torch.exp(-(offsets.view(1, -1) ** 2) / (2 * sigma.view(-1, 1).float() ** 2))
    weights = (weights / weights.sum(dim=1, keepdim=True)).to(images.dtype)
    kernels = weights.repeat_interleave(c, dim=0)  # (N*C, k)
    pad_h, pad_w = min(half, h - 1), min(half, w - 1)
    x = images.reshape(1, n * c, h, w)
    x = F.pad(x, (pad_w, pad_w, 0, 0), mode="reflect")
    x = F.conv2d(x, kernels[:, None, None, half - pad_w: half + pad_w + 1], groups=n * c)
    x = F.pad(x, (0, 0, pad_h, pad_h), mode="reflect")
    x = F.conv2d(x, kernels[:, None, half - pad_h: half + pad_h + 1, None], groups=n * c)
    return x.reshape(n, c, h, w)


def select(mask: torch.Tensor, changed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Per-sample choice between two batches of images."""
    return torch.where(mask.view(-1, *([1] * (changed.ndim - 1))), changed, original)
