"""Retrieval evaluation: embed queries and a corpus, rank the corpus per query, score the ranking."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import numpy as np
import torch

from omnivec import similarity as sim
from omnivec.errors import ConfigError, InputError
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

    Metric keys, as in sentence-transformers' ``InformationRetrievalEvaluator``: ``{fn}_accuracy@k``,
    ``{fn}_precision@k``, ``{fn}_recall@k`` (for each k in ``k_values``), ``{fn}_mrr@k``, ``{fn}_ndcg@k``,
    ``{fn}_map@k`` for each score function ``fn`` (default: the model's own, e.g. ``cosine_ndcg@10``); the
    primary metric is ``{fn}_ndcg@max(ndcg_at_k)`` of ``main_score_function`` (default: the function scoring
    best). With binary relevance the values equal sentence-transformers'. Equal scores rank by corpus order (sentence-transformers orders them by
    corpus id string instead; that only differs for exactly tied documents).
    """

    def __init__(
        self,
        queries: Mapping[str, Any],
        corpus: Mapping[str, Any],
        relevant_docs: Mapping[str, Collection[str] | Mapping[str, int]],
        name: str = "",
        k_values: Iterable[int] = (1, 3, 5, 10),
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
        score_functions: Mapping[str, Callable[..., torch.Tensor]] | None = None,
        main_score_function: str | None = None,
        accuracy_at_k: Iterable[int] | None = None,
        precision_recall_at_k: Iterable[int] | None = None,
        write_csv: bool = False,
    ) -> None:
        super().__init__(name)
        if score_functions is not None and not score_functions:
            raise ConfigError("score_functions must name at least one function, e.g. {'cosine': util.cos_sim}.")
        self.score_functions = dict(score_functions) if score_functions is not None else None
        main_score_function = getattr(main_score_function, "value", main_score_function)  # a SimilarityFunction
        if main_score_function is not None and self.score_functions is not None \
                and main_score_function not in self.score_functions:
            raise ConfigError(f"main_score_function {main_score_function!r} is not one of score_functions "
                              f"{sorted(self.score_functions)}.")
        self.main_score_function = main_score_function
        self.k_values, self.mrr_at_k = _ks(k_values, "k_values"), _ks(mrr_at_k, "mrr_at_k")
        # sentence-transformers' separate cut-offs (write_csv is accepted; no CSV is written)
        self.accuracy_at_k = _ks(accuracy_at_k, "accuracy_at_k") if accuracy_at_k is not None else self.k_values
        self.precision_recall_at_k = (_ks(precision_recall_at_k, "precision_recall_at_k")
                                      if precision_recall_at_k is not None else self.k_values)
        self.ndcg_at_k, self.map_at_k = _ks(ndcg_at_k, "ndcg_at_k"), _ks(map_at_k, "map_at_k")
        if corpus_chunk_size <= 0:
            raise ConfigError(f"corpus_chunk_size must be a positive integer, got {corpus_chunk_size}.")
        self.relevant_docs = {qid: M.gains(docs) for qid, docs in relevant_docs.items()}
        self.query_ids = [qid for qid in queries if self.relevant_docs.get(qid)]
        if not self.query_ids:
            raise InputError("None of the queries has a relevant document in relevant_docs.")
        if not corpus:
            raise InputError("The corpus is empty.")
        self.queries = [queries[qid] for qid in self.query_ids]
        self.corpus_ids = list(corpus)
        self.corpus = [corpus[cid] for cid in self.corpus_ids]
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.corpus_chunk_size = corpus_chunk_size
        self.query_prompt, self.query_prompt_name = query_prompt, query_prompt_name
        self.corpus_prompt, self.corpus_prompt_name = corpus_prompt, corpus_prompt_name
        self.truncate_dim = truncate_dim
        self.main_metric = f"{main_score_function or 'cosine'}_ndcg@{max(self.ndcg_at_k)}"

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

    def encode_queries(self, model: Any) -> torch.Tensor:
        """The evaluated queries' embeddings."""
        return model.encode_query(self.queries, **self._encode_kwargs(self.query_prompt, self.query_prompt_name))

    def encode_documents(self, model: Any, documents: list[Any]) -> torch.Tensor:
        """One corpus chunk's embeddings."""
        return model.encode_document(documents, **self._encode_kwargs(self.corpus_prompt, self.corpus_prompt_name))

    def _functions(self, model: Any) -> dict[str, Callable[..., torch.Tensor]]:
        """The score functions: those given, else the model's own similarity under its name."""
        if self.score_functions is not None:
            return self.score_functions
        return {getattr(model, "similarity_fn_name", None) or "cosine": getattr(model, "similarity", None) or sim.cosine}

    def retrieve(self, model: Any, score_fn: Callable[..., torch.Tensor] | None = None) -> list[list[str]]:
        """Each evaluated query's top ``max(k)`` corpus ids, best first (by ``score_fn``, default: the model's)."""
        return self.retrieve_all(model, {"": score_fn or next(iter(self._functions(model).values()))})[""]

    def retrieve_all(self, model: Any, functions: Mapping[str, Callable[..., torch.Tensor]]) -> dict[str, list[list[str]]]:
        """Each score function's rankings; queries and each corpus chunk are embedded once for all of them."""
        max_k = max(self.accuracy_at_k + self.precision_recall_at_k + self.mrr_at_k + self.ndcg_at_k + self.map_at_k)
        queries = self.encode_queries(model)
        return {name: ranked for name, ranked in zip(functions, self._rank(model, queries, list(functions.values()),
                                                                          max_k), strict=True)}

    def _rank(self, model: Any, queries: torch.Tensor, score_fns: list[Callable[..., torch.Tensor]],
              max_k: int) -> list[list[list[str]]]:
        best = [(torch.empty((len(self.queries), 0), dtype=torch.float32, device=queries.device),
                 torch.empty((len(self.queries), 0), dtype=torch.long, device=queries.device)) for _ in score_fns]
        for start in range(0, len(self.corpus), self.corpus_chunk_size):
            chunk = self.corpus[start:start + self.corpus_chunk_size]
            docs = self.encode_documents(model, chunk)
            for index, score_fn in enumerate(score_fns):
                scores = score_fn(queries, docs.to(queries.device))
                scores = (scores.to_dense() if scores.is_sparse else scores).float()  # sparse vectors' dot products
                top_scores, top_ids = _top_k(scores, min(max_k, scores.shape[1]))
                best_scores, best_ids = _best_first(torch.cat([best[index][0], top_scores], dim=1),
                                                    torch.cat([best[index][1], top_ids + start], dim=1))
                best[index] = (best_scores[:, :max_k], best_ids[:, :max_k])
        return [[[self.corpus_ids[i] for i in row] for row in ids.tolist()] for _, ids in best]

    def compute(self, model: Any) -> dict[str, float]:
        functions = self._functions(model)
        results: dict[str, float] = {}
        for fn_name, rankings in self.retrieve_all(model, functions).items():
            per_query: dict[str, list[float]] = {}

            def add(metric: str, fn: Any, ks: list[int], rankings: list[list[str]] = rankings,
                    per_query: dict[str, list[float]] = per_query) -> None:
                for k in ks:
                    per_query[f"{metric}@{k}"] = [fn(ranked, self.relevant_docs[qid], k)
                                                  for qid, ranked in zip(self.query_ids, rankings, strict=True)]

            add("accuracy", M.accuracy_at_k, self.accuracy_at_k)
            add("precision", M.precision_at_k, self.precision_recall_at_k)
            add("recall", M.recall_at_k, self.precision_recall_at_k)
            add("ndcg", M.ndcg_at_k, self.ndcg_at_k)
            add("mrr", M.mrr_at_k, self.mrr_at_k)
            add("map", M.average_precision_at_k, self.map_at_k)
            results.update({f"{fn_name}_{metric}": float(np.mean(values)) for metric, values in per_query.items()})
        ndcg = f"ndcg@{max(self.ndcg_at_k)}"
        main = self.main_score_function or max(functions, key=lambda name: results[f"{name}_{ndcg}"])
        self.main_metric = f"{main}_{ndcg}"
        return results


def _ks(values: Iterable[int], what: str) -> list[int]:
    ks = list(values)
    if not ks or any(not isinstance(k, int) or k <= 0 for k in ks):
        raise ConfigError(f"{what} must be a non-empty list of positive integers, got {ks}.")
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
