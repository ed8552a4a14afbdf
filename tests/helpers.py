"""Small real data sets and tiny configs shared by the tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from contraclust.data import read_mnist5k

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.width=8", "model.head_hidden=32", "model.feature_dim=16", "train.eval_every=0"]


def mnist_subset(path: Path, n: int = 400) -> Path:
    """The first ``n`` MNIST-5k digits (balanced by taking every 5000/n-th) as an .npz file."""
    data = read_mnist5k()
    rows = np.arange(0, 5000, 5000 // n)[:n]
    np.savez(path, x=data.images.numpy()[rows, 0], y=data.labels[rows])
    return path


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "contraclust", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)
