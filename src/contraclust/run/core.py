"""A run: one training in one folder, and the one way every face (the CLI, the API, ``reproduce``,
``suggest-k``) trains and continues.

A :class:`Run` owns its folder: it holds the folder's lock for its life (rank 0 under torchrun),
refuses a folder that holds another run, writes ``config.json``, trains its stages in order
(``run/stages.py``: C3 without initial weights after a CC stage in ``cc-stage/``; a run that ends with
self-labelling after its method's training in ``before-self-label/``), counts a time budget from its start
across the stages, and ends with the trainer's ``metrics.json``, ``assignments.csv`` and ``readout.npz``,
``curves.png`` and the report. A run without a folder trains in memory.

``Run.resume(folder, ...)`` is the only way to continue one, and it trusts nothing it can check:
- the newest checkpoint holds its own config, which is the run's: ``config.json`` must agree with it
  (the newest stage's checkpoint against that stage's config as ``run/stages.py`` derives it from
  ``config.json``), but for fields that a recorded resume (``resumes.jsonl``) changed to that value; any
  other difference means the file was edited, or the checkpoint comes from another run, and is refused
  naming the fields;
- the changes asked for may touch only what does not define the run (``resume.SAFE_ON_RESUME``;
  ``train.epochs`` also turns a time budget off, as ``--epochs`` does);
- the data must be the data it trained on: the checkpoint's fingerprint of it (count, shape, a digest
  of the samples, the labels and the file paths) against the data's now, refused naming what changed.
  New data on purpose is a new run started from this one's weights (``--init``).
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from contraclust.config import RunConfig
from contraclust.console import say
from contraclust.data import Samples
from contraclust.data.fingerprint import fingerprint
from contraclust.files import removed_if_unfinished
from contraclust.methods import build_method, get_method
from contraclust.methods.self_label import SelfLabel
from contraclust.metrics import degenerate_partition
from contraclust.recipes.auto import recipe_lines
from contraclust.report.html import write_report
from contraclust.report.plots import plot_training_log
from contraclust.report.sizing import smallest_report_seconds
from contraclust.training.budget import Following
from contraclust.run.folder import (
    RunLock, check_fresh, main_process, refuse_a_folder_inside_the_data, refuse_a_held_folder,
    write_config,
)
from contraclust.run.stages import Stage, default_stages, self_labelling_skipped
from contraclust.run.resume import (
    check_against_checkpoints, check_data_fingerprint, read_run_config, record_resume, requested_config,
)
from contraclust.training.checkpoint import load_checkpoint
from contraclust.training.device import resolve_device
from contraclust.training.outputs import record_whole_run
from contraclust.training.state import checkpoint_seconds
from contraclust.training.trainer import Trainer, TrainResult, check_data, initial_weights

END_SECONDS = 0.3  # after the report: metrics.json's whole-run time, the lines printed, the process's exit


@dataclass
class RunResult(TrainResult):
    stages: list[str] = field(default_factory=list)


class Run:
    """A run of ``config`` on ``data`` in ``folder`` (None: in memory). Make one with :meth:`start` or
    :meth:`resume`, then :meth:`fit`."""

    def __init__(self, config: RunConfig, data: Samples, folder: str | Path | None, *, device=None,
                 init: str | Path | None = None, started_at: float | None = None, report: bool = False,
                 instance_data: Samples | None = None, stages: list[Stage] | None = None, resuming: bool = False,
                 announce: bool = True, force: bool = True):
        self.config = config
        self.data = data
        self.folder = Path(folder) if folder is not None else None
        self.device = resolve_device(device)
        self.init = init
        self.started_at = time.monotonic() if started_at is None else started_at
        self.report = report and self.folder is not None
        self.instance_data = instance_data
        self.stages = stages if stages is not None else default_stages(config, init is not None)
        self.resuming = resuming
        self.announce = announce
        self.force = force  # a new run may be written into a folder beside other files
        self.fingerprint = fingerprint(data, samples=not config.frozen_backbone)  # (embedded anew: last bits vary)
        self.changes: dict[str, list[Any]] = {}  # what a resume changed, recorded in resumes.jsonl
        self.trainer: Trainer | None = None  # the last stage's, once trained
        self._setup_seconds = 0.0  # how long the last stage's trainer took to build
        self.stage_epochs: list[int] = []  # the epochs of each stage, once trained
        self.result: RunResult | None = None
        check_data(config, data)
        # read and checked now, so that weights of another backbone are refused before anything is written
        self.init_state = initial_weights(init, self.stages[0].config, data.sample_shape) if init is not None else None

    # ----------------------------------------------------------------------------------- starting
    @classmethod
    def start(cls, config: RunConfig, data: Samples, folder: str | Path | None, **options) -> "Run":
        """A new run; a folder that holds a run is refused (continue that one with :meth:`resume`), and so
        is one that holds other files unless ``force=True``."""
        run = cls(config, data, folder, **options)
        if run.folder is not None and main_process():
            refuse_a_folder_inside_the_data(run.folder, config.data)
            refuse_a_held_folder(run.folder, run.force)
        return run

    @classmethod
    def resume(cls, folder: str | Path, load: Callable[[RunConfig], Samples], *, changes: dict[str, Any] | None = None,
               overrides: list[str] | None = None, requested: RunConfig | None = None, device=None,
               started_at: float | None = None, report: bool = False,
               instance_data: Samples | None = None) -> "Run":
        """Continue the run in ``folder`` (module docstring: what is checked). ``changes``: dotted fields and
        values (``{"train.epochs": 40}``), ``overrides``: ``section.field=value`` strings, ``requested``: a
        whole config (the API's), each against the run's config. ``load(config)`` reads the run's data."""
        folder = Path(folder)
        stored = read_run_config(folder)
        check_against_checkpoints(folder, stored)
        config, asked = requested_config(stored, changes or {}, overrides or [], requested)
        data = load(config)
        check_data_fingerprint(folder, data, config)
        run = cls(config, data, folder, device=device, started_at=started_at, report=report,
                  instance_data=instance_data, resuming=True)
        run.changes = asked
        return run

    # ----------------------------------------------------------------------------------- training
    def fit(self) -> RunResult:
        """Train every stage (reusing a finished prelude, resuming an interrupted stage) and write the outputs."""
        holding = self.folder is not None and main_process()
        with RunLock(self.folder) if holding else contextlib.nullcontext():
            if holding:
                if self.resuming:
                    record_resume(self.folder, self.changes, str(self.device))
                    if self.changes:
                        say("resuming with " + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in self.changes.items()))
                else:
                    check_fresh(self.folder, self.force)
                    write_config(self.folder, self.config)
            if self.announce:
                self._announce()
            started_at, weights = self.started_at, self.init_state
            for index, stage in enumerate(self.stages):
                after = self.stages[index + 1] if index + 1 < len(self.stages) else None
                weights, started_at = self._stage(stage, weights, started_at, after)
            self.result = RunResult(**vars(self._stage_result), stages=[s.name for s in self.stages])
            warning = degenerate_partition(self.result.labels, self.result.probabilities.shape[1])
            if warning is not None and main_process():
                say(f"warning: {warning}")
            if holding:
                self._write_figures(started_at)
                if (self.folder / "metrics.json").exists():
                    record_whole_run(self.folder, time.monotonic() - started_at)
            self.result.wall_seconds = time.monotonic() - started_at
        return self.result

    def _stage(self, stage: Stage, weights: dict | None, started_at: float,
               after: Stage | None = None) -> tuple[dict, float]:
        """Train (or resume, or reuse) one stage: its weights, and the run's start as it now counts (moved
        back by the time the stage spent in earlier processes). A budgeted prelude leaves room for the
        shortest run of the stage ``after`` it, and hands that stage the speeds it measured."""
        folder = self._folder_of(stage)
        about = f"{self.config.method.upper()}: " if stage.prelude else ""
        if stage.prelude and folder is not None and (folder / "metrics.json").exists():
            state = load_checkpoint(folder)
            say(f"{about}reusing the finished {stage.name} in {folder}")
            self.stage_epochs.append(int(state["epoch"]))
            return state["model"], started_at - (state["history"][-1]["wall_seconds"] if state.get("history") else 0.0)
        method = self._method_of(stage)
        has_instance_loss = method.has_instance_loss if method is not None else get_method(stage.config.method).has_instance_loss
        built = time.monotonic()
        trainer = Trainer(stage.config, self.data, folder, self.device, init_state=weights, started_at=started_at,
                          instance_data=self.instance_data if has_instance_loss else None, method=method,
                          data_fingerprint=self.fingerprint, prior_speed=self._measured_speed(stage),
                          threads=self._settled_threads())
        self._setup_seconds = time.monotonic() - built
        trainer.following = self._following(stage, after, trainer)
        if folder is not None and main_process():
            # as it trains now (a resume may have changed its epochs); the run's own folder holds the run's config
            write_config(folder, stage.config if stage.folder else self.config)
        if self.resuming and folder is not None and trainer.resume():
            say(f"{about}resuming " + (f"the {stage.name} in " if stage.prelude else "")
                + f"{folder} from epoch {trainer.start_epoch}")
        elif stage.prelude:
            train = stage.config.train
            length = (f"{train.budget_seconds:.0f} s of the {self.config.train.budget_seconds:.0f} s budget"
                      if train.budget_seconds else f"{train.epochs} epochs")
            say(f"{about}training the {stage.name} first ({stage.config.preset}, {length})"
                + (f" into {folder}" if folder else ""))
        elif stage.self_labelling:
            sl, train = stage.config.self_label, stage.config.train
            length = (f"until the {train.budget_seconds:.0f} s budget ends" if train.budget_seconds
                      else f"{train.epochs} epochs")
            say(f"self-labelling ({length}): cross-entropy on strong views of the samples whose clean prediction "
                f"passes {sl.threshold:g}" + (f", at most {sl.per_cluster_share:g} B/K per cluster" if sl.per_cluster_share
                                              else "") + (", class-balanced" if sl.balanced else ""))
        result = trainer.fit()
        if stage.prelude and result.metrics:
            say(f"{about}{stage.name} " + "  ".join(f"{k.upper()} {result.metrics[k]:.4f}" for k in ("nmi", "acc", "ari")))
        self.trainer, self._stage_result = trainer, result
        self.stage_epochs.append(result.epochs)
        return trainer.method.state_dict(), trainer.started_at

    def _method_of(self, stage: Stage):
        """The model a stage trains when it is not its config's method as built from the config: the caller's
        (``stage.build``), or the method wrapped for self-labelling; None for the config's own."""
        if stage.self_labelling:
            shape = self.data.sample_shape
            return SelfLabel(build_method(stage.config, shape), stage.config.self_label, shape)
        return stage.build() if stage.build else None

    def _following(self, stage: Stage, after: Stage | None, trainer: Trainer) -> Following | None:
        """For a prelude sharing the budget with the stage after it: that stage's shortest run, at this one's
        speeds (its setup measured as this one's), so the prelude ends early enough for it."""
        share, whole = stage.config.train.budget_seconds, after.config.train.budget_seconds if after else 0.0
        if not (stage.prelude and share and whole > share):
            return None
        return Following(whole, self._setup_seconds, checkpoint_seconds(trainer.method) if trainer.out_dir else 0.0,
                         after.config.train.after_seconds, share=1.0 - share / whole)

    def _settled_threads(self) -> int | None:
        """The CPU thread count the stage before chose: the next stage starts on it rather than probing
        again, which beside a busy process costs seconds of a short stage's share."""
        tuner = self.trainer.threads if self.trainer is not None else None
        return tuner.chosen if tuner is not None else None

    def _measured_speed(self, stage: Stage) -> tuple[float, float] | None:
        """The step and evaluation times the stage before measured, for a stage that trains the same network
        on the same data in the same batches (C3 after its CC stage); None otherwise."""
        before = self.trainer
        if before is None or before.budget_watch is None or stage.build is not None:
            return None
        same = (before.config.train.batch_size == stage.config.train.batch_size
                and before.config.model == stage.config.model and before.config.augment == stage.config.augment)
        return before.budget_watch.speed() if same else None

    def _announce(self) -> None:
        """What is about to train, in one line, and for a new run the auto recipe's choices with their reasons."""
        config, data = self.config, self.data
        length = (f"time budget {config.train.budget_seconds:.0f} s (at most {config.train.epochs} epochs)"
                  if config.train.budget_seconds else f"{config.train.epochs} epochs")
        say(f"{config.method} on {data.name}: {len(data)} samples, K={config.n_clusters}, preset {config.preset}, "
            f"{length}" + (f", run folder {self.folder}" if self.folder is not None else ""))
        if not self.resuming:
            for line in recipe_lines(config):
                say(line)
        skipped = self_labelling_skipped(config)
        if skipped:
            say(skipped)

    def _folder_of(self, stage: Stage) -> Path | None:
        if self.folder is None or stage.folder is None:
            return None
        return self.folder / stage.folder if stage.folder else self.folder

    def _write_figures(self, started_at: float) -> None:
        """curves.png, and the report unless it was turned off: inside a time budget, the report made to fit
        what is left of it (counted from ``started_at``), or skipped with one line."""
        try:
            if (self.folder / "log.csv").exists():
                with removed_if_unfinished(self.folder / "curves.png"):
                    plot_training_log(self.folder / "log.csv", self.folder / "curves.png")
        except ImportError:
            pass
        if self.report:
            budget = self.config.train.budget_seconds
            left = budget - (time.monotonic() - started_at) - END_SECONDS if budget else None
            written = write_report(self.folder, self.data, seconds=left)
            say(f"report: {written}" if written else
                f"report: skipped: {max(0.0, left):.1f} s of the time budget are left and the smallest report takes "
                f"about {smallest_report_seconds():.1f} s; `contraclust report {self.folder}` writes it")


