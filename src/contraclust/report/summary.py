"""Numbers for benchmark tables: the k-means baseline, mean and spread over seeds, peak memory."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

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


def peak_host_memory_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def peak_device_memory_mb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def fit_in_subprocess(args: list[str], out: Path) -> dict:
    """Run ``contraclust fit ARGS --out OUT`` in a fresh process (so its peak memory is its own) and
    return its metrics.json; a failed run raises with the process's last lines."""
    cmd = [sys.executable, "-m", "contraclust", "fit", *args, "--out", str(out), "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return json.loads((out / "metrics.json").read_text())
