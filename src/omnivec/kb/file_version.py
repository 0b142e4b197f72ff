"""One version of a source file as the KB records it: path, content hash, size and modification time. The indexer
compares versions to skip unchanged files; the server compares them to serve only the file that was indexed."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class FileVersion:
    """``path``: resolved, as indexed. ``hash``: of the file's bytes (``manifest.content_hash``). ``size``: bytes.
    ``mtime``: ``st_mtime`` in seconds, as the manifest's ``mtime`` column holds it."""

    path: str
    hash: str
    size: int
    mtime: float

    @classmethod
    def of(cls, path: str, found: os.stat_result, hash: str) -> FileVersion:
        """The version of the file at ``path`` whose ``stat`` is ``found`` and whose bytes hash to ``hash``."""
        return cls(path, hash, found.st_size, found.st_mtime)

    def shown_by(self, found: os.stat_result) -> bool:
        """Whether a ``stat`` of the file still shows this version: the same size and modification time (its bytes
        are not read; what the server checks before serving a file)."""
        return found.st_size == self.size and found.st_mtime == self.mtime

    def same_content(self, other: FileVersion) -> bool:
        """Whether ``other`` is this file with the same bytes: only its modification time may differ."""
        return (self.path, self.hash, self.size) == (other.path, other.hash, other.size)
