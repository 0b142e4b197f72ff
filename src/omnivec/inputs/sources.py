"""Read the bytes or local path behind a media input: file paths, file://, data: URIs, http(s) URLs."""

from __future__ import annotations

import base64
import binascii
import io
import os
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import unquote, urlparse

from omnivec.errors import SourceError  # raised here; importable from here as before


@dataclass(frozen=True)
class FetchPolicy:
    """Limits on reading remote media (the server narrows these; the library allows URLs by default)."""

    allow_remote: bool = True
    max_bytes: int = 200 * 1024 * 1024
    timeout_s: float = 20.0


DEFAULT_POLICY = FetchPolicy()


def open_source(value: Any, policy: FetchPolicy = DEFAULT_POLICY) -> tuple[str | BinaryIO, str]:
    """A local path or an in-memory file for ``value``, and a short description for error messages."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(value)), f"{len(value)} bytes"
    if not isinstance(value, str):
        raise SourceError(f"cannot read media from a {type(value).__name__}")
    if value.startswith("data:"):
        data = _decode_data_uri(value)
        if len(data) > policy.max_bytes:
            raise SourceError(f"data: URI holds {len(data)} bytes, over the {policy.max_bytes}-byte limit")
        return io.BytesIO(data), "data: URI"
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
    """At most ``policy.max_bytes``, all within ``policy.timeout_s`` (a total deadline, so a server that trickles
    bytes cannot hold the download open)."""
    if not policy.allow_remote:
        raise SourceError(f"fetching remote media is disabled ({url})")
    import time
    import urllib.request

    deadline = time.monotonic() + policy.timeout_s
    chunks, size = [], 0
    try:
        with urllib.request.urlopen(url, timeout=policy.timeout_s) as response:  # noqa: S310 (http/https only)
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > policy.max_bytes:
                raise SourceError(f"{url} is {length} bytes, over the {policy.max_bytes}-byte limit")
            while chunk := response.read1(64 * 1024):
                chunks.append(chunk)
                size += len(chunk)
                if size > policy.max_bytes:
                    raise SourceError(f"{url} is larger than the {policy.max_bytes}-byte limit")
                if time.monotonic() > deadline:
                    raise SourceError(f"download of {url} took longer than {policy.timeout_s:g} s")
    except OSError as exc:
        raise SourceError(f"download of {url} failed: {exc}") from None
    return b"".join(chunks)
