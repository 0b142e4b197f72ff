"""What the routes share, kept on ``app.state``: the models and their batchers, the settings, the API key, the KB
search and the request counters. Routes reach it through ``server_state(request)``; nothing closes over locals."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request

from omnivec.errors import ConfigError
from omnivec.serve.batcher import DynamicBatcher
from omnivec.serve.errors import ApiError
from omnivec.serve.model_calls import embed_batch, is_sparse_model, rerank_batch, sparse_embed_batch
from omnivec.serve.model_names import INFINITY_UNNAMED
from omnivec.serve.settings import ServerSettings
from omnivec.serve.usage import token_counter

if TYPE_CHECKING:  # kb_files' routes read this state
    from omnivec.serve.kb_files import KBFiles


@dataclass
class KBAccess:
    """A KB served over HTTP: its searcher (``omnivec.kb.search.Searcher``), the files its results link to, and the
    locks a search holds: searches run one at a time (the searcher's models are not thread-safe), and a model the
    server also serves is used by one thread at a time (its batcher's lock)."""

    searcher: Any
    files: KBFiles
    model_locks: tuple[threading.Lock, ...] = ()
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class RequestStats:
    """Counters the ASGI edge keeps for ``/metrics``."""

    counts: dict[tuple[str, int], int] = field(default_factory=dict)  # (endpoint, status) -> requests
    latency: dict[str, list[float]] = field(default_factory=dict)  # endpoint -> [seconds, requests]


@dataclass
class ServerState:
    """Models by name (``embedders``, SparseEncoders among them; ``rerankers``), one batcher and one token counter per model, one lock per
    model instance (a model may be served under two names, or searched by the KB too)."""

    embedders: dict[str, Any]
    rerankers: dict[str, Any]
    settings: ServerSettings
    api_key: str | None = None
    kb: KBAccess | None = None
    stats: RequestStats = field(default_factory=RequestStats)
    batchers: dict[str, DynamicBatcher] = field(default_factory=dict)
    counters: dict[str, Callable[[list[str]], int]] = field(default_factory=dict)
    model_locks: dict[int, threading.Lock] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # other name -> the name a model is keyed by
    raw_tokenizers: dict[str, Any] = field(default_factory=dict)  # name -> its tokenizer for /tokenize, made lazily

    @classmethod
    def build(cls, embedders: dict[str, Any], rerankers: dict[str, Any], settings: ServerSettings,
              api_key: str | None = None, searcher: Any = None, aliases: dict[str, str] | None = None) -> ServerState:
        """The state for these models; ``searcher``: a KB's, for ``/v1/search``; ``aliases``: other names of
        served models (alias -> name)."""
        if set(embedders) & set(rerankers):
            raise ConfigError(f"model names used twice: {sorted(set(embedders) & set(rerankers))}")
        aliases = dict(aliases or {})
        served = {*embedders, *rerankers}
        for alias, name in aliases.items():
            if alias in served or name not in served:
                raise ConfigError(f"alias {alias!r} -> {name!r}: an alias must name a served model and not be one")
        for name, model in rerankers.items():
            if getattr(model, "num_labels", 1) != 1:
                raise ConfigError(f"reranker {name!r} has {model.num_labels} labels; rerank needs a one-label model")
        state = cls(embedders, rerankers, settings, api_key, aliases=aliases)
        state.model_locks = {id(model): threading.Lock() for model in state.models.values()}
        state.batchers = state.new_batchers()
        state.counters = {name: token_counter(model) for name, model in state.models.items()}
        if searcher is not None:
            from omnivec.serve.kb_files import KBFiles

            state.kb = KBAccess(searcher, KBFiles(searcher.kb_dir, api_key), state.locks_of(_searcher_models(searcher)))
        return state

    @property
    def models(self) -> dict[str, Any]:
        """Every model served, by name: embedders first."""
        return {**self.embedders, **self.rerankers}

    def new_batchers(self) -> dict[str, DynamicBatcher]:
        """Fresh batchers for every model (closed ones cannot be started again)."""
        fresh = {name: self._batcher((sparse_embed_batch if is_sparse_model(m) else embed_batch)(
                     m, self.model_locks[id(m)]), name) for name, m in self.embedders.items()}
        return fresh | {name: self._batcher(rerank_batch(m, self.model_locks[id(m)]), name)
                        for name, m in self.rerankers.items()}

    def _batcher(self, run: Callable[[list[Any]], list[Any]], name: str) -> DynamicBatcher:
        settings = self.settings
        return DynamicBatcher(run, max_batch_size=settings.max_batch_size, max_wait_ms=settings.max_wait_ms,
                              max_queue=settings.queue_size, batching=settings.batching, name=name)

    def locks_of(self, models: list[Any]) -> tuple[threading.Lock, ...]:
        """The locks of those of ``models`` this server also serves, each once, in one order for every caller."""
        ids = sorted({id(model) for model in models if id(model) in self.model_locks})
        return tuple(self.model_locks[i] for i in ids)

    def authorize(self, request: Request) -> None:
        """Refuse (401) a request without the server's API key, when it has one."""
        if self.api_key is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.api_key.encode()):
            raise ApiError(401, "missing or wrong API key (send 'Authorization: Bearer <key>')", "invalid_api_key",
                           {"WWW-Authenticate": "Bearer"})

    def embedder(self, name: str | None) -> str:
        """The key of the embedder a request names (an alias resolved); ``None``: the only one served."""
        return self._lookup(self.embedders, name, "embedding")

    def reranker(self, name: str | None) -> str:
        """The key of the reranker a request names (an alias resolved); ``None``: the only one served."""
        return self._lookup(self.rerankers, name, "rerank")

    def any_model(self, name: str | None) -> str:
        """The key of the model (of either kind) a request names; ``None``: the only one served."""
        return self._lookup(self.models, name, "")

    def names_of(self, name: str) -> list[str]:
        """A served model's name and then its aliases, as ``/v1/models`` lists them."""
        return [name, *(alias for alias, target in self.aliases.items() if target == name)]

    def _lookup(self, pool: dict[str, Any], name: str | None, kind: str) -> str:
        if name is None or name == INFINITY_UNNAMED:
            if len(pool) == 1:
                return next(iter(pool))
            raise ApiError(422, f"'model' is required: this server serves {len(pool)} {kind + ' ' if kind else ''}"
                           f"models, {sorted(pool)}", "model_required")
        key = self.aliases.get(name, name)
        if key not in pool:
            known = sorted(n for model in pool for n in self.names_of(model))
            raise ApiError(404, f"{kind + ' ' if kind else ''}model {name!r} not found; available: {known}",
                           "model_not_found")
        return key


def _searcher_models(searcher: Any) -> list[Any]:
    """The models a KB search calls: each space's, and the reranker's."""
    models = [space.model for space in searcher.spaces]
    return models + ([searcher.reranker] if searcher.reranker is not None else [])


def server_state(request: Request) -> ServerState:
    """The state of the app serving ``request`` (``create_app`` puts it on ``app.state``)."""
    state = request.app.state.omnivec
    assert isinstance(state, ServerState), "create_app sets app.state.omnivec"
    return state


def kb_access(request: Request) -> tuple[ServerState, KBAccess]:
    """The state and its KB, for the KB routes (``create_app`` adds them only with a KB)."""
    state = server_state(request)
    assert state.kb is not None, "the KB routes are added only with a KB"
    return state, state.kb
