"""HTTP server: OpenAI-compatible embeddings, Cohere/Jina-compatible rerank, text-embeddings-inference's and
infinity's routes, models, health, Prometheus metrics, and with a KB its search, its files and its search page.

``create_app`` puts a ``ServerState`` on ``app.state`` and adds one router per endpoint group (``routes/``,
``search_routes``, ``kb_files``); the ASGI edge (``edge``) bounds bodies before anything parses them. Only
``data:`` URIs (plus http(s) URLs when ``allow_media_urls``) are read, never local files. ``/health`` and
``/metrics`` need no API key.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from omnivec.inputs.image import MAX_IMAGE_PIXELS
from omnivec.serve import schemas as s
from omnivec.serve.edge import BODY_TIMEOUT_S, Edge
from omnivec.serve.edge import error_response as _error
from omnivec.serve.errors import ApiError
from omnivec.serve.openapi import declare_bearer
from omnivec.serve.routes import embeddings, rerank, system, tei
from omnivec.serve.settings import MAX_REQUEST_PIXELS, MiB, ServerSettings
from omnivec.serve.state import ServerState

logger = logging.getLogger(__name__)
# Endpoints counted by name in /metrics; any other path is counted as "other", so the label set stays bounded.
METRIC_PATHS = frozenset({"/v1/embeddings", "/v1/rerank", "/v1/models", "/health", "/metrics", "/v1/search", "/v1/kb",
                          "/", "/embed", "/rerank", "/tokenize", "/embeddings", "/models"})
OPEN_PATHS = {"/", "/health", "/metrics"}  # no API key needed, even where the server has one


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
    aliases: dict[str, str] | None = None,
) -> FastAPI:
    """A FastAPI app serving ``embedders`` and ``rerankers`` (name -> loaded model), one batcher per model, and
    with ``kb`` (an ``omnivec.kb.search.Searcher``) ``POST /v1/search`` over that knowledge base and its search page
    at ``/``. Media items (``data:`` URIs, and http(s) URLs when ``allow_media_urls``) are limited to
    ``max_media_bytes``; a URL must download within ``media_timeout_s``. ``cors_origins``: origins whose pages may
    call the API from a browser (``["*"]`` for any). ``max_queue`` (items waiting per model) defaults to twice
    ``max_inputs``, so a request of the largest allowed size always fits an empty queue. A body must arrive within
    ``body_timeout_s`` (else 408); images are limited to ``max_image_pixels`` each and ``max_request_pixels`` a request
    (else 413). ``aliases``: other names of served models (alias -> name), accepted by every route."""
    settings = ServerSettings(
        max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, max_queue=max_queue, batching=batching,
        max_inputs=max_inputs, max_body_bytes=max_body_bytes, body_timeout_s=body_timeout_s,
        max_image_pixels=max_image_pixels, max_request_pixels=max_request_pixels, request_timeout_s=request_timeout_s,
        allow_media_urls=allow_media_urls, max_media_bytes=max_media_bytes, media_timeout_s=media_timeout_s,
        cors_origins=tuple(cors_origins or ()))
    state = ServerState.build(embedders, rerankers, settings, api_key, kb, aliases)
    app = FastAPI(title="omnivec", lifespan=_lifespan)
    app.state.omnivec = state
    _add_middleware(app, state)
    _add_error_handlers(app)
    _add_routes(app, state)
    if api_key is not None:
        declare_bearer(app, OPEN_PATHS)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app.state.omnivec
    assert isinstance(state, ServerState), "create_app sets app.state.omnivec"
    if any(batcher.closed for batcher in state.batchers.values()):
        state.batchers.update(state.new_batchers())  # the app is started again (tests do): closed batchers stay closed
    yield
    for batcher in state.batchers.values():
        await batcher.close()


def _add_middleware(app: FastAPI, state: ServerState) -> None:
    settings = state.settings
    app.add_middleware(Edge, max_body_bytes=settings.max_body_bytes, body_timeout_s=settings.body_timeout_s,
                       counts=state.stats.counts, latency=state.stats.latency, paths=set(METRIC_PATHS))
    if settings.cors_origins:  # added last, so it runs first: preflights and error replies get CORS headers too
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)


def _add_routes(app: FastAPI, state: ServerState) -> None:
    """In the order the OpenAPI spec lists them: models' endpoints, the KB's, then models, health and metrics."""
    app.include_router(embeddings.router)
    app.include_router(rerank.router)
    app.include_router(tei.router)
    if state.kb is not None:
        from omnivec.serve import kb_files, search_routes

        app.include_router(kb_files.router)
        app.include_router(search_routes.router)
    else:
        app.include_router(system.root_router)
    app.include_router(system.router)


def _add_error_handlers(app: FastAPI) -> None:
    """Every reply is JSON in OpenAI's error shape (TEI's on TEI's paths): refusals with their status, anything else
    a logged 500 (TEI's 424 on its paths)."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(Exception, _server_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)


def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError), "registered for ApiError"
    return _error(exc.status, exc.message, exc.code, exc.headers, request.url.path)


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException), "registered for HTTPException"
    return _error(exc.status_code, str(exc.detail), None, exc.headers, request.url.path)


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError), "registered for RequestValidationError"
    return _error(*s.validation_message(list(exc.errors())), "invalid_request", path=request.url.path)


def _server_error(request: Request, exc: Exception) -> JSONResponse:
    """A failure of the server or a model, not of the input: logged with its traceback, answered in JSON."""
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _error(500, f"internal error: {type(exc).__name__}: {exc}"[:500], "internal_error", path=request.url.path)
