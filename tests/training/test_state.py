"""The run's log: rows appended in a fixed column order, and rewritten on resume without a gap."""
import os

from contraclust.training.state import append_log, rewrite_log


def rows(n):
    return [{"epoch": i, "loss": 1.0 / (i + 1), "instance": 0.5, "lr": 0.1, "wall_seconds": float(i)}
            for i in range(1, n + 1)]


def test_rewrite_keeps_the_checkpoint_rows_and_renames_over_the_old_log(tmp_path, monkeypatch):
    log = tmp_path / "log.csv"
    for row in rows(5):
        append_log(log, row)
    replaced = []
    real_replace = os.replace

    def watch(src, dst):
        assert log.exists()  # the old log is there until the new one takes its name
        replaced.append((os.path.basename(src), os.path.basename(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", watch)
    rewrite_log(log, rows(3))
    lines = log.read_text().splitlines()
    assert lines[0] == "epoch,loss,instance,lr,nmi,acc,ari,wall_seconds"
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2", "3"]
    assert replaced == [(".log.csv.rewrite", "log.csv")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]


def test_rewrite_from_no_rows_leaves_no_log(tmp_path):
    log = tmp_path / "log.csv"
    append_log(log, rows(1)[0])
    rewrite_log(log, [])
    assert list(tmp_path.iterdir()) == []
