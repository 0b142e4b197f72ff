"""The knowledge base over HTTP: ``POST /v1/search``, ``GET /v1/kb`` (what it holds and takes), the search page at
``/``, and (``kb_files``) the thumbnails, files and page images results link to."""

from __future__ import annotations

import threading
from importlib import resources
from typing import Any, Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from omnivec.errors import InputError
from omnivec.inputs.sources import FetchPolicy
from omnivec.serve.errors import ApiError
from omnivec.serve.kb_files import KBFiles, files_router
from omnivec.serve.openapi import errors


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path_prefix: str | None = None
    modalities: list[str] | None = None
    file_types: list[str] | None = None


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
                  policy: FetchPolicy) -> APIRouter:
    """Routes for one KB ``searcher`` (``omnivec.kb.search.Searcher``). Searches run one at a time in a worker
    thread: the searcher's models are not thread-safe, and the event loop stays free."""
    from omnivec.inputs.image import load_image
    from omnivec.kb.stores.base import Filter
    from omnivec.serve.app import check_image_url

    router = APIRouter()
    files = KBFiles(searcher.kb_dir, api_key)
    router.include_router(files_router(files, authorize))
    lock = threading.Lock()

    def run(body: SearchRequest) -> list[dict[str, Any]]:
        image = None
        if body.image is not None:
            check_image_url(body.image, "'image'", policy)
            try:
                image = load_image(body.image, index=0, policy=policy)
            except InputError as exc:
                raise ApiError(400, f"'image' cannot be decoded: {exc}", "invalid_image") from None
        where = None
        if body.filters is not None:
            f = body.filters
            where = Filter(path_prefix=f.path_prefix, modalities=tuple(f.modalities) if f.modalities else None,
                           file_types=tuple(t.lower().lstrip(".") for t in f.file_types) if f.file_types else None)
        with lock:
            try:
                results = searcher.search(body.query or None, image, body.k, where, body.fusion, rerank=body.rerank)
            except InputError as exc:
                raise ApiError(400, str(exc), "invalid_query") from None
        return [{**result.to_dict(), "location": result.location(), **files.result_links(result)}
                for result in results]

    @router.post("/v1/search", responses=errors(400, 401, 413, 422))
    async def search(body: SearchRequest, request: Request) -> dict[str, Any]:
        authorize(request)
        return {"object": "list", "data": await run_in_threadpool(run, body)}

    @router.get("/v1/kb", responses=errors(401))
    async def about(request: Request) -> dict[str, Any]:
        """The KB's spaces and the queries each takes, its reranker, and how many files it holds."""
        from omnivec.kb.manifest import indexed_files

        authorize(request)
        count = len(await run_in_threadpool(indexed_files, searcher.kb_dir / "manifest.sqlite"))
        spaces = [{"name": space.name, "queries": [m for m in ("text", "image") if space.takes_query(m)]}
                  for space in searcher.spaces]
        reranker = getattr(searcher.reranker, "name_or_path", None) if searcher.reranker is not None else None
        return {"object": "kb", "files": count, "spaces": spaces, "reranker": reranker}

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        """The search page; it holds no data, so it needs no key (it asks for one when the API does)."""
        return HTMLResponse(resources.files("omnivec.serve").joinpath("web/search.html").read_text("utf-8"))

    return router
