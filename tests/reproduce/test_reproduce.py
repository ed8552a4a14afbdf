"""``reproduce``: the papers' tables as package data, the paper presets, and paper-against-measured runs."""
import csv
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from contraclust.data.benchmarks import BENCHMARKS
from contraclust.errors import ConfigError
from contraclust.presets import PRESETS, get_preset
from contraclust.reproduce import paper_preset, paper_result, paper_tables, reproduce
from helpers import ROOT, run_cli

SHARED_CIFAR10 = ROOT.parent / "shared" / "datasets" / "cifar10"
SMALL = [f"model.{f}" for f in ("width=8", "head_hidden=32", "feature_dim=16")]


def test_paper_tables_name_their_source_and_hold_the_spec_figures():
    tables = paper_tables()
    assert set(tables) == {"cc", "c3", "drc", "clc", "tcl"}
    assert paper_result("cc", "cifar10") == {"nmi": 0.705, "acc": 0.790, "ari": 0.637}
    assert paper_result("c3", "imagenet10")["acc"] == 0.942 and paper_result("drc", "stl10")["nmi"] == 0.644
    assert paper_result("clc", "imagenet1k") == {"nmi": None, "acc": 0.534, "ari": None}
    assert paper_result("c3", "stl10") is None and tables["cc"].epoch_reported == "last"
    for table in tables.values():
        assert table.paper and table.certainty and table.epoch_reported in ("last", "best", "unknown")
        for dataset, scores in table.results.items():
            assert dataset in BENCHMARKS or dataset == "imagenet1k"
            assert all(v is None or 0 < v < 1 for v in scores.values())


def test_every_paper_result_has_a_paper_preset_with_the_benchmarks_k():
    for method in ("cc", "c3", "drc", "clc"):
        for dataset in paper_tables()[method].results:
            if dataset == "imagenet1k":
                continue
            config = get_preset(paper_preset(method, dataset))
            assert config.method == method and config.n_clusters == BENCHMARKS[dataset].n_clusters
    c3 = get_preset("c3-paper-tiny-imagenet")
    assert (c3.optim.lr, c3.train.batch_size, c3.train.epochs) == (1e-5, 128, 20)
    assert c3.method_options.cc_stage_preset == "cc-paper-tiny-imagenet"
    assert get_preset("drc-paper-stl10").augment.size == 96 and get_preset("cc-paper-stl10").augment.size == 224
    assert sum(name.startswith(("cc-paper", "c3-paper", "drc-paper", "clc-paper")) for name in PRESETS) == 23
    with pytest.raises(ConfigError, match="no paper preset for c3 on stl10"):
        paper_preset("c3", "stl10")


def fake_cifar10(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 255, (20, 3072), dtype=np.uint8), b"labels": list(range(10)) * 2}, f)
    return root


def test_reproduce_trains_then_evaluates_its_checkpoint(tmp_path):
    data = fake_cifar10(tmp_path / "cifar")
    overrides = SMALL + ["train.batch_size=32", "augment.size=16", "train.eval_every=1"]
    report = reproduce("cc", "cifar10", data, tmp_path / "out", preset="cifar10-fast", epochs=2, limit=100,
                       device="cpu", overrides=overrides, progress=False)
    measured = report["measured"]
    assert report["n_samples"] == 100 and measured["epochs"] == 2 and measured["evaluated_epochs"] == [1, 2]
    log = list(csv.DictReader((tmp_path / "out" / "run" / "log.csv").open()))
    by_acc = max(log, key=lambda row: float(row["acc"]))  # best: the epoch of log.csv with the highest ACC
    assert measured["last"]["epoch"] == 2 and measured["last"]["acc"] == pytest.approx(float(log[-1]["acc"]), abs=1e-4)
    assert measured["best"]["epoch"] == int(by_acc["epoch"])
    assert measured["best"]["acc"] == pytest.approx(float(by_acc["acc"]), abs=1e-4)
    assert measured["images_per_second"] > 0 and report["papers"][0]["acc"] == 0.790
    written = json.loads((tmp_path / "out" / "reproduce.json").read_text())
    assert written["measured"]["last"] == measured["last"]
    assert "| measured, best epoch" in (tmp_path / "out" / "reproduce.md").read_text()
    again = reproduce("cc", "cifar10", data, tmp_path / "eval", checkpoint=tmp_path / "out" / "run", limit=100,
                      preset="cifar10-fast", device="cpu", overrides=overrides, progress=False)
    assert again["measured"]["last"] == {**measured["last"], "epoch": 2}


def test_reproduce_on_stl10_trains_the_unlabelled_images_with_the_instance_loss(tmp_path):
    root = tmp_path / "stl10_binary"
    root.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 20), ("unlabeled", 64)):
        rng.integers(0, 255, (n, 3, 96, 96), dtype=np.uint8).tofile(root / f"{split}_X.bin")
        if split != "unlabeled":
            (np.arange(n) % 10 + 1).astype(np.uint8).tofile(root / f"{split}_y.bin")
    report = reproduce("cc", "stl10", tmp_path, tmp_path / "out", preset="mnist5k-cpu", epochs=1, device="cpu",
                       overrides=SMALL + ["train.batch_size=32", "augment.size=16"], progress=False)
    assert report["unlabelled_instance_images"] == 64 and report["papers"][0]["acc"] == 0.850
    log = (tmp_path / "out" / "run" / "log.csv").read_text().splitlines()
    assert "unlabelled_instance" in log[0]


def test_reproduce_refuses_bad_requests_in_one_line(tmp_path):
    result = run_cli("reproduce", "--method", "cc", "--dataset", "stl10", "--data", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "not STL-10's binary layout" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = run_cli("reproduce", "--method", "c3", "--dataset", "stl10", "--data", str(tmp_path))
    assert result.returncode == 1 and "no paper preset for c3 on stl10" in result.stderr
    assert run_cli("reproduce", "--method", "cc", "--dataset", "mnist", "--data", ".").returncode == 2


@pytest.mark.slow
def test_ci_reproduce_command_on_the_shared_cifar10(tmp_path):
    """docs/reproduce.md's CI command: CC's paper preset (ResNet-34, batch 256) for one epoch on 500 images, here with
    the views made at 96 px instead of 224: the same path (reader, protocol, preset, training, read-out,
    tables) in a fifth of the time (one 224 px step takes about a minute on 2 cores)."""
    if not SHARED_CIFAR10.is_dir():
        pytest.skip("../shared/datasets/cifar10 not present")
    result = run_cli("reproduce", "--method", "cc", "--dataset", "cifar10", "--data", str(SHARED_CIFAR10),
                     "--limit", "500", "--epochs", "1", "--set", "augment.size=96", "--out", str(tmp_path / "out"),
                     "--no-progress", timeout=600)
    assert result.returncode == 0, result.stderr
    assert "| paper: CC, last epoch | 1000 | 0.705 | 0.790 | 0.637 |" in result.stdout
    assert "| measured, last epoch (epoch 1) | 1 |" in result.stdout and "images/s" in result.stdout
    report = json.loads((tmp_path / "out" / "reproduce.json").read_text())
    assert report["n_samples"] == 500 and report["preset"] == "cc-paper-cifar10"
