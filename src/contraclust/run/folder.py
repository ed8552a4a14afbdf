"""One run per folder: a lock held for the run's life, fresh runs kept out of old folders (and out of
their data), and the one writer of a run's ``config.json``.

The lock is ``OUT/.contraclust.lock``, held with ``flock`` (released by the kernel when its process
dies, however it dies) and holding its owner's pid, host and start time, so that a second writer is
told who holds the folder. Where ``flock`` does not exist, the file's presence is the lock, and a
lock of a process that no longer runs on this host is taken over with a warning.
"""
from __future__ import annotations

import datetime
import json
import os
import socket
from pathlib import Path
from typing import Any

from contraclust.config import RunConfig
from contraclust.console import say
from contraclust.data.readers import is_image_folder
from contraclust.errors import ContraclustError
from contraclust.files import write_whole
from contraclust.markers import RUN_LOCK
from contraclust.training.checkpoint import list_checkpoints

try:
    import fcntl
except ImportError:  # Windows: fall back to an exclusive-create lock file
    fcntl = None

LOCK_NAME = RUN_LOCK  # also what marks a folder as a run folder for the image reader
RUN_FILES = ("config.json", "log.csv", "metrics.json", "assignments.csv")
# Everything a run writes into its folder: a new run with --force may write beside other files, never over these.
CC_STAGE_FOLDER = "cc-stage"  # C3's CC stage, trained first inside the C3 run's folder
SELF_LABEL_FOLDER = "before-self-label"  # the method's training, when the run ends with self-labelling
STAGE_FOLDERS = (CC_STAGE_FOLDER, SELF_LABEL_FOLDER)
RUN_NAMES = (*RUN_FILES, "checkpoints", *STAGE_FOLDERS, "report", "report.html", "curves.png", "resumes.jsonl",
             "readout.npz")


def holds_run(folder: Path) -> bool:
    """True when ``folder`` holds (part of) a run: its config, log, results, checkpoints or a stage folder
    that holds one (an empty ``checkpoints/`` or ``cc-stage/`` is not a run)."""
    if not folder.is_dir():
        return False
    if any((folder / name).is_file() for name in RUN_FILES):
        return True
    return bool(list_checkpoints(folder / "checkpoints")) or any(holds_run(folder / name) for name in STAGE_FOLDERS)


def has_checkpoint(folder: Path) -> bool:
    """True when a run in ``folder`` can be resumed: a checkpoint of it, or of a stage before its last."""
    return any(list_checkpoints(folder / name / "checkpoints") for name in ("", *STAGE_FOLDERS))


