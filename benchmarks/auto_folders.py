"""``contraclust fit --data X -k K`` with no preset (the auto recipe, its default budget) on data a user
might bring, beside k-means on the raw pixels of the same images.

    python benchmarks/auto_folders.py                        # all three sets, default budgets
    python benchmarks/auto_folders.py --sets npy --budget 20s --limit 400   # a quick smoke run

The sets, written into a temporary folder first:
  photos  5 CIFAR-10 classes (airplane, automobile, bird, cat, deer), 1,000 images each, upscaled to 64 px
          and saved as JPEG class folders (from ../shared/datasets/cifar10);
  digits  MNIST-5k as one flat folder of 28 px grey PNGs (no labels in the folder: the script keeps them);
  npy     the same 5 CIFAR classes as one (N, 32, 32, 3) uint8 array in an .npy file (no labels).
Each fit is its own process; its wall time is the whole process. Metrics are computed from the run's
assignments.csv against the labels the script knows; k-means (n_init=10) runs on the same images as the
reader loads them, scaled to [0, 1].
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from contraclust.data import load_data, read_mnist5k
from contraclust.metrics import evaluate_clustering
from common import kmeans_on_raw

DEFAULT_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10"
PHOTO_CLASSES = ["airplane", "automobile", "bird", "cat", "deer"]


def cifar_subset(cifar: Path, per_class: int, classes: list[str] = PHOTO_CLASSES) -> tuple[list[np.ndarray], np.ndarray]:
    images, labels = [], []
    for label, name in enumerate(sorted(classes)):
        files = sorted((cifar / "train" / name).glob("*.jpg"))[:per_class]
        if len(files) < per_class:
            raise SystemExit(f"{cifar}/train/{name} holds {len(files)} images, {per_class} wanted")
        for file in files:
            with Image.open(file) as img:
                images.append(np.asarray(img.convert("RGB")))
            labels.append(label)
    return images, np.array(labels)


def write_photos(root: Path, cifar: Path, per_class: int,
                 classes: list[str] = PHOTO_CLASSES) -> tuple[Path, np.ndarray]:
    images, labels = cifar_subset(cifar, per_class, classes)
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / "photos" / sorted(classes)[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).resize((64, 64), Image.BICUBIC).save(folder / f"{i:05d}.jpg", quality=90)
    return root / "photos", labels  # class folders are read in sorted order: labels stay in this order


def write_digits(root: Path, limit: int) -> tuple[Path, np.ndarray]:
    data = read_mnist5k()
    rows = np.arange(0, 5000, 5000 // limit)[:limit] if limit < 5000 else np.arange(5000)
    folder = root / "digits"
    folder.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(rows):
        Image.fromarray(data.images[row, 0].numpy(), mode="L").save(folder / f"{i:05d}.png")
    return folder, data.labels[rows]


def write_npy(root: Path, cifar: Path, per_class: int) -> tuple[Path, np.ndarray]:
    images, labels = cifar_subset(cifar, per_class)
    path = root / "cifar5.npy"
    np.save(path, np.stack(images).astype(np.uint8))
    return path, labels


def fit(data: Path, k: int, out: Path, budget: str | None, seed: int,
        extra: list[str] = ()) -> tuple[np.ndarray, float, list[str]]:
    """``contraclust fit`` with the auto recipe (plus ``extra`` arguments) as its own process: the run's
    clusters, its wall time and the recipe's lines of its log."""
    cmd = [sys.executable, "-m", "contraclust", "fit", "--data", str(data), "-k", str(k), "--out", str(out),
           "--seed", str(seed), "--no-progress"] + (["--budget", budget] if budget else []) + list(extra)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    with open(out / "assignments.csv") as handle:
        clusters = np.array([int(row["cluster"]) for row in csv.DictReader(handle)])
    notes = [line for line in done.stderr.splitlines() if line.startswith(("time budget", "auto recipe", "  => "))]
    return clusters, wall, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["photos", "digits", "npy"], choices=["photos", "digits", "npy"])
    parser.add_argument("--cifar", type=Path, default=DEFAULT_CIFAR)
    parser.add_argument("--limit", type=int, default=5000, help="images per set (default: 5000)")
    parser.add_argument("--budget", default=None, help="default: the auto recipe's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="contraclust-auto-"))
    per_class = args.limit // len(PHOTO_CLASSES)
    writers = {"photos": lambda: write_photos(workdir / "data", args.cifar, per_class),
               "digits": lambda: write_digits(workdir / "data", args.limit),
               "npy": lambda: write_npy(workdir / "data", args.cifar, per_class)}
    rows = []
    for name in args.sets:
        path, labels = writers[name]()
        k = len(np.unique(labels))
        clusters, wall, notes = fit(path, k, workdir / f"run-{name}", args.budget, args.seed)
        measured = evaluate_clustering(labels, clusters)
        data = load_data(path, progress=False)
        data.labels = labels
        kmeans = kmeans_on_raw(data, [args.seed])[0]
        shape = "x".join(map(str, data.sample_shape))
        rows.append((name, len(labels), shape, k, measured, wall, kmeans))
        print(f"{name}: {path} ({len(labels)} samples of {shape}, K={k})")
        for note in notes:
            print(f"    {note}")
        print(f"    contraclust fit: NMI {measured['nmi']:.4f} ACC {measured['acc']:.4f} ARI {measured['ari']:.4f} "
              f"in {wall:.0f} s; k-means on raw pixels: NMI {kmeans['nmi']:.4f} ACC {kmeans['acc']:.4f} "
              f"ARI {kmeans['ari']:.4f}", flush=True)
    print("\n| data | N | sample | K | fit NMI | fit ACC | fit ARI | fit wall s | k-means NMI | k-means ACC | "
          "k-means ARI |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for name, n, shape, k, m, wall, km in rows:
        print(f"| {name} | {n} | {shape} | {k} | {m['nmi']:.3f} | {m['acc']:.3f} | {m['ari']:.3f} | {wall:.0f} | "
              f"{km['nmi']:.3f} | {km['acc']:.3f} | {km['ari']:.3f} |")
    print(f"\nseed {args.seed}; cores: {os.cpu_count()}; work folder: {workdir}")
    (workdir / "results.json").write_text(json.dumps([
        {"data": r[0], "n": r[1], "k": r[3], "fit": r[4], "fit_seconds": r[5], "kmeans": r[6]} for r in rows]))


if __name__ == "__main__":
    main()
