"""Callable classes for Ray Data's ``Dataset.map_batches``: ``Embed`` (an Embedder's vectors of a column) and
``Score`` (a CrossEncoder's scores of two columns). Ray makes one instance per actor of an ``ActorPoolStrategy``, so
the model loads once per actor, in ``__init__``; each call then embeds one batch.

Ray itself is not imported here except to turn a batch into an Arrow block (``on_error="null"``, or a batch that is
not a dict of NumPy arrays): the classes also run on plain dict batches, without Ray."""

from __future__ import annotations

import re
from typing import Any, Generic, cast

import numpy as np

from omnivec.errors import ConfigError, InputError, SourceError
from omnivec.models.ray_settings import EmbedSettings, S, ScoreSettings, settings_from

# What a row the model cannot read raises (missing or corrupt media, an input of the wrong kind): that row
# fails, not the whole job. Anything else (a model or device error) fails the batch as it is.
ROW_ERRORS = (InputError, SourceError)
_INDEX_PREFIX = re.compile(r"^Input at index 0:?\s*")


class _BatchModel(Generic[S]):
    """A loaded model applied to Ray batches, with the row-error handling ``Embed`` and ``Score`` share."""

    owner = ""
    settings: S

    def _run(self, batch: Any, inputs: list[Any], columns: str, infer: Any, empty: np.ndarray) -> dict[str, Any]:
        """``batch`` with the output column (``infer(inputs)`` for the readable rows) and, with ``on_error="null"``,
        the error column; an InputError naming the first unreadable row with ``on_error="raise"``."""
        s = self.settings
        rows = [i for i, value in enumerate(inputs) if not _is_null(value)]
        readable = set(rows)
        errors = {i: "the value is null" for i in range(len(inputs)) if i not in readable}
        if errors and s.on_error == "raise":
            raise self._row_error(batch, inputs, columns, min(errors), errors[min(errors)])
        try:
            out = infer([inputs[i] for i in rows]) if rows else empty
        except ROW_ERRORS:
            good = []
            for i in rows:  # find the rows at fault; the others are then inferred together, as one batch
                try:
                    infer([inputs[i]])
                except ROW_ERRORS as exc:
                    if s.on_error == "raise":
                        raise self._row_error(batch, inputs, columns, i, str(exc)) from exc
                    errors[i] = _INDEX_PREFIX.sub("", str(exc))
                else:
                    good.append(i)
            out = infer([inputs[i] for i in good]) if good else empty
            rows = good
        out = np.asarray(out, dtype=np.float32)
        if s.on_error == "raise":
            batch[self._output] = out
            return batch
        return _with_nulls(batch, self._output, s.resolved_error_column(self._output), out, rows, errors, len(inputs))

    def _check_prompt(self, prompts: dict[str, str]) -> None:
        """An unknown prompt name would fail every row alike: said once, naming the setting, when the actor starts."""
        name = self.settings.prompt_name
        if name is not None and name not in prompts:
            raise ConfigError(f"{self.owner}: prompt_name={name!r} is not one of the model's prompts "
                              f"{sorted(prompts)}.")

    @property
    def _output(self) -> str:
        return self.settings.output_column

    def _row_error(self, batch: dict[str, Any], inputs: list[Any], columns: str, row: int, reason: str) -> InputError:
        id_column = self.settings.id_column
        named = f" ({id_column} {_value(batch, id_column, row)!r})" if id_column and id_column in batch else ""
        return InputError(f"{self.owner}: row {row} of this batch{named}, {columns} = {_short(inputs[row])}: "
                          f"{_INDEX_PREFIX.sub('', reason)} (on_error='null' gives such rows a null vector and an "
                          f"error column instead).")


class Embed(_BatchModel[EmbedSettings]):
    """``ds.map_batches(Embed, fn_constructor_kwargs={"settings": EmbedSettings(model=..., column="text")},
    compute=ray.data.ActorPoolStrategy(size=2), batch_size=64)``: adds ``output_column``, float32 vectors of the
    model's dimension (a tensor column), to each batch. The settings' fields may also be passed one by one as
    keyword arguments. See :class:`EmbedSettings`."""

    owner = "omnivec.ray.Embed"

    def __init__(self, settings: EmbedSettings | None = None, **fields: Any) -> None:
        from omnivec.models.embedder import Embedder

        self.settings = s = settings_from(EmbedSettings, settings, fields)
        self.model = Embedder(s.model, device=s.device, backend=s.backend, trust_remote_code=s.trust_remote_code)
        self.dim = int(s.truncate_dim or self.model.get_sentence_embedding_dimension() or 0)
        self._check_prompt(self.model.prompts)

    def __call__(self, batch: Any) -> Any:
        s = self.settings
        batch = _numpy_batch(batch)
        inputs = _inputs(batch, s.column, self.owner)
        if s.sampling_rate is not None:  # bare waveforms: the rate comes from the settings
            inputs = [_with_rate(value, s.sampling_rate) for value in inputs]
        return self._run(batch, inputs, f"column {s.column!r}", self._encode, np.zeros((0, self.dim), np.float32))

    def _encode(self, inputs: list[Any]) -> np.ndarray:
        s = self.settings
        vectors = self.model.encode(inputs, batch_size=s.batch_size, normalize_embeddings=s.normalize, prompt=s.prompt,
                                    prompt_name=s.prompt_name, modality=None if s.modality == "auto" else s.modality,
                                    task=s.task, truncate_dim=s.truncate_dim, show_progress_bar=False)
        return np.asarray(vectors)


