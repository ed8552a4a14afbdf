"""A trainer's state in a checkpoint and back, and its log.

A checkpoint holds the weights, the optimiser, every random stream (the data order's, each rank's
augmentation's, Python's, numpy's and torch's), the schedule, the time plan, the history of log rows,
the config and the fingerprint of the data it trained on. Restoring continues the run exactly; where
that cannot be (another number of processes, or random streams of another kind of device, whose
generator states do not convert) the streams are re-seeded from the seed and the step, and it says so.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from torch import nn

from contraclust.console import say
from contraclust.files import appending
import contraclust.training.checkpoint as ckpt
from contraclust.training.budget import BudgetPlan
from contraclust.training.schedule import LearningRateSchedule


def trainer_state(trainer, epoch: int, step: int) -> dict[str, Any]:
    """What a checkpoint of ``trainer`` after ``step`` (the end of ``epoch``) holds."""
    return {
        "epoch": epoch,
        "step": step,
        "schedule": trainer.schedule.state(),
        "budget_plan": trainer.budget_plan.to_dict() if trainer.budget_plan else None,
        "model": trainer.method.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "order_generator": trainer.order_generator.get_state(),
        "augment_generator": trainer.augment_generator.get_state(),
        "generator_device": trainer.device.type,
        "rng": ckpt.global_rng_state(),
        "world_size": trainer.dist.world_size,
        "config": trainer.config.to_dict(),
        "data_fingerprint": trainer.data_fingerprint,
        "history": trainer.history,
        "mined_neighbours": trainer.miner.state() if trainer.miner is not None else None,
    }


def restore_trainer_state(trainer, state: dict[str, Any]) -> None:
    """Continue ``trainer`` from ``state``: the weights, optimiser, streams, position, history and, for a
    budgeted run, its plan; the run's start moves back by the time it had spent."""
    trainer.method.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    step = int(state.get("step", int(state["epoch"]) * trainer.steps_per_epoch))
    seed, rank = trainer.config.train.seed, trainer.dist.rank
    written_on = state.get("generator_device") or ckpt.generator_device_type(state["order_generator"])
    if written_on != trainer.device.type:
        # A CUDA generator's state (Philox) cannot be loaded into a CPU generator (Mersenne Twister) or
        # the reverse: both streams restart from (seed, step), so the run stays reproducible.
        trainer.order_generator.manual_seed(seed * 7919 + step)
        trainer.augment_generator.manual_seed(seed * 1_000_003 + step * 7919 + rank)
        if trainer.dist.is_main:
            say(f"resuming on {trainer.device.type} a run whose random streams were on {written_on}: the data "
                f"order and the views continue from streams re-seeded from the seed and step {step}")
    else:
        trainer.order_generator.set_state(state["order_generator"])
        if state.get("world_size", 1) == trainer.dist.world_size:
            trainer.augment_generator.set_state(state["augment_generator"])
        else:
            # A different number of processes: the data order continues exactly; augmentation
            # streams are re-seeded from (seed, epoch, rank), so the run stays reproducible.
            trainer.augment_generator.manual_seed(seed * 1_000_003 + state["epoch"] * 7919 + rank)
    if state.get("world_size", 1) == trainer.dist.world_size == 1:
        ckpt.restore_global_rng_state(state["rng"])
    trainer.start_epoch = int(state["epoch"])
    trainer.start_step = step
    trainer.history = list(state.get("history", []))
    if trainer.miner is not None:
        trainer.partner = trainer.miner.load_state(state.get("mined_neighbours"), trainer.device)
    if trainer.history:
        trainer.started_at -= trainer.history[-1]["wall_seconds"]  # the time the run had spent before
    if state.get("budget_plan") and trainer.config.train.budget_seconds:
        trainer.budget_plan = BudgetPlan.from_dict(state["budget_plan"])  # a resumed run keeps its plan
        trainer.schedule = LearningRateSchedule(**state["schedule"])


def resume_trainer(trainer, path: str | Path | None = None) -> bool:
    """Continue from the newest readable checkpoint under ``path`` (default: the trainer's folder), which
    must be of its method, K and backbone. False when there is none yet."""
    target = Path(path) if path else trainer.out_dir
    if target is None:
        return False
    directory = ckpt.checkpoint_folder(target)
    ckpt.remove_partial_writes(directory)
    if not ckpt.list_checkpoints(directory):
        return False
    state = ckpt.load_checkpoint(target, fall_back=True)
    ckpt.check_same_run(state, trainer.config, target)
    restore_trainer_state(trainer, state)
    return True


LOG_TAIL = ["lr", "nmi", "acc", "ari", "wall_seconds"]


def _log_fields(row: dict[str, Any]) -> list[str]:
    """epoch, loss, the method's loss parts in its order, then lr, metrics and time."""
    return ["epoch", "loss"] + [k for k in row if k not in LOG_TAIL + ["epoch", "loss"]] + LOG_TAIL


def append_log(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists() or path.stat().st_size == 0
    if new:
        fields = _log_fields(row)
    else:
        with open(path, newline="") as handle:
            fields = next(csv.reader(handle))
    with appending(path, newline="") as handle:  # a failed write leaves no torn row
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def rewrite_log(path: Path, history: list[dict[str, Any]]) -> None:
    """Start log.csv afresh from the rows that the checkpoint knows (drops rows of a killed run's tail).

    Written beside and renamed over the old log, so a reader (or a kill) never finds it missing or half
    rewritten."""
    fresh = path.with_name(f".{path.name}.rewrite")
    fresh.unlink(missing_ok=True)
    for row in history:
        append_log(fresh, row)
    if history:
        os.replace(fresh, path)
    else:
        path.unlink(missing_ok=True)


def checkpoint_seconds(module: nn.Module) -> float:
    """A generous estimate of one checkpoint write: the weights and two optimiser moments at 100 MB/s."""
    weights = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    return 0.05 + 3 * weights / 100e6
