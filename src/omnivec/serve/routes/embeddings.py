"""``POST /v1/embeddings`` and ``POST /embeddings`` (OpenAI's schema, plus content parts for images and audio; the
path without ``/v1`` is infinity's). ``model`` may be left out when one embedder is served.

Vectors are always L2-normalised (after ``dimensions`` truncation, as OpenAI does), so they equal
``Embedder.encode(..., truncate_dim=dimensions, normalize_embeddings=True)``. A SparseEncoder's vectors come as
``{"indices": [...], "values": [...]}`` (its non-zero dimensions, increasing), equal to ``SparseEncoder.encode`` and
not normalised (SPLADE scores are dot products of the raw weights); ``dimensions`` and ``encoding_format: base64``
have no meaning for them and are refused (400). Plain strings are always text, never
read as a path or URL; media comes as content parts (see ``request_decoding``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from omnivec.serve import schemas as s
from omnivec.serve.errors import ApiError
from omnivec.serve.model_calls import SparseRow, check_results, is_sparse_model, submit
from omnivec.serve.openapi import MODEL_ERRORS
from omnivec.serve.request_decoding import decode_items
from omnivec.serve.state import ServerState, server_state

router = APIRouter()


@router.post("/v1/embeddings", response_model=s.EmbeddingResponse, responses=MODEL_ERRORS)
@router.post("/embeddings", response_model=s.EmbeddingResponse, include_in_schema=False)  # infinity's path
async def embeddings(body: s.EmbeddingRequest, request: Request) -> s.EmbeddingResponse:
    state = server_state(request)
    state.authorize(request)
    name = state.embedder(body.model)
    model = state.embedders[name]
    items = body.items()
    if not items:
        raise ApiError(400, "'input' is empty")
    if len(items) > state.settings.max_inputs:
        raise ApiError(413, f"{len(items)} inputs exceed the limit of {state.settings.max_inputs}", "too_many_inputs")
    sparse = is_sparse_model(model)
    if sparse and (body.dimensions is not None or body.encoding_format != "float"):
        raise ApiError(400, f"model {name!r} is a SparseEncoder: its vectors come as indices and values; "
                       "'dimensions' and encoding_format 'base64' apply to dense vectors only")
    dim = model.get_sentence_embedding_dimension()
    if body.dimensions is not None and dim is not None and body.dimensions > dim:
        raise ApiError(400, f"dimensions={body.dimensions} exceeds the model's {dim}")
    decoded, tokens = await run_in_threadpool(_prepare, state, name, items)
    vectors = await submit(state.batchers[name], decoded, state.settings.request_timeout_s)
    check_results(vectors, "input", "embedded")
    data = [s.Embedding(index=i, embedding=_sparse(v) if sparse else
                        s.vector_payload(_normalized(v, body.dimensions), body.encoding_format))
            for i, v in enumerate(vectors)]
    return s.EmbeddingResponse(data=data, model=body.model or name, usage=s.EmbeddingUsage(prompt_tokens=tokens,
                                                                                  total_tokens=tokens))


def _prepare(state: ServerState, name: str, items: list[Any]) -> tuple[list[dict[str, Any]], int]:
    """The decoded inputs and their text token count (CPU work, for a worker thread)."""
    settings = state.settings
    decoded, texts = decode_items(items, state.embedders[name], settings.fetch_policy,
                                  (settings.max_image_pixels, settings.max_request_pixels))
    return decoded, state.counters[name](texts)


def _sparse(row: SparseRow) -> s.SparseVector:
    return s.SparseVector(indices=row.indices, values=row.values)


def _normalized(vector: Any, dimensions: int | None) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float32)[:dimensions]
    return v / max(float(np.linalg.norm(v)), 1e-12)  # same eps as torch's normalize
