"""Retrieval evaluation of a SparseEncoder: the retrieval metrics, plus how sparse the vectors are and what
searching them costs."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import torch

from omnivec.errors import ConfigError
from omnivec.train.evaluation.information_retrieval import InformationRetrievalEvaluator


class SparseInformationRetrievalEvaluator(InformationRetrievalEvaluator):
    """``InformationRetrievalEvaluator`` for sparse vectors, with sentence-transformers' arguments (in its order)
    and metric keys: ``{fn}_ndcg@10``... for the model's own score function (``dot`` for a SparseEncoder), plus
    ``query_active_dims``, ``query_sparsity_ratio``, ``corpus_active_dims``, ``corpus_sparsity_ratio`` (the mean
    number of non-zero dimensions per vector, and 1 - that / vocabulary size) and ``avg_flops`` (the expected
    number of term matches of a query against a document: the dot product of the mean query and mean document
    non-zero indicators).

    ``max_active_dims`` keeps only each vector's largest dimensions at encoding, as ``encode`` does with it."""

    def __init__(
        self,
        queries: Mapping[str, Any],
        corpus: Mapping[str, Any],
        relevant_docs: Mapping[str, Collection[str] | Mapping[str, int]],
        corpus_chunk_size: int = 50000,
        mrr_at_k: Iterable[int] = (10,),
        ndcg_at_k: Iterable[int] = (10,),
        accuracy_at_k: Iterable[int] = (1, 3, 5, 10),
        precision_recall_at_k: Iterable[int] = (1, 3, 5, 10),
        map_at_k: Iterable[int] = (100,),
        show_progress_bar: bool = False,
        batch_size: int = 32,
        name: str = "",
        write_csv: bool = True,
        max_active_dims: int | None = None,
        score_functions: Mapping[str, Callable[..., torch.Tensor]] | None = None,
        main_score_function: str | None = None,
        query_prompt: str | None = None,
        query_prompt_name: str | None = None,
        corpus_prompt: str | None = None,
        corpus_prompt_name: str | None = None,
        write_predictions: bool = False,
    ) -> None:
        # write_csv / write_predictions: sentence-transformers' file outputs; accepted, nothing is written.
        if max_active_dims is not None and (not isinstance(max_active_dims, int) or max_active_dims <= 0):
            raise ConfigError(f"max_active_dims must be a positive integer or None, got {max_active_dims!r}.")
        super().__init__(queries, corpus, relevant_docs, name=name, mrr_at_k=mrr_at_k, ndcg_at_k=ndcg_at_k,
                         map_at_k=map_at_k, batch_size=batch_size, show_progress_bar=show_progress_bar,
                         corpus_chunk_size=corpus_chunk_size, query_prompt=query_prompt,
                         query_prompt_name=query_prompt_name, corpus_prompt=corpus_prompt,
                         corpus_prompt_name=corpus_prompt_name, score_functions=score_functions,
                         main_score_function=main_score_function, accuracy_at_k=accuracy_at_k,
                         precision_recall_at_k=precision_recall_at_k)
        self.max_active_dims = max_active_dims
        self._stats: dict[str, _Sparsity] = {}

    def _encode_kwargs(self, prompt: str | None, prompt_name: str | None) -> dict[str, Any]:
        return dict(prompt=prompt, prompt_name=prompt_name, batch_size=self.batch_size,
                    show_progress_bar=self.show_progress_bar, convert_to_sparse_tensor=True, save_to_cpu=True,
                    max_active_dims=self.max_active_dims)

    def encode_queries(self, model: Any) -> torch.Tensor:
        vectors = super().encode_queries(model)
        self._stats["query"].add(vectors)
        return vectors

    def encode_documents(self, model: Any, documents: list[Any]) -> torch.Tensor:
        vectors = super().encode_documents(model, documents)
        self._stats["corpus"].add(vectors)
        return vectors

    def compute(self, model: Any) -> dict[str, float]:
        self._stats = {"query": _Sparsity(), "corpus": _Sparsity()}
        results = super().compute(model)
        for side, stats in self._stats.items():
            results[f"{side}_active_dims"] = stats.active_dims()
            results[f"{side}_sparsity_ratio"] = stats.sparsity_ratio()
        results["avg_flops"] = self._stats["query"].flops_with(self._stats["corpus"])
        return results


class _Sparsity:
    """Running statistics over batches of vectors: each batch's mean active dimensions (a float32 mean, then
    averaged over batches weighted by their sizes, as sentence-transformers computes it, so the figures agree to the
    last digit), and how many rows use each dimension."""

    def __init__(self) -> None:
        self.rows, self.width = 0, 0
        self.batch_means: list[tuple[float, int]] = []  # (mean active dimensions, rows)
        self.per_dimension: torch.Tensor | None = None

    def add(self, vectors: torch.Tensor) -> None:
        # Stored entries of the coalesced sparse form count as active (what sentence-transformers counts).
        sparse = (vectors if vectors.is_sparse else vectors.to_sparse()).coalesce().cpu()
        rows, self.width = sparse.shape[0], sparse.shape[-1]
        row_ids, columns = sparse.indices()[0], sparse.indices()[-1]
        if rows:
            self.batch_means.append((torch.bincount(row_ids, minlength=rows).float().mean().item(), rows))
        counts = torch.bincount(columns, minlength=self.width).to(torch.int32)
        self.per_dimension = counts if self.per_dimension is None else self.per_dimension + counts
        self.rows += rows

    def _weighted(self, value: Callable[[float], float], empty: float) -> float:
        if not self.rows:
            return empty
        return sum(value(mean) * rows for mean, rows in self.batch_means) / self.rows

    def active_dims(self) -> float:
        return self._weighted(lambda mean: mean, 0.0)

    def sparsity_ratio(self) -> float:
        return self._weighted(lambda mean: 1.0 - mean / self.width, 1.0)

    def flops_with(self, other: _Sparsity) -> float:
        if self.per_dimension is None or other.per_dimension is None:
            return 0.0
        return float(torch.dot(self.per_dimension / self.rows, other.per_dimension / other.rows))
