"""SpladeLoss with GradCache (Gao et al., 2021): a large batch of vocabulary-sized vectors at the memory cost of a
mini-batch."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import torch

from omnivec.errors import ConfigError
from omnivec.runtime.units import PreparedInputs
from omnivec.train.losses.contrastive import embed_in_mini_batches, replay_mini_batches
from omnivec.train.sparse_losses.splade import SpladeLoss


class CachedSpladeLoss(SpladeLoss):
    """``SpladeLoss`` whose columns are embedded ``mini_batch_size`` rows at a time: first without gradients, then
    the loss's gradient with respect to every vector is computed once, and each mini-batch is embedded again with
    gradients and back-propagated against its slice (dropout masks replayed). Same loss parts and gradients as
    SpladeLoss on the full batch, as sentence-transformers' ``CachedSpladeLoss``.

    ``mini_batch_num_tokens`` (sentence-transformers' token-budget mini-batches) is not supported."""

    def __init__(self, model: Any = None, loss: Any = None, document_regularizer_weight: float | None = None,
                 query_regularizer_weight: float | None = None, document_regularizer: Any = None,
                 query_regularizer: Any = None, document_regularizer_threshold: int | None = None,
                 query_regularizer_threshold: int | None = None, use_document_regularizer_only: bool = False,
                 mini_batch_size: int = 32, mini_batch_num_tokens: int | None = None,
                 show_progress_bar: bool = False) -> None:
        super().__init__(model, loss, document_regularizer_weight, query_regularizer_weight, document_regularizer,
                         query_regularizer, document_regularizer_threshold, query_regularizer_threshold,
                         use_document_regularizer_only)
        if isinstance(mini_batch_size, bool) or not isinstance(mini_batch_size, int) or mini_batch_size <= 0:
            raise ConfigError(f"CachedSpladeLoss mini_batch_size must be a positive integer, got {mini_batch_size!r}.")
        if mini_batch_num_tokens is not None:
            raise ConfigError("CachedSpladeLoss: mini_batch_num_tokens is not supported by omnivec; use "
                              "mini_batch_size.")
        self.mini_batch_size = mini_batch_size  # show_progress_bar: accepted, no bar is shown

    def config(self) -> dict[str, Any]:
        return {**super().config(), "mini_batch_size": self.mini_batch_size}

    def forward(self, model: Any, inputs: Sequence[PreparedInputs], labels: Any) -> dict[str, torch.Tensor]:
        if not torch.is_grad_enabled():  # evaluation: nothing to cache
            return super().forward(model, inputs, labels)
        vectors, states = embed_in_mini_batches(model, inputs, self.mini_batch_size)
        leaves = [v.detach().requires_grad_() for v in vectors]
        parts = self.compute(leaves, labels)
        total = torch.stack(list(parts.values())).sum()
        grads = torch.autograd.grad(total, leaves)
        out = total.detach().requires_grad_()
        # The trainer's backward() on the summed parts replays the mini-batches with gradients.
        out.register_hook(partial(replay_mini_batches, model, inputs, grads, states, self.mini_batch_size))
        # The parts for logging; the first carries the gradient, and the parts still sum to the total.
        names = list(parts)
        rest = [parts[name].detach() for name in names[1:]]
        first = out - torch.stack(rest).sum() if rest else out
        return {names[0]: first, **dict(zip(names[1:], rest, strict=True))}
