"""The same CC run twice, once on the library's batched views and once on a per-sample PIL pipeline, on
real photos (CIFAR-10), over seeds: the two must agree within the seeds' spread.

    python benchmarks/view_parity.py --data ../shared/datasets/cifar10 --limit 10000 --epochs 15 --seeds 0 1 2
    python benchmarks/view_parity.py --data ../shared/datasets/cifar10 --limit 200 --epochs 1 --seeds 0 --set model.width=8  # smoke

Both arms train the same configuration: CC (one cluster head, as published) with the auto recipe's network
for 32 px colour images on a CPU (the small CNN), Adam 1e-3 with cosine decay, batch 128, for ``--epochs``
epochs on a stratified ``--limit`` subset, with CC's official views for CIFAR-10 at 32 px (RandomResizedCrop
of scale 0.08-1, flip, ColorJitter s=0.5 in random order with p 0.8, grayscale 20%, no blur). Only the views
differ: ``batched`` makes them on the device (``contraclust.augment``), ``per-sample`` with
``reference_pipeline.official_style_transform`` one image at a time (torchvision's transforms where it
imports, else the same steps written with Pillow). The read-out (the whole image, CC's test transform) is
the same. Prints NMI/ACC/ARI mean ± std per arm and k-means on the pixels.

Two more arms split the difference between the two in halves (``--arms``): ``pil-ops`` applies the library's
drawn parameters with Pillow, one image at a time (``reference_pipeline.apply_with_pil``), and
``python-params`` applies parameters drawn as torchvision draws them with the library's batched ops
(``reference_pipeline.torchvision_style_params``). ``--compare-ops N`` first makes N views both ways from
the same parameters and prints how far apart their pixels are.
"""
from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
import torch

from common import format_row, kmeans_on_raw, table_header
from contraclust.data.benchmarks import read_cifar_benchmark
from contraclust.presets import build_config, get_preset
from contraclust.recipes.auto import DataProfile
from contraclust.training import Trainer
from reference_pipeline import apply_with_pil, official_style_transform, torchvision_style_params

ARMS = ("batched", "per-sample", "pil-ops", "python-params")


class ArmViews:
    """The trainer's augmenter for one arm. ``per-sample``: ``draw`` draws nothing (the PIL pipeline draws
    from Python's ``random``, seeded per run) and ``apply`` transforms each image; ``pil-ops``: the
    library's parameters, applied with Pillow; ``python-params``: torchvision's draws, the library's ops."""

    def __init__(self, batched, cfg, arm: str):
        self.batched, self.cfg, self.arm, self.transform = batched, cfg, arm, official_style_transform(cfg)

    def draw(self, images, generator=None):
        if self.arm == "per-sample":
            return None
        if self.arm == "python-params":
            return torchvision_style_params(images.shape[0], self.cfg, *images.shape[2:])
        return self.batched.draw(images, generator)

    def apply(self, images: torch.Tensor, params=None) -> torch.Tensor:
        from PIL import Image

        if self.arm == "python-params":
            return self.batched.apply(images, params)
        if self.arm == "pil-ops":
            return apply_with_pil(images.cpu(), params, self.cfg.size).to(images.device)
        arrays = images.permute(0, 2, 3, 1).cpu().numpy()
        views = [self.transform(Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)) for a in arrays]
        return torch.stack(views).to(images.device)

    def eval_view(self, images: torch.Tensor) -> torch.Tensor:
        return self.batched.eval_view(images)


def compare_ops(data, cfg, n: int) -> None:
    """Views of the same images and parameters, batched and with Pillow: how far apart their pixels are."""
    from contraclust.augment import ImageAugmenter

    augmenter, images = ImageAugmenter(cfg), data.images[:n]
    n = len(images)
    random.seed(0)
    params = torchvision_style_params(n, cfg, *images.shape[2:])  # whole-pixel boxes, which both can make
    gap = (augmenter.apply(images, params) - apply_with_pil(images, params, cfg.size)).abs()
    still = params.jitter_factors.eq(torch.tensor([1.0, 1.0, 1.0, 0.0])).all(dim=1)
    print(f"same parameters, {n} views: |batched - PIL| mean {gap.mean():.4f}, 99th percentile "
          f"{gap.flatten().kthvalue(int(0.99 * gap.numel())).values:.4f}, max {gap.max():.3f} (in [0, 1]; one 8-bit "
          f"step is {1 / 255:.4f}); crop and flip only: mean {gap[still].mean():.4f}")


def parity_config(data, args, seed: int):
    config = build_config("cc", None, profile=DataProfile.of(data), device="cpu", n_clusters=10, epochs=args.epochs,
                          seed=seed, overrides=["train.progress=false", "train.batch_size=128",
                                                "method.cluster_heads=1", "train.eval_every=0"] + args.overrides)
    views = get_preset("cc-paper-cifar10").augment  # CC's official views for CIFAR-10
    views.size, views.blur_p = config.augment.size, 0.0  # at the images' 32 px; CC uses no blur on CIFAR
    config.augment = views
    return config


def train(data, config, arm: str, seed: int) -> dict:
    random.seed(seed)
    np.random.seed(seed)
    trainer = Trainer(config, data, None, "cpu")
    if arm != "batched":
        trainer.augment = ArmViews(trainer.augment, config.augment, arm)
        trainer.apply_views = trainer.augment.apply
    began = time.perf_counter()
    result = trainer.fit()
    return {**result.metrics, "wall_seconds": time.perf_counter() - began}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="CIFAR-10 (the JPEG class folders or the pickle folder)")
    parser.add_argument("--limit", type=int, default=10000, help="a stratified subset of this many images")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS[:2]))
    parser.add_argument("--compare-ops", type=int, default=0, metavar="N", help="first compare N views' pixels")
    args = parser.parse_args()
    data = read_cifar_benchmark(Path(args.data), limit=args.limit or None, progress=False).samples
    if args.compare_ops:
        compare_ops(data, parity_config(data, args, 0).augment, args.compare_ops)
    runs = {arm: [] for arm in args.arms}
    for seed in args.seeds:
        for arm in runs:
            runs[arm].append(train(data, parity_config(data, args, seed), arm, seed))
            print(f"seed {seed} {arm}: NMI {runs[arm][-1]['nmi']:.4f}  ACC {runs[arm][-1]['acc']:.4f}  "
                  f"{runs[arm][-1]['wall_seconds']:.0f} s", flush=True)
    print(f"\n{data.name}: {len(data)} images, CC, {args.epochs} epochs, seeds {args.seeds}\n")
    print(table_header(["wall s / run"]).replace("| method |", "| views |"))
    for arm, results in runs.items():
        print(format_row(arm, results, f" {np.mean([r['wall_seconds'] for r in results]):.0f} |"))
    kmeans = kmeans_on_raw(data, args.seeds)
    print(format_row("k-means on raw pixels", kmeans, f" {np.mean([r['wall_seconds'] for r in kmeans]):.1f} |"))


if __name__ == "__main__":
    main()
