"""How many threads a loop of like work runs on, chosen from the loop's measured speed.

On a CPU that other programs share, the core count is the wrong answer. Measured on a 2-core machine
(``benchmarks/threads.py``, the default job's CC step on MNIST-5k): alone, 2 threads ran 9.9 steps/s and
one thread 5.9; beside one busy process, 2 threads fell to 2.5 steps/s while one thread kept 5.3. Two
threads that must share two cores with anything else wait at every barrier for the one that was
descheduled. So contraclust measures instead of guessing.

A :class:`ThreadTuner` times the loop's own work (training steps, embedding batches, decoded files) at
each candidate thread count for a short while, keeps the fastest, and probes again when the speed it
keeps measuring moves by a quarter from what the choice gave, or after a while (the other program may
have ended). The work is real work: a probe costs only the items run at the slower settings.

The user's setting wins, and nothing is probed then: ``--threads N`` (API ``threads=N``),
``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS``, or ``torch.set_num_threads`` called before (a count other
than torch's default). Under torchrun every process gets its share of the cores, unprobed: the
processes' speeds are tied together by their collectives.
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Callable, Iterator

from contraclust.console import say

_ASKED: int | None = None       # --threads / threads=, for the whole process
_CHOSEN: int | None = None      # what a tuner of torch's threads set last (not the user's doing)
ENV_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def available_cores() -> int:
    """Physical cores this process may run on: what torch starts with (it counts cores, not hyper-threads,
    within the process's affinity)."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cores, processor, physical = set(), None, "0"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "processor":
                processor = int(value)
            elif key == "physical id":
                physical = value
            elif key == "core id" and processor in allowed:
                cores.add((physical, value))
    except (OSError, ValueError):
        pass
    return max(1, len(cores) or len(allowed))


def ask_for_threads(threads: int | str | None) -> None:
    """The user's ``--threads`` (None or ``auto``: contraclust chooses), for this process."""
    global _ASKED
    if threads in (None, "auto"):
        _ASKED = None
        return
    import torch

    _ASKED = int(threads)
    torch.set_num_threads(_ASKED)


@contextlib.contextmanager
def threads_asked(threads: int | str | None) -> Iterator[None]:
    """:func:`ask_for_threads` for the block only (the estimator's ``threads=``)."""
    global _ASKED
    before = _ASKED
    ask_for_threads(threads)
    try:
        yield
    finally:
        _ASKED = before


def users_threads() -> tuple[int, str] | None:
    """The thread count the user set and where, or None when contraclust chooses."""
    if _ASKED is not None:
        return _ASKED, "--threads"
    for name in ENV_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value), name
    import torch

    current = torch.get_num_threads()
    if current not in (_CHOSEN, available_cores()):
        return current, "torch.set_num_threads"
    return None


