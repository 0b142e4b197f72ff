"""Losses on scored pairs (sentence1, sentence2, score): CoSENT and cosine-similarity regression."""

from __future__ import annotations

from typing import Any

import torch

from omnivec import similarity as sim
from omnivec.train.losses.base import EmbeddingLoss, LossSpec


class CoSENTLoss(EmbeddingLoss):
    """CoSENT (Su, 2022): for every two pairs in a batch whose gold scores differ, the higher-scored pair must
    get the higher similarity: ``log(1 + sum exp(scale * (s_low - s_high)))``. Only the order of the labels
    matters, so any score range works."""

    spec = LossSpec(inputs=("sentence1", "sentence2"), label="float")

    def __init__(self, scale: float = 20.0, similarity: str = "cosine") -> None:
        super().__init__()
        self.scale, self.similarity = scale, similarity
        self._sim = sim.get(similarity, pairwise=True)

    def config(self) -> dict[str, Any]:
        return {"scale": self.scale, "similarity": self.similarity}

    def compute(self, embeddings: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        scores = self._sim(embeddings[0], embeddings[1]).float() * self.scale
        labels = labels.view(-1).to(scores.device)
        # diff[i, j] = s_j - s_i, counted where pair i has the higher label
        diff = scores[None, :] - scores[:, None]
        ordered = diff[labels[:, None] > labels[None, :]]
        return torch.logsumexp(torch.cat([scores.new_zeros(1), ordered]), dim=0)


class CosineSimilarityLoss(EmbeddingLoss):
    """Mean squared error between the pair's cosine similarity and its gold score (scores in [-1, 1], usually
    [0, 1]: scale the labels first)."""

    spec = LossSpec(inputs=("sentence1", "sentence2"), label="float")

    def compute(self, embeddings: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        cosine = torch.cosine_similarity(embeddings[0], embeddings[1])
        return torch.nn.functional.mse_loss(cosine, labels.float().view(-1).to(cosine.device))
