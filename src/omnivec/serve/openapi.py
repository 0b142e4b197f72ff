"""What the OpenAPI spec says beyond the routes' own types: the error replies each route can give, in OpenAI's
error shape, and the Bearer key when the server has one. Clients and schema-driven tests read these."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from omnivec.serve.schemas import ErrorResponse

_REASONS = {
    400: "bad input: the message names the field or input[i]",
    401: "missing or wrong API key",
    404: "unknown model, file or page",
    410: "the indexed file changed since it was indexed",
    413: "request body, input count or media item over this server's limit",
    422: "the body does not match the schema, or names no model where several are served",
    429: "queue full: retry after the Retry-After header's seconds",
    503: "shutting down",
    504: "the model did not answer within the request timeout",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that can answer with these error statuses."""
    return {code: {"model": ErrorResponse, "description": _REASONS[code]} for code in codes}


MODEL_ERRORS = errors(400, 401, 404, 413, 422, 429, 503, 504)


def declare_bearer(app: FastAPI, open_paths: set[str]) -> None:
    """Mark every operation but ``open_paths`` as needing ``Authorization: Bearer <key>``."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        spec = build()  # FastAPI caches it; setting the same keys again is harmless
        spec.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
            "type": "http", "scheme": "bearer", "description": "the server's API key"}
        for path, operations in spec.get("paths", {}).items():
            for operation in operations.values():
                if path not in open_paths:
                    operation["security"] = [{"bearer": []}]
        return spec

    app.openapi = openapi
