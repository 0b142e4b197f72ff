"""Text from outside (file names, file contents, error messages naming them) made safe to print on a terminal."""

from __future__ import annotations

import re

# C0 and C1 controls and DEL (escape sequences, carriage returns, bells), line and paragraph separators, the bidi
# controls that can make a name read backwards, and lone surrogates (a file name's undecodable bytes, which
# print() cannot encode).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str, keep_newlines: bool = False) -> str:
    """``text`` with those characters escaped as ``repr`` writes them (``\\n``, ``\\x1b``, ``\\u202e``); every other
    character, backslashes included, is left as it is. ``keep_newlines``: for multi-line messages."""
    def escape(match: re.Match[str]) -> str:
        char = match.group()
        return char if keep_newlines and char == "\n" else repr(char)[1:-1]

    return _UNPRINTABLE.sub(escape, text)
