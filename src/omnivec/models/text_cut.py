"""Cut the texts of (query, document) pairs to about a model's token limit before they are paired: pair
tokenization (and a template's own offset-mapped tokenization) costs memory in proportion to the whole text, so a
1 MB query scored against 50 documents would tokenize 50 MB. What a pair's own truncation keeps is unchanged, so
scores are too; a text within the limit is passed on as it is. Texts are cut on the side the tokenizer truncates
(``truncation_side``): a left-truncating tokenizer keeps their ends."""

from __future__ import annotations

from typing import Any

from omnivec.modules.transformer import CHARS_PER_TOKEN_BOUND  # the first, cheap bound, as for single texts

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

    def __call__(self, query: Any, document: Any) -> tuple[Any, Any]:
        ends = [self._token_ends(x) if isinstance(x, str) else None for x in (query, document)]
        keeps = [self.keep, self.keep]
        if ends[0] is not None and ends[1] is not None and len(ends[0]) != len(ends[1]):
            # Both cut: the longer keeps one token more, so "longest first" truncation still picks the same side.
            keeps[len(ends[1]) > len(ends[0])] += 1
        return tuple(_cut(x, e, k, self.left)  # type: ignore[return-value]
                     for x, e, k in zip((query, document), ends, keeps))

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
