"""Text files read and chunked as they stream: the encoding found in one pass that holds nothing, the text decoded
in blocks, and sections cut into passages block by block exactly where ``chunk_text`` cuts the whole text, so a
100 MB file takes a few megabytes of memory."""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

from omnivec.kb.chunk import IngestError
from omnivec.kb.ingest.chunking import BLOCK_CHARS, _blocks, _Cutter
from omnivec.kb.ingest.options import IngestOptions

READ_BYTES = 1 << 20  # bytes read at a time while looking for the encoding
READ_CHARS = 1 << 20  # characters decoded at a time
SNIFF_CHARS = 65536  # the start of the text checked for binary data (as ``decode_text`` checks it)
LOOK_BEHIND = 4  # characters before a block the cutter reads (a sentence end just before a boundary)

Event = tuple[str, str]  # ("text", piece) or ("heading", heading path starting at the current offset)


def detect_encoding(path: Path) -> str:
    """The encoding ``decode_text`` would read the file with (UTF-8 with or without BOM, UTF-16 with a BOM, else
    Windows-1252, else Latin-1), found by decoding it in blocks (nothing kept); ``IngestError`` for binary data."""
    from omnivec.kb.ingest.text import decode_candidates, looks_binary

    with open(path, "rb") as file:
        head = file.read(4)
    for encoding in decode_candidates(head):
        try:
            sniffed = _decodes(path, encoding)
        except UnicodeDecodeError:
            continue
        if looks_binary(sniffed):
            break  # another encoding will not turn binary data into text
        return encoding
    raise IngestError(str(path), "not a text file (binary data, or an encoding other than UTF-8/UTF-16/Latin-1)")


def _decodes(path: Path, encoding: str) -> str:
    """The first ``SNIFF_CHARS`` characters of the file in ``encoding``; UnicodeDecodeError where any byte of it
    does not decode."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    sniffed: list[str] = []
    length = 0
    with open(path, "rb") as file:
        while block := file.read(READ_BYTES):
            text = decoder.decode(block)
            if length < SNIFF_CHARS:
                sniffed.append(text[:SNIFF_CHARS - length])
                length += len(sniffed[-1])
        text = decoder.decode(b"", final=True)
        if length < SNIFF_CHARS:
            sniffed.append(text[:SNIFF_CHARS - length])
    return "".join(sniffed)


def read_pieces(path: Path, encoding: str) -> Iterator[str]:
    """The file's text in pieces of up to ``READ_CHARS`` characters, line endings made ``\\n`` (as ``decode_text``
    makes them: universal newlines translate ``\\r\\n`` and ``\\r`` alike, across piece boundaries too)."""
    with io.TextIOWrapper(open(path, "rb"), encoding=encoding, newline=None) as file:  # noqa: SIM115 (wrapped)
        while piece := file.read(READ_CHARS):
            yield piece


def split_lines(pieces: Iterable[str]) -> Iterator[str]:
    """``"".join(pieces).split("\\n")``, line by line (one line in memory at a time)."""
    rest: list[str] = []
    for piece in pieces:
        if "\n" not in piece:
            rest.append(piece)
            continue
        lines = piece.split("\n")
        rest.append(lines[0])
        yield "".join(rest)
        yield from lines[1:-1]
        rest = [lines[-1]]
    yield "".join(rest)


def stream_passages(events: Iterable[Event], options: IngestOptions,
                    strip_final_newline: bool = False) -> Iterator[tuple[str, str]]:
    """``(passage, heading path)`` of the text the ``events`` spell out, as ``chunk_text(text, options, headings)``
    cuts it (``headings``: each "heading" event at the offset of the text so far), holding one block of
    ``BLOCK_CHARS`` of one section at a time. ``strip_final_newline``: the text's last character is a newline
    that is not part of it (``markdown_events`` ends every line with one)."""
    sections = _Sections(options)
    pending: list[str] = []  # heading paths at the current offset: the greatest one names the text that follows
    for kind, value in events:
        if kind == "heading":
            pending.append(value)
        elif value:
            if pending:
                yield from sections.close()
                sections.heading, pending = max(pending), []
            yield from sections.add(value)
    yield from sections.close(strip_final_newline)


class _Sections:
    """The current section's text not yet cut, cut into ``_blocks``' blocks as soon as a block's end is certain."""

    def __init__(self, options: IngestOptions) -> None:
        self.cutter = _Cutter("", options)
        self.heading = ""
        self.pieces: list[str] = []
        self.length = 0
        self.behind = ""  # the last LOOK_BEHIND characters of the text before the buffer

    def add(self, piece: str) -> Iterator[tuple[str, str]]:
        self.pieces.append(piece)
        self.length += len(piece)
        # One character of slack: the section may lose a final newline, and _blocks cuts only past BLOCK_CHARS.
        if self.length > BLOCK_CHARS + 1:
            text = "".join(self.pieces)
            start = 0
            while len(text) - start > BLOCK_CHARS + 1:
                cut = _blocks(text, start, start + BLOCK_CHARS + 1)[0][1]
                yield from self._cut(text, start, cut)
                start = cut
            self.pieces, self.length = [text[start:]], len(text) - start

    def close(self, strip_final_newline: bool = False) -> Iterator[tuple[str, str]]:
        text = "".join(self.pieces)
        if strip_final_newline and text.endswith("\n"):
            text = text[:-1]
        for start, end in _blocks(text, 0, len(text)):
            yield from self._cut(text, start, end)
        self.pieces, self.length = [], 0

    def _cut(self, text: str, start: int, end: int) -> Iterator[tuple[str, str]]:
        # The cutter reads a few characters before a block (a sentence end); those come from the text before.
        behind = (self.behind + text[:start])[-LOOK_BEHIND:]
        self.cutter.text = block = behind + text[start:end]
        for a, b in self.cutter.section(len(behind), len(block), self.heading):
            yield block[a:b], self.heading
        self.behind = (behind + text[start:end])[-LOOK_BEHIND:]
