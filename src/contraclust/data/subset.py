"""Stratified subsets: a smaller copy of a data set with the class proportions of the whole."""
from __future__ import annotations

import numpy as np

from contraclust.errors import DataError


def stratified_indices(labels: np.ndarray | None, limit: int, seed: int = 0, n: int | None = None) -> np.ndarray:
    """Sorted indices of ``limit`` samples drawn per class in proportion to the class sizes (largest
    remainders get the rounding; every class keeps at least one sample when ``limit`` allows), by a
    fixed ``seed``. Without labels, ``limit`` of the ``n`` samples uniformly."""
    total = len(labels) if labels is not None else n
    if total is None:
        raise ValueError("stratified_indices needs labels or n")
    if limit < 1:
        raise DataError(f"--limit must be at least 1, got {limit}")
    rng = np.random.default_rng(seed)
    if limit >= total:
        return np.arange(total)
    if labels is None:
        return np.sort(rng.choice(total, limit, replace=False))
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    exact = counts * (limit / total)
    quota = np.floor(exact).astype(np.int64)
    if limit >= len(classes):
        quota = np.maximum(quota, 1)
    short = limit - int(quota.sum())
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    for c in order[:max(short, 0)]:
        quota[c] += 1
    while quota.sum() > limit:  # the floor of one per class overshot: take back from the largest quotas
        quota[np.argmax(quota)] -= 1
    picked = [rng.choice(np.flatnonzero(inverse == c), int(q), replace=False) for c, q in enumerate(quota) if q]
    return np.sort(np.concatenate(picked))
