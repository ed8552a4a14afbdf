"""The way CC's official code feeds its model, for side-by-side speed comparisons: per-image PIL
transforms in DataLoader workers, then a host-to-device copy of each batch.

Uses torchvision's transforms when torchvision imports; otherwise an equivalent written with Pillow
(same operations and parameter ranges, per image), so the comparison also runs where torchvision is absent.
"""
from __future__ import annotations

import math
import random

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from contraclust.config import AugmentConfig


def official_style_transform(cfg: AugmentConfig):
    """One view of a PIL image -> float tensor (C, size, size) in [0, 1], as CC's ``Transforms``."""
    s = cfg.jitter_strength
    try:
        import torchvision.transforms as T

        steps = [T.RandomResizedCrop(cfg.size, scale=cfg.crop_scale, ratio=cfg.crop_ratio),
                 T.RandomHorizontalFlip(cfg.flip_p),
                 T.RandomApply([T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=cfg.jitter_p),
                 T.RandomGrayscale(cfg.grayscale_p)]
        if cfg.blur_p > 0:
            steps.append(T.RandomApply([T.GaussianBlur(23, cfg.blur_sigma)], p=cfg.blur_p))
        return T.Compose(steps + [T.ToTensor()])
    except Exception:
        return _PILTransform(cfg)


class _PILTransform:
    def __init__(self, cfg: AugmentConfig):
        self.cfg = cfg

    def __call__(self, img: Image.Image) -> torch.Tensor:
        cfg, s = self.cfg, self.cfg.jitter_strength
        img = _random_resized_crop(img, cfg)
        if random.random() < cfg.flip_p:
            img = ImageOps.mirror(img)
        if random.random() < cfg.jitter_p:
            ops = [lambda im: ImageEnhance.Brightness(im).enhance(random.uniform(max(0, 1 - 0.8 * s), 1 + 0.8 * s)),
                   lambda im: ImageEnhance.Contrast(im).enhance(random.uniform(max(0, 1 - 0.8 * s), 1 + 0.8 * s)),
                   lambda im: ImageEnhance.Color(im).enhance(random.uniform(max(0, 1 - 0.8 * s), 1 + 0.8 * s)),
                   lambda im: _shift_hue(im, random.uniform(-0.2 * s, 0.2 * s))]
            random.shuffle(ops)
            for op in ops:
                img = op(img)
        if random.random() < cfg.grayscale_p:
            img = img.convert("L").convert(img.mode)
        if random.random() < cfg.blur_p:
            img = img.filter(ImageFilter.GaussianBlur(random.uniform(*cfg.blur_sigma)))
        arr = np.asarray(img, dtype=np.float32) / 255.0
        return torch.from_numpy(arr if arr.ndim == 3 else arr[..., None]).permute(2, 0, 1)


def _random_resized_crop(img: Image.Image, cfg: AugmentConfig) -> Image.Image:
    """torchvision's RandomResizedCrop step by step (``_crop_box``), then PIL's crop and bilinear resize."""
    left, top, cw, ch = _crop_box(*img.size, cfg)
    return img.crop((left, top, left + cw, top + ch)).resize((cfg.size, cfg.size), Image.BILINEAR)


def _crop_box(w: int, h: int, cfg: AugmentConfig) -> tuple[int, int, int, int]:
    """(left, top, width, height) as torchvision draws them: up to 10 draws of an area and a log-uniform
    ratio, a box of whole pixels at a random whole-pixel offset, else the centred crop of the nearest ratio
    in range."""
    for _ in range(10):
        area = w * h * random.uniform(*cfg.crop_scale)
        ratio = math.exp(random.uniform(math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1])))
        cw, ch = int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))
        if 0 < cw <= w and 0 < ch <= h:
            top, left = random.randint(0, h - ch), random.randint(0, w - cw)
            break
    else:
        if w / h < cfg.crop_ratio[0]:
            cw, ch = w, int(round(w / cfg.crop_ratio[0]))
        elif w / h > cfg.crop_ratio[1]:
            cw, ch = int(round(h * cfg.crop_ratio[1])), h
        else:
            cw, ch = w, h
        top, left = (h - ch) // 2, (w - cw) // 2
    return left, top, cw, ch


