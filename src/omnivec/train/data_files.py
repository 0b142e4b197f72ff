"""Read training data files (csv, tsv, jsonl, json, parquet) into rows, naming the file and line on errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from omnivec.errors import InputError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "json", ".parquet": "parquet"}


def read_rows(path: str | Path, *, delimiter: str | None = None, quoting: str = "minimal", header: bool = True,
              column_names: list[str] | None = None, extra_fields: str = "error") -> list[dict[str, Any]]:
    """Rows of a data file as dicts. csv/tsv: ``header`` says whether the first line names the columns, otherwise
    ``column_names`` does; ``quoting="none"`` reads quotes as text and ``extra_fields="ignore"`` drops fields past
    the named columns (STS-benchmark files need both)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Data file {str(path)!r} does not exist.")
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"Data file {str(path)!r}: unknown format {path.suffix!r}; expected one of {sorted(FORMATS)}.")
    if kind in ("csv", "tsv"):
        if extra_fields not in ("error", "ignore"):
            raise InputError(f"extra_fields must be 'error' or 'ignore', got {extra_fields!r}.")
        return _read_delimited(path, delimiter or ("\t" if kind == "tsv" else ","), quoting, header, column_names,
                               extra_fields == "ignore")
    if kind == "jsonl":
        rows = []
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    rows.append(_json_row(line, path, number))
        return rows
    if kind == "json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise InputError(f"Data file {str(path)!r} must hold a JSON list of objects.")
        return data
    import datasets

    return datasets.Dataset.from_parquet(str(path)).to_list()


def _json_row(line: str, path: Path, number: int) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{str(path)!r} line {number}: not valid JSON ({exc.msg}).") from None
    if not isinstance(row, dict):
        raise InputError(f"{str(path)!r} line {number}: expected a JSON object, got {type(row).__name__}.")
    return row


def _read_delimited(path: Path, delimiter: str, quoting: str, header: bool, column_names: list[str] | None,
                    ignore_extra: bool) -> list[dict[str, Any]]:
    if quoting not in ("minimal", "none"):
        raise InputError(f"quoting must be 'minimal' or 'none', got {quoting!r}.")
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE if quoting == "none" else csv.QUOTE_MINIMAL)
        lines = list(reader)
    if header and column_names is None:
        if not lines:
            raise InputError(f"Data file {str(path)!r} is empty.")
        column_names, lines, first = lines[0], lines[1:], 2
    else:
        first = 2 if header else 1
        lines = lines[1:] if header else lines
    if not column_names:
        raise InputError(f"Data file {str(path)!r} has no header: give column_names.")
    rows = []
    for number, values in enumerate(lines, start=first):
        if not values:
            continue
        if ignore_extra:
            values = values[: len(column_names)]
        if len(values) != len(column_names):
            raise InputError(f"{str(path)!r} line {number}: {len(values)} fields, expected {len(column_names)} "
                             f"({', '.join(column_names)}).")
        rows.append(dict(zip(column_names, values, strict=True)))
    return rows


def numeric_labels(rows: list[dict[str, Any]], column: str, scale: float, source: str) -> None:
    """Labels read as text (csv) become floats, times ``scale``; a value that is not a number names its row."""
    for index, row in enumerate(rows):
        if column not in row:
            raise InputError(f"{source} row {index}: no label column {column!r} (columns: {sorted(row)}).")
        value = row[column]
        try:
            if isinstance(value, (list, tuple)):
                row[column] = [float(v) * scale for v in value]
            elif isinstance(value, str) or scale != 1.0:
                row[column] = float(value) * scale
        except (TypeError, ValueError):
            raise InputError(f"{source} row {index}: label {column!r} is {value!r}, not a number.") from None
