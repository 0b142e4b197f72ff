"""The knowledge base over HTTP: ``POST /v1/search``, ``GET /v1/kb`` (what it holds and takes) and the search page
at ``/``; ``kb_files`` serves the thumbnails, files and page images results link to."""

from __future__ import annotations

import contextlib
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from omnivec.errors import InputError
from omnivec.kb.fusion import MAX_RRF_K
from omnivec.serve.errors import ApiError
from omnivec.serve.kb_files import KBFiles
from omnivec.serve.openapi import errors
from omnivec.serve.request_decoding import check_text, decode_query_image
from omnivec.serve.state import KBAccess, ServerState, kb_access

if TYPE_CHECKING:
    from omnivec.kb.search import Result

# Filter sizes: a path longer than any file system allows, and lists longer than the kinds there are, are refused
# (422) before they reach the store's query language.
MAX_PATH_PREFIX_CHARS = 4096
MAX_FILTER_VALUES = 64
MAX_FILTER_VALUE_CHARS = 64
MAX_SPACES = 8  # names in spaces / weights: more than a KB has
_Value = Annotated[str, Field(max_length=MAX_FILTER_VALUE_CHARS)]


class SearchFilters(BaseModel):
    """An empty ``modalities`` or ``file_types`` list matches nothing, as ``kb.stores.base.Filter``'s empty tuple."""

    model_config = ConfigDict(extra="forbid")
    path_prefix: str | None = Field(None, max_length=MAX_PATH_PREFIX_CHARS)
    modalities: list[_Value] | None = Field(None, max_length=MAX_FILTER_VALUES)
    file_types: list[_Value] | None = Field(None, max_length=MAX_FILTER_VALUES)


class SearchRequest(BaseModel):
    """A text query, an image (``data:`` URI; http(s) only when the server allows media URLs), or both."""

    model_config = ConfigDict(extra="forbid")
    query: str | None = None
    image: str | None = None
    k: int = Field(10, ge=1, le=200)
    rerank: bool = True
    fusion: str | None = Field(None, pattern="^(convex|rrf|score)$", description="default: the KB config's")
    rrf_k: int | None = Field(None, ge=0, le=MAX_RRF_K)
    weights: dict[_Value, Annotated[float, Field(ge=0, allow_inf_nan=False)]] | None = Field(
        None, max_length=MAX_SPACES, description="per-space fusion weights, over the KB config's")
    spaces: list[_Value] | None = Field(None, min_length=1, max_length=MAX_SPACES,
                                        description="search only these spaces (default: all that take the query)")
    filters: SearchFilters | None = None


router = APIRouter()


@router.post("/v1/search", responses=errors(400, 401, 413, 422))
async def search(body: SearchRequest, request: Request) -> dict[str, Any]:
    state, kb = kb_access(request)
    state.authorize(request)
    return {"object": "list", "data": await run_in_threadpool(_run, body, state, kb)}


@router.get("/v1/kb", responses=errors(401))
async def about(request: Request) -> dict[str, Any]:
    """The KB's spaces and the queries each takes, its reranker, and how many files it holds."""
    from omnivec.kb.manifest import indexed_versions

    state, kb = kb_access(request)
    state.authorize(request)
    searcher = kb.searcher
    count = len(await run_in_threadpool(indexed_versions, searcher.kb_dir / "manifest.sqlite"))
    spaces = [{"name": space.name, "queries": [m for m in ("text", "image") if space.takes_query(m)]}
              for space in searcher.spaces]
    reranker = getattr(searcher.reranker, "name_or_path", None) if searcher.reranker is not None else None
    return {"object": "kb", "files": count, "spaces": spaces, "reranker": reranker}


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    """The search page; it holds no data, so it needs no key (it asks for one when the API does)."""
    return HTMLResponse(resources.files("omnivec.serve").joinpath("web/search.html").read_text("utf-8"))


def _run(body: SearchRequest, state: ServerState, kb: KBAccess) -> list[dict[str, Any]]:
    """One search, in a worker thread: searches run one at a time (the searcher's models are not thread-safe, and
    a model the server also serves waits for its batcher's call to end), and the event loop stays free. A query
    image is refused past the server's per-image pixel limit, as for ``/v1/embeddings``."""
    check_text(body.query or "", "'query'")
    image = None
    if body.image is not None:
        image = decode_query_image(body.image, state.settings.fetch_policy, state.settings.max_image_pixels)
    where = _filter(body.filters) if body.filters is not None else None
    names: list[str] = [*(body.spaces or []), *(body.weights or {}).keys()]
    for i, name in enumerate(names):
        check_text(name, f"spaces/weights name {i}")
    with kb.lock, contextlib.ExitStack() as held:
        for lock in kb.model_locks:
            held.enter_context(lock)
        try:
            fusion = None  # the KB's own, unless the request changes it
            if body.fusion is not None or body.rrf_k is not None or body.weights is not None:
                fusion = kb.searcher.fusion.merged(body.fusion, body.rrf_k, body.weights)
            results = kb.searcher.search(body.query or None, image, body.k, where, fusion, rerank=body.rerank,
                                         spaces=body.spaces)
        except InputError as exc:
            raise ApiError(400, str(exc), "invalid_query") from None
    return [result_json(result, kb.files) for result in results]


def result_json(result: Result, files: KBFiles) -> dict[str, Any]:
    """One ``kb.search.Result`` as ``/v1/search`` returns it: its fields, its location as text and its links."""
    return {**result.to_dict(), "location": result.location.describe(), **files.result_links(result)}


def _filter(f: SearchFilters) -> Any:
    """The filters as a store ``Filter``, each value checked for lone surrogates."""
    from omnivec.kb.stores.base import Filter

    for what, value in (("filters.path_prefix", f.path_prefix),
                        *((f"filters.modalities[{i}]", v) for i, v in enumerate(f.modalities or ())),
                        *((f"filters.file_types[{i}]", v) for i, v in enumerate(f.file_types or ()))):
        check_text(value or "", what)
    # A list given empty stays empty (it matches nothing, as in the library); an absent one is None.
    return Filter(path_prefix=f.path_prefix, modalities=None if f.modalities is None else tuple(f.modalities),
                  file_types=None if f.file_types is None else tuple(f.file_types))
