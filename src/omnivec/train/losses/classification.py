"""SoftmaxLoss (Reimers & Gurevych, 2019, SBERT on NLI): a classifier on the pair's embeddings ``(u, v, |u - v|)``
that trains with the model, as in sentence-transformers."""

from __future__ import annotations

from typing import Any

import torch

from omnivec.errors import ConfigError
from omnivec.train.losses.base import EmbeddingLoss, LossSpec
from omnivec.train.losses.binding import BoundModel


class SoftmaxLoss(BoundModel, EmbeddingLoss):
    """Cross-entropy of a linear classifier over the concatenation of ``u``, ``v`` (``concatenation_sent_rep``),
    ``|u - v|`` (``concatenation_sent_difference``) and ``u * v`` (``concatenation_sent_multiplication``); label: the
    class index. The classifier is the loss's own weight: the trainer trains it with the model; it is not saved
    with the model (as in sentence-transformers)."""

    spec = LossSpec(inputs=("sentence1", "sentence2"), label="int")

    def __init__(self, model: Any = None, embedding_dimension: int | None = None, num_labels: int | None = None,
                 concatenation_sent_rep: bool = True, concatenation_sent_difference: bool = True,
                 concatenation_sent_multiplication: bool = False, loss_fct: Any = None) -> None:
        super().__init__()
        self.bind(model, "embedder")
        if embedding_dimension is None and model is not None:
            embedding_dimension = model.get_sentence_embedding_dimension()
        if not embedding_dimension or not num_labels or num_labels < 1:
            raise ConfigError("SoftmaxLoss needs embedding_dimension and num_labels (positive integers).")
        self.flags = (concatenation_sent_rep, concatenation_sent_difference, concatenation_sent_multiplication)
        vectors = 2 * concatenation_sent_rep + concatenation_sent_difference + concatenation_sent_multiplication
        if vectors == 0:
            raise ConfigError("SoftmaxLoss: at least one of concatenation_sent_rep, concatenation_sent_difference, "
                              "concatenation_sent_multiplication must be True.")
        self.num_labels = num_labels
        device = model.device if model is not None else None
        self.classifier = torch.nn.Linear(vectors * embedding_dimension, num_labels, device=device)
        self.loss_fct = loss_fct if loss_fct is not None else torch.nn.CrossEntropyLoss()

    def config(self) -> dict[str, Any]:
        rep, difference, multiplication = self.flags
        return {"num_labels": self.num_labels, "concatenation_sent_rep": rep,
                "concatenation_sent_difference": difference, "concatenation_sent_multiplication": multiplication}

    def compute(self, embeddings: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        u, v = embeddings
        rep, difference, multiplication = self.flags
        parts = ([u, v] if rep else []) + ([torch.abs(u - v)] if difference else []) + ([u * v] if multiplication else [])
        if self.classifier.weight.device != u.device:  # a model-free loss meets the model's device at the first batch
            self.classifier.to(u.device)  # in place: the optimizer's references stay valid
        output = self.classifier(torch.cat(parts, 1).to(self.classifier.weight.dtype))
        labels = labels.to(output.device)
        if self.num_labels == 1 or labels.shape != output.shape:
            labels = labels.view(-1)
        return self.loss_fct(output, labels)
