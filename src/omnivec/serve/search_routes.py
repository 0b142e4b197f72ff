"""``POST /v1/search`` over a knowledge base, and ``GET /v1/kb/thumbs/{name}`` for the thumbnails results link to."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any, Callable

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from omnivec.errors import InputError
from omnivec.serve.errors import ApiError

_THUMB = re.compile(r"^[0-9a-f]{16}-[0-9]+\.jpg$")


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


def search_router(searcher: Any, kb_dir: Path, authorize: Callable[[Request], None], allow_media_urls: bool,
                  max_bytes: int) -> APIRouter:
    """Routes for one KB ``searcher`` (``omnivec.kb.search.Searcher``). Searches run one at a time in a worker
    thread: the searcher's models are not thread-safe, and the event loop stays free."""
    from omnivec.inputs.image import load_image
    from omnivec.inputs.sources import FetchPolicy
    from omnivec.kb.stores.base import Filter

    router = APIRouter()
    lock = threading.Lock()
    policy = FetchPolicy(allow_remote=allow_media_urls, max_bytes=max_bytes)

    def run(body: SearchRequest) -> list[dict[str, Any]]:
        image = None
        if body.image is not None:
            remote = body.image.startswith(("http://", "https://"))
            if not body.image.startswith("data:") and not (remote and allow_media_urls):
                raise ApiError(400, "'image' must be a data: URI" + (" or an http(s) URL" if allow_media_urls else
                                                                     " (this server does not fetch media URLs)"))
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
        out = []
        for result in results:
            item = result.to_dict()
            item["location"] = result.location()
            item["thumbnail_url"] = f"/v1/kb/thumbs/{Path(result.thumbnail).name}" if result.thumbnail else None
            out.append(item)
        return out

    @router.post("/v1/search")
    async def search(body: SearchRequest, request: Request) -> dict[str, Any]:
        authorize(request)
        return {"object": "list", "data": await run_in_threadpool(run, body)}

    @router.get("/v1/kb/thumbs/{name}")
    async def thumbnail(name: str, request: Request) -> FileResponse:
        authorize(request)
        path = kb_dir / "thumbs" / name
        if not _THUMB.match(name) or not path.is_file():  # the pattern keeps requests inside thumbs/
            raise ApiError(404, f"no thumbnail {name!r}", "not_found")
        return FileResponse(path, media_type="image/jpeg")

    return router
