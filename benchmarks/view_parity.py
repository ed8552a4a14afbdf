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
from reference_pipeline import official_style_transform


class PerSampleViews:
    """The trainer's augmenter replaced by a per-image PIL pipeline: ``draw`` draws nothing (the pipeline
    draws from Python's ``random``, seeded per run), ``apply`` transforms each image of the batch."""

    def __init__(self, batched, cfg):
        self.batched, self.transform = batched, official_style_transform(cfg)

    def draw(self, images, generator=None):
        return None

    def apply(self, images: torch.Tensor, params=None) -> torch.Tensor:
        from PIL import Image

        arrays = images.permute(0, 2, 3, 1).cpu().numpy()
        views = [self.transform(Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)) for a in arrays]
        return torch.stack(views).to(images.device)

    def eval_view(self, images: torch.Tensor) -> torch.Tensor:
        return self.batched.eval_view(images)


def parity_config(data, args, seed: int):
    config = build_config("cc", None, profile=DataProfile.of(data), device="cpu", n_clusters=10, epochs=args.epochs,
                          seed=seed, overrides=["train.progress=false", "train.batch_size=128",
                                                "method.cluster_heads=1", "train.eval_every=0"] + args.overrides)
    views = get_preset("cc-paper-cifar10").augment  # CC's official views for CIFAR-10
    views.size, views.blur_p = config.augment.size, 0.0  # at the images' 32 px; CC uses no blur on CIFAR
    config.augment = views
    return config


def train(data, config, per_sample: bool, seed: int) -> dict:
    random.seed(seed)
    np.random.seed(seed)
    trainer = Trainer(config, data, None, "cpu")
    if per_sample:
        trainer.augment = PerSampleViews(trainer.augment, config.augment)
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
    args = parser.parse_args()
    data = read_cifar_benchmark(Path(args.data), limit=args.limit or None, progress=False).samples
    runs = {"batched": [], "per-sample": []}
    for seed in args.seeds:
        for arm in runs:
            runs[arm].append(train(data, parity_config(data, args, seed), arm == "per-sample", seed))
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
