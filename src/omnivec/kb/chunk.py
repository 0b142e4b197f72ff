"""What ingestion produces and stores keep: one searchable piece of a source file, with where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omnivec.errors import SourceError
from omnivec.kb.location import Location


class IngestError(SourceError):
    """A file that cannot be read: corrupt, unreadable or unsupported. The index reports it and goes on."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


@dataclass
class Chunk:
    """One searchable piece of a file.

    ``modality`` is what gets embedded: "text" (``content`` is the text), "image" (a PIL image; PNG bytes for a
    rendered page) or "audio" (``{"array": float32 mono, "sampling_rate": int}``). ``kind`` says what the piece
    is: "text" (a passage), "page" (a rendered PDF page), "image", "frame" (a video frame), "audio" (a window of a
    recording or a video's sound track) or "transcript". ``location``: the file, and the page, time span or heading
    path in it. ``text`` is what a reranker and a reader see (the passage, or the page's text for a rendered page);
    ``thumbnail`` a small JPEG of an image, page or frame."""

    location: Location
    modality: str
    kind: str
    content: Any
    text: str = ""
    thumbnail: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)
