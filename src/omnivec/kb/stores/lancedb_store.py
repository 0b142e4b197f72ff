"""LanceDB backend: one table per collection in an embedded database folder.

Every write (``upsert``, ``delete_files``) is a single Lance commit: a new table version becomes visible only once
its manifest is written, so a process killed mid-call leaves the previous version intact and readable; the data files it had written
are referenced by no version and never read (checked by killing writers mid-upsert/-delete/-optimize).

Lexical collections use Lance's native full-text index (:mod:`~omnivec.kb.stores.lancedb_lexical`). LanceDB
(0.40) has no sparse-vector type or index (its index types: IVF/HNSW variants over dense vectors, BTree, Bitmap,
LabelList, FM and FTS; sparse support is an open feature request, lancedb/lancedb#1032 and #1930), so sparse
collections raise :class:`~omnivec.kb.stores.base.SparseUnsupportedError`."""

from __future__ import annotations

import inspect
import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from omnivec.errors import InputError, OmnivecError
from omnivec.kb.stores import lancedb_lexical as lexical
from omnivec.kb.stores import lancedb_rows as rows
from omnivec.kb.stores.base import (
    FLOAT_KEYS,
    INT_KEYS,
    STR_KEYS,
    CollectionKind,
    CollectionSpec,
    Filter,
    Hit,
    LexicalSettings,
    Record,
    SparseUnsupportedError,
    SparseVector,
    VectorStore,
    check_dim,
    check_k,
    check_name,
    check_vector,
    ivf_partitions,
    prepare_records,
    wrong_kind,
)
from omnivec.kb.stores.lancedb_rows import extra_json as _extra_json
from omnivec.kb.stores.lancedb_rows import payload_of as _payload
from omnivec.kb.stores.lancedb_sql import quote, where_sql

if TYPE_CHECKING:
    from lancedb.db import DBConnection

_COLUMNS = rows.COLUMNS
_INDEX_PREFIX = "omnivec_ivfsq_"  # + the row count the index was trained on, so optimize knows when to retrain
# A fifth of the IVF partitions is probed and refine_factor * k candidates are re-scored on the stored vectors,
# so scores are exact cosines. On clustered 384-d data (as embeddings are) recall@10 is ~0.99 at 100k rows;
# on structureless random vectors, the worst case, far lower (bench/bench_store.py).
_PROBE_SHARE = 0.2
_MIN_PROBES = 20
_REFINE_FACTOR = 10
_RETRAIN_GROWTH = 4  # retrain the IVF centroids once the table is this many times larger than at training
_KEEP_VERSIONS = timedelta(hours=1)  # old versions a slow reader in another process may still be reading
SPARSE_UNSUPPORTED = ("LanceDB has no sparse-vector index (it stores dense vectors and full-text indexes only), so "
                      "a learned-sparse space cannot live in a LanceDB store: use a Qdrant store for it, "
                      'store = "qdrant://PATH" (local) or a Qdrant server URL ("http://HOST:6333").')


