"""Text documents: plain text, Markdown (heading paths), HTML (readable text, headings) and JSON-lines records."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from omnivec.kb.chunk import Chunk, IngestError
from omnivec.kb.ingest.chunking import HEADING_SEPARATOR, chunk_text, embedder_text
from omnivec.kb.ingest.options import MIB, IngestOptions
from omnivec.kb.location import Location

TEXT_EXTENSIONS = (".txt", ".md", ".markdown", ".html", ".htm", ".jsonl")
# Control characters other than tab/newline/CR/form feed: a file with more than a few of them is not text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_NOT_PARAGRAPH = re.compile(r"^\s*([-*+>|]|\d+[.)])(\s|$)")  # list items, quotes, tables: no setext heading


def ingest_text(path: Path, options: IngestOptions) -> Iterator[Chunk]:
    """"text" passages of a .txt, .md/.markdown, .html/.htm file (under their heading path), or of each record of
    a .jsonl file (``extra["record_id"]``, ``extra["line"]``). Text, Markdown and JSON lines are read and chunked
    as they stream (one block of a section, or one record, in memory); HTML is parsed whole, up to
    ``options.max_text_bytes``."""
    from omnivec.kb.ingest.text_stream import detect_encoding, read_pieces, split_lines, stream_passages

    if not options.wants("text"):
        return  # no text space: not read
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        yield from _html(path, options)
        return
    encoding = detect_encoding(path)
    extra = {} if encoding == "utf-8" else {"encoding": encoding}
    if suffix == ".jsonl":
        yield from _records(path, split_lines(read_pieces(path, encoding)), options)
        return
    if suffix in (".md", ".markdown"):
        events = markdown_events(split_lines(read_pieces(path, encoding)))
        passages = stream_passages(events, options, strip_final_newline=True)
    else:
        passages = stream_passages((("text", piece) for piece in read_pieces(path, encoding)), options)
    for passage, heading in passages:
        yield _chunk(path, passage, heading, extra)


def _html(path: Path, options: IngestOptions) -> Iterator[Chunk]:
    from omnivec.kb.ingest.webpage import html_sections

    size = path.stat().st_size
    if size > options.max_text_bytes:
        raise IngestError(str(path), f"text file is {size / MIB:.1f} MiB, over the {options.max_text_bytes / MIB:.1f} "
                                     "MiB limit for text (IngestOptions.max_text_bytes)")
    text, encoding = decode_text(Path(path).read_bytes(), path)
    body, headings = html_sections(text)
    extra = {} if encoding == "utf-8" else {"encoding": encoding}
    for passage, heading, _, _ in chunk_text(body, options, headings):
        yield _chunk(path, passage, heading, extra)


def decode_candidates(head: bytes) -> list[str]:
    """The encodings to try, in order, for data that starts with ``head``: the BOM's, else UTF-8, then legacy."""
    if head.startswith(codecs.BOM_UTF8):
        return ["utf-8-sig"]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return ["utf-16"]
    return ["utf-8", "cp1252", "latin-1"]


