"""The vector store interface the knowledge base writes to and searches: one collection per space, records with a
flat payload. A collection is of one kind: "dense" (fixed-dimension vectors, cosine similarity), "lexical" (the
record's text, BM25 in the store's own full-text machinery) or "sparse" (learned sparse vectors such as SPLADE's,
dot product). ``open_store`` picks the backend from a URI."""

from __future__ import annotations

import math
import os
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from omnivec.errors import InputError
from omnivec.kb.location import Location
from omnivec.kb.stores.lexical import LEXICAL_LANGUAGES, LexicalSettings, code_terms, lexical_text
from omnivec.kb.stores.sparse import SparseUnsupportedError, SparseVector

CollectionKind = Literal["dense", "lexical", "sparse"]

# Payload keys every record has after normalisation, with the value an absent key gets. Both backends give
# these back on every hit, so callers never need ``.get``.
PAYLOAD_DEFAULTS: dict[str, Any] = {
    "file": "", "file_type": "", "modality": "", "kind": "", "text": "", "page": None, "start": None,
    "end": None, "heading": "", "chunk": None, "thumbnail": "",
}
STR_KEYS = ("file", "file_type", "modality", "kind", "text", "heading", "thumbnail")
INT_KEYS = ("page", "chunk")
FLOAT_KEYS = ("start", "end")
REQUIRED_KEYS = ("file", "modality", "kind")
# Names the backends use for their own columns / payload fields.
RESERVED_KEYS = frozenset({"id", "vector", "dirs", "extra", "_distance"})
SEPARATORS = "/\\"  # both, so that Windows paths filter like POSIX ones
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class Record:
    """One entry to store: ``id`` is unique within a collection; ``vector`` is a numpy array for a dense
    collection, a :class:`SparseVector` for a sparse one and None for a lexical one (its text comes from the
    payload, see :func:`lexical_text`); ``payload`` holds ``file``, ``modality`` and ``kind`` (required) and
    optionally the other :data:`PAYLOAD_DEFAULTS` keys or extra str/int/float/None values."""

    id: str
    vector: np.ndarray | SparseVector | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class CollectionSpec:
    """What a collection is: its ``kind``, the ``dim`` of a dense one, the ``language`` of a lexical one."""

    kind: CollectionKind
    dim: int = 0
    language: str = ""


@dataclass
class Hit:
    """A search result: ``score`` is the cosine similarity (dense), the BM25 score (lexical) or the dot product
    (sparse); higher is better."""

    id: str
    score: float
    payload: dict[str, Any]

    @property
    def location(self) -> Location:
        """Where the record comes from, read from its payload's location fields."""
        return Location.from_payload(self.payload)


@dataclass
class Filter:
    """Restricts a search. ``path_prefix`` matches whole path components: ``/a/b`` matches ``/a/b`` and
    ``/a/b/c.txt`` but not ``/a/bc.txt`` (``/`` and ``\\`` both separate). ``modalities`` and ``file_types`` (extension
    without the dot, any case) match any of their values; an empty tuple matches nothing. All given parts must hold."""

    path_prefix: str | None = None
    modalities: tuple[str, ...] | None = None
    file_types: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.path_prefix is not None:
            stripped = self.path_prefix.rstrip(SEPARATORS)
            # "/" alone stays the root; "" means no restriction
            self.path_prefix = stripped or (self.path_prefix[:1] or None)
        self.modalities = _as_tuple(self.modalities, "modalities")
        types = _as_tuple(self.file_types, "file_types")
        self.file_types = None if types is None else tuple(t.lower().lstrip(".") for t in types)

    @property
    def matches_nothing(self) -> bool:
        return self.modalities == () or self.file_types == ()

    def matches(self, payload: dict[str, Any]) -> bool:
        """The reference semantics every backend implements (used by tests and brute-force checks)."""
        if self.modalities is not None and payload.get("modality") not in self.modalities:
            return False
        if self.file_types is not None and payload.get("file_type") not in self.file_types:
            return False
        return self.path_prefix is None or self.path_prefix in path_ancestors(str(payload.get("file", "")))


