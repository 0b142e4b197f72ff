"""The only code that calls PDFium (through pypdfium2). PDFium is not thread-safe: two threads inside it at once
corrupt its state (seen: "double free or corruption" killing the server, then false 404s and 500s). Every call,
from indexing or from the server's page previews, runs under one process-wide lock, and no PDFium object leaves
this module: callers get text and PIL images."""

from __future__ import annotations

import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

from omnivec.kb.chunk import IngestError

PDFIUM_LOCK = threading.RLock()
"""Held around every PDFium call of the process (re-entrant: a render inside a page read takes it again)."""
MAX_PAGE_PX = 4096  # a poster-sized page is rendered smaller than asked, never bigger than this


def require_pdfium() -> Any:
    try:
        import pypdfium2
    except ImportError:
        raise IngestError("", "PDF files need pypdfium2: pip install 'omnivec[pdf]'") from None
    return pypdfium2


def read_pages(path: Path, dpi: int | None) -> Generator[tuple[str, Any], None, None]:
    """Each page's text (newlines normalised) and, unless ``dpi`` is None, its rendering at ``dpi`` as a PIL RGB
    image (else None). The lock is taken per page, so a long document does not stall previews meanwhile."""
    pdfium = require_pdfium()
    with PDFIUM_LOCK:
        document = _open(pdfium, path)
    try:
        with PDFIUM_LOCK:
            count = len(document)
        for index in range(count):
            with PDFIUM_LOCK:
                try:
                    page = _read_page(document, index, dpi)
                except pdfium.PdfiumError as exc:
                    raise IngestError(str(path), f"page {index + 1}: {exc}") from None
            yield page
    finally:
        with PDFIUM_LOCK:
            document.close()


def render_page(path: Path, number: int, width: int) -> Any:
    """Page ``number`` (1-based) of the PDF at ``path``, rendered ``width`` pixels wide, as a PIL RGB image."""
    pdfium = require_pdfium()
    with PDFIUM_LOCK:
        document = _open(pdfium, path)
        try:
            if not 1 <= number <= len(document):
                raise IngestError(str(path), f"has no page {number} (pages 1-{len(document)})")
            try:  # a damaged page fails here, not at opening: the caller gets an IngestError, not PDFium's own
                page = document[number - 1]
                try:
                    page_width, page_height = page.get_size()
                    return _render(page, min(width / max(page_width, 1),
                                             MAX_PAGE_PX / max(page_width, page_height, 1)))
                finally:
                    page.close()
            except pdfium.PdfiumError as exc:
                raise IngestError(str(path), f"page {number} cannot be rendered: {exc}") from None
        finally:
            document.close()


def _open(pdfium: Any, path: Path) -> Any:
    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:  # damaged, not a PDF, or encrypted with a password
        raise IngestError(str(path), f"cannot open as a PDF: {exc}") from None


def _read_page(document: Any, index: int, dpi: int | None) -> tuple[str, Any]:
    page = document[index]
    try:
        textpage = page.get_textpage()
        try:
            text = textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n")
        finally:
            textpage.close()
        image = None
        if dpi is not None:
            width, height = page.get_size()
            image = _render(page, min(dpi / 72, MAX_PAGE_PX / max(width, height, 1)))
    finally:
        page.close()
    return text, image


def _render(page: Any, scale: float) -> Any:
    with PDFIUM_LOCK:
        bitmap = page.render(scale=scale)
        try:
            return bitmap.to_pil().convert("RGB")  # a copy: the bitmap's buffer is freed on close
        finally:
            bitmap.close()
