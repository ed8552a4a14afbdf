"""The way CC's official code feeds its model, for side-by-side speed comparisons: per-image PIL
transforms in DataLoader workers, then a host-to-device copy of each batch.

Uses torchvision's transforms when torchvision imports; otherwise an equivalent written with Pillow
(same operations and parameter ranges, per image), so the comparison also runs where torchvision is absent.
"""
from __future__ import annotations

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
        w, h = img.size
        for _ in range(10):
            area = w * h * random.uniform(*cfg.crop_scale)
            ratio = np.exp(random.uniform(np.log(cfg.crop_ratio[0]), np.log(cfg.crop_ratio[1])))
            cw, ch = (area * ratio) ** 0.5, (area / ratio) ** 0.5
            if cw <= w and ch <= h:
                top, left = random.uniform(0, h - ch), random.uniform(0, w - cw)
                break
        else:
            top, left, ch, cw = 0.0, 0.0, float(h), float(w)
        img = img.resize((cfg.size, cfg.size), Image.BILINEAR, box=(left, top, left + cw, top + ch))
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


def _shift_hue(img: Image.Image, shift: float) -> Image.Image:
    if img.mode != "RGB":
        return img
    hsv = np.array(img.convert("HSV"))
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(shift * 255)) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


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
