"""The spread over seeds behind the suite's quality floors (``tests/test_quality_floors.py``): the
default job (``auto``: a CC stage, then C3) in the two short configurations the floors test, per seed.

    python benchmarks/quality_floors.py                       # digits seeds 0-7, MNIST-5k seeds 0-5
    python benchmarks/quality_floors.py --digits-seeds 0 --mnist-seeds   # smoke: one digits run
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits

from contraclust import ContrastiveClustering, load_data

MNIST_OVERRIDES = ["model.width=16", "augment.size=20", "train.eval_every=0"]


def spread(name: str, seeds: list[int], fit) -> None:
    values = []
    for seed in seeds:
        began = time.perf_counter()
        values.append(fit(seed))
        print(f"{name} seed {seed}: NMI {values[-1]:.3f}  ({time.perf_counter() - began:.0f} s)", flush=True)
    if values:
        sd = np.std(values, ddof=1) if len(values) > 1 else 0.0
        print(f"{name}: NMI {', '.join(f'{v:.3f}' for v in values)} (mean {np.mean(values):.3f}, sd {sd:.3f}, "
              f"min {min(values):.3f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--digits-seeds", type=int, nargs="*", default=list(range(8)))
    parser.add_argument("--mnist-seeds", type=int, nargs="*", default=list(range(6)))
    args = parser.parse_args()
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    spread("digits vectors, 60 epochs", args.digits_seeds, lambda seed: ContrastiveClustering(
        n_clusters=10, epochs=60, random_state=seed, device="cpu", progress=False).fit(X, y).metrics_["nmi"])
    mnist = load_data("mnist5k") if args.mnist_seeds else None
    spread("MNIST-5k images, 14 epochs", args.mnist_seeds, lambda seed: ContrastiveClustering(
        n_clusters=10, epochs=14, random_state=seed, device="cpu", progress=False,
        overrides=MNIST_OVERRIDES).fit(mnist).metrics_["nmi"])


if __name__ == "__main__":
    main()
