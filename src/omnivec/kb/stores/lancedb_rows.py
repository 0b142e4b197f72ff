"""LanceDB rows as the KB's records: a payload from its columns (the extras back from their JSON), and reading a
table's records in id order or by id, with their vectors."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from omnivec.kb.stores.base import PAYLOAD_DEFAULTS, Record
from omnivec.kb.stores.lancedb_sql import quote

COLUMNS = tuple(PAYLOAD_DEFAULTS)
_IN_LIST = 1000  # ids per ``id IN (...)`` filter


def payload_of(row: dict[str, Any]) -> dict[str, Any]:
    """A hit's payload from its row: the default keys and the extras back from their JSON."""
    payload = {key: row[key] for key in COLUMNS}
    if row["extra"]:
        payload.update(json.loads(row["extra"]))
    return payload


def extra_json(payload: dict[str, Any]) -> str:
    extra = {key: value for key, value in payload.items() if key not in PAYLOAD_DEFAULTS}
    return json.dumps(extra, ensure_ascii=False) if extra else ""


def _select(table: Any, with_vectors: bool) -> list[str]:
    vector = ["vector"] if with_vectors and "vector" in table.schema.names else []
    return ["id", *COLUMNS, "extra", *vector]


def _records(data: Any) -> list[Record]:
    """Records from an Arrow table of :func:`_select`'s columns (no vector column: vector None)."""
    vectors = None
    if "vector" in data.column_names and data.num_rows:
        column = data.column("vector").combine_chunks()
        vectors = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(data.num_rows, -1)
    rows = data.drop_columns(["vector"]).to_pylist() if "vector" in data.column_names else data.to_pylist()
    return [Record(row["id"], None if vectors is None else vectors[i].copy(), payload_of(row))
            for i, row in enumerate(rows)]


def scroll(table: Any, after: str | None, limit: int, with_vectors: bool) -> list[Record]:
    """Up to ``limit`` records with ids above ``after``, by id."""
    from lancedb.query import ColumnOrdering

    if limit <= 0:
        return []
    by_id = ColumnOrdering(column_name="id", ascending=True, nulls_first=False)
    builder = table.search().select(_select(table, with_vectors)).order_by([by_id]).limit(limit)
    if after is not None:
        builder = builder.where(f"id > {quote(after)}")
    return _records(builder.to_arrow())


def retrieve(table: Any, ids: list[str], with_vectors: bool) -> list[Record]:
    """The records with ``ids``, in their order; ids not stored are left out."""
    found: dict[str, Record] = {}
    for start in range(0, len(ids), _IN_LIST):
        sql = f"id IN ({', '.join(quote(i) for i in ids[start:start + _IN_LIST])})"
        found.update((r.id, r) for r in _records(table.search().where(sql).select(_select(table, with_vectors))
                                                 .limit(None).to_arrow()))
    return [found[i] for i in ids if i in found]
