"""Threads chosen from measured speed (``contraclust/threads.py``): the tuner keeps the faster count, probes
again when the speed moves, and the user's count wins everywhere (the CLI, the environment, torch)."""
import logging
import os
import subprocess
import sys

import pytest

from contraclust import threads
from contraclust.threads import ThreadTuner, candidates
from helpers import ROOT


class Machine:
    """A fake CPU: seconds per item at each thread count, changeable (another process starts or ends)."""

    def __init__(self, seconds_per_item: dict[int, float]):
        self.per_item = dict(seconds_per_item)
        self.now = 0.0
        self.threads = None

    def clock(self) -> float:
        return self.now

    def apply(self, count: int) -> None:
        self.threads = count

    def run(self, tuner: ThreadTuner, items: int) -> list[int]:
        used = []
        for _ in range(items):
            used.append(self.threads)
            with tuner.timed():
                self.now += self.per_item[self.threads]
        return used


def test_candidates_are_all_cores_all_but_one_half_and_one():
    assert candidates(1) == [1]
    assert candidates(2) == [2, 1]
    assert candidates(16) == [16, 15, 8, 1]


def test_the_tuner_keeps_the_faster_count_and_says_so(caplog):
    machine = Machine({2: 0.4, 1: 0.2})  # beside a busy process: one thread twice as fast as two
    with caplog.at_level(logging.INFO, logger="contraclust"):
        tuner = ThreadTuner("training steps", "steps", [2, 1], machine.apply, machine.clock)
        used = machine.run(tuner, 20)
    assert not tuner.probing and tuner.current == 1 and used[-1] == 1
    assert used[:4] == [2, 2, 2, 1]  # three steps timed at 2, then 1 (its first step warms up, untimed)
    assert "threads: 1 for training steps (measured steps/s: 5.0 with 1, 2.5 with 2)" in caplog.text


def test_the_tuner_probes_again_when_the_speed_moves_and_returns_to_all_cores(caplog):
    machine = Machine({2: 0.4, 1: 0.2})
    tuner = ThreadTuner("training steps", "steps", [2, 1], machine.apply, machine.clock, window_seconds=2.0)
    machine.run(tuner, 20)
    assert tuner.current == 1
    machine.per_item = {2: 0.05, 1: 0.1}  # the other process ended: two threads are fastest again
    with caplog.at_level(logging.INFO, logger="contraclust"):
        used = machine.run(tuner, 80)
    assert tuner.probes == 2 and tuner.current == 2 and used[-1] == 2
    assert "threads: 2 for training steps (measured steps/s: 20.0 with 2, 10.0 with 1)" in caplog.text


def test_a_tuner_probes_again_after_a_while_even_when_the_speed_holds():
    machine = Machine({2: 0.1, 1: 0.2})
    tuner = ThreadTuner("steps", "steps", [2, 1], machine.apply, machine.clock, window_seconds=1.0,
                        reprobe_seconds=30.0)
    machine.run(tuner, 400)
    assert tuner.probes >= 2 and tuner.current == 2


def test_a_stage_starts_on_the_count_the_stage_before_chose_and_probes_only_when_the_speed_moves():
    """A run's next stage keeps the thread count chosen moments ago: beside a busy process a probe of two
    threads runs at a quarter of the speed, seconds that a short stage's share cannot spare."""
    machine = Machine({2: 2.0, 1: 0.1})
    tuner = ThreadTuner("steps", "steps", [2, 1], machine.apply, machine.clock, window_seconds=1.0, settled=1)
    assert machine.run(tuner, 50) == [1] * 50 and tuner.probes == 0 and tuner.settled_rate == pytest.approx(10.0)
    machine.per_item = {2: 0.05, 1: 0.2}  # the busy process ended: the speed moved, the tuner probes again
    machine.run(tuner, 80)
    assert tuner.probes == 1 and tuner.current == 2


@pytest.mark.parametrize("how", ["--threads", "OMP_NUM_THREADS", "torch.set_num_threads"])
def test_the_users_count_wins_and_nothing_is_probed(how, tmp_path):
    """A run whose threads the user set says so in its recipe lines and never changes them."""
    env = {k: v for k, v in os.environ.items() if k not in threads.ENV_VARIABLES}
    env["PYTHONPATH"] = str(ROOT / "src")
    fit = ["fit", "--data", "digits", "--epochs", "2", "--method", "cc", "--out", str(tmp_path / "run"),
           "--device", "cpu", "--no-progress", "--no-report"]
    script = ("import sys, torch\nfrom contraclust.cli.main import main\n"
              + ("torch.set_num_threads(1)\n" if how == "torch.set_num_threads" else "")
              + "code = main(sys.argv[1:])\nprint('threads at the end', torch.get_num_threads(), file=sys.stderr)\n"
              "sys.exit(code)")
    args = fit + (["--threads", "1"] if how == "--threads" else [])
    if how == "OMP_NUM_THREADS":
        env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"1 threads, as {how} sets" in done.stderr
    assert "threads: " not in done.stderr.replace("threads at the end", "")  # no probe said
    assert done.stderr.strip().endswith("threads at the end 1")


def test_without_the_users_count_a_cpu_run_chooses_and_says_so(tmp_path, monkeypatch):
    """The trainer probes its steps at each count (on a 2-core machine: 2 and 1) and keeps one."""
    for name in threads.ENV_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(threads, "_CHOSEN", 2)
    import torch

    from contraclust.data import read_sklearn_digits
    from contraclust.presets import build_config
    from contraclust.training.trainer import Trainer

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        trainer = Trainer(build_config("cc", "mnist5k-cpu", epochs=3, batch_size=64,
                                       overrides=["train.progress=false"]), read_sklearn_digits(), None, "cpu")
        assert trainer.threads is not None and trainer.threads.counts == [2, 1]
        trainer.fit()
        assert not trainer.threads.probing and set(trainer.threads.rates) == {1, 2}
        assert torch.get_num_threads() == trainer.threads.current
    finally:
        torch.set_num_threads(before)
