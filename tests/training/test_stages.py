import json

import torch

from contraclust.training.checkpoint import load_checkpoint
from helpers import TINY, mnist_subset, run_cli


def tiny_args():
    return [a for t in TINY for a in ("--set", t)]


def test_c3_without_init_runs_the_cc_stage_first(tmp_path):
    data = mnist_subset(tmp_path / "d.npz", 400)
    out = tmp_path / "c3"
    result = run_cli("fit", "--data", str(data), "--method", "c3", "--epochs", "1", "--batch-size", "100",
                     "--set", "method.cc_stage_epochs=2", "--device", "cpu", "--out", str(out), "--no-progress",
                     "--no-report", *tiny_args())
    assert result.returncode == 0, result.stderr
    assert "training the CC stage first" in result.stderr and "CC stage NMI" in result.stderr
    stage = json.loads((out / "cc-stage" / "config.json").read_text())
    assert stage["method"] == "cc" and stage["train"]["epochs"] == 2 and stage["model"]["width"] == 8
    assert json.loads((out / "config.json").read_text())["method"] == "c3"
    assert (out / "metrics.json").exists()
    # C3 alone leaves the cluster head as the CC stage trained it
    cc, c3 = load_checkpoint(out / "cc-stage")["model"], load_checkpoint(out)["model"]
    assert all(torch.equal(cc[k], c3[k]) for k in cc if k.startswith("cluster_head"))
    assert not all(torch.equal(cc[k], c3[k]) for k in cc if k.startswith("backbone"))


def test_c3_from_init_checkpoint(tmp_path):
    data = mnist_subset(tmp_path / "d.npz", 400)
    cc = run_cli("fit", "--data", str(data), "--method", "cc", "--epochs", "1", "--batch-size", "100", "--device",
                 "cpu", "--out", str(tmp_path / "cc"), "--no-progress", "--no-report", *tiny_args())
    assert cc.returncode == 0, cc.stderr
    c3 = run_cli("fit", "--data", str(data), "--method", "c3", "--init", str(tmp_path / "cc"), "--epochs", "1",
                 "--batch-size", "100", "--device", "cpu", "--out", str(tmp_path / "c3"), "--no-progress",
                 "--no-report", *tiny_args())
    assert c3.returncode == 0, c3.stderr
    assert "training the CC stage first" not in c3.stderr and not (tmp_path / "c3" / "cc-stage").exists()
    assert json.loads((tmp_path / "c3" / "metrics.json").read_text())["epochs"] == 1  # --epochs is C3's alone
