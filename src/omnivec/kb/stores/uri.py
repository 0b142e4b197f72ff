"""Store URIs: which vector store a URI names (``store_scheme``) and opening it (``open_store``)."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from omnivec.errors import ConfigError, InputError

if TYPE_CHECKING:
    from omnivec.kb.stores.base import VectorStore

__all__ = ["URI_FORMS", "StoreURIError", "open_store", "store_scheme"]

URI_FORMS = ("a plain path or lancedb://PATH (LanceDB, embedded)", "qdrant://PATH or qdrant+path://PATH "
             "(Qdrant local mode; PATH ':memory:' for a throwaway one)", "http(s)://HOST:PORT (Qdrant server, "
             "API key from $QDRANT_API_KEY)")


class StoreURIError(ConfigError, InputError):
    """A vector store URI that names no store: a setting (``store`` in kb.toml, ``--kb``) and an argument of
    ``open_store``, so it is both a ConfigError and an InputError."""


def store_scheme(uri: str) -> tuple[str, str]:
    """The scheme of ``uri`` (lower-cased; "" for a plain path) and the rest; ``StoreURIError`` naming the URI and the
    accepted forms when it names no store this module can open."""
    if not isinstance(uri, str) or not uri.strip():
        raise StoreURIError(f"vector store URI must be a non-empty string, got {uri!r}; accepted: "
                            f"{'; '.join(URI_FORMS)}.")
    scheme, sep, rest = uri.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        scheme, rest = "", uri  # a plain path (a Windows drive letter has no "//")
    scheme = scheme.lower()
    if scheme not in ("", "lancedb", "qdrant", "qdrant+path", "http", "https"):
        raise StoreURIError(f"vector store URI {uri!r} has an unknown scheme {scheme + '://'!r}; accepted: "
                            f"{'; '.join(URI_FORMS)}.")
    if scheme in ("", "lancedb", "qdrant", "qdrant+path") and not rest:
        raise StoreURIError(f"vector store URI {uri!r} names no path.")
    return scheme, rest


def open_store(uri: str, *, ann_threshold: int | None = None) -> VectorStore:
    """The store ``uri`` names: a path or ``lancedb://PATH`` (LanceDB), ``qdrant://PATH`` or ``qdrant+path://PATH``
    (Qdrant local mode), ``http(s)://...`` (a Qdrant server, with ``$QDRANT_API_KEY`` if set)."""
    scheme, rest = store_scheme(uri)
    if scheme in ("", "lancedb"):
        from omnivec.kb.stores.lancedb_store import LanceDBStore

        return LanceDBStore(_path(rest), ann_threshold=ann_threshold)
    if scheme in ("qdrant", "qdrant+path"):
        from omnivec.kb.stores.qdrant_store import QdrantStore

        return QdrantStore(path=_path(rest), ann_threshold=ann_threshold)
    from omnivec.kb.stores.qdrant_store import QdrantStore  # http(s): the last scheme store_scheme lets through

    return QdrantStore(url=uri, api_key=os.environ.get("QDRANT_API_KEY"), ann_threshold=ann_threshold)


def _path(path: str) -> str:
    return path if path == ":memory:" else os.path.expanduser(path)
