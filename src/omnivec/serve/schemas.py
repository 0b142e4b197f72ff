"""Wire formats: OpenAI embeddings and Cohere/Jina rerank bodies and OpenAI's error body (pydantic v2)."""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    # Clients send fields this server does not use (OpenAI's "user", Jina's "truncation"...): ignore them.
    model_config = ConfigDict(extra="ignore")


class TextPart(_Wire):
    """``{"type": "text", "text": ...}``."""

    type: Literal["text"]
    text: str


class ImageURL(_Wire):
    """A ``data:`` URI, or an http(s) URL where the server allows remote media; ``detail`` is ignored."""

    url: str
    detail: str | None = None


class ImagePart(_Wire):
    """``{"type": "image_url", "image_url": {"url": ...}}``."""

    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(_Wire):
    """Base64 audio bytes; ``format`` ("wav", "mp3"...) is a hint, the decoder sniffs the bytes."""

    data: str
    format: str = "wav"


class AudioPart(_Wire):
    """``{"type": "input_audio", "input_audio": {"data": ..., "format": ...}}``."""

    type: Literal["input_audio"]
    input_audio: InputAudio


ContentPart = Annotated[TextPart | ImagePart | AudioPart, Field(discriminator="type")]
# One item: a string (always text, never read as a URL or path), one part, or parts fused into one embedding.
EmbeddingItem = str | ContentPart | list[ContentPart]


class EmbeddingRequest(_Wire):
    """OpenAI ``POST /v1/embeddings`` body; ``input`` may also hold content parts for images and audio; ``model``
    may be left out when the server has one embedder."""

    model: str | None = None
    input: str | list[EmbeddingItem]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    def items(self) -> list[EmbeddingItem]:
        """The inputs as a list: a bare string is one input."""
        return [self.input] if isinstance(self.input, str) else list(self.input)


def vector_payload(vector: Any, encoding_format: str) -> list[float] | str:
    """A float32 numpy vector as OpenAI sends it: a list of floats, or base64 of its little-endian float32 bytes."""
    if encoding_format == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()


class SparseVector(_Wire):
    """A SparseEncoder's vector in ``/v1/embeddings``: the non-zero dimensions (vocabulary ids, increasing) and their
    weights, as vector stores take sparse vectors (Qdrant's ``SparseVector``, Pinecone's ``sparse_values``)."""

    indices: list[int]
    values: list[float]


class Embedding(_Wire):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str | SparseVector  # a str is base64 of little-endian float32


class EmbeddingUsage(_Wire):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(_Wire):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class RerankDocument(_Wire):
    text: str


class RerankRequest(_Wire):
    """Cohere/Jina ``POST /v1/rerank`` body; ``model`` may be left out when the server has one reranker."""

    model: str | None = None
    query: str
    documents: list[str | RerankDocument]
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool = False

    def texts(self) -> list[str]:
        return [d if isinstance(d, str) else d.text for d in self.documents]


class RerankResult(_Wire):
    index: int
    relevance_score: float
    document: RerankDocument | None = None


class RerankUsage(_Wire):
    total_tokens: int


class BilledUnits(_Wire):
    search_units: int


class RerankMeta(_Wire):
    billed_units: BilledUnits


class RerankResponse(_Wire):
    """Jina's ``usage`` and Cohere's ``meta`` both, so either client finds what it reads."""

    results: list[RerankResult]
    model: str
    usage: RerankUsage
    meta: RerankMeta


class ModelCard(_Wire):
    """A served name; ``root``: the model's own name when ``id`` is an alias of it (as vLLM lists aliases)."""

    id: str
    root: str | None = None
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "omnivec"


class ModelList(_Wire):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(_Wire):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(_Wire):
    """OpenAI's error shape, which its client turns into ``APIStatusError.message``."""

    error: ErrorBody


def validation_message(errors: list[dict[str, Any]]) -> tuple[int, str]:
    """Status and a readable message for pydantic's errors on a request body."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "the request body is not valid JSON"
    if any(tuple(e.get("loc", ())) == ("body",) for e in errors):
        return 400, "the request body must be a JSON object (Content-Type: application/json)"
    if any(tuple(e.get("loc", ()))[:2] == ("body", "input") for e in errors):
        return 422, ("'input' must be a string or a list whose items are strings, content parts ({'type': 'text' | "
                     "'image_url' | 'input_audio', ...}) or lists of content parts (token ids are not supported)")
    shown = "; ".join(f"{'.'.join(map(str, e.get('loc', ())[1:])) or 'body'}: {e.get('msg')}" for e in errors[:3])
    return 422, f"invalid request: {shown}"
