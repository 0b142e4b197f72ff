"""Losses on scored pairs (sentence1, sentence2, score): CoSENT and cosine-similarity regression."""

from __future__ import annotations

from typing import Any

import torch

from omnivec.errors import ConfigError
from omnivec.train.losses.base import EmbeddingLoss, LossSpec
from omnivec.train.losses.binding import BoundModel, resolve_similarity


class CoSENTLoss(BoundModel, EmbeddingLoss):
    """CoSENT (Su, 2022): for every two pairs in a batch whose gold scores differ, the higher-scored pair must
    get the higher similarity: ``log(1 + sum exp(scale * (s_low - s_high)))``. Only the order of the labels
    matters, so any score range works. ``CoSENTLoss(model, scale=20.0, similarity_fct=util.pairwise_cos_sim)`` as in
    sentence-transformers, or without the model."""

    spec = LossSpec(inputs=("sentence1", "sentence2"), label="float")

    def __init__(self, model: Any = None, scale: float = 20.0, similarity_fct: Any = None, *,
                 similarity: str | None = None) -> None:
        super().__init__()
        self.bind(model, "embedder")
        self.scale = scale
        self.similarity, self._sim = resolve_similarity(similarity, similarity_fct, "cosine", pairwise=True)

    def config(self) -> dict[str, Any]:
        return {"scale": self.scale, "similarity": self.similarity}

    def compute(self, embeddings: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        scores = self._sim(embeddings[0], embeddings[1]).float() * self.scale
        labels = labels.view(-1).to(scores.device)
        # diff[i, j] = s_j - s_i, counted where pair i has the higher label
        diff = scores[None, :] - scores[:, None]
        ordered = diff[labels[:, None] > labels[None, :]]
        return torch.logsumexp(torch.cat([scores.new_zeros(1), ordered]), dim=0)


class CosineSimilarityLoss(BoundModel, EmbeddingLoss):
    """Mean squared error between the pair's cosine similarity and its gold score (scores in [-1, 1], usually
    [0, 1]: scale the labels first). ``loss_fct`` and ``cos_score_transformation`` as in sentence-transformers
    (default: MSE, identity)."""

    spec = LossSpec(inputs=("sentence1", "sentence2"), label="float")

    def __init__(self, model: Any = None, loss_fct: torch.nn.Module | None = None,
                 cos_score_transformation: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.bind(model, "embedder")
        for name, value in (("loss_fct", loss_fct), ("cos_score_transformation", cos_score_transformation)):
            if value is not None and not callable(value):
                raise ConfigError(f"{name} must be a torch.nn.Module, got {type(value).__name__}.")
        self.loss_fct = loss_fct if loss_fct is not None else torch.nn.MSELoss()
        self.cos_score_transformation = cos_score_transformation or torch.nn.Identity()

    def compute(self, embeddings: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        cosine = self.cos_score_transformation(torch.cosine_similarity(embeddings[0], embeddings[1]))
        return self.loss_fct(cosine, labels.float().view(-1).to(cosine.device))


def pairwise_angle_sim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """AnglE's similarity (Li & Li, 2023): ``|cos + sin|`` of the angle difference in complex space, on L2-normalised
    vectors split into real and imaginary halves (odd sizes padded with a zero)."""
    x, y = x.float(), y.float()
    if x.shape[1] % 2:
        x, y = torch.nn.functional.pad(x, (0, 1)), torch.nn.functional.pad(y, (0, 1))
    x, y = torch.nn.functional.normalize(x, p=2, dim=1), torch.nn.functional.normalize(y, p=2, dim=1)
    first_x, last_x = torch.chunk(x, 2, dim=1)
    first_y, last_y = torch.chunk(y, 2, dim=1)
    return torch.abs((x * y).sum(dim=1) + (last_x * first_y - first_x * last_y).sum(dim=1))


class AnglELoss(CoSENTLoss):
    """CoSENT on AnglE's angle similarity, whose gradient does not vanish where the cosine saturates
    (``AnglELoss(model, scale=20.0)``, as in sentence-transformers)."""

    def __init__(self, model: Any = None, scale: float = 20.0) -> None:
        super().__init__(model, scale, similarity_fct=pairwise_angle_sim)
