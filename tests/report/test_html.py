"""The HTML report of a short MNIST-5k run: self-contained, and every image loads in a real browser."""
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from contraclust import ContrastiveClustering
from contraclust.data import from_array, read_mnist5k
from contraclust.report.html import write_report
from helpers import TINY, run_cli

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = tmp_path_factory.mktemp("report") / "run"
    data = read_mnist5k()
    data.images, data.labels = data.images[::8], data.labels[::8]  # 625 real digits
    # 6 epochs of 10 steps: after 3 epochs of 5 the tiny network still assigned every digit to one cluster
    ContrastiveClustering(method="cc", preset="mnist5k-cpu", epochs=6, batch_size=64, device="cpu", progress=False,
                          random_state=0, out_dir=run, overrides=TINY + ["train.eval_every=1"]).fit(data)
    return write_report(run, data, map_points=300)


def test_the_report_is_self_contained(report):
    page = report.read_text()
    sources = re.findall(r'src="([^"]+)"', page)
    assert sources and all((report.parent / s).is_file() for s in sources)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from anywhere
    assert page.count("<circle") == 300 and page.count("most confident") == page.count("least confident") >= 2
    assert "purity" in page and "majority class" in page and "Hungarian" not in page  # figures are PNGs
    for figure in ("curves_epoch.png", "curves_time.png", "confusion.png", "sizes.png", "confidence.png", "map.png"):
        assert (report.parent / "report" / figure).stat().st_size > 1000, figure
    thumbnail = Image.open(next((report.parent / "report" / "samples").iterdir()))
    assert thumbnail.size == (64, 64)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: install Debian's chromium (.ci/run does) to open the "
                                             "report in a headless browser")
def test_the_report_opens_in_headless_chromium(report, tmp_path):
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=8000",
            f"--user-data-dir={tmp_path / 'profile'}"]
    url = report.resolve().as_uri()
    dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    images = int(re.search(r'data-images="(\d+)"', dom.stdout).group(1))
    assert images == report.read_text().count("<img ") and images > 20
    assert 'data-broken-images="0"' in dom.stdout, "some images did not load"
    screenshot = tmp_path / "report.png"
    shot = subprocess.run(base + ["--enable-logging=stderr", "--v=0", "--window-size=1280,1600",
                                  f"--screenshot={screenshot}", url], capture_output=True, text=True, timeout=120)
    console = [line for line in shot.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "Uncaught" in line or "Failed to load" in line], console
    picture = np.asarray(Image.open(screenshot).convert("L"))
    assert picture.shape == (1600, 1280) and picture.std() > 20  # a page with content, not a blank one


def test_a_report_of_feature_vectors_lists_samples(tmp_path):
    rng = np.random.default_rng(0)
    X = np.repeat(rng.normal(size=(3, 8)) * 4, 40, axis=0) + rng.normal(size=(120, 8))
    ContrastiveClustering(n_clusters=3, epochs=2, batch_size=40, device="cpu", progress=False,
                          out_dir=tmp_path / "run", overrides=["train.eval_every=0"]).fit(X)
    page = write_report(tmp_path / "run", from_array(X)).read_text()
    assert 'class="chip"' in page and "#0" in page and "confusion" not in page


def test_the_report_command_and_fit_without_report(tmp_path):
    data = tmp_path / "d.npz"
    digits = read_mnist5k()
    np.savez(data, x=digits.images.numpy()[::25, 0], y=digits.labels[::25])
    args = ["fit", "--data", str(data), "--method", "cc", "--preset", "mnist5k-cpu", "--epochs", "1",
            "--batch-size", "50", "--out", str(tmp_path / "run"), "--device", "cpu", "--no-progress", "--no-report",
            *[a for t in TINY for a in ("--set", t)]]
    assert run_cli(*args).returncode == 0 and not (tmp_path / "run" / "report.html").exists()
    made = run_cli("report", str(tmp_path / "run"), "--data", str(data), "--device", "cpu")
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "run" / "report.html").exists() and "report.html" in made.stdout
    again = run_cli("report", str(tmp_path / "run"))  # from what the run wrote: its readout.npz
    assert again.returncode == 0, again.stderr


