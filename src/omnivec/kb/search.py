"""``omnivec search``: embed the query in every space that takes it, search each, fuse, rerank."""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from omnivec.errors import InputError
from omnivec.kb.config import LEXICAL_SPACE, SPARSE_SPACE, KBConfig
from omnivec.kb.fusion import FusionSettings, fuse
from omnivec.kb.location import Location
from omnivec.kb.spaces import load_spaces
from omnivec.models.cache import ModelCache

if TYPE_CHECKING:
    from omnivec.kb.stores.base import Hit
    from omnivec.models.cross_encoder import CrossEncoder

logger = logging.getLogger(__name__)


@dataclass
class Result:
    """One search result: where it is (``location.describe()`` says it in one line), what it is, and how it
    scored."""

    id: str
    score: float
    location: Location
    modality: str
    kind: str
    text: str = ""
    thumbnail: str = ""
    record: str = ""
    spaces: list[str] = field(default_factory=list)  # the spaces that found it
    similarity: float | None = None  # cosine similarity in the first dense space that found it
    rerank_score: float | None = None
    scores: dict[str, float] = field(default_factory=dict)  # each space's own score: cosine, BM25, sparse dot

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON fields, the location's among them (``file``, ``page``, ``start``, ``end``,
        ``heading``): the keys, in the order, that ``omnivec search --json`` and ``POST /v1/search`` give."""
        where = self.location
        return {"id": self.id, "score": self.score, "file": where.file, "modality": self.modality, "kind": self.kind,
                "text": self.text, "page": where.page, "start": where.start, "end": where.end,
                "heading": where.heading, "thumbnail": self.thumbnail, "record": self.record,
                "spaces": list(self.spaces), "scores": dict(self.scores), "similarity": self.similarity,
                "rerank_score": self.rerank_score}


class Searcher:
    """Searches one KB. ``reranker``: a CrossEncoder model id/folder, or None for fused order only."""

    def __init__(self, kb_dir: Path, config: KBConfig, reranker: str | None = None, device: str | None = None,
                 spaces: list[Any] | None = None, models: ModelCache | None = None) -> None:
        """``spaces``: already loaded (an ``Indexer``'s), so their models are not loaded again. ``models``: models
        already loaded elsewhere (the server's), reused for the spaces and the reranker that name the same source."""
        from omnivec.kb.stores.uri import open_store

        if not (kb_dir / "manifest.sqlite").is_file():
            raise InputError(f"{str(kb_dir)!r} is not a knowledge base yet: run `omnivec index PATH --kb {kb_dir}`.")
        self.kb_dir = kb_dir
        self.fusion = config.fusion
        self.store = open_store(config.store_uri(kb_dir))
        self.spaces, self.problems = (spaces, []) if spaces is not None else load_spaces(config, device, models)
        for problem in self.problems:
            logger.warning(problem)
        self.reranker: CrossEncoder | None = None
        if reranker:
            from omnivec.models.cross_encoder import CrossEncoder

            backend = config.backend_for("reranker")
            load = functools.partial(CrossEncoder, reranker, device=device, backend=backend)
            self.reranker = models.get("cross-encoder", reranker, load, backend) if models is not None else load()

    def search(self, query: str | None = None, image: Any = None, k: int = 10, where: Any = None,
               fusion: str | FusionSettings | None = None, candidates: int = 50, rerank: bool = True,
               spaces: list[str] | None = None) -> list[Result]:
        """The ``k`` best chunks for a text query, an image (path, URL, PIL image) or both; ``rerank=False`` keeps
        the fused order even when the searcher has a reranker. ``spaces``: search only these (by name; default: all
        that take the query). ``fusion``: settings, or a method name with the KB's weights (default: the KB's)."""
        if not query and image is None:
            raise InputError("A search needs a text query, an image, or both.")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"k (the number of results) must be a whole number >= 1, got {k!r}.")
        query = query or None  # an empty text is no text query
        parts = tuple(part for part, value in (("text", query), ("image", image)) if value is not None)
        check_image_query(image)
        settings = fusion if isinstance(fusion, FusionSettings) else self.fusion.merged(method=fusion)
        chosen = self._chosen(spaces)
        lists = {}
        for space in chosen:
            if space.takes_query(*parts):  # a space that cannot take the whole query is left out of this search
                lists[space.name] = space.search(self.store, _query_input(query, image), max(candidates, k), where)
        if not lists:
            takes = "; ".join(f"{s.name}: {', '.join(s.queries()) or 'nothing'}" for s in chosen) or "no spaces"
            raise InputError(f"No {'chosen ' if spaces else ''}space of this KB takes {' + '.join(parts)} queries "
                             f"(spaces: {takes}).")
        fused = fuse(lists, settings)[: max(candidates, k)]
        dense = {s.name for s in chosen if s.name not in (LEXICAL_SPACE, SPARSE_SPACE)}
        results = [_result(f.hit, f.id, f.score, f.spaces, f.scores, dense) for f in fused]
        if rerank and self.reranker is not None and query:
            results = self._rerank(self.reranker, query, results)
        return results[:k]

    def _chosen(self, names: list[str] | None) -> list[Any]:
        """The spaces ``names`` selects (all when None), or an ``InputError`` naming what this KB has."""
        if names is None:
            return list(self.spaces)
        have = {space.name: space for space in self.spaces}
        unknown = [name for name in names if name not in have]
        if unknown or not names:
            raise InputError(f"spaces {unknown or names!r}: this KB searches {sorted(have)} (a space left out of "
                             "kb.toml, or whose model did not load, cannot be chosen).")
        return [have[name] for name in dict.fromkeys(names)]

    def _rerank(self, reranker: CrossEncoder, query: str, results: list[Result]) -> list[Result]:
        """Results the reranker can read (text; images too for a vision-language reranker) are reordered by its
        scores; the others keep their fused positions."""
        documents = {i: doc for i, r in enumerate(results)
                     if (doc := self._document(r, reranker.takes_images)) is not None}
        if not documents:
            return results
        # A list of pairs gives an array of one score per pair (predict's other return types are for one pair
        # or tensors asked for).
        scores = reranker.predict([(query, doc) for doc in documents.values()], show_progress_bar=False)
        assert isinstance(scores, np.ndarray), type(scores)
        scored = {i: float(score) for i, score in zip(documents, scores, strict=True)}
        for i, score in scored.items():
            results[i].rerank_score = score
        reranked = iter(sorted(scored, key=lambda i: scored[i], reverse=True))
        return [results[next(reranked)] if i in scored else r for i, r in enumerate(results)]

    def _document(self, result: Result, takes_images: bool) -> Any:
        """What the reranker reads for a result: its text, or for an image reranker an image-only result's
        picture (the file itself, or the thumbnail of a PDF page or video frame)."""
        if result.text:
            return result.text
        if result.modality == "image" and takes_images:
            if result.kind == "image":
                return result.location.file
            if result.thumbnail:
                return str(self.kb_dir / result.thumbnail)
        return None

    def close(self) -> None:
        self.store.close()


def _query_input(query: str | None, image: Any) -> Any:
    """The query as one input whose parts are named, so nothing is guessed from a string: a text that looks like a
    file name stays text, and an image path that does not exist is an error, not a text search for its name."""
    return {key: value for key, value in (("text", query), ("image", image)) if value is not None}


def check_image_query(image: Any) -> None:
    """An image given as a local path must exist (a mistyped ``--image`` names the path, before any model runs)."""
    if isinstance(image, str) and "://" not in image and not image.startswith("data:"):
        if not os.path.isfile(os.path.expanduser(image)):
            reason = "is a folder" if os.path.isdir(os.path.expanduser(image)) else "does not exist"
            raise InputError(f"The image query {image!r} {reason}: give an image file, an http(s) URL or a data: URI.")


def _result(hit: Hit, id_: str, score: float, spaces: list[str], scores: dict[str, float],
            dense: set[str]) -> Result:
    """A fused hit as a result: ``score`` the fused score, ``similarity`` the cosine of the first dense space that
    found it (None when only the lexical or sparse space did)."""
    payload = hit.payload
    similarity = next((scores[space] for space in spaces if space in dense), None)
    return Result(id=id_, score=score, location=hit.location, modality=payload["modality"], kind=payload["kind"],
                  text=_text(payload, "text"), thumbnail=_text(payload, "thumbnail"),
                  record=_text(payload, "record"), spaces=spaces, similarity=similarity, scores=scores)


def _text(payload: dict[str, Any], key: str) -> str:
    """A text field of a payload; "" where a record lacks it (``record`` is not a field every record has)."""
    value = payload.get(key)
    return "" if value is None else value