class LanceDBStore(VectorStore):
    """Vectors in a LanceDB folder ``path`` (created if missing). Search is exact below ``ann_threshold`` rows;
    past it :meth:`optimize` builds an IVF-SQ index (cosine) and queries re-rank its candidates exactly."""

    # Measured on 2 CPU cores, 384-d (bench/bench_store.py): exact search p50 ~9 ms at 10k rows, ~40 ms at 100k
    # (linear past the fixed cost), indexed ~8 ms at 100k after a ~5 s build. Around 50k exact search starts to
    # cost more than embedding the query; below it, exact results are worth their price.
    ANN_THRESHOLD = 50_000
    SUPPORTS_SPARSE: ClassVar[bool] = False

    def __init__(self, path: str, *, ann_threshold: int | None = None) -> None:
        import lancedb

        super().__init__(ann_threshold)
        self.path = str(path)
        try:
            # interval 0: every read checks for a newer version, so an indexer in another process is seen at once
            self._db: DBConnection | None = lancedb.connect(self.path, read_consistency_interval=timedelta(0))
        except Exception as exc:  # lancedb raises plain errors for unusable folders
            raise OmnivecError(f"cannot open LanceDB store {self.path!r}: {exc}") from exc
        self._tables: dict[str, Any] = {}

    # -- collections ---------------------------------------------------------------------------------------

    @property
    def _connection(self) -> DBConnection:
        if self._db is None:
            raise OmnivecError(f"LanceDB store {self.path!r} is closed.")
        return self._db

    def _table(self, name: str) -> Any | None:
        check_name(name)
        table = self._tables.get(name)
        if table is None:
            if name not in self._table_names():
                return None
            table = self._tables[name] = self._connection.open_table(name)
        return table

    def _table_names(self) -> list[str]:
        names: list[str] = []
        token = None
        while True:  # list_tables pages its answer
            page = self._connection.list_tables(page_token=token)
            names.extend(page.tables)
            token = page.page_token
            if not token:
                return names

    def _require(self, name: str) -> Any:
        table = self._table(name)
        if table is None:
            raise InputError(f"collection {name!r} does not exist in LanceDB store {self.path!r}; "
                             "call ensure_collection(name, dim) first.")
        return table

    @staticmethod
    def _dim(table: Any) -> int:
        return int(table.schema.field("vector").type.list_size)

    def _where(self) -> str:
        return f"LanceDB store {self.path!r}"

    def _of_kind(self, name: str, table: Any, wanted: str) -> Any:
        """``table`` if it is a ``wanted`` collection, else the InputError naming it."""
        kind = lexical.table_kind(table)
        if kind != wanted:
            raise wrong_kind(name, kind, wanted, self._where())
        return table

    def collection_kind(self, name: str) -> CollectionKind | None:
        table = self._table(name)
        if table is None:
            return None
        kind = lexical.table_kind(table)
        if kind not in ("dense", "lexical"):
            raise InputError(f"table {name!r} in {self._where()} was not made by omnivec.")
        return "lexical" if kind == "lexical" else "dense"

    def ensure_lexical_collection(self, name: str, settings: LexicalSettings) -> None:
        if not isinstance(settings, LexicalSettings):
            raise InputError(f"settings must be LexicalSettings, got {type(settings).__name__}.")
        table = self._table(name)
        if table is None:
            table = self._tables[name] = self._connection.create_table(
                name, schema=lexical.lexical_schema(settings), exist_ok=True)
        self._of_kind(name, table, "lexical")
        language = lexical.table_language(table)
        if language != settings.language:
            raise InputError(f"lexical collection {name!r} in {self._where()} was built for {language!r}, not "
                             f"{settings.language!r}: drop_collection({name!r}) and index again to rebuild it "
                             "in the new language (or keep the language it has).")
        lexical.ensure_indexes(table, settings)

    def ensure_sparse_collection(self, name: str) -> None:
        check_name(name)
        raise SparseUnsupportedError(SPARSE_UNSUPPORTED)

    def ensure_collection(self, name: str, dim: int) -> None:
        import pyarrow as pa

        check_dim(name, dim)
        table = self._table(name)
        if table is not None:
            self._of_kind(name, table, "dense")
        if table is None:
            schema = pa.schema([
                pa.field("id", pa.string(), nullable=False),
                pa.field("vector", pa.list_(pa.float32(), int(dim))),
                *(pa.field(key, pa.string()) for key in STR_KEYS),
                *(pa.field(key, pa.int64()) for key in INT_KEYS),
                *(pa.field(key, pa.float64()) for key in FLOAT_KEYS),
                pa.field("extra", pa.string()),  # JSON of payload keys beyond PAYLOAD_DEFAULTS
            ])
            # exist_ok: another process may create it between our check and here; its dim is checked below
            table = self._tables[name] = self._connection.create_table(name, schema=schema, exist_ok=True)
        if self._dim(table) != dim:
            raise InputError(f"collection {name!r} in LanceDB store {self.path!r} holds {self._dim(table)}-d "
                             f"vectors, not {dim}-d: use another collection or rebuild it.")

    def collections(self) -> list[str]:
        return sorted(self._table_names())

    def count(self, name: str) -> int:
        table = self._table(name)
        return 0 if table is None else int(table.count_rows())

    def files(self, name: str) -> set[str]:
        return set(self.value_counts(name, "file"))

    def file_counts(self, name: str) -> dict[str, int]:
        return self.value_counts(name, "file")

    def value_counts(self, name: str, key: str) -> dict[Any, int]:
        table = self._table(name)
        if table is None:
            return {}
        if key not in _COLUMNS:
            raise InputError(f"value_counts: payload key {key!r} is not a column of LanceDB stores; use one of "
                             f"{list(_COLUMNS)}.")
        counts = table.search().select([key]).limit(None).to_arrow().column(key).value_counts()
        return {item["values"].as_py(): item["counts"].as_py() for item in counts}

    def spec(self, name: str) -> CollectionSpec | None:
        table = self._table(name)
        if table is None:
            return None
        if self.collection_kind(name) == "lexical":
            return CollectionSpec("lexical", language=lexical.table_language(table) or "english")
        return CollectionSpec("dense", dim=self._dim(table))

    def scroll(self, name: str, after: str | None, limit: int, with_vectors: bool = True) -> list[Record]:
        table = self._table(name)
        return [] if table is None else rows.scroll(table, after, limit, with_vectors)

    def retrieve(self, name: str, ids: list[str], with_vectors: bool = True) -> list[Record]:
        table = self._table(name)
        return [] if table is None or not ids else rows.retrieve(table, ids, with_vectors)

    def drop_collection(self, name: str) -> None:
        if self._table(name) is not None:
            self._connection.drop_table(name)
        self._tables.pop(name, None)

    # -- writes --------------------------------------------------------------------------------------------

    def upsert(self, name: str, records: list[Record]) -> None:
        import pyarrow as pa

        table = self._require(name)
        if lexical.table_kind(table) == "lexical":
            self._upsert_lexical(name, table, records)
            return
        self._of_kind(name, table, "dense")
        dim = self._dim(table)
        prepared = prepare_records(name, records, dim)
        if not prepared:
            return
        vectors = np.stack([vector for _, vector, _ in prepared]).reshape(-1)
        columns: dict[str, Any] = {
            "id": [record_id for record_id, _, _ in prepared],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors, pa.float32()), dim),
        }
        for key in _COLUMNS:
            columns[key] = [payload[key] for _, _, payload in prepared]
        columns["extra"] = [_extra_json(payload) for _, _, payload in prepared]
        data = pa.table(columns).select(table.schema.names).cast(table.schema)
        # merge_insert: replace-by-id and insert in one commit, so the call is atomic
        table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(data)

    def _upsert_lexical(self, name: str, table: Any, records: list[Record]) -> None:
        import pyarrow as pa

        prepared = prepare_records(name, records, kind="lexical")
        if not prepared:
            return
        columns: dict[str, Any] = {"id": [record_id for record_id, _, _ in prepared]}
        for key in _COLUMNS:
            columns[key] = [payload[key] for _, _, payload in prepared]
        columns["extra"] = [_extra_json(payload) for _, _, payload in prepared]
        searched = [lexical.search_columns(payload) for _, _, payload in prepared]
        for column in (lexical.TEXT_COLUMN, lexical.CODES_COLUMN):
            columns[column] = [row[column] for row in searched]
        data = pa.table(columns).select(table.schema.names).cast(table.schema)
        result = table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(data)
        lexical.add_stale(table, int(getattr(result, "num_updated_rows", 0) or 0))

    def delete_files(self, name: str, files: list[str]) -> int:
        table = self._table(name)
        files = sorted(set(files))
        if table is None or not files:
            return 0
        before = table.count_rows()
        result = table.delete(f"file IN ({', '.join(quote(f) for f in files)})")
        deleted = getattr(result, "num_deleted_rows", None)  # lancedb >= 0.2x reports it
        deleted = int(deleted) if deleted is not None else before - table.count_rows()
        if lexical.table_kind(table) == "lexical":
            lexical.add_stale(table, deleted)
        return deleted

    # -- search --------------------------------------------------------------------------------------------

    def search(self, name: str, vector: np.ndarray, k: int, where: Filter | None = None) -> list[Hit]:
        k = check_k(k)
        table = self._table(name)
        if table is None or k == 0 or (where is not None and where.matches_nothing):
            return []
        self._of_kind(name, table, "dense")
        query = check_vector(vector, self._dim(table), f"query on collection {name!r}")
        rows = table.count_rows()
        if rows == 0:
            return []
        builder = (table.search(query, vector_column_name="vector").distance_type("cosine").limit(k)
                   .select(["id", *_COLUMNS, "extra", "_distance"]))
        sql = where_sql(where)
        if sql:
            builder = builder.where(sql, prefilter=True)
        if rows >= self.ann_threshold:  # only an index reads these; set them so ANN recall stays high
            builder = builder.nprobes(max(_MIN_PROBES, math.ceil(ivf_partitions(rows) * _PROBE_SHARE)))
            builder = builder.refine_factor(_REFINE_FACTOR)
        return [Hit(row["id"], 1.0 - float(row["_distance"]), _payload(row))
                for row in builder.to_arrow().to_pylist()]

    def search_text(self, name: str, query: str, k: int, where: Filter | None = None) -> list[Hit]:
        k = check_k(k)
        fts_query = lexical.text_query(query)
        table = self._table(name)
        if table is None:
            return []
        self._of_kind(name, table, "lexical")
        if k == 0 or (where is not None and where.matches_nothing) or not query.strip():
            return []
        builder = table.search(fts_query).limit(k).select(["id", *_COLUMNS, "extra", "_score"])
        sql = where_sql(where)
        if sql:
            builder = builder.where(sql, prefilter=True)
        rows = builder.to_arrow().to_pylist()
        rows.sort(key=lambda row: -row["_score"])  # Lance returns them best first; made explicit
        return [Hit(row["id"], float(row["_score"]), _payload(row)) for row in rows]

    def search_sparse(self, name: str, vector: SparseVector, k: int, where: Filter | None = None) -> list[Hit]:
        raise SparseUnsupportedError(SPARSE_UNSUPPORTED)

    # -- maintenance ---------------------------------------------------------------------------------------

    def optimize(self, name: str) -> None:
        """Compact small writes into fewer files, prune old versions, and keep the ANN index in step: build it
        past ``ann_threshold`` rows, add new rows to it, retrain it once the table has grown
        ``_RETRAIN_GROWTH``-fold, drop it again below the threshold (exact search is then cheap and exact)."""
        table = self._table(name)
        if table is None:
            return
        if lexical.table_kind(table) == "lexical":
            lexical.optimize_lexical(table, _KEEP_VERSIONS)
            return
        table.optimize(cleanup_older_than=_KEEP_VERSIONS)  # also indexes rows added since the index was built
        rows = table.count_rows()
        index = _vector_index(table)
        if rows < self.ann_threshold:
            if index is not None:
                table.drop_index(index.name)
            return
        if index is not None:
            # an index not named by us (older lancedb): its training size is unknown, so keep it
            trained = int(index.name[len(_INDEX_PREFIX):]) if index.name.startswith(_INDEX_PREFIX) else rows
            if rows < trained * _RETRAIN_GROWTH:
                return
        _create_ivf_sq(table, rows, f"{_INDEX_PREFIX}{rows}")
        if index is not None and index.name != f"{_INDEX_PREFIX}{rows}" and _vector_index_count(table) > 1:
            table.drop_index(index.name)

    def has_index(self, name: str) -> bool:
        """Whether ``name`` currently has an ANN index (then searches past the threshold are approximate)."""
        table = self._table(name)
        return table is not None and lexical.table_kind(table) == "dense" and _vector_index(table) is not None

    def close(self) -> None:
        self._tables.clear()
        self._db = None