def candidates(cores: int) -> list[int]:
    """The counts worth probing, the core count first: all cores, all but one (one busy neighbour), half, one."""
    return sorted({cores, max(1, cores - 1), max(1, cores // 2), 1}, reverse=True)


def set_torch_threads(count: int) -> None:
    global _CHOSEN
    import torch

    _CHOSEN = count
    torch.set_num_threads(count)


def torch_threads_line(device_type: str = "cpu") -> str:
    """How the threads of a run are set, for the recipe's lines."""
    if device_type != "cpu":
        return ""
    user = users_threads()
    if user is not None:
        return f"{user[0]} threads, as {user[1]} sets"
    return f"threads chosen from the measured speed among {', '.join(map(str, candidates(available_cores())))}"


class ThreadTuner:
    """Chooses a thread count for a loop from its measured speed (module docstring).

    ``apply(n)`` sets the count. Time the items with :meth:`timed` (one item run in the block), or with
    :meth:`start` then :meth:`tick` (items that finish while the tuner's clock runs: a pool's results).
    ``what`` and ``unit`` name the work in the lines said; ``warmup``: the first items are not timed."""

    def __init__(self, what: str, unit: str, counts: list[int], apply: Callable[[int], None],
                 clock: Callable[[], float] = time.perf_counter, min_items: int = 3, min_seconds: float = 0.4,
                 window_seconds: float = 10.0, reprobe_seconds: float = 120.0, quiet: bool = False,
                 warmup: int = 0, settled: int | None = None):
        """``settled``: a count an earlier loop of this process chose moments ago (a run's stage before):
        the loop starts on it unprobed, and probes only when its speed moves or after ``reprobe_seconds``.
        On a busy machine a probe of the slower counts costs seconds, more than a short stage can spare."""
        self.what, self.unit, self.counts, self.apply, self.clock = what, unit, list(counts), apply, clock
        self.min_items, self.min_seconds = min_items, min_seconds
        self.window_seconds, self.reprobe_seconds = window_seconds, reprobe_seconds
        self.quiet = quiet
        self.current = self.counts[0]
        self.chosen: int | None = None  # the count the last probe settled on
        self.rates: dict[int, float] = {}
        self.settled_rate: float | None = None
        self._queue: list[int] = []
        self._spent = self._items = 0.0
        self._skip = 0
        self._mark: float | None = None
        self._settled_at = 0.0
        self.probes = 0
        if settled in self.counts:
            self.current = self.chosen = settled
            self._settled_at = self.clock()
            self.apply(settled)
        else:
            self.apply(self.current)
            self._probe()
        self._skip = warmup  # the loop's first items (caches, kernels' first calls) are not timed

    @property
    def probing(self) -> bool:
        return bool(self._queue)

    def _probe(self) -> None:
        """Measure every candidate again, the current one first (no switch before its measurement)."""
        self._queue = [self.current] + [c for c in self.counts if c != self.current]
        self.rates = {}
        self.probes += 1
        self._begin(self._queue[0])

    def _begin(self, count: int) -> None:
        if count != self.current:
            self.current = count
            self.apply(count)
            self._skip = 1  # the first item after a switch warms the new threads: not timed
        self._spent = self._items = 0.0

    @contextlib.contextmanager
    def timed(self, items: float = 1) -> Iterator[None]:
        began = self.clock()
        yield
        self._record(self.clock() - began, items)

    def start(self) -> None:
        """The clock of :meth:`tick` starts (again) now: a pause before is not counted."""
        self._mark = self.clock()

    def tick(self, items: float = 1) -> None:
        now = self.clock()
        if self._mark is None:
            self._mark = now
            return
        spent, self._mark = now - self._mark, now
        self._record(spent, items)

    def _record(self, seconds: float, items: float) -> None:
        if self._skip:
            self._skip -= 1
            return
        self._spent += seconds
        self._items += items
        if self._queue:
            if self._items >= self.min_items and self._spent >= self.min_seconds:
                self.rates[self.current] = self._items / self._spent
                self._queue.pop(0)
                if self._queue:
                    self._begin(self._queue[0])
                else:
                    self._settle()
            return
        if self._spent >= self.window_seconds:
            rate = self._items / self._spent
            if self.settled_rate is None:  # started settled: the first window is the speed to keep
                self.settled_rate = rate
            moved = not 0.75 <= rate / self.settled_rate <= 1.33
            if moved or self.clock() - self._settled_at >= self.reprobe_seconds:
                self._probe()
            else:
                self._spent = self._items = 0.0

    def _settle(self) -> None:
        best = max(self.rates, key=self.rates.get)
        changed, self.chosen = best != self.chosen, best
        self._begin(best)
        self.settled_rate = self.rates[best]
        self._settled_at = self.clock()
        if changed and not self.quiet and len(self.rates) > 1:
            fastest_first = sorted(self.rates.items(), key=lambda item: -item[1])
            measured = ", ".join(f"{rate:.1f} with {count}" for count, rate in fastest_first)
            say(f"threads: {best} for {self.what} (measured {self.unit}/s: {measured})")


def torch_tuner(what: str, unit: str, device_type: str = "cpu", **options) -> ThreadTuner | None:
    """A tuner of torch's threads for ``what`` on a CPU whose threads the user has not set; None on CUDA or
    where the user set them. Under torchrun each process takes its share of the cores instead, unprobed.
    ``options``: :class:`ThreadTuner`'s (``settled``: start on an earlier loop's choice, unprobed)."""
    if device_type != "cpu" or users_threads() is not None:
        return None
    local = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    if local > 1:
        set_torch_threads(max(1, available_cores() // local))
        return None
    counts = candidates(available_cores())
    if _CHOSEN in counts:  # what the last loop settled on is measured first
        counts.remove(_CHOSEN)
        counts.insert(0, _CHOSEN)
    return ThreadTuner(what, unit, counts, set_torch_threads, **options) if len(counts) > 1 else None


def worker_counts(most: int) -> list[int]:
    """The counts of concurrent workers worth probing for work that leaves the GIL (decoding image files):
    ``most`` first, or the user's count alone."""
    user = users_threads()
    return [user[0]] if user is not None else candidates(most)
