"""Checkpoints hold tensors and plain data only; anything else is refused by every entry point."""
import shutil

import numpy as np
import pytest
import torch

from contraclust.api import ContrastiveClustering, load_model, predict_checkpoint
from contraclust.data import read_mnist5k
from contraclust.errors import CheckpointError, ConfigError, UnsafeCheckpointError
from contraclust.presets import build_config
from contraclust.run import Run
from contraclust.training import Trainer
from contraclust.training.checkpoint import (
    FORMAT_VERSION, list_checkpoints, load_checkpoint, read_checkpoint_file, save_checkpoint, to_plain,
)
from contraclust.training.trainer import initial_weights
from helpers import TINY, run_cli


def tiny_config(**kw):
    return build_config(kw.pop("method", "cc"), "mnist5k-cpu", n_clusters=kw.pop("k", 10), epochs=kw.pop("epochs", 2),
                        batch_size=64, seed=0, overrides=TINY + ["train.progress=false", "train.checkpoint_every=1"]
                        + kw.pop("overrides", []))


def small_data(n=256):
    data = read_mnist5k()
    data.images, data.labels = data.images[:n], data.labels[:n]
    return data


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("trained") / "run"
    Run.start(tiny_config(), small_data(), run, device="cpu").fit()  # a run folder, config.json included
    np.savez(run.parent / "data.npz", x=small_data().images.numpy()[:, 0], y=small_data().labels)
    return run


