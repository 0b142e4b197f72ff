"""The lexical (BM25) space's text analysis, shared by both stores: what a record indexes, which exact codes are
kept whole, the languages, and the analyzer the Qdrant store applies itself (LanceDB's FTS index runs the same
steps natively; the order below is the one Lance applies, checked with ``table.tokenize``).

Words: split at every character that is not a letter or digit (tantivy's "simple" tokenizer, which LanceDB's FTS
uses), tokens of 40 bytes or more dropped, lowercased, Snowball-stemmed, stop words dropped (compared after
stemming, as Lance does), accents folded to ASCII ("häuser" -> "haus", "café" -> "cafe").

Codes (issue 16, item 6): that tokenizer cuts ``E-4012`` into ``e`` + ``4012``, ``X2-15B`` into ``x2`` + ``15b``,
``ISO 9001:2015`` into ``iso`` + ``9001`` + ``2015``, ``pump_manual.pdf`` into ``pump`` + ``manual`` + ``pdf``
and ``v2.3.1`` into ``v2`` + ``3`` + ``1``. A query for ``E-4012`` then matches any text with an "e" and a
"4012" anywhere, and ``E-4021`` scores like ``E-4012``. So :func:`code_terms` also keeps such tokens whole, and
both stores index them as separate, unstemmed terms: a query holding the code matches the chunk holding it on a
rare term worth a high IDF, on top of its words."""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any

from omnivec.errors import ConfigError, InputError
from omnivec.kb.stores.stopwords import STOP_WORDS

# What both stores support: the stemmers of LanceDB's FTS (tantivy's Snowball set), all of which PyStemmer has.
LEXICAL_LANGUAGES = ("arabic", "danish", "dutch", "english", "finnish", "french", "german", "greek", "hungarian",
                     "italian", "norwegian", "portuguese", "romanian", "russian", "spanish", "swedish", "tamil",
                     "turkish")
MAX_TOKEN_BYTES = 40  # Lance's max_token_length: longer tokens are not indexed
_WORD = re.compile(r"[^\W_]+")  # letters and digits: "_" separates, as in tantivy's simple tokenizer
# A code candidate: a run of letters, digits and the joiners codes use; "/" and "\" split paths into their parts.
_CANDIDATE = re.compile(r"[\w.:\-+#]+")
_EDGE = re.compile(r"^[^\w]+|[^\w]+$|^_+|_+$")
_JOINED = re.compile(r"[^\W_][-_.:+#]+[^\W_]")
_ACRONYM = re.compile(r"[A-Z]{2,6}")
_FOLD = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ð": "d", "ł": "l", "þ": "th",
                       "ı": "i"})


class LexicalLanguageError(ConfigError, InputError):
    """A lexical language no store supports: a setting (kb.toml) and an argument, so both error kinds."""


@dataclass(frozen=True)
class LexicalSettings:
    """How a lexical collection tokenizes: ``language`` picks the stemmer and stop words
    (:data:`LEXICAL_LANGUAGES`; stop-word lists in :mod:`omnivec.kb.stores.stopwords`)."""

    language: str = "english"

    def __post_init__(self) -> None:
        language = self.language.strip().lower() if isinstance(self.language, str) else self.language
        if language not in LEXICAL_LANGUAGES:
            raise LexicalLanguageError(f"lexical language {self.language!r} is not supported; use one of "
                                       f"{', '.join(LEXICAL_LANGUAGES)}.")
        object.__setattr__(self, "language", language)

    @property
    def stop_words(self) -> frozenset[str]:
        """The stop words as both stores compare them: each word and its stem (Lance compares stems)."""
        return _stop_words(self.language)


@functools.cache
def _stop_words(language: str) -> frozenset[str]:
    words = STOP_WORDS.get(language, frozenset())
    return words | frozenset(stemmer(language).stemWords(sorted(words)))


def lexical_text(payload: dict[str, Any]) -> str:
    """What a lexical record indexes: the file's base name, the heading path and the text, one per line."""
    file = str(payload.get("file") or "")
    name = re.split(r"[/\\]", file)[-1]
    parts = (name, str(payload.get("heading") or ""), str(payload.get("text") or ""))
    return "\n".join(part for part in parts if part)


def code_terms(text: str) -> list[str]:
    """The exact tokens of ``text`` kept whole, lowercased, in order (repeats kept: they are term frequency).

    A code is a token (split at whitespace, punctuation other than ``- _ . : + #``, and ``/`` ``\\``), trimmed of
    the punctuation around it, that has a digit (``e-4012``, ``x2-15b``, ``9001:2015``, ``v2.3.1``, ``15``), joins
    letters or digits with ``- _ . : + #`` (``pump_manual.pdf``), or is a 2-6 letter acronym written in capitals
    (``ISO`` -> ``iso``). Single characters and tokens of 40 bytes or more are left out."""
    found = []
    for candidate in _CANDIDATE.findall(text):
        token = _EDGE.sub("", candidate)
        if len(token) < 2 or len(token.encode()) >= MAX_TOKEN_BYTES:
            continue
        if any(c.isdigit() for c in token) or _JOINED.search(token) or _ACRONYM.fullmatch(token):
            found.append(token.lower())
    return found


_STEMMERS = threading.local()  # a PyStemmer Stemmer must not be shared between threads (it has a cache)


def stemmer(language: str) -> Any:
    """PyStemmer's Snowball stemmer for ``language``, one per thread."""
    cache: dict[str, Any] = _STEMMERS.__dict__.setdefault("by_language", {})
    if language not in cache:
        import Stemmer  # PyStemmer

        cache[language] = Stemmer.Stemmer(language)
    return cache[language]


def fold(term: str) -> str:
    """``term`` with accents and ligatures folded to ASCII letters, as Lance's ascii_folding does."""
    decomposed = unicodedata.normalize("NFKD", term.translate(_FOLD))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def analyze(text: str, settings: LexicalSettings) -> list[str]:
    """The word terms of ``text`` in order (repeats kept), as LanceDB's FTS index makes them."""
    words = [w.lower() for w in _WORD.findall(text) if len(w.encode()) < MAX_TOKEN_BYTES]
    stop = settings.stop_words
    return [term if term.isascii() else fold(term) for term in stemmer(settings.language).stemWords(words)
            if term not in stop]
