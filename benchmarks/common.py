"""What the benchmark scripts share: the k-means baseline, mean and spread over seeds, table rows, and
fits run in their own process. (Not part of the package: these serve the benchmark tables only.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from contraclust.data import Samples
from contraclust.metrics import evaluate_clustering

METRICS = ("nmi", "acc", "ari")


def kmeans_on_raw(data: Samples, seeds: list[int]) -> list[dict[str, float]]:
    """k-means (n_init=10) on raw pixels scaled to [0, 1] (or raw features), one result per seed."""
    from sklearn.cluster import KMeans

    x = data.tensor.reshape(len(data), -1).float().numpy()
    if data.is_image:
        x = x / 255.0
    k = len(np.unique(data.labels))
    results = []
    for seed in seeds:
        start = time.perf_counter()
        labels = KMeans(k, n_init=10, random_state=seed).fit_predict(x)
        results.append({**evaluate_clustering(data.labels, labels), "wall_seconds": time.perf_counter() - start})
    return results


def mean_spread(runs: list[dict[str, float]], key: str) -> tuple[float, float]:
    values = np.array([r[key] for r in runs], dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def format_row(name: str, runs: list[dict[str, float]], extra: str = "") -> str:
    cells = [f"{m[0]:.3f} ± {m[1]:.3f}" for m in (mean_spread(runs, k) for k in METRICS)]
    return f"| {name} | " + " | ".join(cells) + f" |{extra}"


def table_header(extra_columns: list[str] | None = None) -> str:
    extra = extra_columns or []
    head = "| method | NMI | ACC | ARI |" + "".join(f" {c} |" for c in extra)
    return head + "\n|" + "---|" * (4 + len(extra))


def fit_in_subprocess(args: list[str], out: Path) -> dict:
    """Run ``contraclust fit ARGS --out OUT`` in a fresh process (so its peak memory is its own), without
    the HTML report (the tables time training), and return its metrics.json; a failed run raises with the
    process's last lines."""
    cmd = [sys.executable, "-m", "contraclust", "fit", *args, "--out", str(out), "--no-progress", "--no-report"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return json.loads((out / "metrics.json").read_text())
