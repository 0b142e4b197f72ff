"""Record ids: a file's key (a hash of its path as indexed) and its chunk's position. Stable across runs and stores,
so a re-indexed file replaces its own records and a thumbnail is found by its record's id."""

from __future__ import annotations

import hashlib


def file_key(path: str) -> str:
    """A short stable id of an indexed file's path (16 hex digits), the prefix of its records' ids."""
    return hashlib.blake2b(path.encode(), digest_size=8).hexdigest()


def record_id(path: str, position: int) -> str:
    return f"{file_key(path)}-{position}"
