"""Retrieval evaluation: embed queries and a corpus, rank the corpus per query, score the ranking."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import numpy as np
import torch

from omnivec import similarity as sim
from omnivec.train.evaluation import metrics as M
from omnivec.train.evaluation.base import Evaluator
from omnivec.train.evaluation.beir import load_beir


class InformationRetrievalEvaluator(Evaluator):
    """Accuracy, precision and recall at ``k_values``, MRR, NDCG and MAP of a retrieval embedder.

    Queries are embedded with ``model.encode_query`` and the corpus with ``model.encode_document``;
    scores come from ``model.similarity`` (cosine for models without one). The corpus is embedded and
    scored ``corpus_chunk_size`` documents at a time, keeping only each query's best ``max(k)`` hits, so a
    large corpus never needs a full query x corpus matrix.

    ``relevant_docs`` maps a query id to a set of relevant corpus ids or to ``{corpus id: grade}``
    (grades > 0 are relevant; NDCG uses them as gains). Queries without relevant documents are skipped.

    Metric keys: ``accuracy@k``, ``precision@k``, ``recall@k`` (for each k in ``k_values``), ``mrr@k``,
    ``ndcg@k``, ``map@k``; the primary metric is ``ndcg@max(ndcg_at_k)``. With binary relevance the values
    equal sentence-transformers' ``InformationRetrievalEvaluator`` (its keys carry a score-function prefix,
    e.g. ``cosine_ndcg@10``). Equal scores rank by corpus order (sentence-transformers orders them by
    corpus id string instead; that only differs for exactly tied documents).
    """

    def __init__(
        self,
        queries: Mapping[str, Any],
        corpus: Mapping[str, Any],
        relevant_docs: Mapping[str, Collection[str] | Mapping[str, int]],
        name: str = "",
        k_values: Iterable[int] = (1, 3, 5, 10, 100),
        mrr_at_k: Iterable[int] = (10,),
        ndcg_at_k: Iterable[int] = (10,),
        map_at_k: Iterable[int] = (100,),
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        corpus_chunk_size: int = 50000,
        query_prompt: str | None = None,
        query_prompt_name: str | None = None,
        corpus_prompt: str | None = None,
        corpus_prompt_name: str | None = None,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__(name)
        self.k_values, self.mrr_at_k = _ks(k_values, "k_values"), _ks(mrr_at_k, "mrr_at_k")
        self.ndcg_at_k, self.map_at_k = _ks(ndcg_at_k, "ndcg_at_k"), _ks(map_at_k, "map_at_k")
        if corpus_chunk_size <= 0:
            raise ValueError(f"corpus_chunk_size must be a positive integer, got {corpus_chunk_size}.")
        self.relevant_docs = {qid: M.gains(docs) for qid, docs in relevant_docs.items()}
        self.query_ids = [qid for qid in queries if self.relevant_docs.get(qid)]
        if not self.query_ids:
            raise ValueError("None of the queries has a relevant document in relevant_docs.")
        if not corpus:
            raise ValueError("The corpus is empty.")
        self.queries = [queries[qid] for qid in self.query_ids]
        self.corpus_ids = list(corpus)
        self.corpus = [corpus[cid] for cid in self.corpus_ids]
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.corpus_chunk_size = corpus_chunk_size
        self.query_prompt, self.query_prompt_name = query_prompt, query_prompt_name
        self.corpus_prompt, self.corpus_prompt_name = corpus_prompt, corpus_prompt_name
        self.truncate_dim = truncate_dim
        self.main_metric = f"ndcg@{max(self.ndcg_at_k)}"

    @classmethod
    def from_beir(cls, folder: str | os.PathLike, split: str = "test", name: str | None = None,
                  max_queries: int | None = None, max_corpus: int | None = None,
                  **kwargs: Any) -> InformationRetrievalEvaluator:
        """An evaluator on a BEIR-format folder (see :func:`omnivec.train.evaluation.beir.load_beir` for
        the layout, title joining and the ``max_queries`` / ``max_corpus`` slicing). ``name`` defaults to
        ``"{folder name}-{split}"``."""
        data = load_beir(folder, split, max_queries=max_queries, max_corpus=max_corpus)
        if name is None:
            name = f"{os.path.basename(os.path.normpath(folder))}-{split}"
        return cls(data.queries, data.corpus, data.qrels, name=name, **kwargs)

    # -- retrieval --------------------------------------------------------------------------------
    def _encode_kwargs(self, prompt: str | None, prompt_name: str | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(prompt=prompt, prompt_name=prompt_name, batch_size=self.batch_size,
                                      show_progress_bar=self.show_progress_bar, convert_to_tensor=True)
        if self.truncate_dim is not None:  # only when asked, so models without the argument still work
            kwargs["truncate_dim"] = self.truncate_dim
        return kwargs

    def retrieve(self, model: Any) -> list[list[str]]:
        """Each evaluated query's top ``max(k)`` corpus ids, best first."""
        max_k = max(self.k_values + self.mrr_at_k + self.ndcg_at_k + self.map_at_k)
        score_fn = getattr(model, "similarity", None) or sim.cosine
        queries = model.encode_query(self.queries, **self._encode_kwargs(self.query_prompt, self.query_prompt_name))
        best_scores = torch.empty((len(self.queries), 0), dtype=torch.float32, device=queries.device)
        best_ids = torch.empty((len(self.queries), 0), dtype=torch.long, device=queries.device)
        for start in range(0, len(self.corpus), self.corpus_chunk_size):
            chunk = self.corpus[start:start + self.corpus_chunk_size]
            docs = model.encode_document(chunk, **self._encode_kwargs(self.corpus_prompt, self.corpus_prompt_name))
            scores = score_fn(queries, docs.to(queries.device)).float()
            top_scores, top_ids = _top_k(scores, min(max_k, scores.shape[1]))
            best_scores, best_ids = _best_first(torch.cat([best_scores, top_scores], dim=1),
                                                torch.cat([best_ids, top_ids + start], dim=1))
            best_scores, best_ids = best_scores[:, :max_k], best_ids[:, :max_k]
        return [[self.corpus_ids[i] for i in row] for row in best_ids.tolist()]

    def compute(self, model: Any) -> dict[str, float]:
        rankings = self.retrieve(model)
        per_query: dict[str, list[float]] = {}

        def add(metric: str, fn: Any, ks: list[int]) -> None:
            for k in ks:
                per_query[f"{metric}@{k}"] = [fn(ranked, self.relevant_docs[qid], k)
                                              for qid, ranked in zip(self.query_ids, rankings, strict=True)]

        add("accuracy", M.accuracy_at_k, self.k_values)
        add("precision", M.precision_at_k, self.k_values)
        add("recall", M.recall_at_k, self.k_values)
        add("ndcg", M.ndcg_at_k, self.ndcg_at_k)
        add("mrr", M.mrr_at_k, self.mrr_at_k)
        add("map", M.average_precision_at_k, self.map_at_k)
        return {metric: float(np.mean(values)) for metric, values in per_query.items()}


def _ks(values: Iterable[int], what: str) -> list[int]:
    ks = list(values)
    if not ks or any(not isinstance(k, int) or k <= 0 for k in ks):
        raise ValueError(f"{what} must be a non-empty list of positive integers, got {ks}.")
    return ks


def _top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the k best scores and their column indices; among scores tied at the cut-off, the
    lowest columns win (torch.topk alone picks tied entries arbitrarily)."""
    values, indices = torch.topk(scores, k, dim=1)
    boundary_ties = (scores >= values[:, -1:]).sum(dim=1) > k
    if boundary_ties.any():
        rows = boundary_ties.nonzero().squeeze(1)
        tied = torch.sort(scores[rows], dim=1, descending=True, stable=True)
        values[rows], indices[rows] = tied.values[:, :k], tied.indices[:, :k]
    return values, indices


def _best_first(scores: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort each row by score, highest first, equal scores by ascending id (two stable sorts)."""
    by_id = torch.sort(ids, dim=1, stable=True).indices
    scores, ids = scores.gather(1, by_id), ids.gather(1, by_id)
    by_score = torch.sort(scores, dim=1, descending=True, stable=True).indices
    return scores.gather(1, by_score), ids.gather(1, by_score)
