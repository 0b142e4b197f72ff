"""Pointwise CrossEncoder losses: each (query, document) pair scored against its own label."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from omnivec.errors import ConfigError
from omnivec.train.cross_encoder_losses.base import PairLoss
from omnivec.train.losses.base import LossSpec


class BinaryCrossEntropyLoss(PairLoss):
    """Binary cross-entropy on the pair's logit (a LogitScore head gives logit(yes) - logit(no)); labels in
    [0, 1]. ``pos_weight`` > 1 counts positives more (for datasets with few of them)."""

    spec = LossSpec(inputs=("query", "document"), label="float")

    def __init__(self, model: Any = None, activation_fn: torch.nn.Module | None = None,
                 pos_weight: float | torch.Tensor | None = None, *, activation: torch.nn.Module | None = None) -> None:
        super().__init__(model, activation_fn, activation=activation)
        self.pos_weight = float(pos_weight) if pos_weight is not None else None

    def config(self) -> dict[str, Any]:
        return {**super().config(), "pos_weight": self.pos_weight}

    def forward(self, model: Any, inputs: Sequence[Sequence[Any]], labels: torch.Tensor) -> torch.Tensor:
        logits = self.scores(model, inputs[0], inputs[1])
        weight = None if self.pos_weight is None else torch.tensor(self.pos_weight, device=logits.device)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels.float().view(-1).to(logits.device),
                                                                    pos_weight=weight)


class CrossEntropyLoss(PairLoss):
    """Cross-entropy over ``num_labels`` classes (e.g. NLI: contradiction / entailment / neutral); label: the
    class index."""

    spec = LossSpec(inputs=("query", "document"), label="int")

    def __init__(self, model: Any = None, activation_fn: torch.nn.Module | None = None, *,
                 activation: torch.nn.Module | None = None) -> None:
        super().__init__(model, activation_fn, activation=activation)
        if model is not None and model.num_labels < 2:  # caught here rather than at the first batch
            raise ConfigError("CrossEntropyLoss: argument 'model' has num_labels=1; it needs a CrossEncoder with "
                              "num_labels >= 2. Use BinaryCrossEntropyLoss for one label.")

    def forward(self, model: Any, inputs: Sequence[Sequence[Any]], labels: torch.Tensor) -> torch.Tensor:
        if getattr(model, "num_labels", 1) < 2:
            raise ConfigError("CrossEntropyLoss needs a CrossEncoder with num_labels >= 2; use BinaryCrossEntropyLoss "
                              "for one label.")
        logits = self.activation(model.logits(list(zip(inputs[0], inputs[1], strict=True))).float())
        return torch.nn.functional.cross_entropy(logits, labels.long().view(-1).to(logits.device))
