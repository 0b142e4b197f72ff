"""What ``omnivec.ray.KBSink`` does, without Ray: check the KB and the space on the driver, create the collections
and record the space's model, turn a batch of rows into records and upsert them (in each write task), optimise
the collections at the end.

Which stores may be written by several processes at once: LanceDB (a commit is an atomic manifest swap; a writer
that loses the race re-reads and retries, so concurrent upserts of distinct ids all land) and a Qdrant server (its
own process serialises writes). Qdrant's local mode (``qdrant://PATH``) is one process only: it is written from the
driver (``write_kb``), never from write tasks."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omnivec.errors import ConfigError, InputError
from omnivec.kb.config import LEXICAL_SPACE
from omnivec.kb.ray_write_settings import OWNER, KBWriteSettings
from omnivec.kb.stores.base import Record
from omnivec.kb.stores.uri import store_scheme

SKIPPED_EXAMPLES = 10  # rows skipped for their error column, kept by id to report


@dataclass
class WriteSummary:
    """What a write did: records written, rows skipped for their error column (a few of them, ``(id, error)``)."""

    written: int = 0
    skipped: int = 0
    examples: list[tuple[str, str]] = field(default_factory=list)

    def add(self, other: WriteSummary) -> None:
        self.written += other.written
        self.skipped += other.skipped
        self.examples.extend(other.examples[: SKIPPED_EXAMPLES - len(self.examples)])


class KBTarget:
    """One space of one KB, checked on the driver; picklable, so that write tasks carry it."""

    def __init__(self, settings: KBWriteSettings) -> None:
        from omnivec.kb.settings import kb_settings

        self.settings = s = settings
        self.kb_dir, config = kb_settings(s.kb, s.config)
        if s.space not in config.spaces:
            raise ConfigError(f"{OWNER}: the KB {s.kb!r} has no {s.space!r} space (its spaces: "
                              f"{sorted(config.spaces)}); add it to the KB's kb.toml [spaces].")
        self.space_model = config.spaces[s.space]
        _check_model(s.model, self.space_model, s.space, s.kb)
        self.store_uri = config.store_uri(self.kb_dir)
        self.lexical_language = config.lexical.language if s.space == "text" and s.lexical and \
            config.lexical.enabled else None
        self._refuse_indexed_files()

    @property
    def single_process(self) -> bool:
        """Whether the store is Qdrant's local mode, which one process at a time may open."""
        return store_scheme(self.store_uri)[0] in ("qdrant", "qdrant+path")

    def _refuse_indexed_files(self) -> None:
        """A KB that ``omnivec index`` fills keeps, per file, the records it wrote; at its next run it deletes those
        of files it does not know. Rows written here would be deleted, so such a KB is refused."""
        from omnivec.kb.manifest import indexed_versions

        path = self.kb_dir / "manifest.sqlite"
        if path.is_file() and indexed_versions(path):
            raise ConfigError(f"{OWNER}: the KB {self.settings.kb!r} holds files indexed by `omnivec index`, whose "
                              "next run deletes records it did not write: write the dataset into a KB of its own "
                              "(search several with one `omnivec serve`).")

    def start(self, dim: int) -> None:
        """On the driver, before any write: the manifest (``omnivec search`` opens it) with the space's model, and
        the collections."""
        from omnivec.kb.consistency import model_identity
        from omnivec.kb.manifest import Manifest
        from omnivec.kb.stores.base import LexicalSettings
        from omnivec.kb.stores.uri import open_store

        manifest = Manifest(self.kb_dir / "manifest.sqlite")
        try:
            try:
                identity = model_identity(self.space_model)
            except OSError:
                identity = ""
            manifest.set_space_model(self.settings.space, self.space_model, identity)
        finally:
            manifest.close()
        with open_store(self.store_uri) as store:
            store.ensure_collection(self.settings.space, dim)
            if self.lexical_language is not None:
                store.ensure_lexical_collection(LEXICAL_SPACE, LexicalSettings(self.lexical_language))

    def write(self, batches: Any) -> WriteSummary:
        """Upsert every batch (a dict of column -> NumPy array); in a write task, or on the driver."""
        from omnivec.kb.stores.uri import open_store

        summary = WriteSummary()
        with open_store(self.store_uri) as store:
            for batch in batches:
                records, skipped = self.records(batch)
                store.upsert(self.settings.space, records)
                if self.lexical_language is not None:
                    store.upsert(LEXICAL_SPACE, [Record(r.id, None, r.payload) for r in records])
                summary.add(WriteSummary(len(records), len(skipped), skipped))
        return summary

    def finish(self) -> None:
        """On the driver, after every write: indexes brought up to date (LanceDB's full-text index needs it)."""
        from omnivec.kb.stores.uri import open_store

        with open_store(self.store_uri) as store:
            store.optimize(self.settings.space)
            if self.lexical_language is not None:
                store.optimize(LEXICAL_SPACE)

    def records(self, batch: dict[str, Any]) -> tuple[list[Record], list[tuple[str, str]]]:
        """The batch's rows as records, and the ``(id, error)`` of rows skipped for their error column."""
        s = self.settings
        for column in (s.id_column, s.vector_column, *s.payload_columns.values(), *filter(None, [s.error_column])):
            if column not in batch:
                raise InputError(f"{OWNER}: the dataset has no column {column!r}; its columns: {sorted(batch)}.")
        ids = [_id(value, s.id_column) for value in batch[s.id_column]]
        vectors = batch[s.vector_column]
        errors = batch[s.error_column] if s.error_column else [None] * len(ids)
        constants = s.constants()
        records, skipped = [], []
        for row, record_id in enumerate(ids):
            error = _item(errors[row])
            if error:
                skipped.append((record_id, str(error)))
                continue
            vector = vectors[row]
            if vector is None:
                raise InputError(f"{OWNER}: record {record_id!r} has a null {s.vector_column!r}: set error_column to "
                                 "the embedder's error column to skip the rows it could not read.")
            payload = dict(constants)
            payload.update({key: _item(batch[column][row]) for key, column in s.payload_columns.items()})
            records.append(Record(record_id, np.asarray(vector, dtype=np.float32), payload))
        return records, skipped


