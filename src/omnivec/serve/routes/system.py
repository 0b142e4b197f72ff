"""What the server serves and how it is doing: ``/v1/models``, ``/health`` and ``/metrics`` (Prometheus text; these
two need no API key), and ``/`` when no KB is served (the search page takes ``/`` otherwise)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from omnivec.serve import schemas as s
from omnivec.serve.metrics import prometheus_text
from omnivec.serve.openapi import errors
from omnivec.serve.state import server_state

router = APIRouter()
root_router = APIRouter()  # added only without a KB


@root_router.get("/", include_in_schema=False)
async def root(request: Request) -> dict[str, Any]:
    return {"service": "omnivec", "models": list(server_state(request).models), "api_docs": "/docs",
            "search_page": "not served: start the server with --kb DIR to search a knowledge base here"}


@router.get("/v1/models", response_model=s.ModelList, responses=errors(401))
@router.get("/models", response_model=s.ModelList, include_in_schema=False)  # infinity's path
async def models(request: Request) -> s.ModelList:
    state = server_state(request)
    state.authorize(request)
    return s.ModelList(data=[s.ModelCard(id=alias, root=name) for name in state.models for alias in state.names_of(name)])


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    return {"status": "ok", "models": list(server_state(request).models)}


@router.get("/metrics", response_class=PlainTextResponse)
async def prometheus(request: Request) -> str:
    state = server_state(request)
    stats = {name: batcher.stats for name, batcher in state.batchers.items()}
    return prometheus_text(state.stats.counts, state.stats.latency, stats, state.settings.max_batch_size)
