"""Clustering feature vectors: each method (mean ± std over seeds) beside k-means, a Gaussian mixture and
spectral clustering from scikit-learn on the same vectors, with wall time per run.

    python benchmarks/vectors.py                                # digits (1797 x 64) and MNIST-5k (5000 x 784)
    python benchmarks/vectors.py --data digits --seeds 0 --budget 10s --methods cc   # a quick look
    python benchmarks/vectors.py --data my_embeddings.npy -k 20                       # your own (N, D) array

The methods run through ``ContrastiveClustering`` with the ``auto`` recipe for vectors (an MLP on
standardised features, noise, feature dropout and nearest-neighbour positives) within ``--budget`` each;
the baselines get the same vectors as given (k-means on standardised digits does worse than on raw ones).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from common import METRICS
from contraclust import ContrastiveClustering
from contraclust.data import load_data, read_mnist5k
from contraclust.metrics import evaluate_clustering


NAMES = {"cc": "CC", "c3": "C3 (CC stage, then C3)", "drc": "DRC", "clc": "CLC"}
TITLES = {"digits": "scikit-learn digits", "mnist5k": "MNIST-5k pixels"}


def vector_sets(names: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Name -> (X, y): ``digits`` (scikit-learn's 8x8 digits, 64 values 0..16), ``mnist5k`` (784 pixels),
    or any .npy/.npz/.csv path with labels."""
    sets = {}
    for name in names:
        if name == "digits":
            from sklearn.datasets import load_digits

            bunch = load_digits()
            sets[name] = bunch.data.astype(np.float32), bunch.target
        elif name == "mnist5k":
            data = read_mnist5k()
            sets[name] = data.images.reshape(len(data), -1).float().numpy(), data.labels
        else:
            data = load_data(name)
            if data.labels is None:
                raise SystemExit(f"{name} has no labels to score against")
            sets[name] = data.tensor.reshape(len(data), -1).float().numpy(), data.labels
    return sets


def baselines(X: np.ndarray, k: int, seed: int) -> dict[str, tuple[np.ndarray, float]]:
    from sklearn.cluster import KMeans, SpectralClustering
    from sklearn.mixture import GaussianMixture
    Z = X.astype(np.float64)
    runs = {}
    for name, make in (("k-means (n_init=10)", lambda: KMeans(k, n_init=10, random_state=seed)),
                       ("Gaussian mixture (diagonal)", lambda: GaussianMixture(k, covariance_type="diag", reg_covar=1e-3,
                                                                            random_state=seed)),
                       ("spectral clustering (10-NN graph)", lambda: SpectralClustering(k, affinity="nearest_neighbors",
                                                                             n_neighbors=10, random_state=seed))):
        began = time.perf_counter()
        labels = make().fit_predict(Z)
        runs[name] = labels, time.perf_counter() - began
    return runs


def row(name: str, results: list[dict[str, float]]) -> str:
    cells = []
    for key in (*METRICS, "seconds"):
        values = np.array([r[key] for r in results])
        spread = values.std(ddof=1) if len(values) > 1 else 0.0
        cells.append(f"{values.mean():.3f} ± {spread:.3f}" if key != "seconds" else f"{values.mean():.1f}")
    return f"| {name} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["digits", "mnist5k"])
    parser.add_argument("--methods", nargs="+", default=["cc", "c3", "drc", "clc"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--budget", default="40s", help="time budget of each method's run (default 40s)")
    parser.add_argument("-k", "--clusters", type=int, default=None, help="default: the number of classes")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    for name, (X, y) in vector_sets(args.data).items():
        k = args.clusters or len(np.unique(y))
        print(f"\n{name}: K = {k}, seeds {args.seeds}, budget {args.budget} per run\n")
        print(f"| {TITLES.get(name, name)} ({X.shape[0]} x {X.shape[1]}) | NMI | ACC | ARI | s / run |\n|---|---|---|---|---|")
        for method in args.methods:
            results = []
            for seed in args.seeds:
                began = time.perf_counter()
                model = ContrastiveClustering(n_clusters=k, method=method, budget=args.budget, random_state=seed,
                                              device="cpu", progress=False, overrides=args.overrides).fit(X, y)
                results.append({**model.metrics_, "seconds": time.perf_counter() - began})
            print(row(NAMES.get(method, method), results), flush=True)
        per_baseline: dict[str, list[dict[str, float]]] = {}
        for seed in args.seeds:
            for baseline, (labels, seconds) in baselines(X, k, seed).items():
                per_baseline.setdefault(baseline, []).append({**evaluate_clustering(y, labels), "seconds": seconds})
        for baseline, results in per_baseline.items():
            print(row(baseline, results), flush=True)


if __name__ == "__main__":
    main()
