"""Assignments with runner-up clusters, and image folders sorted into one folder per cluster."""
import csv
import os

import numpy as np
import pytest
from PIL import Image

from contraclust.data import read_mnist5k
from contraclust.errors import ContraclustError
from contraclust.report.assignments import sort_into_folders
from contraclust.training.outputs import write_assignments
from helpers import TINY, run_cli


def test_assignments_name_the_runner_up_clusters(tmp_path):
    probabilities = np.array([[0.7, 0.2, 0.1, 0.0], [0.1, 0.1, 0.3, 0.5]])
    uncertain = write_assignments(tmp_path / "a.csv", probabilities.argmax(1), probabilities, np.array([0, 3]),
                                  ["x.png", "y.png"], uncertain_below=0.6)
    rows = list(csv.DictReader(open(tmp_path / "a.csv")))
    assert list(rows[0]) == ["index", "path", "cluster", "confidence", "uncertain", "cluster_2", "probability_2",
                             "cluster_3", "probability_3", "label"]
    assert uncertain == 1 and [row["uncertain"] for row in rows] == ["0", "1"]  # 0.5 < 0.6 <= 0.7
    assert rows[1]["path"] == "y.png" and rows[1]["cluster"] == "3" and rows[1]["cluster_2"] == "2"
    assert float(rows[1]["probability_3"]) == pytest.approx(0.1)


def test_same_names_keep_their_sub_folders(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / "data" / folder).mkdir(parents=True)
        (tmp_path / "data" / folder / "1.png").write_bytes(folder.encode())
    paths = [str(tmp_path / "data" / f / "1.png") for f in ("a", "b")]
    counts = sort_into_folders(paths, np.array([0, 0]), np.array([0.9, 0.2]), tmp_path / "out", 2, min_confidence=0.5)
    assert counts == {"cluster_0": 1, "uncertain": 1}
    assert (tmp_path / "out" / "cluster_0" / "a" / "1.png").read_bytes() == b"a"
    assert (tmp_path / "out" / "uncertain" / "b" / "1.png").read_bytes() == b"b"
    with pytest.raises(ContraclustError, match="not an empty folder"):
        sort_into_folders(paths, np.array([0, 0]), np.array([0.9, 0.2]), tmp_path / "out", 2)


def test_predict_copy_into_sorts_every_image_once_and_leaves_the_originals(tmp_path):
    digits = read_mnist5k()
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(0, 5000, 25):  # 200 real digits, a flat folder without labels
        Image.fromarray(digits.images[i, 0].numpy()).save(folder / f"digit_{i:04d}.png")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    run = tmp_path / "run"
    fit = run_cli("fit", "--data", str(folder), "--method", "cc", "--preset", "mnist5k-cpu", "--epochs", "1",
                  "--batch-size", "50", "--out", str(run), "--device", "cpu", "--no-progress", "--no-report",
                  "-k", "5", *[a for t in TINY for a in ("--set", t)])
    assert fit.returncode == 0, fit.stderr
    copied = run_cli("predict", str(run), "--data", str(folder), "--output", str(tmp_path / "p.csv"),
                     "--copy-into", str(tmp_path / "sorted"), "--device", "cpu")
    assert copied.returncode == 0, copied.stderr
    placed = [p for p in (tmp_path / "sorted").rglob("*.png")]
    assert sorted(p.name for p in placed) == sorted(before)  # each exactly once, names unchanged
    assert all(p.parent.name.startswith("cluster_") and p.parent.parent == tmp_path / "sorted" for p in placed)
    rows = {os.path.basename(r["path"]): r["cluster"] for r in csv.DictReader(open(tmp_path / "p.csv"))}
    assert all(p.parent.name == f"cluster_{rows[p.name]}" for p in placed)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()} == before

    linked = run_cli("predict", str(run), "--data", str(folder), "--output", str(tmp_path / "q.csv"),
                     "--link-into", str(tmp_path / "links"), "--min-confidence", "1.0", "--device", "cpu")
    assert linked.returncode == 0, linked.stderr
    links = list((tmp_path / "links").rglob("*.png"))
    assert len(links) == 200 and all(p.is_symlink() for p in links)
    assert {p.parent.name for p in links} <= {"uncertain"} | {f"cluster_{c}" for c in range(5)}
    refused = run_cli("predict", str(run), "--data", str(folder), "--copy-into", str(tmp_path / "sorted"),
                      "--output", str(tmp_path / "r.csv"), "--device", "cpu")
    assert refused.returncode == 1 and "not an empty folder" in refused.stderr


def test_sorting_writes_each_image_once_and_counts_what_it_wrote(tmp_path):
    """A data set that lists one file twice (a crafted pack) is refused before anything is copied; a sorted
    folder is marked, so that reading the data again skips it."""
    from contraclust.errors import DataError
    from contraclust.markers import SORTED_MARKER

    for i in range(3):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    paths = [str(tmp_path / f"{i}.png") for i in range(3)]
    with pytest.raises(DataError, match="lists .* twice"):
        sort_into_folders(paths + paths[:1], np.zeros(4, int), np.ones(4), tmp_path / "out", 2)
    assert not (tmp_path / "out").exists()
    counts = sort_into_folders(paths, np.array([0, 1, 1]), np.ones(3), tmp_path / "sorted", 2)
    written = [p for p in (tmp_path / "sorted").rglob("*.png")]
    assert sum(counts.values()) == len(written) == 3 and (tmp_path / "sorted" / SORTED_MARKER).exists()
