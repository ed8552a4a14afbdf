"""How much of the report fits in the time a budget leaves it: the map's points chosen from a probe of
the map's speed on this machine, the galleries cut where time runs out, or no report at all.

``fit`` writes the report inside its time budget. Its cost differs between machines far more than a
formula can say (t-SNE alone takes 3.3 s for 1,500 points on one 2-core machine, and the first use of
matplotlib and scikit-learn's manifold module costs seconds more), so the report measures as it goes:
the figures first (a fixed, small cost), then the map (t-SNE of 200 points, timed; then as many points
as the time left allows, up to 1,500; a PCA map when not even the probe fits), then the galleries,
thumbnail by thumbnail, until the time is up. Without a limit (``contraclust report``) nothing is cut.
"""
from __future__ import annotations

import sys
import time
from typing import Callable

import numpy as np

from contraclust.readout import map_rows

PROBE_POINTS = 200
GROWTH = 1.2            # t-SNE's time grows a little faster than its points (measured: 200 0.49 s, 1,500 5.1 s)
PAGE_SECONDS = 0.3      # the HTML page and what is left of the galleries once the time is up
FIGURE_SECONDS = 1.2    # the curves, confusion, sizes and confidence figures (2-core CPU, matplotlib loaded)
IMPORT_SECONDS = 3.0    # the first use of matplotlib and scikit-learn's manifold module in a process


class ReportClock:
    """The time a report may take (None: no limit)."""

    def __init__(self, seconds: float | None, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.deadline = None if seconds is None else clock() + seconds

    def left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - self.clock()

    @property
    def limited(self) -> bool:
        return self.deadline is not None


def smallest_report_seconds() -> float:
    """The least a report takes here: its figures and page, and the modules they need when not yet loaded."""
    loaded = "matplotlib.pyplot" in sys.modules
    return FIGURE_SECONDS + PAGE_SECONDS + (0.0 if loaded else IMPORT_SECONDS)


def sampled_rows(n: int, points: int) -> np.ndarray:
    """At most ``points`` of ``n`` rows, chosen at random (sorted): the map's sample, nested in the run's
    stored one (``readout.map_rows``)."""
    return np.sort(map_rows(n, points))


def fitted_map(embed: Callable[[np.ndarray], np.ndarray], n: int, max_points: int, clock: ReportClock,
               project: Callable[[np.ndarray], tuple[np.ndarray, str]],
               reserve: float) -> tuple[np.ndarray, np.ndarray, str]:
    """(coordinates, rows, method) of the map: ``project`` (t-SNE or UMAP) of the embeddings (``embed(rows)``)
    of as many of the ``n`` samples, up to ``max_points``, as the time left (less ``reserve``) allows."""
    from sklearn.decomposition import PCA

    if not clock.limited:
        rows = sampled_rows(n, max_points)
        return _projected(project, embed(rows), rows)
    rows = sampled_rows(n, min(PROBE_POINTS, max_points))
    began = clock.clock()
    probe = embed(rows)
    per_row = (clock.clock() - began) / len(rows)
    if clock.left() - reserve < 1.0 or len(rows) < 3:  # no time for t-SNE: a principal-component map
        return PCA(2).fit_transform(probe) if len(rows) > 2 else np.zeros((len(rows), 2)), rows, "PCA"
    import sklearn.manifold  # noqa: F401  (loaded before the probe is timed: a cost paid once, not per point)

    began = clock.clock()
    coordinates, how = project(probe)
    probed = clock.clock() - began
    room = clock.left() - reserve
    points = len(rows)
    for candidate in (1500, 1000, 700, 500, 350):
        cost = probed * (candidate / len(rows)) ** GROWTH + per_row * candidate
        if candidate <= min(max_points, n) and candidate > points and cost <= room:
            points = candidate
            break
    if points == len(rows):
        return coordinates, rows, how
    rows = sampled_rows(n, points)
    return _projected(project, embed(rows), rows)


def _projected(project, embeddings: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    coordinates, how = project(embeddings)
    return coordinates, rows, how
