"""Sequence-classification pairs: the tokenizer pairs query and document, the model's head gives the scores."""

from __future__ import annotations

from collections.abc import Sequence

from omnivec.models.scorers.base import Pair, TokenRows, TokenScorer, encode_plain_pairs


class ClassifierScorer(TokenScorer):
    """A ``*ForSequenceClassification`` model (or any modules ending in "scores"): one or ``num_labels`` logits
    per pair. The prompt, if any, goes before the query."""

    def encode(self, pairs: Sequence[Pair], prompt: str | None) -> TokenRows:
        return encode_plain_pairs(self.model.transformer, pairs, prompt)
