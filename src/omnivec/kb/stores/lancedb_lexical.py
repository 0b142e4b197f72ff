"""LanceDB's lexical collections: a table of payload columns plus two text columns, each under Lance's native
full-text index (the Rust inverted index, ``use_tantivy=False``; scores are BM25 with k1 = 1.2, b = 0.75).

- ``fts_text`` holds :func:`~omnivec.kb.stores.lexical.lexical_text` (base name, heading, text) and is indexed
  with the "simple" tokenizer (splits at anything not a letter or digit), lowercasing, the language's Snowball
  stemmer, the stop words of :mod:`~omnivec.kb.stores.stopwords` (given as custom stop words, so that both stores
  drop the same ones) and ASCII folding.
- ``fts_codes`` holds the record's :func:`~omnivec.kb.stores.lexical.code_terms` joined by spaces, indexed with
  the "whitespace" tokenizer, lowercased, not stemmed, no stop words. The simple tokenizer cuts ``E-4012`` into
  ``e`` + ``4012`` (and ``X2-15B``, ``9001:2015``, ``pump_manual.pdf``, ``v2.3.1`` likewise); this column keeps each
  code as one rare term. A query is a boolean OR of a match on ``fts_text`` and, when the query holds codes, a
  match of its codes on ``fts_codes``: a row's score is the sum of both BM25 scores, so the chunk holding the code
  comes first, and the words still rank the rest.

Kept current: both indexes exist from the table's creation on. Lance searches rows added since an index was last
updated by scanning them (checked: they are found at once and, in a table never optimized, scored exactly as BM25
over all rows; once some rows are indexed, those keep the index's statistics and the scanned ones get the whole
table's until optimize, and a filter scores scanned rows on the rows it keeps: measured), and
deleted or replaced rows leave results at once. :meth:`optimize` runs ``table.optimize()``, which compacts files
and appends the new rows to the existing indexes (incremental, no re-tokenizing of indexed rows). Lance's index
keeps counting deleted and replaced rows in its BM25 statistics (document count, term frequencies, average
length: measured) until it is rebuilt, as Lucene does until segments merge, so each table counts the rows its
writes made stale and ``optimize`` rebuilds the two indexes only once those exceed ``REBUILD_STALE_SHARE`` of the
rows: then scores equal those of a fresh build again. Between rebuilds they drift by that share at most."""

from __future__ import annotations

from typing import Any

from omnivec.errors import InputError
from omnivec.kb.stores.base import FLOAT_KEYS, INT_KEYS, STR_KEYS, LexicalSettings, code_terms, lexical_text

KIND_KEY = b"omnivec:kind"
LANGUAGE_KEY = b"omnivec:language"
STALE_KEY = "omnivec:stale"  # field metadata of "id": rows replaced or deleted since the indexes were built
TEXT_COLUMN, CODES_COLUMN = "fts_text", "fts_codes"
REBUILD_STALE_SHARE = 0.2  # Lucene's merge policy allows 20-33 % deleted documents; the low end


def lexical_schema(settings: LexicalSettings) -> Any:
    import pyarrow as pa

    return pa.schema([
        pa.field("id", pa.string(), nullable=False),
        *(pa.field(key, pa.string()) for key in STR_KEYS),
        *(pa.field(key, pa.int64()) for key in INT_KEYS),
        *(pa.field(key, pa.float64()) for key in FLOAT_KEYS),
        pa.field("extra", pa.string()),
        pa.field(TEXT_COLUMN, pa.string()),
        pa.field(CODES_COLUMN, pa.string()),
    ], metadata={KIND_KEY: b"lexical", LANGUAGE_KEY: settings.language.encode()})


def table_kind(table: Any) -> str:
    metadata = table.schema.metadata or {}
    if KIND_KEY in metadata:
        return metadata[KIND_KEY].decode()
    return "dense" if "vector" in table.schema.names else "unknown"


def table_language(table: Any) -> str:
    return (table.schema.metadata or {}).get(LANGUAGE_KEY, b"").decode()


def ensure_indexes(table: Any, settings: LexicalSettings, *, replace: bool = False) -> None:
    """Create the two FTS indexes where missing (a process killed after creating the table may have left none),
    or rebuild both (``replace``)."""
    from lancedb.index import FTS

    indexed = {tuple(index.columns) for index in table.list_indices()}
    words = FTS(language=settings.language.capitalize(), stem=True, remove_stop_words=True,
                custom_stop_words=sorted(settings.stop_words), lower_case=True, ascii_folding=True)
    codes = FTS(base_tokenizer="whitespace", stem=False, remove_stop_words=False, lower_case=True,
                ascii_folding=False)
    for column, config in ((TEXT_COLUMN, words), (CODES_COLUMN, codes)):
        if replace or (column,) not in indexed:
            table.create_index(column, config=config, replace=True)


def search_columns(payload: dict[str, Any]) -> dict[str, str]:
    """The two indexed columns of a record with ``payload``."""
    text = lexical_text(payload)
    return {TEXT_COLUMN: text, CODES_COLUMN: " ".join(code_terms(text))}


def text_query(query: str) -> Any:
    """The FTS query for ``query``: its words on ``fts_text`` OR its codes on ``fts_codes``."""
    from lancedb.query import BooleanQuery, FullTextOperator, FullTextQuery, MatchQuery, Occur

    if not isinstance(query, str):
        raise InputError(f"a text query must be a string, got {type(query).__name__}.")

    def match(terms: str, column: str) -> FullTextQuery:
        # every field spelled out: pyright does not see the pydantic defaults
        return MatchQuery(terms, column, boost=1.0, fuzziness=0, max_expansions=50, operator=FullTextOperator.OR,
                          prefix_length=0, document_granularity=None)

    clauses: list[tuple[Occur, FullTextQuery]] = [(Occur.SHOULD, match(query, TEXT_COLUMN))]
    codes = code_terms(query)
    if codes:
        clauses.append((Occur.SHOULD, match(" ".join(dict.fromkeys(codes)), CODES_COLUMN)))
    return BooleanQuery(clauses)


def stale_rows(table: Any) -> int:
    metadata = table.schema.field("id").metadata or {}
    return int(metadata.get(STALE_KEY.encode(), b"0"))


def add_stale(table: Any, rows: int) -> None:
    """Count ``rows`` more stale rows (a second, tiny commit: if the process dies between the two, the count is
    low by one call's worth, which only delays a rebuild)."""
    if rows > 0:
        set_stale(table, stale_rows(table) + rows)


def set_stale(table: Any, rows: int) -> None:
    table.update_field_metadata({"path": "id", "metadata": {STALE_KEY: str(int(rows))}})


def optimize_lexical(table: Any, keep_versions: Any) -> bool:
    """Compact, bring the indexes up to date incrementally, and rebuild them once the stale rows pass
    ``REBUILD_STALE_SHARE`` of the table; returns whether it rebuilt."""
    settings = LexicalSettings(table_language(table) or "english")
    table.optimize(cleanup_older_than=keep_versions)  # appends rows added since the last update to the indexes
    ensure_indexes(table, settings)
    stale = stale_rows(table)
    if stale == 0 or stale <= REBUILD_STALE_SHARE * table.count_rows():
        return False
    ensure_indexes(table, settings, replace=True)
    set_stale(table, 0)
    return True
