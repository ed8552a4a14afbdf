"""A run that ends with self-labelling (``--then self-label``): the method's training in before-self-label/,
the self-labelling stage in the run's own folder (read out, predicted and reported as the method's), a kill
in the stage resumed to exactly an uninterrupted run's weights, a budget too short for it skipped with one
line, and one that fits it kept."""
import json
import os
import signal
import subprocess
import sys

import torch

from contraclust.config import RunConfig
from contraclust.run.stages import default_stages
from contraclust.training.checkpoint import load_checkpoint
from helpers import ROOT, TINY, mnist_subset, run_cli

SELF_LABEL = ["--then", "self-label", "--set", "self_label.epochs=3", "--set", "self_label.threshold=0.5"]
DYING = """
import os, signal, sys
import contraclust.training.checkpoint as checkpoint
from contraclust.cli.main import main
real, calls = checkpoint.save_checkpoint, [0]
def dying(folder, epoch, state):
    real(folder, epoch, state)
    calls[0] += 1
    if calls[0] == int(os.environ["DIE_AFTER"]):
        os.kill(os.getpid(), signal.SIGKILL)
checkpoint.save_checkpoint = dying
sys.exit(main(sys.argv[1:]))
"""


def fit_args(data, *extra):
    return ["fit", "--data", str(data), "--method", "cc", "--preset", "mnist5k-cpu", "--epochs", "2",
            "--batch-size", "50", "--seed", "5", "--no-progress", "--device", "cpu", "--set",
            "train.checkpoint_every=1", *[a for t in TINY for a in ("--set", t)], *extra]


def test_the_stage_trains_in_the_run_folder_after_the_method_and_is_read_as_the_method(tmp_path):
    data = mnist_subset(tmp_path / "digits.npz", 300)
    done = run_cli(*fit_args(data, *SELF_LABEL, "--out", str(tmp_path / "run")))
    assert done.returncode == 0, done.stderr
    run = tmp_path / "run"
    assert (run / "before-self-label" / "metrics.json").exists() and (run / "readout.npz").exists()
    assert "self-labelling (3 epochs): cross-entropy on strong views" in done.stderr
    header = (run / "log.csv").read_text().splitlines()[0].split(",")
    assert "self_labelling" in header and "pseudo_labelled" in header
    state = load_checkpoint(run)
    assert state["epoch"] == 3 and state["config"]["augment"]["strong_ops"] == 4
    assert json.loads((run / "config.json").read_text())["self_label"]["enabled"] is True
    before = load_checkpoint(run / "before-self-label")["model"]
    assert state["model"].keys() == before.keys()  # the method's own weights, trained on
    assert any(not torch.equal(state["model"][k], before[k]) for k in before)
    predicted = run_cli("predict", str(run), "--output", str(tmp_path / "p.csv"), "--device", "cpu")
    assert predicted.returncode == 0, predicted.stderr
    assert (run / "report.html").exists()


def test_a_kill_inside_the_stage_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    data = mnist_subset(tmp_path / "digits.npz", 300)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    args = fit_args(data, *SELF_LABEL, "--no-report")
    straight = subprocess.run([sys.executable, "-m", "contraclust", *args, "--out", str(tmp_path / "straight")],
                              env=env, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr
    dying = tmp_path / "dying.py"
    dying.write_text(DYING)
    run = tmp_path / "killed"  # 2 checkpoints of the CC training, then the stage's first: killed after it
    killed = subprocess.run([sys.executable, str(dying), *args, "--out", str(run)], capture_output=True, text=True,
                            env={**env, "DIE_AFTER": "3"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert load_checkpoint(run)["epoch"] == 1
    resumed = subprocess.run([sys.executable, "-m", "contraclust", "fit", "--out", str(run), "--resume",
                              "--no-progress", "--no-report", "--device", "cpu"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "reusing the finished CC stage" in resumed.stderr and "from epoch 1" in resumed.stderr
    expected, got = load_checkpoint(tmp_path / "straight")["model"], load_checkpoint(run)["model"]
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_a_budget_too_short_for_the_stage_skips_it_and_says_so():
    config = RunConfig()
    config.self_label.enabled, config.train.budget_seconds = True, 30.0
    assert [s.name for s in default_stages(config, with_init=False)] == ["CC"]  # 25% of 30 s: 7.5 s, under 10 s
    config.train.budget_seconds = 100.0
    stages = default_stages(config, with_init=False)
    assert [(s.name, s.folder) for s in stages] == [("CC stage", "before-self-label"), ("self-labelling", "")]
    assert stages[0].config.train.budget_seconds == 75.0 and stages[1].config.train.budget_seconds == 100.0
    config.method = "c3"
    from contraclust.config import method_options_class
    config.method_options = method_options_class("c3")()
    assert [s.name for s in default_stages(config, with_init=False)] == ["CC stage", "C3 stage", "self-labelling"]


def test_a_budgeted_run_keeps_the_stage_inside_its_budget_or_skips_it_with_one_line(tmp_path, monkeypatch):
    data = mnist_subset(tmp_path / "digits.npz", 300)
    base = ["fit", "--data", str(data), "--method", "cc", "--preset", "mnist5k-cpu", "--batch-size", "50",
            "--no-progress", "--no-report", "--device", "cpu", *[a for t in TINY for a in ("--set", t)]]
    short = run_cli(*base, "--budget", "12s", "--then", "self-label", "--out", str(tmp_path / "short"))
    assert short.returncode == 0, short.stderr
    assert "self-labelling skipped: its 25% of the 12 s budget is 3.0 s, under the 10 s it needs" in short.stderr
    assert not (tmp_path / "short" / "before-self-label").exists()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # contraclust chooses the threads, in its own process
    kept = run_cli(*base, "--budget", "40s", "--then", "self-label", "--out", str(tmp_path / "kept"), process=True)
    assert kept.returncode == 0, kept.stderr
    metrics = json.loads((tmp_path / "kept" / "metrics.json").read_text())
    assert metrics["wall_seconds"] <= 40.0 * 1.02 and (tmp_path / "kept" / "before-self-label").exists()
    assert kept.stderr.count("threads: ") <= 1  # the stage keeps the thread count its prelude chose, unprobed
