"""A run killed with SIGKILL at any point, also in the middle of writing a checkpoint, resumes to
exactly the weights of an uninterrupted run (CPU, bit-exact), and no checkpoint on disk is ever torn."""
import os
import random
import signal
import subprocess
import sys
import time

import torch

from contraclust.training.checkpoint import list_checkpoints, load_checkpoint, read_checkpoint_file
from helpers import ROOT, TINY, mnist_subset

# Runs the CLI, but SIGKILLs itself inside the Nth checkpoint write: after half of the file's bytes
# ("partial") or after all of them, before the rename ("unrenamed").
DYING_WRITER = """
import contextlib, os, signal, sys
import contraclust.training.checkpoint as checkpoint
from contraclust.cli.main import main
real_open_whole, calls = checkpoint.open_whole, [0]
at, mode = int(os.environ["DIE_AT_WRITE"]), os.environ["DIE_MODE"]

class Dying:
    def __init__(self, handle):
        self.handle = handle
    def write(self, data):
        data = bytes(data)
        self.handle.write(data[: len(data) // 2] if mode == "partial" else data)
        self.handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)

@contextlib.contextmanager
def dying_open_whole(path, *args, **kwargs):
    calls[0] += 1
    with real_open_whole(path, *args, **kwargs) as handle:
        yield Dying(handle) if calls[0] == at else handle

checkpoint.open_whole = dying_open_whole
sys.exit(main(sys.argv[1:]))
"""

def log_wall_seconds(run):
    """The wall_seconds column of the run's log.csv (one row per epoch logged)."""
    lines = (run / "log.csv").read_text().splitlines() if (run / "log.csv").exists() else []
    if not lines:
        return []
    column, seconds = lines[0].split(",").index("wall_seconds"), []
    for line in lines[1:]:
        try:
            seconds.append(float(line.split(",")[column]))
        except (IndexError, ValueError):  # a row being written
            break
    return seconds


def wait_for_a_new_epoch(run, proc, timeout=60.0):
    """Wait until ``proc`` (a resumed run) has logged an epoch of its own, so a kill after it lands in
    training, not in the start-up; False when the process ended first."""
    before, began = len(log_wall_seconds(run)), time.monotonic()
    while len(log_wall_seconds(run)) <= before:
        if proc.poll() is not None:
            return False
        assert time.monotonic() - began < timeout
        time.sleep(0.02)
    return True


def assert_checkpoints_readable(run):
    for path in list_checkpoints(run / "checkpoints"):
        read_checkpoint_file(path)


