"""HTTP server: OpenAI-compatible embeddings, Cohere/Jina-compatible rerank, models, health, Prometheus metrics.

Vectors are always L2-normalised (after ``dimensions`` truncation, as OpenAI does), so they equal
``Embedder.encode(..., truncate_dim=dimensions, normalize_embeddings=True)``. Plain strings are always text,
never read as a path or URL; media comes as content parts, and only ``data:`` URIs (plus http(s) URLs when
``allow_media_urls``) are read, never local files. ``/health`` and ``/metrics`` need no API key.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import hmac
import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from omnivec.errors import InputError
from omnivec.inputs.audio import load_audio
from omnivec.inputs.image import MAX_IMAGE_PIXELS, ImageTooLarge, load_image
from omnivec.inputs.sources import FetchPolicy
from omnivec.modules.transformer import CHARS_PER_TOKEN_BOUND
from omnivec.serve import schemas as s
from omnivec.serve.batcher import BatcherClosed, DynamicBatcher, QueueFull
from omnivec.serve.edge import BODY_TIMEOUT_S, Edge
from omnivec.serve.edge import error_response as _error
from omnivec.serve.errors import ApiError
from omnivec.serve.metrics import prometheus_text
from omnivec.serve.openapi import MODEL_ERRORS, declare_bearer, errors

MiB = 1024 * 1024
# Pixels all the images of one /v1/embeddings request may have together (each also has MAX_IMAGE_PIXELS): decoded
# images stay in memory until the request's batch has run, as RGB (3 bytes a pixel).
MAX_REQUEST_PIXELS = 200_000_000
logger = logging.getLogger(__name__)


def _server_error(request: Request, exc: Exception) -> JSONResponse:
    """A failure of the server or a model, not of the input: logged with its traceback, answered in JSON."""
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _error(500, f"internal error: {type(exc).__name__}: {exc}"[:500], "internal_error")


def _token_counter(model: Any) -> Callable[[list[str]], int]:
    """Counts text tokens for ``usage``, with its own copy of the model's tokenizer: the model thread changes its
    tokenizer's truncation settings on every call, and a tokenizer is not safe to share across threads."""
    tokenizer = getattr(model, "tokenizer", None)
    try:
        tokenizer = copy.deepcopy(tokenizer) if tokenizer is not None else None
    except Exception:  # usage is informational: a tokenizer that cannot be copied is not used
        tokenizer = None
    # Tokens the model reads: at most its limit. Texts are cut to a character bound first, as the model's own
    # tokenization does, so counting a 1 MB text costs no more than embedding it.
    limit = None
    with contextlib.suppress(Exception):  # a model without one text limit: counted whole
        limit = model.max_seq_length
    bound = limit * CHARS_PER_TOKEN_BOUND if isinstance(limit, int) else None
    options = {"truncation": True, "max_length": limit} if bound is not None else {}

    def count(texts: list[str]) -> int:
        texts = [t[:bound] for t in texts] if bound is not None else texts
        if tokenizer is not None and texts:
            with contextlib.suppress(Exception):  # e.g. a processor that needs images: fall back to words
                return sum(len(ids) for ids in tokenizer(texts, verbose=False, **options)["input_ids"])
        return sum(len(t.split()) for t in texts)

    return count


