"""Fitting with an optional initial stage: C3 is a fine-tuning stage after CC (spec 2.1, 2.6).

``fit_run`` is what the CLI and the Python API both call: it loads initial weights (``init``), or
for C3 without them first trains (or resumes, or reuses) a CC stage in ``OUT/cc-stage``. Under a
time budget both stages share it, counted from the same start: the CC stage must end by
``cc_stage_budget_fraction`` of it, and the C3 stage plans what is left.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path

from contraclust.config import RunConfig
from contraclust.console import say
from contraclust.data import Samples
from contraclust.methods import get_method
from contraclust.methods.cc import CCOptions
from contraclust.training.checkpoint import list_checkpoints, load_checkpoint
from contraclust.training.trainer import Trainer, TrainResult, build_method

CC_STAGE_FOLDER = "cc-stage"


def cc_stage_config(config: RunConfig) -> RunConfig:
    """The CC run that precedes a C3 run, with the C3 run's data, K, seed, model and augmentation (C3
    fine-tunes that very network with the same views) and the schedule of ``cc_stage_preset``: the
    preset the C3 run came from (set by ``build_config``), ``auto`` (the same recipe with method cc,
    rebuilt from the profiles stored in ``config.recipe``), or for configs built by hand the C3 run's
    own settings."""
    from contraclust.presets import get_preset
    from contraclust.recipes.auto import DataProfile, DeviceProfile, auto_recipe

    opts = config.method_options
    if opts.cc_stage_preset == "auto" and config.recipe:
        stage = auto_recipe(DataProfile(**config.recipe["data"]), DeviceProfile(**config.recipe["device"]),
                            config.n_clusters, "cc")
    elif opts.cc_stage_preset and opts.cc_stage_preset != "auto":
        stage = get_preset(opts.cc_stage_preset)
    else:
        stage = copy.deepcopy(config)
    stage.method = "cc"
    stage.method_options = CCOptions(**{k: v for k, v in vars(opts).items() if k in CCOptions.__dataclass_fields__})
    stage.n_clusters, stage.data = config.n_clusters, config.data
    stage.model, stage.augment = copy.deepcopy(config.model), copy.deepcopy(config.augment)
    stage.train.seed, stage.train.progress = config.train.seed, config.train.progress
    stage.train.precision, stage.train.channels_last = config.train.precision, config.train.channels_last
    if opts.cc_stage_epochs:
        stage.train.epochs = opts.cc_stage_epochs
    stage.train.budget_seconds = config.train.budget_seconds * opts.cc_stage_budget_fraction
    if opts.cc_stage_epochs:
        stage.train.budget_seconds = 0.0
    return stage


def initial_weights(init: str | Path, config: RunConfig, sample_shape: tuple[int, ...]) -> dict:
    """The model weights of run or checkpoint ``init``, refused (one error) unless they cover the whole
    backbone that ``config`` builds for samples of ``sample_shape``."""
    state = load_checkpoint(init)["model"]
    build_method(config, sample_shape).load_initial_state(state)
    return state


def fit_run(config: RunConfig, data: Samples, out_dir: Path | None, device, init: str | Path | None = None,
            resume: bool = False, started_at: float | None = None,
            init_state: dict | None = None, instance_data: Samples | None = None) -> tuple[Trainer, TrainResult]:
    """Train ``config`` (resuming from ``out_dir`` if asked); returns the trainer and its result.
    ``started_at``: the ``time.monotonic()`` reading a time budget counts from (default: now).
    ``init_state``: the weights of ``init`` when the caller has already read and checked them.
    ``instance_data``: extra unlabelled images for the instance loss only (STL-10's), used by the
    method when it has such a loss, else by C3's CC stage."""
    started_at = time.monotonic() if started_at is None else started_at
    if init_state is None and init:
        init_state = initial_weights(init, config, data.sample_shape)
    resumable = resume and out_dir is not None and list_checkpoints(out_dir / "checkpoints")
    if init_state is None and config.method == "c3" and not resumable:
        init_state, started_at = _cc_stage(config, data, out_dir, device, resume, started_at, instance_data)
    own_extra = instance_data if get_method(config.method).has_instance_loss else None
    trainer = Trainer(config, data, out_dir, device, init_state=init_state, started_at=started_at,
                      instance_data=own_extra)
    if resume and trainer.resume():
        say(f"resuming {out_dir} from epoch {trainer.start_epoch}")
    return trainer, trainer.fit()


def _cc_stage(config: RunConfig, data: Samples, out_dir: Path | None, device, resume: bool, started_at: float,
              instance_data: Samples | None = None) -> tuple[dict, float]:
    """The CC stage's weights, and the run's start moved back by any time it spent in earlier processes
    (so that the C3 stage's budget counts the whole run)."""
    stage_dir = out_dir / CC_STAGE_FOLDER if out_dir else None
    stage = cc_stage_config(config)
    if stage_dir is not None and (stage_dir / "metrics.json").exists():
        say(f"C3: reusing the finished CC stage in {stage_dir}")
        state = load_checkpoint(stage_dir)
        spent = state["history"][-1]["wall_seconds"] if state.get("history") else 0.0
        return state["model"], started_at - spent
    trainer = Trainer(stage, data, stage_dir, device, started_at=started_at, instance_data=instance_data)
    if resume and trainer.resume():
        say(f"C3: resuming the CC stage in {stage_dir} from epoch {trainer.start_epoch}")
    length = (f"{stage.train.budget_seconds:.0f} s of the {config.train.budget_seconds:.0f} s budget"
              if stage.train.budget_seconds else f"{stage.train.epochs} epochs")
    say(f"C3: training the CC stage first ({stage.preset}, {length})" + (f" into {stage_dir}" if stage_dir else ""))
    result = trainer.fit()
    if result.metrics:
        say("C3: CC stage " + "  ".join(f"{k.upper()} {result.metrics[k]:.4f}" for k in ("nmi", "acc", "ari")))
    return trainer.method.state_dict(), trainer.started_at
