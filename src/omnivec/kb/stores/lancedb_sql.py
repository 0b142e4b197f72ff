"""LanceDB's SQL filter for a search ``Filter``, shared by the dense and the lexical tables."""

from __future__ import annotations

from omnivec.errors import InputError
from omnivec.kb.stores.base import Filter


def where_sql(where: Filter | None) -> str:
    """The Lance SQL filter for ``where`` ("" for none); see :class:`Filter` for the semantics."""
    if where is None:
        return ""
    parts = []
    prefix = where.path_prefix
    if prefix is not None:
        if prefix in ("/", "\\"):
            parts.append(f"starts_with(file, {quote(prefix)})")
        else:  # starts_with, not LIKE: no wildcard escaping to get wrong
            parts.append(f"(file = {quote(prefix)} OR starts_with(file, {quote(prefix + '/')}) "
                         f"OR starts_with(file, {quote(prefix + chr(92))}))")
    if where.modalities is not None:
        parts.append(f"modality IN ({', '.join(quote(m) for m in where.modalities)})")
    if where.file_types is not None:
        parts.append(f"file_type IN ({', '.join(quote(t) for t in where.file_types)})")
    return " AND ".join(parts)


def quote(value: str) -> str:
    """A SQL string literal: quotes doubled; backslashes are literal in Lance's SQL dialect."""
    if "\x00" in value:
        raise InputError(f"a filter value cannot contain a NUL character: {value!r}")
    return "'" + value.replace("'", "''") + "'"
