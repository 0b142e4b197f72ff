"""The SparseEncoder's ranking and similarity losses: omnivec's embedding losses on sparse vocabulary vectors, bound
to a SparseEncoder, with sentence-transformers' sparse defaults (dot product, scale 1). Each is used inside
``SpladeLoss``, whose FLOPS regularizers keep the vectors sparse, as in sentence-transformers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from omnivec.errors import ConfigError
from omnivec.runtime.units import PreparedInputs
from omnivec.train.losses.contrastive import MultipleNegativesRankingLoss
from omnivec.train.losses.distance import TripletDistanceMetric, TripletLoss
from omnivec.train.losses.distillation import MarginMSELoss, MSELoss
from omnivec.train.losses.similarity import AnglELoss, CoSENTLoss, CosineSimilarityLoss


class SparseLoss:
    """Mixin: binds the loss to a SparseEncoder, and refuses to train alone (without SpladeLoss's regularizers
    nothing keeps the vectors sparse)."""

    def bind_sparse(self, model: Any) -> None:
        self.bind(model, "sparse_encoder")  # type: ignore[attr-defined]

    def forward(self, model: Any, inputs: Sequence[PreparedInputs], labels: Any) -> torch.Tensor:
        name = type(self).__name__
        raise ConfigError(f"{name} is used inside SpladeLoss: SpladeLoss(model, loss={name}(model), "
                          "document_regularizer_weight=3e-5, query_regularizer_weight=5e-5).")

    def compute_loss_from_embeddings(self, embeddings: list[torch.Tensor], labels: Any) -> torch.Tensor:
        """sentence-transformers' name for ``compute``."""
        return self.compute(embeddings, labels)  # type: ignore[attr-defined]


def _similarity(similarity: str | None, similarity_fct: Any, default: str) -> tuple[str | None, Any]:
    """(similarity, similarity_fct) with the sparse default when neither is given."""
    return (default if similarity is None and similarity_fct is None else similarity), similarity_fct


class SparseMultipleNegativesRankingLoss(SparseLoss, MultipleNegativesRankingLoss):
    """In-batch negatives on sparse vectors: ``MultipleNegativesRankingLoss`` with dot product and scale 1
    (sentence-transformers' sparse defaults). Columns (anchor, positive, negative...)."""

    def __init__(self, model: Any = None, scale: float = 1.0, similarity_fct: Any = None,
                 gather_across_devices: bool = False, directions: Sequence[str] | None = None,
                 partition_mode: str | None = None, hardness_mode: str | None = None, hardness_strength: float = 0.0,
                 *, similarity: str | None = None) -> None:
        if hardness_mode is not None:
            raise ConfigError(f"hardness_mode={hardness_mode!r} is not supported by omnivec's "
                              "SparseMultipleNegativesRankingLoss; leave it None.")
        similarity, similarity_fct = _similarity(similarity, similarity_fct, "dot")
        super().__init__(None, scale, similarity_fct, gather_across_devices, directions, partition_mode,
                         similarity=similarity)
        self.bind_sparse(model)


class SparseMarginMSELoss(SparseLoss, MarginMSELoss):
    """Margin-MSE distillation on sparse vectors (dot product). Columns (query, positive, negative...); label:
    the teacher's margin(s) or scores."""

    def __init__(self, model: Any = None, similarity_fct: Any = None, *, similarity: str | None = None) -> None:
        similarity, similarity_fct = _similarity(similarity, similarity_fct, "dot")
        super().__init__(None, similarity_fct, similarity=similarity)
        self.bind_sparse(model)


class SparseCoSENTLoss(SparseLoss, CoSENTLoss):
    """CoSENT on sparse vectors (cosine, scale 20). Columns (sentence1, sentence2); label: a score."""

    def __init__(self, model: Any = None, scale: float = 20.0, similarity_fct: Any = None, *,
                 similarity: str | None = None) -> None:
        super().__init__(None, scale, similarity_fct, similarity=similarity)
        self.bind_sparse(model)


class SparseAnglELoss(SparseLoss, AnglELoss):
    """AnglE on sparse vectors (scale 20). Columns (sentence1, sentence2); label: a score."""

    def __init__(self, model: Any = None, scale: float = 20.0) -> None:
        super().__init__(None, scale)
        self.bind_sparse(model)


class SparseCosineSimilarityLoss(SparseLoss, CosineSimilarityLoss):
    """MSE between the pair's cosine similarity and its gold score, on sparse vectors."""

    def __init__(self, model: Any = None, loss_fct: torch.nn.Module | None = None,
                 cos_score_transformation: torch.nn.Module | None = None) -> None:
        super().__init__(None, loss_fct, cos_score_transformation)
        self.bind_sparse(model)


class SparseTripletLoss(SparseLoss, TripletLoss):
    """``max(d(a, p) - d(a, n) + margin, 0)`` on sparse vectors (Euclidean, margin 5). Columns (anchor, positive,
    negative)."""

    def __init__(self, model: Any = None, distance_metric: Any = TripletDistanceMetric.EUCLIDEAN,
                 triplet_margin: float = 5) -> None:
        super().__init__(None, distance_metric, triplet_margin)
        self.bind_sparse(model)


class SparseMSELoss(SparseLoss, MSELoss):
    """MSE between the student's sparse vector of each column and a teacher's vector given as the label."""

    def __init__(self, model: Any = None) -> None:
        super().__init__(None)
        self.bind_sparse(model)
