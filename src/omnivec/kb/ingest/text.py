"""Text documents: plain text, Markdown (heading paths), HTML (readable text, headings) and JSON-lines records."""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

from omnivec.kb.chunk import Chunk, IngestError
from omnivec.kb.ingest.chunking import HEADING_SEPARATOR, Passage, chunk_text, embedder_text
from omnivec.kb.ingest.options import MIB, IngestOptions
from omnivec.kb.location import Location

TEXT_EXTENSIONS = (".txt", ".md", ".markdown", ".html", ".htm", ".jsonl")
# Control characters other than tab/newline/CR/form feed: a file with more than a few of them is not text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_NOT_PARAGRAPH = re.compile(r"^\s*([-*+>|]|\d+[.)])(\s|$)")  # list items, quotes, tables: no setext heading


def ingest_text(path: Path, options: IngestOptions) -> list[Chunk]:
    """"text" passages of a .txt, .md/.markdown, .html/.htm file (under their heading path), or of each record of
    a .jsonl file (``extra["record_id"]``, ``extra["line"]``)."""
    if not options.wants("text"):
        return []  # no text space: not read
    size = path.stat().st_size
    if size > options.max_text_bytes:
        raise IngestError(str(path), f"text file is {size / MIB:.1f} MiB, over the {options.max_text_bytes / MIB:.1f} "
                                     "MiB limit for text (IngestOptions.max_text_bytes)")
    text, encoding = decode_text(Path(path).read_bytes(), path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _records(path, text, options)
    if suffix in (".md", ".markdown"):
        body, headings = markdown_sections(text)
    elif suffix in (".html", ".htm"):
        from omnivec.kb.ingest.webpage import html_sections

        body, headings = html_sections(text)
    else:
        body, headings = text, []
    extra = {} if encoding == "utf-8" else {"encoding": encoding}
    return [_chunk(path, passage, extra) for passage in chunk_text(body, options, headings)]


def decode_text(data: bytes, path: Path) -> tuple[str, str]:
    """The text of a file and the encoding it was read with: UTF-8 (BOM or not), UTF-16 with a BOM, else
    Windows-1252/Latin-1 (the usual legacy encoding). Binary data is refused. Line endings become ``\\n``."""
    if data.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    else:
        candidates = ["utf-8", "cp1252", "latin-1"]
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        controls = len(_CONTROL.findall(text[:65536]))
        if "\x00" in text[:65536] or controls > max(2, len(text[:65536]) // 200):
            break  # another encoding will not turn binary data into text
        return text.replace("\r\n", "\n").replace("\r", "\n"), encoding
    raise IngestError(str(path), "not a text file (binary data, or an encoding other than UTF-8/UTF-16/Latin-1)")


def markdown_sections(text: str) -> tuple[str, list[tuple[int, str]]]:
    """Markdown without its heading lines, and ``(offset, heading path)`` where each section starts in it.

    ATX (``## Title``) and setext (underlined with ``===``/``---``) headings count; lines inside fenced code
    blocks never do. The path nests by level: "Setup > Wiring".
    """
    body: list[str] = []
    length = 0
    headings: list[tuple[int, str]] = []
    stack: list[tuple[int, str]] = []
    fence = ""
    paragraph = 0  # lines of the paragraph just emitted: what a setext underline turns into a heading
    listed = False  # whether one of them is a list item, quote or table row (kept as it goes: no rescans)

    def heading(level: int, title: str) -> None:
        while stack and stack[-1][0] >= level:
            stack.pop()
        if title:
            stack.append((level, title))
        headings.append((length, HEADING_SEPARATOR.join(t for _, t in stack)))

    for line in text.split("\n"):
        if fence:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = ""
        elif match := _FENCE.match(line):
            fence, paragraph = match.group(1), 0
        elif atx := _atx_heading(line):
            heading(*atx)
            paragraph = 0
            continue
        elif (match := _SETEXT.match(line)) and paragraph and not listed:
            title_lines = body[-paragraph:]
            del body[-paragraph:]
            length -= sum(len(t) + 1 for t in title_lines)
            heading(1 if match.group(1)[0] == "=" else 2, " ".join(t.strip() for t in title_lines))
            paragraph = 0
            continue
        else:
            paragraph = paragraph + 1 if line.strip() else 0
        if paragraph <= 1:
            listed = False
        listed = listed or (paragraph > 0 and bool(_NOT_PARAGRAPH.match(line)))
        body.append(line)
        length += len(line) + 1
    return "\n".join(body), headings


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


def _records(path: Path, text: str, options: IngestOptions) -> list[Chunk]:
    """One document per line: ``{"text": ..., "title"?: ..., "_id"/"id"?: ...}`` (a BEIR corpus.jsonl)."""
    chunks: list[Chunk] = []
    for number, line in enumerate(text.split("\n"), start=1):
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
        for passage in chunk_text(body, options, [(0, title)] if title and body is not title else []):
            chunks.append(_chunk(path, passage, extra))
    return chunks


def _chunk(path: Path, passage: Passage, extra: dict) -> Chunk:
    text, heading, _, _ = passage
    return Chunk(Location(str(path), heading=heading), modality="text", kind="text",
                 content=embedder_text(text, heading), text=text, extra=dict(extra))
