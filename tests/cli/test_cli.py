import csv
import json

import numpy as np
import pytest
from PIL import Image

from helpers import TINY, mnist_subset, run_cli


def tiny_args():
    return [a for t in TINY for a in ("--set", t)]


def assert_one_line_error(result, pattern):
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("contraclust: error:"), result.stderr
    assert "Traceback" not in result.stderr
    assert pattern in lines[0], lines[0]


def test_help_lists_methods_and_options():
    result = run_cli("--help")
    assert result.returncode == 0 and "cc" in result.stdout and "Contrastive Clustering" in result.stdout
    fit = run_cli("fit", "--help").stdout
    for option in ("--data", "--method", "--preset", "--clusters", "--epochs", "--batch-size", "--seed", "--set",
                   "--out", "--resume", "--init", "--device"):
        assert option in fit, option


def test_missing_data_path(tmp_path):
    assert_one_line_error(run_cli("fit", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")),
                          "does not exist")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_cli("fit", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r")),
                          "holds no image files")


def test_corrupt_image(tmp_path):
    folder = tmp_path / "imgs" / "a"
    folder.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "ok.png")
    (folder / "bad.png").write_bytes(b"\x89PNG truncated")
    assert_one_line_error(run_cli("fit", "--data", str(tmp_path / "imgs"), "--out", str(tmp_path / "r")),
                          "corrupt or unreadable image file")


@pytest.mark.parametrize("k,message", [("1", "at least 2"), ("500", "only 400 samples")])
def test_bad_cluster_counts(tmp_path, k, message):
    data = mnist_subset(tmp_path / "d.npz", 400)
    assert_one_line_error(run_cli("fit", "--data", str(data), "-k", k, "--epochs", "1", "--out", str(tmp_path / "r"),
                                  "--device", "cpu", *tiny_args()), message)


def test_bad_override_and_resume_without_run(tmp_path):
    assert_one_line_error(run_cli("fit", "--set", "train.epochz=3", "--out", str(tmp_path / "r")), "unknown config field")
    assert_one_line_error(run_cli("fit", "--out", str(tmp_path / "none"), "--resume"), "--resume needs a run folder")


def test_fit_evaluate_predict_round_trip(tmp_path):
    data = mnist_subset(tmp_path / "d.npz", 400)
    run = tmp_path / "run"
    fit = run_cli("fit", "--data", str(data), "--method", "cc", "--epochs", "2", "--batch-size", "100", "--out",
                  str(run), "--device", "cpu", "--seed", "1", "--no-progress", *tiny_args())
    assert fit.returncode == 0, fit.stderr
    assert "NMI" in fit.stdout and "ACC" in fit.stdout and "ARI" in fit.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"nmi", "acc", "ari", "epochs", "wall_seconds"} <= set(metrics) and metrics["epochs"] == 2
    assignments = list(csv.DictReader((run / "assignments.csv").open()))
    uncertain = sum(float(row["confidence"]) < 0.5 for row in assignments)
    assert metrics["uncertain_below"] == 0.5 and metrics["n_uncertain"] == uncertain
    assert [row["uncertain"] for row in assignments].count("1") == uncertain
    assert json.loads((run / "config.json").read_text())["train"]["seed"] == 1
    assert (run / "curves.png").exists() and (run / "report.html").exists()

    evaluated = run_cli("evaluate", str(run), "--data", str(data), "--json", "--device", "cpu")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["nmi"] == pytest.approx(metrics["nmi"], abs=1e-6)

    out_csv = tmp_path / "pred.csv"
    predicted = run_cli("predict", str(run), "--data", str(data), "--output", str(out_csv), "--device", "cpu")
    assert predicted.returncode == 0, predicted.stderr
    rows = out_csv.read_text().splitlines()
    assert rows[0] == ("index,cluster,confidence,uncertain,cluster_2,probability_2,cluster_3,probability_3,label")
    assert len(rows) == 401
    assert rows[1:] == (run / "assignments.csv").read_text().splitlines()[1:]
    assert f"({metrics['n_uncertain']} uncertain: confidence below 0.5)" in predicted.stdout
    strict = run_cli("predict", str(run), "--data", str(data), "--output", str(out_csv), "--device", "cpu",
                     "--uncertain-below", "1")
    assert strict.returncode == 0 and "(400 uncertain: confidence below 1)" in strict.stdout

    again = run_cli("fit", "--data", str(data), "--out", str(run), "--device", "cpu", *tiny_args())
    assert_one_line_error(again, "already holds a run")


def test_views_picture(tmp_path):
    result = run_cli("views", "--output", str(tmp_path / "v.png"), "-n", "4")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "v.png").stat().st_size > 1000


def test_bad_budget_is_one_line(tmp_path):
    assert_one_line_error(run_cli("fit", "--budget", "soon", "--out", str(tmp_path / "r")), "duration")
    assert_one_line_error(run_cli("fit", "--budget=-3m", "--out", str(tmp_path / "r")), "duration")


def test_presets_shows_the_auto_recipe_for_data(tmp_path):
    folder = tmp_path / "photos" / "a"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (80, 60, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    shown = run_cli("presets", "--data", str(tmp_path / "photos"), "--device", "cpu", "-k", "2")
    assert shown.returncode == 0, shown.stderr
    assert "auto recipe for photos (4 colour 80 px images)" in shown.stdout
    assert "augment.size: 32 px: 80 px images shrunk" in shown.stdout
    assert "model.backbone: small_cnn" in shown.stdout and "=> cc" in shown.stdout
    listed = run_cli("presets")
    assert "auto" in listed.stdout and "cc-paper-cifar10" in listed.stdout
