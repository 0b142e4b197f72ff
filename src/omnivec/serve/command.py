"""``omnivec serve``: load the models named on the command line and run the HTTP server with uvicorn."""

from __future__ import annotations

import logging
from typing import Any

from omnivec.errors import InputError
from omnivec.loading.options import BackendName

logger = logging.getLogger(__name__)

# Open connections (and requests in progress) past which uvicorn answers 503 at once: slow or idle clients cannot
# take every file descriptor and starve real requests.
MAX_CONNECTIONS = 512
# Seconds an idle keep-alive connection stays open after a response (uvicorn's default); before its first request, and
# while a request's headers trickle in, the header deadline (serve/connection.py, HEADER_TIMEOUT_S) applies instead.
KEEP_ALIVE_S = 5


def parse_models(specs: list[str]) -> dict[str, str]:
    """``NAME=PATH_OR_ID`` or a bare ``PATH_OR_ID`` (served under its own name: a Hub id as given, a folder's name),
    as name -> source."""
    from omnivec.serve.model_names import parse_specs

    return {model.name: model.source for model in parse_specs(specs)}


def model_aliases(models: list[str], rerankers: list[str]) -> dict[str, str]:
    """The other names the command line's models answer to (alias -> name), see ``serve.model_names``."""
    from omnivec.loading.defaults import DEFAULT_TEXT_MODEL
    from omnivec.serve.model_names import alias_map, parse_specs

    return alias_map(parse_specs(models or [DEFAULT_TEXT_MODEL]), parse_specs(rerankers))


def _header_timeout(value: float | None) -> float:
    from omnivec.serve.connection import HEADER_TIMEOUT_S

    value = HEADER_TIMEOUT_S if value is None else value
    if not 0 < value < float("inf"):
        raise InputError(f"--header-timeout must be a number of seconds > 0, got {value}.")
    return value


def uvicorn_config(app: Any, host: str, port: int, max_connections: int = MAX_CONNECTIONS,
                   log_level: str = "info", header_timeout_s: float | None = None) -> Any:
    """uvicorn's settings for ``app``: the connection cap, the request-header deadline and keep-alive limit (the
    body deadline is the app's)."""
    import uvicorn

    from omnivec.serve.connection import header_deadline_protocol

    if max_connections < 1:
        raise InputError(f"--max-connections must be >= 1, got {max_connections}.")
    header_timeout_s = _header_timeout(header_timeout_s)
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, limit_concurrency=max_connections,
                          timeout_keep_alive=KEEP_ALIVE_S, http=header_deadline_protocol(header_timeout_s))


def load_models(models: list[str], rerankers: list[str], kb: str | None = None, kb_config: str | None = None,
                backend: BackendName | None = None) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """The embedders and rerankers named on the command line (name -> model) and, with ``kb``, the KB's searcher.
    A model the KB's config names too (same folder, Hub id and backend) is loaded once and shared. ``backend``:
    every model's, the KB's too (default: torch for the command line's, the KB config's for its own)."""
    from omnivec import CrossEncoder, Embedder
    from omnivec.loading.defaults import DEFAULT_TEXT_MODEL
    from omnivec.models.cache import ModelCache
    from omnivec.models.sparse_encoder import SparseEncoder

    embedder_sources = parse_models(models or [DEFAULT_TEXT_MODEL])
    reranker_sources = parse_models(rerankers)
    clash = sorted(set(embedder_sources) & set(reranker_sources))
    if clash:
        raise InputError(f"model name(s) {clash} used for both an embedder and a reranker.")
    cache = ModelCache()
    chosen: BackendName = backend or "torch"
    embedders: dict[str, Any] = {}
    for name, src in embedder_sources.items():  # a SparseEncoder folder is served as one (/embed_sparse)
        if saved_model_type(src) == SparseEncoder.model_type:
            embedders[name] = cache.get("sparse-encoder", src, lambda src=src: SparseEncoder(src, backend=chosen), chosen)
        else:
            embedders[name] = cache.get("embedder", src, lambda src=src: Embedder(src, backend=chosen), chosen)
    reranker_models = {name: cache.get("cross-encoder", src, lambda src=src: CrossEncoder(src, backend=chosen), chosen)
                       for name, src in reranker_sources.items()}
    searcher = None
    if kb is not None:  # POST /v1/search over it, with the KB config's own models and reranker
        from omnivec.kb.search import Searcher
        from omnivec.kb.settings import kb_settings

        kb_dir, config = kb_settings(kb, kb_config, existing=True, backend=backend)
        searcher = Searcher(kb_dir, config, reranker=config.reranker, models=cache)
    return embedders, reranker_models, searcher


def saved_model_type(source: str) -> str | None:
    """The ``model_type`` a sentence-transformers folder (local, or a Hub id) was saved as: ``SparseEncoder``,
    ``SentenceTransformer``...; None when there is none to read (the model class's own load then says why)."""
    import json

    from omnivec.loading.hub import HubOptions, hub_id_for, resolve_model_dir

    try:
        folder = resolve_model_dir(hub_id_for(source, "sentence-transformers"), HubOptions())
        config = json.loads((folder / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    except Exception:  # missing, unreadable or not JSON: not this function's to report
        return None
    return config.get("model_type") if isinstance(config, dict) else None


def run_server(models: list[str], rerankers: list[str], host: str, port: int, api_key: str | None,
               max_batch_size: int, max_wait_ms: float, batching: bool, allow_media_urls: bool,
               kb: str | None = None, kb_config: str | None = None, cors_origins: list[str] | None = None,
               max_connections: int = MAX_CONNECTIONS, body_timeout_s: float | None = None,
               header_timeout_s: float | None = None, backend: BackendName | None = None) -> int:
    import uvicorn

    header_timeout_s = _header_timeout(header_timeout_s)  # checked before the models load

    from omnivec.serve.app import create_app
    from omnivec.serve.edge import BODY_TIMEOUT_S

    body_timeout_s = BODY_TIMEOUT_S if body_timeout_s is None else body_timeout_s
    if not body_timeout_s > 0:
        raise InputError(f"--body-timeout must be a number of seconds > 0, got {body_timeout_s}.")
    embedders, reranker_models, searcher = load_models(models, rerankers, kb, kb_config, backend)
    app = create_app(embedders, reranker_models, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
                     batching=batching, aliases=model_aliases(models, rerankers), api_key=api_key, allow_media_urls=allow_media_urls, kb=searcher,
                     cors_origins=cors_origins, body_timeout_s=body_timeout_s)
    logger.info("Serving %s on http://%s:%d", ", ".join([*embedders, *reranker_models]) or "no models", host, port)
    if searcher is not None:
        logger.info("Search page: http://%s:%d/", host, port)
    uvicorn.Server(uvicorn_config(app, host, port, max_connections, header_timeout_s=header_timeout_s)).run()
    return 0
