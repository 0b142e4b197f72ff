"""What ``omnivec kb copy`` checks once the records are written: the same number of records in every collection, and
a random sample of records (ids drawn while copying) equal at both ends: payloads exactly, dense vectors within
``DENSE_TOLERANCE``, sparse vectors index for index. A difference is a :class:`CopyMismatchError` naming the
collection and the record."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from omnivec.errors import OmnivecError
from omnivec.kb.stores.base import Record, SparseVector, VectorStore

# Qdrant re-normalises cosine vectors as it stores them: an L2-normalised float32 vector moves by ~1e-7 at most.
DENSE_TOLERANCE = 1e-6


class CopyMismatchError(OmnivecError):
    """The copy differs from its source: a collection's count, or a sampled record's payload or vector."""


class IdSample:
    """A uniform random sample of ``size`` ids from a stream of ids (reservoir sampling, Algorithm R), so the
    sample needs no second pass over a collection and no list of all its ids."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size, self.seen, self.ids = size, 0, []
        self._random = random.Random(seed)

    def add(self, ids: list[str]) -> None:
        for record_id in ids:
            self.seen += 1
            if len(self.ids) < self.size:
                self.ids.append(record_id)
            else:
                slot = self._random.randrange(self.seen)
                if slot < self.size:
                    self.ids[slot] = record_id


def verify_collection(source: VectorStore, target: VectorStore, name: str, sample: list[str]) -> None:
    """Raise ``CopyMismatchError`` unless ``name`` holds as many records at both ends and the ``sample`` ids are
    equal records at both ends."""
    expected, found = source.count(name), target.count(name)
    if expected != found:
        raise CopyMismatchError(f"the copy is not verified: collection {name!r} has {expected} records in the "
                                f"source and {found} in the copy (was the source indexed again after the copy "
                                "began? remove the copy and copy again).")
    theirs = {record.id: record for record in target.retrieve(name, sample)}
    for mine in source.retrieve(name, sample):
        other = theirs.get(mine.id)
        if other is None:
            raise CopyMismatchError(f"the copy is not verified: collection {name!r}, record {mine.id!r} is missing "
                                    "from the copy.")
        problem = difference(mine, other)
        if problem:
            raise CopyMismatchError(f"the copy is not verified: collection {name!r}, record {mine.id!r}: "
                                    f"{problem}.")


def difference(mine: Record, other: Record) -> str:
    """How ``other`` differs from ``mine`` ("" when it does not)."""
    if mine.payload != other.payload:
        keys = sorted(k for k in {*mine.payload, *other.payload} if mine.payload.get(k) != other.payload.get(k))
        return f"payload differs in {keys}"
    return _vector_difference(mine.vector, other.vector)


def _vector_difference(mine: Any, other: Any) -> str:
    if mine is None or other is None:
        return "" if mine is None and other is None else "one end has a vector, the other none"
    if isinstance(mine, SparseVector) or isinstance(other, SparseVector):
        if not (isinstance(mine, SparseVector) and isinstance(other, SparseVector)):
            return "a sparse vector at one end only"
        a, b = np.argsort(mine.indices), np.argsort(other.indices)
        if not np.array_equal(mine.indices[a], other.indices[b]):
            return "sparse vector indices differ"
        mine, other = mine.values[a], other.values[b]
    mine, other = np.asarray(mine, np.float32), np.asarray(other, np.float32)
    if mine.shape != other.shape:
        return f"vector shapes differ: {mine.shape} and {other.shape}"
    gap = float(np.max(np.abs(mine - other))) if mine.size else 0.0
    return f"vectors differ by {gap:.3g} (at most {DENSE_TOLERANCE:g} allowed)" if gap > DENSE_TOLERANCE else ""
