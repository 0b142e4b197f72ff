"""What every training loss shares: the columns and labels it needs, its config for the model card, and
embedding a batch's columns in as few forward passes as possible."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from omnivec.runtime.units import PreparedInputs, concat_prepared

LabelKind = Literal["float", "int", "float_list", "list"]


@dataclass(frozen=True)
class LossSpec:
    """The dataset a loss needs: its input columns (by role) and the kind of label.

    ``inputs`` names the required input columns in order; ``more_inputs`` says further columns (negatives) may
    follow. ``label`` is None (no label column), "float" (a score), "int" (a class), "float_list" (one score per
    negative, or per candidate) or "list" (a list of relevances, one per document of a list column)."""

    inputs: tuple[str, ...]
    more_inputs: str | None = None
    label: LabelKind | None = None
    list_input: int | None = None  # index of an input column whose values are lists (listwise losses)

    def describe_inputs(self) -> str:
        names = ", ".join(self.inputs) + (f", {self.more_inputs}..." if self.more_inputs else "")
        return f"({names})"


class Loss(torch.nn.Module):
    """Base of omnivec's losses. A loss is called as ``loss(model, inputs, labels)`` and returns a scalar.

    Any ``torch.nn.Module`` with that call signature works as a loss in the trainers; subclassing this only adds
    dataset checks (``spec``) and a description in the model card (``config``)."""

    spec: LossSpec = LossSpec(inputs=("anchor",), more_inputs="input")

    def config(self) -> dict[str, Any]:
        """The loss's settings, as written to the model card."""
        return {}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())


class EmbeddingLoss(Loss):
    """A loss on the embeddings of each input column: embeds the columns, then calls ``compute``."""

    def forward(self, model: Any, inputs: Sequence[PreparedInputs], labels: Any) -> torch.Tensor:
        return self.compute(embed_columns(model, inputs), labels)

    def compute(self, embeddings: list[torch.Tensor], labels: Any) -> torch.Tensor:
        raise NotImplementedError


def embed_columns(model: Any, columns: Sequence[PreparedInputs]) -> list[torch.Tensor]:
    """Each column's embeddings, shape (n, dim). Columns sharing a prompt and task run as one forward pass: one
    bigger batch keeps the hardware busier than several small ones, and gives the same numbers."""
    groups: dict[tuple[str | None, str | None], list[int]] = {}
    for position, column in enumerate(columns):
        groups.setdefault((column.prompt, column.task), []).append(position)
    out: list[torch.Tensor | None] = [None] * len(columns)
    for positions in groups.values():
        merged = model.embed(concat_prepared([columns[p] for p in positions]))
        for position, part in zip(positions, merged.split([len(columns[p]) for p in positions]), strict=True):
            out[position] = part
    return out  # type: ignore[return-value]
