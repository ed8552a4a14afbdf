"""The Run: one folder, one lock, one set of resume rules for every face. The CLI and the API are driven
through the same resume cases and must refuse each with the same message; a resume trusts nothing it can
check (an edited config.json, changed data, a checkpoint planted from another run)."""
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from contraclust import ContrastiveClustering
from contraclust.errors import ContraclustError
from contraclust.run import Run
from contraclust.training.checkpoint import list_checkpoints, load_checkpoint
from helpers import TINY, run_cli_here

BASE = dict(method="cc", preset="mnist5k-cpu", n_clusters=2, epochs=2, batch_size=8, random_state=0,
            device="cpu", progress=False, overrides=TINY + ["augment.size=16", "train.checkpoint_every=1"])


def image_folder(root, n=12):
    """Two classes of ``n`` small grey PNG images each."""
    rng = np.random.default_rng(0)
    for c, level in (("dark", 60), ("light", 190)):
        (root / c).mkdir(parents=True)
        for i in range(n):
            pixels = np.clip(rng.normal(level, 30, (16, 16)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i:02d}.png")
    return root


def trained_run(tmp_path, name="run"):
    """A finished two-epoch run (the API's) on a folder of its own, and that folder."""
    data = image_folder(tmp_path / f"{name}-data")
    ContrastiveClustering(**BASE, out_dir=tmp_path / name).fit(str(data))
    return tmp_path / name, data


def refusals(run, data, api_changes=None, cli_args=()):
    """The message the API and the one line the CLI give when asked to resume ``run`` (on ``data``) with the
    same change; both are refusals, or the test fails."""
    with pytest.raises(ContraclustError) as refused:
        ContrastiveClustering(**{**BASE, **(api_changes or {})}, out_dir=run, resume=True).fit(str(data))
    cli = run_cli_here("fit", "--out", str(run), "--resume", "--no-report", *cli_args)
    assert cli.returncode == 1 and "Traceback" not in cli.stderr, cli.stderr
    line = cli.stderr.strip().splitlines()[-1]
    return str(refused.value), line.removeprefix("contraclust: error: ")


@pytest.mark.parametrize("api_changes,cli_args,named", [
    ({"n_clusters": 3}, ("-k", "3"), "n_clusters (2 -> 3)"),
    ({"random_state": 7}, ("--seed", "7"), "train.seed (0 -> 7)"),
    ({"batch_size": 4}, ("--batch-size", "4"), "train.batch_size (8 -> 4)"),
    ({"method": "drc"}, ("--method", "drc"), "method ('cc' -> 'drc')"),
    ({"overrides": BASE["overrides"] + ["optim.lr=0.5"]}, ("--set", "optim.lr=0.5"), "optim.lr"),
])
def test_the_api_and_the_cli_refuse_the_same_changes_with_the_same_message(tmp_path, api_changes, cli_args, named):
    run, data = trained_run(tmp_path)
    api, cli = refusals(run, data, api_changes, cli_args)
    assert api == cli and named in api and "cannot change what defines the run" in api


def test_an_edited_config_json_is_refused_naming_the_fields(tmp_path):
    """config.json says batch 4 and 900,000 epochs; the checkpoint knows better: refused, not trained on.
    (10^12 epochs is refused before that, as out of train.epochs's declared range.)"""
    run, data = trained_run(tmp_path)
    stored = json.loads((run / "config.json").read_text())
    stored["train"]["batch_size"], stored["train"]["epochs"] = 4, 900_000
    (run / "config.json").write_text(json.dumps(stored))
    api, cli = refusals(run, data)
    assert api == cli and "train.batch_size (checkpoint 8, config.json 4)" in api
    assert "train.epochs (checkpoint 2, config.json 900000)" in api and "--init" in api
    stored["train"]["epochs"] = 10 ** 12
    (run / "config.json").write_text(json.dumps(stored))
    api, cli = refusals(run, data)
    assert api == cli and "train.epochs must be at most" in api


def test_a_longer_run_asked_for_is_continued_and_recorded_and_resumes_again(tmp_path):
    """--epochs may extend a run: config.json then differs from the checkpoint in what resumes.jsonl records,
    which a later resume accepts (also after that resume was killed before its first checkpoint)."""
    run, data = trained_run(tmp_path)
    config = json.loads((run / "config.json").read_text())
    extended = run_cli_here("fit", "--out", str(run), "--resume", "--epochs", "3", "--no-report")
    assert extended.returncode == 0, extended.stderr
    assert load_checkpoint(run)["epoch"] == 3
    assert json.loads((run / "resumes.jsonl").read_text().splitlines()[-1])["changes"]["train.epochs"] == [2, 3]
    for path in list_checkpoints(run / "checkpoints")[1:]:
        path.unlink()  # as if killed before its first checkpoint: config.json says 3, the checkpoint 2
    config["train"]["epochs"] = 3
    (run / "config.json").write_text(json.dumps(config))
    again = run_cli_here("fit", "--out", str(run), "--resume", "--no-report")
    assert again.returncode == 0, again.stderr


def test_changed_data_is_refused_naming_what_changed(tmp_path):
    """2 of 24 images deleted, or one replaced by another image of the same size: each refused by both faces."""
    run, data = trained_run(tmp_path)
    for path in sorted((data / "light").iterdir())[:2]:
        path.unlink()
    api, cli = refusals(run, data)
    assert api == cli and "it had 24 samples and now has 22" in api and "--init" in api

    other, other_data = trained_run(tmp_path, "other")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(other_data / "dark" / "03.png")
    api, cli = refusals(other, other_data)
    assert api == cli and "the content of its samples changed" in api


def test_a_planted_checkpoint_of_another_run_is_refused(tmp_path):
    """A checkpoint copied in from another run (another seed) does not belong to this folder's config."""
    run, data = trained_run(tmp_path)
    planted_from = tmp_path / "seed7"
    ContrastiveClustering(**{**BASE, "random_state": 7}, out_dir=planted_from).fit(str(data))
    newest = list_checkpoints(run / "checkpoints")[-1]
    shutil.copy(list_checkpoints(planted_from / "checkpoints")[-1], newest)
    api, cli = refusals(run, data)
    assert api == cli and "does not belong to the run" in api and "train.seed (checkpoint 7, config.json 0)" in api


def test_a_run_resumed_through_the_run_continues_on_the_same_data(tmp_path):
    """Run.resume is what both faces call: after a checkpoint at epoch 1 it ends as the uninterrupted run."""
    run, data = trained_run(tmp_path)
    straight = load_checkpoint(run)["model"]
    for path in list_checkpoints(run / "checkpoints")[1:]:
        path.unlink()
    (run / "metrics.json").unlink()
    from contraclust.data import load_data

    resumed = Run.resume(run, lambda config: load_data(config.data, progress=False), device="cpu")
    resumed.fit()
    assert resumed.trainer.start_epoch == 1
    assert all(torch.equal(value, load_checkpoint(run)["model"][key]) for key, value in straight.items())
