"""What the KB holds, file by file, in SQLite: content hash, state, chunk count, error. A file is "pending" while
its vectors are being replaced and "done" once they all are, so a run killed at any point is resumed by redoing
the pending files."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sqlite3
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeGuard, get_args

from omnivec.errors import OmnivecError
from omnivec.kb.file_version import FileVersion

FileState = Literal["pending", "done", "failed"]
"""A file's row in the manifest: its vectors being replaced, all stored, or not indexable (with the reason)."""
FILE_STATES: tuple[FileState, ...] = get_args(FileState)
_STATE_VALUES = ", ".join(f"'{state}'" for state in FILE_STATES)  # SQL: 'pending', 'done', 'failed'

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    state TEXT NOT NULL CHECK (state IN ({_STATE_VALUES})),
    chunks INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    spaces TEXT NOT NULL DEFAULT '',
    updated REAL NOT NULL,
    records TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS spaces (
    name TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    identity TEXT NOT NULL,
    updated REAL NOT NULL
);
"""


class ManifestError(OmnivecError):
    """The manifest holds what this version of omnivec cannot read."""


def is_file_state(value: object) -> TypeGuard[FileState]:
    """Whether ``value`` is one of the states a manifest's ``state`` column holds."""
    return value in FILE_STATES


@dataclass
class FileEntry:
    """One file's row: the version indexed (or being indexed), its state, and what indexing it gave."""

    version: FileVersion
    state: FileState
    chunks: int
    error: str
    spaces: str  # the spaces active when the file was indexed, comma-separated
    records: str = ""  # JSON {space: vectors stored}; "" in manifests written before it was kept


def record_counts(entry: FileEntry) -> dict[str, int] | None:
    """The vectors a done file has in each space; None where the manifest predates this count."""
    return json.loads(entry.records) if entry.records else None


def content_hash(path: Path) -> str:
    """The hash of a regular file's bytes. Opened without following a symlink and without blocking, so a file
    swapped for a symlink, a FIFO or a device since the scan raises ``OSError`` instead of hanging the run."""
    digest = hashlib.blake2b(digest_size=20)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Manifest:
    """The file table of one KB (``<kb>/manifest.sqlite``); every change is committed at once."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path))
        self.db.execute("PRAGMA journal_mode=WAL")
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(files)")}
        if columns and "records" not in columns:  # a manifest from before per-space counts were kept
            self.db.execute("ALTER TABLE files ADD COLUMN records TEXT NOT NULL DEFAULT ''")
        self.db.executescript(SCHEMA)
        self.db.commit()

    def entries(self) -> dict[str, FileEntry]:
        """Every file's row, by path. Raises ``ManifestError`` naming the file for a state this version does not
        know."""
        rows = self.db.execute("SELECT path, hash, size, mtime, state, chunks, error, spaces, records "
                               "FROM files").fetchall()
        entries = {}
        for path, file_hash, size, mtime, state, chunks, error, spaces, records in rows:
            if not is_file_state(state):
                raise ManifestError(f"{self.path}: file {path!r} has state {state!r}; expected one of "
                                    f"{', '.join(FILE_STATES)} (a manifest written by another omnivec version?).")
            entries[path] = FileEntry(FileVersion(path, file_hash, size, mtime), state, chunks, error, spaces,
                                      records)
        return entries

    def set_states(self, files: Sequence[FileVersion], state: FileState, chunks: list[int] | None = None,
                   errors: list[str] | None = None, spaces: str = "",
                   records: list[dict[str, int]] | None = None) -> None:
        """Record ``files`` in ``state``, in one transaction; ``chunks``, ``errors`` and ``records`` (the vectors
        each has in each space) one per file, when given."""
        now = time.time()
        chunks = chunks or [0] * len(files)
        errors = errors or [""] * len(files)
        counts = [json.dumps(r, sort_keys=True) for r in records] if records else ["{}"] * len(files)
        self.db.executemany(
            "INSERT INTO files (path, hash, size, mtime, state, chunks, error, spaces, updated, records) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET hash=excluded.hash, "
            "size=excluded.size, mtime=excluded.mtime, state=excluded.state, chunks=excluded.chunks, "
            "error=excluded.error, spaces=excluded.spaces, updated=excluded.updated, records=excluded.records",
            [(v.path, v.hash, v.size, v.mtime, state, c, e, spaces, now, r)
             for v, c, e, r in zip(files, chunks, errors, counts, strict=True)])
        self.db.commit()

    def set_records(self, counts: dict[str, dict[str, int]]) -> None:
        """``path -> {space: vectors}`` for files indexed before the counts were kept (read from the store)."""
        self.db.executemany("UPDATE files SET records = ? WHERE path = ?",
                            [(json.dumps(c, sort_keys=True), p) for p, c in counts.items()])
        self.db.commit()

    def mark_pending(self, paths: list[str]) -> None:
        """Files whose vectors must be written again: the next pass over them re-indexes them."""
        with self.db:
            self._pending(paths)

    def _pending(self, paths: list[str]) -> None:
        pending: FileState = "pending"
        self.db.executemany("UPDATE files SET state = ? WHERE path = ?", [(pending, p) for p in paths])

    def space_models(self) -> dict[str, tuple[str, str]]:
        """``space -> (model as configured, identity)`` recorded when its vectors were written."""
        return {name: (model, identity)
                for name, model, identity in self.db.execute("SELECT name, model, identity FROM spaces")}

    def set_space_model(self, name: str, model: str, identity: str, pending: Sequence[str] = ()) -> None:
        """Record the model of space ``name``, and mark ``pending`` files for re-indexing, in one transaction."""
        with self.db:
            self._pending(list(pending))
            self.db.execute("INSERT INTO spaces (name, model, identity, updated) VALUES (?, ?, ?, ?) "
                            "ON CONFLICT(name) DO UPDATE SET model=excluded.model, identity=excluded.identity, "
                            "updated=excluded.updated", (name, model, identity, time.time()))

    def touch(self, files: list[FileVersion]) -> None:
        """Files with the same content and a new modification time: their ``mtime`` is remembered, so the next run
        need not hash them again."""
        self.db.executemany("UPDATE files SET mtime = ? WHERE path = ?", [(v.mtime, v.path) for v in files])
        self.db.commit()

    def remove(self, paths: list[str]) -> None:
        self.db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in paths])
        self.db.commit()

    def close(self) -> None:
        self.db.close()


def indexed_versions(path: Path) -> list[FileVersion]:
    """The versions of the files of the manifest at ``path`` whose vectors are all stored, as they were when
    indexed (what the server checks before serving), read without writing (a server may read while
    ``omnivec index`` writes)."""
    done: FileState = "done"
    rows = _read_only(path, "SELECT path, hash, size, mtime FROM files WHERE state = ?", (done,))
    return [FileVersion(*row) for row in rows]


def _read_only(path: Path, query: str, parameters: tuple[object, ...] = ()) -> list[tuple]:
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return db.execute(query, parameters).fetchall()
    finally:
        db.close()


def state_counts(path: Path) -> dict[FileState, int]:
    """Files per state in the manifest at ``path`` (every state present, 0 where none), read without writing."""
    counts = dict.fromkeys(FILE_STATES, 0)
    for state, count in _read_only(path, "SELECT state, COUNT(*) FROM files GROUP BY state"):
        if is_file_state(state):
            counts[state] = int(count)
    return counts


def recorded_models(path: Path) -> dict[str, str]:
    """``space -> model`` as the manifest at ``path`` recorded them when vectors were written, read without writing."""
    return {name: model for name, model in _read_only(path, "SELECT name, model FROM spaces")}
