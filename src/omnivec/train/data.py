"""Training data: which columns are inputs and which is the label, checked against what the loss needs before
training starts, and turned into batches."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from omnivec.errors import InputError
from omnivec.train.losses.base import LossSpec

LABEL_COLUMNS = ("label", "score", "labels", "scores")
_EXPECTED = {
    "float": "a number",
    "int": "an integer class index",
    "float_list": "a number or a list of numbers (teacher margins or scores)",
    "list": "a list of numbers (one relevance per document)",
}


@dataclass
class ColumnPlan:
    """The input columns (in the order the loss reads them) and the label column of a dataset."""

    inputs: list[str]
    label: str | None
    label_kind: str | None = None
    list_input: str | None = None
    prompts: dict[str, str] = field(default_factory=dict)
    tasks: dict[str, str] = field(default_factory=dict)


def column_names(data: Any, name: str) -> list[str]:
    if hasattr(data, "column_names"):  # datasets.Dataset
        return list(data.column_names)
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        if not data:
            raise InputError(f"The {name} is empty.")
        if not isinstance(data[0], Mapping):
            raise InputError(f"The {name} must be a datasets.Dataset or a list of dicts; row 0 is a "
                             f"{type(data[0]).__name__}.")
        return list(data[0].keys())
    raise InputError(f"The {name} must be a datasets.Dataset or a list of dicts, got {type(data).__name__}.")


def plan_columns(data: Any, loss: Any, name: str, columns: Sequence[str] | None = None,
                 label_column: str | None = None) -> ColumnPlan:
    """Decide the input and label columns, and fail early, naming the column and the loss, if the data does not
    have what the loss needs."""
    available = column_names(data, name)
    spec: LossSpec | None = getattr(loss, "spec", None)
    loss_name = type(loss).__name__
    if label_column is not None and label_column not in available:
        raise InputError(f"label_column {label_column!r} is not a column of the {name}; its columns are {available}.")
    label = label_column or next((c for c in LABEL_COLUMNS if c in available), None)
    if columns is not None:
        for column in columns:
            if column not in available:
                raise InputError(f"{loss_name} is set to read column {column!r}, which the {name} does not have; "
                                 f"its columns are {available}.")
        inputs = list(columns)
    else:
        inputs = [c for c in available if c != label]
    if spec is None:  # a custom loss: it takes whatever columns there are
        return ColumnPlan(inputs, label)
    if spec.label is not None and label is None:
        raise InputError(f"{loss_name} needs a label column ('label' or 'score', or label_column=...) holding "
                         f"{_EXPECTED[spec.label]} per row; the {name} has columns {available}.")
    if spec.label is None:
        label = None
    if len(inputs) < len(spec.inputs):
        missing = spec.inputs[len(inputs)]
        raise InputError(f"{loss_name} needs the input columns {spec.describe_inputs()}; the {name} has "
                         f"{len(inputs)} input column(s) {inputs}, so the {missing!r} column is missing.")
    if len(inputs) > len(spec.inputs) and spec.more_inputs is None:
        raise InputError(f"{loss_name} takes exactly the input columns {spec.describe_inputs()}; the {name} has "
                         f"{inputs}. Pass columns=[...] to choose which to use.")
    list_input = inputs[spec.list_input] if spec.list_input is not None else None
    return ColumnPlan(inputs, label, spec.label, list_input)


def check_rows(data: Any, plan: ColumnPlan, loss_name: str, name: str) -> None:
    """Every row has the columns, non-empty inputs, and a label of the kind the loss needs."""
    read: dict[str, list[Any]] = {}  # each column read once (the list check below reuses the documents column)
    for column in plan.inputs + ([plan.label] if plan.label else []):
        values = read[column] = _column(data, column, name)
        for row, value in enumerate(values):
            if value is None:
                raise InputError(f"Row {row} of the {name}: column {column!r} is empty (None).")
            if column == plan.label and plan.label_kind is not None and not _label_ok(value, plan.label_kind):
                raise InputError(f"Row {row} of the {name}: {loss_name} needs {_EXPECTED[plan.label_kind]} in column "
                                 f"{column!r}, got {type(value).__name__} {_short(value)}.")
            if column == plan.list_input and not isinstance(value, (list, tuple)):
                raise InputError(f"Row {row} of the {name}: {loss_name} needs a list of documents in column "
                                 f"{column!r}, got {type(value).__name__} {_short(value)}.")
        if column == plan.label and plan.list_input is not None:
            for row, (docs, labels) in enumerate(zip(read[plan.list_input], values, strict=True)):
                if len(docs) != len(labels):
                    raise InputError(f"Row {row} of the {name}: {len(docs)} documents in column {plan.list_input!r} "
                                     f"but {len(labels)} labels in column {column!r}.")


def _column(data: Any, column: str, name: str) -> list[Any]:
    if hasattr(data, "column_names"):
        return list(data[column])
    values = []
    for row, record in enumerate(data):
        if not isinstance(record, Mapping) or column not in record:
            raise InputError(f"Row {row} of the {name} has no column {column!r}.")
        values.append(record[column])
    return values


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not (isinstance(value, float) and math.isnan(value))


def _label_ok(value: Any, kind: str) -> bool:
    if kind == "float":
        return _is_number(value)
    if kind == "int":
        return isinstance(value, numbers.Integral)
    if isinstance(value, (list, tuple)):
        return all(_is_number(v) for v in value)
    return kind == "float_list" and _is_number(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Rows(torch.utils.data.Dataset):
    """The chosen columns of a ``datasets.Dataset`` or list of dicts, each row with its number (for errors)."""

    def __init__(self, data: Any, columns: Sequence[str], name: str, key: str | None = None) -> None:
        self.data, self.columns, self.name, self.key = data, list(columns), name, key

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.data[index]
        tag = {"__dataset__": self.key} if self.key is not None else {}  # which dataset of a dict of datasets
        return {"__row__": index, "__data__": self.name, **tag, **{column: record[column] for column in self.columns}}


def collate_labels(values: list[Any], kind: str | None) -> Any:
    if kind == "list" or (kind is None and values and isinstance(values[0], (list, tuple))
                          and len({len(v) for v in values}) > 1):
        return [torch.tensor(v, dtype=torch.float32) for v in values]
    if kind == "int" or (kind is None and all(isinstance(v, numbers.Integral) for v in values)):
        return torch.tensor(values, dtype=torch.long)
    return torch.tensor(values, dtype=torch.float32)


class Collator:
    """Rows -> ``{"inputs": one entry per input column, "labels": ..., "rows": row numbers}``.

    For an Embedder each input column is decoded into ``PreparedInputs`` here (in the data loader's workers when
    ``dataloader_num_workers`` > 0); a CrossEncoder gets the raw values, which its losses pair up themselves."""

    def __init__(self, model: Any, plan: ColumnPlan, prepare: bool) -> None:
        self.model, self.plan, self.prepare = model, plan, prepare

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        numbers_ = [row["__row__"] for row in rows]
        name = rows[0]["__data__"] if rows else "data"
        inputs = [self._column(column, [row[column] for row in rows], numbers_, name) for column in self.plan.inputs]
        labels = collate_labels([row[self.plan.label] for row in rows], self.plan.label_kind) if self.plan.label else None
        return {"inputs": inputs, "labels": labels, "rows": numbers_}

    def _column(self, column: str, values: list[Any], rows: list[int], name: str) -> Any:
        if not self.prepare:
            return values
        prompt, task = self.plan.prompts.get(column), self.plan.tasks.get(column)
        try:
            return self.model.prepare(values, prompt=prompt, task=task)
        except InputError:
            for row, value in zip(rows, values, strict=True):  # find the row to name
                try:
                    self.model.prepare([value], prompt=prompt, task=task)
                except InputError as exc:
                    raise InputError(f"Row {row} of the {name}, column {column!r}: {exc}") from None
            raise
