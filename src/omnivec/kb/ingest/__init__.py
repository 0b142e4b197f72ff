"""Turn files into chunks: passages of documents (with heading paths and page numbers), pictures, rendered PDF
pages, windows of recordings, video frames and sound tracks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from omnivec.inputs.modality import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, VIDEO_EXTENSIONS  # what the decoders read
from omnivec.kb.chunk import Chunk, IngestError
from omnivec.kb.ingest.options import MIB, IngestOptions
from omnivec.kb.ingest.text import TEXT_EXTENSIONS

__all__ = ["SUPPORTED", "Chunk", "IngestError", "IngestOptions", "ingest_file", "iter_chunks"]

SUPPORTED: dict[str, str] = {
    **{ext: "text" for ext in TEXT_EXTENSIONS},
    ".pdf": "pdf",
    **{ext: "image" for ext in IMAGE_EXTENSIONS},
    **{ext: "audio" for ext in AUDIO_EXTENSIONS},
    **{ext: "video" for ext in VIDEO_EXTENSIONS},
}
"""File extension (lowercase, with the dot) -> the kind of reader that ingests it."""


def _reader(kind: str) -> Callable[[Path, IngestOptions], Iterator[Chunk]]:
    # Imported on use: a folder of Markdown never loads the PDF or media code.
    if kind == "text":
        from omnivec.kb.ingest.text import ingest_text as read
    elif kind == "pdf":
        from omnivec.kb.ingest.pdf import ingest_pdf as read
    elif kind == "image":
        from omnivec.kb.ingest.media import ingest_image as read
    elif kind == "audio":
        from omnivec.kb.ingest.media import ingest_audio as read
    else:
        from omnivec.kb.ingest.video import ingest_video as read
    return read


def iter_chunks(path: str | Path, options: IngestOptions | None = None) -> Iterator[Chunk]:
    """The chunks of one file, by its extension (see ``SUPPORTED``), yielded as the file is read: a recording
    window by window, a PDF page by page, a text file block by block, a video segment by segment, so memory does
    not grow with the file's length. Each chunk's ``location.file`` is ``str(path)`` as given.

    Raises ``IngestError(path, reason)`` for an unsupported extension, a missing, empty, oversized, corrupt or
    unreadable file: what can be known up front (type, size, emptiness) here, before any chunk; a file that turns
    out corrupt half-way while iterating, after the chunks read before the damage (the caller drops those).
    """
    options = options or IngestOptions()
    file = str(path)
    suffix = Path(path).suffix.lower()
    kind = SUPPORTED.get(suffix)
    if kind is None:
        raise IngestError(file, f"unsupported file type {suffix or '(no extension)'}; "
                                f"supported: {' '.join(sorted(SUPPORTED))}")
    try:
        size = Path(path).stat().st_size
    except OSError as exc:
        raise IngestError(file, f"cannot read the file: {exc.strerror or exc}") from None
    if not Path(path).is_file():
        raise IngestError(file, "not a regular file")
    if size == 0:
        raise IngestError(file, "empty file")
    if size > options.max_file_bytes:
        raise IngestError(file, f"file is {size / MIB:.1f} MiB, over the {options.max_file_bytes / MIB:.1f} MiB "
                                "limit (IngestOptions.max_file_bytes)")
    return _wrapped(file, _reader(kind)(Path(path), options))


def _wrapped(file: str, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """``chunks`` with ``location.file`` set to ``file``, and any failure while reading them (the reader's own
    IngestError, OSError, a decoder's exception) turned into ``IngestError(file, reason)``."""
    try:
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except IngestError as exc:
                if exc.path == file:
                    raise
                raise IngestError(file, exc.reason) from None
            except OSError as exc:
                raise IngestError(file, f"cannot read the file: {exc.strerror or exc}") from exc
            except Exception as exc:  # a decoder's unforeseen failure on one file must not stop a whole folder
                raise IngestError(file, f"cannot ingest: {type(exc).__name__}: {exc}") from exc
            chunk.location = replace(chunk.location, file=file)
            yield chunk
    finally:  # an abandoned iteration closes the reader (and its file) at once
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def ingest_file(path: str | Path, options: IngestOptions | None = None) -> list[Chunk]:
    """All the chunks of one file at once: ``list(iter_chunks(path, options))`` (see ``iter_chunks``)."""
    return list(iter_chunks(path, options))