def _vector_index(table: Any) -> Any | None:
    return next((i for i in table.list_indices() if list(i.columns) == ["vector"]), None)


def _vector_index_count(table: Any) -> int:
    return sum(list(i.columns) == ["vector"] for i in table.list_indices())


def _create_ivf_sq(table: Any, rows: int, name: str) -> None:
    """IVF with 8-bit scalar quantisation, cosine, about sqrt(rows) partitions. Not IVF-PQ: at 100k x 384-d
    on 2 cores PQ's codebook training took 73 s against 7 s for SQ, for the same recall (0.994) after
    re-ranking and a slower query (bench/bench_store.py); SQ's codes are larger (1 byte a dimension), which
    does not matter at the sizes one machine indexes."""
    partitions = ivf_partitions(rows)
    parameters = inspect.signature(table.create_index).parameters
    named = {"name": name} if "name" in parameters else {}
    if "config" in parameters:  # the unified API (lancedb >= 0.2x); the keyword form below is deprecated there
        from lancedb.index import IvfSq

        table.create_index("vector", config=IvfSq(distance_type="cosine", num_partitions=partitions),
                           replace=True, **named)
    else:
        table.create_index(metric="cosine", index_type="IVF_SQ", num_partitions=partitions,
                           vector_column_name="vector", replace=True, **named)


__all__ = ["LanceDBStore", "where_sql"]
