"""A trainer's time budget while it trains: the keeper (``budget.py``) on rank 0, and what every rank does.

Only rank 0 reads the clock. After each step it tells its keeper; at each log point (the same step on
every rank) it judges the loss and the budget, and broadcasts its verdict: the loss diverged, the speed
is known (plan now: every rank times one evaluation, rank 0 plans, the plan is broadcast), or the guard
has a new length. Every rank acts on the verdict there, so the collectives that follow agree on every
rank (a rank deciding by its own clock could otherwise reach a broadcast that the others never reach).
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import torch

from contraclust.console import say
from contraclust.readout import map_sample_share
from contraclust.training.budget import BudgetKeeper, RunShape, format_duration
from contraclust.training.distributed import broadcast_object
from contraclust.training.state import checkpoint_seconds


def finish_seconds(writes_files: bool) -> float:
    """The end of a run after its last read-out, at an unloaded 2-core CPU's speed: assignments.csv and
    metrics.json (0.02 s for 5,000 samples), curves.png (0.2 s), and loading matplotlib for it when no
    figure was drawn yet in this process (1.5 s)."""
    if not writes_files:
        return 0.5
    return 1.0 + (0.0 if "matplotlib.pyplot" in sys.modules else 1.5)


@dataclass
class Verdict:
    loss: float
    diverged: bool
    plan: bool            # the speed is known: plan now
    total: int | None     # the guard's new total step count

    @property
    def changes_length(self) -> bool:
        return self.plan or self.total is not None


class BudgetWatch:
    """The budget of ``trainer``'s ``fit``: a keeper when ``train.budget_seconds`` is set, fresh (it
    calibrates first) or holding the plan of the run being resumed; without a budget it only judges the
    loss."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.keeper = self._keeper()
        self._checkpoint_writes: list[float] = []  # measured seconds of this process's checkpoint writes

    def _keeper(self) -> BudgetKeeper | None:
        trainer = self.trainer
        train = trainer.config.train
        if not train.budget_seconds:
            return None
        on_cuda = trainer.device.type == "cuda"
        sync = torch.cuda.synchronize if on_cuda else (lambda: None)
        warmup = 3 + (5 if train.compile and on_cuda else 0)  # compilation happens in the first steps
        prior = trainer.prior_speed[0] if trainer.prior_speed else None
        keeper = BudgetKeeper(train.budget_seconds, trainer.started_at, trainer.clock, sync, warmup_steps=warmup,
                              finish_seconds=finish_seconds(trainer.out_dir is not None),
                              after_seconds=train.after_seconds, following=trainer.following,
                              prior_step_seconds=prior)
        if trainer.budget_plan is not None:
            keeper.resume(trainer.budget_plan, trainer.start_step)  # started_at already counts the time spent
        return keeper

    @property
    def calibrating(self) -> bool:
        return self.keeper is not None and self.keeper.calibrating

    def step_done(self) -> None:
        """After every training step: rank 0's keeper counts it while calibrating, once the threads are chosen
        (the steps of the threads' probe run at other counts: they warm up, they do not calibrate)."""
        tuner = self.trainer.threads
        if self.calibrating and self.trainer.dist.is_main and not (tuner and tuner.probing and tuner.probes == 1):
            self.keeper.step_done()

    def exclude(self, seconds: float) -> None:
        """Time spent on something other than training steps (an evaluation, a checkpoint)."""
        if self.keeper is not None:
            self.keeper.exclude(seconds)

    def evaluated(self, seconds: float) -> None:
        """An evaluation pass took ``seconds``: the plan's estimate moves halfway to it, so the guard
        projects the rest with what evaluations really cost (before the epoch's checkpoint stores the plan)."""
        plan = self.keeper.plan if self.keeper is not None else None
        if plan is not None:
            plan.eval_seconds = 0.5 * (plan.eval_seconds + seconds)

    def after_epoch(self, seconds: float, checkpointed: float | None) -> None:
        """The epoch's end took ``seconds``, none of it training; its checkpoint write (``checkpointed``
        seconds), as measured, replaces the planner's estimate of one from here on (a slow disk)."""
        self.exclude(seconds)
        if checkpointed is not None:
            self._checkpoint_writes.append(checkpointed)

    def at_log_point(self, step: int, mean_loss: torch.Tensor) -> Verdict:
        """Rank 0's verdict, the same on every rank, acted on: the plan made or the length changed."""
        trainer, verdict = self.trainer, None
        if trainer.dist.is_main:
            loss = float(mean_loss)  # the one read-back of the step loop
            planned = self.keeper is not None and not self.keeper.calibrating
            verdict = Verdict(loss, not math.isfinite(loss), self.calibrating and self.keeper.speed_known,
                              self.keeper.check(step, self.run_shape()) if planned else None)
        verdict = broadcast_object(verdict)
        if verdict.plan:
            self._plan(step)
        elif verdict.total is not None:
            self._replan(verdict.total, step)
        return verdict

    def run_shape(self) -> RunShape:
        trainer = self.trainer
        train = trainer.config.train
        writes = self._checkpoint_writes
        write_seconds = sum(writes) / len(writes) if writes else checkpoint_seconds(trainer.method)
        return RunShape(trainer.steps_per_epoch, train.epochs, train.eval_every,
                        trainer.data.labels is not None and train.eval_every > 0, train.checkpoint_every,
                        write_seconds if trainer.out_dir else 0.0,
                        map_sample_share(len(trainer.data)) if trainer.out_dir else 0.0)

    def speed(self) -> tuple[float, float] | None:
        """(seconds a step, seconds an evaluation) as measured by now, for a stage that follows on the same
        network and data; None without a plan."""
        keeper = self.keeper
        if keeper is None or keeper.plan is None or keeper._step_seconds is None:
            return None
        return keeper._step_seconds, keeper.plan.eval_seconds

    def _plan(self, step: int) -> None:
        """Time one evaluation (or take an earlier stage's), plan the steps that fit (rank 0 decides), end the
        schedule there."""
        trainer = self.trainer
        began = trainer.clock()
        eval_seconds = trainer.prior_speed[1] if trainer.prior_speed else self.time_evaluation()
        self.keeper.exclude(trainer.clock() - began)
        plan = self.keeper.make_plan(step, eval_seconds, self.run_shape()) if trainer.dist.is_main else None
        trainer.budget_plan = broadcast_object(plan)
        self.keeper.plan = trainer.budget_plan
        trainer.schedule.refit(trainer.budget_plan.total_steps, step)
        if trainer.dist.is_main:
            keeper = self.keeper
            shorter = (f" (its share, {format_duration(keeper.nominal_seconds)}, shortened so that the stage after it "
                       f"fits its shortest run)" if keeper.budget_seconds < keeper.nominal_seconds - 0.5 else "")
            earlier = " (speeds measured by the stage before)" if trainer.prior_speed else ""
            say(trainer.budget_plan.describe() + shorter + earlier)
            if trainer.budget_plan.expected_seconds > trainer.budget_plan.budget_seconds:
                say(f"warning: the time budget of {format_duration(trainer.budget_plan.budget_seconds)} cannot be "
                    f"met: the shortest run (what is done, a step, the read-out and the files) ends after "
                    f"{format_duration(trainer.budget_plan.expected_seconds)}; give a longer --budget")

    def _replan(self, total: int, step: int) -> None:
        """The guard's new length (rank 0's keeper has already taken it): end the schedule there."""
        trainer = self.trainer
        before = trainer.schedule.total_steps
        trainer.budget_plan.total_steps = total
        trainer.schedule.refit(total, step)
        if trainer.dist.is_main:
            how = "slower" if total < before else "faster again"
            say(f"time budget: running {how} than planned; the run now ends at step {total} "
                f"({total / trainer.steps_per_epoch:.1f} epochs)")

    @torch.no_grad()
    def time_evaluation(self) -> float:
        """Seconds one evaluation of the whole data set takes, from timing one evaluation batch (twice):
        gathering it, the forward pass and the method's read-out, scaled to the set (the read-out, e.g.
        CLC's Sinkhorn-Knopp over every sample, grows linearly with the rows too)."""
        trainer = self.trainer
        n = len(trainer.data)
        rows = min(n, trainer.config.train.eval_batch_size)
        sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
        method = trainer.method
        was_training = method.training
        method.eval()
        best = float("inf")
        for _ in range(2):
            sync()
            began = trainer.clock()
            x = trainer.augment.eval_view(trainer.source.gather(torch.arange(rows)))
            if trainer.use_channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with trainer.autocast():
                probabilities = method.cluster_probabilities(x).float()
            method.readout(probabilities).cpu()
            sync()
            best = min(best, trainer.clock() - began)
        method.train(was_training)
        return best * math.ceil(n / rows) / trainer.dist.world_size + 0.01 * n / 1000
