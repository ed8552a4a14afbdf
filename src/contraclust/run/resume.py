"""The resume rules of a run: a run is continued only as itself.

``read_run_config`` reads the stored config and checks the newest checkpoint is readable, safe and of
this run; ``check_against_checkpoints`` compares ``config.json`` with the checkpoint's own config (but for
what a recorded resume changed); ``requested_config`` applies what a resume asks and refuses any change
to what defines the run (all but ``SAFE_ON_RESUME``); ``check_data_fingerprint`` refuses other data.
Each resume is recorded in ``resumes.jsonl``.
"""
from __future__ import annotations

import copy
import datetime
import json
from pathlib import Path
from typing import Any

from contraclust.config import RunConfig, apply_overrides, config_from_dict, read_config_file
from contraclust.console import say
from contraclust.data import Samples
from contraclust.data.fingerprint import differences, fingerprint
from contraclust.errors import CheckpointError, ConfigError, ContraclustError
from contraclust.files import appending
from contraclust.run.folder import has_checkpoint
from contraclust.run.stages import default_stages
from contraclust.training.checkpoint import check_same_run, list_checkpoints, load_checkpoint

RESUME_RECORD = "resumes.jsonl"
# What a resume may change: how long the run goes on and how it reports, never what it computes.
SAFE_ON_RESUME = ("train.epochs", "train.progress", "train.log_every", "train.eval_batch_size",
                  "train.checkpoint_every", "train.after_seconds")


def read_run_config(folder: Path) -> RunConfig:
    """The config of the run in ``folder``, for ``--resume``; a missing or corrupt file is one error."""
    path = folder / "config.json"
    if not path.is_file():
        raise ContraclustError(f"--resume needs a run folder with config.json; {folder} has none")
    config = read_config_file(path, "the run cannot be resumed from it")
    if not has_checkpoint(folder):
        raise ContraclustError(f"{folder} has no checkpoint yet (its run stopped before the first one): nothing "
                               f"to resume; start afresh in another folder or delete this one")
    if list_checkpoints(folder / "checkpoints"):  # readable, safe and of this run, checked before anything runs
        check_same_run(load_checkpoint(folder, fall_back=True), config, folder)
    else:
        newest = next(d for d, _, _ in stage_folders(folder, config) if list_checkpoints(d / "checkpoints"))
        load_checkpoint(newest, fall_back=True)
    return config