def check_image_url(url: str, what: str, policy: FetchPolicy) -> None:
    """Refuse (400) what the server never reads, a local path or file: URL, and http(s) URLs unless allowed."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("http", "https") and not policy.allow_remote:
        raise ApiError(400, f"{what}: remote image URLs are disabled on this server; send a data: URI")
    if scheme not in ("data", "http", "https"):
        raise ApiError(400, f"{what} must be a data: URI" + (" or an http(s) URL" if policy.allow_remote else ""))


def _decode_part(part: Any, index: int, model: Any, policy: FetchPolicy, max_pixels: int) -> tuple[str, Any]:
    if isinstance(part, s.TextPart):
        s.check_text(part.text, f"input[{index}] text")
        return "text", part.text
    if isinstance(part, s.ImagePart):
        url = part.image_url.url
        check_image_url(url, f"input[{index}] image_url.url", policy)
        # Decoded as encode() decodes the same bytes (reduced toward the model's input side when far larger, see
        # Embedder.image_side), so a vector equals encode() of them; the pixel limit is checked first.
        return "image", load_image(url, index=index, policy=policy, max_pixels=max_pixels,
                                   min_side=getattr(model, "image_side", None))
    try:
        raw = base64.b64decode(part.input_audio.data, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"input[{index}]: input_audio.data is not valid base64", "invalid_base64") from None
    if len(raw) > policy.max_bytes:
        raise ApiError(413, f"input[{index}]: audio of {len(raw)} bytes is over this server's {policy.max_bytes}-byte "
                       "limit per media item", "media_too_large")
    rate = model.sampling_rate  # the model's rate, so encode() has nothing left to resample
    if not rate:
        raise ApiError(400, f"input[{index}]: this model does not take audio")
    return "audio", {"array": load_audio(raw, index=index, sampling_rate=rate), "sampling_rate": rate}


def _decode_items(items: list[Any], model: Any, policy: FetchPolicy, count_tokens: Callable[[list[str]], int],
                  pixel_limits: tuple[int, int]) -> tuple[list[Any], int]:
    """Inputs ready for ``encode`` and their text token count; runs in a worker thread (decoding is CPU work).
    ``pixel_limits``: (per image, per request)."""
    decoded, texts = [], []
    per_image, pixels_left = pixel_limits
    for i, item in enumerate(items):
        parts = item if isinstance(item, list) else [item]
        if not parts:
            raise ApiError(400, f"input[{i}] is an empty list of content parts")
        fused: dict[str, Any] = {}
        for part in parts:
            try:
                if isinstance(part, str):
                    s.check_text(part, f"input[{i}]")
                    kind, value = "text", part
                else:
                    kind, value = _decode_part(part, i, model, policy, min(per_image, pixels_left))
            except ApiError:
                raise
            except ImageTooLarge as exc:
                raise ApiError(413, f"input[{i}]: {exc} This server takes at most {per_image:,} pixels an image and "
                               f"{pixel_limits[1]:,} a request.", "image_too_large") from None
            except Exception as exc:  # whatever a decoder raises on these bytes, the input is at fault
                raise ApiError(400, f"input[{i}] cannot be decoded: {exc}", "invalid_input") from None
            if kind in fused:
                raise ApiError(400, f"input[{i}] has two {kind} parts; an input takes at most one of each kind")
            if not model.supports(kind):
                raise ApiError(400, f"input[{i}]: this model takes {model.modalities}, not {kind}")
            fused[kind] = value
            texts += [value] if kind == "text" else []
            pixels_left -= value.size[0] * value.size[1] if kind == "image" else 0
        decoded.append(fused)  # {"text": s} is read as text even when s looks like a URL or a path
    return decoded, count_tokens(texts)


def _embed_batch(model: Any) -> Callable[[list[Any]], list[Any]]:
    def run(items: list[Any]) -> list[Any]:
        try:
            return list(model.encode(items, batch_size=len(items), convert_to_numpy=True))
        except Exception as exc:
            if len(items) == 1:
                return [exc]  # the handler answers 400 for bad input, 500 for a model failure
            # One input must not fail the requests sharing its batch: redo them alone.
            return [run([item])[0] for item in items]

    return run


def _rerank_batch(model: Any) -> Callable[[list[Any]], list[Any]]:
    def run(pairs: list[Any]) -> list[Any]:
        try:
            return [float(x) for x in np.asarray(model.predict(pairs, batch_size=len(pairs))).reshape(-1)]
        except Exception as exc:
            if len(pairs) == 1:
                return [exc]  # the handler answers 400 for bad input, 500 for a model failure
            # One pair must not fail the requests sharing its batch: redo them alone.
            return [run([pair])[0] for pair in pairs]

    return run


async def _submit(batcher: DynamicBatcher, items: list[Any], timeout: float) -> list[Any]:
    if len(items) > batcher.max_queue:
        raise ApiError(413, f"{len(items)} inputs exceed this server's queue of {batcher.max_queue}", "too_many_inputs")
    try:
        return await batcher.submit(items, timeout=timeout)
    except QueueFull as exc:
        wait = str(max(1, math.ceil(exc.retry_after)))
        raise ApiError(429, f"server busy: retry after {wait} s", "queue_full", {"Retry-After": wait}) from None
    except asyncio.TimeoutError:
        raise ApiError(504, f"the model did not answer within {timeout} s", "timeout") from None
    except BatcherClosed:
        raise ApiError(503, "the server is shutting down", "unavailable") from None
    except (InputError, ValueError) as exc:
        raise ApiError(400, str(exc), "invalid_input") from None


def create_app(
    embedders: dict[str, Any],
    rerankers: dict[str, Any],
    *,
    max_batch_size: int = 32,
    max_wait_ms: float = 5,
    max_queue: int | None = None,
    batching: bool = True,
    max_inputs: int = 2048,
    max_body_bytes: int = 16 * MiB,
    body_timeout_s: float = BODY_TIMEOUT_S,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
    max_request_pixels: int = MAX_REQUEST_PIXELS,
    request_timeout_s: float = 60,
    api_key: str | None = None,
    allow_media_urls: bool = False,
    max_media_bytes: int = 16 * MiB,
    media_timeout_s: float = 10,
    cors_origins: list[str] | None = None,
    kb: Any = None,
) -> FastAPI:
    """A FastAPI app serving ``embedders`` and ``rerankers`` (name -> loaded model), one batcher per model, and
    with ``kb`` (an ``omnivec.kb.search.Searcher``) ``POST /v1/search`` over that knowledge base and its search page
    at ``/``. Media items (``data:`` URIs, and http(s) URLs when ``allow_media_urls``) are limited to
    ``max_media_bytes``; a URL must download within ``media_timeout_s``. ``cors_origins``: origins whose pages may
    call the API from a browser (``["*"]`` for any). ``max_queue`` (items waiting per model) defaults to twice
    ``max_inputs``, so a request of the largest allowed size always fits an empty queue. A body must arrive within
    ``body_timeout_s`` (else 408); images are limited to ``max_image_pixels`` each and ``max_request_pixels`` a request
    (else 413)."""
    if not body_timeout_s > 0:
        raise ValueError(f"body_timeout_s must be > 0, got {body_timeout_s}")
    if set(embedders) & set(rerankers):
        raise ValueError(f"model names used twice: {sorted(set(embedders) & set(rerankers))}")
    for name, model in rerankers.items():
        if getattr(model, "num_labels", 1) != 1:
            raise ValueError(f"reranker {name!r} has {model.num_labels} labels; rerank needs a one-label model")
    max_queue = 2 * max_inputs if max_queue is None else max_queue
    options = dict(max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, max_queue=max_queue, batching=batching)

    def new_batchers() -> dict[str, DynamicBatcher]:
        fresh = {name: DynamicBatcher(_embed_batch(m), name=name, **options) for name, m in embedders.items()}
        return fresh | {name: DynamicBatcher(_rerank_batch(m), name=name, **options) for name, m in rerankers.items()}

    batchers = new_batchers()
    counters = {name: _token_counter(model) for name, model in {**embedders, **rerankers}.items()}
    policy = FetchPolicy(allow_remote=allow_media_urls, max_bytes=max_media_bytes, timeout_s=media_timeout_s)
    counts: dict[tuple[str, int], int] = {}  # (endpoint, status) -> requests
    latency: dict[str, list[float]] = {}  # endpoint -> [seconds, requests]

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        if any(batcher.closed for batcher in batchers.values()):
            batchers.update(new_batchers())  # the app is started again (tests do): closed batchers stay closed
        yield
        for batcher in batchers.values():
            await batcher.close()

    app = FastAPI(title="omnivec", lifespan=lifespan)
    paths = {"/v1/embeddings", "/v1/rerank", "/v1/models", "/health", "/metrics", "/v1/search", "/v1/kb", "/"}
    app.add_middleware(Edge, max_body_bytes=max_body_bytes, body_timeout_s=body_timeout_s, counts=counts,
                       latency=latency, paths=paths)
    if cors_origins:  # added last, so it runs first: preflights and error replies get CORS headers too
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)
    app.add_exception_handler(ApiError, lambda _, e: _error(e.status, e.message, e.code, e.headers))
    app.add_exception_handler(Exception, _server_error)
    app.add_exception_handler(HTTPException, lambda _, e: _error(e.status_code, str(e.detail), None, e.headers))
    app.add_exception_handler(RequestValidationError,
                              lambda _, e: _error(*s.validation_message(e.errors()), "invalid_request"))

    def authorize(request: Request) -> None:
        if api_key is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), api_key.encode()):
            raise ApiError(401, "missing or wrong API key (send 'Authorization: Bearer <key>')", "invalid_api_key",
                           {"WWW-Authenticate": "Bearer"})

    def lookup(pool: dict[str, Any], name: str, kind: str) -> Any:
        if name not in pool:
            raise ApiError(404, f"{kind} model {name!r} not found; available: {sorted(pool)}", "model_not_found")
        return pool[name]

    @app.post("/v1/embeddings", response_model=s.EmbeddingResponse, responses=MODEL_ERRORS)
    async def embeddings(body: s.EmbeddingRequest, request: Request) -> s.EmbeddingResponse:
        authorize(request)
        model = lookup(embedders, body.model, "embedding")
        items = body.items()
        if not items:
            raise ApiError(400, "'input' is empty")
        if len(items) > max_inputs:
            raise ApiError(413, f"{len(items)} inputs exceed the limit of {max_inputs}", "too_many_inputs")
        dim = model.get_sentence_embedding_dimension()
        if body.dimensions is not None and dim is not None and body.dimensions > dim:
            raise ApiError(400, f"dimensions={body.dimensions} exceeds the model's {dim}")
        decoded, tokens = await run_in_threadpool(_decode_items, items, model, policy, counters[body.model],
                                                  (max_image_pixels, max_request_pixels))
        vectors = await _submit(batchers[body.model], decoded, request_timeout_s)
        data = []
        for i, vector in enumerate(vectors):
            if isinstance(vector, (InputError, ValueError)):
                raise ApiError(400, f"input[{i}] cannot be embedded: {vector}", "invalid_input")
            if isinstance(vector, Exception):
                raise vector  # the model failed on valid input: a 500, logged
            v = np.asarray(vector, dtype=np.float32)[: body.dimensions]
            v = v / max(float(np.linalg.norm(v)), 1e-12)  # same eps as torch's normalize
            data.append(s.Embedding(index=i, embedding=s.vector_payload(v, body.encoding_format)))
        return s.EmbeddingResponse(data=data, model=body.model, usage=s.EmbeddingUsage(prompt_tokens=tokens,
                                                                                      total_tokens=tokens))

    @app.post("/v1/rerank", response_model=s.RerankResponse, response_model_exclude_none=True, responses=MODEL_ERRORS)
    async def rerank(body: s.RerankRequest, request: Request) -> s.RerankResponse:
        authorize(request)
        lookup(rerankers, body.model, "rerank")
        docs = body.texts()
        if len(docs) > max_inputs:
            raise ApiError(413, f"{len(docs)} documents exceed the limit of {max_inputs}", "too_many_inputs")
        s.check_text(body.query, "'query'")
        for i, doc in enumerate(docs):
            s.check_text(doc, f"documents[{i}]")
        scores = await _submit(batchers[body.model], [(body.query, d) for d in docs], request_timeout_s) if docs else []
        for i, score in enumerate(scores):
            if isinstance(score, (InputError, ValueError)):
                raise ApiError(400, f"documents[{i}] cannot be scored: {score}", "invalid_input")
            if isinstance(score, Exception):
                raise score  # the model failed on valid input: a 500, logged
        order = sorted(range(len(docs)), key=lambda i: scores[i], reverse=True)[: body.top_n]
        results = [s.RerankResult(index=i, relevance_score=scores[i],
                                  document=s.RerankDocument(text=docs[i]) if body.return_documents else None)
                   for i in order]
        count = counters[body.model]  # the query once (a long one is costly to tokenize), counted per document
        tokens = await run_in_threadpool(lambda: count([body.query]) * len(docs) + count(docs))
        return s.RerankResponse(results=results, model=body.model, usage=s.RerankUsage(total_tokens=tokens),
                                meta=s.RerankMeta(billed_units=s.BilledUnits(search_units=1)))

    if kb is not None:
        from omnivec.serve.search_routes import search_router

        app.include_router(search_router(kb, authorize, api_key, policy, max_image_pixels))
    else:
        @app.get("/", include_in_schema=False)
        async def root() -> dict[str, Any]:
            return {"service": "omnivec", "models": [*embedders, *rerankers], "api_docs": "/docs",
                    "search_page": "not served: start the server with --kb DIR to search a knowledge base here"}

    @app.get("/v1/models", response_model=s.ModelList, responses=errors(401))
    async def models(request: Request) -> s.ModelList:
        authorize(request)
        return s.ModelList(data=[s.ModelCard(id=name) for name in [*embedders, *rerankers]])

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": [*embedders, *rerankers]}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> str:
        stats = {name: batcher.stats for name, batcher in batchers.items()}
        return prometheus_text(counts, latency, stats, max_batch_size)

    if api_key is not None:
        declare_bearer(app, {"/", "/health", "/metrics"})
    return app