def looks_binary(start: str) -> bool:
    """Whether decoded text whose first ``SNIFF_CHARS`` characters are ``start`` is binary data, not text."""
    start = start[:65536]
    return "\x00" in start or len(_CONTROL.findall(start)) > max(2, len(start) // 200)


def decode_text(data: bytes, path: Path) -> tuple[str, str]:
    """The text of a file and the encoding it was read with: UTF-8 (BOM or not), UTF-16 with a BOM, else
    Windows-1252/Latin-1 (the usual legacy encoding). Binary data is refused. Line endings become ``\\n``."""
    for encoding in decode_candidates(data):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if looks_binary(text[:65536]):
            break  # another encoding will not turn binary data into text
        return text.replace("\r\n", "\n").replace("\r", "\n"), encoding
    raise IngestError(str(path), "not a text file (binary data, or an encoding other than UTF-8/UTF-16/Latin-1)")


def markdown_sections(text: str) -> tuple[str, list[tuple[int, str]]]:
    """Markdown without its heading lines, and ``(offset, heading path)`` where each section starts in it (see
    ``markdown_events``), for a whole text at once."""
    body: list[str] = []
    length = 0
    headings: list[tuple[int, str]] = []
    for kind, value in markdown_events(text.split("\n")):
        if kind == "heading":
            headings.append((length, value))
        else:
            body.append(value)
            length += len(value)
    return "".join(body)[:-1], headings


def markdown_events(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Markdown lines as ``("text", line + "\\n")`` for body lines and ``("heading", heading path)`` for heading
    lines, in order. A paragraph's lines are held until they cannot turn into a setext title any more.

    ATX (``## Title``) and setext (underlined with ``===``/``---``) headings count; lines inside fenced code
    blocks never do. The path nests by level: "Setup > Wiring".
    """
    reader = _Markdown()
    for line in lines:
        yield from reader.feed(line)
    yield from reader.release()


class _Markdown:
    """The line-by-line state of ``markdown_events``."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, str]] = []
        self.fence = ""
        self.paragraph = 0  # lines of the paragraph just emitted: what a setext underline turns into a heading
        self.listed = False  # whether one of them is a list item, quote or table row (kept as it goes: no rescans)
        self.held: list[str] = []  # the paragraph's lines a setext underline may still take

    def feed(self, line: str) -> Iterator[tuple[str, str]]:
        if self.fence:
            if line.strip().startswith(self.fence) and not line.strip().strip(self.fence[0]):
                self.fence = ""
        elif match := _FENCE.match(line):
            self.fence, self.paragraph = match.group(1), 0
        elif atx := _atx_heading(line):
            yield from self.release()
            yield self.heading(*atx)
            self.paragraph = 0
            return
        elif (match := _SETEXT.match(line)) and self.paragraph and not self.listed:
            title_lines = self.held[-self.paragraph:]
            del self.held[-self.paragraph:]
            yield from self.release()
            yield self.heading(1 if match.group(1)[0] == "=" else 2, " ".join(t.strip() for t in title_lines))
            self.paragraph = 0
            return
        else:
            self.paragraph = self.paragraph + 1 if line.strip() else 0
        if self.paragraph <= 1:
            self.listed = False
        self.listed = self.listed or (self.paragraph > 0 and bool(_NOT_PARAGRAPH.match(line)))
        self.held.append(line)
        if self.paragraph == 0 or self.listed:  # no underline can take these lines any more
            yield from self.release()

    def heading(self, level: int, title: str) -> tuple[str, str]:
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        if title:
            self.stack.append((level, title))
        return "heading", HEADING_SEPARATOR.join(t for _, t in self.stack)

    def release(self) -> Iterator[tuple[str, str]]:
        yield from (("text", line + "\n") for line in self.held)
        self.held.clear()


def _atx_heading(line: str) -> tuple[int, str] | None:
    """``(level, title)`` of an ATX heading line (``## Title ##``), else None. Parsed by hand, in linear time: the
    regular expression it replaces, ``^ {0,3}(#{1,6})(?:[ \\t]+(.*?))?(?:[ \\t]+#+)?[ \\t]*$``, backtracked
    quadratically on long runs of spaces (a 128 KB line: minutes). Same results, except that a title of only ``#``
    (``# ##``) is read as a closing sequence: an empty heading, as CommonMark has it."""
    rest = line.lstrip(" ")
    if len(line) - len(rest) > 3 or not rest.startswith("#"):
        return None
    title = rest.lstrip("#")
    level = len(rest) - len(title)
    if level > 6 or (title and title[0] not in " \t"):
        return None
    title = title.strip(" \t")
    bare = title.rstrip("#")
    if not bare:  # only a closing sequence: "# ##" is an empty heading (CommonMark)
        title = ""
    elif bare != title and bare[-1:] in (" ", "\t"):  # a closing sequence: " ##"
        title = bare.rstrip(" \t")
    return level, title.strip()


def _records(path: Path, lines: Iterable[str], options: IngestOptions) -> Iterator[Chunk]:
    """One document per line: ``{"text": ..., "title"?: ..., "_id"/"id"?: ...}`` (a BEIR corpus.jsonl), record by
    record; a bad line raises ``IngestError`` when it is reached."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise IngestError(str(path), f"line {number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise IngestError(str(path), f'line {number}: expected a JSON object with a "text" string')
        title = record.get("title") or ""
        if not isinstance(title, str):
            raise IngestError(str(path), f'line {number}: "title" must be a string')
        record_id = record.get("_id", record.get("id"))
        extra = {"line": number} if record_id is None else {"line": number, "record_id": str(record_id)}
        body = record["text"] if record["text"].strip() else title
        for passage, heading, _, _ in chunk_text(body, options, [(0, title)] if title and body is not title else []):
            yield _chunk(path, passage, heading, extra)


def _chunk(path: Path, text: str, heading: str, extra: dict) -> Chunk:
    return Chunk(Location(str(path), heading=heading), modality="text", kind="text",
                 content=embedder_text(text, heading), text=text, extra=dict(extra))
