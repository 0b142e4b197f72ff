"""Causal-LM yes/no rerankers: a prompt per pair, scored by the ``LogitScore`` head on the next-token logits.

The prompt is a ``RerankTemplate`` (a preset, the model's saved one or the caller's), else the tokenizer's chat
template rendered once with query/document messages as a one-segment template, else plain pair tokenization.
Templates truncate the document, then the query, never their fixed text. ``rank_scores`` runs the pairs' common
token prefix (instruction + query) once and reuses its KV cache (``runtime/prefix_cache``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from omnivec.errors import ModelLoadError
from omnivec.models.scorers.base import Pair, ScoringModel, TokenRows, TokenScorer, encode_plain_pairs
from omnivec.models.templates import RerankTemplate
from omnivec.modules.logit_score import LogitScore
from omnivec.runtime.execute import run_token_batches
from omnivec.runtime.prefix_cache import SharedPrefix, common_prefix_length

_MARKS = {"query": "\x00OMNIVEC_QUERY\x00", "document": "\x00OMNIVEC_DOCUMENT\x00"}


class CausalLMScorer(TokenScorer):
    """Scores from ``head`` (logit[true] - logit[false] at the last token) over the filled prompt of each pair."""

    def __init__(self, model: ScoringModel, head: LogitScore, template: RerankTemplate | None) -> None:
        super().__init__(model)
        self.head = head
        self.template = template
        self._chat_templates: dict[str | None, RerankTemplate] = {}

    def template_for(self, prompt: str | None) -> RerankTemplate | None:
        """The template pairs are filled into: the reranker's own, or its chat template (None: plain text pairs)."""
        if self.template is not None:
            return self.template
        if getattr(self.model.transformer.tokenizer, "chat_template", None):
            return self.chat_template(prompt)
        return None

    def chat_template(self, prompt: str | None) -> RerankTemplate:
        """The tokenizer's chat template, rendered once with query/document messages (and the prompt as a system
        message), as a one-segment template: truncation can then spare its fixed parts."""
        if prompt not in self._chat_templates:
            messages = ([{"role": "system", "content": prompt}] if prompt else []) + [
                {"role": "query", "content": _MARKS["query"]}, {"role": "document", "content": _MARKS["document"]}]
            rendered = self.model.transformer.tokenizer.apply_chat_template(messages, tokenize=False)
            for slot, mark in _MARKS.items():
                if rendered.count(mark) != 1:
                    raise ModelLoadError(f"The tokenizer's chat template does not place the {slot} message exactly once; "
                                         "pass template= to describe the reranker's prompt.")
                rendered = rendered.replace(mark, "{" + slot + "}")
            self._chat_templates[prompt] = RerankTemplate.from_string(rendered, name="chat template")
        return self._chat_templates[prompt]

    def encode(self, pairs: Sequence[Pair], prompt: str | None) -> TokenRows:
        transformer = self.model.transformer
        template = self.template_for(prompt)
        if template is None:
            return encode_plain_pairs(transformer, pairs, prompt)
        # A chat template has the prompt rendered in already; a template's {instruction} slot takes it.
        instruction = prompt if template is self.template else None
        rows = [template.encode(transformer.tokenizer, q, d, instruction, transformer.max_seq_length, i)
                for i, (q, d) in enumerate(pairs)]
        return {"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows]}

    def rank_scores(self, pairs: Sequence[Pair], prompt: str | None, batch_size: int, show_progress_bar: bool | None,
                    max_tokens: int | None) -> torch.Tensor:
        encoded = self.encode(pairs, prompt)
        rows = encoded["input_ids"]
        prefix = common_prefix_length(rows) if len(rows) > 1 else 0
        if prefix == 0:
            return self.score_rows(encoded, batch_size, show_progress_bar, max_tokens)
        transformer = self.model.transformer
        shared = SharedPrefix(transformer.model, rows, prefix, transformer.tokenizer.pad_token_id or 0)

        def run(indices: list[int]) -> list[torch.Tensor]:
            # Each row's last-token logits, as (rows, 1, vocab): the head scores them as it scores a full pass.
            features = {self.head.module_input_name: shared.last_token_logits(indices).unsqueeze(1)}
            return list(self.head(features)["scores"].float().cpu())

        # The budget counts every row's copy of the prefix cache (rows x (prefix + widest suffix)), as an unshared
        # batch would: memory grows with the query's length.
        return torch.stack(run_token_batches(rows, batch_size, self.token_budget(max_tokens), show_progress_bar,
                                             "Scoring", run))
