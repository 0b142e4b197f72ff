"""Qdrant points as the KB's records and hits: point ids from record ids, payloads back without the store's own
fields, sparse vectors both ways, and a :class:`~omnivec.kb.stores.base.Filter` as a Qdrant filter."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

from omnivec.kb.stores.base import PAYLOAD_DEFAULTS, Filter, Hit, Record, SparseVector

# Fixed namespace: the same record id maps to the same point id in every process and version.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/omnivec/kb-records")


def record_payload(payload: dict[str, Any] | None, point: Any) -> tuple[str, dict[str, Any]]:
    """The record id and the payload as the KB wrote it: ``id`` and ``dirs`` taken out, defaults filled in."""
    payload = dict(payload or {})
    record_id = payload.pop("id", str(point))
    payload.pop("dirs", None)
    return record_id, {**PAYLOAD_DEFAULTS, **payload}


def hits(points: list[Any]) -> list[Hit]:
    """Hits from scored points: the record id back from the payload, ``dirs`` left out, defaults filled in."""
    hits = []
    for point in points:
        record_id, payload = record_payload(point.payload, point.id)
        hits.append(Hit(record_id, float(point.score), payload))
    return hits


def to_record(point: Any, vector_name: str | None) -> Record:
    """A stored point as a record: its dense vector (``vector_name`` ""), sparse vector ``vector_name``, or none
    (None: a lexical point, whose BM25 weights the store computes from the text)."""
    record_id, payload = record_payload(point.payload, point.id)
    vector: Any = None
    if vector_name == "" and point.vector is not None:
        vector = np.asarray(point.vector, dtype=np.float32)
    elif vector_name and isinstance(point.vector, dict) and vector_name in point.vector:
        stored = point.vector[vector_name]
        vector = SparseVector(np.asarray(stored.indices, dtype=np.int64), np.asarray(stored.values, np.float32))
    return Record(record_id, vector, payload)


def qdrant_sparse(vector: SparseVector) -> Any:
    from qdrant_client import models

    return models.SparseVector(indices=vector.indices.tolist(), values=vector.values.tolist())


def point_id(record_id: str) -> str:
    """The Qdrant point id of a record id (UUID5, stable across processes)."""
    return str(uuid.uuid5(_NAMESPACE, record_id))


def qdrant_filter(where: Filter | None) -> Any:
    """The Qdrant filter for ``where`` (None for none); see :class:`Filter` for the semantics."""
    from qdrant_client import models

    if where is None:
        return None
    must: list[Any] = []
    if where.path_prefix is not None:
        must.append(models.FieldCondition(key="dirs", match=models.MatchValue(value=where.path_prefix)))
    if where.modalities is not None:
        must.append(models.FieldCondition(key="modality", match=models.MatchAny(any=list(where.modalities))))
    if where.file_types is not None:
        must.append(models.FieldCondition(key="file_type", match=models.MatchAny(any=list(where.file_types))))
    return models.Filter(must=must) if must else None
