"""What search results link to: a KB's thumbnails, its indexed files (with HTTP range requests, so players can
seek), and PDF pages rendered on demand.

Only files the KB has indexed are served, looked up by their 16-hex-digit key, never by a path from the request,
and only while the file on disk is still the one indexed: a regular file, not a symlink and not under one, with
the size and modification time the manifest recorded (else 404, or 410 when it changed since indexing).
The check runs right before the response opens the file by its path: a symlink swapped in between the two (a
window of milliseconds) would still be followed; serving from a descriptor opened with O_NOFOLLOW would close it.
With an API key, links carry an expiring signature (``?exp=&sig=``) so that ``<img>``, ``<audio>`` and ``<video>``
elements, which cannot send an Authorization header, can load them; a request without one needs the key.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
import mimetypes
import os
import re
import stat
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from omnivec.kb.file_version import FileVersion
from omnivec.serve.errors import ApiError
from omnivec.serve.openapi import errors
from omnivec.serve.state import kb_access

if TYPE_CHECKING:
    from omnivec.kb.search import Result

_KEY = re.compile(r"^[0-9a-f]{16}$")
_THUMB = re.compile(r"^[0-9a-f]{16}-[0-9]+\.jpg$")
PAGE_WIDTHS = (320, 640, 960, 1280, 1920)  # a few sizes, so rendered pages cache well
MEDIA = {"audio", "video"}
MAX_EXPIRY_DIGITS = 12  # a link's ?exp= (Unix seconds: 10 digits until 2286); a longer one is not a valid signature


class KBFiles:
    """Maps file keys to the KB's indexed files and makes (signed) links to them."""

    def __init__(self, kb_dir: Path, api_key: str | None, link_ttl_s: float = 3600) -> None:
        self.kb_dir, self.link_ttl_s = kb_dir, link_ttl_s
        self._secret = hashlib.sha256(b"omnivec-links:" + api_key.encode()).digest() if api_key else None
        self._files: dict[str, FileVersion] = {}  # key -> the file as indexed
        self._lock = threading.Lock()

    def path(self, key: str) -> Path:
        """The indexed file with this key, if still as indexed (see ``checked``)."""
        return self.checked(key)[0]

    def checked(self, key: str) -> tuple[Path, os.stat_result]:
        """The indexed file with this key and its ``lstat``, if it is still the file that was indexed; else 404 (not
        indexed, gone, a symlink now) or 410 (changed since). The manifest is re-read on a miss or a mismatch, so
        files indexed (or re-indexed) since are found."""
        if not _KEY.match(key):
            raise ApiError(404, f"no indexed file with key {key!r}", "not_found")
        # One reference per look-up: a reload in another thread replaces the dict, never changes this one.
        files = self._files
        fresh = key not in files
        if fresh:
            files = self._reload()
        try:
            return self._verify(key, files)
        except ApiError:
            if fresh:
                raise
        return self._verify(key, self._reload())

    def _reload(self) -> dict[str, FileVersion]:
        from omnivec.kb.manifest import indexed_versions
        from omnivec.kb.record_ids import file_key

        with self._lock:
            versions = indexed_versions(self.kb_dir / "manifest.sqlite")
            self._files = {file_key(version.path): version for version in versions}
            return self._files

    @staticmethod
    def _verify(key: str, files: dict[str, FileVersion]) -> tuple[Path, os.stat_result]:
        if key not in files:
            raise ApiError(404, f"no indexed file with key {key!r}", "not_found")
        indexed = files[key]
        path = indexed.path
        try:
            found = os.lstat(path)  # lstat: a symlink put in the file's place is not followed
        except OSError:
            raise ApiError(404, f"the file indexed as {key!r} is gone", "not_found") from None
        if not stat.S_ISREG(found.st_mode):
            raise ApiError(404, f"the file indexed as {key!r} was replaced by a symlink or a special file", "not_found")
        if os.path.realpath(path) != path:  # indexed paths are resolved: a folder on the way became a symlink
            raise ApiError(404, f"a folder on the path of the file indexed as {key!r} is now a symlink", "not_found")
        if not indexed.shown_by(found):
            raise ApiError(410, f"the file indexed as {key!r} changed since it was indexed: index it again", "gone")
        return Path(path), found

    def link(self, route: str) -> str:
        if self._secret is None:
            return route
        expires = int(time.time() + self.link_ttl_s)
        return f"{route}?exp={expires}&sig={self._sign(route, expires)}"

    def signed(self, request: Request) -> bool:
        """Whether the request carries a valid, unexpired signature for its own path."""
        expires, sig = request.query_params.get("exp", ""), request.query_params.get("sig", "")
        # ASCII digits of a bounded length only: int() of thousands of digits raises, and of "²" too.
        well_formed = len(expires) <= MAX_EXPIRY_DIGITS and expires.isascii() and expires.isdigit()
        if self._secret is None or not well_formed or int(expires) < time.time():
            return False
        return hmac.compare_digest(sig.encode(), self._sign(request.url.path, int(expires)).encode())

    def _sign(self, route: str, expires: int) -> str:
        assert self._secret is not None, "links are signed only when the server has an API key"
        return hmac.new(self._secret, f"{route}\n{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def result_links(self, result: Result) -> dict[str, Any]:
        """Links for one ``Result``: its thumbnail, its file, its PDF page's preview, and for a recording or a video
        the player source starting at the matched time (a media fragment, ``#t=start,end``)."""
        from omnivec.kb.record_ids import file_key

        where = result.location
        key = file_key(where.file)
        file_url = self.link(f"/v1/kb/files/{key}")
        kind = media_kind(where.file)
        links: dict[str, Any] = {
            "thumbnail_url": self.link(f"/v1/kb/thumbs/{Path(result.thumbnail).name}") if result.thumbnail else None,
            "file_url": file_url,
            "page_image_url": None,
            "media_url": None,
            "media_kind": kind,
        }
        if where.page is not None and where.file.lower().endswith(".pdf"):
            links["page_image_url"] = self.link(f"/v1/kb/pages/{key}/{where.page}.jpg")
        if kind is not None:
            fragment = "" if where.start is None else f"#t={where.start:g}" + (
                f",{where.end:g}" if where.end is not None else "")
            links["media_url"] = file_url + fragment
        return links


def media_kind(path: str) -> str | None:
    """"audio" or "video" for a file a browser plays in such an element, else None."""
    kind = (mimetypes.guess_type(path)[0] or "").split("/")[0]
    return kind if kind in MEDIA else None


router = APIRouter()


def _allowed(request: Request) -> KBFiles:
    """The KB's files, once the request may read them: a valid link signature, else the API key."""
    state, kb = kb_access(request)
    if not kb.files.signed(request):
        state.authorize(request)
    return kb.files


@router.get("/v1/kb/thumbs/{name}", responses=errors(401, 404))
async def thumbnail(name: str, request: Request) -> FileResponse:
    files = _allowed(request)
    path = files.kb_dir / "thumbs" / name
    if not _THUMB.match(name) or not path.is_file():  # the pattern keeps requests inside thumbs/
        raise ApiError(404, f"no thumbnail {name!r}", "not_found")
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/v1/kb/files/{key}", responses=errors(401, 404, 410))
async def original(key: str, request: Request) -> FileResponse:
    """The indexed file itself, if unchanged since indexing; Range requests are answered (206), so audio and
    video players can seek."""
    files = _allowed(request)
    path, checked = await run_in_threadpool(files.checked, key)
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, content_disposition_type="inline", filename=path.name,
                        stat_result=checked)  # the checked stat: not one taken through a symlink


