"""A knowledge base's settings: which model embeds which modalities (its spaces), where vectors live, how files
are cut into chunks. Read from ``kb.toml`` (in the KB directory, or ``--config``); defaults need no file."""

from __future__ import annotations

import importlib
import math
import os
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from omnivec.errors import ConfigError, InputError
from omnivec.kb.fusion import FusionSettings
from omnivec.loading.defaults import DEFAULT_TEXT_MODEL
from omnivec.loading.options import BACKEND_NAMES, BackendName

DEFAULT_SPACES = {  # the spaces and the chunk modality each embeds: passages; images, PDF pages, video frames; audio
    "text": DEFAULT_TEXT_MODEL,
    "image": "openai/clip-vit-base-patch32",
    "audio": "laion/clap-htsat-unfused",
}
SPARSE_SPACE = "sparse"  # a learned-sparse (SPLADE) space over text chunks; off unless [spaces] names a model
LEXICAL_SPACE = "lexical"  # BM25 over text chunks in the store's full-text machinery; on unless [lexical] says no
SPACE_NAMES = (*DEFAULT_SPACES, SPARSE_SPACE, LEXICAL_SPACE)
CONFIG_FILE = "kb.toml"


@dataclass(frozen=True)
class LexicalConfig:
    """The lexical space: ``enabled`` (default on) and the ``language`` its stemmer and stop words are for."""

    enabled: bool = True
    language: str = "english"


@dataclass
class KBConfig:
    """Settings of one knowledge base.

    ``spaces`` maps a space ("text", "image", "audio") to a model folder or Hub id; drop a space to not index
    that modality; ``sparse`` adds a learned-sparse (SPLADE, a ``SparseEncoder``) space over text chunks, which
    needs a store with sparse vectors (Qdrant). ``[lexical]``: the BM25 space over text chunks, in the store's
    full-text index (``enabled``, ``language``). ``[fusion]``: how the spaces' results merge (``method``,
    ``rrf_k``, ``weights``; see :class:`~omnivec.kb.fusion.FusionSettings`). ``store`` is where vectors live: a path (LanceDB, embedded; default ``<kb>/vectors``),
    ``qdrant://path`` (Qdrant on disk) or an ``http(s)://`` Qdrant server. ``backend`` runs every model (``torch``,
    ``onnx``, ``openvino``, ``onnx-int8``, ``openvino-int8``, ``auto``); ``[backends]`` sets it per space and for
    the ``reranker``."""

    spaces: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SPACES))
    store: str | None = None
    reranker: str | None = None
    chunk_tokens: int = 256
    overlap_tokens: int = 32
    audio_window_s: float = 10.0
    video_segment_s: float = 10.0
    frames_per_segment: int = 1
    transcribe: str | None = None  # a Whisper-family model id: recordings also become timestamped text
    batch_size: int = 32
    flush_chunks: int = 512  # chunks embedded and written together (files are marked done after each write)
    backend: BackendName = "torch"
    backends: dict[str, BackendName] = field(default_factory=dict)
    lexical: LexicalConfig = field(default_factory=LexicalConfig)
    fusion: FusionSettings = field(default_factory=FusionSettings)

    def backend_for(self, name: str) -> BackendName:
        """The backend of a space's model, or of the reranker (``name="reranker"``)."""
        return self.backends.get(name, self.backend)

    def with_backend(self, backend: BackendName) -> KBConfig:
        """This config with every model on ``backend`` (a command's ``--backend``)."""
        return replace(self, backend=backend, backends={})

    def store_uri(self, kb_dir: Path) -> str:
        """Where the vectors are: ``store`` (a relative local path in it is taken from the KB folder, never from
        the working directory), else ``<kb>/vectors``."""
        if not self.store:
            return str(kb_dir / "vectors")
        scheme, sep, rest = self.store.partition("://")
        if not sep:
            scheme, rest = "", self.store
        if scheme.lower() in ("", "lancedb", "qdrant", "qdrant+path") and rest and rest != ":memory:":
            if not os.path.isabs(os.path.expanduser(rest)):
                return f"{scheme}://{kb_dir / rest}" if sep else str(kb_dir / rest)
        return self.store


# Whole-number settings and their smallest allowed value (chunks shorter than 8 tokens hold no sentence).
WHOLE_NUMBERS = {"chunk_tokens": 8, "batch_size": 1, "frames_per_segment": 1, "flush_chunks": 1}
SECONDS = ("audio_window_s", "video_segment_s")
TEXTS = ("store", "reranker", "transcribe")


def load_config(kb_dir: Path, path: str | Path | None = None) -> KBConfig:
    """``path``, else ``<kb_dir>/kb.toml`` if present, else the defaults. A bad setting is a ``ConfigError`` naming
    the file, the key and what is allowed."""
    source = Path(path) if path is not None else kb_dir / CONFIG_FILE
    if path is not None and not source.is_file():
        raise ConfigError(f"--config: KB config {str(source)!r} does not exist.")
    if not source.is_file():
        return KBConfig()
    toml = _toml()
    try:
        data = toml.loads(source.read_text(encoding="utf-8"))
    except toml.TOMLDecodeError as exc:
        raise ConfigError(f"KB config {str(source)!r} is not valid TOML: {exc}") from None
    return _from_dict(data, str(source))


