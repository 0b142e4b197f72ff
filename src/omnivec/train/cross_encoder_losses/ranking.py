"""CrossEncoder losses over a query's positive and negatives: in-batch negatives and Margin-MSE distillation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from omnivec.train.cross_encoder_losses.base import PairLoss
from omnivec.train.losses.base import LossSpec
from omnivec.train.losses.distillation import margin_labels


class MultipleNegativesRankingLoss(PairLoss):
    """Each query must score its positive above ``num_negatives`` documents drawn at random from the other rows
    of the batch (their positives and negatives) and above its own negatives columns. Cross-entropy over
    ``scale * activation(score)`` (sigmoid by default, as in sentence-transformers)."""

    spec = LossSpec(inputs=("query", "positive"), more_inputs="negative")

    def __init__(self, model: Any = None, num_negatives: int | None = 4, scale: float = 10.0,
                 activation_fn: torch.nn.Module | None = None, *, activation: torch.nn.Module | None = None) -> None:
        super().__init__(model, activation_fn, activation=activation, default_activation=torch.nn.Sigmoid())
        self.num_negatives, self.scale = num_negatives, scale

    def config(self) -> dict[str, Any]:
        return {**super().config(), "num_negatives": self.num_negatives, "scale": self.scale}

    def forward(self, model: Any, inputs: Sequence[Sequence[Any]], labels: Any) -> torch.Tensor:
        queries, candidates = list(inputs[0]), [list(c) for c in inputs[1:]]
        n = len(queries)
        columns = [self.scores(model, queries, candidates[0])]
        for sampled in self._in_batch_negatives(candidates, n):
            columns.append(self.scores(model, queries, sampled))
        columns.extend(self.scores(model, queries, negatives) for negatives in candidates[1:])
        logits = torch.stack(columns, dim=1) * self.scale
        return torch.nn.functional.cross_entropy(logits, torch.zeros(n, dtype=torch.long, device=logits.device))

    def _in_batch_negatives(self, candidates: list[list[Any]], n: int) -> list[list[Any]]:
        """Columns of documents from other rows: all of them, or ``num_negatives`` drawn per query."""
        flat = [doc for column in candidates for doc in column]
        others = ~torch.eye(n, dtype=torch.bool).repeat(1, len(candidates))  # row i may not take its own docs
        available = len(flat) - len(candidates)
        if self.num_negatives is not None and self.num_negatives < available:
            picks = torch.multinomial(others.float(), self.num_negatives)
        else:
            picks = torch.arange(len(flat)).repeat(n, 1)[others].reshape(n, -1)
        return [[flat[i] for i in column] for column in picks.T.tolist()]


class MarginMSELoss(PairLoss):
    """Matches ``score(q, pos) - score(q, neg)`` to a teacher's margin (one label per negative, or the teacher's
    scores for positive and negatives)."""

    spec = LossSpec(inputs=("query", "positive", "negative"), more_inputs="negative", label="float_list")

    def __init__(self, model: Any = None, activation_fn: torch.nn.Module | None = None, *,
                 activation: torch.nn.Module | None = None) -> None:
        super().__init__(model, activation_fn, activation=activation)

    def forward(self, model: Any, inputs: Sequence[Sequence[Any]], labels: torch.Tensor) -> torch.Tensor:
        queries, positives, negatives = inputs[0], inputs[1], inputs[2:]
        target = margin_labels(labels, len(queries), len(negatives), type(self).__name__)
        positive = self.scores(model, queries, positives)
        margins = torch.stack([positive - self.scores(model, queries, column) for column in negatives], dim=1)
        return torch.nn.functional.mse_loss(margins, target.to(margins.device))