def _as_tuple(values: Any, what: str) -> tuple[str, ...] | None:
    if values is None:
        return None
    if isinstance(values, str):  # a bare string would otherwise become a tuple of characters
        values = (values,)
    values = tuple(values)
    if not all(isinstance(v, str) for v in values):
        raise InputError(f"Filter.{what} must be strings, got {values!r}.")
    return values


def path_ancestors(file: str) -> list[str]:
    """Every prefix of ``file`` a path filter can name: the root, each ancestor folder, and the file itself.
    ``"/a/b/c.txt"`` -> ``["/", "/a", "/a/b", "/a/b/c.txt"]``."""
    found = [file[0]] if file[:1] and file[0] in SEPARATORS else []
    for i in range(1, len(file)):
        if file[i] in SEPARATORS and file[i - 1] not in SEPARATORS:
            found.append(file[:i])
    if file and file not in found:
        found.append(file)
    return found


def check_name(name: str) -> str:
    """Collection names are used as table and directory names: keep them portable."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(f"collection name {name!r} is not valid: use 1-64 letters, digits, '_' or '-'.")
    return name


def normalize_payload(payload: dict[str, Any], where: str) -> dict[str, Any]:
    """A copy of ``payload`` with every default key present and typed, ``file_type`` derived from ``file`` if
    missing. Raises InputError naming ``where`` (collection and record) for what is missing or of the wrong type."""
    if not isinstance(payload, dict):
        raise InputError(f"{where}: payload must be a dict, got {type(payload).__name__}.")
    missing = [key for key in REQUIRED_KEYS if not payload.get(key)]
    if missing:
        raise InputError(f"{where}: payload lacks {', '.join(missing)} (required: {', '.join(REQUIRED_KEYS)}).")
    reserved = sorted(RESERVED_KEYS & payload.keys())
    if reserved:
        raise InputError(f"{where}: payload keys {reserved} are reserved for the store.")
    out = dict(PAYLOAD_DEFAULTS)
    for key, value in payload.items():
        out[key] = _payload_value(key, value.item() if isinstance(value, np.generic) else value, where)
    out["file_type"] = (out["file_type"] or os.path.splitext(out["file"])[1]).lower().lstrip(".")
    return out


def _payload_value(key: str, value: Any, where: str) -> Any:
    """``value`` as payload ``key`` holds it: a string (None becomes ""), an int, a float, or None."""
    if key in STR_KEYS:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise InputError(f"{where}: payload {key!r} must be a string, got {value!r}.")
    elif value is None:
        return value
    elif key in INT_KEYS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where}: payload {key!r} must be an int or None, got {value!r}.")
    elif key in FLOAT_KEYS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{where}: payload {key!r} must be a number or None, got {value!r}.")
        return float(value)
    elif not isinstance(value, (str, int, float)):
        raise InputError(f"{where}: payload {key!r} must be str, int, float or None, got {type(value).__name__}.")
    return value


def prepare_records(name: str, records: list[Record], dim: int = 0,
                    kind: CollectionKind = "dense") -> list[tuple[str, Any, dict[str, Any]]]:
    """Validated ``(id, vector, payload)`` triples for a collection of ``kind``: the vector is a float32 array of
    ``dim`` (dense), a :class:`SparseVector` (sparse) or None (lexical); a record of another kind is an InputError
    naming the collection and record. A repeated id keeps its last record, as one upsert after another would."""
    prepared: dict[str, tuple[str, Any, dict[str, Any]]] = {}
    for record in records:
        if not isinstance(record.id, str) or not record.id:
            raise InputError(f"collection {name!r}: record ids must be non-empty strings, got {record.id!r}.")
        where = f"collection {name!r}, record {record.id!r}"
        vector = _record_vector(record.vector, kind, dim, where)
        prepared.pop(record.id, None)  # re-insert so that order follows the last occurrence
        prepared[record.id] = (record.id, vector, normalize_payload(record.payload, where))
    return list(prepared.values())


_TAKES = {"dense": "a numpy vector", "lexical": "vector=None (its text comes from the payload)",
          "sparse": "a SparseVector"}


def _record_vector(vector: Any, kind: CollectionKind, dim: int, where: str) -> Any:
    """``vector`` checked against what a ``kind`` collection takes."""
    given = "a SparseVector" if isinstance(vector, SparseVector) else "None" if vector is None else "a dense vector"
    if kind == "lexical" and vector is None:
        return None
    if kind == "sparse" and isinstance(vector, SparseVector):
        return vector
    if kind == "dense" and vector is not None and not isinstance(vector, SparseVector):
        return check_vector(vector, dim, where)
    raise InputError(f"{where}: a {kind} collection takes {_TAKES[kind]}, got {given}.")


def check_vector(vector: Any, dim: int, where: str) -> np.ndarray:
    """``vector`` as a 1-D finite float32 array of length ``dim``."""
    if vector is None or isinstance(vector, SparseVector):
        raise InputError(f"{where}: expected a dense vector of dimension {dim}, got "
                         f"{'None' if vector is None else 'a SparseVector'}.")
    array = np.asarray(vector, dtype=np.float32)
    if array.ndim != 1 or array.shape[0] != dim:
        raise InputError(f"{where}: expected a vector of dimension {dim}, got shape {tuple(array.shape)}.")
    if not np.isfinite(array).all():
        raise InputError(f"{where}: the vector has NaN or infinite values.")
    return array


def check_dim(name: str, dim: int) -> None:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise InputError(f"collection {name!r}: dim must be a positive int, got {dim!r}.")


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise InputError(f"k must be a non-negative int, got {k!r}.")
    return int(k)


def wrong_kind(name: str, kind: str | None, wanted: str, store: str) -> InputError:
    """The error for using collection ``name`` of ``kind`` as a ``wanted`` one."""
    return InputError(f"collection {name!r} in {store} is a {kind} collection, not a {wanted} one: use another "
                      f"collection name, or drop_collection({name!r}) and index again to rebuild it as {wanted}.")


def ivf_partitions(rows: int) -> int:
    """IVF partition count: about sqrt(rows), the usual balance of centroid scan against partition scan, but at
    least 256 rows per partition (k-means needs them; LanceDB trains no more partitions than that anyway)."""
    return max(1, min(math.isqrt(rows), rows // 256))


class VectorStore(ABC):
    """Collections of fixed-dimension vectors searched by cosine similarity.

    Search is exact (brute force) while a collection has fewer than ``ann_threshold`` records; past it,
    :meth:`optimize` builds an approximate index where the backend needs one."""

    ANN_THRESHOLD = 50_000
    SUPPORTS_SPARSE: ClassVar[bool] = False  # whether ensure_sparse_collection works

    def __init__(self, ann_threshold: int | None = None) -> None:
        self.ann_threshold = self.ANN_THRESHOLD if ann_threshold is None else int(ann_threshold)

    @abstractmethod
    def ensure_collection(self, name: str, dim: int) -> None:
        """Create ``name`` for ``dim``-dimensional vectors if missing; InputError if it exists with another dim
        or as another kind."""

    @abstractmethod
    def ensure_lexical_collection(self, name: str, settings: LexicalSettings) -> None:
        """Create lexical collection ``name`` if missing; InputError if it exists as another kind, or as lexical
        with another language (the message says how to rebuild)."""

    @abstractmethod
    def ensure_sparse_collection(self, name: str) -> None:
        """Create sparse collection ``name`` if missing; InputError if it exists as another kind;
        :class:`SparseUnsupportedError` where the store has no native sparse index."""

    @abstractmethod
    def collection_kind(self, name: str) -> CollectionKind | None:
        """"dense", "lexical" or "sparse"; None if ``name`` does not exist."""

    @abstractmethod
    def search_text(self, name: str, query: str, k: int, where: Filter | None = None) -> list[Hit]:
        """The ``k`` best records of lexical collection ``name`` for ``query`` by BM25 (higher is better), best
        first; [] for a missing or empty collection or a query with no searchable term."""

    @abstractmethod
    def search_sparse(self, name: str, vector: SparseVector, k: int, where: Filter | None = None) -> list[Hit]:
        """The ``k`` records of sparse collection ``name`` with the largest dot product with ``vector``, best
        first (records sharing no index with it are left out); [] for a missing or empty collection."""

    @abstractmethod
    def upsert(self, name: str, records: list[Record]) -> None:
        """Insert ``records``, replacing any with the same id. The collection must exist."""

    @abstractmethod
    def delete_files(self, name: str, files: list[str]) -> int:
        """Remove every record whose payload ``file`` is in ``files``; returns how many were removed."""

    @abstractmethod
    def search(self, name: str, vector: np.ndarray, k: int, where: Filter | None = None) -> list[Hit]:
        """The ``k`` records most similar to ``vector``, best first; [] for a missing or empty collection."""

    @abstractmethod
    def count(self, name: str) -> int:
        """Number of records in ``name`` (0 if missing)."""

    @abstractmethod
    def collections(self) -> list[str]:
        """Names of the collections, sorted."""

    @abstractmethod
    def files(self, name: str) -> set[str]:
        """The distinct payload ``file`` values in ``name``."""

    @abstractmethod
    def file_counts(self, name: str) -> dict[str, int]:
        """Records per payload ``file`` in ``name`` ({} if missing)."""

    @abstractmethod
    def drop_collection(self, name: str) -> None:
        """Remove ``name`` and all its records (nothing if missing)."""

    @abstractmethod
    def spec(self, name: str) -> CollectionSpec | None:
        """What collection ``name`` is (None if missing)."""

    @abstractmethod
    def scroll(self, name: str, after: str | None, limit: int, with_vectors: bool = True) -> list[Record]:
        """Up to ``limit`` records of ``name`` following record id ``after`` (None: from the start) in the store's
        fixed order of ids (LanceDB: the ids; Qdrant: their point ids), with payloads as searches give them."""

    @abstractmethod
    def retrieve(self, name: str, ids: list[str], with_vectors: bool = True) -> list[Record]:
        """The records of ``name`` with these ids, in the order of ``ids``; ids not stored are left out."""

    @abstractmethod
    def value_counts(self, name: str, key: str) -> dict[Any, int]:
        """Records per value of payload ``key`` in ``name`` ({} if missing)."""

    def ensure_spec(self, name: str, spec: CollectionSpec) -> None:
        """Create ``name`` as ``spec`` says if missing (the ``ensure_*`` method of its kind)."""
        if spec.kind == "dense":
            self.ensure_collection(name, spec.dim)
        elif spec.kind == "lexical":
            self.ensure_lexical_collection(name, LexicalSettings(spec.language or "english"))
        else:
            self.ensure_sparse_collection(name)

    def optimize(self, name: str) -> None:  # noqa: B027 (not abstract: a no-op for backends that index by themselves)
        """Compact storage and bring indexes up to date: for a dense collection, build or refresh the ANN index
        once ``name`` has ``ann_threshold`` records; for a lexical one, add new rows to the full-text index."""

    def close(self) -> None:  # noqa: B027 (not abstract: a no-op for backends that hold nothing open)
        """Release files and connections; the store is unusable afterwards."""

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["LEXICAL_LANGUAGES", "PAYLOAD_DEFAULTS", "CollectionKind", "CollectionSpec", "Filter", "Hit",
           "LexicalSettings", "Record", "SparseUnsupportedError", "SparseVector", "VectorStore", "code_terms",
           "lexical_text"]
