"""What a finished training run leaves in its folder besides its checkpoints: ``assignments.csv`` (where
each sample went, how sure, the runner-up clusters) and ``metrics.json`` (the scores and the run's facts)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch

from contraclust.files import open_whole, write_whole
from contraclust.metrics import degenerate_partition
from contraclust.training.budget import BudgetPlan
from contraclust.training.device import peak_device_memory_mb, peak_host_memory_mb

TOP_K = 3


def write_assignments(path: Path, clusters: np.ndarray, probabilities: np.ndarray,
                      labels: np.ndarray | None = None, paths: list[str] | None = None,
                      ids: list[str] | None = None, uncertain_below: float = 0.5) -> int:
    """One row per sample: ``index``, ``id`` (from a table's id column), ``path`` (when read from files),
    ``cluster``, ``confidence``, ``uncertain`` (1 when the confidence is below ``uncertain_below``), the
    next most likely clusters with their probabilities (``cluster_2``, ``probability_2``, ...),
    ``label``. Returns the number of uncertain samples."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    top = min(TOP_K, probabilities.shape[1])
    order = np.argsort(-probabilities, axis=1)[:, :top]
    header = ["index"] + (["id"] if ids else []) + (["path"] if paths else []) + ["cluster", "confidence", "uncertain"]
    header += [f"{name}_{rank}" for rank in range(2, top + 1) for name in ("cluster", "probability")]
    header += ["label"] if labels is not None else []
    confidence = probabilities.max(axis=1)
    uncertain = confidence < uncertain_below
    # names as the file system has them; the file is the old one or the whole new one, never a torn one
    with open_whole(path, "w", newline="", errors="surrogateescape") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i, cluster in enumerate(clusters):
            row = [i] + ([ids[i]] if ids else []) + ([paths[i]] if paths else [])
            row += [int(cluster), f"{confidence[i]:.6f}", int(uncertain[i])]
            for rank in range(1, top):
                row += [int(order[i, rank]), f"{probabilities[i, order[i, rank]]:.6f}"]
            writer.writerow(row + ([int(labels[i])] if labels is not None else []))
    return int(uncertain.sum())


def write_run_outputs(out_dir: Path, result, labels: np.ndarray | None,
                      device: torch.device = torch.device("cpu"), plan: BudgetPlan | None = None,
                      paths: list[str] | None = None, ids: list[str] | None = None,
                      uncertain_below: float = 0.5) -> None:
    """assignments.csv (index[, path], cluster, confidence, uncertain, the runner-up clusters[, label]) and
    metrics.json (which records the uncertainty threshold and how many samples fell below it) of a
    ``TrainResult``."""
    uncertain = write_assignments(out_dir / "assignments.csv", result.labels, result.probabilities, labels, paths,
                                  ids, uncertain_below)
    summary = {**result.metrics, "uncertain_below": uncertain_below, "n_uncertain": uncertain,
               "epochs": result.epochs, "wall_seconds": round(result.wall_seconds, 3),
               "n_samples": int(len(result.labels)), "n_clusters": int(result.probabilities.shape[1]),
               "cluster_sizes": np.bincount(result.labels, minlength=result.probabilities.shape[1]).tolist(),
               "peak_host_memory_mb": round(peak_host_memory_mb(), 1),
               "peak_device_memory_mb": peak_device_memory_mb(device), "device": str(device)}
    warning = degenerate_partition(result.labels, result.probabilities.shape[1])
    if warning is not None:
        summary["warning"] = warning
    if plan is not None:
        summary["budget_plan"] = plan.to_dict()
    write_json(out_dir / "metrics.json", summary)


def record_whole_run(out_dir: Path, wall_seconds: float) -> None:
    """metrics.json's ``wall_seconds`` made the whole run's: every stage and every process of it, and the
    files written after training (the curves, the report), counted from the command's start."""
    path = out_dir / "metrics.json"
    summary = json.loads(path.read_text())
    summary["wall_seconds"] = round(wall_seconds, 3)
    write_json(path, summary)


def write_json(path: Path, value) -> None:
    """``value`` as indented JSON in ``path``, whole or not at all (a temporary file renamed)."""
    write_whole(path, json.dumps(value, indent=2))
