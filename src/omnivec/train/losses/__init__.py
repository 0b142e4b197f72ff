"""Embedder losses. Each is called as ``loss(model, inputs, labels)``; see ``omnivec.train.losses.base.Loss``."""

from omnivec.train.losses.base import EmbeddingLoss, Loss, LossSpec, embed_columns
from omnivec.train.losses.classification import SoftmaxLoss
from omnivec.train.losses.contrastive import (
    CachedMultipleNegativesRankingLoss,
    MultipleNegativesRankingLoss,
    MultipleNegativesSymmetricRankingLoss,
)
from omnivec.train.losses.distance import (
    ContrastiveLoss,
    OnlineContrastiveLoss,
    SiameseDistanceMetric,
    TripletDistanceMetric,
    TripletLoss,
)
from omnivec.train.losses.distillation import MarginMSELoss, MSELoss
from omnivec.train.losses.matryoshka import MatryoshkaLoss
from omnivec.train.losses.similarity import AnglELoss, CoSENTLoss, CosineSimilarityLoss

__all__ = [
    "AnglELoss", "CachedMultipleNegativesRankingLoss", "CoSENTLoss", "ContrastiveLoss", "CosineSimilarityLoss", "EmbeddingLoss",
    "Loss", "LossSpec", "MSELoss", "MarginMSELoss", "MatryoshkaLoss", "MultipleNegativesRankingLoss",
    "MultipleNegativesSymmetricRankingLoss", "OnlineContrastiveLoss", "SiameseDistanceMetric", "SoftmaxLoss",
    "TripletDistanceMetric",
    "TripletLoss", "embed_columns",
]
