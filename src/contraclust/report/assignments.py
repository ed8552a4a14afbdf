"""Image folders sorted into one folder per cluster (``predict --copy-into``); the assignments CSV itself is
written by ``training/outputs.py``."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from contraclust.errors import ContraclustError, DataError, WriteError
from contraclust.files import why_not_written
from contraclust.markers import SORTED_MARKER

UNCERTAIN = "uncertain"


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
    first: dict[Path, int] = {}
    for row, source in enumerate(sources):
        if source in first:
            raise DataError(f"the data lists {source} twice (samples {first[source]} and {row}); each image is "
                            f"sorted once")
        first[source] = row
        if not source.is_file():
            raise DataError(f"the image file {source} (sample {row}) does not exist (any more); nothing was sorted")
    names = [Path(p.name) for p in sources]
    if len(set(names)) < len(names):
        root = Path(os.path.commonpath([str(p.parent) for p in sources]))
        names = [p.relative_to(root) for p in sources]
    destination.mkdir(parents=True, exist_ok=True)
    (destination / SORTED_MARKER).write_text("images sorted by contraclust predict; not data\n")
    counts: dict[str, int] = {}
    for source, name, cluster, sure in zip(sources, names, clusters, confidence):
        folder = UNCERTAIN if sure < min_confidence else cluster_folder_name(int(cluster), n_clusters)
        target = destination / folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(target):  # never overwrite: the count is the count of files written
            raise ContraclustError(f"{target} exists already; sorting stopped after {sum(counts.values())} files")
        try:
            if link:
                os.symlink(source, target)
            else:
                shutil.copy2(source, target)
        except OSError as exc:  # a full disk: the half-copied file is removed, the ones before it are whole
            target.unlink(missing_ok=True)
            raise WriteError(f"{why_not_written(target, exc)}; sorting stopped after {sum(counts.values())} "
                             f"files") from None
        counts[folder] = counts.get(folder, 0) + 1
    return dict(sorted(counts.items()))
