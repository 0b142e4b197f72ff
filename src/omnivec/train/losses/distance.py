"""Distance-based losses on pairs and triplets, with sentence-transformers' signatures: TripletLoss,
ContrastiveLoss and OnlineContrastiveLoss, and their distance metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F

from omnivec import similarity as sim
from omnivec.errors import ConfigError
from omnivec.train.losses.base import EmbeddingLoss, LossSpec
from omnivec.train.losses.binding import BoundModel

Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class TripletDistanceMetric:
    """TripletLoss distances (sentence-transformers' names): a larger value means further apart."""

    @staticmethod
    def COSINE(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # noqa: N802 (sentence-transformers' names)
        return 1 - sim.pairwise_cosine(x, y)

    @staticmethod
    def EUCLIDEAN(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return -sim.pairwise_euclidean(x, y)

    @staticmethod
    def MANHATTAN(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return -sim.pairwise_manhattan(x, y)


class SiameseDistanceMetric:
    """ContrastiveLoss distances (sentence-transformers' names)."""

    @staticmethod
    def EUCLIDEAN(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return F.pairwise_distance(x, y, p=2)

    @staticmethod
    def MANHATTAN(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return F.pairwise_distance(x, y, p=1)

    @staticmethod
    def COSINE_DISTANCE(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return 1 - F.cosine_similarity(x, y)


def _distance(metric: Any) -> Distance:
    if not callable(metric):
        raise ConfigError(f"distance_metric must be a function of two embedding batches (e.g. "
                          f"SiameseDistanceMetric.COSINE_DISTANCE), got {type(metric).__name__}.")
    return cast(Distance, metric)


def _binary(labels: torch.Tensor, rows: int, loss_name: str) -> torch.Tensor:
    if labels.numel() != rows:
        raise ConfigError(f"{loss_name} expects {rows} labels (one per pair), got shape {tuple(labels.shape)}.")
    return labels.view(-1)


class TripletLoss(BoundModel, EmbeddingLoss):
    """``max(d(anchor, positive) - d(anchor, negative) + triplet_margin, 0)``, averaged; columns (anchor,
    positive, negative)."""

    spec = LossSpec(inputs=("anchor", "positive", "negative"))

    def __init__(self, model: Any = None, distance_metric: Distance = TripletDistanceMetric.EUCLIDEAN,
                 triplet_margin: float = 5) -> None:
        super().__init__()
        self.bind(model, "embedder")
        self.distance_metric, self.triplet_margin = _distance(distance_metric), triplet_margin

    def config(self) -> dict[str, Any]:
        return {"distance_metric": getattr(self.distance_metric, "__name__", "custom"),
                "triplet_margin": self.triplet_margin}

    def compute(self, embeddings: list[torch.Tensor], labels: Any) -> torch.Tensor:
        anchor, positive, negative = embeddings
        gap = self.distance_metric(anchor, positive) - self.distance_metric(anchor, negative)
        return F.relu(gap + self.triplet_margin).mean()


class ContrastiveLoss(BoundModel, EmbeddingLoss):
    """Pairs with a 0/1 label: label 1 pulls the pair together (``d^2``), label 0 pushes it beyond ``margin``
    (``relu(margin - d)^2``); halved, averaged (or summed without ``size_average``)."""

    spec = LossSpec(inputs=("sentence1", "sentence2"), label="float")

    def __init__(self, model: Any = None, distance_metric: Distance = SiameseDistanceMetric.COSINE_DISTANCE,
                 margin: float = 0.5, size_average: bool = True) -> None:
        super().__init__()
        self.bind(model, "embedder")
        self.distance_metric, self.margin, self.size_average = _distance(distance_metric), margin, size_average

    def config(self) -> dict[str, Any]:
        return {"distance_metric": getattr(self.distance_metric, "__name__", "custom"), "margin": self.margin,
                "size_average": self.size_average}

    def compute(self, embeddings: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        labels = _binary(labels, embeddings[0].shape[0], type(self).__name__).to(embeddings[0].device).float()
        distances = self.distance_metric(embeddings[0], embeddings[1])
        losses = 0.5 * (labels * distances.pow(2) + (1 - labels) * F.relu(self.margin - distances).pow(2))
        return losses.mean() if self.size_average else losses.sum()


class OnlineContrastiveLoss(BoundModel, EmbeddingLoss):
    """ContrastiveLoss on the batch's hard pairs only: positives further apart than the closest negative and
    negatives closer than the furthest positive (summed)."""

    spec = LossSpec(inputs=("sentence1", "sentence2"), label="float")

    def __init__(self, model: Any = None, distance_metric: Distance = SiameseDistanceMetric.COSINE_DISTANCE,
                 margin: float = 0.5) -> None:
        super().__init__()
        self.bind(model, "embedder")
        self.distance_metric, self.margin = _distance(distance_metric), margin

    def config(self) -> dict[str, Any]:
        return {"distance_metric": getattr(self.distance_metric, "__name__", "custom"), "margin": self.margin}

    def compute(self, embeddings: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        labels = _binary(labels, embeddings[0].shape[0], type(self).__name__).to(embeddings[0].device)
        distances = self.distance_metric(embeddings[0], embeddings[1])
        negatives, positives = distances[labels == 0], distances[labels == 1]
        hard_negatives = negatives[negatives < (positives.max() if len(positives) else negatives.mean())]
        hard_positives = positives[positives > (negatives.min() if len(negatives) else positives.mean())]
        return hard_positives.pow(2).sum() + F.relu(self.margin - hard_negatives).pow(2).sum()
