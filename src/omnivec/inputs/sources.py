"""Read the bytes or local path behind a media input: file paths, file://, data: URIs, http(s) URLs."""

from __future__ import annotations

import base64
import binascii
import io
import os
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import unquote, urlparse


@dataclass(frozen=True)
class FetchPolicy:
    """Limits on reading remote media (the server narrows these; the library allows URLs by default)."""

    allow_remote: bool = True
    max_bytes: int = 200 * 1024 * 1024
    timeout_s: float = 20.0


DEFAULT_POLICY = FetchPolicy()


class SourceError(ValueError):
    """The source could not be read (missing file, bad data: URI, failed download)."""


def open_source(value: Any, policy: FetchPolicy = DEFAULT_POLICY) -> tuple[str | BinaryIO, str]:
    """A local path or an in-memory file for ``value``, and a short description for error messages."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(value)), f"{len(value)} bytes"
    if not isinstance(value, str):
        raise SourceError(f"cannot read media from a {type(value).__name__}")
    if value.startswith("data:"):
        return io.BytesIO(_decode_data_uri(value)), "data: URI"
    parsed = urlparse(value) if "://" in value else None
    if parsed is not None and parsed.scheme == "file":
        value = unquote(parsed.path)
    elif parsed is not None and parsed.scheme in ("http", "https"):
        return io.BytesIO(_download(value, policy)), value
    path = os.path.expanduser(value)
    if not os.path.isfile(path):
        raise SourceError(f"file {value!r} does not exist")
    return path, value


def _decode_data_uri(uri: str) -> bytes:
    header, sep, payload = uri.partition(",")
    if not sep:
        raise SourceError("data: URI has no ',' before its payload")
    try:
        if header.endswith(";base64"):
            return base64.b64decode(payload, validate=True)
        return unquote(payload).encode("latin-1")
    except (binascii.Error, ValueError) as exc:
        raise SourceError(f"data: URI payload is not valid base64 ({exc})") from None


def _download(url: str, policy: FetchPolicy) -> bytes:
    if not policy.allow_remote:
        raise SourceError(f"fetching remote media is disabled ({url})")
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=policy.timeout_s) as response:  # noqa: S310 (http/https only)
            data = response.read(policy.max_bytes + 1)
    except OSError as exc:
        raise SourceError(f"download of {url} failed: {exc}") from None
    if len(data) > policy.max_bytes:
        raise SourceError(f"{url} is larger than the {policy.max_bytes}-byte limit")
    return data
