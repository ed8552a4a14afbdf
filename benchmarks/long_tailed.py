"""Long-tailed MNIST-5k: NMI/ACC/ARI of each cluster-prior setting beside k-means.

    python benchmarks/long_tailed.py                                  # ratios 10 and 100, seeds 0 1
    python benchmarks/long_tailed.py --ratios 10 --seeds 0 --epochs 2 --set model.width=8   # smoke test

The data: MNIST-5k (500 per class) with class i of a seeded random class order keeping
round(500 * ratio ** (-i / 9)) images (drawn by a fixed seed), so the largest class has ``ratio`` times
the images of the smallest (ratio 10: 2,044 images; ratio 100: 1,242). Each setting trains CC with the
``mnist5k-cpu`` network and views for ``--epochs`` epochs (batch 64) with ``--cluster-prior`` as given;
the last columns are the median over seeds of the largest over the smallest predicted cluster (inf: a
cluster left empty) and the wall time per run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import format_row, kmeans_on_raw, table_header  # noqa: E402

from contraclust.data import ImageSet, read_mnist5k  # noqa: E402

SETTINGS = [("uniform", None), ("none", None), ("estimated", None), ("uniform", 0.2)]


def long_tailed(ratio: float, seed: int = 0) -> ImageSet:
    """MNIST-5k with class sizes falling geometrically from 500 to 500 / ratio (fixed ``seed``)."""
    data = read_mnist5k()
    rng = np.random.default_rng(seed)
    order = rng.permutation(10)
    keep = []
    for rank, digit in enumerate(order):
        count = int(round(500 * ratio ** (-rank / 9)))
        keep.append(rng.choice(np.flatnonzero(data.labels == digit), count, replace=False))
    rows = np.sort(np.concatenate(keep))
    return ImageSet(data.images[rows].clone(), data.labels[rows], f"mnist5k-lt{ratio:g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratios", type=float, nargs="+", default=[10, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    from contraclust.api import ContrastiveClustering

    for ratio in args.ratios:
        data = long_tailed(ratio)
        sizes = np.bincount(data.labels, minlength=10)
        print(f"\nMNIST-5k long-tailed, ratio {ratio:g}: {len(data)} images, class sizes {sorted(sizes.tolist(), reverse=True)}; "
              f"CC, mnist5k-cpu network and views, {args.epochs} epochs, seeds {args.seeds}")
        print(table_header(["largest/smallest cluster", "wall s / run"]))
        for prior, weight in SETTINGS:
            runs, spreads, walls = [], [], []
            for seed in args.seeds:
                began = time.perf_counter()
                model = ContrastiveClustering(10, method="cc", preset="mnist5k-cpu", epochs=args.epochs,
                                              random_state=seed, device="cpu", progress=False, cluster_prior=prior,
                                              prior_weight=weight, overrides=args.overrides)
                model.fit(data.images.numpy()[:, 0], data.labels)
                walls.append(time.perf_counter() - began)
                runs.append(model.metrics_)
                counts = np.bincount(model.labels_, minlength=10)
                spreads.append(counts.max() / counts.min() if counts.min() else float("inf"))
            name = f"cluster-prior {prior}" + (f", weight {weight:g}" if weight is not None else "")
            print(format_row(name, runs, f" {np.median(spreads):.1f} | {np.mean(walls):.0f} |"), flush=True)
        kmeans = kmeans_on_raw(data, args.seeds)
        print(format_row("k-means on raw pixels", kmeans, f" - | {np.mean([r['wall_seconds'] for r in kmeans]):.1f} |"))


if __name__ == "__main__":
    main()
