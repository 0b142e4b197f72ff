"""Score many prompts that share a prefix: the prefix's KV cache is computed once and reused.

In ``rank(query, documents)`` every prompt starts with the same instruction + query. The shared prefix
(the longest common run of token ids) goes through the model once; each batch of document suffixes then
attends to a copy of its cache. Suffixes are right-padded with positions continuing after the prefix,
and the LM head runs only on each row's last real token. What the logits score is the caller's head's
business (``LogitScore``); batches are planned by the caller on whole rows (``execute.run_token_batches``),
since each row of a batch holds its own copy of the prefix's cache.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from typing import Any

import torch


def common_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """Length of the longest common prefix, leaving every row at least one token of its own."""
    if not rows:
        return 0
    limit = min(len(r) for r in rows) - 1
    length = 0
    first = rows[0]
    while length < limit and all(r[length] == first[length] for r in rows):
        length += 1
    return max(length, 0)


class SharedPrefix:
    """The KV cache of the rows' first ``prefix_length`` tokens (identical in every row), computed once;
    ``last_token_logits(indices)`` runs those rows' suffixes against copies of it."""

    @torch.inference_mode()
    def __init__(self, causal_lm: Any, rows: Sequence[Sequence[int]], prefix_length: int, pad_id: int) -> None:
        self.rows, self.prefix_length, self.pad_id = rows, prefix_length, pad_id
        self.device = next(causal_lm.parameters()).device
        self.backbone, self.lm_head = causal_lm.get_decoder(), causal_lm.get_output_embeddings()
        prefix = torch.tensor([list(rows[0][:prefix_length])], device=self.device)
        self.cache_arg = "cache" if "cache" in inspect.signature(self.backbone.forward).parameters else "past_key_values"
        out = self.backbone(input_ids=prefix, attention_mask=torch.ones_like(prefix), use_cache=True)
        self.cache = _cache_of(out)

    @torch.inference_mode()
    def last_token_logits(self, indices: Sequence[int]) -> torch.Tensor:
        """Next-token logits (float32) at the last token of each row in ``indices``, shape (len(indices), vocab)."""
        device, prefix_length = self.device, self.prefix_length
        suffixes = [list(self.rows[i][prefix_length:]) for i in indices]
        width = max(len(s) for s in suffixes)
        ids = torch.full((len(suffixes), width), self.pad_id, dtype=torch.long, device=device)
        mask = torch.zeros((len(suffixes), prefix_length + width), dtype=torch.long, device=device)
        mask[:, :prefix_length] = 1
        for row, suffix in enumerate(suffixes):
            ids[row, : len(suffix)] = torch.tensor(suffix, device=device)
            mask[row, prefix_length : prefix_length + len(suffix)] = 1
        positions = torch.arange(prefix_length, prefix_length + width, device=device).expand(len(suffixes), -1)
        cache = copy.deepcopy(self.cache)
        cache.batch_repeat_interleave(len(suffixes))
        hidden = self.backbone(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                               **{self.cache_arg: cache}).last_hidden_state
        last = torch.tensor([len(s) - 1 for s in suffixes], device=device)
        return self.lm_head(hidden[torch.arange(len(suffixes), device=device), last]).float()


def _cache_of(output: Any) -> Any:
    # transformers 5 renames the output field past_key_values -> cache (the old name warns).
    return output["cache"] if "cache" in output else output["past_key_values"]
