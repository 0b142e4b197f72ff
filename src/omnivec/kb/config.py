"""A knowledge base's settings: which model embeds which modalities (its spaces), where vectors live, how files
are cut into chunks. Read from ``kb.toml`` (in the KB directory, or ``--config``); defaults need no file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomllib

from omnivec.errors import InputError
from omnivec.loading.defaults import DEFAULT_TEXT_MODEL

DEFAULT_SPACES = {  # the spaces and the chunk modality each embeds: passages; images, PDF pages, video frames; audio
    "text": DEFAULT_TEXT_MODEL,
    "image": "openai/clip-vit-base-patch32",
    "audio": "laion/clap-htsat-unfused",
}
CONFIG_FILE = "kb.toml"


@dataclass
class KBConfig:
    """Settings of one knowledge base.

    ``spaces`` maps a space ("text", "image", "audio") to a model folder or Hub id; drop a space to not index
    that modality. ``store`` is where vectors live: a path (LanceDB, embedded; default ``<kb>/vectors``),
    ``qdrant://path`` (Qdrant on disk) or an ``http(s)://`` Qdrant server."""

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


def load_config(kb_dir: Path, path: str | Path | None = None) -> KBConfig:
    """``path``, else ``<kb_dir>/kb.toml`` if present, else the defaults. Unknown keys are named."""
    source = Path(path) if path is not None else kb_dir / CONFIG_FILE
    if path is not None and not source.is_file():
        raise InputError(f"KB config {str(source)!r} does not exist.")
    if not source.is_file():
        return KBConfig()
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"KB config {str(source)!r} is not valid TOML: {exc}") from None
    return _from_dict(data, str(source))


def _from_dict(data: dict[str, Any], source: str) -> KBConfig:
    known = {f.name for f in fields(KBConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"KB config {source!r}: unknown key(s) {unknown}; allowed: {sorted(known)}.")
    spaces = data.get("spaces", DEFAULT_SPACES)
    if not isinstance(spaces, dict) or not spaces:
        raise InputError(f"KB config {source!r}: [spaces] must map space names to models, e.g. text = \"...\".")
    bad = sorted(set(spaces) - set(DEFAULT_SPACES))
    if bad:
        raise InputError(f"KB config {source!r}: unknown space(s) {bad}; spaces are {sorted(DEFAULT_SPACES)}.")
    config = KBConfig(**{**data, "spaces": dict(spaces)})
    for name in ("chunk_tokens", "batch_size", "frames_per_segment", "flush_chunks"):
        if not isinstance(getattr(config, name), int) or getattr(config, name) <= 0:
            raise InputError(f"KB config {source!r}: {name} must be a positive integer.")
    return config
