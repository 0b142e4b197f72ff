"""PDF documents: each page's text layer as passages, and each page rendered as an image (PDFium calls live in
``pdfium.py``, serialised)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from omnivec.kb.chunk import Chunk
from omnivec.kb.ingest.chunking import chunk_text, embedder_text
from omnivec.kb.ingest.options import IngestOptions
from omnivec.kb.ingest.pdfium import MAX_PAGE_PX, read_pages, render_page
from omnivec.kb.ingest.thumbnail import thumbnail
from omnivec.kb.location import Location
from omnivec.printing import printable

__all__ = ["MAX_PAGES", "MAX_PAGE_PX", "PAGE_TEXT_CHARS", "ingest_pdf", "render_page"]

PAGE_TEXT_CHARS = 2000  # the text kept with a rendered page, for rerankers and readers
# Pages read per PDF; past it the rest is left out, with a warning. A 10 KB file can list one page object 100,000
# times: time, not memory (pages are read one at a time), is what this bounds.
MAX_PAGES = 2000
PNG_LEVEL = 1  # fast zlib level: a rendered page is mostly flat colour, so even level 1 compresses it ~50x


def ingest_pdf(path: Path, options: IngestOptions) -> Iterator[Chunk]:
    """Per page (``Chunk.location.page`` 1-based): "text" passages of its text layer, and one "page" image chunk
    (the page rendered at ``options.page_dpi``, as PNG bytes, its text truncated to ``PAGE_TEXT_CHARS`` in
    ``Chunk.text``), page by page as they are read (one page loaded at a time).
    Pages are rendered only when ``options.modalities`` has "image", passages made only when it has "text"; only
    the first ``MAX_PAGES`` pages are read."""
    wants_text, wants_pages = options.wants("text"), options.wants("image")
    with closing(read_pages(path, options.page_dpi if wants_pages else None)) as pages:
        for index, (text, image) in enumerate(pages):
            number = index + 1
            if number > MAX_PAGES:
                warnings.warn(printable(f"{path}: only the first {MAX_PAGES} pages are indexed (MAX_PAGES); "
                                        "the rest of the document is left out"), stacklevel=2)
                break
            if wants_text:
                for passage, heading, _, _ in chunk_text(text, options):
                    yield Chunk(Location(str(path), page=number), modality="text", kind="text",
                                content=embedder_text(passage, heading), text=passage)
            if image is not None:
                yield Chunk(Location(str(path), page=number), modality="image", kind="page",
                            content=png_bytes(image), text=text.strip()[:PAGE_TEXT_CHARS],
                            thumbnail=thumbnail(image, options.thumbnail_px))


def png_bytes(image: Any) -> bytes:
    """``image`` as a PNG: lossless (the embedder decodes the same pixels), and a letter page at 72 dpi is some
    10-40 KB instead of 1.4 MB as a PIL image, so a long document's pages fit in memory until it is embedded."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_LEVEL)
    return buffer.getvalue()
