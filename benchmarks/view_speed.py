"""Time of the batched views, before and after the colour jitter applied each operation once.

    python benchmarks/view_speed.py                       # 32 px (batch 256) and 224 px (batch 64), CPU
    python benchmarks/view_speed.py --device cuda --batch-224 256
    python benchmarks/view_speed.py --repeats 1 --batch-32 16 --batch-224 2      # smoke

"before" is the previous jitter, kept here (and used by the tests as the reference the new one must equal):
with a random order per sample it ran every one of the four operations at each of the four positions, an
identity where the sample's order put another: 16 full-batch passes and 4 RGB/HSV round trips per view.
"after" is ``ImageAugmenter._jitter``: each operation once, 6 blends and 1 round trip. The views are CC's
for CIFAR-10 (crop, flip, jitter s=0.5 with p 0.8, grey 20%; blur at 224 px as CC's ImageNet presets).
"""
from __future__ import annotations

import argparse
import time

import torch

import contraclust.augment.ops as ops
from contraclust.augment import ImageAugmenter
from contraclust.config import AugmentConfig


def jitter_in_sixteen_passes(cfg: AugmentConfig, x: torch.Tensor, params) -> torch.Tensor:
    """The previous implementation: every operation at each of the four positions, identity elsewhere."""
    identity = (1.0, 1.0, 1.0, 0.0)
    adjust = (ops.adjust_brightness, ops.adjust_contrast, ops.adjust_saturation, ops.adjust_hue)
    for position in range(4) if cfg.jitter_order == "random" else [0]:
        for k in [k for k in range(4) if k != 3 or cfg.hue]:
            factor = params.jitter_factors[:, k]
            if cfg.jitter_order == "random":
                factor = torch.where(params.jitter_order[:, position] == k, factor, identity[k])
            x = adjust[k](x, factor)
    return x


def seconds(fn, repeats: int, device: torch.device) -> float:
    fn()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    began = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - began) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-32", type=int, default=256)
    parser.add_argument("--batch-224", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, {torch.get_num_threads()} threads; ms per view of the batch (mean of {args.repeats})")
    print("| px | batch | jitter before | jitter after | speed-up | whole view before | whole view after | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for size, batch in ((32, args.batch_32), (224, args.batch_224)):
        cfg = AugmentConfig(size=size, jitter_strength=0.5, blur_p=0.5 if size >= 96 else 0.0)
        aug = ImageAugmenter(cfg)
        g = torch.Generator(device=device).manual_seed(0)
        images = torch.randint(0, 256, (batch, 3, 32 if size == 32 else 256, 32 if size == 32 else 256),
                               generator=g, device=device, dtype=torch.uint8)
        params = aug.draw(images, g)
        warped = ops.warp(images.float() / 255, params.theta, size)

        before = ImageAugmenter(cfg)  # the same views with the previous jitter
        before._jitter = lambda x, p: jitter_in_sixteen_passes(cfg, x, p)

        jitter = [seconds(lambda: jitter_in_sixteen_passes(cfg, warped.clone(), params), args.repeats, device),
                  seconds(lambda: aug._jitter(warped.clone(), params), args.repeats, device)]
        whole = [seconds(lambda: before.apply(images, params), args.repeats, device),
                 seconds(lambda: aug.apply(images, params), args.repeats, device)]
        print(f"| {size} | {batch} | {1e3 * jitter[0]:.1f} | {1e3 * jitter[1]:.1f} | {jitter[0] / jitter[1]:.2f}x | "
              f"{1e3 * whole[0]:.1f} | {1e3 * whole[1]:.1f} | {whole[0] / whole[1]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
