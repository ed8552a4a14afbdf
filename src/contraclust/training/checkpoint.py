"""Checkpoints written atomically (temp file, fsync, rename) with every RNG state needed to resume exactly."""
from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contraclust.errors import ContraclustError

CHECKPOINT_PATTERN = re.compile(r"epoch_(\d+)\.pt$")


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write ``obj`` so that ``path`` holds either the old file or the complete new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    try:
        fd = os.open(path.parent, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    except OSError:
        pass


def global_rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_global_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoint files in ``directory``, oldest epoch first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := CHECKPOINT_PATTERN.search(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(directory: Path, epoch: int, payload: dict[str, Any], keep: int = 2) -> Path:
    path = directory / f"epoch_{epoch:04d}.pt"
    atomic_torch_save(payload, path)
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file, or the newest one in a run folder or its ``checkpoints/`` folder."""
    path = Path(path)
    if path.is_dir():
        directory = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        candidates = list_checkpoints(directory)
        if not candidates:
            raise ContraclustError(f"no checkpoint (epoch_NNNN.pt) in {directory}")
        path = candidates[-1]
    if not path.exists():
        raise ContraclustError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file: say which
        raise ContraclustError(f"cannot read checkpoint {path}: {exc}") from None