def flatten(config: RunConfig) -> dict[str, Any]:
    """Dotted field -> value, ``method_options`` written as ``method`` (as in overrides); no ``recipe``."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else key, item)
        else:
            out[prefix] = list(value) if isinstance(value, tuple) else value

    data = config.to_dict()
    data.pop("recipe", None)
    data.pop("data_as_typed", None)  # how the path was typed: the same data typed from another folder is no change
    options = data.pop("method_options", {}) or {}
    walk("", data)
    walk("method", options) if options else None
    out["method"] = config.method
    return out


def resume_changes(stored: RunConfig, requested: RunConfig) -> dict[str, list[Any]]:
    """The fields ``requested`` changes, each as [stored, requested]; any that defines the run (all but
    ``SAFE_ON_RESUME``) is an error that lists them."""
    old, new = flatten(stored), flatten(requested)
    changed = {k: [old.get(k), new.get(k)] for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}
    if old.get("method") != new.get("method"):  # another method's options are not changes of this one's
        changed = {k: v for k, v in changed.items() if not k.startswith("method.")}
    unsafe = {k: v for k, v in changed.items() if k not in SAFE_ON_RESUME}
    if unsafe:
        listed = ", ".join(f"{k} ({a!r} -> {b!r})" for k, (a, b) in unsafe.items())
        raise ConfigError(f"--resume cannot change what defines the run: {listed}; start a new run in another "
                          f"folder instead")
    return changed


def recorded_changes(folder: Path) -> dict[str, Any]:
    """Field -> the value the latest recorded resume (``resumes.jsonl``) changed it to."""
    found: dict[str, Any] = {}
    try:
        lines = (folder / RESUME_RECORD).read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        try:
            entry = json.loads(line)
            found.update({field: new for field, (_, new) in entry.get("changes", {}).items()})
        except (ValueError, TypeError, AttributeError):
            continue  # a torn line of a killed write
    return found


def record_resume(folder: Path, changes: dict[str, list[Any]], device: str) -> None:
    """Append one line to ``resumes.jsonl``: when, on what device, and what changed."""
    entry = {"resumed_at": datetime.datetime.now().isoformat(timespec="seconds"), "device": device,
             "changes": changes}
    with appending(folder / RESUME_RECORD) as handle:
        handle.write(json.dumps(entry) + "\n")


def stage_folders(folder: Path, stored: RunConfig) -> list[tuple[Path, RunConfig, str]]:
    """(folder, expected config, how it is named) of each stage of the run in ``folder``, the last first."""
    return [(folder / stage.folder if stage.folder else folder, stage.config,
             f"{stage.folder}'s config" if stage.folder else "config.json")
            for stage in reversed(default_stages(stored, with_init=False)) if stage.folder is not None]


def check_against_checkpoints(folder: Path, stored: RunConfig) -> None:
    """config.json against the newest checkpoint of the run (of its latest stage that has one): they must
    agree but for what a recorded resume changed."""
    for directory, ours, what in stage_folders(folder, stored):
        if not list_checkpoints(directory / "checkpoints"):
            continue
        state = load_checkpoint(directory, fall_back=True)
        theirs = config_from_dict(state["config"])
        allowed = recorded_changes(folder)
        old, new = flatten(theirs), flatten(ours)
        differ = {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new))
                  if old.get(k) != new.get(k) and allowed.get(k) != new.get(k)}
        if differ:
            listed = ", ".join(f"{k} (checkpoint {a!r}, {what} {b!r})" for k, (a, b) in differ.items())
            raise CheckpointError(f"{folder}: the newest checkpoint does not belong to the run that {what} "
                                  f"describes: {listed}; restore config.json, or start a new run from these "
                                  f"weights with --init {directory}")
        return  # the newest stage's checkpoint is the one that is continued


def requested_config(stored: RunConfig, changes: dict[str, Any], overrides: list[str],
                      requested: RunConfig | None) -> tuple[RunConfig, dict[str, list[Any]]]:
    """The stored config with what is asked for, and those changes; any change to what defines the run is
    an error listing them. ``train.epochs`` may extend or shorten the run and turns a time budget off."""
    if requested is None:
        requested = copy.deepcopy(stored)
        for dotted, value in changes.items():
            if value is not None and dotted != "train.epochs":
                set_field(requested, dotted, value)
        apply_overrides(requested, overrides)
        if changes.get("train.epochs") is not None:
            requested.train.epochs, requested.train.budget_seconds = changes["train.epochs"], 0.0
    requested = copy.deepcopy(requested)
    requested.recipe = stored.recipe
    epochs_instead = requested.train.epochs != stored.train.epochs and requested.train.budget_seconds == 0.0
    judged = copy.deepcopy(requested)
    if epochs_instead:
        judged.train.budget_seconds = stored.train.budget_seconds  # as --epochs does: a fixed length instead
    found = resume_changes(stored, judged)
    if epochs_instead and stored.train.budget_seconds:
        found["train.budget_seconds"] = [stored.train.budget_seconds, 0.0]
    requested.validate()
    return requested, found


def set_field(config: RunConfig, dotted: str, value: Any) -> None:
    """``config``'s field ``dotted`` (``n_clusters``, ``train.seed``, ``method.tau_instance``) set to ``value``."""
    *sections, name = dotted.split(".")
    target: Any = config
    for section in sections:
        target = getattr(target, "method_options" if section == "method" else section)
    setattr(target, name, value)


def check_data_fingerprint(folder: Path, data: Samples, stored: RunConfig) -> None:
    for directory, _, _ in stage_folders(folder, stored):
        if list_checkpoints(directory / "checkpoints"):
            stored = load_checkpoint(directory, fall_back=True).get("data_fingerprint")
            if stored is None:
                say(f"warning: the checkpoint in {directory} was written before checkpoints kept a fingerprint of "
                    f"their data; the data cannot be checked")
                return
            changed = differences(stored, fingerprint(data, samples=stored.get("samples") is not None))
            if changed:
                raise ContraclustError(f"{folder} was trained on other data: {'; '.join(changed)}. --resume "
                                       f"continues a run on its own data; to train on new data, start a new run "
                                       f"from this one's weights with --init {folder}")
            return
    raise ConfigError(f"{folder} has no checkpoint to resume")  # read_run_config has said so already
