"""Qdrant backend: local mode (``qdrant-client``'s on-disk store, no server) or a Qdrant server.

Point ids must be UUIDs or ints, so a record's id becomes a UUID5 and the original id travels in the payload
(``id``). Qdrant matches keywords exactly and has no prefix match, so every point also carries ``dirs``: the
file's root, ancestor folders and the file itself (:func:`~omnivec.kb.stores.base.path_ancestors`); a path
prefix filter is then one exact match on ``dirs`` (a keyword array matches when any element does).

Durability: the server applies each upsert request (``wait=True``) atomically, and a call is split into requests
of ``batch_size`` points. Local mode commits every point to its SQLite file on its own: a process killed
mid-upsert leaves the store readable, with part of that call written (the KB redoes unfinished files)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from omnivec.errors import InputError, OmnivecError
from omnivec.kb.stores.base import (
    PAYLOAD_DEFAULTS,
    Filter,
    Hit,
    Record,
    VectorStore,
    check_dim,
    check_k,
    check_name,
    check_vector,
    path_ancestors,
    prepare_records,
)

if TYPE_CHECKING:
    from qdrant_client import models

# Fixed namespace: the same record id maps to the same point id in every process and version.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/omnivec/kb-records")
_INDEXED = ("file", "modality", "file_type", "dirs")  # payload indexes (server only; local mode has none)
_PAGE = 1024  # points per scroll page and files per delete filter


class QdrantStore(VectorStore):
    """Vectors in Qdrant: ``path`` for local mode (``":memory:"`` for a throwaway store), or ``url`` (+ ``api_key``)
    for a server. Local mode always searches exactly (brute force in numpy; fine up to some 20k points per
    collection, slow past that). A server builds HNSW indexes by itself; below ``ann_threshold`` points searches
    ask it for exact results."""

    ANN_THRESHOLD = 20_000  # also where qdrant-client starts warning that local mode gets slow

    def __init__(self, *, path: str | None = None, url: str | None = None, api_key: str | None = None,
                 ann_threshold: int | None = None, batch_size: int = 256) -> None:
        from qdrant_client import QdrantClient

        if (path is None) == (url is None):
            raise InputError("QdrantStore needs exactly one of path (local mode) or url (server).")
        super().__init__(ann_threshold)
        self.location = path if path is not None else url
        self.local = path is not None
        self.batch_size = batch_size
        self._dims: dict[str, int] = {}  # saves a round trip per call to a server (forgotten on drop)
        try:
            if path == ":memory:":
                self._client = QdrantClient(location=":memory:")
            elif path is not None:
                self._client = QdrantClient(path=path)
            else:
                self._client = QdrantClient(url=url, api_key=api_key)
        except RuntimeError as exc:  # local mode locks its folder: one client at a time
            raise OmnivecError(f"cannot open Qdrant store {self.location!r}: {exc}") from exc

    # -- collections ---------------------------------------------------------------------------------------

    def _exists(self, name: str) -> bool:
        return name in self._dims or self._client.collection_exists(check_name(name))

    def _dim(self, name: str) -> int:
        from qdrant_client import models

        if name in self._dims:
            return self._dims[name]
        params = self._client.get_collection(name).config.params.vectors
        if not isinstance(params, models.VectorParams):
            raise InputError(f"collection {name!r} in Qdrant store {self.location!r} has named vectors: it was "
                             "not made by omnivec (expected one unnamed cosine vector).")
        if params.distance != models.Distance.COSINE:
            raise InputError(f"collection {name!r} in Qdrant store {self.location!r} uses {params.distance} "
                             "distance, not cosine.")
        self._dims[name] = int(params.size)
        return self._dims[name]

    def ensure_collection(self, name: str, dim: int) -> None:
        from qdrant_client import models

        check_dim(name, dim)
        if not self._exists(name):
            self._client.create_collection(
                name, vectors_config=models.VectorParams(size=int(dim), distance=models.Distance.COSINE))
            if not self.local:
                for field in _INDEXED:
                    self._client.create_payload_index(name, field, field_schema=models.PayloadSchemaType.KEYWORD)
        existing = self._dim(name)
        if existing != dim:
            raise InputError(f"collection {name!r} in Qdrant store {self.location!r} holds {existing}-d vectors, "
                             f"not {dim}-d: use another collection or rebuild it.")

    def collections(self) -> list[str]:
        return sorted(c.name for c in self._client.get_collections().collections)

    def count(self, name: str) -> int:
        if not self._exists(name):
            return 0
        return int(self._client.count(name, exact=True).count)

    def files(self, name: str) -> set[str]:
        if not self._exists(name):
            return set()
        found: set[str] = set()
        offset = None
        while True:
            points, offset = self._client.scroll(name, limit=_PAGE, offset=offset, with_payload=["file"],
                                                 with_vectors=False)
            found.update(_file(p) for p in points)
            if offset is None:
                return found

    def file_counts(self, name: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        if not self._exists(name):
            return counts
        offset = None
        while True:
            points, offset = self._client.scroll(name, limit=_PAGE, offset=offset, with_payload=["file"],
                                                 with_vectors=False)
            for point in points:
                counts[_file(point)] = counts.get(_file(point), 0) + 1
            if offset is None:
                return counts

    def drop_collection(self, name: str) -> None:
        if self._exists(name):
            self._client.delete_collection(name)
        self._dims.pop(name, None)

    # -- writes --------------------------------------------------------------------------------------------

    def upsert(self, name: str, records: list[Record]) -> None:
        from qdrant_client import models

        if not self._exists(name):
            raise InputError(f"collection {name!r} does not exist in Qdrant store {self.location!r}; "
                             "call ensure_collection(name, dim) first.")
        prepared = prepare_records(name, records, self._dim(name))
        points = [models.PointStruct(id=point_id(record_id), vector=vector.tolist(),
                                     payload={**payload, "id": record_id, "dirs": path_ancestors(payload["file"])})
                  for record_id, vector, payload in prepared]
        for start in range(0, len(points), self.batch_size):
            self._client.upsert(name, points=points[start:start + self.batch_size], wait=True)

    def delete_files(self, name: str, files: list[str]) -> int:
        from qdrant_client import models

        files = sorted(set(files))
        if not files or not self._exists(name):
            return 0
        deleted = 0
        for start in range(0, len(files), _PAGE):
            condition = models.Filter(must=[models.FieldCondition(
                key="file", match=models.MatchAny(any=files[start:start + _PAGE]))])
            matched = self._client.count(name, count_filter=condition, exact=True).count
            if matched:
                self._client.delete(name, points_selector=models.FilterSelector(filter=condition), wait=True)
                deleted += matched
        return deleted

    # -- search --------------------------------------------------------------------------------------------

    def search(self, name: str, vector: np.ndarray, k: int, where: Filter | None = None) -> list[Hit]:
        from qdrant_client import models

        k = check_k(k)
        if k == 0 or (where is not None and where.matches_nothing) or not self._exists(name):
            return []
        query = check_vector(vector, self._dim(name), f"query on collection {name!r}")
        params = None
        if not self.local:  # local mode is always exact and ignores search params
            exact = self._client.count(name, exact=False).count < self.ann_threshold
            params = models.SearchParams(exact=exact, hnsw_ef=None if exact else max(128, 4 * k))
        response = self._client.query_points(name, query=query.tolist(), limit=k, query_filter=qdrant_filter(where),
                                             search_params=params, with_payload=True, with_vectors=False)
        hits = []
        for point in response.points:
            payload = dict(point.payload or {})
            record_id = payload.pop("id", str(point.id))
            payload.pop("dirs", None)
            hits.append(Hit(record_id, float(point.score), {**PAYLOAD_DEFAULTS, **payload}))
        return hits

    def close(self) -> None:
        self._client.close()


def _file(point: models.Record) -> str:
    """The payload ``file`` of a point read with it (every point a ``Record`` made has one)."""
    return (point.payload or {})["file"]


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
