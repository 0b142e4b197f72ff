"""The error every endpoint raises for a request it refuses: answered as OpenAI's ``{"error": {...}}`` body."""

from __future__ import annotations


class ApiError(Exception):
    """An error answered as OpenAI's ``{"error": {...}}`` body with ``status``."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers
