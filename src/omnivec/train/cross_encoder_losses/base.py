"""What CrossEncoder losses share: scoring columns of pairs through the model, with gradients."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from omnivec.train.losses.base import Loss


class PairLoss(Loss):
    """Base of CrossEncoder losses: ``inputs`` are the batch's columns (queries first), as lists of raw values."""

    def __init__(self, activation: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.activation = activation or torch.nn.Identity()

    def check_model(self, model: Any) -> None:
        if getattr(model, "num_labels", 1) != 1:
            raise ValueError(f"{type(self).__name__} needs a CrossEncoder with one output label; this one has "
                             f"{model.num_labels}.")

    def scores(self, model: Any, queries: Sequence[Any], documents: Sequence[Any]) -> torch.Tensor:
        """One score per (query, document) pair, activation applied, shape (n,)."""
        self.check_model(model)
        return self.activation(model.logits(list(zip(queries, documents, strict=True))).view(-1).float())

    def config(self) -> dict[str, Any]:
        return {"activation": type(self.activation).__name__}
