"""Cut the texts of (query, document) pairs to about a model's token limit before they are paired: pair
tokenization (and a template's own offset-mapped tokenization) costs memory in proportion to the whole text, so a
1 MB query scored against 50 documents would tokenize 50 MB. What a pair's own truncation keeps is unchanged, so
scores are too; a text within the limit is passed on as it is. Texts are cut on the side the tokenizer truncates
(``truncation_side``): a left-truncating tokenizer keeps their ends."""

from __future__ import annotations

from typing import Any

from omnivec.modules.transformer import CHARS_PER_TOKEN_BOUND  # the first, cheap bound, as for single texts

# Characters a long text is counted in at a time (split at whitespace, where pre-tokenizers split too).
PIECE_CHARS = 65536
# Tokens kept past the limit, so retokenizing the cut text (inside a pair or a template) changes nothing that
# the pair's own truncation keeps.
TOKEN_MARGIN = 8


class PairCutter:
    """Cuts pairs' texts for a tokenizer and a token limit; each distinct text is tokenized once per call."""

    def __init__(self, tokenizer: Any, max_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.keep = max_tokens + TOKEN_MARGIN
        self.left = getattr(tokenizer, "truncation_side", "right") == "left"
        self._ends: dict[str, list[int] | None] = {}
        self._lengths: dict[str, int] = {}

    def __call__(self, query: Any, document: Any) -> tuple[Any, Any]:
        values = (query, document)
        ends = [self._token_ends(x) if isinstance(x, str) else None for x in values]
        keeps = [self.keep, self.keep]
        cut = tuple(_cut(x, e, k, self.left) for x, e, k in zip(values, ends, keeps, strict=True))
        if not all(isinstance(x, str) for x in values) or (ends[0] is None and ends[1] is None):
            return cut  # type: ignore[return-value]
        # "Longest first" pair truncation gives the odd token to the longer text (the second on a tie), so the cut
        # texts must keep the order of the texts' lengths. Retokenizing a cut text can change its count by a token
        # or two (a word piece at the cut starts a word), so the counts are checked and the shorter side lengthened.
        lengths = [self._length(x, e) for x, e in zip(values, ends, strict=True)]
        want = _sign(lengths[0] - lengths[1])
        for _ in range(4):
            counts = [self._count(x) for x in cut]
            got = _sign(counts[0] - counts[1])
            if got == want:
                break
            short = 0 if (want > 0 or (want == 0 and counts[0] < counts[1])) else 1
            if ends[short] is None:
                break  # whole already: cannot be lengthened (a text under the limit needs no cut)
            keeps[short] += abs(counts[0] - counts[1]) + (want != 0)
            cut = tuple(_cut(x, e, k, self.left) for x, e, k in zip(values, ends, keeps, strict=True))
        return cut  # type: ignore[return-value]

    def _length(self, text: str, ends: list[int] | None) -> int:
        """The tokens ``text`` has: counted in pieces past the character bound (memory stays bounded)."""
        if ends is None:
            return self._count(text)
        bound = self.keep * CHARS_PER_TOKEN_BOUND
        if len(text) <= bound:
            return len(ends)
        if text not in self._lengths:
            self._lengths[text] = sum(self._count(piece) for piece in _pieces(text, PIECE_CHARS))
        return self._lengths[text]

    def _count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def _token_ends(self, text: str) -> list[int] | None:
        """For i tokens kept, the characters kept (``[i - 1]``, from the side truncation keeps, within the character
        bound), or None when ``text`` needs no cutting."""
        if text not in self._ends:
            self._ends[text] = _token_ends(self.tokenizer, text, self.keep, self.left)
        return self._ends[text]


def _token_ends(tokenizer: Any, text: str, keep: int, left: bool) -> list[int] | None:
    if len(text) * 4 < keep:
        return None  # at most 4 tokens a character (byte-level BPE of a 4-byte character): it fits
    bound = keep * CHARS_PER_TOKEN_BOUND
    bounded = text[-bound:] if left else text[:bound]
    if not getattr(tokenizer, "is_fast", False):  # no offsets: the character bound only
        return [len(bounded)] * (keep + 1) if len(bounded) < len(text) else None
    offsets = tokenizer(bounded, add_special_tokens=False, return_offsets_mapping=True, verbose=False)["offset_mapping"]
    if not (len(offsets) > keep or len(bounded) < len(text)):
        return None
    if left:  # the last i tokens start at the i-th start offset from the end
        return [len(bounded) - start for start, _ in reversed(offsets)]
    return [end for _, end in offsets]


def _cut(value: Any, ends: list[int] | None, keep: int, left: bool = False) -> Any:
    if ends is None:
        return value
    kept = ends[min(keep, len(ends)) - 1] if ends else 0
    return value[len(value) - kept:] if left else value[:kept]


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def _pieces(text: str, size: int) -> list[str]:
    """``text`` in consecutive pieces of about ``size`` characters, each ending before a whitespace."""
    pieces, start = [], 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            space = max(text.rfind(" ", start, end), text.rfind("\n", start, end))
            end = space if space > start else end
        pieces.append(text[start:end])
        start = end
    return pieces
