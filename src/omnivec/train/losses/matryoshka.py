"""Matryoshka representation learning (Kusupati et al., 2022): one loss applied to several prefixes of the
embedding, so truncated vectors stay useful."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from omnivec.runtime.units import PreparedInputs
from omnivec.train.losses.base import EmbeddingLoss, embed_columns
from omnivec.train.losses.contrastive import CachedMultipleNegativesRankingLoss


class MatryoshkaLoss(EmbeddingLoss):
    """Wraps an embedding loss: ``sum_d weight_d * loss(embeddings[:, :d])`` over ``dims``. The columns are
    embedded once; each dimension reuses them."""

    def __init__(self, loss: EmbeddingLoss, dims: Sequence[int], weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if not isinstance(loss, EmbeddingLoss) or isinstance(loss, CachedMultipleNegativesRankingLoss):
            raise TypeError(f"MatryoshkaLoss wraps an embedding loss that works on embeddings (e.g. "
                            f"MultipleNegativesRankingLoss, CoSENTLoss), not {type(loss).__name__}.")
        if not dims or any(int(d) <= 0 for d in dims):
            raise ValueError(f"dims must be positive embedding sizes, got {list(dims)}.")
        weights = list(weights) if weights is not None else [1.0] * len(dims)
        if len(weights) != len(dims):
            raise ValueError(f"Got {len(weights)} weights for {len(dims)} dims.")
        self.loss, self.dims, self.weights = loss, [int(d) for d in dims], weights
        self.spec = loss.spec

    def config(self) -> dict[str, Any]:
        return {"loss": type(self.loss).__name__, **self.loss.config(), "dims": self.dims, "weights": self.weights}

    def forward(self, model: Any, inputs: Sequence[PreparedInputs], labels: Any) -> torch.Tensor:
        embeddings = embed_columns(model, inputs)
        width = embeddings[0].shape[-1]
        if max(self.dims) > width:
            raise ValueError(f"MatryoshkaLoss dims {self.dims} exceed the model's embedding size {width}.")
        terms = [weight * self.loss.compute([e[..., :dim] for e in embeddings], labels)
                 for dim, weight in zip(self.dims, self.weights, strict=True)]
        return sum(terms[1:], terms[0])  # dims is never empty (checked in __init__)
