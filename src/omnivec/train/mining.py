"""Hard-negative mining: turn (anchor, positive) pairs into training rows with mined negatives.

Behaves like sentence-transformers' ``mine_hard_negatives`` (same candidate pool, filters, ranks and output
columns), but searches the corpus in chunks so no full anchors x corpus score matrix is ever built.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import torch

from omnivec.errors import InputError

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = ("triplet", "n-tuple", "labeled-pair", "labeled-list")
_SCORE_BUDGET = 1 << 24  # similarity entries alive at once during the top-k search (64 MiB of float32)
_CORPUS_CHUNK = 1 << 15  # corpus rows scored per step, so a huge corpus never needs one (anchors, corpus) block
_NEG_INF = float("-inf")


def mine_hard_negatives(
    dataset: Any, model: Any, anchor_column_name: str | None = None, positive_column_name: str | None = None,
    corpus: Sequence[str] | None = None, cross_encoder: Any | None = None, range_min: int = 0,
    range_max: int | None = None, max_score: float | None = None, min_score: float | None = None,
    absolute_margin: float | None = None, relative_margin: float | None = None, num_negatives: int = 3,
    sampling_strategy: Literal["top", "random"] = "top",
    output_format: Literal["triplet", "n-tuple", "labeled-pair", "labeled-list"] = "triplet", batch_size: int = 32,
    include_positives: bool = False, show_progress_bar: bool | None = None, seed: int | None = None,
    output_scores: bool = False,
) -> Any:
    """Add mined hard negatives to a ``datasets.Dataset`` (or list of dicts) of (anchor, positive) pairs.

    Anchors are embedded with ``model.encode_query``; the corpus (``corpus`` plus all positives, deduplicated)
    with ``model.encode_document``. An anchor's candidates are its ``range_max`` + (most rows per anchor) nearest
    corpus texts minus its own positives. With a filter set and a ``cross_encoder``, candidates and positives are
    rescored by the cross-encoder. Margins compare with the anchor's lowest-scored positive: ``absolute_margin``
    keeps ``score <= positive - margin``, ``relative_margin`` keeps ``score <= positive - |positive| * margin``.
    Survivors ranked ``[range_min, range_max)`` by score remain; ``num_negatives`` are taken best first ("top") or
    sampled ("random"; ``seed=None`` uses Python's global ``random`` as sentence-transformers does).

    Returns the kind given, with sentence-transformers' columns: triplet: anchor, positive, negative; n-tuple:
    anchor, positive, negative_1..n (pairs short of n negatives are dropped); labeled-pair: anchor, positive
    (any passage), label; labeled-list: anchor, positive (passages), labels. ``output_scores`` adds "scores"
    (triplet, n-tuple) or turns label/labels into score/scores.
    """
    is_list = isinstance(dataset, (list, tuple))
    columns = _column_names(dataset, is_list)
    anchor_col, positive_col = _pick_columns(columns, anchor_column_name, positive_column_name)
    anchors, positives = _texts(dataset, anchor_col, is_list), _texts(dataset, positive_col, is_list)
    extra = [] if corpus is None else _strings(corpus if isinstance(corpus, str) else list(corpus), "corpus")
    if output_format not in OUTPUT_FORMATS:
        raise InputError(f"output_format {output_format!r} is not one of {', '.join(map(repr, OUTPUT_FORMATS))}.")
    if sampling_strategy not in ("top", "random"):
        raise InputError(f"sampling_strategy {sampling_strategy!r} must be 'top' or 'random'.")
    if include_positives and output_format != "n-tuple":
        # Only an n-tuple row keeps the positives ranked among the negatives.
        logger.warning("include_positives=True: output_format %r is replaced by 'n-tuple'.", output_format)
        output_format = "n-tuple"
    header = _header(output_format, output_scores, anchor_col, positive_col, num_negatives)

    # The pool is sized by rows per anchor (duplicates included), as sentence-transformers sizes it.
    max_positives = max(Counter(anchors).values())
    filtering = absolute_margin is not None or relative_margin is not None or max_score is not None
    wide = filtering or (cross_encoder is not None and min_score is not None)  # filters may discard many
    range_max = _check_range(range_min, range_max, num_negatives, max_positives, wide)
    rescore = cross_encoder is not None and (filtering or min_score is not None)
    if cross_encoder is not None and not rescore:
        logger.warning("cross_encoder is only used to rescore for max_score/min_score/margin filters; none is set.")

    corpus_texts = list(dict.fromkeys(extra + positives))
    corpus_index = {text: i for i, text in enumerate(corpus_texts)}
    queries = list(dict.fromkeys(anchors))
    query_index = {text: i for i, text in enumerate(queries)}
    positive_ids: list[list[int]] = [[] for _ in queries]
    for anchor, positive in zip(anchors, positives, strict=True):
        ids = positive_ids[query_index[anchor]]
        if corpus_index[positive] not in ids:
            ids.append(corpus_index[positive])
    pair_query = [q for q, ids in enumerate(positive_ids) for _ in ids]  # one entry per unique (anchor, positive)
    pair_doc = [d for ids in positive_ids for d in ids]

    options = dict(batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True,
                   show_progress_bar=show_progress_bar)
    corpus_emb = model.encode_document(corpus_texts, **options)
    query_emb = model.encode_query(queries, **options)
    scores, indices = _top_k(model, query_emb, corpus_emb, range_max + max_positives)
    positive_scores = model.similarity_pairwise(query_emb[pair_query], corpus_emb[pair_doc]).float().cpu()
    del corpus_emb, query_emb

    is_positive = _positive_mask(indices, positive_ids)
    if rescore:
        scorable = (indices >= 0) & (~is_positive if not include_positives else torch.ones_like(is_positive))
        scores, positive_scores = _rescore(cross_encoder, queries, corpus_texts, indices, scorable, pair_query,
                                           pair_doc, batch_size, show_progress_bar)
    scores[indices < 0] = _NEG_INF  # padding when the corpus is smaller than the pool
    if not include_positives:
        scores[is_positive] = _NEG_INF
    skipped = _apply_filters(scores, positive_scores, pair_query, absolute_margin, relative_margin, max_score,
                             min_score)

    # Rank the survivors (by cross-encoder score when rescored); filtered ones sink to the end as -inf.
    scores, order = scores.sort(dim=1, descending=True, stable=True)
    indices = indices.gather(1, order)[:, range_min:range_max]
    scores = scores[:, range_min:range_max]
    if sampling_strategy == "top":
        picks = torch.arange(num_negatives).expand(len(queries), -1)
    else:
        rng: Any = random.Random(seed) if seed is not None else random
        # Sample among the live candidates when there are enough; sorted positions keep best-first order.
        picks = torch.tensor([sorted(rng.sample(range(max(int(torch.isfinite(row).sum()), num_negatives)),
                                                k=num_negatives)) for row in scores], dtype=torch.long)
    neg_ids, neg_scores = indices.gather(1, picks), scores.gather(1, picks)

    data, dropped = _build_columns(header, output_format, output_scores, queries, corpus_texts, positive_ids,
                                   positive_scores.tolist(), neg_ids, neg_scores)
    _log_summary(len(anchors), neg_scores, positive_scores, skipped, dropped, output_format, num_negatives)
    if is_list:
        return [dict(zip(data, values, strict=True)) for values in zip(*data.values(), strict=True)]
    from datasets import Dataset

    return Dataset.from_dict(data)


def _column_names(dataset: Any, is_list: bool) -> list[str]:
    if is_list and dataset and not isinstance(dataset[0], dict):
        raise InputError(f"Row 0 is a {type(dataset[0]).__name__}; expected a dict of column name -> text.")
    columns = (list(dataset[0]) if dataset else []) if is_list else getattr(dataset, "column_names", None)
    if not isinstance(columns, list) or not hasattr(dataset, "__len__"):  # e.g. a DatasetDict or IterableDataset
        raise InputError(f"dataset is a {type(dataset).__name__}; expected a datasets.Dataset or a list of dicts.")
    if len(dataset) == 0:
        raise InputError("The dataset is empty; expected (anchor, positive) rows.")
    if len(columns) < 2:
        raise InputError(f"The dataset has columns {columns}; expected at least two: an anchor and a positive.")
    return columns


def _pick_columns(columns: list[str], anchor: str | None, positive: str | None) -> tuple[str, str]:
    for name, role in ((anchor, "anchor_column_name"), (positive, "positive_column_name")):
        if name is not None and name not in columns:
            raise InputError(f"Column {name!r} ({role}) is not in the dataset; its columns are {columns}.")
    anchor = anchor if anchor is not None else columns[0]
    positive = positive if positive is not None else next(c for c in columns if c != anchor)
    if anchor == positive:
        raise InputError(f"anchor_column_name and positive_column_name are both {anchor!r}; expected two columns.")
    return anchor, positive


def _texts(dataset: Any, column: str, is_list: bool) -> list[str]:
    if is_list:
        for i, row in enumerate(dataset):
            if not isinstance(row, dict) or column not in row:
                found = list(row) if isinstance(row, dict) else type(row).__name__
                raise InputError(f"Row {i} has no column {column!r} (it has {found}); expected every row to have it.")
    return _strings([row[column] for row in dataset] if is_list else list(dataset[column]), f"column {column!r}")


def _strings(values: Any, where: str) -> list[str]:
    if not isinstance(values, list):
        raise InputError(f"{where} is a {type(values).__name__}; expected a list of strings.")
    for i, value in enumerate(values):
        if not isinstance(value, str):
            place = f"{where}[{i}]" if where == "corpus" else f"Row {i}, {where}"
            raise InputError(f"{place}: expected a string, got {type(value).__name__}.")
    return values


def _check_range(range_min: int, range_max: int | None, num_negatives: int, max_positives: int, wide: bool) -> int:
    if not isinstance(num_negatives, int) or num_negatives < 1:
        raise InputError(f"num_negatives must be an integer >= 1, got {num_negatives!r}.")
    if range_min < 0:
        raise InputError(f"range_min must be >= 0, got {range_min}.")
    if range_max is None:
        # Same default as sentence-transformers: room for the positives, and 10x the negatives when filtering.
        range_max = range_min + num_negatives * (10 if wide else 1) + max_positives
    if range_min >= range_max:
        raise InputError(f"range_min must be smaller than range_max, got range_min={range_min}, range_max={range_max}.")
    if num_negatives > range_max - range_min:
        raise InputError(f"num_negatives={num_negatives} does not fit in ranks [{range_min}, {range_max}); expected "
                         f"range_max - range_min >= num_negatives.")
    return range_max


def _top_k(model: Any, queries: torch.Tensor, corpus: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Best ``k`` (score, corpus index) per query, best first, padded with (-inf, -1) past the corpus size."""
    n_corpus = len(corpus)
    width = min(n_corpus, _CORPUS_CHUNK)
    step = max(1, _SCORE_BUDGET // width)
    keep = min(k, n_corpus)
    all_scores, all_ids = [], []
    for start in range(0, len(queries), step):
        block = queries[start:start + step]
        best_scores = best_ids = None
        for offset in range(0, n_corpus, width):
            chunk = model.similarity(block, corpus[offset:offset + width]).float()
            chunk_scores, chunk_ids = chunk.topk(min(keep, chunk.shape[1]), dim=1)
            chunk_ids = chunk_ids + offset
            if best_scores is not None and best_ids is not None:  # merge with what earlier chunks kept
                chunk_scores, chunk_ids = torch.cat([best_scores, chunk_scores], 1), torch.cat([best_ids, chunk_ids], 1)
                chunk_scores, where = chunk_scores.topk(min(keep, chunk_scores.shape[1]), dim=1)
                chunk_ids = chunk_ids.gather(1, where)
            best_scores, best_ids = chunk_scores, chunk_ids
        assert best_scores is not None and best_ids is not None  # the corpus is not empty: one chunk at least
        all_scores.append(best_scores.cpu())
        all_ids.append(best_ids.cpu())
    scores, ids = torch.cat(all_scores), torch.cat(all_ids)
    if k > keep:
        scores = torch.cat([scores, scores.new_full((len(scores), k - keep), _NEG_INF)], 1)
        ids = torch.cat([ids, ids.new_full((len(ids), k - keep), -1)], 1)
    return scores, ids


def _positive_mask(indices: torch.Tensor, positive_ids: list[list[int]]) -> torch.Tensor:
    table = torch.full((len(positive_ids), max(map(len, positive_ids))), -2, dtype=indices.dtype)
    for q, ids in enumerate(positive_ids):
        table[q, :len(ids)] = torch.tensor(ids, dtype=indices.dtype)
    return (indices.unsqueeze(2) == table.unsqueeze(1)).any(2)


def _rescore(cross_encoder: Any, queries: list[str], corpus: list[str], indices: torch.Tensor, scorable: torch.Tensor,
             pair_query: list[int], pair_doc: list[int], batch_size: int,
             show_progress_bar: bool | None) -> tuple[torch.Tensor, torch.Tensor]:
    # One predict call for candidates and positives, so batching spans anchors; padding and masked positives
    # would be discarded anyway, so they are never scored.
    rows, cols = scorable.nonzero(as_tuple=True)
    pairs = [(queries[q], corpus[d]) for q, d in zip(rows.tolist(), indices[rows, cols].tolist(), strict=True)]
    pairs += [(queries[q], corpus[d]) for q, d in zip(pair_query, pair_doc, strict=True)]
    predicted = cross_encoder.predict(pairs, batch_size=batch_size, show_progress_bar=show_progress_bar,
                                      convert_to_tensor=True)
    predicted = torch.as_tensor(predicted).float().cpu()
    if predicted.ndim != 1:
        raise InputError(f"cross_encoder gives scores of shape {tuple(predicted.shape)}; expected one per pair.")
    scores = torch.full(indices.shape, _NEG_INF)
    scores[rows, cols] = predicted[:len(rows)]
    return scores, predicted[len(rows):]


def _apply_filters(scores: torch.Tensor, positive_scores: torch.Tensor, pair_query: list[int],
                   absolute_margin: float | None, relative_margin: float | None, max_score: float | None,
                   min_score: float | None) -> dict[str, int]:
    """Set filtered candidates to -inf in place; return how many each filter removed."""
    skipped: dict[str, int] = {}

    def drop(name: str, removed: torch.Tensor) -> None:
        removed &= torch.isfinite(scores)  # count only candidates still alive
        scores[removed] = _NEG_INF
        if removed.any():
            skipped[name] = int(removed.sum())

    if absolute_margin is not None or relative_margin is not None:
        # With several positives the margin is taken from the hardest (lowest-scored) one, to be safe.
        hardest = torch.full((len(scores),), float("inf")).scatter_reduce(
            0, torch.tensor(pair_query), positive_scores, "amin").unsqueeze(1)
        if absolute_margin is not None:
            drop("absolute_margin", scores + absolute_margin > hardest)
        if relative_margin is not None:
            # Subtracting |positive| * margin keeps the threshold below the positive for negative scores too.
            drop("relative_margin", scores > hardest - hardest.abs() * relative_margin)
    if max_score is not None:
        drop("max_score", scores > max_score)
    if min_score is not None:
        drop("min_score", scores < min_score)
    return skipped


def _header(output_format: str, output_scores: bool, anchor_col: str, positive_col: str, n: int) -> list[str]:
    """Output column names, as sentence-transformers names them."""
    if output_format == "triplet":
        header = [anchor_col, positive_col, "negative"] + (["scores"] if output_scores else [])
    elif output_format == "n-tuple":
        header = [anchor_col, positive_col, *(f"negative_{i}" for i in range(1, n + 1))]
        header += ["scores"] if output_scores else []
    else:
        scored = "score" if output_format == "labeled-pair" else "scores"
        header = [anchor_col, positive_col, scored if output_scores else scored.replace("score", "label")]
    if len(set(header)) < len(header):
        raise InputError(f"Output columns {header} would collide; rename the dataset's columns.")
    return header


def _build_columns(header: list[str], output_format: str, output_scores: bool, queries: list[str], corpus: list[str],
                   positive_ids: list[list[int]], positive_scores: list[float], neg_ids: torch.Tensor,
                   neg_scores: torch.Tensor) -> tuple[dict[str, list], int]:
    """Rows in sentence-transformers' order (anchor by anchor, positive by positive, best negative first), and
    how many (anchor, positive) pairs were dropped for lack of negatives."""
    data: dict[str, list] = {name: [] for name in header}

    def add(*values: Any) -> None:
        for name, value in zip(header, values, strict=True):
            data[name].append(value)

    dropped, pair, n = 0, 0, neg_ids.shape[1]
    for q, query in enumerate(queries):
        kept = [(corpus[i], s) for i, s in zip(neg_ids[q].tolist(), neg_scores[q].tolist(), strict=True) if s != _NEG_INF]
        texts, scores = [t for t, _ in kept], [s for _, s in kept]
        for d in positive_ids[q]:
            positive, pos_score, pair = corpus[d], positive_scores[pair], pair + 1
            if output_format == "labeled-pair":
                add(query, positive, pos_score if output_scores else 1)
            elif output_format == "triplet":
                for text, score in kept:
                    add(query, positive, text, *([[pos_score, score]] if output_scores else []))
            elif output_format == "n-tuple" and len(texts) == n:
                add(query, positive, *texts, *([[pos_score, *scores]] if output_scores else []))
            elif output_format == "labeled-list" and texts:
                add(query, [positive, *texts], [pos_score, *scores] if output_scores else [1] + [0] * len(texts))
            else:
                dropped += 1
        if output_format == "labeled-pair":  # the anchor's positives first, then its negatives
            for text, score in kept:
                add(query, text, score if output_scores else 0)
    return data, dropped


def _log_summary(n_rows: int, neg_scores: torch.Tensor, positive_scores: torch.Tensor, skipped: dict[str, int],
                 dropped: int, output_format: str, n: int) -> None:
    found = torch.isfinite(neg_scores)
    per_anchor = Counter(found.sum(1).tolist())
    spread = ", ".join(f"{count} got {k}" for k, count in sorted(per_anchor.items(), reverse=True))
    mean_neg = neg_scores[found].mean().item() if found.any() else float("nan")
    logger.info("Mined hard negatives for %d anchors (%d input rows): %s. Mean score: positives %.4f, negatives %.4f.",
                len(neg_scores), n_rows, spread, positive_scores.mean().item(), mean_neg)
    if skipped:
        logger.info("Candidates removed by filter: %s.", ", ".join(f"{k} {v:,}" for k, v in skipped.items()))
    if dropped:
        reason = f"fewer than {n} negatives" if output_format == "n-tuple" else "no negative"
        logger.info("Dropped %d (anchor, positive) rows with %s; widen range_max or relax the filters.", dropped, reason)