def _shift_hue(img: Image.Image, shift: float) -> Image.Image:
    if img.mode != "RGB":
        return img
    hsv = np.array(img.convert("HSV"))
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(shift * 255)) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def torchvision_style_params(n: int, cfg: AugmentConfig, height: int, width: int):
    """The parameters of ``n`` views drawn from Python's ``random`` as torchvision draws them (whole-pixel
    crop boxes, a flip coin, the jitter coin, order and factors, the grayscale coin), packed as the library's
    ``ImageViewParams`` so that its batched ``apply`` (or ``apply_with_pil``) can make the views."""
    from contraclust.augment import ops
    from contraclust.augment.pipeline import ImageViewParams

    boxes, flips, factors, orders, greys = [], [], [], [], []
    s = cfg.jitter_strength
    for _ in range(n):
        box = _crop_box(width, height, cfg)
        boxes.append([box[1], box[0], box[3], box[2]])  # top, left, h, w
        flips.append(random.random() < cfg.flip_p)
        if random.random() < cfg.jitter_p:
            order = list(range(4))
            random.shuffle(order)
            factor = [random.uniform(max(0, 1 - 0.8 * s), 1 + 0.8 * s) for _ in range(3)]
            factor.append(random.uniform(-0.2 * s, 0.2 * s))
        else:
            order, factor = list(range(4)), [1.0, 1.0, 1.0, 0.0]
        orders.append(order)
        factors.append(factor)
        greys.append(random.random() < cfg.grayscale_p)
    box_tensor, zeros = torch.tensor(boxes, dtype=torch.float32), torch.zeros(n)
    theta = ops.affine_matrices(box_tensor, torch.tensor(flips), zeros, zeros, torch.zeros(n, 2), height, width)
    return ImageViewParams(theta=theta, crop_area=box_tensor[:, 2] * box_tensor[:, 3] / (height * width),
                           jitter_factors=torch.tensor(factors), jitter_order=torch.tensor(orders),
                           grey=torch.tensor(greys), blur=torch.zeros(n, dtype=torch.bool), blur_sigma=torch.ones(n))


def apply_with_pil(images: torch.Tensor, params, size: int) -> torch.Tensor:
    """The views of uint8 (N, 3, H, W) ``images`` for given ``ImageViewParams`` (crop, flip, jitter, grey;
    no rotation or blur), made one image at a time with Pillow as torchvision's PIL path makes them: the
    crop box rounded to whole pixels, 8-bit results after every step."""
    height, width = images.shape[2:]
    views = []
    for image, theta, factor, order, grey in zip(images, params.theta, params.jitter_factors, params.jitter_order,
                                                 params.grey):
        w = max(1, min(width, round(abs(float(theta[0, 0])) * width)))
        h = max(1, min(height, round(float(theta[1, 1]) * height)))
        left = min(max(0, round((float(theta[0, 2]) + 1) / 2 * width - w / 2)), width - w)
        top = min(max(0, round((float(theta[1, 2]) + 1) / 2 * height - h / 2)), height - h)
        img = Image.fromarray(image.permute(1, 2, 0).numpy()).crop((left, top, left + w, top + h))
        img = img.resize((size, size), Image.BILINEAR)
        if theta[0, 0] < 0:
            img = ImageOps.mirror(img)
        for op in order.tolist():
            f = float(factor[op])
            img = (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color)[op](img).enhance(f) \
                if op < 3 else _shift_hue(img, f)
        if grey:
            img = img.convert("L").convert("RGB")
        views.append(torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1))
    return torch.stack(views)


class TwoViewDataset(torch.utils.data.Dataset):
    """uint8 (N, C, H, W) images -> (view_a, view_b) through PIL, one image at a time."""

    def __init__(self, images: torch.Tensor, cfg: AugmentConfig):
        self.images = images.permute(0, 2, 3, 1).numpy()
        self.transform = official_style_transform(cfg)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        arr = self.images[index]
        img = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
        return self.transform(img), self.transform(img)


def reference_loader(images: torch.Tensor, cfg: AugmentConfig, batch_size: int, workers: int, pin: bool):
    return torch.utils.data.DataLoader(TwoViewDataset(images, cfg), batch_size=batch_size, shuffle=True,
                                       drop_last=True, num_workers=workers, pin_memory=pin,
                                       persistent_workers=workers > 0)
