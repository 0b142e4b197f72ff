"""PDF documents with pypdfium2: each page's text layer as passages, and each page rendered as an image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnivec.kb.chunk import Chunk, IngestError
from omnivec.kb.ingest.chunking import chunk_text, embedder_text
from omnivec.kb.ingest.options import IngestOptions
from omnivec.kb.ingest.thumbnail import thumbnail

PAGE_TEXT_CHARS = 2000  # the text kept with a rendered page, for rerankers and readers
MAX_PAGE_PX = 4096  # a poster-sized page is rendered smaller than page_dpi asks, never bigger than this


def _require_pdfium() -> Any:
    try:
        import pypdfium2
    except ImportError:
        raise IngestError("", "PDF files need pypdfium2: pip install 'omnivec[pdf]'") from None
    return pypdfium2


def ingest_pdf(path: Path, options: IngestOptions) -> list[Chunk]:
    """Per page (``Chunk.page`` 1-based): "text" passages of its text layer, and one "page" image chunk (the page
    rendered at ``options.page_dpi``, its text truncated to ``PAGE_TEXT_CHARS`` in ``Chunk.text``)."""
    pdfium = _require_pdfium()  # ingest_file names the file in its error
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:  # damaged, not a PDF, or encrypted with a password
        raise IngestError(str(path), f"cannot open as a PDF: {exc}") from None
    chunks: list[Chunk] = []
    try:
        for index in range(len(document)):
            try:
                text, image = _read_page(document, index, options.page_dpi)
            except pdfium.PdfiumError as exc:
                raise IngestError(str(path), f"page {index + 1}: {exc}") from None
            number = index + 1
            for passage, heading, _, _ in chunk_text(text, options):
                chunks.append(Chunk(file=str(path), modality="text", kind="text",
                                    content=embedder_text(passage, heading), text=passage, page=number))
            chunks.append(Chunk(file=str(path), modality="image", kind="page", content=image,
                                text=text.strip()[:PAGE_TEXT_CHARS], page=number,
                                thumbnail=thumbnail(image, options.thumbnail_px)))
    finally:
        document.close()
    return chunks


def _read_page(document: Any, index: int, dpi: int) -> tuple[str, Any]:
    """The page's text (newlines normalised) and its rendering as a PIL RGB image."""
    page = document[index]
    try:
        textpage = page.get_textpage()
        try:
            text = textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n")
        finally:
            textpage.close()
        width, height = page.get_size()
        image = _render(page, min(dpi / 72, MAX_PAGE_PX / max(width, height, 1)))
    finally:
        page.close()
    return text, image


def render_page(path: Path, number: int, width: int) -> Any:
    """Page ``number`` (1-based) of the PDF at ``path``, rendered ``width`` pixels wide, as a PIL RGB image."""
    pdfium = _require_pdfium()
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        raise IngestError(str(path), f"cannot open as a PDF: {exc}") from None
    try:
        if not 1 <= number <= len(document):
            raise IngestError(str(path), f"has no page {number} (pages 1-{len(document)})")
        page = document[number - 1]
        try:
            page_width, page_height = page.get_size()
            return _render(page, min(width / max(page_width, 1), MAX_PAGE_PX / max(page_width, page_height, 1)))
        finally:
            page.close()
    finally:
        document.close()


def _render(page: Any, scale: float) -> Any:
    bitmap = page.render(scale=scale)
    try:
        return bitmap.to_pil().convert("RGB")  # a copy: the bitmap's buffer is freed on close
    finally:
        bitmap.close()
