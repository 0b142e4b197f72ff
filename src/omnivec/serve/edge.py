"""The ASGI edge of the server: request bodies read with a size bound and a whole-body deadline before anything
parses them, request counters for ``/metrics``, and the OpenAI-shaped error reply."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from fastapi.responses import JSONResponse

from omnivec.serve import schemas as s
from omnivec.serve.tei_schemas import TEI_PATHS, TeiErrorResponse, tei_error

# Seconds a client has to send its whole request body: a body trickled byte by byte would hold its connection forever.
BODY_TIMEOUT_S = 30.0


def error_response(status: int, message: str, code: str | None = None,
                   headers: Mapping[str, str] | None = None, path: str | None = None) -> JSONResponse:
    """OpenAI's ``{"error": {...}}`` body: ``invalid_request_error`` below 500, ``server_error`` from 500; on TEI's
    paths TEI's ``{"error", "error_type"}`` with TEI's status."""
    if path in TEI_PATHS:
        status, error_type = tei_error(status, code)
        reply = TeiErrorResponse(error=message, error_type=error_type)
        return JSONResponse(reply.model_dump(), status_code=status, headers=headers)
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = s.ErrorResponse(error=s.ErrorBody(message=message, type=kind, code=code))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


class Edge:
    """ASGI middleware: body size and time limits (Content-Length, bytes actually read, whole-body deadline) and
    request counters."""

    def __init__(self, app: Any, max_body_bytes: int, body_timeout_s: float, counts: dict, latency: dict,
                 paths: set[str]) -> None:
        self.app, self.max_body_bytes, self.body_timeout_s = app, max_body_bytes, body_timeout_s
        self.counts, self.latency, self.paths = counts, latency, paths

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status, start = [500], time.perf_counter()

        async def send_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self._limited(scope, receive, send_status)
        finally:
            path = scope["path"] if scope["path"] in self.paths else "other"  # unknown paths: bounded label set
            self.counts[path, status[0]] = self.counts.get((path, status[0]), 0) + 1
            total = self.latency.setdefault(path, [0.0, 0])
            total[0] += time.perf_counter() - start
            total[1] += 1

    async def _limited(self, scope: dict, receive: Callable, send: Callable) -> None:
        path = scope["path"]
        too_big = error_response(413, f"request body exceeds {self.max_body_bytes} bytes", "body_too_large", path=path)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            return await too_big(scope, receive, send)
        # Read the body here, bounded in size and time, so an oversize chunked upload is refused before anything
        # parses it and a trickled body does not hold its connection (uvicorn has no body timeout of its own).
        chunks, size = [], 0
        deadline = asyncio.get_running_loop().time() + self.body_timeout_s
        while True:
            try:
                message = await asyncio.wait_for(receive(), deadline - asyncio.get_running_loop().time())
            except asyncio.TimeoutError:
                slow = error_response(408, f"the request body did not arrive within {self.body_timeout_s:g} s",
                                      "body_timeout", {"Connection": "close"}, path)
                return await slow(scope, receive, send)
            if message["type"] != "http.request":
                return None  # client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                return await too_big(scope, receive, send)
            if not message.get("more_body"):
                break
        pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> dict:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)
