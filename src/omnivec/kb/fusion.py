"""Merging per-space result lists into one ranking: reciprocal rank fusion or a normalised convex combination,
each space weighted. The defaults were chosen by measuring on BEIR SciFact (bench/README.md, "Hybrid retrieval")."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from omnivec.errors import InputError

FUSIONS = ("convex", "rrf")
MAX_RRF_K = 10_000
# Measured on SciFact (bench/eval_fusion.py, all-MiniLM-L6-v2 + BM25, nDCG@10): convex 0.4/0.6 0.733, 0.5/0.5 0.724,
# RRF (k 10-100, any weights) 0.701-0.708; the lexical weight chosen on either half of the queries holds on the other.
DEFAULT_WEIGHTS = {"lexical": 1.5}


@dataclass(frozen=True)
class FusionSettings:
    """How spaces' result lists merge.

    ``method``: ``convex`` sums each list's scores min-max normalised to [0, 1], times the space's weight, divided by
    the weights' sum (a result a space did not return gets 0 from it); ``rrf`` sums ``weight / (rrf_k + rank)``.
    ``weights``: per space; a space not named weighs ``1.0``; ``0`` leaves a space's list out of the ranking. The
    default (``lexical`` 1.5, the dense spaces 1.0: 0.4/0.6 between text and lexical) was measured on SciFact."""

    method: str = "convex"
    rrf_k: int = 60
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    def __post_init__(self) -> None:
        method = "convex" if self.method == "score" else self.method  # "score": the name before 0.2
        if method not in FUSIONS:
            raise InputError(f"fusion {self.method!r} is not one of {list(FUSIONS)}.")
        object.__setattr__(self, "method", method)
        if isinstance(self.rrf_k, bool) or not isinstance(self.rrf_k, int) or not 0 <= self.rrf_k <= MAX_RRF_K:
            raise InputError(f"rrf_k = {self.rrf_k!r}: must be a whole number from 0 to {MAX_RRF_K}.")
        if not isinstance(self.weights, Mapping):
            raise InputError(f"fusion weights must map space names to numbers, got {self.weights!r}.")
        for space, weight in self.weights.items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < math.inf:
                raise InputError(f"fusion weight of {space!r} = {weight!r}: must be a number >= 0.")
        object.__setattr__(self, "weights", {str(k): float(v) for k, v in self.weights.items()})

    def weight(self, space: str) -> float:
        return self.weights.get(space, 1.0)

    def merged(self, method: str | None = None, rrf_k: int | None = None,
               weights: Mapping[str, float] | None = None) -> FusionSettings:
        """These settings with the ones given replacing theirs (``weights`` per space, over the others)."""
        return FusionSettings(self.method if method is None else method, self.rrf_k if rrf_k is None else rrf_k,
                              {**self.weights, **(weights or {})})


def parse_weights(text: str, what: str = "--weights") -> dict[str, float]:
    """``"text=0.4,lexical=0.6"`` as a dict; an ``InputError`` naming ``what`` and the bad part otherwise."""
    weights: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        name, sep, value = part.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not name.strip() or not 0 <= number < math.inf:
            raise InputError(f"{what}: {part!r} is not SPACE=WEIGHT with a number >= 0 (e.g. text=0.4,lexical=0.6).")
        weights[name.strip()] = number
    return weights


@dataclass
class Fused:
    id: str
    score: float
    hit: Any  # the best-ranked Hit with this id (its payload)
    spaces: list[str] = field(default_factory=list)  # the spaces that found it, in the order they were given
    scores: dict[str, float] = field(default_factory=dict)  # each such space's own score (cosine, BM25, dot)


def fuse(lists: dict[str, Sequence[Any]], settings: FusionSettings | None = None) -> list[Fused]:
    """One ranking from ``{space: hits best first}`` (each hit has ``id`` and ``score``).

    Scores of different spaces are not comparable (a cosine, a BM25 score, a SPLADE dot product), so ``convex``
    normalises each list to [0, 1] first and ``rrf`` uses only ranks. Ties keep the order of first appearance."""
    settings = settings or FusionSettings()
    fused: dict[str, Fused] = {}
    total = sum(settings.weight(space) for space in lists) or 1.0
    for space, hits in lists.items():
        weight = settings.weight(space)
        scores = [h.score for h in hits]
        low, high = (min(scores), max(scores)) if scores else (0.0, 0.0)
        for rank, hit in enumerate(hits, start=1):
            if settings.method == "rrf":
                gain = weight / (settings.rrf_k + rank)
            else:
                gain = weight * (1.0 if high == low else (hit.score - low) / (high - low)) / total
            entry = fused.setdefault(hit.id, Fused(hit.id, 0.0, hit))
            entry.score += gain
            if space not in entry.scores:
                entry.spaces.append(space)
                entry.scores[space] = float(hit.score)
    ranked = [entry for entry in fused.values() if any(settings.weight(s) > 0 for s in entry.spaces)]
    return sorted(ranked, key=lambda f: f.score, reverse=True)
