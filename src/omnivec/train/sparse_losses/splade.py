"""SPLADE's training objective (Formal et al., 2021/2022): a ranking loss plus FLOPS regularizers that push query
and document vectors towards few active vocabulary dimensions."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from omnivec.errors import ConfigError
from omnivec.runtime.units import PreparedInputs
from omnivec.train.losses.base import EmbeddingLoss, Loss, embed_columns
from omnivec.train.losses.binding import BoundModel

logger = logging.getLogger(__name__)


class FlopsLoss(BoundModel, Loss):
    """The FLOPS regularizer (Paria et al., 2020): the squared L2 norm of the batch's mean vector, ``sum_j
    mean_i(w_ij)^2``, a smooth stand-in for the dot products a sparse index computes. With ``threshold``, only
    vectors with more than that many active dimensions count (FLOPS with L0 masking); the others are zeroed but
    still divide the mean, as in sentence-transformers.

    A regularizer, not a training loss on its own: ``SpladeLoss`` applies it to the document and query vectors."""

    def __init__(self, model: Any = None, threshold: float | None = None) -> None:
        super().__init__()
        self.bind(model, "sparse_encoder")
        if threshold is not None and threshold < 0:
            raise ConfigError(f"FlopsLoss threshold must be a number of active dimensions >= 0, got {threshold}.")
        self.threshold = threshold

    def config(self) -> dict[str, Any]:
        return {"threshold": self.threshold}

    def compute(self, embeddings: torch.Tensor) -> torch.Tensor:
        """The regularizer on one (n, vocabulary) batch of vectors."""
        if self.threshold is not None:
            active = (embeddings != 0).sum(dim=1)
            embeddings = embeddings * (active > self.threshold).float().unsqueeze(1)
        return torch.sum(torch.mean(embeddings, dim=0) ** 2)

    compute_loss_from_embeddings = compute  # sentence-transformers' name

    def forward(self, model: Any, inputs: Sequence[PreparedInputs], labels: Any) -> torch.Tensor:
        raise ConfigError("FlopsLoss is a regularizer: use it inside SpladeLoss(model, loss=..., "
                          "document_regularizer=FlopsLoss(model)), not as the training loss.")


class SpladeLoss(BoundModel, Loss):
    """A sparse ranking loss plus FLOPS regularization of documents (every column after the first) and queries
    (the first column), as sentence-transformers' ``SpladeLoss``.

    Args:
        model: the SparseEncoder to train.
        loss: the ranking loss on the vectors, e.g. ``SparseMultipleNegativesRankingLoss(model)`` or
            ``SparseMarginMSELoss(model)`` (any embedding loss: its ``compute`` gets the columns' vectors).
        document_regularizer_weight: lambda_d, the weight of the document regularizer.
        query_regularizer_weight: lambda_q; None leaves queries unregularized (inference-free SPLADE, whose query
            side has no trained encoder).
        document_regularizer / query_regularizer: replace the default ``FlopsLoss`` (any module with
            ``compute(vectors)``).
        document_regularizer_threshold / query_regularizer_threshold: the default FlopsLoss's threshold.
        use_document_regularizer_only: every column is a document (symmetric data): one regularizer over all.

    Called by the trainer, it returns ``{"base_loss", "document_regularizer_loss", "query_regularizer_loss"}``
    (each already weighted); the trainer sums them and logs each. ``SparseEncoderTrainer`` ramps both weights up
    from 0 over the first third of training (``SpladeRegularizerWeightSchedulerCallback``), as
    sentence-transformers does."""

    def __init__(self, model: Any = None, loss: Any = None, document_regularizer_weight: float | None = None,
                 query_regularizer_weight: float | None = None, document_regularizer: Any = None,
                 query_regularizer: Any = None, document_regularizer_threshold: int | None = None,
                 query_regularizer_threshold: int | None = None, use_document_regularizer_only: bool = False) -> None:
        super().__init__()
        self.bind(model, "sparse_encoder")
        if not isinstance(loss, EmbeddingLoss):
            raise TypeError(f"SpladeLoss: argument 'loss' must be a sparse ranking loss such as "
                            f"SparseMultipleNegativesRankingLoss(model) or SparseMarginMSELoss(model), got "
                            f"{type(loss).__name__}.")
        if getattr(loss, "model", None) is not None and model is not None and loss.model is not model:
            raise ConfigError("SpladeLoss: 'loss' was built for a different model than 'model'.")
        if document_regularizer_weight is None:
            raise ConfigError("SpladeLoss needs document_regularizer_weight (lambda_d, e.g. 3e-5).")
        for name, value in (("document_regularizer_weight", document_regularizer_weight),
                            ("query_regularizer_weight", query_regularizer_weight)):
            if value is not None and value < 0:
                raise ConfigError(f"SpladeLoss {name} must be >= 0, got {value}.")
        for name, value in (("document_regularizer", document_regularizer), ("query_regularizer", query_regularizer)):
            if value is not None and _regularize_fn(value) is None:
                raise TypeError(f"SpladeLoss: argument '{name}' must have compute(vectors) (or sentence-transformers' "
                                f"compute_loss_from_embeddings), like FlopsLoss; got {type(value).__name__}.")
        self.loss = loss
        self.spec = loss.spec
        self.document_regularizer_weight: float = document_regularizer_weight
        self.query_regularizer_weight = query_regularizer_weight
        self.use_document_regularizer_only = use_document_regularizer_only
        self.document_regularizer = document_regularizer if document_regularizer is not None else FlopsLoss(
            model, threshold=document_regularizer_threshold)
        self.query_regularizer = None
        if query_regularizer is not None:
            self.query_regularizer = query_regularizer
        elif not use_document_regularizer_only:
            self.query_regularizer = FlopsLoss(model, threshold=query_regularizer_threshold)
        if use_document_regularizer_only and query_regularizer_weight is not None:
            logger.warning("SpladeLoss: query_regularizer_weight is ignored with use_document_regularizer_only=True "
                           "(every column is regularized as a document).")
            self.query_regularizer_weight = None
        elif query_regularizer_weight is None and not use_document_regularizer_only:
            logger.warning("SpladeLoss: query_regularizer_weight is None, so queries are not regularized; right for "
                           "inference-free SPLADE, otherwise set it (e.g. 5e-5).")

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"loss": type(self.loss).__name__, **self.loss.config(),
                                  "document_regularizer_weight": self.document_regularizer_weight}
        if self.query_regularizer_weight is not None:
            config["query_regularizer_weight"] = self.query_regularizer_weight
        for side in ("document", "query"):
            regularizer = getattr(self, f"{side}_regularizer")
            if regularizer is not None and not isinstance(regularizer, FlopsLoss):
                config[f"{side}_regularizer"] = type(regularizer).__name__
            threshold = getattr(regularizer, "threshold", None)
            if threshold is not None:
                config[f"{side}_regularizer_threshold"] = threshold
        return config

    def forward(self, model: Any, inputs: Sequence[PreparedInputs], labels: Any) -> dict[str, torch.Tensor]:
        return self.compute(embed_columns(model, inputs), labels)

    def compute(self, embeddings: list[torch.Tensor], labels: Any) -> dict[str, torch.Tensor]:
        """The weighted parts of the loss, from each column's (n, vocabulary) vectors (queries first)."""
        if len(embeddings) < 2 and not self.use_document_regularizer_only:
            raise ConfigError(f"SpladeLoss needs a query column and at least one document column, got "
                              f"{len(embeddings)} column(s).")
        base = self.loss.compute(embeddings, labels)
        parts = dict(base) if isinstance(base, dict) else {"base_loss": base}
        documents = torch.cat(embeddings if self.use_document_regularizer_only else embeddings[1:])
        regularize = _regularize_fn(self.document_regularizer)
        assert regularize is not None  # checked in __init__
        parts["document_regularizer_loss"] = regularize(documents) * self.document_regularizer_weight
        regularize = _regularize_fn(self.query_regularizer)
        if self.query_regularizer_weight is not None and regularize is not None:
            parts["query_regularizer_loss"] = regularize(embeddings[0]) * self.query_regularizer_weight
        return parts

    compute_loss_from_embeddings = compute  # sentence-transformers' name


def _regularize_fn(regularizer: Any) -> Any:
    """The regularizer's function of a batch of vectors: omnivec's ``compute`` or sentence-transformers'
    ``compute_loss_from_embeddings``; None if it has neither."""
    for name in ("compute", "compute_loss_from_embeddings"):
        if callable(getattr(regularizer, name, None)):
            return getattr(regularizer, name)
    return None