class Score(_BatchModel[ScoreSettings]):
    """``ds.map_batches(Score, fn_constructor_kwargs={"settings": ScoreSettings(model=..., query_column="query",
    document_column="passage")}, ...)``: adds ``output_column``, the CrossEncoder's float32 score of each pair (a
    vector of ``num_labels`` scores per row for a model with several). See :class:`ScoreSettings`."""

    owner = "omnivec.ray.Score"

    def __init__(self, settings: ScoreSettings | None = None, **fields: Any) -> None:
        from omnivec.models.cross_encoder import CrossEncoder

        self.settings = s = settings_from(ScoreSettings, settings, fields)
        self.model = CrossEncoder(s.model, device=s.device, backend=s.backend, trust_remote_code=s.trust_remote_code)
        self._check_prompt(self.model.prompts)
        labels = int(self.model.num_labels)
        self.empty = np.zeros((0,) if labels == 1 else (0, labels), np.float32)

    def __call__(self, batch: Any) -> Any:
        s = self.settings
        batch = _numpy_batch(batch)
        queries = _inputs(batch, s.query_column, self.owner)
        documents = _inputs(batch, s.document_column, self.owner)
        pairs = [None if _is_null(q) or _is_null(d) else (q, d) for q, d in zip(queries, documents, strict=True)]
        columns = f"columns ({s.query_column!r}, {s.document_column!r})"
        return self._run(batch, pairs, columns, self._predict, self.empty)

    def _predict(self, pairs: list[Any]) -> np.ndarray:
        s = self.settings
        scores = self.model.predict(pairs, batch_size=s.batch_size, apply_softmax=s.apply_softmax, prompt=s.prompt,
                                    prompt_name=s.prompt_name, show_progress_bar=False)
        return np.asarray(scores)


def _numpy_batch(batch: Any) -> dict[str, Any]:
    """A dict of column -> NumPy array, whatever ``batch_format`` Ray was asked for (numpy, pandas, pyarrow)."""
    if isinstance(batch, dict):
        return batch
    from ray.data.block import BlockAccessor

    return cast("dict[str, Any]", BlockAccessor.for_block(batch).to_batch_format("numpy"))


def _inputs(batch: dict[str, Any], column: str, owner: str) -> list[Any]:
    """One input per row of ``column``: a tensor column's rows are arrays (an HxWxC image, a waveform)."""
    if column not in batch:
        raise InputError(f"{owner}: the batch has no column {column!r}; its columns: {sorted(batch)}.")
    values = batch[column]
    if isinstance(values, np.ndarray) and values.dtype != object and values.ndim > 1:
        return list(values)
    if isinstance(values, np.ndarray) and values.dtype.kind in ("U", "S"):
        return values.tolist()
    return list(values)


def _with_rate(value: Any, rate: int) -> Any:
    """A bare waveform (an array of numbers) as the ``{"array", "sampling_rate"}`` input the model reads."""
    if isinstance(value, (list, np.ndarray)) and not isinstance(value, (str, bytes)):
        return {"array": np.asarray(value, dtype=np.float32), "sampling_rate": rate}
    return value


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)  # pandas gives NaN for a missing value


def _value(batch: dict[str, Any], column: str, row: int) -> Any:
    value = batch[column][row]
    return value.item() if isinstance(value, np.generic) else value


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, (str, tuple, type(None))) else f"<{type(value).__name__}>"
    return text if len(text) <= 120 else text[:117] + "..."


def _with_nulls(batch: dict[str, Any], output: str, error_column: str, out: np.ndarray, rows: list[int],
                errors: dict[int, str], n: int) -> Any:
    """``batch`` as an Arrow table with ``output`` (a fixed-size list column: null for the rows not in ``rows``;
    Ray's tensor columns hold no nulls) and ``error_column`` (the reason, null where the row is fine)."""
    import pyarrow as pa
    from ray.data.block import BlockAccessor

    width = int(np.prod(out.shape[1:])) if out.ndim > 1 else 1
    full = np.zeros((n, width), np.float32)
    full[rows] = out.reshape(len(rows), width)
    valid = np.zeros(n, dtype=bool)
    valid[rows] = True
    values = pa.array(full.reshape(-1), pa.float32())
    column = (pa.FixedSizeListArray.from_arrays(values, width, mask=pa.array(~valid)) if out.ndim > 1
              else pa.array(full[:, 0], pa.float32(), mask=~valid))
    reasons = pa.array([errors.get(i) for i in range(n)], pa.string())
    table = BlockAccessor.batch_to_block({k: v for k, v in batch.items() if k not in (output, error_column)})
    if not isinstance(table, pa.Table):  # a DataContext that makes pandas blocks
        table = pa.Table.from_pandas(table, preserve_index=False)
    return table.append_column(output, column).append_column(error_column, reasons)
