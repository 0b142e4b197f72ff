"""The learned-sparse space: a ``SparseEncoder`` (SPLADE) over text chunks, its vectors in the store's native
sparse-vector support (Qdrant). LanceDB has none, so a KB on LanceDB with ``[spaces] sparse`` is refused with one
message when it is indexed or searched (``SparseUnsupportedError``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omnivec.kb.config import SPARSE_SPACE


def load_sparse_encoder(model_id: str, device: str | None = None, backend: str = "torch") -> Any:
    """The ``SparseEncoder`` of the sparse space (torch only: SPLADE's MLM head is not exported)."""
    from omnivec.errors import ConfigError
    from omnivec.models.sparse_encoder import SparseEncoder

    if backend != "torch":
        raise ConfigError(f"backend {backend!r} for the sparse space: SparseEncoder models run on torch only; set "
                          "backends.sparse = \"torch\" in kb.toml.")
    return SparseEncoder(model_id, device=device)


@dataclass
class SparseSpace:
    model_id: str
    model: Any  # omnivec.SparseEncoder
    name: str = SPARSE_SPACE
    modality: str = "text"

    @property
    def source(self) -> str:
        return self.model_id

    def identity(self) -> str:
        from omnivec.kb.consistency import model_identity

        return model_identity(self.source)

    def ensure(self, store: Any) -> None:
        store.ensure_sparse_collection(self.name)

    def embed(self, inputs: list[Any], batch_size: int, show_progress_bar: bool | None = None,
              modality: str | None = None) -> list[Any]:
        """One ``SparseVector`` per text, from the document side of the model."""
        encoded = self.model.encode_document([str(text) for text in inputs], batch_size=batch_size,
                                             show_progress_bar=show_progress_bar, convert_to_sparse_tensor=True)
        return sparse_rows(encoded)

    def takes_query(self, *parts: str) -> bool:
        return parts == ("text",)

    def queries(self) -> list[str]:
        return ["text"]

    def search(self, store: Any, query: dict[str, Any], k: int, where: Any) -> list[Any]:
        encoded = self.model.encode_query([query["text"]], convert_to_sparse_tensor=True)
        return store.search_sparse(self.name, sparse_rows(encoded)[0], k, where)


def sparse_rows(encoded: Any) -> list[Any]:
    """A sparse tensor of shape (n, vocabulary) as ``n`` store ``SparseVector`` rows (ids ascending)."""
    from omnivec.kb.stores.base import SparseVector
    from omnivec.models.sparse_tensors import nonzero_rows

    return [SparseVector(indices, values) for indices, values in nonzero_rows(encoded)]