class RunLock:
    """Hold ``folder`` (created if needed) for one run: ``with RunLock(folder): ...``. A folder held by a
    live process is refused with one line naming it."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.handle = None
        self.created = False  # this lock made the lock file (removed again when the folder holds no run)

    def __enter__(self) -> "RunLock":
        if self.folder.exists() and not self.folder.is_dir():
            raise ContraclustError(f"the run folder {self.folder} is a file, not a folder; choose another")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._acquire()
        except OSError as exc:
            raise ContraclustError(f"cannot write the run folder {self.folder}: {exc.strerror or exc}") from None
        return self

    def __exit__(self, *exc_info) -> None:
        if self.handle is None:
            return
        if fcntl is not None:
            self.handle.truncate(0)
            if self.created and not holds_run(self.folder):  # a check that found no run leaves nothing behind
                self.path.unlink(missing_ok=True)
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
        else:
            self.handle.close()
            self.path.unlink(missing_ok=True)
        self.handle = None

    def _acquire(self) -> None:
        owner = {"pid": os.getpid(), "host": socket.gethostname(),
                 "since": datetime.datetime.now().isoformat(timespec="seconds")}
        if fcntl is not None:
            self.created = not self.path.exists()
            handle = open(self.path, "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = _parse_owner(handle.read())
                handle.close()
                raise ContraclustError(f"{self.folder} is in use by another run ({_describe(holder)}); wait for it "
                                       f"to end or choose another folder") from None
            handle.seek(0)
            previous = _parse_owner(handle.read())
            if previous:
                say(f"warning: taking over the lock of {self.folder} left by {_describe(previous)}, "
                    f"which no longer runs")
            handle.seek(0)
            handle.truncate(0)
            handle.write(json.dumps(owner))
            handle.flush()
            self.handle = handle
            return
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = _parse_owner(self.path.read_text(errors="replace"))
                if holder.get("host") == owner["host"] and not _alive(holder.get("pid")):
                    say(f"warning: taking over the stale lock of {self.folder} left by {_describe(holder)}")
                    self.path.unlink(missing_ok=True)
                    continue
                raise ContraclustError(f"{self.folder} is in use by another run ({_describe(holder)}); wait for "
                                       f"it to end or choose another folder") from None
            self.handle = os.fdopen(fd, "w")
            self.handle.write(json.dumps(owner))
            self.handle.flush()
            return
        raise ContraclustError(f"cannot take the lock of {self.folder}; another run took it first")


def _parse_owner(text: str) -> dict[str, Any]:
    try:
        owner = json.loads(text)
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) else {}


def _describe(owner: dict[str, Any]) -> str:
    if not owner:
        return "a process that left no details"
    return f"pid {owner.get('pid')} on {owner.get('host')}, since {owner.get('since')}"


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stopped_before_a_checkpoint(folder: Path) -> bool:
    """A run that was stopped (killed, interrupted) before it wrote its first checkpoint: nothing to resume."""
    return holds_run(folder) and not has_checkpoint(folder) and not (folder / "metrics.json").exists()


def _holds_no_file(path: Path) -> bool:
    """A folder with no file at any depth (a run's empty ``checkpoints/``)."""
    return path.is_dir() and not any(p.is_file() for p in path.rglob("*"))


def check_fresh(folder: Path, force: bool = False) -> None:
    """Refuse to start a new run in a folder that holds one, or other files (unless ``force``: then beside
    them, never over a name that a run writes). The files of a run stopped before its first checkpoint are
    removed, said in one line: the run starts afresh there."""
    if stopped_before_a_checkpoint(folder):
        say(f"{folder} holds a run that stopped before its first checkpoint (nothing to resume): starting afresh")
        for name in ("config.json", "log.csv", "resumes.jsonl",
                     *(f"{stage}/{file}" for stage in STAGE_FOLDERS for file in ("config.json", "log.csv"))):
            (folder / name).unlink(missing_ok=True)
        for empty in ("checkpoints", *(f"{stage}/checkpoints" for stage in STAGE_FOLDERS), *STAGE_FOLDERS):
            if (folder / empty).is_dir() and not any((folder / empty).iterdir()):
                (folder / empty).rmdir()
    if holds_run(folder):
        raise ContraclustError(f"{folder} already holds a run; continue it with --resume (API: resume=True) or "
                               f"choose another folder")
    others = sorted(p.name for p in folder.iterdir()
                    if p.name != LOCK_NAME and not (p.name in RUN_NAMES and _holds_no_file(p))) if folder.is_dir() else []
    if others and not force:
        listed = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise ContraclustError(f"{folder} holds other files ({listed}); a run writes config.json, log.csv, "
                               f"checkpoints/, report/ and more into its folder: choose a new or empty folder, or "
                               f"give --force (API: force=True) to write beside them")
    clashing = [name for name in RUN_NAMES if name in others]  # (with --force)
    if clashing:
        raise ContraclustError(f"{folder} already has {', '.join(clashing)}, which a run would overwrite; --force "
                               f"writes beside other files, never over them: choose another folder")


def fresh_run_folder(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``... whichever does not exist yet."""
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def main_process() -> bool:
    """Rank 0 under torchrun (the one that holds the lock and writes the run's own files), else True."""
    return int(os.environ.get("RANK", "0")) == 0


def refuse_a_held_folder(folder: Path | None, force: bool = True) -> None:
    """For the faces, before they spend time loading data: a folder in use, or holding a run, is refused;
    so is one holding other files, unless ``force``."""
    if folder is not None and folder.exists() and main_process():
        with RunLock(folder):
            check_fresh(folder, force)


def refuse_a_folder_inside_the_data(folder: Path | None, data_spec: str | None) -> None:
    """A run folder inside its data folder would be read as data next time (its report's thumbnails)."""
    if folder is None or not data_spec or not is_image_folder(data_spec):
        return
    data, inside = Path(data_spec).expanduser().resolve(), Path(folder).expanduser().resolve()
    if inside == data or data in inside.parents:
        raise ContraclustError(f"the run folder {folder} lies inside the data folder {data_spec}: the next read of "
                               f"the data would take the run's files (its report's thumbnails) for images; choose a "
                               f"folder outside it")


def write_config(folder: Path, config: RunConfig) -> None:
    """``config.json`` of a run or stage folder: written here alone (the trainer writes its log and outputs)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_whole(folder / "config.json", config.to_json())
