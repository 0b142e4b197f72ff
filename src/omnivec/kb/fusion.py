"""Merging per-space result lists into one ranking."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from omnivec.errors import InputError

FUSIONS = ("rrf", "score")


@dataclass
class Fused:
    id: str
    score: float
    hit: Any  # the best-ranked Hit with this id (its payload)
    spaces: list[str] = field(default_factory=list)


def fuse(lists: dict[str, Sequence[Any]], method: str = "rrf", rrf_k: int = 60) -> list[Fused]:
    """One ranking from ``{space: hits best first}``.

    ``rrf`` (reciprocal rank fusion): sum of ``1 / (rrf_k + rank)`` over the lists an item appears in; it needs
    no comparable scores, which different models' cosines are not. ``score``: each list's scores min-max
    normalised to [0, 1], then summed."""
    if method not in FUSIONS:
        raise InputError(f"fusion {method!r} is not one of {FUSIONS}.")
    fused: dict[str, Fused] = {}
    for space, hits in lists.items():
        scores = [h.score for h in hits]
        low, high = (min(scores), max(scores)) if scores else (0.0, 0.0)
        for rank, hit in enumerate(hits, start=1):
            if method == "rrf":
                gain = 1.0 / (rrf_k + rank)
            else:
                gain = 1.0 if high == low else (hit.score - low) / (high - low)
            entry = fused.setdefault(hit.id, Fused(hit.id, 0.0, hit))
            entry.score += gain
            entry.spaces.append(space)
    return sorted(fused.values(), key=lambda f: f.score, reverse=True)
