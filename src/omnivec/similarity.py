"""Similarity functions between embeddings: cosine, dot, negative euclidean and manhattan distance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch

from omnivec.errors import ConfigError

SimilarityName = Literal["cosine", "dot", "euclidean", "manhattan"]
SIMILARITY_NAMES: tuple[str, ...] = ("cosine", "dot", "euclidean", "manhattan")


def _as_2d(x: torch.Tensor | np.ndarray | list) -> torch.Tensor:
    if isinstance(x, list) and x and isinstance(x[0], torch.Tensor):
        x = torch.stack(x)
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.ascontiguousarray(x))
    if t.dtype in (torch.int8, torch.uint8):
        t = t.to(torch.float32)
    return t.unsqueeze(0) if t.dim() == 1 else t


def cosine(a, b) -> torch.Tensor:
    a, b = _as_2d(a), _as_2d(b)
    return torch.nn.functional.normalize(a, dim=1) @ torch.nn.functional.normalize(b, dim=1).T


def dot(a, b) -> torch.Tensor:
    a, b = _as_2d(a), _as_2d(b)
    return a @ b.T


def euclidean(a, b) -> torch.Tensor:
    return -torch.cdist(_as_2d(a), _as_2d(b), p=2.0)


def manhattan(a, b) -> torch.Tensor:
    return -torch.cdist(_as_2d(a), _as_2d(b), p=1.0)


def pairwise_cosine(a, b) -> torch.Tensor:
    a, b = _as_2d(a), _as_2d(b)
    return (torch.nn.functional.normalize(a, dim=1) * torch.nn.functional.normalize(b, dim=1)).sum(dim=-1)


def pairwise_dot(a, b) -> torch.Tensor:
    return (_as_2d(a) * _as_2d(b)).sum(dim=-1)


def pairwise_euclidean(a, b) -> torch.Tensor:
    return -torch.linalg.vector_norm(_as_2d(a) - _as_2d(b), dim=-1)


def pairwise_manhattan(a, b) -> torch.Tensor:
    return -(_as_2d(a) - _as_2d(b)).abs().sum(dim=-1)


_MATRIX: dict[str, Callable] = {"cosine": cosine, "dot": dot, "euclidean": euclidean, "manhattan": manhattan}
_PAIRWISE: dict[str, Callable] = {"cosine": pairwise_cosine, "dot": pairwise_dot,
                                  "euclidean": pairwise_euclidean, "manhattan": pairwise_manhattan}


def get(name: str, pairwise: bool = False) -> Callable[..., torch.Tensor]:
    """The similarity function called ``name`` (matrix form, or row-by-row when ``pairwise``)."""
    table = _PAIRWISE if pairwise else _MATRIX
    if name not in table:
        raise ConfigError(f"similarity_fn_name {name!r} is not one of {SIMILARITY_NAMES}.")
    return table[name]