def vector_dim(schema: Any, column: str) -> int:
    """The vector length of ``column`` in an Arrow schema: a Ray tensor column or a fixed-size list."""
    import pyarrow as pa

    if schema is None or column not in schema.names:
        names = [] if schema is None else schema.names
        raise InputError(f"{OWNER}: the dataset has no vector column {column!r}; its columns: {names}.")
    kind = schema.field(column).type
    shape = getattr(kind, "shape", None)
    if shape is not None and len(shape) == 1 and shape[0]:
        return int(shape[0])
    if pa.types.is_fixed_size_list(kind):
        return int(kind.list_size)
    raise InputError(f"{OWNER}: column {column!r} is {kind}, not vectors of one length (a tensor or fixed-size "
                     "list column, as omnivec.ray.Embed makes).")


def _check_model(model: str, space_model: str, space: str, kb: str) -> None:
    """The vectors must come from the model the KB embeds the space's queries with."""
    if model == space_model or _same_folder(model, space_model):
        return
    raise ConfigError(f"{OWNER}: model {model!r} made the vectors, but the KB {kb!r} embeds its {space!r} space with "
                      f"{space_model!r} (kb.toml [spaces]): its searches would compare vectors of two models.")


def _same_folder(a: str, b: str) -> bool:
    with contextlib.suppress(OSError):
        return os.path.isdir(a) and os.path.samefile(Path(a).expanduser(), Path(b).expanduser())
    return False


def _id(value: Any, column: str) -> str:
    value = _item(value)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise InputError(f"{OWNER}: id column {column!r} holds {value!r}; ids are non-empty strings or ints.")
    return str(value)


def _item(value: Any) -> Any:
    """A NumPy scalar as its Python value, a missing value (None, NaN) as None."""
    value = value.item() if isinstance(value, np.generic) else value
    return None if isinstance(value, float) and value != value else value
