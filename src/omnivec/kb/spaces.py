"""Spaces: one collection each, searched and fused. Dense spaces embed one modality family each (text passages;
images, pages and frames; audio); the lexical space (BM25 in the store's full-text index, ``kb/lexical_space.py``)
and the learned-sparse space (SPLADE, ``kb/sparse_space.py``) read text chunks. A model that cannot be loaded
(offline and not cached) takes its space out of this run, with one message naming the model and what will not be
indexed.

Every space offers what the indexer and the searcher call: ``name``, ``modality`` (of the chunks it holds),
``model_id`` and ``identity()`` (what made its records: a changed one re-indexes the space), ``ensure(store)``,
``embed(inputs, batch_size, ...)`` (one stored vector per input), ``takes_query(*parts)``, ``queries()`` and
``search(store, query, k, where)``."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

from omnivec.errors import ModelLoadError
from omnivec.kb.config import SPARSE_SPACE, KBConfig
from omnivec.models.cache import ModelCache

logger = logging.getLogger(__name__)


@dataclass
class Space:
    """A dense space: one embedding model, cosine similarity."""

    name: str
    model_id: str
    model: Any  # omnivec.Embedder
    source: str = ""  # what the model was loaded from; its identity is checked by index runs only (kb/consistency)

    @property
    def modality(self) -> str:
        """The chunk modality this space embeds: a space is named after it."""
        return self.name

    def takes_query(self, *parts: str) -> bool:
        """Whether a query made of ``parts`` ("text", "image") can be embedded whole: a text + image query needs
        a model that takes both (CLIP does; a text model or CLAP, text + audio, does not)."""
        if len(parts) > 1 and not self.model.supports("multimodal"):
            return False
        return all(self.model.supports(part) for part in parts)

    def queries(self) -> list[str]:
        """The query kinds this space takes, e.g. ``["text", "image", "text + image"]``."""
        kinds = [("text",), ("image",), ("text", "image")]
        return [" + ".join(kind) for kind in kinds if self.takes_query(*kind)]

    def embed(self, inputs: list[Any], batch_size: int, show_progress_bar: bool | None = None,
              modality: str | None = None) -> Any:
        """L2-normalised float32 vectors (cosine similarity is then a dot product in every store). ``modality``
        forces how every input is read (a passage "figure.png" is text, not the file of that name)."""
        return self.model.encode(inputs, batch_size=batch_size, normalize_embeddings=True,
                                 show_progress_bar=show_progress_bar, modality=modality)

    @property
    def dim(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def identity(self) -> str:
        """A fingerprint of the model's files (``OSError`` where they cannot be read)."""
        from omnivec.kb.consistency import model_identity

        return model_identity(self.source)

    def ensure(self, store: Any) -> None:
        store.ensure_collection(self.name, self.dim)

    def search(self, store: Any, query: dict[str, Any], k: int, where: Any) -> list[Any]:
        """``query``: its parts by name (``{"text": ..., "image": ...}``)."""
        return store.search(self.name, self.embed([query], 1)[0], k, where)


def load_spaces(config: KBConfig, device: str | None = None,
                models: ModelCache | None = None) -> tuple[list[Any], list[str]]:
    """The spaces whose model loads (the lexical space last, when on), and a message for each that does not.
    ``models``: where models already loaded (the server's) are reused and new ones kept, by the source the config
    names."""
    from omnivec.kb.lexical_space import LexicalSpace
    from omnivec.kb.sparse_space import SparseSpace, load_sparse_encoder
    from omnivec.models.embedder import Embedder

    spaces: list[Any] = []
    problems = []
    for name, model_id in config.spaces.items():
        backend = config.backend_for(name)
        kind, make = ("sparse-encoder", load_sparse_encoder) if name == SPARSE_SPACE else ("embedder", Embedder)
        load = functools.partial(make, model_id, device=device, backend=backend)
        try:
            model = models.get(kind, model_id, load, backend) if models is not None else load()
        except ModelLoadError as exc:
            problems.append(f"model {model_id!r} for the {name} space is not available ({_first_line(exc)}): "
                            f"{_what(name)} will not be indexed or searched in this run.")
            continue
        if name == SPARSE_SPACE:
            spaces.append(SparseSpace(model_id, model))
            continue
        if not model.supports(name):
            problems.append(f"model {model_id!r} cannot embed {name} inputs (it takes "
                            f"{', '.join(model.modalities)}): the {name} space is left out.")
            continue
        spaces.append(Space(name, model_id, model, model_id))
    if config.lexical.enabled:
        spaces.append(LexicalSpace(config.lexical.language))
    return spaces, problems


def _what(space: str) -> str:
    return {"text": "text passages", "image": "images, PDF page images and video frames",
            "audio": "audio recordings and video sound tracks", SPARSE_SPACE: "text passages (learned sparse)"}[space]


def _first_line(exc: Exception) -> str:
    """The reason's first sentence: enough to act on, short enough for a summary line."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    return text.splitlines()[0].split(". ")[0].rstrip(".")
