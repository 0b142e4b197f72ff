"""text-embeddings-inference's routes: ``POST /embed`` (and ``POST /``, as TEI serving an embedder), ``POST /rerank`` (TEI's ``texts`` body, or infinity's
``documents`` body on the same path) and ``POST /tokenize``, in their request and reply shapes; errors in TEI's
``{"error", "error_type"}`` shape (``edge.error_response``). The same limits and batchers as ``/v1/embeddings`` and
``/v1/rerank``: ``/embed`` vectors equal ``Embedder.encode`` of the same texts (then cut to ``dimensions`` and
normalised unless ``normalize`` is false), ``/rerank`` scores equal ``CrossEncoder.predict`` (with
``activation_fn=Identity()`` for ``raw_scores``). ``/embed_sparse`` (also at ``/v1/embed_sparse``) serves a
SparseEncoder: each input's non-zero dimensions as ``{"index", "value"}`` in increasing index order (TEI's order),
equal to ``SparseEncoder.encode``; ``/embed`` refuses a SparseEncoder and ``/embed_sparse`` a dense model (422, as TEI
answers a request its model cannot serve)."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from omnivec.serve import tei_schemas as t
from omnivec.serve.errors import ApiError
from omnivec.serve.model_calls import RAW_SCORES, WithOptions, check_results, is_sparse_model, submit
from omnivec.serve.request_decoding import check_text
from omnivec.serve.state import ServerState, server_state
from omnivec.serve.tei_tokens import MAX_TOKENIZE_CHARS, check_direction, check_lengths, raw_tokenizer, tokens_of

router = APIRouter(tags=["text-embeddings-inference"])

_REASONS = {400: "empty inputs", 401: "missing or wrong API key", 404: "unknown model",
            413: "more inputs than this server's limit, or a body over its size", 422: "bad input",
            424: "the model failed", 429: "queue full: retry after the Retry-After header's seconds",
            503: "shutting down", 504: "the model did not answer within the request timeout"}
TEI_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": t.TeiErrorResponse, "description": reason}
                                               for code, reason in _REASONS.items()}


@router.post("/embed", response_model=list[list[float]], responses=TEI_ERRORS)
# TEI embeds at "/" too (an embedding model's), where huggingface_hub's InferenceClient(model=URL) posts.
@router.post("/", response_model=list[list[float]], include_in_schema=False)
async def embed(body: t.TeiEmbedRequest, request: Request) -> list[list[float]]:
    state = server_state(request)
    state.authorize(request)
    name = state.embedder(body.model)
    model = state.embedders[name]
    if is_sparse_model(model):
        raise ApiError(400, f"model {name!r} is a SparseEncoder: its vectors are sparse; POST /embed_sparse",
                       "sparse_model")
    texts = _checked_texts(state, body.texts(), "inputs")
    prompt = _prompt(model, body.prompt_name)
    check_direction(model, body.truncation_direction)
    dim = model.get_sentence_embedding_dimension()
    if body.dimensions is not None and dim is not None and body.dimensions > dim:
        raise ApiError(400, f"dimensions={body.dimensions} exceeds the model's {dim}")
    if body.truncate is False:
        tokenizer = raw_tokenizer(state.raw_tokenizers, name, model)
        await run_in_threadpool(check_lengths, tokenizer, [prompt + text for text in texts], _text_limit(model),
                                "inputs")
    options = (("prompt_name", body.prompt_name),) if body.prompt_name is not None else ()
    items = [WithOptions({"text": text}, options) for text in texts]
    vectors = await submit(state.batchers[name], items, state.settings.request_timeout_s)
    check_results(vectors, "inputs", "embedded")
    return [_finished(v, body.dimensions, body.normalize) for v in vectors]


@router.post("/embed_sparse", response_model=list[list[t.TeiSparseValue]], responses=TEI_ERRORS)
@router.post("/v1/embed_sparse", response_model=list[list[t.TeiSparseValue]], responses=TEI_ERRORS)
async def embed_sparse(body: t.TeiEmbedSparseRequest, request: Request) -> JSONResponse:
    state = server_state(request)
    state.authorize(request)
    name = state.embedder(body.model)
    model = state.embedders[name]
    if not is_sparse_model(model):
        raise ApiError(400, f"model {name!r} is a dense embedder: /embed_sparse serves SparseEncoder models; POST "
                       "/embed for its vectors", "dense_model")
    texts = _checked_texts(state, body.texts(), "inputs")
    prompt = _prompt(model, body.prompt_name)
    check_direction(model, body.truncation_direction)
    if body.truncate is False:
        tokenizer = raw_tokenizer(state.raw_tokenizers, name, model)
        await run_in_threadpool(check_lengths, tokenizer, [prompt + text for text in texts], _text_limit(model),
                                "inputs")
    options = tuple((key, value) for key, value in (("prompt_name", body.prompt_name), ("task", body.task))
                    if value is not None)
    rows = await submit(state.batchers[name], [WithOptions(text, options) for text in texts],
                        state.settings.request_timeout_s)
    check_results(rows, "inputs", "embedded")
    # Built as TeiSparseValue's fields already: a SPLADE vector has hundreds of them, not validated one by one.
    return JSONResponse([[{"index": i, "value": v} for i, v in zip(row.indices, row.values, strict=True)]
                         for row in rows])


@router.post("/rerank", response_model=list[t.TeiRank] | t.InfinityRerankResponse, response_model_exclude_none=True,
             responses=TEI_ERRORS)
async def rerank(body: t.TeiRerankRequest | t.InfinityRerankRequest,
                 request: Request) -> list[t.TeiRank] | t.InfinityRerankResponse:
    state = server_state(request)
    state.authorize(request)
    name = state.reranker(body.model)
    model = state.rerankers[name]
    tei = isinstance(body, t.TeiRerankRequest)
    field = "texts" if tei else "documents"
    docs = _checked_texts(state, body.texts if tei else body.documents, field)
    check_text(body.query, "'query'")
    if isinstance(body, t.TeiRerankRequest):
        check_direction(model, body.truncation_direction)
        if body.truncate is False:
            tokenizer = raw_tokenizer(state.raw_tokenizers, name, model)
            await run_in_threadpool(check_lengths, tokenizer, [(body.query, d) for d in docs], model.max_length, field)
    options = RAW_SCORES if body.raw_scores else ()
    pairs = [WithOptions((body.query, d), options) for d in docs]
    scores = await submit(state.batchers[name], pairs, state.settings.request_timeout_s)
    check_results(scores, field, "scored")
    order = sorted(range(len(docs)), key=lambda i: scores[i], reverse=True)
    if isinstance(body, t.TeiRerankRequest):
        return [t.TeiRank(index=i, score=scores[i], text=docs[i] if body.return_text else None) for i in order]
    count = state.counters[name]
    tokens = await run_in_threadpool(lambda: count([body.query]) * len(docs) + count(docs))
    results = [t.InfinityRerankResult(index=i, relevance_score=scores[i],
                                      document=docs[i] if body.return_documents else None)
               for i in order[: body.top_n]]
    return t.InfinityRerankResponse(results=results, model=body.model or name, id=f"omnivec-{uuid.uuid4()}",
                                    usage=t.InfinityUsage(prompt_tokens=tokens, total_tokens=tokens))


@router.post("/tokenize", response_model=list[list[t.TeiToken]], responses=TEI_ERRORS)
async def tokenize(body: t.TeiTokenizeRequest, request: Request) -> JSONResponse:
    """Every token of each input (not truncated, as TEI), within ``MAX_TOKENIZE_CHARS`` characters a request."""
    state = server_state(request)
    state.authorize(request)
    name = state.any_model(body.model)
    model = state.models[name]
    texts = _checked_texts(state, body.texts(), "inputs")
    prompt = _prompt(model, body.prompt_name)
    size = sum(len(prompt) + len(text) for text in texts)
    if size > MAX_TOKENIZE_CHARS:
        raise ApiError(413, f"'inputs' hold {size} characters (prompts included), over this server's limit of "
                       f"{MAX_TOKENIZE_CHARS} a /tokenize request", "too_many_characters")
    tokenizer = raw_tokenizer(state.raw_tokenizers, name, model)
    tokens = await run_in_threadpool(lambda: [tokens_of(tokenizer, prompt + text, body.add_special_tokens)
                                              for text in texts])
    return JSONResponse(tokens)  # built as TeiToken's fields already: not validated again, token by token


def _checked_texts(state: ServerState, texts: list[str], field: str) -> list[str]:
    """``texts`` within the server's input count, none empty (TEI's 400 ``empty``) or invalid Unicode."""
    if not texts:
        raise ApiError(400, f"'{field}' cannot be empty", "empty")
    if len(texts) > state.settings.max_inputs:
        raise ApiError(413, f"{len(texts)} {field} exceed the limit of {state.settings.max_inputs}", "too_many_inputs")
    for i, text in enumerate(texts):
        if not text:
            raise ApiError(400, f"{field}[{i}] cannot be empty", "empty")
        check_text(text, f"{field}[{i}]")
    return texts


def _prompt(model: Any, prompt_name: str | None) -> str:
    """The prompt text ``encode`` puts in front of each input: ``prompt_name``'s, else the model's default one."""
    prompts = getattr(model, "prompts", None) or {}
    name = prompt_name if prompt_name is not None else getattr(model, "default_prompt_name", None)
    if name is None:
        return ""
    if name not in prompts:
        raise ApiError(400, f"prompt_name {name!r} is not among this model's prompts {sorted(prompts)}",
                       "unknown_prompt")
    return prompts[name]


def _text_limit(model: Any) -> int:
    """The model's text token limit, for ``truncate: false``; a model without one refuses that option (422)."""
    try:
        return int(model.max_seq_length)
    except Exception:
        raise ApiError(400, "truncate: false needs a model with one text token limit; this one has none (leave "
                       "truncate out)", "no_token_limit") from None


def _finished(vector: Any, dimensions: int | None, normalize: bool) -> list[float]:
    v = np.asarray(vector, dtype=np.float32)[:dimensions]
    if normalize:
        v = v / max(float(np.linalg.norm(v)), 1e-12)  # same eps as torch's normalize
    return v.tolist()
