"""A fingerprint of a data set: what a resumed run checks so that it never goes on training on other data.

It holds the number of samples, their shape and kind, and a digest of the samples themselves (their
bytes, or for sets above 512 MB of 4,096 rows spread over the set, which is cheap and still changes when
files are added, removed or replaced), of their labels, and for files read from disk of their paths.
``differences`` names what changed, in words.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contraclust.data.dataset import Samples
from contraclust.data.readers import BUILTIN_DATASETS, BUILTIN_PREFIX
from contraclust.errors import DataError

FULL_DIGEST_BYTES = 512 * 2 ** 20
SAMPLED_ROWS = 4096


def _sample_digest(samples) -> str:
    if hasattr(samples, "digest"):  # a JPEG pack: its offsets and some of its bytes, nothing decoded
        return samples.digest()
    digest = hashlib.sha256()
    n = len(samples)
    if isinstance(samples, torch.Tensor) and samples.nbytes <= FULL_DIGEST_BYTES:
        digest.update(samples.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()
    rows = np.unique(np.linspace(0, n - 1, min(n, SAMPLED_ROWS)).astype(np.int64))
    chunk = samples[torch.from_numpy(rows)] if isinstance(samples, torch.Tensor) else samples[rows]
    digest.update(np.ascontiguousarray(torch.as_tensor(chunk).cpu().numpy()).tobytes())
    return "sampled:" + digest.hexdigest()


def fingerprint(data: Samples, samples: bool = True) -> dict[str, Any]:
    """The data's fingerprint, as plain data (it goes into checkpoints). ``samples=False``: no digest of the
    samples themselves, for vectors a frozen backbone embeds anew each time (their last bits depend on the
    threads and the device); their files' paths, labels, count and shape are kept."""
    labels = hashlib.sha256(np.ascontiguousarray(data.labels).tobytes()).hexdigest() if data.labels is not None else None
    paths = getattr(data, "paths", None) or []
    named = paths or getattr(data, "ids", None) or []
    return {"n": len(data), "shape": list(data.sample_shape), "kind": "images" if data.is_image else "vectors",
            "samples": _sample_digest(data.tensor) if samples else None, "labels": labels, "paths": _digest(named),
            "absolute_paths": True, "paths_from_here": _digest([_from_here(p) for p in paths])}


def _from_here(path: str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path


def _digest(paths: list[str]) -> str | None:
    return hashlib.sha256("\n".join(paths).encode("utf-8", "surrogateescape")).hexdigest() if paths else None


def check_own_data(stored: dict[str, Any] | None, data: Samples, where: str) -> None:
    """The data a command reads as a run's own must be what the run trained on (its fingerprint ``stored``,
    from the run's checkpoint): a look-alike that now sits at the run's data path is refused, naming the path
    and what changed. A run whose checkpoint holds no fingerprint (written before they did) is not checked."""
    changed = differences(stored, fingerprint(data, samples=stored["samples"] is not None)) if stored else []
    if changed:
        raise DataError(f"the run's data {where} is not the data it trained on: {'; '.join(changed)}; give --data "
                        f"to use other data on purpose")


def data_reference(spec: str | None) -> str | None:
    """How a run stores the data it was given: a path made absolute (from any working folder the run then
    reads its own data), a built-in name (``mnist5k``, ``builtin:digits``) or None as given."""
    if spec is None or not str(spec).strip() or str(spec).startswith(BUILTIN_PREFIX):
        return spec
    path = Path(str(spec)).expanduser()
    if str(spec) in BUILTIN_DATASETS and not path.exists():
        return str(spec)
    return os.path.abspath(path)


def differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between the fingerprint a run trained on and the data's now, in words (empty: the same)."""
    if stored["n"] != current["n"]:
        return [f"it had {stored['n']} samples and now has {current['n']}"]
    if stored["kind"] != current["kind"] or stored["shape"] != current["shape"]:
        return [f"its samples were {stored['kind']} of shape {tuple(stored['shape'])} and are now {current['kind']} "
                f"of shape {tuple(current['shape'])}"]
    found = []
    # Runs from before paths were made absolute stored them as typed, relative to where the run was started.
    paths = "paths" if stored.get("absolute_paths") or not current.get("absolute_paths") else "paths_from_here"
    if stored.get("paths") != current.get(paths):
        found.append("its files are other files (names or order)")
    if None not in (stored["samples"], current["samples"]) and stored["samples"] != current["samples"]:
        found.append("the content of its samples changed")
    if stored.get("labels") != current.get("labels"):
        found.append("its labels changed")
    return found
