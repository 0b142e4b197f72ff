"""The indexer's stream: files read chunk by chunk and embedded in bounded batches, as lists of events in file
order. A ``ChunkItem`` is one chunk with its vectors per space; a ``FileEnd`` closes a file (its chunk count, or
why it could not be read). The same events come from this process (``local_batches``) or from a Ray cluster
(``kb/ray_index.py``), and one writer (``kb/index_writer.py``) turns them into records and manifest states, so both
index the same way. No batch holds more than ``flush_chunks`` chunks: a long recording or a large PDF never sits in
memory whole."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from omnivec.errors import OmnivecError
from omnivec.kb.chunk import Chunk, IngestError
from omnivec.kb.file_version import FileVersion
from omnivec.kb.index_report import short_reason

# What a model raises for an input it cannot take (a bad chunk): the file fails alone. Anything else stops the run.
EMBED_ERRORS = (OmnivecError, ValueError, RuntimeError)
# A batch also ends once its chunks' decoded contents hold this much: 35 ten-second windows of 48 kHz audio, or
# about 430 images of 224 x 224, whatever ``flush_chunks`` says.
FLUSH_BYTES = 64 << 20


@dataclass(frozen=True)
class FileWork:
    """A file to index: its version, and the spaces to write it into (None: every space; an unchanged file that
    lacks a space added to kb.toml is written into that space only)."""

    version: FileVersion
    spaces: frozenset[str] | None = None

    def wants(self, space: str) -> bool:
        return self.spaces is None or space in self.spaces


@dataclass
class ChunkItem:
    """One chunk of ``path`` (its ``position`` in the file), with its vector per space once embedded; ``error``:
    why a model refused it (the whole file then fails)."""

    path: str
    position: int
    chunk: Chunk
    vectors: dict[str, Any] = field(default_factory=dict)
    error: str = ""


@dataclass
class FileEnd:
    """The end of ``path``: ``chunks`` were read, or ``error`` says why it could not be (an ``IngestError``)."""

    path: str
    chunks: int
    error: str = ""


Event = ChunkItem | FileEnd


def content_bytes(chunk: Chunk) -> int:
    """About how much memory a chunk's content holds: an audio window's samples, an image's pixels, a text."""
    content: Any = chunk.content
    if isinstance(content, dict):
        return int(getattr(content.get("array"), "nbytes", 0))
    if isinstance(content, (str, bytes)):
        return len(content)
    if hasattr(content, "getbands"):  # a PIL image
        return content.width * content.height * len(content.getbands())
    return 0


def space_takes(space: Any, work: FileWork | None, chunk: Chunk) -> bool:
    """Whether ``space`` holds this chunk of this file."""
    return chunk.modality == space.modality and (work is None or work.wants(space.name))


def embed_items(spaces: list[Any], items: list[ChunkItem], works: dict[str, FileWork], batch_size: int,
                show_progress: bool | None = None) -> dict[str, float]:
    """Fill ``vectors`` of each item for every space that takes it, one model call per space. When a call fails,
    the items are embedded again file by file: a file the model refuses gets ``error`` on its items, the others
    their vectors. Returns the seconds spent per space."""
    seconds: dict[str, float] = {}
    for space in spaces:
        todo = [item for item in items if not item.error and space_takes(space, works.get(item.path), item.chunk)]
        if not todo:
            continue
        started = time.perf_counter()
        try:
            vectors = list(_embed(space, todo, batch_size, show_progress))
        except EMBED_ERRORS:
            vectors = _embed_by_file(space, todo, batch_size)
        for item, vector in zip(todo, vectors, strict=True):
            if not item.error:
                item.vectors[space.name] = vector
        seconds[space.name] = time.perf_counter() - started
    return seconds


def _embed(space: Any, items: list[ChunkItem], batch_size: int, show_progress: bool | None) -> Any:
    return space.embed([item.chunk.content for item in items], batch_size, show_progress, modality=space.modality)


def _embed_by_file(space: Any, items: list[ChunkItem], batch_size: int) -> list[Any]:
    """The items embedded one file at a time: a file the model refuses has ``error`` set on each of its items (and
    None as their vectors)."""
    by_file: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        by_file.setdefault(item.path, []).append(index)
    vectors: list[Any] = [None] * len(items)
    for indices in by_file.values():
        try:
            for index, vector in zip(indices, _embed(space, [items[i] for i in indices], batch_size, False),
                                     strict=True):
                vectors[index] = vector
        except EMBED_ERRORS as exc:
            reason = f"the {space.name} model could not embed it: {short_reason(exc)}"
            for index in indices:
                items[index].error = reason
    return vectors


def read_file(path: str, options: Any) -> Iterator[Event]:
    """The chunks of one file as items, then its ``FileEnd``; a file that cannot be read (up front or half-way)
    ends with the reason, after the items it gave (the writer then drops them)."""
    from omnivec.kb.ingest import iter_chunks

    position = 0
    try:
        for chunk in iter_chunks(path, options):
            yield ChunkItem(path, position, chunk)
            position += 1
    except IngestError as exc:
        yield FileEnd(path, position, exc.reason)
        return
    yield FileEnd(path, position)


def local_batches(works: list[FileWork], options: Any, spaces: list[Any], batch_size: int, flush_chunks: int,
                  seconds: dict[str, float], show_progress: bool | None = None) -> Iterator[list[Event]]:
    """The events of ``works``, read and embedded in this process, in batches of at most ``flush_chunks`` chunks
    or ``FLUSH_BYTES`` of content (a batch also ends after the last file). ``seconds`` gathers the time spent
    reading and per space embedding."""
    from omnivec.runtime.batching import progress

    by_path = {work.version.path: work for work in works}
    batch: list[Event] = []
    chunks = size = 0

    def embedded() -> list[Event]:
        """The batch embedded, handed over whole: this generator keeps no reference to it while it is written."""
        nonlocal batch, chunks, size
        full, batch, chunks, size = batch, [], 0, 0
        spent = embed_items(spaces, [e for e in full if isinstance(e, ChunkItem)], by_path, batch_size, show_progress)
        for name, value in spent.items():
            seconds[f"embed {name}"] = seconds.get(f"embed {name}", 0.0) + value
        return full

    for work in progress(works, len(works), show_progress, "Reading files", unit="file"):
        events = read_file(work.version.path, options)
        while True:
            started = time.perf_counter()
            event = next(events, None)
            seconds["read"] = seconds.get("read", 0.0) + time.perf_counter() - started
            if event is None:
                break
            batch.append(event)
            if isinstance(event, ChunkItem):
                chunks, size = chunks + 1, size + content_bytes(event.chunk)
            if chunks >= flush_chunks or size >= FLUSH_BYTES:
                yield embedded()
    if batch:
        yield embedded()
