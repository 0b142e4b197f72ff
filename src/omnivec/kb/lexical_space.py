"""The lexical space: BM25 over every text chunk (passages, PDF page text, transcripts, with their headings and file
names) in the store's own full-text machinery: LanceDB's native FTS index, Qdrant's sparse vectors with the IDF
modifier. It has no model: what it stores is the chunk's text, and the store tokenizes it (stemming, stop words and
exact codes such as ``E-4012`` as ``kb/stores`` describes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omnivec.kb.config import LEXICAL_SPACE


@dataclass
class LexicalSpace:
    language: str = "english"
    name: str = LEXICAL_SPACE
    modality: str = "text"
    model: Any = None  # no model runs: the store tokenizes

    @property
    def model_id(self) -> str:
        return f"bm25 ({self.language})"

    @property
    def source(self) -> str:
        return self.model_id

    def identity(self) -> str:
        """Another language stems and drops other words: its index is rebuilt, as for a changed model."""
        return f"lexical:{self.language}"

    def ensure(self, store: Any) -> None:
        from omnivec.kb.stores.base import LexicalSettings

        store.ensure_lexical_collection(self.name, LexicalSettings(self.language))

    def embed(self, inputs: list[Any], batch_size: int, show_progress_bar: bool | None = None,
              modality: str | None = None) -> list[None]:
        """Nothing to embed: a lexical record is its payload's text."""
        return [None] * len(inputs)

    def takes_query(self, *parts: str) -> bool:
        return parts == ("text",)

    def queries(self) -> list[str]:
        return ["text"]

    def search(self, store: Any, query: dict[str, Any], k: int, where: Any) -> list[Any]:
        return store.search_text(self.name, query["text"], k, where)
