"""Settings of the Ray Data callables (``omnivec.ray.Embed``, ``omnivec.ray.Score``): frozen dataclasses checked when
made, so that a bad value fails on the driver, naming the setting, before any actor starts."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal, TypeVar, get_args

from omnivec.errors import ConfigError
from omnivec.loading.options import BACKEND_NAMES, BackendName

ColumnModality = Literal["text", "image", "audio", "video", "auto"]
COLUMN_MODALITIES: tuple[str, ...] = get_args(ColumnModality)
OnError = Literal["raise", "null"]
ON_ERROR: tuple[str, ...] = get_args(OnError)


def _column(owner: str, name: str, value: Any, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{owner}: {name} must be a column name (a non-empty string), got {value!r}.")


def _positive(owner: str, name: str, value: Any, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{owner}: {name} must be a whole number >= 1, got {value!r}.")


def _choice(owner: str, name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{owner}: {name}={value!r} is not allowed; choose one of {list(allowed)}.")


def _text(owner: str, name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{owner}: {name} must be a non-empty string or None, got {value!r}.")


def _flag(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{owner}: {name} must be True or False, got {value!r}.")


@dataclass(frozen=True, kw_only=True)
class _ModelSettings:
    """What every Ray callable loads and how it reports a row it cannot read."""

    model: str
    device: str | None = None
    backend: BackendName = "torch"
    batch_size: int = 32  # the model's own batches inside one Ray batch (Ray's ``batch_size`` is per call)
    prompt_name: str | None = None
    prompt: str | None = None
    on_error: OnError = "raise"
    error_column: str | None = None  # with on_error="null"; default "<output_column>_error"
    id_column: str | None = None  # a column whose value names a row in error messages
    trust_remote_code: bool = False

    def _check_common(self, owner: str, output_column: str) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError(f"{owner}: model must be a model folder or Hub id, got {self.model!r}.")
        _text(owner, "device", self.device)
        _choice(owner, "backend", self.backend, BACKEND_NAMES)
        _positive(owner, "batch_size", self.batch_size)
        _text(owner, "prompt_name", self.prompt_name)
        _text(owner, "prompt", self.prompt)
        if self.prompt is not None and self.prompt_name is not None:
            raise ConfigError(f"{owner}: give prompt or prompt_name, not both.")
        _choice(owner, "on_error", self.on_error, ON_ERROR)
        _column(owner, "error_column", self.error_column, optional=True)
        _column(owner, "id_column", self.id_column, optional=True)
        _column(owner, "output_column", output_column)
        _flag(owner, "trust_remote_code", self.trust_remote_code)
        if self.resolved_error_column(output_column) == output_column:
            raise ConfigError(f"{owner}: error_column and output_column are both {output_column!r}.")

    def resolved_error_column(self, output_column: str) -> str:
        return self.error_column or f"{output_column}_error"


@dataclass(frozen=True, kw_only=True)
class EmbedSettings(_ModelSettings):
    """``omnivec.ray.Embed``: embed ``column`` with the Embedder ``model`` into ``output_column``.

    ``modality``: how every value of the column is read: "text" (default), "image" (paths, URLs, ``data:`` URIs,
    bytes, PIL images, HxWxC uint8 arrays), "audio" (paths, bytes, ``{"array", "sampling_rate"}``, or bare float
    arrays with ``sampling_rate`` set), "video", or "auto" (decided per value, as ``Embedder.encode`` does).
    ``normalize``: L2-normalise the vectors; ``task``, ``prompt_name``/``prompt``, ``truncate_dim``: as in
    ``Embedder.encode``. ``on_error``: "raise" (a row the model cannot read fails the batch, naming the row and the
    column) or "null" (its vector is null and ``error_column`` says why)."""

    column: str
    output_column: str = "embedding"
    modality: ColumnModality = "text"
    normalize: bool = False
    task: str | None = None
    truncate_dim: int | None = None
    sampling_rate: int | None = None

    def __post_init__(self) -> None:
        owner = "omnivec.ray.Embed"
        _column(owner, "column", self.column)
        self._check_common(owner, self.output_column)
        _choice(owner, "modality", self.modality, COLUMN_MODALITIES)
        _flag(owner, "normalize", self.normalize)
        _text(owner, "task", self.task)
        _positive(owner, "truncate_dim", self.truncate_dim, optional=True)
        _positive(owner, "sampling_rate", self.sampling_rate, optional=True)
        if self.sampling_rate is not None and self.modality != "audio":
            raise ConfigError(f"{owner}: sampling_rate is for modality='audio' columns of bare waveforms, but "
                              f"modality is {self.modality!r}.")
        if self.output_column == self.column:
            raise ConfigError(f"{owner}: output_column {self.output_column!r} would overwrite the input column.")


@dataclass(frozen=True, kw_only=True)
class ScoreSettings(_ModelSettings):
    """``omnivec.ray.Score``: the CrossEncoder ``model``'s score of each (``query_column``, ``document_column``) pair
    into ``output_column`` (one float per row; one per label for a model with several). ``apply_softmax``: as in
    ``CrossEncoder.predict``."""

    query_column: str
    document_column: str
    output_column: str = "score"
    apply_softmax: bool = False

    def __post_init__(self) -> None:
        owner = "omnivec.ray.Score"
        _column(owner, "query_column", self.query_column)
        _column(owner, "document_column", self.document_column)
        self._check_common(owner, self.output_column)
        _flag(owner, "apply_softmax", self.apply_softmax)
        if self.output_column in (self.query_column, self.document_column):
            raise ConfigError(f"{owner}: output_column {self.output_column!r} would overwrite an input column.")


S = TypeVar("S", EmbedSettings, ScoreSettings)
T = TypeVar("T")


def settings_from(kind: type[T], settings: T | None, given: dict[str, Any], owner: str | None = None) -> T:
    """``settings``, or one made from ``given`` (the callable's keyword arguments): an unknown name is a
    ConfigError listing the known ones, never passed on. ``owner``: the name errors start with."""
    owner = owner or "omnivec.ray." + ("Embed" if kind is EmbedSettings else "Score")
    if settings is not None:
        if given:
            raise ConfigError(f"{owner}: pass settings= or the settings' fields, not both (got {sorted(given)}).")
        if not isinstance(settings, kind):
            raise ConfigError(f"{owner}: settings must be a {kind.__name__}, got {type(settings).__name__}.")
        return settings
    known = [f.name for f in fields(kind)]  # type: ignore[arg-type]  # every kind is a dataclass
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(f"{owner}: unknown setting(s) {unknown}; known: {known}.")
    return kind(**given)