def test_sigkill_anywhere_then_resume_equals_an_uninterrupted_run(tmp_path):
    data = mnist_subset(tmp_path / "digits.npz", 400)
    args = ["fit", "--data", str(data), "--method", "cc", "--preset", "mnist5k-cpu", "--epochs", "8",
            "--batch-size", "50", "--seed", "3", "--no-progress", "--no-report", "--device", "cpu",
            "--set", "train.checkpoint_every=1"] + [a for t in TINY for a in ("--set", t)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cli = [sys.executable, "-m", "contraclust"]
    straight = subprocess.run(cli + args + ["--out", str(tmp_path / "straight")], env=env, capture_output=True,
                              text=True)
    assert straight.returncode == 0, straight.stderr

    run = tmp_path / "killed"
    dying = tmp_path / "dying.py"
    dying.write_text(DYING_WRITER)
    # In the middle of the 2nd checkpoint write, then after the 2nd write of the resumed run (not renamed).
    for at, mode in ((2, "partial"), (2, "unrenamed")):
        resume_args = ["fit", "--out", str(run), "--resume", "--no-progress", "--no-report", "--device", "cpu"]
        command = [sys.executable, str(dying)] + (
            args + ["--out", str(run)] if not list_checkpoints(run / "checkpoints") else resume_args)
        killed = subprocess.run(command, env={**env, "DIE_AT_WRITE": str(at), "DIE_MODE": mode},
                                capture_output=True, text=True)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert_checkpoints_readable(run)
        assert any(p.name.startswith(".epoch_") for p in (run / "checkpoints").iterdir())  # the torn temp file

    rng = random.Random(11)
    walls = log_wall_seconds(tmp_path / "straight")
    epoch_seconds = (walls[-1] - walls[0]) / (len(walls) - 1)
    resume = cli + ["fit", "--out", str(run), "--resume", "--no-progress", "--no-report", "--device", "cpu"]
    killed_at = []
    for _ in range(3):  # at random moments once training goes on: in a step, an evaluation or a write
        proc = subprocess.Popen(resume, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for_a_new_epoch(run, proc):
            break  # it finished before the kill
        time.sleep(rng.uniform(0.0, epoch_seconds))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at.append(len(log_wall_seconds(run)))
        assert_checkpoints_readable(run)
    # killed before the run had finished (the 8th epoch logged: in its last checkpoint or its final read-out)
    assert killed_at and all(epoch <= 8 for epoch in killed_at), killed_at

    if not (run / "metrics.json").exists():
        finished = subprocess.run(resume, env=env, capture_output=True, text=True)
        assert finished.returncode == 0, finished.stderr
    assert load_checkpoint(run)["epoch"] == 8
    assert not any(p.name.startswith(".epoch_") for p in (run / "checkpoints").iterdir())
    expected, got = load_checkpoint(tmp_path / "straight")["model"], load_checkpoint(run)["model"]
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    log_epochs = [line.split(",")[0] for line in (run / "log.csv").read_text().splitlines()[1:]]
    assert log_epochs == [str(e) for e in range(1, 9)]


def test_the_default_job_killed_in_its_cc_stage_and_in_its_c3_stage_resumes_to_the_same_assignments(tmp_path):
    """The auto recipe's two stages (a CC stage in cc-stage/, then C3), killed with SIGKILL inside each:
    the resumes continue the CC stage, then reuse the finished CC stage and continue C3, and the run ends
    with the assignments of an uninterrupted run (fixed epochs, CPU)."""
    data = mnist_subset(tmp_path / "digits.npz", 400)
    args = ["fit", "--data", str(data), "-k", "10", "--set", "train.budget_seconds=0", "--set", "train.epochs=3",
            "--set", "method.cc_stage_epochs=3", "--set", "self_label.enabled=false",  # the two stages of C3
            "--seed", "5", "--no-progress", "--no-report", "--device", "cpu", "--set", "train.checkpoint_every=1",
            "--set", "train.batch_size=50"] + [a for t in TINY for a in ("--set", t)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    straight = subprocess.run([sys.executable, "-m", "contraclust", *args, "--out", str(tmp_path / "straight")],
                              env=env, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr
    assert "training the CC stage first" in straight.stderr

    run, dying = tmp_path / "killed", tmp_path / "dying.py"
    dying.write_text(DYING_WRITER)
    resume = ["fit", "--out", str(run), "--resume", "--no-progress", "--no-report", "--device", "cpu"]
    # 1. the 2nd write of the first process: the CC stage's epoch 2, whole but not renamed
    first = subprocess.run([sys.executable, str(dying), *args, "--out", str(run)], capture_output=True, text=True,
                           env={**env, "DIE_AT_WRITE": "2", "DIE_MODE": "unrenamed"})
    assert first.returncode == -signal.SIGKILL and not (run / "cc-stage" / "metrics.json").exists(), first.stderr
    # 2. the resumed process writes the CC stage's epochs 2 and 3, then C3's epochs 1 and, torn, 2
    second = subprocess.run([sys.executable, str(dying), *resume], capture_output=True, text=True,
                            env={**env, "DIE_AT_WRITE": "4", "DIE_MODE": "partial"})
    assert second.returncode == -signal.SIGKILL, second.stderr
    assert "C3: resuming the CC stage in" in second.stderr and "from epoch 1" in second.stderr, second.stderr
    assert (run / "cc-stage" / "metrics.json").exists() and not (run / "metrics.json").exists()
    assert_checkpoints_readable(run)
    # 3. the last process reuses the finished CC stage and continues C3 from its epoch 1
    third = subprocess.run([sys.executable, "-m", "contraclust", *resume], capture_output=True, text=True, env=env)
    assert third.returncode == 0, third.stderr
    assert "C3: reusing the finished CC stage in" in third.stderr, third.stderr
    assert f"resuming {run} from epoch 1" in third.stderr, third.stderr
    for stage in ("", "cc-stage"):
        expected = (tmp_path / "straight" / stage / "assignments.csv").read_text()
        assert (run / stage / "assignments.csv").read_text() == expected, stage
    expected, got = load_checkpoint(tmp_path / "straight")["model"], load_checkpoint(run)["model"]
    assert all(torch.equal(expected[key], got[key]) for key in expected)
