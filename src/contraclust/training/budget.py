"""Time budgets: a run sized by wall-clock time instead of epochs.

A budget is the wall time of the whole run, counted from when it started (for the CLI: when the
command started, so loading the data counts). The trainer asks :class:`BudgetKeeper` three things:

1. *calibration*: after a warm-up of at least 3 steps and 1 s (allocations, oneDNN primitives, CUDA
   compilation), it times the next steps until the measurement is long enough to trust;
2. *plan*: the number of steps that fit in what is left, counting the evaluations, checkpoints and a
   reserve for the final read-out and files. The plan is whole epochs unless that would waste more
   than a tenth of the budget; when even one epoch does not fit, the last epoch stops early.
   The learning-rate schedule is then set to end exactly at the planned step;
3. *guard*: over windows of at least 10 s (2% of the budget) it measures the speed and projects the
   end. The plan keeps a margin (2% of the budget, at least 3 s) for noise. When the projection eats
   into the time kept for the final files (the machine has slowed down: other work, thermal limits) the
   plan is shortened to restore the margin, and the cosine re-fitted from where it stands, so the run
   still ends in time. When the run is ahead by more than two margins (a brief slowdown has passed, or
   the calibration was pessimistic) the plan is lengthened; a resumed run never goes beyond the plan it
   resumed. The speed judged is the slower of the average since the plan and its mean with the last
   window.

Timings differ between processes, so under torchrun only rank 0 keeps the clock: at each log point
(the same step on every rank) the trainer broadcasts its verdict (plan now, a new length, or nothing),
and every rank acts on it there. A resumed run keeps the plan stored in its checkpoint. ``clock`` is injectable so tests can use a fake one.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass
from typing import Callable

from contraclust.errors import ConfigError

_UNITS = {"": 1, "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
          "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
          "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)")


def parse_duration(text: str | float | int) -> float:
    """Seconds from ``90``, ``90s``, ``10m``, ``1.5h``, ``1h30m`` or ``2 hours``; a ConfigError otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        raw = str(text).strip().lower()
        parts = _PART.findall(raw)
        if not raw or _PART.sub("", raw).strip() or any(unit not in _UNITS for _, unit in parts):
            raise ConfigError(f"cannot read the duration {text!r}; write e.g. 90s, 10m, 2h or 1h30m")
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"a time budget must be a positive duration, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


