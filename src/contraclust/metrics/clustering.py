"""Clustering metrics against ground truth: NMI, ACC (Hungarian-matched) and ARI.

SciPy and scikit-learn are imported when a metric is computed, not with the package (the command line
starts faster without them)."""
from __future__ import annotations

import numpy as np


def cluster_accuracy(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Best accuracy over one-to-one maps of clusters to classes.

    Builds the D x D count matrix (D = max(#classes, #clusters) over the ids present), solves the
    assignment with ``scipy.optimize.linear_sum_assignment`` and returns matched / N. Empty clusters
    and cluster ids that are not 0..K-1 are handled by re-indexing.
    """
    from scipy.optimize import linear_sum_assignment

    labels, clusters = _as_ids(labels), _as_ids(clusters)
    _, label_ids = np.unique(labels, return_inverse=True)
    _, cluster_ids = np.unique(clusters, return_inverse=True)
    size = max(label_ids.max(), cluster_ids.max()) + 1
    counts = np.zeros((size, size), dtype=np.int64)
    np.add.at(counts, (cluster_ids, label_ids), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(labels))


def evaluate_clustering(labels: np.ndarray, clusters: np.ndarray) -> dict[str, float]:
    """``{"nmi", "acc", "ari"}`` of predicted ``clusters`` against true ``labels``."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels, clusters = _as_ids(labels), _as_ids(clusters)
    if labels.shape != clusters.shape:
        raise ValueError(f"labels and clusters differ in shape: {labels.shape} vs {clusters.shape}")
    return {
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
        "acc": cluster_accuracy(labels, clusters),
        "ari": float(adjusted_rand_score(labels, clusters)),
    }


DOMINANT_SHARE = 0.9  # one cluster holding this share of the samples (K >= 2) is a degenerate partition


def degenerate_partition(clusters: np.ndarray, n_clusters: int) -> str | None:
    """One sentence when the partition is degenerate (empty clusters, or one cluster holding nearly every
    sample), with what to do; None for a partition that uses its clusters."""
    sizes = np.bincount(_as_ids(clusters), minlength=n_clusters)
    empty, largest = int((sizes == 0).sum()), float(sizes.max() / sizes.sum())
    if n_clusters < 2 or (empty == 0 and largest < DOMINANT_SHARE):
        return None
    found = (f"{empty} of the {n_clusters} clusters are empty" if empty else
             f"one cluster holds {largest:.0%} of the samples")
    if empty:
        found += f" and the largest holds {largest:.0%} of the samples"
    return (f"{found}: the clustering is degenerate; train longer (--budget), ask for fewer clusters (-k; "
            f"contraclust suggest-k estimates K), or for groups of unequal sizes try --cluster-prior estimated")


def _as_ids(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values).reshape(-1)
    if arr.size == 0:
        raise ValueError("no samples to evaluate")
    return arr
