"""Writing files whole or not at all, and one clear line when a write fails.

Every file contraclust writes goes through here: into a temporary name beside it, renamed over it
once complete. When the write fails (a full disk, a quota, a folder made read-only meanwhile) the
temporary file is removed, so that a full disk is not kept full by a half-written file, and a
:class:`WriteError` names the file and the reason; the file under its own name is the old one or
none, never a torn one.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from typing import Iterator

from contraclust.errors import WriteError

FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def why_not_written(path: Path | str, exc: BaseException, removed: bool = True) -> WriteError:
    """The one-line error for a failed write of ``path`` (``removed``: part of it had been written, and is gone)."""
    code = getattr(exc, "errno", None)
    if code in FULL:
        reason = "no space left on the device" if code != errno.EFBIG else "the file would be too large"
    else:
        reason = (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).rstrip(".").lower()
    return WriteError(f"cannot write {path}: {reason}" + ("; what was written of it was removed" if removed else ""))


@contextlib.contextmanager
def open_whole(path: Path | str, mode: str = "w", fsync: bool = False, **options) -> Iterator:
    """``open`` a temporary file beside ``path`` (``mode`` "w" or "wb"); renamed over ``path`` when the block
    ends, removed (and a :class:`WriteError` raised) when writing fails. ``fsync``: on disk before the rename."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, mode, **options) as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(partial, path)
    except OSError as exc:
        begun = partial.exists()
        partial.unlink(missing_ok=True)
        raise why_not_written(path, exc, removed=begun) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if fsync:
        with contextlib.suppress(OSError):
            fd = os.open(path.parent, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)


def write_whole(path: Path | str, content: str | bytes, fsync: bool = False) -> None:
    """``content`` (text or bytes) into ``path``, whole or not at all."""
    binary = isinstance(content, bytes)
    with open_whole(path, "wb" if binary else "w", fsync, **({} if binary else {"encoding": "utf-8"})) as handle:
        handle.write(content)


@contextlib.contextmanager
def appending(path: Path | str, **options) -> Iterator:
    """``open(path, "a")`` whose failed write is cut back to the file's length before it (no torn line left)."""
    path = Path(path)
    before = path.stat().st_size if path.exists() else None
    try:
        with open(path, "a", **options) as handle:
            yield handle
    except OSError as exc:
        with contextlib.suppress(OSError):
            if before is None:
                path.unlink(missing_ok=True)
            else:
                os.truncate(path, before)
        raise why_not_written(path, exc) from None


@contextlib.contextmanager
def removed_if_unfinished(*paths: Path | str) -> Iterator[None]:
    """Files and folders written by the block (matplotlib's figures, a report folder) that are removed again
    when the block fails to write them; an OSError becomes a :class:`WriteError` naming its file."""
    try:
        yield
    except BaseException as exc:
        for path in map(Path, paths):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise why_not_written(exc.filename or paths[0], exc) from None
        raise
