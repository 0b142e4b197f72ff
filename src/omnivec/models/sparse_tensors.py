"""Operations on sparse (vocabulary-sized) embeddings: top-k pruning, similarity, decoding to tokens, the
intersection of two embeddings and sparsity statistics. Inputs may be sparse COO or dense tensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from omnivec import similarity as sim
from omnivec.errors import InputError


def check_max_active_dims(value: Any, name: str = "max_active_dims") -> int | None:
    """None (no limit) or a positive number of dimensions to keep per embedding."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise InputError(f"{name} must be None or a positive integer (the non-zero dimensions kept per embedding), "
                         f"got {value!r}.")
    return value


def keep_top_dims(embeddings: torch.Tensor, k: int | None) -> torch.Tensor:
    """(B, V) dense -> (B, V) with only each row's ``k`` largest-magnitude values kept (the rest zero)."""
    if k is None or k >= embeddings.shape[-1]:
        return embeddings
    top = torch.topk(embeddings.abs(), k=k, dim=-1).indices  # (B, k)
    return torch.zeros_like(embeddings).scatter_(-1, top, embeddings.gather(-1, top))


def as_rows(x: Any) -> torch.Tensor:
    """A tensor, array or list of row tensors / arrays as a 2-D tensor (sparse stays sparse)."""
    if isinstance(x, list | tuple) and x and all(isinstance(v, torch.Tensor) for v in x):
        x = torch.stack(list(x))
    elif isinstance(x, list | tuple) and x and all(isinstance(v, np.ndarray) for v in x):
        x = torch.from_numpy(np.stack(x))
    elif isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    elif not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    return x.unsqueeze(0) if x.ndim == 1 else x


def similarity(name: str, a: Any, b: Any) -> torch.Tensor:
    """(n, m) scores between every row of ``a`` and of ``b``. ``dot`` keeps sparse inputs sparse (a corpus of SPLADE
    vectors is never densified); the other functions score dense copies."""
    a, b = as_rows(a), as_rows(b)
    if name == "dot":
        if b.is_sparse and not a.is_sparse:  # torch multiplies sparse x dense, not dense x sparse
            return torch.mm(b, a.t()).t().to_dense()
        return torch.mm(a, b.t()).to_dense()
    return sim.get(name)(_dense(a), _dense(b))


def similarity_pairwise(name: str, a: Any, b: Any) -> torch.Tensor:
    """(n,) scores of ``a[i]`` against ``b[i]``."""
    return sim.get(name, pairwise=True)(_dense(as_rows(a)), _dense(as_rows(b)))


def _dense(x: torch.Tensor) -> torch.Tensor:
    return x.to_dense() if x.is_sparse else x


def intersection(embeddings_1: torch.Tensor, embeddings_2: torch.Tensor) -> torch.Tensor:
    """The dimensions active in both (their products), sparse, shaped like ``embeddings_2`` ((V,) or (B, V));
    ``embeddings_1`` is one embedding (V,)."""
    if not isinstance(embeddings_1, torch.Tensor) or not isinstance(embeddings_2, torch.Tensor):
        raise InputError("intersection takes two torch tensors (sparse or dense embeddings).")
    if embeddings_1.ndim != 1:
        raise InputError(f"embeddings_1 must be one embedding (1-D), got shape {tuple(embeddings_1.shape)}.")
    if embeddings_2.ndim not in (1, 2):
        raise InputError(f"embeddings_2 must be 1-D or 2-D, got shape {tuple(embeddings_2.shape)}.")
    if embeddings_1.shape[-1] != embeddings_2.shape[-1]:
        raise InputError(f"embeddings_1 has {embeddings_1.shape[-1]} dimensions, embeddings_2 "
                         f"{embeddings_2.shape[-1]}: they come from different vocabularies.")
    product = _dense(embeddings_2) * _dense(embeddings_1)  # broadcasts over the rows of a (B, V) embeddings_2
    return torch.where(product > 0, product, torch.zeros_like(product)).to_sparse()


