"""Score many prompts that share a prefix: the prefix's KV cache is computed once and reused.

In ``rank(query, documents)`` every prompt starts with the same instruction + query. The shared prefix
(the longest common run of token ids) goes through the model once; each batch of document suffixes then
attends to a copy of its cache. Suffixes are right-padded with positions continuing after the prefix,
and the LM head runs only on each row's last real token.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from typing import Any

import torch

from omnivec.runtime.batching import plan_batches, restore_order


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


@torch.inference_mode()
def last_token_logits_with_prefix(
    causal_lm: torch.nn.Module, rows: Sequence[Sequence[int]], prefix_length: int, batch_size: int,
    token_ids: Sequence[int], pad_id: int, max_tokens: int | None = None,
) -> torch.Tensor:
    """Logits of ``token_ids`` at each row's last position, shape (len(rows), len(token_ids)).

    ``rows[i][:prefix_length]`` must be identical for all rows.
    """
    device = next(causal_lm.parameters()).device
    backbone, head = causal_lm.get_decoder(), causal_lm.get_output_embeddings()
    prefix = torch.tensor([list(rows[0][:prefix_length])], device=device)
    cache_arg = "cache" if "cache" in inspect.signature(backbone.forward).parameters else "past_key_values"
    prefix_out = backbone(input_ids=prefix, attention_mask=torch.ones_like(prefix), use_cache=True)
    prefix_cache = _cache_of(prefix_out)
    wanted = torch.tensor(list(token_ids), device=device)
    results = []
    # Suffixes of similar length batch together (little padding). The budget counts every row's copy of the prefix
    # cache (rows x (prefix + widest suffix)), as an unshared batch would: memory grows with the query's length.
    batches = plan_batches([len(r) for r in rows], batch_size, max_tokens)
    for indices in batches:
        suffixes = [list(rows[i][prefix_length:]) for i in indices]
        width = max(len(s) for s in suffixes)
        ids = torch.full((len(suffixes), width), pad_id, dtype=torch.long, device=device)
        mask = torch.zeros((len(suffixes), prefix_length + width), dtype=torch.long, device=device)
        mask[:, :prefix_length] = 1
        for row, suffix in enumerate(suffixes):
            ids[row, : len(suffix)] = torch.tensor(suffix, device=device)
            mask[row, prefix_length : prefix_length + len(suffix)] = 1
        positions = torch.arange(prefix_length, prefix_length + width, device=device).expand(len(suffixes), -1)
        cache = copy.deepcopy(prefix_cache)
        cache.batch_repeat_interleave(len(suffixes))
        hidden = backbone(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                          **{cache_arg: cache}).last_hidden_state
        last = torch.tensor([len(s) - 1 for s in suffixes], device=device)
        picked = hidden[torch.arange(len(suffixes), device=device), last]
        results.extend(head(picked)[:, wanted].float())
    return torch.stack(restore_order(batches, results))


def _cache_of(output: Any) -> Any:
    # transformers 5 renames the output field past_key_values -> cache (the old name warns).
    return output["cache"] if "cache" in output else output["past_key_values"]
