"""Learned-sparse vectors (SPLADE and the like) as the stores take them, and the error of a store without a
native sparse index."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omnivec.errors import InputError, OmnivecError


@dataclass(frozen=True, eq=False)
class SparseVector:
    """A learned-sparse (SPLADE) vector: vocabulary ``indices`` (int64, unique, non-negative, below 2**32) and
    their ``values`` (float32, finite, same length). Built from any sequences; InputError for anything else."""

    indices: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        indices = np.asarray(self.indices)
        values = np.asarray(self.values, dtype=np.float32)
        if indices.ndim != 1 or values.ndim != 1 or indices.shape != values.shape:
            raise InputError(f"SparseVector: indices and values must be 1-D of one length, got shapes "
                             f"{indices.shape} and {values.shape}.")
        if indices.size and (not np.issubdtype(indices.dtype, np.integer) or indices.min() < 0
                             or indices.max() >= 2**32):
            raise InputError("SparseVector: indices must be integers from 0 to 2**32 - 1.")
        indices = indices.astype(np.int64)
        if np.unique(indices).size != indices.size:
            raise InputError("SparseVector: indices must be unique.")
        if not np.isfinite(values).all():
            raise InputError("SparseVector: values must be finite.")
        object.__setattr__(self, "indices", indices)
        object.__setattr__(self, "values", values)

    def dot(self, other: SparseVector) -> float:
        """The dot product with ``other`` (what a sparse collection scores)."""
        common, mine, theirs = np.intersect1d(self.indices, other.indices, assume_unique=True, return_indices=True)
        return float(np.dot(self.values[mine].astype(np.float64), other.values[theirs].astype(np.float64))) \
            if common.size else 0.0


class SparseUnsupportedError(OmnivecError):
    """The store has no native sparse-vector index (LanceDB): learned-sparse spaces need a Qdrant store."""
