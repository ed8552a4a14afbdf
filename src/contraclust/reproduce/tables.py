"""The papers' result tables (CC, C3, DRC, CLC, and TCL for comparison), stored as package data.

``paper_results.json`` holds, per method, the paper it comes from, how sure the numbers are (read in
the paper, or from a secondary page), the training length, and which epoch the paper reports when
that is known; every figure is copied from ``shared/specs`` (CC 1.7, C3 2.7, TCL 3, DRC and CLC).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

METRICS = ("nmi", "acc", "ari")


@dataclass(frozen=True)
class PaperTable:
    method: str
    paper: str
    certainty: str
    epochs: str
    epoch_reported: str  # "last", "best" or "unknown"
    epoch_note: str
    results: dict[str, dict[str, float | None]]


@lru_cache(maxsize=1)
def paper_tables() -> dict[str, PaperTable]:
    text = resources.files("contraclust.reproduce").joinpath("paper_results.json").read_text()
    return {method: PaperTable(method=method, **entry) for method, entry in json.loads(text).items()}


def paper_result(method: str, dataset: str) -> dict[str, float | None] | None:
    """The paper's NMI/ACC/ARI of ``method`` on ``dataset`` (None where a figure is unknown), or None."""
    table = paper_tables().get(method)
    return None if table is None else table.results.get(dataset)
