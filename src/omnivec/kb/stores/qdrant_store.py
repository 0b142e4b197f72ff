"""Qdrant backend: local mode (``qdrant-client``'s on-disk store, no server) or a Qdrant server.

Point ids must be UUIDs or ints, so a record's id becomes a UUID5 and the original id travels in the payload
(``id``). Qdrant matches keywords exactly and has no prefix match, so every point also carries ``dirs``: the
file's root, ancestor folders and the file itself (:func:`~omnivec.kb.stores.base.path_ancestors`); a path
prefix filter is then one exact match on ``dirs`` (a keyword array matches when any element does).

Durability: the server applies each upsert request (``wait=True``) atomically, and a call is split into requests
of ``batch_size`` points. Local mode commits every point to its SQLite file on its own: a process killed
mid-upsert leaves the store readable, with part of that call written (the KB redoes unfinished files).

A lexical collection holds one named sparse vector "bm25" with Qdrant's IDF modifier, its term weights computed
client-side (:mod:`~omnivec.kb.stores.qdrant_lexical`); a sparse collection one named sparse vector "sparse",
scored by dot product. The kind and language are kept in the collection's metadata."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from omnivec.errors import InputError, OmnivecError
from omnivec.kb.stores import qdrant_lexical as bm25
from omnivec.kb.stores.base import (
    CollectionKind,
    CollectionSpec,
    Filter,
    Hit,
    LexicalSettings,
    Record,
    SparseVector,
    VectorStore,
    check_dim,
    check_k,
    check_name,
    check_vector,
    lexical_text,
    path_ancestors,
    prepare_records,
    wrong_kind,
)
from omnivec.kb.stores.qdrant_points import hits, point_id, qdrant_filter, qdrant_sparse, to_record

_INDEXED = ("file", "modality", "file_type", "dirs")  # payload indexes (server only; local mode has none)
_PAGE = 1024  # points per scroll page and files per delete filter
_KIND_KEY, _LANGUAGE_KEY = "omnivec_kind", "omnivec_language"  # collection metadata
_VECTOR_NAMES = {"lexical": bm25.BM25_VECTOR, "sparse": bm25.SPARSE_VECTOR}


class QdrantStore(VectorStore):
    """Vectors in Qdrant: ``path`` for local mode (``":memory:"`` for a throwaway store), or ``url`` (+ ``api_key``)
    for a server. Local mode always searches exactly (brute force in numpy; fine up to some 20k points per
    collection, slow past that). A server builds HNSW indexes by itself; below ``ann_threshold`` points searches
    ask it for exact results."""

    ANN_THRESHOLD = 20_000  # also where qdrant-client starts warning that local mode gets slow
    SUPPORTS_SPARSE: ClassVar[bool] = True

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
        self._kinds: dict[str, str] = {}  # likewise
        self._languages: dict[str, LexicalSettings] = {}
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
        return name in self._dims or name in self._kinds or self._client.collection_exists(check_name(name))

    def _where(self) -> str:
        return f"Qdrant store {self.location!r}"

    def _kind(self, name: str) -> str:
        """The kind of existing collection ``name``, from its config (lexical and sparse ones name their vector)."""
        from qdrant_client import models

        if name not in self._kinds:
            config = self._client.get_collection(name).config
            sparse = config.params.sparse_vectors or {}
            if isinstance(config.params.vectors, models.VectorParams):
                kind = "dense"
            elif bm25.BM25_VECTOR in sparse:
                kind = "lexical"
                language = (config.metadata or {}).get(_LANGUAGE_KEY) or "english"
                self._languages[name] = LexicalSettings(language)
            elif bm25.SPARSE_VECTOR in sparse:
                kind = "sparse"
            else:
                raise InputError(f"collection {name!r} in {self._where()} was not made by omnivec.")
            self._kinds[name] = kind
        return self._kinds[name]

    def _of_kind(self, name: str, wanted: str) -> None:
        kind = self._kind(name)
        if kind != wanted:
            raise wrong_kind(name, kind, wanted, self._where())

    def collection_kind(self, name: str) -> CollectionKind | None:
        if not self._exists(name):
            return None
        kind = self._kind(name)
        return "lexical" if kind == "lexical" else "sparse" if kind == "sparse" else "dense"

    def _create(self, name: str, kind: str, **config: Any) -> None:
        from qdrant_client import models

        self._client.create_collection(name, **config)
        if not self.local:
            for field in _INDEXED:
                self._client.create_payload_index(name, field, field_schema=models.PayloadSchemaType.KEYWORD)
        self._kinds[name] = kind

    def ensure_lexical_collection(self, name: str, settings: LexicalSettings) -> None:
        from qdrant_client import models

        if not isinstance(settings, LexicalSettings):
            raise InputError(f"settings must be LexicalSettings, got {type(settings).__name__}.")
        if not self._exists(name):
            self._create(name, "lexical", vectors_config={}, sparse_vectors_config={
                bm25.BM25_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                metadata={_KIND_KEY: "lexical", _LANGUAGE_KEY: settings.language})
            self._languages[name] = settings
        self._of_kind(name, "lexical")
        built = self._languages[name].language
        if built != settings.language:
            raise InputError(f"lexical collection {name!r} in {self._where()} was built for {built!r}, not "
                             f"{settings.language!r}: drop_collection({name!r}) and index again to rebuild it "
                             "in the new language (or keep the language it has).")

    def ensure_sparse_collection(self, name: str) -> None:
        from qdrant_client import models

        if not self._exists(name):
            self._create(name, "sparse", vectors_config={}, metadata={_KIND_KEY: "sparse"},
                         sparse_vectors_config={bm25.SPARSE_VECTOR: models.SparseVectorParams()})
        self._of_kind(name, "sparse")

    def _dim(self, name: str) -> int:
        from qdrant_client import models

        if name in self._dims:
            return self._dims[name]
        self._of_kind(name, "dense")
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
            self._create(name, "dense",
                         vectors_config=models.VectorParams(size=int(dim), distance=models.Distance.COSINE))
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
        return set(self.value_counts(name, "file"))

    def file_counts(self, name: str) -> dict[str, int]:
        return self.value_counts(name, "file")

    def value_counts(self, name: str, key: str) -> dict[Any, int]:
        counts: dict[Any, int] = {}
        if not self._exists(name):
            return counts
        offset = None
        while True:
            points, offset = self._client.scroll(name, limit=_PAGE, offset=offset, with_payload=[key],
                                                 with_vectors=False)
            for point in points:
                value = (point.payload or {}).get(key)
                counts[value] = counts.get(value, 0) + 1
            if offset is None:
                return counts

    def spec(self, name: str) -> CollectionSpec | None:
        if not self._exists(name):
            return None
        kind = self.collection_kind(name)
        if kind == "dense":
            return CollectionSpec("dense", dim=self._dim(name))
        if kind == "lexical":
            return CollectionSpec("lexical", language=self._languages[name].language)
        return CollectionSpec("sparse")

    def _vector_name(self, name: str, with_vectors: bool) -> str | None:
        """What ``to_record`` reads: "" (the dense vector), the sparse vector's name, or None (none)."""
        kind = self._kind(name)
        if not with_vectors or kind == "lexical":  # BM25 weights are the store's own, made from the text
            return None
        return "" if kind == "dense" else bm25.SPARSE_VECTOR

    def scroll(self, name: str, after: str | None, limit: int, with_vectors: bool = True) -> list[Record]:
        if limit <= 0 or not self._exists(name):
            return []
        using = self._vector_name(name, with_vectors)
        offset = None if after is None else point_id(after)
        # the offset point itself comes first when it exists: one more, then drop it
        points, _ = self._client.scroll(name, limit=limit + (after is not None), offset=offset, with_payload=True,
                                        with_vectors=using is not None)
        if offset is not None and points and str(points[0].id) == offset:
            points = points[1:]
        return [to_record(point, using) for point in points[:limit]]

    def retrieve(self, name: str, ids: list[str], with_vectors: bool = True) -> list[Record]:
        if not ids or not self._exists(name):
            return []
        using = self._vector_name(name, with_vectors)
        found: dict[str, Record] = {}
        for start in range(0, len(ids), _PAGE):
            points = self._client.retrieve(name, ids=[point_id(i) for i in ids[start:start + _PAGE]],
                                           with_payload=True, with_vectors=using is not None)
            found.update((record.id, record) for record in (to_record(point, using) for point in points))
        return [found[i] for i in ids if i in found]

    def drop_collection(self, name: str) -> None:
        if self._exists(name):
            self._client.delete_collection(name)
        self._dims.pop(name, None)
        self._kinds.pop(name, None)
        self._languages.pop(name, None)

    # -- writes --------------------------------------------------------------------------------------------

    def upsert(self, name: str, records: list[Record]) -> None:
        from qdrant_client import models

        if not self._exists(name):
            raise InputError(f"collection {name!r} does not exist in Qdrant store {self.location!r}; "
                             "call ensure_collection(name, dim) first.")
        kind = self._kind(name)
        if kind == "dense":
            prepared = prepare_records(name, records, self._dim(name))
            vectors: list[Any] = [vector.tolist() for _, vector, _ in prepared]
        elif kind == "lexical":
            prepared = prepare_records(name, records, kind="lexical")
            settings = self._languages[name]
            vectors = [{bm25.BM25_VECTOR: qdrant_sparse(bm25.document_vector(lexical_text(payload), settings))}
                       for _, _, payload in prepared]
        else:
            prepared = prepare_records(name, records, kind="sparse")
            vectors = [{bm25.SPARSE_VECTOR: qdrant_sparse(vector)} for _, vector, _ in prepared]
        points = [models.PointStruct(id=point_id(record_id), vector=vector,
                                     payload={**payload, "id": record_id, "dirs": path_ancestors(payload["file"])})
                  for (record_id, _, payload), vector in zip(prepared, vectors, strict=True)]
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
        return hits(response.points)

    def search_text(self, name: str, query: str, k: int, where: Filter | None = None) -> list[Hit]:
        k = check_k(k)
        if not isinstance(query, str):
            raise InputError(f"a text query must be a string, got {type(query).__name__}.")
        if not self._exists(name):
            return []
        self._of_kind(name, "lexical")
        vector = bm25.query_vector(query, self._languages[name])
        return self._search_sparse(name, bm25.BM25_VECTOR, vector, k, where)

    def search_sparse(self, name: str, vector: SparseVector, k: int, where: Filter | None = None) -> list[Hit]:
        k = check_k(k)
        if not isinstance(vector, SparseVector):
            raise InputError(f"query on collection {name!r}: expected a SparseVector, got {type(vector).__name__}.")
        if not self._exists(name):
            return []
        self._of_kind(name, "sparse")
        return self._search_sparse(name, bm25.SPARSE_VECTOR, vector, k, where)

    def _search_sparse(self, name: str, using: str, vector: SparseVector, k: int, where: Filter | None) -> list[Hit]:
        if k == 0 or not vector.indices.size or (where is not None and where.matches_nothing):
            return []
        response = self._client.query_points(name, query=qdrant_sparse(vector), using=using, limit=k,
                                             query_filter=qdrant_filter(where), with_payload=True,
                                             with_vectors=False)
        # a point sharing no index with the query is no match (local mode scores it -inf)
        return [hit for hit in hits(response.points) if math.isfinite(hit.score)]

    def close(self) -> None:
        self._client.close()
