"""What every CrossEncoder scorer offers, and the text path the token-based ones share.

A scorer turns checked (query, document) pairs into raw scores, shape (pairs, num_labels), with no activation:
the CrossEncoder chooses one when it is built (``assemble.build_scorer``) and calls it from ``predict``,
``rank`` and ``logits``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol

import torch

from omnivec.modules.transformer import Transformer
from omnivec.runtime.batching import default_token_budget
from omnivec.runtime.execute import run_token_batches, to_device

Pair = tuple[Any, Any]
TokenRows = dict[str, list[list[int]]]  # "input_ids" and "attention_mask", one unpadded row per pair


class ScoringModel(Protocol):
    """What a scorer needs of its CrossEncoder: the input Transformer, the device, and a forward pass through all
    its modules (features in, features with "scores" out)."""

    @property
    def transformer(self) -> Transformer: ...

    @property
    def device(self) -> torch.device: ...

    def __call__(self, features: dict[str, Any]) -> dict[str, Any]: ...


class Scorer(ABC):
    """Raw scores of checked, cut (query, document) pairs (``CrossEncoder._check_pairs`` and ``_cut_pairs``).

    ``score`` and ``rank_scores`` run under ``torch.inference_mode`` (the CrossEncoder enters it) and return float32
    CPU tensors in pair order; ``logits`` keeps gradients on the model's device (training). ``rank_scores`` gets
    the pairs of one query and may share work between them; by default it is ``score``.
    """

    takes_images: bool = False  # whether a pair may hold an image

    def __init__(self, model: ScoringModel) -> None:
        self.model = model

    @abstractmethod
    def score(self, pairs: Sequence[Pair], prompt: str | None, batch_size: int, show_progress_bar: bool | None,
              max_tokens: int | None) -> torch.Tensor:
        """Scores of ``pairs``, batched (``batch_size`` pairs, ``max_tokens`` padded tokens per batch at most)."""

    def rank_scores(self, pairs: Sequence[Pair], prompt: str | None, batch_size: int, show_progress_bar: bool | None,
                    max_tokens: int | None) -> torch.Tensor:
        """Scores of pairs that share their query (``rank``)."""
        return self.score(pairs, prompt, batch_size, show_progress_bar, max_tokens)

    @abstractmethod
    def logits(self, pairs: Sequence[Pair], prompt: str | None) -> torch.Tensor:
        """Scores of ``pairs`` in one forward pass, with gradients."""


class TokenScorer(Scorer):
    """A scorer of text pairs tokenized up front (``encode``): batches planned on exact token lengths through the
    same executor as ``Embedder.encode`` (``runtime/execute.run_token_batches``)."""

    @abstractmethod
    def encode(self, pairs: Sequence[Pair], prompt: str | None) -> TokenRows:
        """Token ids of each pair as the model reads it (prompt included), truncated to ``max_seq_length``."""

    def score(self, pairs: Sequence[Pair], prompt: str | None, batch_size: int, show_progress_bar: bool | None,
              max_tokens: int | None) -> torch.Tensor:
        return self.score_rows(self.encode(pairs, prompt), batch_size, show_progress_bar, max_tokens)

    def score_rows(self, encoded: TokenRows, batch_size: int, show_progress_bar: bool | None,
                   max_tokens: int | None) -> torch.Tensor:
        """Encoded rows through every module of the model, batch by batch."""
        model = self.model

        def run(indices: list[int]) -> list[torch.Tensor]:
            features = to_device(model.transformer.collate(encoded, indices), model.device)
            return list(model(features)["scores"].float().cpu())

        return torch.stack(run_token_batches(encoded["input_ids"], batch_size, self.token_budget(max_tokens),
                                             show_progress_bar, "Scoring", run))

    def logits(self, pairs: Sequence[Pair], prompt: str | None) -> torch.Tensor:
        encoded = self.encode(pairs, prompt)
        features = to_device(self.model.transformer.collate(encoded, range(len(pairs))), self.model.device)
        return self.model(features)["scores"]

    def token_budget(self, max_tokens: int | None) -> int | None:
        """The caller's bound on padded tokens per batch, else the device's default."""
        return max_tokens if max_tokens is not None else default_token_budget(self.model.device)


def encode_plain_pairs(transformer: Transformer, pairs: Sequence[Pair], prompt: str | None) -> TokenRows:
    """Pairs tokenized as the tokenizer pairs two texts (the prompt before the query), no template."""
    texts = [(prompt + q, d) for q, d in pairs] if prompt else [(q, d) for q, d in pairs]
    return transformer.tokenize_unpadded(texts)
