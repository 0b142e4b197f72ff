"""Ranking metrics on one query's ranked list of ids, as sentence-transformers' evaluators define them.

``relevance`` is either a collection of relevant ids (binary relevance) or a mapping ``id -> grade``;
a grade of 0 or less means "not relevant" (as in BEIR/TREC qrels). Every function here takes a list that
is already ranked, best first; :func:`rank_by_scores` makes one from scores. Ties are broken by the order
the scores were given (a stable sort), so the same inputs always give the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Mapping, Sequence

from omnivec.errors import InputError

Relevance = Collection[Hashable] | Mapping[Hashable, float]

__all__ = [
    "accuracy_at_k", "average_precision_at_k", "gains", "mrr_at_k", "ndcg_at_k", "precision_at_k",
    "rank_by_scores", "recall_at_k",
]


def gains(relevance: Relevance) -> dict[Hashable, float]:
    """``{id: grade}`` of the relevant ids only: a set gives grade 1 to each id, grades <= 0 are dropped."""
    if isinstance(relevance, Mapping):
        return {doc: float(grade) for doc, grade in relevance.items() if grade > 0}
    return {doc: 1.0 for doc in relevance}


def rank_by_scores(ids: Sequence[Hashable], scores: Sequence[float]) -> list[Hashable]:
    """``ids`` sorted by score, highest first; equal scores keep the order they were given in."""
    if len(ids) != len(scores):
        raise InputError(f"ids has {len(ids)} entries but scores has {len(scores)}.")
    # sorted() is stable, and negating the key (rather than reverse=True) keeps that explicit.
    order = sorted(range(len(ids)), key=lambda i: -float(scores[i]))
    return [ids[i] for i in order]


def _check_k(k: int) -> None:
    if k <= 0:
        raise InputError(f"k must be a positive integer, got {k}.")


def _hits(ranked: Sequence[Hashable], relevant: Mapping[Hashable, float], k: int) -> list[bool]:
    _check_k(k)
    return [doc in relevant for doc in ranked[:k]]


def ndcg_at_k(ranked: Sequence[Hashable], relevance: Relevance, k: int) -> float:
    """Normalised DCG@k with linear gain: sum(grade_i / log2(i + 1)) over ranks i = 1..k, divided by the
    same sum over the grades sorted best first (the ideal ranking). 0 when nothing is relevant.

    With binary relevance this is exactly sentence-transformers' ``InformationRetrievalEvaluator`` NDCG
    (it only knows binary relevance); graded relevance follows trec_eval's ``ndcg_cut``."""
    _check_k(k)
    relevant = gains(relevance)
    dcg = sum(relevant.get(doc, 0.0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(grade / math.log2(i + 2) for i, grade in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def mrr_at_k(ranked: Sequence[Hashable], relevance: Relevance, k: int) -> float:
    """Reciprocal rank of the first relevant id within the top k, else 0."""
    for i, hit in enumerate(_hits(ranked, gains(relevance), k)):
        if hit:
            return 1.0 / (i + 1)
    return 0.0


def recall_at_k(ranked: Sequence[Hashable], relevance: Relevance, k: int) -> float:
    """Relevant ids in the top k / all relevant ids (0 when nothing is relevant)."""
    relevant = gains(relevance)
    return sum(_hits(ranked, relevant, k)) / len(relevant) if relevant else 0.0


def precision_at_k(ranked: Sequence[Hashable], relevance: Relevance, k: int) -> float:
    """Relevant ids in the top k / k (k, not the list length, even when fewer than k were ranked)."""
    return sum(_hits(ranked, gains(relevance), k)) / k


def accuracy_at_k(ranked: Sequence[Hashable], relevance: Relevance, k: int) -> float:
    """1.0 when at least one relevant id is in the top k, else 0.0."""
    return float(any(_hits(ranked, gains(relevance), k)))


def average_precision_at_k(ranked: Sequence[Hashable], relevance: Relevance, k: int) -> float:
    """AP@k as sentence-transformers computes MAP@k: the sum of precision@i at each relevant rank i <= k,
    divided by min(k, number of relevant ids). Grades only matter as relevant / not relevant."""
    relevant = gains(relevance)
    if not relevant:
        return 0.0
    found, total = 0, 0.0
    for i, hit in enumerate(_hits(ranked, relevant, k)):
        if hit:
            found += 1
            total += found / (i + 1)
    return total / min(k, len(relevant))
