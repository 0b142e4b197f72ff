"""The knowledge base over HTTP: ``POST /v1/search``, ``GET /v1/kb`` (what it holds and takes), the search page at
``/``, and (``kb_files``) the thumbnails, files and page images results link to."""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from omnivec.errors import InputError
from omnivec.inputs.sources import FetchPolicy
from omnivec.serve.errors import ApiError
from omnivec.serve.kb_files import KBFiles, files_router
from omnivec.serve.openapi import errors
from omnivec.serve.schemas import check_text

# Filter sizes: a path longer than any file system allows, and lists longer than the kinds there are, are refused
# (422) before they reach the store's query language.
MAX_PATH_PREFIX_CHARS = 4096
MAX_FILTER_VALUES = 64
MAX_FILTER_VALUE_CHARS = 64
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
    fusion: str = Field("rrf", pattern="^(rrf|score)$")
    filters: SearchFilters | None = None


def search_router(searcher: Any, authorize: Callable[[Request], None], api_key: str | None,
                  policy: FetchPolicy, max_image_pixels: int) -> APIRouter:
    """Routes for one KB ``searcher`` (``omnivec.kb.search.Searcher``). Searches run one at a time in a worker
    thread: the searcher's models are not thread-safe, and the event loop stays free. A query image is refused
    past ``max_image_pixels`` (the server's per-image limit, as for ``/v1/embeddings``)."""
    from omnivec.inputs.image import ImageTooLarge, load_image
    from omnivec.kb.stores.base import Filter
    from omnivec.serve.app import check_image_url

    router = APIRouter()
    files = KBFiles(searcher.kb_dir, api_key)
    router.include_router(files_router(files, authorize))
    lock = threading.Lock()

    def run(body: SearchRequest) -> list[dict[str, Any]]:
        check_text(body.query or "", "'query'")
        image = None
        if body.image is not None:
            check_text(body.image, "'image'")
            check_image_url(body.image, "'image'", policy)
            try:
                image = load_image(body.image, index=0, policy=policy, max_pixels=max_image_pixels)
            except ImageTooLarge as exc:
                raise ApiError(413, f"'image' is too large: {exc}", "image_too_large") from None
            except InputError as exc:
                raise ApiError(400, f"'image' cannot be decoded: {exc}", "invalid_image") from None
        where = None
        if body.filters is not None:
            f = body.filters
            for what, value in (("filters.path_prefix", f.path_prefix),
                                *((f"filters.modalities[{i}]", v) for i, v in enumerate(f.modalities or ())),
                                *((f"filters.file_types[{i}]", v) for i, v in enumerate(f.file_types or ()))):
                check_text(value or "", what)
            # A list given empty stays empty (it matches nothing, as in the library); an absent one is None.
            where = Filter(path_prefix=f.path_prefix, modalities=None if f.modalities is None else tuple(f.modalities),
                           file_types=None if f.file_types is None else tuple(f.file_types))
        with lock:
            try:
                results = searcher.search(body.query or None, image, body.k, where, body.fusion, rerank=body.rerank)
            except InputError as exc:
                raise ApiError(400, str(exc), "invalid_query") from None
        return [{**result.to_dict(), "location": result.location.describe(), **files.result_links(result)}
                for result in results]

    @router.post("/v1/search", responses=errors(400, 401, 413, 422))
    async def search(body: SearchRequest, request: Request) -> dict[str, Any]:
        authorize(request)
        return {"object": "list", "data": await run_in_threadpool(run, body)}

    @router.get("/v1/kb", responses=errors(401))
    async def about(request: Request) -> dict[str, Any]:
        """The KB's spaces and the queries each takes, its reranker, and how many files it holds."""
        from omnivec.kb.manifest import indexed_versions

        authorize(request)
        count = len(await run_in_threadpool(indexed_versions, searcher.kb_dir / "manifest.sqlite"))
        spaces = [{"name": space.name, "queries": [m for m in ("text", "image") if space.takes_query(m)]}
                  for space in searcher.spaces]
        reranker = getattr(searcher.reranker, "name_or_path", None) if searcher.reranker is not None else None
        return {"object": "kb", "files": count, "spaces": spaces, "reranker": reranker}

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        """The search page; it holds no data, so it needs no key (it asks for one when the API does)."""
        return HTMLResponse(resources.files("omnivec.serve").joinpath("web/search.html").read_text("utf-8"))

    return router
