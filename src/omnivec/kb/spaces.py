"""Embedding spaces: one model and one collection per modality family (text passages; images, pages and frames;
audio). A model that cannot be loaded (offline and not cached) takes its space out of this run, with one message
naming the model and what will not be indexed."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

from omnivec.errors import ModelLoadError
from omnivec.kb.config import KBConfig
from omnivec.models.cache import ModelCache

logger = logging.getLogger(__name__)


@dataclass
class Space:
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


def load_spaces(config: KBConfig, device: str | None = None,
                models: ModelCache | None = None) -> tuple[list[Space], list[str]]:
    """The spaces whose model loads, and a message for each that does not. ``models``: where models already
    loaded (the server's) are reused and new ones kept, by the source the config names."""
    from omnivec.models.embedder import Embedder
    spaces, problems = [], []
    for name, model_id in config.spaces.items():
        backend = config.backend_for(name)
        load = functools.partial(Embedder, model_id, device=device, backend=backend)
        try:
            model = models.get("embedder", model_id, load, backend) if models is not None else load()
        except ModelLoadError as exc:
            problems.append(f"model {model_id!r} for the {name} space is not available ({_first_line(exc)}): "
                            f"{_what(name)} will not be indexed or searched in this run.")
            continue
        if not model.supports(name):
            problems.append(f"model {model_id!r} cannot embed {name} inputs (it takes "
                            f"{', '.join(model.modalities)}): the {name} space is left out.")
            continue
        spaces.append(Space(name, model_id, model, model_id))
    return spaces, problems


def _what(space: str) -> str:
    return {"text": "text passages", "image": "images, PDF page images and video frames",
            "audio": "audio recordings and video sound tracks"}[space]


def _first_line(exc: Exception) -> str:
    """The reason's first sentence: enough to act on, short enough for a summary line."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    return text.splitlines()[0].split(". ")[0].rstrip(".")
