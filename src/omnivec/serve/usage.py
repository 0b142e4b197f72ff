"""Token counts for the ``usage`` field of embedding and rerank replies."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from typing import Any

from omnivec.modules.transformer import CHARS_PER_TOKEN_BOUND


def token_counter(model: Any) -> Callable[[list[str]], int]:
    """Counts text tokens for ``usage``, with its own copy of the model's tokenizer: the model thread changes its
    tokenizer's truncation settings on every call, and a tokenizer is not safe to share across threads."""
    tokenizer = getattr(model, "tokenizer", None)
    try:
        tokenizer = copy.deepcopy(tokenizer) if tokenizer is not None else None
    except Exception:  # usage is informational: a tokenizer that cannot be copied is not used
        tokenizer = None
    # Tokens the model reads: at most its limit. Texts are cut to a character bound first, as the model's own
    # tokenization does, so counting a 1 MB text costs no more than embedding it.
    limit = None
    with contextlib.suppress(Exception):  # a model without one text limit: counted whole
        limit = model.max_seq_length
    bound = limit * CHARS_PER_TOKEN_BOUND if isinstance(limit, int) else None
    options = {"truncation": True, "max_length": limit} if bound is not None else {}

    def count(texts: list[str]) -> int:
        texts = [t[:bound] for t in texts] if bound is not None else texts
        if tokenizer is not None and texts:
            with contextlib.suppress(Exception):  # e.g. a processor that needs images: fall back to words
                return sum(len(ids) for ids in tokenizer(texts, verbose=False, **options)["input_ids"])
        return sum(len(t.split()) for t in texts)

    return count
