"""Feature vectors from tables: ``.csv``/``.tsv`` (read with the standard library) and ``.parquet``
(with pyarrow, when installed). Every column is a feature except the optional label and id columns;
a column that is not numeric, an empty or non-finite cell, or a row of the wrong length is an error
that names it."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch

from contraclust.console import say
from contraclust.data.dataset import FeatureSet
from contraclust.errors import DataError

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
HINT = "name it with --label-column or --id-column, or drop it"


def read_table(path: str | Path, label_column: str | None = None, id_column: str | None = None) -> FeatureSet:
    """The table at ``path`` as feature vectors, with labels from ``label_column`` (integers or class
    names) and sample ids from ``id_column`` (carried into assignments.csv)."""
    path = Path(path)
    header, columns = _read_parquet(path) if path.suffix == ".parquet" else _read_delimited(path)
    for given, flag in ((label_column, "--label-column"), (id_column, "--id-column")):
        if given is not None and given not in header:
            raise DataError(f"{path}: {flag} {given!r} is not a column; columns: {', '.join(header)}")
    features = [name for name in header if name not in (label_column, id_column)]
    if not features:
        raise DataError(f"{path}: no feature columns left besides the label and id columns")
    if not columns[header[0]]:
        raise DataError(f"{path}: the table has a header but no rows")
    matrix = np.stack([_numeric(path, name, columns[name]) for name in features], axis=1)
    labels, classes = None, []
    if label_column is not None:
        raw = columns[label_column]
        if any(value in ("", None) for value in raw):
            raise DataError(f"{path}: the label column {label_column!r} has empty cells")
        for row, value in enumerate(raw, start=1):
            if _natural(str(value))[0] == 0 and not math.isfinite(float(value)):
                raise DataError(f"{path}: the label column {label_column!r} has a non-finite value ({value}) in row "
                                f"{row}; a label is a whole number or a class name")
        labels, classes = _label_ids([str(v) for v in raw])
    ids = [str(v) for v in columns[id_column]] if id_column is not None else []
    return FeatureSet(torch.from_numpy(matrix.astype(np.float32)), labels, path.stem, classes, ids)


def _read_delimited(path: Path) -> tuple[list[str], dict[str, list]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            text = handle.read()
        delimiter = _delimiter(path, text)
        rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read the table ({exc})") from None
    rows = [row for row in rows if row]  # blank lines
    if not rows:
        raise DataError(f"{path}: the table is empty")
    header = [name.strip() for name in rows[0]]
    if len(set(header)) != len(header) or "" in header:
        raise DataError(f"{path}: the header needs distinct, non-empty column names, got {header}")
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"{path}: line {number} has {len(row)} fields, the header has {len(header)}")
    return header, {name: [row[i].strip() for row in rows[1:]] for i, name in enumerate(header)}


def _delimiter(path: Path, text: str) -> str:
    """A tab for .tsv; for .csv a comma, unless the header holds no comma but semicolons (the European
    spreadsheets' CSV), tabs or bars, which is then said."""
    if path.suffix == ".tsv":
        return "\t"
    header = text.split("\n", 1)[0]
    if "," in header:
        return ","
    for other, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
        if other in header:
            say(f"{path}: its header has no commas but {name}: read with {name} between the fields")
            return other
    return ","


def _read_parquet(path: Path) -> tuple[list[str], dict[str, list]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading .parquet needs pyarrow (pip install pyarrow)") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises its own kinds for corrupt files
        raise DataError(f"{path}: cannot read the parquet file ({type(exc).__name__}: {exc})") from None
    return list(table.column_names), {name: table.column(name).to_pylist() for name in table.column_names}


def _numeric(path: Path, name: str, cells: list) -> np.ndarray:
    values = np.empty(len(cells), dtype=np.float64)
    for row, cell in enumerate(cells, start=1):
        if isinstance(cell, bool) or cell is None or cell == "":
            raise DataError(f"{path}: column {name!r} has an empty or non-numeric cell in row {row}; {HINT}")
        try:
            values[row - 1] = float(cell)
        except (TypeError, ValueError):
            raise DataError(f"{path}: column {name!r} is not numeric (row {row}: {str(cell)[:30]!r}); {HINT}") from None
        if not math.isfinite(values[row - 1]):
            raise DataError(f"{path}: column {name!r} has a non-finite value ({cell}) in row {row}")
    return values


def _natural(text: str):
    """Numbers in numeric order, then names: class ids "2" < "10"."""
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def _label_ids(values: list[str]) -> tuple[np.ndarray, list[str]]:
    """Integer labels as they are (no class names); class names numbered in sorted order (their names)."""
    names = sorted(set(values), key=_natural)
    if all(_natural(name)[0] == 0 and float(name) == int(float(name)) for name in names):
        return np.array([int(float(v)) for v in values], dtype=np.int64), []
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[v] for v in values], dtype=np.int64), names
