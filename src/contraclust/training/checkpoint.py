"""Checkpoints: tensors and plain data only, written atomically, read without running any code.

A checkpoint is a dict of tensors, numbers, strings, lists, tuples and dicts (every RNG state
included, numpy's as a tensor), tagged with ``format_version``. It is written to a temporary file,
fsynced and renamed, so a file named ``epoch_NNNN.pt`` is always complete; the newest two are kept.
Reading uses ``torch.load(weights_only=True)``: a file whose unpickling would need anything else
(a class, a function, hence possibly code) is refused, not executed.
"""
from __future__ import annotations

import io
import pickle
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contraclust.console import say
from contraclust.errors import CheckpointError, UnsafeCheckpointError
from contraclust.files import open_whole

FORMAT_VERSION = 2
CHECKPOINT_PATTERN = re.compile(r"epoch_(\d+)\.pt$")
PARTIAL_WRITE_PATTERN = re.compile(r"^\.epoch_\d+\.pt\.tmp\d+$")
PLAIN_TYPES = (bool, int, float, str, type(None), torch.Tensor)


def to_plain(obj: Any, where: str = "checkpoint") -> Any:
    """``obj`` as tensors and plain Python data (numpy values converted); a TypeError names anything else."""
    if isinstance(obj, PLAIN_TYPES):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, dict):
        return {k: to_plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [to_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    raise TypeError(f"{where} holds a {type(obj).__name__}; checkpoints hold tensors and plain data only")


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write ``obj`` so that ``path`` holds either the old file or the complete new one, never a torn one.
    It is serialised in memory first, then written as bytes: a failed write (a full disk) is an OSError
    with its reason, its partial file removed (``files.open_whole``), not torch's "file write failed"."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with open_whole(path, "wb", fsync=True) as handle:
        handle.write(buffer.getbuffer())


def global_rng_state() -> dict[str, Any]:
    """Python's, numpy's (its key as a tensor) and torch's RNG states, as plain data."""
    numpy_state = np.random.get_state(legacy=False)
    state = {"python": random.getstate(),
             "numpy": {"key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
                       "pos": int(numpy_state["state"]["pos"]), "has_gauss": int(numpy_state["has_gauss"]),
                       "gauss": float(numpy_state["gauss"])},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_global_rng_state(state: dict[str, Any]) -> None:
    version, key, gauss = state["python"]
    random.setstate((version, tuple(key), gauss))
    numpy_state = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937",
                         "state": {"key": numpy_state["key"].numpy().astype(np.uint32), "pos": numpy_state["pos"]},
                         "has_gauss": numpy_state["has_gauss"], "gauss": numpy_state["gauss"]})
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


CPU_GENERATOR_STATE_BYTES = torch.Generator().get_state().numel()  # Mersenne Twister; CUDA's Philox state is 16


def generator_device_type(state: torch.Tensor) -> str:
    """Which kind of device a stored generator state came from (for checkpoints that do not say)."""
    return "cpu" if state.numel() == CPU_GENERATOR_STATE_BYTES else "cuda"


def last_good_checkpoint(out_dir: Path | None) -> str:
    """Where a run that failed can be continued from: its newest checkpoint, named, or that there is none."""
    found = list_checkpoints(Path(out_dir) / "checkpoints") if out_dir is not None else []
    if not found:
        return "no checkpoint was written before it" if out_dir is not None else "nothing was saved (no run folder)"
    return f"the last good checkpoint is kept: {found[-1]}"


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoint files in ``directory``, oldest epoch first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := CHECKPOINT_PATTERN.search(p.name))]
    return [p for _, p in sorted(found)]


def remove_partial_writes(directory: Path) -> None:
    """Delete temporary files left by a process killed while writing a checkpoint."""
    if directory.is_dir():
        for path in directory.iterdir():
            if PARTIAL_WRITE_PATTERN.match(path.name):
                path.unlink(missing_ok=True)