class CreatesAFile:
    """Unpickling this calls open(path, "w"): a file appears if a loader ever runs it."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def make_hostile(run, marker):
    """Replace every checkpoint of ``run`` by one that would create ``marker`` when unpickled."""
    genuine = load_checkpoint(run)
    for path in list_checkpoints(run / "checkpoints"):
        torch.save({**genuine, "payload": CreatesAFile(marker)}, path)


def test_checkpoint_round_trip_is_plain_and_versioned(trained_run):
    state = load_checkpoint(trained_run)
    assert state["format_version"] == FORMAT_VERSION and state["epoch"] == 2
    assert isinstance(state["rng"]["numpy"]["key"], torch.Tensor)
    with pytest.raises(TypeError, match="holds a"):
        to_plain({"ok": 1, "bad": object()})
    assert to_plain({"a": np.float64(1.5), "b": (np.int32(2), [np.ones(2)])})["a"] == 1.5


def test_hostile_checkpoint_is_refused_everywhere_and_never_runs(trained_run, tmp_path):
    run = tmp_path / "hostile"
    shutil.copytree(trained_run, run)
    marker = tmp_path / "code-ran"
    make_hostile(run, marker)
    data = str(trained_run.parent / "data.npz")
    with pytest.raises(CheckpointError, match="could run code"):
        load_checkpoint(run)
    with pytest.raises(CheckpointError, match="could run code"):
        load_model(run, (1, 28, 28))
    with pytest.raises(CheckpointError, match="could run code"):
        predict_checkpoint(run, small_data(), "cpu")
    with pytest.raises(CheckpointError, match="could run code"):
        ContrastiveClustering(init=run, epochs=1, device="cpu", progress=False, overrides=TINY).fit(small_data())
    with pytest.raises(CheckpointError, match="could run code"):
        Trainer(tiny_config(), small_data(), run, "cpu").resume()
    for args in (["evaluate", str(run), "--data", data], ["predict", str(run), "--data", data, "--output",
                                                                  str(tmp_path / "p.csv")],
                 ["fit", "--data", data, "--init", str(run), "--out", str(tmp_path / "new"), "--epochs", "1"],
                 ["fit", "--out", str(run), "--resume"]):
        result = run_cli(*args, "--device", "cpu")
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "could run code" in lines[0], result.stderr
    assert not marker.exists()


def test_formats_and_foreign_files_are_refused_by_name(trained_run, tmp_path):
    state = load_checkpoint(trained_run)
    torch.save({**state, "format_version": FORMAT_VERSION + 1}, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match="newer than"):
        read_checkpoint_file(tmp_path / "newer.pt")
    torch.save({k: v for k, v in state.items() if k != "format_version"}, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="no checkpoint format version"):
        read_checkpoint_file(tmp_path / "old.pt")
    torch.save({"weights": torch.ones(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a contraclust checkpoint"):
        read_checkpoint_file(tmp_path / "foreign.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable"):
        read_checkpoint_file(tmp_path / "junk.pt")


def test_resume_refuses_a_checkpoint_of_another_run(trained_run):
    for config, field in ((tiny_config(k=5), "n_clusters 10"), (tiny_config(method="drc"), "method cc"),
                          (tiny_config(overrides=["model.backbone=resnet18"]), "model.backbone small_cnn")):
        with pytest.raises(CheckpointError, match=field):
            Trainer(config, small_data(), trained_run, "cpu").resume()


def test_an_unreadable_newest_checkpoint_names_the_previous_and_resume_falls_back(trained_run, tmp_path):
    run = tmp_path / "torn"
    shutil.copytree(trained_run, run)
    newest, previous = list_checkpoints(run / "checkpoints")[::-1]
    newest.write_bytes(newest.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=f"previous checkpoint .*{previous.name}"):
        load_checkpoint(run)
    assert load_checkpoint(run, fall_back=True)["epoch"] == 1
    trainer = Trainer(tiny_config(epochs=3), small_data(), run, "cpu")
    assert trainer.resume() and trainer.start_epoch == 1
    trainer.fit()
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["epoch_0002.pt", "epoch_0003.pt"]
    read_checkpoint_file(run / "checkpoints" / "epoch_0002.pt")


def test_init_counts_tensors_and_refuses_another_backbone(trained_run):
    state = initial_weights(trained_run, tiny_config(method="c3"), (1, 28, 28))
    assert set(state) == set(load_checkpoint(trained_run)["model"])
    with pytest.raises(ConfigError, match="match 0 of this backbone's"):
        initial_weights(trained_run, tiny_config(overrides=["model.backbone=resnet18"]), (1, 28, 28))
    with pytest.raises(ConfigError, match="backbone's"):
        initial_weights(trained_run, tiny_config(), (3, 28, 28))


def test_keep_two_checkpoints(tmp_path):
    for epoch in range(1, 5):
        save_checkpoint(tmp_path, epoch, {"model": {"w": torch.ones(1) * epoch}, "config": {}})
    assert [p.name for p in list_checkpoints(tmp_path)] == ["epoch_0003.pt", "epoch_0004.pt"]


class RunsAShellCommand:
    """Unpickling this calls os.system: torch 2.13 refuses it as "unsupported GLOBAL posix.system whose module
    posix is blocked", which an older pattern took for a corrupt file, falling back to the previous one."""

    def __init__(self, path):
        self.command = f"touch {path}"

    def __reduce__(self):
        import os

        return os.system, (self.command,)


def test_a_checkpoint_naming_a_blocked_module_is_unsafe_and_never_falls_back(trained_run, tmp_path):
    run = tmp_path / "planted"
    shutil.copytree(trained_run, run)
    marker = tmp_path / "shell-ran"
    newest, older = list_checkpoints(run / "checkpoints")[-1], list_checkpoints(run / "checkpoints")[0]
    assert newest != older  # a good older checkpoint is there to fall back to: it must not be used
    torch.save({**load_checkpoint(newest), "payload": RunsAShellCommand(marker)}, newest)
    (run / "metrics.json").unlink()
    with pytest.raises(UnsafeCheckpointError, match=r"\(posix.system\), and loading it could run code"):
        load_checkpoint(run, fall_back=True)
    with pytest.raises(UnsafeCheckpointError):
        ContrastiveClustering.load(newest)
    resumed = run_cli("fit", "--out", str(run), "--resume", "--device", "cpu", "--no-report")
    assert resumed.returncode == 1 and "could run code" in resumed.stderr and "falling back" not in resumed.stderr
    assert not marker.exists()
