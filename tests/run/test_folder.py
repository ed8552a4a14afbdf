"""One run per folder: the lock, fresh-folder checks and what a resume may change."""
import json
import logging
import os
import subprocess
import sys
import time

import pytest

from contraclust.api import ContrastiveClustering
from contraclust.errors import ConfigError, ContraclustError
from contraclust.presets import build_config
from contraclust.run.folder import LOCK_NAME, RunLock, check_fresh, holds_run
from contraclust.run.resume import read_run_config, resume_changes
from helpers import ROOT, TINY, cli_process, mnist_subset


def test_a_held_folder_is_refused_naming_its_holder(tmp_path):
    with RunLock(tmp_path / "run"):
        with pytest.raises(ContraclustError, match=f"in use by another run \\(pid {os.getpid()} on "):
            with RunLock(tmp_path / "run"):
                pass
    with RunLock(tmp_path / "run"):  # released: free again
        pass


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_warning(tmp_path, caplog):
    folder = tmp_path / "run"
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (folder / LOCK_NAME).write_text(json.dumps({"pid": int(dead.stdout), "host": os.uname().nodename,
                                                "since": "earlier"}))
    with caplog.at_level(logging.INFO, logger="contraclust"):
        with RunLock(folder):
            assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert "taking over the lock" in caplog.text and dead.stdout.strip() in caplog.text


def test_files_and_unwritable_places_are_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ContraclustError, match="is a file"):
        with RunLock(tmp_path / "file"):
            pass
    with pytest.raises(ContraclustError, match="cannot write the run folder"):
        with RunLock(tmp_path / "file" / "below"):
            pass


def test_fresh_runs_stay_out_of_folders_that_hold_one(tmp_path):
    check_fresh(tmp_path / "new")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "log.csv").write_text("epoch\n")
    (tmp_path / "old" / "metrics.json").write_text("{}")
    assert holds_run(tmp_path / "old")
    with pytest.raises(ContraclustError, match="already holds a run"):
        check_fresh(tmp_path / "old")


def test_a_run_stopped_before_its_first_checkpoint_starts_afresh_and_other_files_need_force(tmp_path):
    stopped = tmp_path / "stopped"
    (stopped / "checkpoints").mkdir(parents=True)
    (stopped / "config.json").write_text("{}")
    (stopped / "log.csv").write_text("epoch\n")
    check_fresh(stopped)
    assert not any(stopped.iterdir())  # its own files and empty folders removed
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ContraclustError, match=r"mine holds other files \(notes.txt\); .* give --force"):
        check_fresh(mine)
    check_fresh(mine, force=True)
    (mine / "report").mkdir()
    (mine / "report" / "q3.pdf").write_text("the user's")
    with pytest.raises(ContraclustError, match="already has report, which a run would overwrite"):
        check_fresh(mine, force=True)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_resume_changes_allow_only_what_does_not_define_the_run():
    stored = build_config("cc", None)
    same = build_config("cc", None)
    assert resume_changes(stored, same) == {}
    longer = build_config("cc", None, overrides=["train.epochs=7", "train.progress=false"])
    assert resume_changes(stored, longer) == {"train.epochs": [stored.train.epochs, 7],
                                              "train.progress": [True, False]}
    for changed, field in ((build_config("cc", None, n_clusters=5), "n_clusters"),
                           (build_config("cc", None, seed=3), "train.seed"),
                           (build_config("drc", None), "method"),
                           (build_config("cc", None, overrides=["optim.lr=0.1"]), "optim.lr"),
                           (build_config("cc", None, overrides=["method.tau_instance=0.2"]), "method.tau_instance")):
        with pytest.raises(ConfigError, match=field):
            resume_changes(stored, changed)


def test_a_folder_with_a_config_but_no_checkpoint_cannot_be_resumed(tmp_path):
    (tmp_path / "config.json").write_text(build_config("cc", None).to_json())
    with pytest.raises(ContraclustError, match="no checkpoint yet"):
        read_run_config(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="corrupt"):
        read_run_config(tmp_path)


def test_the_api_refuses_an_existing_run_unless_resuming(tmp_path):
    data = mnist_subset(tmp_path / "d.npz", 200)
    kwargs = dict(method="cc", preset="mnist5k-cpu", epochs=1, batch_size=100, device="cpu", progress=False,
                  overrides=TINY + ["train.checkpoint_every=1"], random_state=0)
    ContrastiveClustering(out_dir=tmp_path / "run", **kwargs).fit(str(data))
    with pytest.raises(ContraclustError, match="already holds a run"):
        ContrastiveClustering(out_dir=tmp_path / "run", **kwargs).fit(str(data))
    with pytest.raises(ConfigError, match="train.seed"):
        ContrastiveClustering(out_dir=tmp_path / "run", resume=True, **{**kwargs, "random_state": 1}).fit(str(data))
    model = ContrastiveClustering(out_dir=tmp_path / "run", resume=True, **{**kwargs, "epochs": 2}).fit(str(data))
    assert model.history_[-1]["epoch"] == 2
    record = [json.loads(line) for line in (tmp_path / "run" / "resumes.jsonl").read_text().splitlines()]
    assert record[-1]["changes"] == {"train.epochs": [1, 2]}


def test_two_concurrent_fits_on_one_folder(tmp_path):
    """The second refuses with one line naming the first; the first finishes intact."""
    data = mnist_subset(tmp_path / "d.npz", 400)
    out = tmp_path / "run"
    args = [sys.executable, "-m", "contraclust", "fit", "--data", str(data), "--method", "cc", "--preset",
            "mnist5k-cpu", "--epochs", "40", "--batch-size", "50", "--out", str(out), "--device", "cpu",
            "--no-progress", "--no-report", "--seed", "0"] + [a for t in TINY for a in ("--set", t)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with cli_process(*args[3:], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as first:
        deadline = time.time() + 120
        while not (out / LOCK_NAME).exists() or not (out / LOCK_NAME).read_text():
            assert first.poll() is None and time.time() < deadline, first.stderr.read()
            time.sleep(0.05)
        second = subprocess.run(args, env=env, capture_output=True, text=True)
        assert second.returncode == 1 and "Traceback" not in second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"in use by another run (pid {first.pid} on" in lines[0], second.stderr
        _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    log = (out / "log.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in log[1:]] == [str(e) for e in range(1, 41)]
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 40
    assert json.loads((out / "config.json").read_text())["train"]["epochs"] == 40
