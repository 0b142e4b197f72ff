"""Similarity functions between embeddings: cosine, dot, negative euclidean and manhattan distance.

The ``cos_sim`` ... ``pairwise_angle_sim`` family and ``SimilarityFunction`` carry sentence-transformers'
names and input rules (``omnivec.util`` re-exports them): half precision is scored in float32, a 1-d input
is one row of the matrix forms, and the pairwise forms reduce the last dimension.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, Literal

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


def checked_name(name: str) -> str:
    """``name`` as a plain string (``SimilarityFunction.DOT`` -> ``"dot"``), checked to be a known function."""
    if isinstance(name, Enum):  # SimilarityFunction.COSINE and the like
        name = name.value
    if name not in _MATRIX:
        raise ConfigError(f"similarity_fn_name {name!r} is not one of {SIMILARITY_NAMES}.")
    return str(name)


def get(name: str, pairwise: bool = False) -> Callable[..., torch.Tensor]:
    """The similarity function called ``name`` (matrix form, or row-by-row when ``pairwise``)."""
    return (_PAIRWISE if pairwise else _MATRIX)[checked_name(name)]


# -- sentence-transformers' names (omnivec.util) -----------------------------------------------------------
ArrayLike = Any  # a tensor, a NumPy array, or a list of numbers / tensors / arrays


def _tensor(x: ArrayLike) -> torch.Tensor:
    """``x`` as a dense tensor, lists stacked; sub-float32 floats become float32 (matmul would round the scores
    to the input's precision and tie nearby ones)."""
    if isinstance(x, list) and x and all(isinstance(v, torch.Tensor) for v in x):
        t = torch.stack([v.to_dense() if v.is_sparse else v for v in x])
    elif isinstance(x, list) and x and all(isinstance(v, np.ndarray) for v in x):
        t = torch.stack([_from_numpy(v) for v in x])
    elif isinstance(x, np.ndarray):
        t = _from_numpy(x)
    else:
        t = x if isinstance(x, torch.Tensor) else torch.tensor(x)
    if t.is_sparse:  # omnivec has no sparse models: score sparse inputs densely (same numbers)
        t = t.to_dense()
    if torch.is_floating_point(t) and torch.finfo(t.dtype).bits < 32:
        t = t.to(torch.float32)
    return t


def _from_numpy(a: np.ndarray) -> torch.Tensor:
    # A view where NumPy allows one (no copy of a large corpus); read-only or odd-dtype arrays are copied.
    if a.flags.writeable:
        try:
            return torch.from_numpy(a)
        except TypeError:
            pass
    return torch.tensor(a)


def _rows(x: ArrayLike) -> torch.Tensor:
    t = _tensor(x)
    return t.unsqueeze(0) if t.dim() == 1 else t


def cos_sim(a: ArrayLike, b: ArrayLike) -> torch.Tensor:
    """Matrix with ``res[i][j] = cosine(a[i], b[j])``."""
    return cosine(_rows(a), _rows(b))


def pytorch_cos_sim(a: ArrayLike, b: ArrayLike) -> torch.Tensor:
    """The old name of :func:`cos_sim`."""
    return cos_sim(a, b)


def dot_score(a: ArrayLike, b: ArrayLike) -> torch.Tensor:
    """Matrix with ``res[i][j] = a[i] . b[j]``."""
    return dot(_rows(a), _rows(b))


def euclidean_sim(a: ArrayLike, b: ArrayLike) -> torch.Tensor:
    """Matrix with ``res[i][j] = -||a[i] - b[j]||``."""
    return euclidean(_rows(a), _rows(b))


def manhattan_sim(a: ArrayLike, b: ArrayLike) -> torch.Tensor:
    """Matrix with ``res[i][j] = -sum |a[i] - b[j]|``."""
    return manhattan(_rows(a), _rows(b))


def pairwise_cos_sim(a: ArrayLike, b: ArrayLike) -> torch.Tensor:
    """Vector with ``res[i] = cosine(a[i], b[i])``."""
    a, b = _tensor(a), _tensor(b)
    return (torch.nn.functional.normalize(a, dim=-1) * torch.nn.functional.normalize(b, dim=-1)).sum(dim=-1)


def pairwise_dot_score(a: ArrayLike, b: ArrayLike) -> torch.Tensor:
    """Vector with ``res[i] = a[i] . b[i]``."""
    return (_tensor(a) * _tensor(b)).sum(dim=-1)


def pairwise_euclidean_sim(a: ArrayLike, b: ArrayLike) -> torch.Tensor:
    """Vector with ``res[i] = -||a[i] - b[i]||``."""
    diff = _tensor(a) - _tensor(b)
    return -torch.linalg.vector_norm(diff if diff.is_floating_point() else diff.float(), dim=-1)


def pairwise_manhattan_sim(a: ArrayLike, b: ArrayLike) -> torch.Tensor:
    """Vector with ``res[i] = -sum |a[i] - b[i]|``."""
    return -(_tensor(a) - _tensor(b)).abs().sum(dim=-1)


def pairwise_angle_sim(x: ArrayLike, y: ArrayLike) -> torch.Tensor:
    """Vector with the absolute AnglE similarity ``|cos(x[i], y[i]) + sin(x[i], y[i])|`` of L2-normalized rows,
    dimension ``k`` paired with ``k + D/2`` for the sine (https://huggingface.co/papers/2309.12871)."""
    x, y = _tensor(x), _tensor(y)
    if x.shape[1] % 2:  # the halves need an even dimension
        x = torch.nn.functional.pad(x, (0, 1))
        y = torch.nn.functional.pad(y, (0, 1))
    x = torch.nn.functional.normalize(x, p=2, dim=1)
    y = torch.nn.functional.normalize(y, p=2, dim=1)
    x_re, x_im = torch.chunk(x, 2, dim=1)
    y_re, y_im = torch.chunk(y, 2, dim=1)
    return torch.abs((x * y).sum(dim=1) + (x_im * y_re - x_re * y_im).sum(dim=1))


class SimilarityFunction(str, Enum):
    """The similarity functions by name, as sentence-transformers' enum of the same name.

    A ``str`` subclass (``SimilarityFunction.COSINE == "cosine"``), so a member goes wherever omnivec takes a
    similarity name (``similarity_fn_name=``, evaluators, configs written as JSON).
    """

    COSINE = "cosine"
    DOT_PRODUCT = "dot"
    DOT = "dot"  # alias of DOT_PRODUCT
    EUCLIDEAN = "euclidean"
    MANHATTAN = "manhattan"

    # A str's hash and text, so members work as dict keys and in f-strings like the plain names.
    __hash__ = str.__hash__

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @staticmethod
    def to_similarity_fn(similarity_function: str | SimilarityFunction) -> Callable[..., torch.Tensor]:
        """The matrix function (``cos_sim``, ``dot_score``, ...) of a name or member."""
        return _ST_MATRIX[SimilarityFunction(similarity_function).value]

    @staticmethod
    def to_similarity_pairwise_fn(similarity_function: str | SimilarityFunction) -> Callable[..., torch.Tensor]:
        """The row-by-row function (``pairwise_cos_sim``, ...) of a name or member."""
        return _ST_PAIRWISE[SimilarityFunction(similarity_function).value]

    @staticmethod
    def possible_values() -> list[str]:
        """The accepted names: ``['cosine', 'dot', 'euclidean', 'manhattan']``."""
        return [m.value for m in SimilarityFunction]


_ST_MATRIX: dict[str, Callable[..., torch.Tensor]] = {
    "cosine": cos_sim, "dot": dot_score, "euclidean": euclidean_sim, "manhattan": manhattan_sim}
_ST_PAIRWISE: dict[str, Callable[..., torch.Tensor]] = {
    "cosine": pairwise_cos_sim, "dot": pairwise_dot_score, "euclidean": pairwise_euclidean_sim,
    "manhattan": pairwise_manhattan_sim}
