"""Readable text of an HTML page with the standard library's parser: scripts, styles and navigation dropped,
block elements as paragraph breaks, h1-h6 as a heading path."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from omnivec.kb.ingest.chunking import HEADING_SEPARATOR

SKIPPED = frozenset({"script", "style", "nav", "noscript", "template", "svg", "title", "head"})
BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "li", "main", "ol", "p", "pre",
    "section", "summary", "table", "tbody", "thead", "tfoot", "tr", "ul",
})
CELLS = frozenset({"td", "th"})
HEADINGS = {f"h{level}": level for level in range(1, 7)}
_SPACE = re.compile(r"\s+")


def html_sections(html: str) -> tuple[str, list[tuple[int, str]]]:
    """The page's text and ``(offset, heading path)`` where each section starts in it (entities decoded)."""
    parser = _Reader()
    parser.feed(html)
    parser.close()
    return "".join(parser.out), parser.headings


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.length = 0
        self.headings: list[tuple[int, str]] = []
        self.stack: list[tuple[int, str]] = []
        self.skip: list[str] = []  # open skipped elements; their text is dropped
        self.skipped: dict[str, int] = {}  # how many of each are open: no scan of a deeply nested stack per tag
        self.pre = 0
        self.title: list[str] | None = None  # text of the heading being read
        self.level = 0
        self.pending = ""  # the break owed before the next text

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "body" and self.skipped.get("head"):  # a <head> left open ends where the body begins
            self._close("head")
        if tag in SKIPPED:
            self.skip.append(tag)
            self.skipped[tag] = self.skipped.get(tag, 0) + 1
        elif tag in HEADINGS and not self.skip:
            self._break("\n\n")
            self.title, self.level = [], HEADINGS[tag]
        elif tag == "br":
            self._break("\n")
        elif tag in CELLS:
            self._break(" ")
        elif tag in BLOCKS:
            self._break("\n\n")
            self.pre += tag == "pre"

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if tag not in SKIPPED:  # <br/>, <hr/>; a self-closed <script/> opens nothing
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED:
            if self.skipped.get(tag):
                self._close(tag)
        elif tag in HEADINGS and self.title is not None:
            title = _SPACE.sub(" ", "".join(self.title)).strip()
            while self.stack and self.stack[-1][0] >= self.level:
                self.stack.pop()
            if title:
                self.stack.append((self.level, title))
            self.headings.append((self.length, HEADING_SEPARATOR.join(t for _, t in self.stack)))
            self.title = None
            self._break("\n\n")
        elif tag in BLOCKS:
            self._break("\n\n")
            self.pre = max(0, self.pre - (tag == "pre"))

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.title is not None:
            self.title.append(data)
            return
        if not self.pre:
            data = _SPACE.sub(" ", data)
            if self.pending or not self.out or self.out[-1].endswith((" ", "\n")):
                data = data.lstrip()
        if not data:
            return
        if self.pending and self.out:
            self._write(self.pending)
        self.pending = ""
        self._write(data)

    def _close(self, tag: str) -> None:
        """Close the innermost open ``tag`` and the skipped elements opened inside it."""
        while self.skip:
            closed = self.skip.pop()
            self.skipped[closed] -= 1
            if closed == tag:
                return

    def _break(self, kind: str) -> None:
        # The strongest break owed wins: a paragraph over a line over a cell separator.
        rank = {"": 0, " ": 1, "\n": 2, "\n\n": 3}
        if rank[kind] > rank[self.pending]:
            self.pending = kind

    def _write(self, text: str) -> None:
        self.out.append(text)
        self.length += len(text)
