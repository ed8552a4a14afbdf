"""Where each sample went: the assignments CSV, and image folders sorted into one folder per cluster."""
from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np

from contraclust.errors import ContraclustError, DataError

TOP_K = 3
UNCERTAIN = "uncertain"


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
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i, cluster in enumerate(clusters):
            row = [i] + ([ids[i]] if ids else []) + ([paths[i]] if paths else [])
            row += [int(cluster), f"{confidence[i]:.6f}", int(uncertain[i])]
            for rank in range(1, top):
                row += [int(order[i, rank]), f"{probabilities[i, order[i, rank]]:.6f}"]
            writer.writerow(row + ([int(labels[i])] if labels is not None else []))
    return int(uncertain.sum())


def cluster_folder_name(cluster: int, n_clusters: int) -> str:
    return f"cluster_{cluster:0{len(str(max(n_clusters - 1, 1)))}d}"


def sort_into_folders(paths: list[str], clusters: np.ndarray, confidence: np.ndarray, destination: Path,
                      n_clusters: int, link: bool = False, min_confidence: float = 0.0) -> dict[str, int]:
    """Copy (or symlink) every image file into ``destination/cluster_K/``, or into ``uncertain/`` when its
    confidence is below ``min_confidence``. File names are kept; when two files share a name, their paths
    below the data's common folder are kept instead. The originals are never touched. Returns the count
    per folder."""
    if not paths:
        raise DataError("sorting into folders needs images read from files (a folder of images)")
    if not 0.0 <= min_confidence <= 1.0:
        raise ContraclustError(f"--min-confidence must lie in [0, 1], got {min_confidence}")
    destination = Path(destination)
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise ContraclustError(f"{destination} exists and is not an empty folder; choose a new one")
    sources = [Path(p).resolve() for p in paths]
    names = [Path(p.name) for p in sources]
    if len(set(names)) < len(names):
        root = Path(os.path.commonpath([str(p.parent) for p in sources]))
        names = [p.relative_to(root) for p in sources]
    counts: dict[str, int] = {}
    for source, name, cluster, sure in zip(sources, names, clusters, confidence):
        folder = UNCERTAIN if sure < min_confidence else cluster_folder_name(int(cluster), n_clusters)
        target = destination / folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if link:
            os.symlink(source, target)
        else:
            shutil.copy2(source, target)
        counts[folder] = counts.get(folder, 0) + 1
    return dict(sorted(counts.items()))
