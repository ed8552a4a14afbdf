"""The report's figures as PNG files (matplotlib, no display): confusion matrix, cluster sizes,
confidence histogram and the 2-D map of the embeddings; plus the map's coordinates."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
           "#756bb1", "#636363"]


def cluster_colour(cluster: int) -> str:
    return PALETTE[cluster % len(PALETTE)]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path


def matched_confusion(labels: np.ndarray, clusters: np.ndarray, n_clusters: int) -> tuple[np.ndarray, list[int]]:
    """(classes x K) counts with the clusters ordered by the class each is matched to (Hungarian), and
    that cluster order."""
    classes = np.unique(labels)
    counts = np.zeros((len(classes), n_clusters), dtype=np.int64)
    np.add.at(counts, (np.searchsorted(classes, labels), clusters), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    matched = [int(c) for _, c in sorted(zip(rows, cols))]
    order = matched + [c for c in range(n_clusters) if c not in matched]
    return counts[:, order], order


def confusion_figure(labels: np.ndarray, clusters: np.ndarray, n_clusters: int, class_names: list[str],
                     path: Path) -> Path:
    counts, order = matched_confusion(labels, clusters, n_clusters)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(0.5 * n_clusters + 2.5, 0.45 * counts.shape[0] + 2))
    ax.imshow(counts, cmap="Blues")
    for (i, j), n in np.ndenumerate(counts):
        if n:
            ax.text(j, i, str(n), ha="center", va="center", fontsize=7,
                    color="white" if n > counts.max() / 2 else "black")
    names = class_names or [str(c) for c in np.unique(labels)]
    ax.set_yticks(range(counts.shape[0]), names[: counts.shape[0]])
    ax.set_xticks(range(n_clusters), [str(c) for c in order])
    ax.set_xlabel("cluster (ordered by matched class)")
    ax.set_ylabel("true class")
    ax.set_title("confusion matrix, Hungarian-matched")
    return _save(fig, path)


def sizes_figure(clusters: np.ndarray, n_clusters: int, path: Path) -> Path:
    sizes = np.bincount(clusters, minlength=n_clusters)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4, 0.4 * n_clusters + 2), 3))
    ax.bar(range(n_clusters), sizes, color=[cluster_colour(c) for c in range(n_clusters)])
    ax.set_xlabel("cluster")
    ax.set_ylabel("samples")
    ax.set_title("cluster sizes")
    return _save(fig, path)


def confidence_figure(confidence: np.ndarray, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.hist(confidence, bins=np.linspace(0, 1, 41), color="#3182bd")
    ax.set_xlabel("confidence (largest cluster probability)")
    ax.set_ylabel("samples")
    ax.set_title("confidence")
    return _save(fig, path)


def embedding_map(embeddings: np.ndarray, max_points: int = 1500, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """2-D coordinates of (a random subset of at most ``max_points``) embeddings: UMAP when installed,
    else t-SNE (scikit-learn). Returns (coordinates, the rows they belong to, the method's name)."""
    rows = np.arange(len(embeddings))
    if len(rows) > max_points:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_points, replace=False))
    coordinates, how = project_2d(embeddings[rows], seed)
    return coordinates, rows, how


def project_2d(points: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """2-D coordinates of ``points``: UMAP when installed, else t-SNE (scikit-learn); and the method's name.
    Points that are (nearly) all one point get a PCA map: Barnes-Hut t-SNE cannot split identical points
    (scikit-learn's crashed the process on the embeddings of a collapsed run), and a map of one point has
    nothing to show; exact duplicates among others are moved apart by a millionth of the points' spread."""
    points = np.asarray(points, dtype=np.float64)
    distinct = len(np.unique(points.round(6), axis=0))
    if distinct < max(3, 0.05 * len(points)):
        from sklearn.decomposition import PCA

        return (PCA(2).fit_transform(points) if distinct > 2 else np.zeros((len(points), 2))), "PCA"
    if distinct < len(points):
        scale = float(points.std()) or 1.0
        points = points + np.random.default_rng(seed).normal(scale=1e-6 * scale, size=points.shape)
    try:
        import umap

        return umap.UMAP(random_state=seed).fit_transform(points), "UMAP"
    except ImportError:
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(points) - 1) / 3)))
        tsne = TSNE(2, perplexity=perplexity, init="pca", random_state=seed)
        return tsne.fit_transform(points), "t-SNE"


def map_figure(coordinates: np.ndarray, clusters: np.ndarray, method: str, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.scatter(coordinates[:, 0], coordinates[:, 1], s=5, c=[cluster_colour(int(c)) for c in clusters])
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"embeddings ({method}), coloured by cluster")
    return _save(fig, path)