def sparsity(embeddings: torch.Tensor) -> dict[str, float]:
    """Mean non-zero dimensions per embedding (``active_dims``) and the mean share of zeros (``sparsity_ratio``)."""
    if not isinstance(embeddings, torch.Tensor):
        raise InputError(f"embeddings must be a torch.Tensor, got {type(embeddings).__name__}.")
    if embeddings.ndim not in (1, 2):
        raise InputError(f"embeddings must be 1-D or 2-D, got {embeddings.ndim}-D.")
    rows = embeddings.unsqueeze(0) if embeddings.ndim == 1 else embeddings
    if rows.shape[0] == 0 or rows.shape[1] == 0:
        return {"active_dims": 0.0, "sparsity_ratio": 1.0}
    if rows.is_sparse:
        rows = rows.coalesce()
        kept = rows.values() != 0
        active = torch.bincount(rows.indices()[0][kept], minlength=rows.shape[0])  # (B,)
    else:
        active = (rows != 0).sum(dim=1)  # (B,)
    mean = active.double().mean().item()
    return {"active_dims": mean, "sparsity_ratio": 1.0 - mean / rows.shape[1]}


def decode(tokenizer: Any, embeddings: torch.Tensor, top_k: int | None = None
           ) -> list[tuple[str, float]] | list[list[tuple[str, float]]]:
    """(token, weight) pairs of each embedding's non-zero dimensions, heaviest first (at most ``top_k``)."""
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0):
        raise InputError(f"top_k must be None or a positive integer, got {top_k!r}.")
    if not isinstance(embeddings, torch.Tensor):
        raise InputError(f"embeddings must be a torch.Tensor, got {type(embeddings).__name__}.")
    if embeddings.ndim not in (1, 2):
        raise InputError(f"embeddings must be 1-D or 2-D, got {embeddings.ndim}-D.")
    rows = embeddings.unsqueeze(0) if embeddings.ndim == 1 else embeddings
    rows = (rows if rows.is_sparse else rows.to_sparse()).coalesce()
    row_of, token_of = rows.indices()  # (nnz,), (nnz,), sorted by row
    values = rows.values()  # (nnz,)
    counts = torch.bincount(row_of, minlength=rows.shape[0]).tolist()
    out: list[list[tuple[str, float]]] = []
    start = 0
    for count in counts:
        weights, tokens = values[start:start + count], token_of[start:start + count]
        start += count
        if top_k is not None and top_k < count:
            weights, picked = torch.topk(weights, top_k)
        else:
            weights, picked = torch.sort(weights, descending=True)
        ids: Sequence[int] = tokens[picked].tolist()
        out.append(list(zip(tokenizer.convert_ids_to_tokens(list(ids)), weights.tolist(), strict=True)))
    return out[0] if embeddings.ndim == 1 else out


def nonzero_rows(embeddings: torch.Tensor | list[torch.Tensor]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each embedding's non-zero dimensions, increasing, and their weights: ``(int64 indices, float32 values)`` per
    row of a (n, V) tensor (sparse or dense) or per 1-D tensor of a list, as stores and wire formats take them."""
    if isinstance(embeddings, list):  # one row at a time: stacking would make a dense (n, V) copy
        return [pair for row in embeddings for pair in nonzero_rows(row.unsqueeze(0))]
    rows = embeddings
    if not rows.shape[0]:
        return []
    rows = (rows if rows.is_sparse else rows.to_sparse()).coalesce().cpu()
    row_of, columns = rows.indices().numpy()  # sorted by row, then column
    values = rows.values().float().numpy()
    bounds = np.searchsorted(row_of, np.arange(rows.shape[0] + 1))
    out = []
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        keep = values[start:end] != 0
        out.append((columns[start:end][keep].astype(np.int64), values[start:end][keep]))
    return out
