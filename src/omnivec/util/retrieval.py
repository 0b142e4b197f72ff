"""Search helpers with sentence-transformers' names and results: semantic search, paraphrase mining and
community detection over embedding matrices, chunked so the full score matrix is never built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from omnivec.errors import InputError
from omnivec.similarity import _rows, _tensor, cos_sim, dot_score
from omnivec.util.tensor import normalize_embeddings

ScoreFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _positive(value: int, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InputError(f"{name} must be a positive integer, got {value!r}.")


def _merge_top(best: tuple[torch.Tensor, torch.Tensor] | None, scores: torch.Tensor, offset: int,
               k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best (values, corpus ids) per row among ``best`` and a new chunk of ``scores``."""
    values, ids = torch.topk(scores, min(k, scores.shape[1]), dim=1)
    ids = ids + offset
    if best is not None:
        values, ids = torch.cat([best[0], values], dim=1), torch.cat([best[1], ids], dim=1)
        values, where = torch.topk(values, min(k, values.shape[1]), dim=1)
        ids = torch.gather(ids, 1, where)
    return values, ids


def semantic_search(
    query_embeddings: Any,
    corpus_embeddings: Any,
    query_chunk_size: int = 100,
    corpus_chunk_size: int = 500000,
    top_k: int = 10,
    score_function: ScoreFunction = cos_sim,
) -> list[list[dict[str, int | float]]]:
    """For each query, the ``top_k`` corpus entries by ``score_function``, best first, as
    ``[{"corpus_id": int, "score": float}, ...]``. Queries and corpus are scored ``query_chunk_size`` x
    ``corpus_chunk_size`` at a time."""
    for value, name in ((query_chunk_size, "query_chunk_size"), (corpus_chunk_size, "corpus_chunk_size"),
                        (top_k, "top_k")):
        _positive(value, name)
    queries, corpus = _rows(query_embeddings), _tensor(corpus_embeddings)
    queries = queries.to(corpus.device)
    # cos_sim would renormalize each corpus chunk once per query chunk; normalizing once gives the same scores.
    normalized = score_function is cos_sim
    best: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * -(-len(queries) // query_chunk_size)
    for c_start in range(0, len(corpus), corpus_chunk_size):
        chunk = corpus[c_start:c_start + corpus_chunk_size]
        if normalized:
            chunk = normalize_embeddings(_rows(chunk))
        for n, q_start in enumerate(range(0, len(queries), query_chunk_size)):
            q_chunk = queries[q_start:q_start + query_chunk_size]
            scores = (dot_score(normalize_embeddings(q_chunk), chunk) if normalized
                      else score_function(q_chunk, chunk))
            best[n] = _merge_top(best[n], scores, c_start, top_k)
    results: list[list[dict[str, int | float]]] = []
    for chunk_best in best:
        if chunk_best is None:  # an empty corpus
            break
        for values, ids in zip(chunk_best[0].cpu().tolist(), chunk_best[1].cpu().tolist(), strict=True):
            results.append([{"corpus_id": i, "score": v} for v, i in zip(values, ids, strict=True)])
    return results or [[] for _ in range(len(queries))]


def paraphrase_mining(
    model: Any,
    sentences: list[str],
    show_progress_bar: bool = False,
    batch_size: int = 32,
    query_chunk_size: int = 5000,
    corpus_chunk_size: int = 100000,
    max_pairs: int = 500000,
    top_k: int = 100,
    score_function: ScoreFunction = cos_sim,
    truncate_dim: int | None = None,
    prompt_name: str | None = None,
    prompt: str | None = None,
) -> list[list[float | int]]:
    """Embeds ``sentences`` with ``model`` and returns the most similar pairs as ``[score, i, j]`` (``i < j``),
    best first: see :func:`paraphrase_mining_embeddings`."""
    embeddings = model.encode(sentences, show_progress_bar=show_progress_bar, batch_size=batch_size,
                              convert_to_tensor=True, truncate_dim=truncate_dim, prompt_name=prompt_name,
                              prompt=prompt)
    return paraphrase_mining_embeddings(embeddings, query_chunk_size=query_chunk_size,
                                        corpus_chunk_size=corpus_chunk_size, max_pairs=max_pairs, top_k=top_k,
                                        score_function=score_function)


def paraphrase_mining_embeddings(
    embeddings: Any,
    query_chunk_size: int = 5000,
    corpus_chunk_size: int = 100000,
    max_pairs: int = 500000,
    top_k: int = 100,
    score_function: ScoreFunction = cos_sim,
) -> list[list[float | int]]:
    """The ``max_pairs`` best pairs ``[score, i, j]`` (``i < j``, best first) among each embedding's ``top_k``
    nearest others. ``score_function`` is taken as symmetric: a pair keeps the score of the row that found it
    first."""
    for value, name in ((query_chunk_size, "query_chunk_size"), (corpus_chunk_size, "corpus_chunk_size"),
                        (max_pairs, "max_pairs"), (top_k, "top_k")):
        _positive(value, name)
    embeddings = _rows(embeddings)
    found: dict[tuple[int, int], float] = {}
    for q_start in range(0, len(embeddings), query_chunk_size):
        queries = embeddings[q_start:q_start + query_chunk_size]
        best = None
        for c_start in range(0, len(embeddings), corpus_chunk_size):
            scores = score_function(queries, embeddings[c_start:c_start + corpus_chunk_size]).detach()
            best = _merge_top(best, scores, c_start, top_k + 1)  # + 1: a row finds itself
        assert best is not None
        for row, (values, ids) in enumerate(zip(best[0].cpu().tolist(), best[1].cpu().tolist(), strict=True)):
            i = q_start + row
            neighbours = [(j, v) for j, v in zip(ids, values, strict=True) if j != i][:top_k]
            for j, score in neighbours:
                found.setdefault((min(i, j), max(i, j)), score)
    pairs = sorted(found.items(), key=lambda item: item[1], reverse=True)[:max_pairs]
    return [[score, i, j] for (i, j), score in pairs]


def community_detection(
    embeddings: torch.Tensor | np.ndarray,
    threshold: float = 0.75,
    min_community_size: int = 10,
    batch_size: int = 1024,
    show_progress_bar: bool = False,
) -> list[list[int]]:
    """Groups of embeddings whose cosine similarity to a central one is at least ``threshold``, each with at
    least ``min_community_size`` members, largest first, the center first in each; no embedding is in two."""
    _positive(min_community_size, "min_community_size")
    _positive(batch_size, "batch_size")
    if len(embeddings) == 0:
        return []
    embeddings = _rows(embeddings)
    if len(embeddings) < min_community_size:
        return []
    embeddings = normalize_embeddings(embeddings)
    limit = torch.tensor(threshold, device=embeddings.device)
    found: list[tuple[int, np.ndarray]] = []
    for start in tqdm(range(0, len(embeddings), batch_size), desc="Finding clusters",
                      disable=not show_progress_bar):
        scores = embeddings[start:start + batch_size] @ embeddings.T
        counts = (scores >= limit).sum(dim=1)
        for row in torch.nonzero(counts >= min_community_size).flatten().tolist():
            # Every member above the threshold, most similar first.
            _, members = scores[row].topk(k=int(counts[row]))
            found.append((start + row, members.cpu().numpy().astype(np.int64)))
    found.sort(key=lambda item: len(item[1]), reverse=True)  # stable: equal sizes keep their order
    used = np.zeros(len(embeddings), dtype=bool)
    communities: list[list[int]] = []
    for center, members in found:
        if used[center]:
            continue
        free = members[~used[members]]
        if len(free) >= min_community_size:
            community = [center, *free[free != center].tolist()]
            communities.append(community)
            used[community] = True
    return sorted(communities, key=len, reverse=True)
