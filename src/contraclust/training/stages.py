"""Fitting with an optional initial stage: C3 is a fine-tuning stage after CC (spec 2.1, 2.6).

``fit_run`` is what the CLI and the Python API both call: it loads initial weights (``init``), or
for C3 without them first trains (or resumes, or reuses) a CC stage in ``OUT/cc-stage``.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

from contraclust.config import RunConfig
from contraclust.data import Samples
from contraclust.training.checkpoint import list_checkpoints, load_checkpoint
from contraclust.training.trainer import Trainer, TrainResult

CC_STAGE_FOLDER = "cc-stage"


def cc_stage_config(config: RunConfig) -> RunConfig:
    """The CC run that precedes a C3 run: the schedule of ``cc_stage_preset`` (set by ``build_config``
    to the preset the C3 run came from; the data's default preset for configs built by hand), with the
    C3 run's data, K, seed, model and augmentation (C3 fine-tunes that very network with the same views)."""
    from contraclust.presets import default_preset_for, get_preset

    opts = config.method_options
    stage = get_preset(opts.cc_stage_preset or default_preset_for(config.data, config.model.backbone != "mlp"))
    stage.method = "cc"
    stage.method_options = type(stage.method_options)(
        **{k: v for k, v in vars(opts).items() if k in vars(stage.method_options)})
    stage.n_clusters, stage.data = config.n_clusters, config.data
    stage.model, stage.augment = copy.deepcopy(config.model), copy.deepcopy(config.augment)
    stage.train.seed, stage.train.progress = config.train.seed, config.train.progress
    stage.train.precision, stage.train.channels_last = config.train.precision, config.train.channels_last
    if opts.cc_stage_epochs:
        stage.train.epochs = opts.cc_stage_epochs
    return stage


def fit_run(config: RunConfig, data: Samples, out_dir: Path | None, device, init: str | Path | None = None,
            resume: bool = False, say: Callable[[str], None] = lambda text: None) -> tuple[Trainer, TrainResult]:
    """Train ``config`` (resuming from ``out_dir`` if asked); returns the trainer and its result."""
    init_state = load_checkpoint(init)["model"] if init else None
    resumable = resume and out_dir is not None and list_checkpoints(out_dir / "checkpoints")
    if init_state is None and config.method == "c3" and not resumable:
        init_state = _cc_stage(config, data, out_dir, device, resume, say)
    trainer = Trainer(config, data, out_dir, device, init_state=init_state)
    if resume and trainer.resume():
        say(f"resuming {out_dir} from epoch {trainer.start_epoch}")
    return trainer, trainer.fit()


def _cc_stage(config: RunConfig, data: Samples, out_dir: Path | None, device, resume: bool, say):
    stage_dir = out_dir / CC_STAGE_FOLDER if out_dir else None
    stage = cc_stage_config(config)
    if stage_dir is not None and (stage_dir / "metrics.json").exists():
        say(f"C3: reusing the finished CC stage in {stage_dir}")
        return load_checkpoint(stage_dir)["model"]
    trainer = Trainer(stage, data, stage_dir, device)
    if resume and trainer.resume():
        say(f"C3: resuming the CC stage in {stage_dir} from epoch {trainer.start_epoch}")
    say(f"C3: training the CC stage first ({stage.preset}, {stage.train.epochs} epochs)"
        + (f" into {stage_dir}" if stage_dir else ""))
    result = trainer.fit()
    if result.metrics:
        say("C3: CC stage " + "  ".join(f"{k.upper()} {result.metrics[k]:.4f}" for k in ("nmi", "acc", "ari")))
    return trainer.method.state_dict()