def test_the_report_reads_what_the_run_wrote_and_an_older_run_is_told_what_to_run(tmp_path, monkeypatch):
    from contraclust.readout import READOUT_FILE, load_readout, map_rows

    X = np.random.default_rng(0).normal(size=(2000, 6))
    np.save(tmp_path / "x.npy", X)
    fitted = run_cli("fit", "--data", str(tmp_path / "x.npy"), "-k", "3", "--method", "cc", "--epochs", "1",
                     "--batch-size", "200", "--out", str(tmp_path / "run"), "--device", "cpu", "--no-progress",
                     "--no-report")
    assert fitted.returncode == 0, fitted.stderr
    stored = load_readout(tmp_path / "run")
    assert stored.probabilities.shape == (2000, 3) and stored.embeddings.shape[0] == 1500
    assert (stored.rows == map_rows(2000)).all() and set(map_rows(2000, 700)) <= set(stored.rows)  # nested
    with monkeypatch.context() as patched:
        patched.setattr("torch.load", lambda *a, **k: pytest.fail("the report loaded a model"))
        page = write_report(tmp_path / "run", from_array(X), map_points=700).read_text()
    assert page.count("<circle") == 700
    (tmp_path / "run" / READOUT_FILE).unlink()
    told = run_cli("report", str(tmp_path / "run"), "--data", str(tmp_path / "x.npy"), "--device", "cpu")
    assert told.returncode == 0, told.stderr  # --data: the face reads the model out
    refused = run_cli("report", str(tmp_path / "run"))
    assert refused.returncode == 1 and refused.stderr.strip().splitlines() == [
        f"contraclust: error: {tmp_path / 'run'} has no {READOUT_FILE} (runs write it when they finish; this one is "
        f"older or unfinished): `contraclust report {tmp_path / 'run'} --data DATA` reads its model instead"]


def test_a_from_scratch_colour_photo_run_that_ended_unsure_gets_the_backbone_hint_at_the_top():
    from types import SimpleNamespace

    from contraclust.report.html import LOW_CONFIDENCE, _backbone_hint

    photos = SimpleNamespace(is_image=True, sample_shape=(3, 32, 32))
    config = SimpleNamespace(frozen_backbone=None, data="my_photos", n_clusters=5)
    unsure, sure = np.full(10, LOW_CONFIDENCE - 0.1), np.full(10, LOW_CONFIDENCE + 0.1)
    hint = _backbone_hint(config, photos, unsure)
    assert hint.startswith('<p class="hint">The mean confidence is 0.65')
    assert "contraclust fit --data my_photos -k 5 --backbone dinov2-small --freeze --download" in hint
    assert _backbone_hint(config, photos, sure) == ""
    assert _backbone_hint(config, SimpleNamespace(is_image=True, sample_shape=(1, 28, 28)), unsure) == ""
    assert _backbone_hint(SimpleNamespace(**{**vars(config), "frozen_backbone": "dinov2-small"}), photos, unsure) == ""


def test_a_report_of_photos_embedded_by_a_frozen_backbone_shows_the_photos(tmp_path):
    from helpers import colour_photos

    photos = colour_photos(tmp_path / "photos", n=30)
    X = np.random.default_rng(0).normal(size=(30, 8))
    data = from_array(X)  # as embed_images gives them: the vectors' ids are the photos' files
    data.ids = sorted(str(p) for p in photos.rglob("*.png"))[:29] + [str(tmp_path / "gone.png")]
    ContrastiveClustering(n_clusters=3, epochs=1, batch_size=10, device="cpu", progress=False,
                          out_dir=tmp_path / "run", overrides=["train.eval_every=0"]).fit(data)
    page = write_report(tmp_path / "run", data, gallery=30).read_text()
    thumbnails = re.findall(r'<img src="report/samples/(\d+)\.png"', page)
    assert {int(i) for i in thumbnails} == set(range(29))  # every photo file shown; the missing one as its name
    assert 'title="0.' in page and str(tmp_path / "gone.png") in page
    with Image.open(tmp_path / "run" / "report" / "samples" / "0.png") as thumbnail:
        assert thumbnail.size == (64, 64) and thumbnail.mode == "RGB"
