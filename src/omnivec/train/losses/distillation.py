"""Knowledge distillation from a teacher's scores: Margin-MSE (Hofstätter et al., 2020)."""

from __future__ import annotations

from typing import Any

import torch

from omnivec.errors import ConfigError, InputError
from omnivec.train.losses.base import EmbeddingLoss, LossSpec
from omnivec.train.losses.binding import BoundModel, resolve_similarity


def margin_labels(labels: torch.Tensor, rows: int, negatives: int, loss_name: str) -> torch.Tensor:
    """Teacher margins, shape (rows, negatives): given as the margins themselves (one per negative) or as the
    teacher's scores (positive first, then each negative)."""
    labels = labels.float()
    if labels.shape == (rows, negatives + 1):
        labels = labels[:, :1] - labels[:, 1:]
    elif labels.shape == (rows,):
        labels = labels.unsqueeze(1)
    if labels.shape != (rows, negatives):
        raise InputError(f"{loss_name} labels have shape {tuple(labels.shape)}; expected one teacher margin per "
                         f"negative ({rows}, {negatives}) or the teacher's scores for positive and negatives "
                         f"({rows}, {negatives + 1}).")
    return labels


class MarginMSELoss(BoundModel, EmbeddingLoss):
    """Matches the student's margin ``sim(q, pos) - sim(q, neg)`` to a teacher's margin, by mean squared error.
    Columns: (query, positive, negative...); label: the teacher's margin(s), or its scores."""

    spec = LossSpec(inputs=("query", "positive", "negative"), more_inputs="negative", label="float_list")

    def __init__(self, model: Any = None, similarity_fct: Any = None, *, similarity: str | None = None) -> None:
        super().__init__()
        self.bind(model, "embedder")
        self.similarity, self._sim = resolve_similarity(similarity, similarity_fct, "dot", pairwise=True)

    def config(self) -> dict[str, Any]:
        return {"similarity": self.similarity}

    def compute(self, embeddings: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        query, positive, negatives = embeddings[0], embeddings[1], embeddings[2:]
        target = margin_labels(labels, query.shape[0], len(negatives), type(self).__name__).to(query.device)
        positive_scores = self._sim(query, positive)
        margins = torch.stack([positive_scores - self._sim(query, negative) for negative in negatives], dim=1)
        return torch.nn.functional.mse_loss(margins, target)


class MSELoss(BoundModel, EmbeddingLoss):
    """Mean squared error between the student's embedding of each input column and a teacher's embedding given as
    the label (one vector per row, shared by every column), averaged over the columns: extends a model to new
    languages (Reimers & Gurevych, 2020). ``projection_dim`` adds a trained linear map from the student's size to
    the teacher's (the loss's own weight, not saved with the model)."""

    spec = LossSpec(inputs=("input",), more_inputs="input", label="float_list")

    def __init__(self, model: Any = None, projection_dim: int | None = None) -> None:
        super().__init__()
        self.bind(model, "embedder")
        self.projection: torch.nn.Linear | None = None
        if projection_dim is not None:
            if model is None or not model.get_sentence_embedding_dimension():
                raise ConfigError("MSELoss: projection_dim needs the model (its embedding size), as MSELoss(model, "
                                  "projection_dim=...).")
            self.projection = torch.nn.Linear(model.get_sentence_embedding_dimension(), projection_dim,
                                              device=model.device)

    def config(self) -> dict[str, Any]:
        return {"projection_dim": self.projection.out_features if self.projection is not None else None}

    def compute(self, embeddings: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        if labels.dim() != 2 or labels.shape[0] != embeddings[0].shape[0]:
            raise InputError(f"MSELoss labels must be one teacher embedding per row, shape ({embeddings[0].shape[0]}, "
                             f"teacher_dim); got {tuple(labels.shape)}.")
        parts = []
        for student in embeddings:
            teacher = labels.detach().to(device=student.device, dtype=student.dtype)
            student = self.projection(student) if self.projection is not None else student
            parts.append(torch.nn.functional.mse_loss(student, teacher))
        return torch.stack(parts).mean()