def _toml() -> Any:
    """The standard library's TOML reader (Python 3.11+), or tomli, the same parser from PyPI, on 3.10."""
    return importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")


def _from_dict(data: dict[str, Any], source: str) -> KBConfig:
    known = {f.name for f in fields(KBConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"KB config {source!r}: unknown key(s) {unknown}; allowed: {sorted(known)}.")
    spaces = data.get("spaces", DEFAULT_SPACES)
    if not isinstance(spaces, dict) or not spaces:
        raise ConfigError(f"KB config {source!r}: [spaces] must map space names to models, e.g. text = \"...\".")
    bad = sorted(set(spaces) - {*DEFAULT_SPACES, SPARSE_SPACE})
    if bad:
        hint = " (the lexical space is set in [lexical])" if LEXICAL_SPACE in bad else ""
        raise ConfigError(f"KB config {source!r}: unknown space(s) {bad}; spaces are "
                          f"{sorted({*DEFAULT_SPACES, SPARSE_SPACE})}{hint}.")
    for name, model in spaces.items():
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"KB config {source!r}: spaces.{name} = {model!r}: expected a model folder or Hub id.")
    config = KBConfig(**{**data, "spaces": dict(spaces), "lexical": _lexical(data.get("lexical", {}), source),
                         "fusion": _fusion(data.get("fusion", {}), source)})
    _check_values(config, source)
    return config


def _table(value: Any, name: str, keys: tuple[str, ...], source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"KB config {source!r}: [{name}] must be a table with keys {list(keys)}.")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise ConfigError(f"KB config {source!r}: [{name}] has unknown key(s) {unknown}; allowed: {list(keys)}.")
    return value


def _lexical(value: Any, source: str) -> LexicalConfig:
    from omnivec.kb.stores.base import LEXICAL_LANGUAGES

    table = _table(value, "lexical", ("enabled", "language"), source)
    lexical = LexicalConfig(**table)
    if not isinstance(lexical.enabled, bool):
        raise ConfigError(f"KB config {source!r}: lexical.enabled = {lexical.enabled!r}: must be true or false.")
    if lexical.language not in LEXICAL_LANGUAGES:
        raise ConfigError(f"KB config {source!r}: lexical.language = {lexical.language!r}: must be one of "
                          f"{list(LEXICAL_LANGUAGES)}.")
    return lexical


def _fusion(value: Any, source: str) -> FusionSettings:
    table = dict(_table(value, "fusion", ("method", "rrf_k", "weights"), source))
    unknown = sorted(set(table.get("weights") or {}) - set(SPACE_NAMES)) if isinstance(table.get("weights"), dict) else []
    if unknown:
        raise ConfigError(f"KB config {source!r}: fusion.weights: unknown space(s) {unknown}; spaces are "
                          f"{list(SPACE_NAMES)}.")
    try:
        return FusionSettings(**table)
    except InputError as exc:
        raise ConfigError(f"KB config {source!r}: [fusion] {exc}") from None


def _check_values(config: KBConfig, source: str) -> None:
    """Each setting's type and range, so a bad one is named here rather than deep inside an index run."""
    def fail(name: str, allowed: str) -> ConfigError:
        return ConfigError(f"KB config {source!r}: {name} = {getattr(config, name)!r}: must be {allowed}.")

    for name, least in WHOLE_NUMBERS.items():
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise fail(name, f"a whole number >= {least}")
    overlap = config.overlap_tokens
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < config.chunk_tokens // 2:
        raise fail("overlap_tokens", f"a whole number from 0 to below half of chunk_tokens ({config.chunk_tokens // 2})")
    for name in SECONDS:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise fail(name, "a number of seconds > 0")
    for name in TEXTS:
        if getattr(config, name) is not None and not isinstance(getattr(config, name), str):
            raise fail(name, "a string")
    _check_backends(config, source)
    if config.store is not None:
        from omnivec.kb.stores.uri import StoreURIError, store_scheme

        try:
            store_scheme(config.store)
        except StoreURIError as exc:
            raise ConfigError(f"KB config {source!r}: store: {exc}") from None


def _check_backends(config: KBConfig, source: str) -> None:
    if config.backend not in BACKEND_NAMES:
        raise ConfigError(f"KB config {source!r}: backend = {config.backend!r}: must be one of {list(BACKEND_NAMES)}.")
    if not isinstance(config.backends, dict):
        raise ConfigError(f"KB config {source!r}: [backends] must map spaces (or \"reranker\") to backends.")
    for name, value in config.backends.items():
        if name not in (*DEFAULT_SPACES, SPARSE_SPACE, "reranker"):
            raise ConfigError(f"KB config {source!r}: backends.{name}: unknown; keys are "
                              f"{[*DEFAULT_SPACES, SPARSE_SPACE, 'reranker']}.")
        if value not in BACKEND_NAMES:
            raise ConfigError(f"KB config {source!r}: backends.{name} = {value!r}: must be one of {list(BACKEND_NAMES)}.")
