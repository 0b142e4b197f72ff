"""Matryoshka representation learning (Kusupati et al., 2022): one loss applied to several prefixes of the
embedding, so truncated vectors stay useful."""

from __future__ import annotations

import functools
import operator
import random
from collections.abc import Sequence
from typing import Any

import torch

from omnivec.errors import ConfigError
from omnivec.runtime.units import PreparedInputs
from omnivec.train.losses.base import EmbeddingLoss, embed_columns
from omnivec.train.losses.binding import BoundModel
from omnivec.train.losses.contrastive import CachedMultipleNegativesRankingLoss


class MatryoshkaLoss(BoundModel, EmbeddingLoss):
    """Wraps an embedding loss: ``sum_d weight_d * loss(embeddings[:, :d])`` over ``dims``. The columns are
    embedded once; each dimension reuses them.

    Two spellings: sentence-transformers' ``MatryoshkaLoss(model, loss, matryoshka_dims=[...],
    matryoshka_weights=None, n_dims_per_step=-1)`` and omnivec's ``MatryoshkaLoss(loss, dims=[...], weights=None)``.
    ``n_dims_per_step`` > 0 uses that many of the dims, drawn at random, at each step."""

    def __init__(self, model: Any = None, loss: Any = None, matryoshka_dims: Sequence[int] | None = None,
                 matryoshka_weights: Sequence[float] | None = None, n_dims_per_step: int = -1, *,
                 dims: Sequence[int] | None = None, weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if isinstance(model, torch.nn.Module) and isinstance(model, EmbeddingLoss) and not isinstance(loss, torch.nn.Module):
            # omnivec's form: (loss, dims, weights) in the first three places
            model, loss, matryoshka_dims, matryoshka_weights = None, model, loss, matryoshka_dims
        self.bind(model, "embedder")
        if (dims is not None and matryoshka_dims is not None) or (weights is not None and matryoshka_weights is not None):
            raise ConfigError("Pass matryoshka_dims/matryoshka_weights or dims/weights, not both.")
        dims = dims if dims is not None else matryoshka_dims
        weights = weights if weights is not None else matryoshka_weights
        if dims is None:
            raise ConfigError("MatryoshkaLoss needs matryoshka_dims, e.g. [768, 512, 256, 128, 64].")
        if n_dims_per_step == 0 or n_dims_per_step < -1:
            raise ConfigError(f"n_dims_per_step must be -1 (all dims) or positive, got {n_dims_per_step}.")
        if not isinstance(loss, EmbeddingLoss) or isinstance(loss, CachedMultipleNegativesRankingLoss):
            raise TypeError(f"MatryoshkaLoss: argument 'loss' must be an embedding loss that works on embeddings (e.g. "
                            f"MultipleNegativesRankingLoss, CoSENTLoss), got {type(loss).__name__}.")
        if not dims or any(int(d) <= 0 for d in dims):
            raise ConfigError(f"dims must be positive embedding sizes, got {list(dims)}.")
        weights = list(weights) if weights is not None else [1.0] * len(dims)
        if len(weights) != len(dims):
            raise ConfigError(f"Got {len(weights)} weights for {len(dims)} dims.")
        self.loss, self.dims, self.weights = loss, [int(d) for d in dims], weights
        self.n_dims_per_step = n_dims_per_step
        self.spec = loss.spec

    @property
    def matryoshka_dims(self) -> list[int]:  # sentence-transformers' attribute name
        return self.dims

    def config(self) -> dict[str, Any]:
        return {"loss": type(self.loss).__name__, **self.loss.config(), "dims": self.dims, "weights": self.weights,
                "n_dims_per_step": self.n_dims_per_step}

    def forward(self, model: Any, inputs: Sequence[PreparedInputs], labels: Any) -> torch.Tensor:
        embeddings = embed_columns(model, inputs)
        width = embeddings[0].shape[-1]
        if max(self.dims) > width:
            raise ConfigError(f"MatryoshkaLoss dims {self.dims} exceed the model's embedding size {width}.")
        chosen = list(zip(self.dims, self.weights, strict=True))  # lengths checked in __init__
        if 0 < self.n_dims_per_step < len(chosen):
            chosen = random.sample(chosen, self.n_dims_per_step)
        parts = [weight * self.loss.compute([e[..., :dim] for e in embeddings], labels) for dim, weight in chosen]
        return functools.reduce(operator.add, parts)  # as sum(), without its int start
