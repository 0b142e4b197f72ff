"""Settings of ``omnivec.ray.KBSink`` / ``omnivec.ray.write_kb``: which KB, which space, and which columns of the
dataset become each record's id, vector and payload. Checked when made, naming the setting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omnivec.errors import ConfigError
from omnivec.kb.config import DEFAULT_SPACES
from omnivec.kb.stores.base import PAYLOAD_DEFAULTS, RESERVED_KEYS
from omnivec.models.ray_settings import settings_from as checked_settings

OWNER = "omnivec.ray.KBSink"
# The payload a record gets unless a column or value sets it: a space holds the modality it is named after.
DEFAULT_KIND = {"text": "text", "image": "image", "audio": "audio"}


def _name(setting: str, value: Any, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{OWNER}: {setting} must be a non-empty string, got {value!r}.")


@dataclass(frozen=True, kw_only=True)
class KBWriteSettings:
    """Write a dataset's rows into one dense space of a knowledge base.

    ``kb``: the KB as ``--kb`` names it (a folder, or a store URI); ``config``: its kb.toml if not the KB's own.
    ``space``: "text", "image" or "audio", a space the KB's config has; ``model``: the model that made the vectors,
    which must be that space's model (else ``omnivec search`` would embed queries with another one).
    ``id_column``: each record's id (str or int, unique in the space); ``vector_column``: its vector.
    ``payload_columns``: payload key -> column (e.g. ``{"file": "image_path", "text": "caption"}``);
    ``payload_values``: payload key -> the same value for every row (e.g. ``{"file": "corpus.parquet"}``).
    ``modality`` and ``kind`` default to the space's modality. ``error_column``: rows where it is set (an
    ``Embed(on_error="null")`` column) are skipped and counted. ``lexical``: text written to the text space also
    goes to the KB's lexical (BM25) space, as ``omnivec index`` does, when the KB has it on."""

    kb: str
    space: str
    model: str
    config: str | None = None
    id_column: str = "id"
    vector_column: str = "embedding"
    payload_columns: dict[str, str] = field(default_factory=dict)
    payload_values: dict[str, Any] = field(default_factory=dict)
    error_column: str | None = None
    lexical: bool = True

    def __post_init__(self) -> None:
        _name("kb", self.kb)
        _name("model", self.model)
        _name("config", self.config, optional=True)
        if self.space not in DEFAULT_SPACES:
            raise ConfigError(f"{OWNER}: space={self.space!r}: the writer fills a dense space, one of "
                              f"{list(DEFAULT_SPACES)}.")
        for setting in ("id_column", "vector_column"):
            _name(setting, getattr(self, setting))
        _name("error_column", self.error_column, optional=True)
        if not isinstance(self.lexical, bool):
            raise ConfigError(f"{OWNER}: lexical must be True or False, got {self.lexical!r}.")
        for setting in ("payload_columns", "payload_values"):
            mapping = getattr(self, setting)
            if not isinstance(mapping, dict):
                raise ConfigError(f"{OWNER}: {setting} must be a dict of payload key -> "
                                  f"{'column' if setting == 'payload_columns' else 'value'}, got {mapping!r}.")
            for key, value in mapping.items():
                if not isinstance(key, str) or not key or key in RESERVED_KEYS:
                    raise ConfigError(f"{OWNER}: {setting} key {key!r} is not a payload key (reserved: "
                                      f"{sorted(RESERVED_KEYS)}; usual: {list(PAYLOAD_DEFAULTS)}).")
                if setting == "payload_columns":
                    _name(f"payload_columns[{key!r}]", value)
                elif value is not None and (isinstance(value, bool) or not isinstance(value, (str, int, float))):
                    raise ConfigError(f"{OWNER}: payload_values[{key!r}] must be a str, int, float or None, "
                                      f"got {value!r}.")
        both = sorted(set(self.payload_columns) & set(self.payload_values))
        if both:
            raise ConfigError(f"{OWNER}: payload key(s) {both} are in both payload_columns and payload_values.")
        if "file" not in self.payload_columns and "file" not in self.payload_values:
            raise ConfigError(f"{OWNER}: every record needs a payload 'file' (where it comes from): set "
                              "payload_columns={'file': COLUMN} or payload_values={'file': 'NAME'}.")

    def constants(self) -> dict[str, Any]:
        """The payload every row gets before its columns: the space's modality and kind, then ``payload_values``."""
        return {"modality": self.space, "kind": DEFAULT_KIND[self.space], **self.payload_values}


def settings_from(settings: KBWriteSettings | None, given: dict[str, Any]) -> KBWriteSettings:
    """``settings``, or one made from ``given``: an unknown name is a ConfigError listing the known ones."""
    return checked_settings(KBWriteSettings, settings, given, OWNER)