def save_checkpoint(directory: Path, epoch: int, payload: dict[str, Any], keep: int = 2) -> Path:
    """Write ``epoch_NNNN.pt`` (tagged with the format version), then drop all but the newest ``keep``."""
    path = directory / f"epoch_{epoch:04d}.pt"
    atomic_torch_save(to_plain({"format_version": FORMAT_VERSION, **payload}), path)
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def checkpoint_folder(path: Path) -> Path:
    """Where a run folder keeps its checkpoints (``checkpoints/``), or the folder itself."""
    return path / "checkpoints" if (path / "checkpoints").is_dir() else path


def load_checkpoint(path: str | Path, fall_back: bool = False) -> dict[str, Any]:
    """Read a checkpoint file, or the newest one of a run folder (or of its ``checkpoints/`` folder).

    When the newest of a folder is unreadable, ``fall_back`` loads the previous one with a warning;
    otherwise the error names the previous one, to be given instead. An unsafe file is refused outright."""
    path = Path(path)
    if not path.is_dir():
        if not path.exists():
            raise CheckpointError(f"checkpoint {path} does not exist")
        return read_checkpoint_file(path)
    directory = checkpoint_folder(path)
    candidates = list_checkpoints(directory)
    if not candidates:
        raise CheckpointError(f"no checkpoint (epoch_NNNN.pt) in {directory}")
    try:
        return read_checkpoint_file(candidates[-1])
    except UnsafeCheckpointError:
        raise  # a planted file is a reason to stop, not to fall back
    except CheckpointError as exc:
        if len(candidates) < 2:
            raise
        previous = candidates[-2]
        if not fall_back:
            raise CheckpointError(f"{exc}; the previous checkpoint {previous} may be intact: give it instead") from None
        say(f"warning: {exc}; falling back to the previous checkpoint {previous.name}")
        return read_checkpoint_file(previous)


def read_checkpoint_file(path: Path) -> dict[str, Any]:
    """One checkpoint file, loaded with ``weights_only=True`` and checked for its format."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's weights-only unpickler refused a pickle that names a class or function: what a file that
        # runs code needs (torch words it "Unsupported global: GLOBAL x", or in 2.13 "unsupported GLOBAL x
        # whose module x is blocked"). Unsafe: stop, never fall back to an older checkpoint.
        named = re.search(r"GLOBAL\s+([\w.]+)", str(exc))
        if named:
            raise UnsafeCheckpointError(f"refusing checkpoint {path}: it holds objects other than tensors and plain "
                                        f"data ({named.group(1)}), and loading it could run code") from None
        raise CheckpointError(f"checkpoint {path} is unreadable (not a plain-data checkpoint; refused unread)") from None
    except Exception as exc:  # a truncated or foreign file: torch raises many kinds
        raise CheckpointError(f"checkpoint {path} is unreadable (truncated, or not a checkpoint: "
                              f"{type(exc).__name__})") from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{path} is not a contraclust checkpoint (no model weights and config in it)")
    version = state.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError(f"{path} has no checkpoint format version (written before contraclust's safe "
                              f"format {FORMAT_VERSION}); retrain, or load it yourself if you trust it")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {version}, newer than the {FORMAT_VERSION} this "
                              f"contraclust reads; upgrade contraclust")
    return state


def check_same_run(state: dict[str, Any], config: Any, source: Path | str) -> None:
    """Refuse a checkpoint of another method, number of clusters or backbone than ``config``'s, by name."""
    stored = state["config"]
    pairs = {"method": (stored.get("method"), config.method),
             "n_clusters": (stored.get("n_clusters"), config.n_clusters),
             "model.backbone": (stored.get("model", {}).get("backbone"), config.model.backbone)}
    differ = [f"{name} {theirs} (this run: {ours})" for name, (theirs, ours) in pairs.items() if theirs != ours]
    if differ:
        raise CheckpointError(f"checkpoint {source} belongs to another run: {', '.join(differ)}")
