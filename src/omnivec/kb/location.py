"""Where a piece of a KB comes from: the file, and in it the page, the time span and the heading path. Chunks carry
one, stores keep it as flat payload fields, search results give it back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The payload keys (and LanceDB columns) a location is stored under: the same names since the first release, so
# KBs written before this type existed read as they are.
PAYLOAD_KEYS = ("file", "page", "start", "end", "heading")


@dataclass(frozen=True)
class Location:
    """``file``: the file's path as indexed. ``page``: 1-based, in a PDF. ``start``/``end``: seconds, in a
    recording or a video (``end`` None when only a start is known). ``heading``: the heading path above a passage
    ("Setup > Wiring"), "" where there is none."""

    file: str
    page: int | None = None
    start: float | None = None
    end: float | None = None
    heading: str = ""

    def to_payload(self) -> dict[str, Any]:
        """The store payload fields of this location (see :data:`PAYLOAD_KEYS`)."""
        return {"file": self.file, "page": self.page, "start": self.start, "end": self.end, "heading": self.heading}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Location:
        """The location stored in a payload; an absent or None ``heading`` is "" (as older records may hold)."""
        return cls(file=payload["file"], page=payload.get("page"), start=payload.get("start"),
                   end=payload.get("end"), heading=payload.get("heading") or "")

    def describe(self) -> str:
        """One line for people: ``report.pdf p.3``, ``talk.mp3 01:10-01:20``, ``notes.md (Setup > Wiring)``."""
        where = self.file
        if self.page is not None:
            where += f" p.{self.page}"
        if self.start is not None:
            where += f" {_clock(self.start)}-{_clock(self.end if self.end is not None else self.start)}"
        return where + (f" ({self.heading})" if self.heading else "")


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes:02d}:{rest:02d}"
