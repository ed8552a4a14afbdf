"""The report inside a time: its map sized from a probe of its speed, its galleries cut where time runs out,
or no report; and fit's line when the budget leaves none."""
import numpy as np

from contraclust.report import sizing
from contraclust.report.sizing import ReportClock, fitted_map


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def costly(clock: FakeClock, per_row: float, per_point: float):
    """An embedding and a projection that take fake time: ``per_row`` a row, ``per_point`` a projected point
    (t-SNE's growth kept: points ** 1.2)."""
    def embed(rows):
        clock.now += per_row * len(rows)
        return np.random.default_rng(0).normal(size=(len(rows), 4))

    def project(points):
        clock.now += per_point * len(points) ** 1.2
        return points[:, :2], "t-SNE"

    return embed, project


def test_without_a_limit_the_map_takes_every_point_it_may():
    clock = FakeClock()
    embed, project = costly(clock, 0.001, 0.001)
    coordinates, rows, how = fitted_map(embed, 5000, 1500, ReportClock(None, clock), project, reserve=1.0)
    assert len(rows) == 1500 and how == "t-SNE" and coordinates.shape == (1500, 2)


def test_the_map_is_sized_to_the_time_left_from_a_probe_of_its_speed():
    clock = FakeClock()
    embed, project = costly(clock, 0.0002, 0.0005)  # t-SNE of 1,500 points: 3.2 s
    _, rows, how = fitted_map(embed, 5000, 1500, ReportClock(4.0, clock), project, reserve=0.5)
    assert how == "t-SNE" and 200 < len(rows) < 1500  # the probe's 200, then what fits
    assert clock.now <= 4.0 - 0.5 + 1e-9  # inside the time, the reserve kept
    roomy = FakeClock()
    embed, project = costly(roomy, 0.0002, 0.0005)
    _, rows, _ = fitted_map(embed, 5000, 1500, ReportClock(60.0, roomy), project, reserve=0.5)
    assert len(rows) == 1500


def test_with_no_time_for_t_sne_the_map_is_a_pca_of_the_probe():
    clock = FakeClock()
    embed, project = costly(clock, 0.0002, 0.0005)
    coordinates, rows, how = fitted_map(embed, 5000, 1500, ReportClock(1.2, clock), project, reserve=0.5)
    assert how == "PCA" and len(rows) == sizing.PROBE_POINTS and coordinates.shape == (200, 2)


def test_a_report_with_too_little_time_is_not_written_and_one_with_little_is_cut(tmp_path):
    from contraclust.data import read_sklearn_digits
    from contraclust.presets import build_config
    from contraclust.report.html import write_report
    from contraclust.run import Run

    data = read_sklearn_digits()
    run = tmp_path / "run"  # a run folder (the report reads its config.json, log and readout.npz)
    Run.start(build_config("cc", "mnist5k-cpu", epochs=1, batch_size=256, overrides=["train.progress=false"]),
              data, run, device="cpu").fit()
    assert write_report(run, data, seconds=0.05) is None
    assert not (run / "report.html").exists() and not (run / "report").exists()
    written = write_report(run, data, seconds=sizing.smallest_report_seconds() + 0.6)
    page = written.read_text()
    assert 'id="cut"' in page and "Written within the run's time budget" in page
    assert "Embeddings (PCA of 200 samples" in page or "the map shows" in page


def test_a_map_of_points_that_are_all_one_point_is_a_pca_and_duplicates_do_not_stop_t_sne():
    """Barnes-Hut t-SNE on identical points crashed the process (a segmentation fault in scikit-learn, seen
    on the embeddings of a run that had collapsed to one cluster)."""
    from contraclust.report.figures import project_2d

    coordinates, how = project_2d(np.ones((64, 5)))
    assert how == "PCA" and coordinates.shape == (64, 2)
    points = np.random.default_rng(0).normal(size=(300, 8))
    points[:50] = points[0]
    coordinates, how = project_2d(points)
    assert how in ("t-SNE", "UMAP") and np.isfinite(coordinates).all()
