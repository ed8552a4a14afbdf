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

# Runs the CLI, but SIGKILLs itself inside the Nth checkpoint write: after part of the file
# ("partial") or after all of it, before the rename ("unrenamed").
DYING_WRITER = """
import os, signal, sys, torch
from contraclust.cli.main import main
real_save, calls = torch.save, [0]
at, mode = int(os.environ["DIE_AT_WRITE"]), os.environ["DIE_MODE"]
def save(obj, handle, *args, **kwargs):
    calls[0] += 1
    if calls[0] == at and mode == "partial":
        handle.write(b"PK\\x03\\x04 half a checkpoint")
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    real_save(obj, handle, *args, **kwargs)
    if calls[0] == at:
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)
torch.save = save
sys.exit(main(sys.argv[1:]))
"""


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
    resume = cli + ["fit", "--out", str(run), "--resume", "--no-progress", "--no-report", "--device", "cpu"]
    for _ in range(3):  # at random moments: while starting, training, evaluating or writing
        proc = subprocess.Popen(resume, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(1.0, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert_checkpoints_readable(run)
        if (run / "metrics.json").exists():
            break

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
