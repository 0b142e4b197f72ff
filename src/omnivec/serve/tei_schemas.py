"""Wire formats of text-embeddings-inference (TEI) and infinity, for clients written against those servers:
TEI's ``/embed``, ``/rerank`` and ``/tokenize`` bodies and its ``{"error", "error_type"}`` error body, and infinity's
``/rerank`` body and reply (Cohere's shape with the document as a string). ``model`` is omnivec's addition to TEI's
bodies (TEI serves one model): it picks a model where several are served."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import Field

from omnivec.serve.schemas import _Wire

# Paths whose errors are answered in TEI's shape instead of OpenAI's ("/": TEI's POST / embeds).
TEI_PATHS = frozenset({"/embed", "/embed_sparse", "/v1/embed_sparse", "/rerank", "/tokenize", "/"})

TeiErrorType = Literal["unhealthy", "backend", "overloaded", "validation", "tokenizer", "empty"]


class TeiEmbedRequest(_Wire):
    """TEI ``POST /embed``: ``truncate`` None means truncate (TEI's default ``--auto-truncate``); False refuses an
    input over the model's token limit. ``dimensions`` cuts the vector before ``normalize``."""

    inputs: str | list[str]
    truncate: bool | None = None
    truncation_direction: Literal["right", "left", "Right", "Left"] = "right"
    prompt_name: str | None = None
    normalize: bool = True
    dimensions: int | None = Field(default=None, ge=1)
    model: str | None = None

    def texts(self) -> list[str]:
        return [self.inputs] if isinstance(self.inputs, str) else list(self.inputs)


class TeiEmbedSparseRequest(_Wire):
    """TEI ``POST /embed_sparse`` (a SparseEncoder's vectors): ``truncate`` as ``/embed``'s. ``task`` is omnivec's
    addition: ``query`` or ``document`` picks a Router's route (inference-free SPLADE's static query side); left out,
    the model's default route, as ``encode``."""

    inputs: str | list[str]
    truncate: bool | None = None
    truncation_direction: Literal["right", "left", "Right", "Left"] = "right"
    prompt_name: str | None = None
    task: Literal["query", "document"] | None = None
    model: str | None = None

    def texts(self) -> list[str]:
        return [self.inputs] if isinstance(self.inputs, str) else list(self.inputs)


class TeiSparseValue(_Wire):
    """One non-zero dimension of a sparse vector."""

    index: int
    value: float


class TeiRerankRequest(_Wire):
    """TEI ``POST /rerank``: ``texts`` scored against ``query``; ``raw_scores``: before the model's activation."""

    query: str
    texts: list[str]
    truncate: bool | None = None
    truncation_direction: Literal["right", "left", "Right", "Left"] = "right"
    raw_scores: bool = False
    return_text: bool = False
    model: str | None = None


class TeiRank(_Wire):
    index: int
    text: str | None = None
    score: float


class InfinityRerankRequest(_Wire):
    """infinity's ``POST /rerank`` (Cohere's fields, plus ``raw_scores``)."""

    query: str
    documents: list[str]
    return_documents: bool = False
    raw_scores: bool = False
    top_n: int | None = Field(default=None, ge=1)
    model: str | None = None


class InfinityRerankResult(_Wire):
    relevance_score: float
    index: int
    document: str | None = None


class InfinityUsage(_Wire):
    prompt_tokens: int
    total_tokens: int


class InfinityRerankResponse(_Wire):
    object: Literal["rerank"] = "rerank"
    results: list[InfinityRerankResult]
    model: str
    usage: InfinityUsage
    id: str
    created: int = Field(default_factory=lambda: int(time.time()))


class TeiTokenizeRequest(_Wire):
    """TEI ``POST /tokenize``: ``prompt_name``'s prompt is tokenized in front of each input, as the model reads it."""

    inputs: str | list[str]
    add_special_tokens: bool = True
    prompt_name: str | None = None
    model: str | None = None

    def texts(self) -> list[str]:
        return [self.inputs] if isinstance(self.inputs, str) else list(self.inputs)


class TeiToken(_Wire):
    """One token: ``start``/``stop`` are UTF-8 byte offsets in the (prompted) input, as TEI gives them; a special
    token has none and its ``text`` is the token itself."""

    id: int
    text: str
    special: bool
    start: int | None
    stop: int | None


class TeiErrorResponse(_Wire):
    """TEI's error body."""

    error: str
    error_type: TeiErrorType


def tei_error(status: int, code: str | None) -> tuple[int, TeiErrorType]:
    """TEI's status and ``error_type`` for one of omnivec's refusals: an empty batch is 400 ``empty``; other bad
    input 422 ``validation`` (TEI's status for it); limits 413; a full queue 429 ``overloaded``; shutting down 503
    ``unhealthy``; a model failure 424 ``backend``."""
    if code == "empty":
        return 400, "empty"
    if code == "invalid_request":
        return status, "validation"  # a body that is not JSON (400) or not the schema (422), as TEI's JSON reader
    mapped: dict[int, tuple[int, TeiErrorType]] = {
        400: (422, "validation"), 429: (429, "overloaded"), 500: (424, "backend"), 503: (503, "unhealthy"),
        504: (504, "backend")}
    return mapped.get(status, (status, "validation"))