@router.get("/v1/kb/pages/{key}/{page}.jpg", responses=errors(401, 404, 422))
async def page_image(key: str, page: int, request: Request,
                     width: int = Query(960, ge=64, le=PAGE_WIDTHS[-1])) -> Response:
    """A PDF page rendered as a JPEG about ``width`` pixels wide (rounded up to one of ``PAGE_WIDTHS``)."""
    files = _allowed(request)
    path, checked = await run_in_threadpool(files.checked, key)  # may re-read the manifest: off the event loop
    if path.suffix.lower() != ".pdf":
        raise ApiError(404, f"file {key!r} is not a PDF", "not_found")
    width = next(w for w in PAGE_WIDTHS if w >= width)
    jpeg = await run_in_threadpool(_page_jpeg, str(path), checked.st_mtime_ns, page, width)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@functools.lru_cache(maxsize=64)
def _page_jpeg(path: str, mtime_ns: int, page: int, width: int) -> bytes:
    """Rendered once per (file version, page, width): the modification time is part of the cache key."""
    from omnivec.kb.chunk import IngestError
    from omnivec.kb.ingest.pdf import render_page

    try:
        image = render_page(Path(path), page, width)
    except IngestError as exc:
        raise ApiError(404, exc.reason, "not_found") from None
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
