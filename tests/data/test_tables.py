"""Feature vectors from .csv/.tsv/.parquet tables, with label and id columns carried into the outputs."""
import csv

import numpy as np
import pytest

from contraclust.data import load_data
from contraclust.errors import DataError
from helpers import run_cli


def write_table(path, rows, header, delimiter=","):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def blob_rows(n_per=40, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, dim)) * 5
    rows = []
    for i in range(3 * n_per):
        c = i % 3
        rows.append([f"sample-{i:03d}", *np.round(centers[c] + rng.normal(size=dim), 4), "abc"[c]])
    return rows, ["id", *[f"f{j}" for j in range(dim)], "kind"]


def test_a_csv_with_label_and_id_columns(tmp_path):
    rows, header = blob_rows()
    data = load_data(write_table(tmp_path / "t.csv", rows, header), label_column="kind", id_column="id")
    assert data.features.shape == (120, 6) and data.ids[:2] == ["sample-000", "sample-001"]
    assert data.labels[:4].tolist() == [0, 1, 2, 0] and data.class_names == ["a", "b", "c"]
    tsv = load_data(write_table(tmp_path / "t.tsv", rows, header, "\t"), label_column="kind", id_column="id")
    assert np.array_equal(tsv.features.numpy(), data.features.numpy())


@pytest.mark.parametrize("mutate,message", [
    (lambda rows: rows[2].__setitem__(3, "red"), "column 'f2' is not numeric (row 3: 'red')"),
    (lambda rows: rows[4].__setitem__(1, ""), "column 'f0' has an empty or non-numeric cell in row 5"),
    (lambda rows: rows[1].__setitem__(2, "nan"), "column 'f1' has a non-finite value"),
    (lambda rows: rows[6].append("9"), "line 8 has 9 fields, the header has 8"),
])
def test_bad_tables_name_the_column_or_line(tmp_path, mutate, message):
    rows, header = blob_rows()
    mutate(rows)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_data(write_table(tmp_path / "t.csv", rows, header), label_column="kind", id_column="id")


def test_columns_must_exist_and_text_columns_must_be_named(tmp_path):
    rows, header = blob_rows()
    path = write_table(tmp_path / "t.csv", rows, header)
    with pytest.raises(DataError, match="--label-column 'class' is not a column"):
        load_data(path, label_column="class")
    with pytest.raises(DataError, match="column 'id' is not numeric .* --label-column or --id-column"):
        load_data(path)
    with pytest.raises(DataError, match="apply to tables"):
        load_data("digits", label_column="kind")


def test_parquet_through_pyarrow(tmp_path):
    import pyarrow as pa  # in the test extras: a missing pyarrow fails this test rather than skipping it
    import pyarrow.parquet as pq

    rows, header = blob_rows()
    table = pa.table({name: [row[i] if i in (0, 7) else float(row[i]) for row in rows]
                      for i, name in enumerate(header)})
    pq.write_table(table, tmp_path / "t.parquet")
    data = load_data(tmp_path / "t.parquet", label_column="kind", id_column="id")
    assert data.features.shape == (120, 6) and data.ids[5] == "sample-005"


def test_ids_round_trip_into_assignments(tmp_path):
    rows, header = blob_rows()
    path = write_table(tmp_path / "t.csv", rows, header)
    run = tmp_path / "run"
    fit = run_cli("fit", "--data", str(path), "--label-column", "kind", "--id-column", "id", "-k", "3",
                  "--epochs", "3", "--out", str(run), "--device", "cpu", "--no-progress", "--no-report")
    assert fit.returncode == 0, fit.stderr
    assigned = list(csv.DictReader(open(run / "assignments.csv")))
    assert [r["id"] for r in assigned] == [r[0] for r in rows]
    assert [r["label"] for r in assigned][:3] == ["0", "1", "2"]
    predicted = run_cli("predict", str(run), "--output", str(tmp_path / "p.csv"), "--device", "cpu")
    assert predicted.returncode == 0, predicted.stderr  # the run's own table, columns remembered
    assert [r["id"] for r in csv.DictReader(open(tmp_path / "p.csv"))] == [r[0] for r in rows]
