"""What CrossEncoder losses share: scoring columns of pairs through the model, with gradients."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch

from omnivec.errors import ConfigError
from omnivec.train.losses.base import Loss
from omnivec.train.losses.binding import BoundModel


def pick_activation(activation_fn: Any, activation: Any, default: torch.nn.Module) -> torch.nn.Module:
    """sentence-transformers' ``activation_fn`` or omnivec's ``activation`` (the same thing), else ``default``."""
    if activation_fn is not None and activation is not None:
        raise ConfigError("Pass activation_fn or activation (the same setting), not both.")
    chosen = activation_fn if activation_fn is not None else activation
    if chosen is not None and not callable(chosen):
        raise ConfigError(f"activation_fn must be a torch.nn.Module such as torch.nn.Sigmoid(), got "
                          f"{type(chosen).__name__}.")
    return cast(torch.nn.Module, chosen) if chosen is not None else default


class PairLoss(BoundModel, Loss):
    """Base of CrossEncoder losses: ``inputs`` are the batch's columns (queries first), as lists of raw values.

    ``model`` (first argument, as in sentence-transformers) is the CrossEncoder to train; optional, checked at
    construction."""

    def __init__(self, model: Any = None, activation_fn: torch.nn.Module | None = None, *,
                 activation: torch.nn.Module | None = None, default_activation: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.bind(model, "cross_encoder")
        self.activation = pick_activation(activation_fn, activation, default_activation or torch.nn.Identity())

    def check_model(self, model: Any) -> None:
        if getattr(model, "num_labels", 1) != 1:
            raise ConfigError(f"{type(self).__name__} needs a CrossEncoder with one output label; this one has "
                              f"{model.num_labels}.")

    def scores(self, model: Any, queries: Sequence[Any], documents: Sequence[Any]) -> torch.Tensor:
        """One score per (query, document) pair, activation applied, shape (n,)."""
        self.check_model(model)
        return self.activation(model.logits(list(zip(queries, documents, strict=True))).view(-1).float())

    def config(self) -> dict[str, Any]:
        return {"activation": type(self.activation).__name__}
