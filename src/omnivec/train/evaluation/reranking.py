"""Reranking evaluation: order each query's candidate documents and score the order against positives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from omnivec.errors import ConfigError, InputError
from omnivec.train.evaluation import metrics as M
from omnivec.train.evaluation.base import Evaluator


@dataclass
class _Candidates:
    query: Any
    docs: list[Any]  # what the model orders
    relevant: set[int]  # indices into docs
    base: tuple[float, float, float] | None  # (map, mrr, ndcg) of the given order, for "documents" samples


class RerankingEvaluator(Evaluator):
    """MAP, MRR@k and NDCG@k of a reranker (a CrossEncoder, through ``model.rank``) or of a retriever
    (an embedder: ``model.similarity`` of ``encode_query`` and ``encode_document``) on samples
    ``{"query": ..., "positive": [...], "documents": [...]}`` (or ``"negative"`` instead of ``"documents"``).

    ``documents`` is taken as already ranked by a first stage, whose metrics are also reported as
    ``base_map``, ``base_mrr@k``, ``base_ndcg@k``. With ``always_rerank_positives`` the positives missing
    from ``documents`` are added to the candidates (so the best possible score is 1). Metric definitions
    follow sentence-transformers' ``CrossEncoderRerankingEvaluator``: ``map`` is average precision over
    the whole candidate list, a sample without any positive among its candidates scores 0, and the base
    order appends missing positives after ``documents`` (0 when none of them is there). Equal scores keep
    the candidates' order (sentence-transformers' sklearn metrics average over ties instead).
    """

    def __init__(
        self,
        samples: Sequence[dict[str, Any]],
        name: str = "",
        at_k: int = 10,
        batch_size: int = 32,
        always_rerank_positives: bool = True,
        show_progress_bar: bool | None = None,
    ) -> None:
        super().__init__(name)
        if at_k <= 0:
            raise ConfigError(f"at_k must be a positive integer, got {at_k}.")
        self.at_k = at_k
        self.batch_size = batch_size
        self.always_rerank_positives = always_rerank_positives
        self.show_progress_bar = show_progress_bar
        self.samples = list(samples)
        if not self.samples:
            raise InputError("RerankingEvaluator needs at least one sample.")
        self._candidates = [self._prepare(i, sample) for i, sample in enumerate(self.samples)]
        self.main_metric = f"ndcg@{at_k}"

    def _prepare(self, i: int, sample: dict[str, Any]) -> _Candidates:
        if not isinstance(sample, dict) or "query" not in sample or "positive" not in sample:
            raise InputError(f"Sample {i} needs 'query' and 'positive' keys.")
        if ("documents" in sample) == ("negative" in sample):
            raise InputError(f"Sample {i} needs exactly one of 'documents' and 'negative'.")
        positive = sample["positive"]
        positive = [positive] if isinstance(positive, str) else list(positive)
        if "negative" in sample:
            docs = positive + list(sample["negative"])
            return _Candidates(sample["query"], docs, set(range(len(positive))), None)
        documents = list(sample["documents"])
        found = [j for j, doc in enumerate(documents) if doc in positive]
        base = (0.0, 0.0, 0.0)
        if found:
            # The first stage missed some positives: they count as ranked right after its list.
            missing = max(0, len(positive) - len(found))
            ranked = list(range(len(documents) + missing))
            base = self._metrics(ranked, set(found) | set(range(len(documents), len(ranked))))
        if self.always_rerank_positives:
            docs = positive + [doc for doc in documents if doc not in positive]
            return _Candidates(sample["query"], docs, set(range(len(positive))), base)
        return _Candidates(sample["query"], documents, set(found), base)

    def _metrics(self, ranked: list[int], relevant: set[int]) -> tuple[float, float, float]:
        return (M.average_precision_at_k(ranked, relevant, len(ranked)), M.mrr_at_k(ranked, relevant, self.at_k),
                M.ndcg_at_k(ranked, relevant, self.at_k))

    # -- ranking ----------------------------------------------------------------------------------
    def _rankings(self, model: Any, todo: list[_Candidates]) -> list[list[int]]:
        """Candidate indices of each sample in ``todo``, best first."""
        if callable(getattr(model, "encode_query", None)):
            return self._embedder_rankings(model, todo)
        if callable(getattr(model, "rank", None)):
            # One rank() call per query: a generative reranker then encodes the shared prefix once.
            return [[hit["corpus_id"] for hit in model.rank(c.query, c.docs, batch_size=self.batch_size,
                                                            show_progress_bar=False)] for c in todo]
        raise TypeError(f"{type(model).__name__} has neither rank() (a reranker) nor encode_query() (an embedder).")

    def _embedder_rankings(self, model: Any, todo: list[_Candidates]) -> list[list[int]]:
        # Each distinct query and document is embedded once, over all samples, in full batches.
        queries = list(dict.fromkeys(c.query for c in todo))
        docs = list(dict.fromkeys(doc for c in todo for doc in c.docs))
        kwargs = dict(batch_size=self.batch_size, show_progress_bar=self.show_progress_bar, convert_to_tensor=True)
        query_emb, doc_emb = model.encode_query(queries, **kwargs), model.encode_document(docs, **kwargs)
        query_row = {q: i for i, q in enumerate(queries)}
        doc_row = {d: i for i, d in enumerate(docs)}
        rankings = []
        for c in todo:
            rows = [doc_row[doc] for doc in c.docs]
            scores = model.similarity(query_emb[query_row[c.query]:query_row[c.query] + 1], doc_emb[rows])[0]
            rankings.append(M.rank_by_scores(list(range(len(c.docs))), scores.tolist()))
        return rankings

    def compute(self, model: Any) -> dict[str, float]:
        todo = [c for c in self._candidates if c.relevant]
        rankings = iter(self._rankings(model, todo))
        # Samples without a positive candidate are not scored but still count, as zeros.
        scored = [self._metrics(next(rankings), c.relevant) if c.relevant else (0.0, 0.0, 0.0)
                  for c in self._candidates]
        results = _means(scored, self.at_k, prefix="")
        based = [c.base for c in self._candidates if c.base is not None]
        if based:
            results.update(_means(based, self.at_k, prefix="base_"))
        return results


def _means(rows: list[tuple[float, float, float]], at_k: int, prefix: str) -> dict[str, float]:
    mean_map, mean_mrr, mean_ndcg = np.mean(np.asarray(rows, dtype=np.float64), axis=0)
    return {f"{prefix}map": float(mean_map), f"{prefix}mrr@{at_k}": float(mean_mrr),
            f"{prefix}ndcg@{at_k}": float(mean_ndcg)}
