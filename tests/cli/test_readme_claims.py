"""What the README promises of the command line and the estimator, each run as a user would: Ctrl-C
(exit 130), a NaN loss (exit 1, the last good checkpoint kept and named), the cluster prior, ``fit
--image-size``, ``pack --format jpeg``, ``contraclust methods`` and an image estimator saved and loaded."""
import csv
import json
import signal
import subprocess
import time

import numpy as np
import pytest
import torch
from PIL import Image

from contraclust.training.checkpoint import list_checkpoints, read_checkpoint_file
from helpers import TINY, cli_process, digit_folder, mnist_subset, run_cli

FIT = ["--method", "cc", "--batch-size", "100", "--no-progress", "--device", "cpu", "--seed", "0"]


def tiny_args():
    return [a for t in TINY for a in ("--set", t)]


def test_ctrl_c_ends_with_130_keeping_the_last_checkpoint(tmp_path):
    data = mnist_subset(tmp_path / "d.npz", 400)
    run = tmp_path / "run"
    with cli_process("fit", "--data", str(data), "--epochs", "500", "--out", str(run), "--set",
                     "train.checkpoint_every=1", *FIT, *tiny_args(), stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE) as proc:
        began = time.monotonic()
        while not list_checkpoints(run / "checkpoints"):
            assert proc.poll() is None and time.monotonic() - began < 120, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == (f"contraclust: interrupted; the last checkpoint in {run} is kept: "
                                               f"continue with contraclust fit --out {run} --resume")
    assert "Traceback" not in stderr
    kept = list_checkpoints(run / "checkpoints")
    assert kept and 1 <= read_checkpoint_file(kept[-1])["epoch"] < 500
    assert not (run / "metrics.json").exists()


def test_a_nan_loss_ends_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from contraclust.training.trainer import Trainer

    real_step, steps = Trainer.train_step, [0]

    def poisoned_after_two_epochs(self, *args, **kwargs):  # 4 steps an epoch: the 9th step's loss is NaN
        steps[0] += 1
        if steps[0] == 9:
            with torch.no_grad():
                for p in self.method.parameters():
                    p.fill_(float("nan"))
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train_step", poisoned_after_two_epochs)
    data, run = mnist_subset(tmp_path / "d.npz", 400), tmp_path / "run"
    fit = run_cli("fit", "--data", str(data), "--epochs", "5", "--out", str(run), "--set",
                  "train.checkpoint_every=1", *FIT, *tiny_args())
    assert fit.returncode == 1, fit.stderr
    last = fit.stderr.strip().splitlines()[-1]
    kept = run / "checkpoints" / list_checkpoints(run / "checkpoints")[-1].name
    # the loss is read back at log points only (no host sync in the step): here the epoch's 4th and last step
    assert last == (f"contraclust: error: the loss became nan at epoch 3, step 4; lower the learning rate or check "
                    f"the data; the last good checkpoint is kept: {kept}"), fit.stderr
    state = read_checkpoint_file(kept)
    assert state["epoch"] == 2 and all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    assert not (run / "metrics.json").exists()


def test_the_cluster_prior_and_its_weight_reach_the_loss(tmp_path):
    data = mnist_subset(tmp_path / "d.npz", 400)
    losses = {}
    for name, prior in (("uniform", []), ("estimated", ["--cluster-prior", "estimated", "--prior-weight", "0.5"])):
        fit = run_cli("fit", "--data", str(data), "--epochs", "2", "--out", str(tmp_path / name), "--no-report",
                      *prior, *FIT, *tiny_args())
        assert fit.returncode == 0, fit.stderr
        losses[name] = [float(row["loss"]) for row in csv.DictReader((tmp_path / name / "log.csv").open())]
        options = json.loads((tmp_path / name / "config.json").read_text())["method_options"]
        assert (options["cluster_prior"], options["prior_weight"]) == (
            ("estimated", 0.5) if prior else ("uniform", 1.0))
    assert losses["estimated"] != losses["uniform"]  # the same seed, another balance term


def test_fit_image_size_resizes_a_folder_of_mixed_sizes(tmp_path):
    rng = np.random.default_rng(0)
    for cls, sides in (("a", (20, 20)), ("b", (24, 18))):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(24):
            Image.fromarray(rng.integers(0, 256, (*sides, 3), dtype=np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    run = tmp_path / "run"
    fit = run_cli("fit", "--data", str(tmp_path / "imgs"), "-k", "2", "--image-size", "16", "--epochs", "1",
                  "--out", str(run), "--no-report", "--set", "train.batch_size=16", *FIT[4:], *tiny_args())
    assert fit.returncode == 0, fit.stderr
    assert json.loads((run / "config.json").read_text())["augment"]["size"] == 16
    assert len((run / "assignments.csv").read_text().splitlines()) == 49
    assert "augment.size: 16 px: the side the images were loaded at" in fit.stderr  # never upscaled to 22


def test_pack_format_jpeg_then_fit_on_the_pack(tmp_path):
    folder = digit_folder(tmp_path / "digits", 200)
    pack = tmp_path / "digits.ccpack"
    packed = run_cli("pack", "--data", str(folder), "--size", "28", "--output", str(pack), "--format", "jpeg",
                     "--workers", "1", "--no-progress")
    assert packed.returncode == 0, packed.stderr
    assert (pack / "jpeg.bin").stat().st_size > 0 and np.load(pack / "offsets.npy").shape[0] in (200, 201)
    assert not (pack / "images.npy").exists()
    run = tmp_path / "run"
    fit = run_cli("fit", "--data", str(pack), "--epochs", "1", "--out", str(run), "--no-report", *FIT, *tiny_args())
    assert fit.returncode == 0, fit.stderr
    rows = list(csv.DictReader((run / "assignments.csv").open()))
    assert len(rows) == 200 and {row["label"] for row in rows} == {str(d) for d in range(10)}


def test_methods_lists_the_four_methods_with_their_summaries():
    from contraclust.methods import METHODS

    listed = run_cli("methods")
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
    assert names == ["cc", "c3", "drc", "clc"] == list(METHODS)
    for name, cls in METHODS.items():
        assert cls.summary in listed.stdout


def test_an_image_estimator_saves_loads_and_transforms(tmp_path):
    from contraclust import ContrastiveClustering
    from contraclust.data import read_mnist5k

    images = read_mnist5k().images.numpy()[:200, 0]
    model = ContrastiveClustering(n_clusters=10, method="cc", epochs=1, batch_size=100, random_state=0,
                                  device="cpu", progress=False, overrides=TINY).fit(images)
    assert model.config_.model.backbone == "small_cnn" and model.sample_shape_ == (1, 28, 28)
    embedded = model.transform(images)
    assert embedded.shape == (200, model.model_.backbone.out_dim) and np.allclose(np.linalg.norm(embedded, axis=1), 1, atol=1e-4)
    loaded = ContrastiveClustering.load(model.save(tmp_path / "cnn.pt"))
    assert np.array_equal(loaded.predict(images), model.predict(images))
    assert np.allclose(loaded.transform(images), embedded, atol=1e-6)
    assert np.allclose(loaded.predict_proba(images), model.predict_proba(images), atol=1e-6)
    with pytest.raises(ValueError, match="28"):
        loaded.predict(images[:, :14, :14])
