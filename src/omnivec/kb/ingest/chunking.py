"""Token-aware text chunking: passages that fit the embedder's budget, cut at the best boundary available
(paragraph, then sentence, then line, then word or token), overlapping a little, each under its heading path."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from omnivec.kb.ingest.options import IngestOptions

HEADING_SEPARATOR = " > "
# Whitespace runs are candidate boundaries; CJK full stops end a sentence without any space after them.
_BOUNDARY = re.compile(r"\s+|(?<=[。！？])(?=\S)")
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")
_WORD = re.compile(r"\S+")
PARAGRAPH, SENTENCE, LINE, INSIDE = 3, 2, 1, 0  # boundary ranks: higher is a better place to cut
# A section longer than this is cut in blocks (at a paragraph, line or word break) chunked one by one: time and
# memory stay linear in the text, and passages never span two blocks. Documents below it are cut as before.
BLOCK_CHARS = 1 << 20
COUNT_BATCH = 4096  # atoms counted per tokenizer call
PROBE_CHARS_PER_TOKEN = 16  # a piece of n tokens is first counted on n * this many characters

Passage = tuple[str, str, int, int]  # (passage text, heading path, char_start, char_end)


def tokenizer_counters(tokenizer: Any) -> tuple[Callable[[str], int], Callable[[list[str]], list[int]],
                                                 Callable[[str], list[tuple[int, int]]] | None]:
    """``count_tokens``, ``count_tokens_many`` and ``word_offsets`` (fast tokenizers only, else None) for
    ``IngestOptions`` from a Hugging Face tokenizer (special tokens left out). A fast tokenizer's backend counts
    many short texts ~3x quicker than the Python wrapper, which is used whenever the backend has truncation or
    padding set (another caller may have left it so)."""
    def count(text: str) -> int:
        # verbose=False: counting a long section is fine; transformers would warn it exceeds the model's window
        return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def offsets(text: str) -> list[tuple[int, int]]:
        return tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)["offset_mapping"]

    def count_many(texts: list[str]) -> list[int]:
        backend = getattr(tokenizer, "backend_tokenizer", None) if getattr(tokenizer, "is_fast", False) else None
        if backend is not None and backend.truncation is None and backend.padding is None:
            return [len(encoding.ids) for encoding in backend.encode_batch(texts, add_special_tokens=False)]
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]]

    return count, count_many, offsets if getattr(tokenizer, "is_fast", False) else None


def embedder_text(passage: str, heading: str) -> str:
    """What the embedder sees: the heading path as context above the passage."""
    return f"{heading}\n\n{passage}" if heading else passage


def chunk_text(text: str, options: IngestOptions, headings: Sequence[tuple[int, str]] = ()) -> list[Passage]:
    """Cut ``text`` into passages; ``headings`` are ``(char_offset, heading_path)`` where each section starts.

    Passages never cross a section start. ``embedder_text(passage, heading)`` holds at most ``options.chunk_tokens``
    tokens (as ``options.token_count`` counts them, special tokens included) unless the heading path alone takes
    more than half of it, and the passage alone never does. ``text[char_start:char_end] == passage``.
    """
    cutter = _Cutter(text, options)
    bounds = sorted((max(0, min(len(text), offset)), path) for offset, path in headings)
    if not bounds or bounds[0][0] > 0:
        bounds.insert(0, (0, ""))
    out: list[Passage] = []
    for index, (start, heading) in enumerate(bounds):
        end = bounds[index + 1][0] if index + 1 < len(bounds) else len(text)
        for block_start, block_end in _blocks(text, start, end):
            out.extend((text[a:b], heading, a, b) for a, b in cutter.section(block_start, block_end, heading))
    return out


def _blocks(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """``[start, end)`` in pieces of at most ``BLOCK_CHARS``, each ending at the last paragraph break, else line
    break, else whitespace, in its second half (else cut blindly)."""
    blocks = []
    while end - start > BLOCK_CHARS:
        limit, half = start + BLOCK_CHARS, start + BLOCK_CHARS // 2
        cut = next((c + len(sep) for sep in ("\n\n", "\n", " ") if (c := text.rfind(sep, half, limit)) >= 0),
                   limit)
        blocks.append((start, cut))
        start = cut
    blocks.append((start, end))
    return blocks


@dataclass
class _Atom:
    """A span between boundaries (a sentence or line, or a token-cut piece of an over-long one)."""

    start: int
    end: int
    cost: int
    rank: int  # rank of the boundary just before this atom


class _Cutter:
    def __init__(self, text: str, options: IngestOptions) -> None:
        self.text, self.options = text, options
        # Tokens a counter adds to every call ([CLS]/[SEP]...): counted once per passage, not once per atom.
        self.special = options.token_count("")
        self.limit = options.chunk_tokens - self.special

    def cost(self, start: int, end: int) -> int:
        return self.options.token_count(self.text[start:end]) - self.special

    def section(self, start: int, end: int, heading: str) -> list[tuple[int, int]]:
        first, last = start, end
        while first < last and self.text[first].isspace():
            first += 1
        while last > first and self.text[last - 1].isspace():
            last -= 1
        if first == last:
            return []
        heading_cost = self.options.token_count(heading + "\n\n") - self.special if heading else 0
        budget = max(self.limit - heading_cost, self.limit // 2)
        # Most sections and records fit whole: one count, no cutting. One with more words than the budget cannot
        # (every word is at least one token), and is not counted whole: a long text costs one count per atom only.
        words = sum(1 for _ in islice(_WORD.finditer(self.text, first, last), budget + 1))
        if words <= budget and self.cost(first, last) <= budget:
            return [(first, last)]
        atoms = self._atoms(start, end, budget)
        spans: list[tuple[int, int]] = []
        i, lead = 0, None  # lead: (char start, cost) of the overlap carried over from the previous passage
        while i < len(atoms):
            first, used = (lead if lead else (atoms[i].start, 0))
            j = i
            while j < len(atoms) and used + atoms[j].cost <= budget:
                used += atoms[j].cost
                j += 1
            if j == i:
                if lead:  # the carried overlap and the next atom do not fit together: drop the overlap
                    lead = None
                    continue
                j = i + 1
            if j < len(atoms):
                j = self._best_end(atoms, i, j, budget, lead[1] if lead else 0)
            # Atom costs add up to an estimate; the joined text is what must fit.
            cost = self.cost(first, atoms[j - 1].end)
            while cost > budget and j - 1 > i:
                j -= 1
                cost = self.cost(first, atoms[j - 1].end)
            if lead and cost > budget:
                lead = None
                continue
            spans.append((first, atoms[j - 1].end))
            lead = self._overlap(first, atoms[j - 1].end, atoms, i, j) if j < len(atoms) else None
            i = j
        return spans

    def _atoms(self, start: int, end: int, budget: int) -> list[_Atom]:
        spans: list[tuple[int, int, int]] = []
        atom_start, rank = start, PARAGRAPH
        for match in _BOUNDARY.finditer(self.text, start, end):
            if match.start() <= atom_start:  # whitespace where an atom would start: skip it
                atom_start = max(atom_start, match.end())
                continue
            boundary = self._rank(match)
            if boundary == INSIDE:
                continue
            spans.append((atom_start, match.start(), rank))
            rank, atom_start = boundary, match.end()
        stop = self._rstrip(atom_start, end)
        if atom_start < end and not self.text[atom_start:stop].isspace():
            spans.append((atom_start, stop, rank))
        atoms: list[_Atom] = []
        counts: dict[str, int] = {}  # many short atoms repeat ("}", "-", a number): each distinct one counted once
        for offset in range(0, len(spans), COUNT_BATCH):  # and one tokenizer call per batch
            texts = [self.text[a:b] for a, b, _ in spans[offset:offset + COUNT_BATCH]]
            new = list(dict.fromkeys(t for t in texts if t not in counts))
            counts.update(zip(new, self.options.token_counts(new), strict=True))
            for (a, b, rank), atom in zip(spans[offset:offset + COUNT_BATCH], texts, strict=True):
                self._add(atoms, a, b, rank, budget, counts[atom] - self.special)
        return atoms

    def _rank(self, match: re.Match) -> int:
        space = match.group()
        if not space:
            return SENTENCE
        if _BLANK_LINE.search(space):
            return PARAGRAPH
        if _SENTENCE_END.search(self.text[max(0, match.start() - 4):match.start()]):
            return SENTENCE
        return LINE if "\n" in space else INSIDE

    def _add(self, atoms: list[_Atom], start: int, end: int, rank: int, budget: int, cost: int) -> None:
        if cost <= budget:
            atoms.append(_Atom(start, end, cost, rank))
            return
        # Pieces leave room for the overlap carried into the passage that starts with them.
        piece_budget = max(budget - self.options.overlap_tokens, budget // 2)
        for index, (a, b) in enumerate(self._split_long(start, end, piece_budget)):
            atoms.append(_Atom(a, b, self.cost(a, b), rank if index == 0 else INSIDE))

    def _split_long(self, start: int, end: int, budget: int) -> list[tuple[int, int]]:
        """Pieces of one over-long sentence, each within ``budget``: cut between tokens when the tokenizer gives
        offsets, else between words, else (a single word longer than the budget) between characters."""
        piece = self.text[start:end]
        if self.options.tokenize_offsets is not None:
            cuts = sorted({start + a for a, b in self.options.tokenize_offsets(piece) if b > a and a > 0})
        else:
            cuts = [start + m.end() for m in _WORD.finditer(piece)]
        cuts = [c for c in cuts if start < c < end] + [end]
        pieces, pos = [], start
        words = chars = 1  # the previous piece's size: where the search for the next one starts
        while pos < end:
            first = bisect_right(cuts, pos)
            huge = cuts[first] - pos > budget * PROBE_CHARS_PER_TOKEN and self.options.word_offsets is not None
            best = None if huge else self._longest_fit(pos, cuts, first, budget, words)
            if best is not None:
                words = bisect_right(cuts, best) - first
            elif self.options.word_offsets is not None:  # the next word alone is over budget: cut between tokens
                best = self._cut_word(self.options.word_offsets, pos, cuts[first], budget, chars)
                chars = best - pos
            else:  # ... or between characters, found by counting
                best = self._longest_fit(pos, range(pos + 1, cuts[first] + 1), 0, budget, chars) or pos + 1
                chars = best - pos
            stop = self._rstrip(pos, best)
            pieces.append((pos, stop))
            pos = best
            while pos < end and self.text[pos].isspace():
                pos += 1
        return pieces

    def _cut_word(self, word_offsets: Callable[[str], list[tuple[int, int]]], pos: int, stop: int, budget: int,
                  chars: int) -> int:
        """Where a piece of the word ``text[pos:stop]`` (over ``budget``) ends: the furthest token start that fits
        (``word_offsets``: the tokens' character offsets), looked for in a window of twice the previous piece's
        length, widened until it holds more than ``budget``."""
        window = min(stop, pos + max(2 * chars, budget))
        while True:
            starts = [pos + a for a, b in word_offsets(self.text[pos:window]) if b > a > 0]
            if len(starts) > budget or window == stop or window - pos >= budget * PROBE_CHARS_PER_TOKEN:
                return self._longest_fit(pos, starts + [window], 0, budget, budget) or pos + 1
            window = min(stop, pos + 2 * (window - pos))

    def _longest_fit(self, pos: int, cuts: Sequence[int], lo: int, budget: int, guess: int = 1) -> int | None:
        """The furthest of ``cuts[lo:]`` whose prefix from ``pos`` fits ``budget``. Token counts grow with the
        prefix, so it is a search: it starts ``guess`` cuts out (the previous piece's size) and gallops from there,
        so a probe never counts much more text than the answer holds (a binary search over a whole long text would
        count all of it for every piece: quadratic)."""
        def fits(index: int) -> bool:
            stop = self._rstrip(pos, cuts[index])
            # A far cut (one word of a megabyte) is first tried on a prefix: over budget there, over budget whole.
            if stop - pos > budget * PROBE_CHARS_PER_TOKEN and self.cost(
                    pos, pos + budget * PROBE_CHARS_PER_TOKEN) > budget:
                return False
            return self.cost(pos, stop) <= budget

        best, hi, step = None, len(cuts) - 1, 1
        if lo > hi:
            return None
        start = min(lo + max(guess, 1) - 1, hi)
        if fits(start):
            best, lo = start, start + 1
            while lo <= hi:  # gallop out
                probe = min(lo + step - 1, hi)
                if not fits(probe):
                    hi = probe - 1
                    break
                best, lo, step = probe, probe + 1, step * 2
        else:
            hi = start - 1
            while lo <= hi:  # gallop back
                probe = max(hi - step + 1, lo)
                if fits(probe):
                    best, lo = probe, probe + 1
                    break
                hi, step = probe - 1, step * 2
        while lo <= hi:
            mid = (lo + hi) // 2
            if fits(mid):
                best, lo = mid, mid + 1
            else:
                hi = mid - 1
        return None if best is None else cuts[best]

    def _rstrip(self, pos: int, stop: int) -> int:
        while stop > pos + 1 and self.text[stop - 1].isspace():
            stop -= 1
        return stop

    def _best_end(self, atoms: list[_Atom], i: int, j: int, budget: int, used: int) -> int:
        """Back off from the greedy end ``j`` to the best-ranked boundary in the second half of the budget."""
        best, best_rank = j, atoms[j].rank
        for k in range(i + 1, j):
            used += atoms[k - 1].cost
            if used >= budget // 2 and atoms[k].rank > best_rank:
                best, best_rank = k, atoms[k].rank
        return best

    def _overlap(self, start: int, end: int, atoms: list[_Atom], i: int, j: int) -> tuple[int, int] | None:
        """Where the next passage starts: the earliest word in this one whose tail fits ``overlap_tokens``,
        moved forward to a sentence start when that still keeps half of the overlap."""
        limit = self.options.overlap_tokens
        if limit <= 0:
            return None
        words = [m.start() for m in _WORD.finditer(self.text, start, end)][1:]
        fit = self._earliest_fit(words, end, limit)
        if fit is None:
            return None
        for atom in atoms[i:j]:
            if atom.start >= fit[0] and atom.rank >= LINE:
                cost = self.cost(atom.start, end)
                if cost >= limit // 2:
                    return atom.start, cost
                break
        return fit

    def _earliest_fit(self, starts: list[int], end: int, limit: int) -> tuple[int, int] | None:
        """The earliest start whose tail up to ``end`` fits ``limit``, and that tail's cost."""
        best, lo, hi = None, 0, len(starts) - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            cost = self.cost(starts[mid], end)
            if cost <= limit:
                best, hi = (starts[mid], cost), mid - 1
            else:
                lo = mid + 1
        return best
