"""PDF documents: each page's text layer as passages, and each page rendered as an image (PDFium calls live in
``pdfium.py``, serialised)."""

from __future__ import annotations

from pathlib import Path

from omnivec.kb.chunk import Chunk
from omnivec.kb.ingest.chunking import chunk_text, embedder_text
from omnivec.kb.ingest.options import IngestOptions
from omnivec.kb.ingest.pdfium import MAX_PAGE_PX, read_pages, render_page
from omnivec.kb.ingest.thumbnail import thumbnail

__all__ = ["MAX_PAGE_PX", "PAGE_TEXT_CHARS", "ingest_pdf", "render_page"]

PAGE_TEXT_CHARS = 2000  # the text kept with a rendered page, for rerankers and readers


def ingest_pdf(path: Path, options: IngestOptions) -> list[Chunk]:
    """Per page (``Chunk.page`` 1-based): "text" passages of its text layer, and one "page" image chunk (the page
    rendered at ``options.page_dpi``, its text truncated to ``PAGE_TEXT_CHARS`` in ``Chunk.text``). Pages are
    rendered only when ``options.modalities`` has "image", passages made only when it has "text"."""
    wants_text, wants_pages = options.wants("text"), options.wants("image")
    chunks: list[Chunk] = []
    for index, (text, image) in enumerate(read_pages(path, options.page_dpi if wants_pages else None)):
        number = index + 1
        if wants_text:
            for passage, heading, _, _ in chunk_text(text, options):
                chunks.append(Chunk(file=str(path), modality="text", kind="text",
                                    content=embedder_text(passage, heading), text=passage, page=number))
        if image is not None:
            chunks.append(Chunk(file=str(path), modality="image", kind="page", content=image,
                                text=text.strip()[:PAGE_TEXT_CHARS], page=number,
                                thumbnail=thumbnail(image, options.thumbnail_px)))
    return chunks
