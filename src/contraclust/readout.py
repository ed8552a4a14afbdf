"""What a run read out at its end, as the report reads it: ``readout.npz`` in the run folder.

The trainer writes it beside ``assignments.csv`` (``training/outputs.py``): every sample's cluster
probabilities, and the embeddings of a sample of the rows for the report's map. The map's sample is
nested (the first ``m`` rows of one fixed permutation), so a report that has time for fewer points takes
a prefix of what was stored and never needs the model again. Read without pickles: loading it runs no code.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contraclust.errors import ContraclustError
from contraclust.files import open_whole

READOUT_FILE = "readout.npz"
MAP_POINTS = 1500  # the most points a report's map shows (t-SNE of 1,500 points: about 3 s on 2 cores)


def map_rows(n: int, points: int = MAP_POINTS) -> np.ndarray:
    """The map's rows among ``n``: the first ``points`` of a fixed permutation, in that order (nested: the
    rows for fewer points are a prefix of those for more)."""
    return np.random.default_rng(0).permutation(n)[:min(n, points)]


def map_sample_share(n: int, points: int = MAP_POINTS) -> float:
    """The map's embeddings as a share of one pass over ``n`` samples (what the budget plans for them)."""
    return min(n, points) / max(1, n)


@dataclass
class Readout:
    """(N, K) ``probabilities`` of the run's samples, and the (M, D) ``embeddings`` of rows ``rows`` (the
    map's sample, ``map_rows(N, M)``)."""

    probabilities: np.ndarray
    rows: np.ndarray
    embeddings: np.ndarray

    @property
    def clusters(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    def embed(self, wanted: np.ndarray) -> np.ndarray:
        """The stored embeddings of ``wanted`` (rows that the stored sample holds)."""
        position = np.full(len(self.probabilities), -1)
        position[self.rows] = np.arange(len(self.rows))
        found = position[np.asarray(wanted, dtype=np.int64)]
        if (found < 0).any():
            raise ValueError("rows outside the stored map sample")
        return self.embeddings[found]


def save_readout(folder: Path, readout: Readout) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, probabilities=readout.probabilities.astype(np.float32), rows=readout.rows.astype(np.int64),
             embeddings=readout.embeddings.astype(np.float32))
    with open_whole(Path(folder) / READOUT_FILE, "wb") as handle:
        handle.write(buffer.getvalue())


def load_readout(folder: Path) -> Readout:
    """The run's readout; a folder without one (a run older than the file, or one that never finished) is
    refused naming the command that reads the model instead."""
    path = Path(folder) / READOUT_FILE
    if not path.is_file():
        raise ContraclustError(f"{folder} has no {READOUT_FILE} (runs write it when they finish; this one is older "
                               f"or unfinished): `contraclust report {folder} --data DATA` reads its model instead")
    try:
        with np.load(path, allow_pickle=False) as stored:
            readout = Readout(stored["probabilities"], stored["rows"], stored["embeddings"])
    except (OSError, ValueError, KeyError) as exc:
        raise ContraclustError(f"{path} cannot be read ({exc}); `contraclust report {folder} --data DATA` reads "
                               f"the run's model instead") from None
    if readout.probabilities.ndim != 2 or len(readout.rows) != len(readout.embeddings):
        raise ContraclustError(f"{path} is not a run's readout (its arrays do not match)")
    return readout
