"""Distillation of a teacher's ranking by KL divergence (the listwise loss of SPLADE v2/v3 training)."""

from __future__ import annotations

import math
from typing import Any

import torch

from omnivec.errors import ConfigError, InputError
from omnivec.train.losses.base import EmbeddingLoss, LossSpec
from omnivec.train.losses.binding import BoundModel, resolve_similarity
from omnivec.train.sparse_losses.ranking import SparseLoss


class SparseDistillKLDivLoss(SparseLoss, BoundModel, EmbeddingLoss):
    """``KL(softmax(teacher / T_t) || softmax(student / T_s)) * T_s^2`` over each query's candidates, as
    sentence-transformers' ``SparseDistillKLDivLoss`` (batch-mean KL). Columns (query, positive, negative...);
    label: the teacher's score of each candidate, shape (rows, candidates). Student scores: the pairwise dot
    product by default (``similarity_fct`` / ``similarity`` to change). ``temperature`` (2.0) is both
    temperatures unless ``student_temperature`` / ``teacher_temperature`` are given."""

    spec = LossSpec(inputs=("query", "positive", "negative"), more_inputs="negative", label="float_list")

    def __init__(self, model: Any = None, similarity_fct: Any = None, temperature: float = 2.0,
                 student_temperature: float | None = None, teacher_temperature: float | None = None, *,
                 similarity: str | None = None) -> None:
        super().__init__()
        self.bind_sparse(model)
        if similarity is None and similarity_fct is None:
            similarity = "dot"
        self.similarity, self._sim = resolve_similarity(similarity, similarity_fct, "dot", pairwise=True)
        self.temperature = temperature
        self.student_temperature = student_temperature if student_temperature is not None else temperature
        self.teacher_temperature = teacher_temperature if teacher_temperature is not None else temperature
        for name in ("temperature", "student_temperature", "teacher_temperature"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"SparseDistillKLDivLoss {name} must be a positive finite number, got {value!r}.")

    def config(self) -> dict[str, Any]:
        return {"similarity": self.similarity, "student_temperature": self.student_temperature,
                "teacher_temperature": self.teacher_temperature}

    def compute(self, embeddings: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        if len(embeddings) < 3:
            raise ConfigError(f"SparseDistillKLDivLoss needs a query and at least two candidate columns (a softmax "
                              f"over one candidate is constant), got {len(embeddings)} column(s).")
        query, candidates = embeddings[0], embeddings[1:]
        if labels is None or tuple(labels.shape) != (query.shape[0], len(candidates)):
            shape = None if labels is None else tuple(labels.shape)
            raise InputError(f"SparseDistillKLDivLoss labels must be the teacher's score of each candidate, shape "
                             f"({query.shape[0]}, {len(candidates)}); got {shape}.")
        teacher = labels.detach().to(query.device).float()
        if teacher.isnan().any():
            raise InputError("SparseDistillKLDivLoss: the teacher scores contain NaN.")
        student = torch.stack([self._sim(query, candidate) for candidate in candidates], dim=1)
        student_log_probs = torch.log_softmax(student / self.student_temperature, dim=1)
        teacher_probs = torch.softmax(teacher / self.teacher_temperature, dim=1)
        loss = torch.nn.functional.kl_div(student_log_probs, teacher_probs, reduction="batchmean")
        return loss * self.student_temperature ** 2