@dataclass
class BudgetPlan:
    """What the planner decided; stored in checkpoints and ``metrics.json``."""

    budget_seconds: float
    steps_per_second: float
    eval_seconds: float
    total_steps: int
    steps_per_epoch: int
    planned_at_seconds: float
    expected_seconds: float
    replans: int = 0
    first_total_steps: int = 0  # the first plan's length: a resumed run never goes beyond it

    def __post_init__(self) -> None:
        self.first_total_steps = self.first_total_steps or self.total_steps

    @property
    def epochs(self) -> int:
        return math.ceil(self.total_steps / self.steps_per_epoch)

    def describe(self) -> str:
        whole = self.total_steps % self.steps_per_epoch == 0
        epochs = f"{self.epochs} epochs" if whole else f"{self.total_steps / self.steps_per_epoch:.2f} epochs"
        return (f"time budget {format_duration(self.budget_seconds)}: measured {self.steps_per_second:.2f} steps/s "
                f"(one evaluation {self.eval_seconds:.1f} s) -> {epochs} ({self.total_steps} steps), expected end "
                f"after {format_duration(self.expected_seconds)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "BudgetPlan":
        return cls(**data)


@dataclass
class Following:
    """A stage that follows this one inside the same budget (C3 after its CC stage): the whole budget, and
    that stage's shortest run at the speeds measured here (same network, same data): ``setup_seconds``
    (building its trainer), ``min_steps`` steps, one read-out, a checkpoint, its files and the report
    (``after_seconds``, an unloaded machine's estimate, times the slowdown). ``share``: the part of the
    whole budget it gets when that is more than its shortest run."""

    whole_seconds: float
    setup_seconds: float
    checkpoint_seconds: float
    after_seconds: float
    share: float = 0.15
    min_steps: int = 10
    finish_seconds: float = 1.0

    def shortest(self, step_seconds: float, eval_seconds: float, slowdown: float = 1.0) -> float:
        needed = (self.setup_seconds + self.min_steps * step_seconds + eval_seconds + self.checkpoint_seconds
                  + (self.finish_seconds + self.after_seconds) * slowdown)
        return max(self.share * self.whole_seconds, needed)


@dataclass
class RunShape:
    """What the planner needs to know of the run besides time."""

    steps_per_epoch: int
    max_epochs: int
    eval_every: int
    evaluates: bool           # labels exist and eval_every > 0: evaluations during training
    checkpoint_every: int
    checkpoint_seconds: float  # 0 when nothing is written
    map_share: float = 0.0     # the map's embeddings written with the read-out, as a share of one evaluation


def evaluation_passes(first_epoch: int, total_steps: int, shape: RunShape) -> float:
    """Evaluations from ``first_epoch`` (inclusive) to the end: the periodic ones, plus the final read-out
    (with the map's embeddings when the run writes files)."""
    last_epoch = math.ceil(total_steps / shape.steps_per_epoch)
    periodic = 0
    if shape.evaluates:
        periodic = sum(1 for e in range(first_epoch, last_epoch) if e % shape.eval_every == 0)
    return periodic + 1 + shape.map_share


def checkpoint_writes(first_epoch: int, total_steps: int, shape: RunShape) -> int:
    if not shape.checkpoint_seconds:
        return 0
    last_epoch = math.ceil(total_steps / shape.steps_per_epoch)
    return sum(1 for e in range(first_epoch, last_epoch) if e % shape.checkpoint_every == 0) + 1


def steps_that_fit(time_left: float, step: int, step_seconds: float, eval_seconds: float, shape: RunShape) -> int:
    """The largest total step count whose remaining work fits in ``time_left`` (at least ``step + 1``)."""
    first_epoch = step // shape.steps_per_epoch + 1

    def cost(total: int) -> float:
        return ((total - step) * step_seconds + evaluation_passes(first_epoch, total, shape) * eval_seconds
                + checkpoint_writes(first_epoch, total, shape) * shape.checkpoint_seconds)

    low, high = step + 1, max(step + 1, shape.max_epochs * shape.steps_per_epoch)
    if cost(low) > time_left:
        return low
    while low < high:  # cost grows with total: binary search for the last total that fits
        middle = (low + high + 1) // 2
        low, high = (middle, high) if cost(middle) <= time_left else (low, middle - 1)
    whole = low - low % shape.steps_per_epoch
    if whole > step and low - whole <= 0.1 * low:
        return whole  # whole epochs, unless rounding down would waste more than a tenth
    return low


class BudgetKeeper:
    """Calibrates, plans and guards one run's time budget (see the module docstring)."""

    def __init__(self, budget_seconds: float, started_at: float, clock: Callable[[], float] = time.monotonic,
                 sync: Callable[[], None] = lambda: None, warmup_steps: int = 3, min_calibration_steps: int = 5,
                 min_calibration_seconds: float = 10.0, finish_seconds: float = 3.0,
                 min_window_seconds: float = 10.0, min_warmup_seconds: float = 1.0, after_seconds: float = 0.0,
                 following: Following | None = None, prior_step_seconds: float | None = None):
        """``finish_seconds``: the files at the end; ``after_seconds``: what follows them inside the budget (the
        report), an estimate at an unloaded machine's speed that grows with the slowdown the guard measures.
        ``following``: a later stage inside the same budget (``Following``): this one ends early enough for
        that stage's shortest run. ``prior_step_seconds``: the step time measured by an earlier stage on the
        same network and data: no calibration, the plan is made after the first step."""
        self.nominal_seconds = budget_seconds
        self.following = following
        self.after_seconds = after_seconds
        self._prior = prior_step_seconds
        self._planned_step_seconds: float | None = None
        self.budget_seconds = budget_seconds
        self.started_at = started_at
        self.clock = clock
        self.sync = sync
        self.warmup_steps = warmup_steps
        self.min_steps = min_calibration_steps
        self.min_seconds = min(min_calibration_seconds, 0.03 * budget_seconds)
        self.finish_seconds = finish_seconds
        self.min_window = min(min_window_seconds, 0.02 * budget_seconds)
        self.min_warmup = min(min_warmup_seconds, 0.01 * budget_seconds)
        self.plan: BudgetPlan | None = None
        self.may_extend = True  # beyond the first plan: not for a resumed run
        self._calibration_steps = 0
        self._calibration_first = 0
        self._first_step_at: float | None = None
        self._calibration_start: float | None = None
        self._step_seconds: float | None = None
        self._window: tuple[float, int] | None = None
        self._since_plan: list[float] = [0.0, 0.0]  # training seconds and steps since the plan
        self._excluded = 0.0

    # ------------------------------------------------------------------ time
    def elapsed(self) -> float:
        return self.clock() - self.started_at

    @property
    def margin(self) -> float:
        """Kept back for drift: 2% of the budget, at least 2 s."""
        return max(2.0, 0.02 * self.budget_seconds)

    @property
    def slowdown(self) -> float:
        """How much slower the steps run now than when the plan was made (at least 1): what the work after
        training (the report) is expected to slow down by too."""
        if self._planned_step_seconds is None or self._step_seconds is None:
            return 1.0
        return max(1.0, self._step_seconds / self._planned_step_seconds)

    @property
    def tail(self) -> float:
        """The files at the end and what follows them (the report), at the measured slowdown."""
        return (self.finish_seconds + self.after_seconds) * self.slowdown

    @property
    def reserve(self) -> float:
        """Kept back at planning: the final read-out's files, the report, and the margin for drift."""
        return self.tail + self.margin

    def _place_the_deadline(self, eval_seconds: float) -> None:
        """This stage's budget: its own share, or less where the stage that follows would not fit its
        shortest run into the rest of the whole budget (at the speeds measured now)."""
        if self.following is not None and self._step_seconds is not None:
            needed = self.following.shortest(self._step_seconds, eval_seconds, self.slowdown)
            self.budget_seconds = min(self.nominal_seconds, self.following.whole_seconds - needed)

    # ------------------------------------------------------------------ calibration
    @property
    def calibrating(self) -> bool:
        return self.plan is None

    @property
    def speed_known(self) -> bool:
        """The calibration has timed enough steps: a plan can be made."""
        return self._step_seconds is not None

    def step_done(self) -> bool:
        """Call after every training step until the plan is made; True when the speed is known (then it
        stays known: later calls until the plan measure nothing more, so they cost no device sync)."""
        if self._step_seconds is not None:
            return True
        self._calibration_steps += 1
        if self._prior is not None:  # an earlier stage measured this network and data: plan after one step
            self._step_seconds = self._prior
            return True
        if self._first_step_at is None:
            self._first_step_at = self.clock()
        if self._calibration_start is None:
            warm = self.clock() - self._first_step_at >= self.min_warmup
            if self._calibration_steps >= self.warmup_steps and warm:
                self.sync()
                self._calibration_start = self.clock()
                self._calibration_first = self._calibration_steps
                self._excluded = 0.0
            return False
        measured = self._calibration_steps - self._calibration_first
        spent = self.clock() - self._calibration_start - self._excluded
        enough = measured >= self.min_steps and spent >= self.min_seconds
        if not enough and spent < 0.03 * self.budget_seconds:
            return False
        self.sync()
        spent = self.clock() - self._calibration_start - self._excluded
        self._step_seconds = max(spent, 1e-9) / measured
        return True

    def exclude(self, seconds: float) -> None:
        """Time spent on something other than training steps (an evaluation) inside a timing window."""
        self._excluded += seconds

    def make_plan(self, step: int, eval_seconds: float, shape: RunShape) -> BudgetPlan:
        assert self._step_seconds is not None, "make_plan needs a finished calibration"
        self._planned_step_seconds = self._step_seconds
        self._place_the_deadline(eval_seconds)
        now = self.elapsed()
        time_left = self.budget_seconds - now - self.reserve
        total = steps_that_fit(time_left, step, self._step_seconds, eval_seconds, shape)
        first_epoch = step // shape.steps_per_epoch + 1
        expected = (now + (total - step) * self._step_seconds
                    + evaluation_passes(first_epoch, total, shape) * eval_seconds
                    + checkpoint_writes(first_epoch, total, shape) * shape.checkpoint_seconds + self.tail)
        self.plan = BudgetPlan(self.budget_seconds, 1.0 / self._step_seconds, eval_seconds, total,
                               shape.steps_per_epoch, round(now, 3), round(expected, 3))
        self.start_window(step)
        return self.plan

    def resume(self, plan: BudgetPlan, step: int, spent_seconds: float = 0.0) -> None:
        """Keep the plan of the run being resumed, which has already used ``spent_seconds`` of the budget
        (0 when ``started_at`` was already moved back by that time, as the trainer does)."""
        self.started_at -= spent_seconds
        self.may_extend = False
        self.plan = plan
        self._step_seconds = self._planned_step_seconds = 1.0 / plan.steps_per_second
        self.start_window(step)

    # ------------------------------------------------------------------ guard
    def start_window(self, step: int) -> None:
        self._window = (self.clock(), step)
        self._excluded = 0.0

    def check(self, step: int, shape: RunShape) -> int | None:
        """At a log point: a new total when the projected end has passed the deadline, or when a shortened
        plan can be lengthened back; else None."""
        if self.plan is None or self._window is None or step <= self._window[1]:
            return None
        began, first = self._window
        spent = self.clock() - began - self._excluded
        if spent < self.min_window:
            return None
        self._since_plan[0] += spent
        self._since_plan[1] += step - first
        average = self._since_plan[0] / self._since_plan[1]
        self._step_seconds = max(average, 0.5 * (average + spent / (step - first)))
        self.start_window(step)
        self._place_the_deadline(self.plan.eval_seconds)
        time_left = self.budget_seconds - self.elapsed() - self.tail
        slack = time_left - self._remaining_seconds(step, self.plan.total_steps, shape)
        cap = shape.max_epochs * shape.steps_per_epoch if self.may_extend else self.plan.first_total_steps
        behind = slack < 0 and self.plan.total_steps > step + 1
        ahead = slack > 2 * self.margin and self.plan.total_steps < cap
        if not (behind or ahead):
            return None
        fits = steps_that_fit(time_left - self.margin, step, self._step_seconds, self.plan.eval_seconds, shape)
        total = min(fits, cap) if ahead else min(fits, self.plan.total_steps - 1)
        if total == self.plan.total_steps:
            return None
        self.plan.total_steps = max(total, step)
        self.plan.replans += 1
        return self.plan.total_steps

    def _remaining_seconds(self, step: int, total: int, shape: RunShape) -> float:
        first_epoch = step // shape.steps_per_epoch + 1
        return ((total - step) * self._step_seconds
                + evaluation_passes(first_epoch, total, shape) * self.plan.eval_seconds
                + checkpoint_writes(first_epoch, total, shape) * shape.checkpoint_seconds)
