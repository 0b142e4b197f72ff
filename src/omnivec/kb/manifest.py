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
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
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


@dataclass
class FileEntry:
    path: str
    hash: str
    size: int
    mtime: float
    state: str
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
        self.db = sqlite3.connect(str(path))
        self.db.execute("PRAGMA journal_mode=WAL")
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(files)")}
        if columns and "records" not in columns:  # a manifest from before per-space counts were kept
            self.db.execute("ALTER TABLE files ADD COLUMN records TEXT NOT NULL DEFAULT ''")
        self.db.executescript(SCHEMA)
        self.db.commit()

    def entries(self) -> dict[str, FileEntry]:
        rows = self.db.execute("SELECT path, hash, size, mtime, state, chunks, error, spaces, records "
                               "FROM files").fetchall()
        return {row[0]: FileEntry(*row) for row in rows}

    def set_states(self, files: list[tuple[str, str, int, float]], state: str, chunks: list[int] | None = None,
                   errors: list[str] | None = None, spaces: str = "",
                   records: list[dict[str, int]] | None = None) -> None:
        """Record ``(path, hash, size, mtime)`` files in ``state``, in one transaction; ``records``: the vectors
        each has in each space (none by default)."""
        now = time.time()
        chunks = chunks or [0] * len(files)
        errors = errors or [""] * len(files)
        counts = [json.dumps(r, sort_keys=True) for r in records] if records else ["{}"] * len(files)
        self.db.executemany(
            "INSERT INTO files (path, hash, size, mtime, state, chunks, error, spaces, updated, records) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET hash=excluded.hash, "
            "size=excluded.size, mtime=excluded.mtime, state=excluded.state, chunks=excluded.chunks, "
            "error=excluded.error, spaces=excluded.spaces, updated=excluded.updated, records=excluded.records",
            [(p, h, s, m, state, c, e, spaces, now, r)
             for (p, h, s, m), c, e, r in zip(files, chunks, errors, counts)])
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
        self.db.executemany("UPDATE files SET state = 'pending' WHERE path = ?", [(p,) for p in paths])

    def space_models(self) -> dict[str, tuple[str, str]]:
        """``space -> (model as configured, identity)`` recorded when its vectors were written."""
        return {name: (model, identity)
                for name, model, identity in self.db.execute("SELECT name, model, identity FROM spaces")}

    def set_space_model(self, name: str, model: str, identity: str, pending: list[str] = ()) -> None:
        """Record the model of space ``name``, and mark ``pending`` files for re-indexing, in one transaction."""
        with self.db:
            self._pending(list(pending))
            self.db.execute("INSERT INTO spaces (name, model, identity, updated) VALUES (?, ?, ?, ?) "
                            "ON CONFLICT(name) DO UPDATE SET model=excluded.model, identity=excluded.identity, "
                            "updated=excluded.updated", (name, model, identity, time.time()))

    def touch(self, files: list[tuple[str, float]]) -> None:
        """``(path, mtime)``: same content, new modification time; remembered so the next run need not hash again."""
        self.db.executemany("UPDATE files SET mtime = ? WHERE path = ?", [(m, p) for p, m in files])
        self.db.commit()

    def remove(self, paths: list[str]) -> None:
        self.db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in paths])
        self.db.commit()

    def close(self) -> None:
        self.db.close()


def indexed_versions(path: Path) -> list[tuple[str, int, float]]:
    """``(path, size, mtime)`` of the files of the manifest at ``path`` whose vectors are all stored, as they were
    when indexed (what the server checks before serving), read without writing (a server may read while
    ``omnivec index`` writes)."""
    return _read_only(path, "SELECT path, size, mtime FROM files WHERE state = 'done'")


def _read_only(path: Path, query: str) -> list[tuple]:
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()
