"""Embedding tensor helpers with sentence-transformers' names: normalize, truncate, move a batch to a device."""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import torch

from omnivec.errors import InputError

_Embeddings = TypeVar("_Embeddings", np.ndarray, torch.Tensor)


def normalize_embeddings(embeddings: torch.Tensor) -> torch.Tensor:
    """Each embedding scaled to unit length (L2, along the last dimension); a sparse input stays sparse."""
    if not isinstance(embeddings, torch.Tensor):
        raise InputError(f"embeddings must be a torch.Tensor, got {type(embeddings).__name__}.")
    if embeddings.is_sparse:
        return torch.nn.functional.normalize(embeddings.to_dense(), p=2, dim=-1).to_sparse()
    return torch.nn.functional.normalize(embeddings, p=2, dim=-1)


def truncate_embeddings(embeddings: _Embeddings, truncate_dim: int | None) -> _Embeddings:
    """The first ``truncate_dim`` dimensions of each embedding (all of them for ``None``): Matryoshka truncation."""
    return embeddings[..., :truncate_dim]


def batch_to_device(batch: dict[str, Any], target_device: str | torch.device) -> dict[str, Any]:
    """Moves the tensors among ``batch``'s values to ``target_device``, in place; returns ``batch``."""
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            batch[key] = value.to(target_device)
    return batch
