"""Tokens for TEI's routes: ``/tokenize``'s tokens with byte offsets, the check behind ``truncate: false`` and
``truncation_direction``. Each model gets its own copy of its fast tokenizer with truncation and padding off, made
once and never reconfigured, so request threads can share it (the model's own tokenizer is reconfigured per call)."""

from __future__ import annotations

import threading
from typing import Any

from omnivec.modules.transformer import CHARS_PER_TOKEN_BOUND
from omnivec.serve.errors import ApiError

_copying = threading.Lock()
# Characters one /tokenize request may hold in all: every token becomes a JSON object in the reply (tens of bytes
# each, and more while it is built), so the reply of a 16 MiB body of one-letter words would need gigabytes.
MAX_TOKENIZE_CHARS = 262_144


def raw_tokenizer(cache: dict[str, Any], name: str, model: Any) -> Any:
    """``model``'s fast tokenizer (a ``tokenizers.Tokenizer``) copied without truncation or padding, made once per
    name; a 422 for a model without one."""
    with _copying:
        if name not in cache:
            backend = getattr(getattr(model, "tokenizer", None), "backend_tokenizer", None)
            if backend is None:
                raise ApiError(400, f"model {name!r} has no fast tokenizer to tokenize with", "no_tokenizer")
            from tokenizers import Tokenizer

            copy = Tokenizer.from_str(backend.to_str())
            copy.no_truncation()
            copy.no_padding()
            cache[name] = copy
    return cache[name]


def tokens_of(tokenizer: Any, text: str, add_special_tokens: bool) -> list[dict[str, Any]]:
    """TEI's tokens of ``text`` (``tei_schemas.TeiToken``'s fields): ids, the text each covers and its UTF-8 byte
    offsets; special tokens have none. Plain dicts: a long text has many tokens."""
    encoding = tokenizer.encode(text, add_special_tokens=add_special_tokens)
    byte_at = [0]  # character offset -> byte offset (TEI's offsets are bytes, the Python binding's characters)
    for ch in text:
        byte_at.append(byte_at[-1] + len(ch.encode("utf-8")))
    tokens = []
    for token_id, token, (start, stop), special in zip(encoding.ids, encoding.tokens, encoding.offsets,
                                                       encoding.special_tokens_mask, strict=True):
        if special:
            tokens.append({"id": token_id, "text": token, "special": True, "start": None, "stop": None})
        else:
            tokens.append({"id": token_id, "text": text[start:stop], "special": False, "start": byte_at[start],
                           "stop": byte_at[stop]})
    return tokens


def check_direction(model: Any, direction: str) -> None:
    """TEI's ``truncation_direction``: the side this model's tokenizer cuts is the one served (it is the model's
    setting, shared by every request in a batch); the other side is refused."""
    side = getattr(getattr(model, "tokenizer", None), "truncation_side", "right")
    if direction.lower() != side:
        raise ApiError(400, f"truncation_direction {direction!r} is not available: this model truncates on the "
                       f"{side}", "invalid_truncation_direction")


def check_lengths(tokenizer: Any, inputs: list[str] | list[tuple[str, str]], limit: int, field: str) -> None:
    """TEI's ``truncate: false``: refuse (422) the first input (a text or a pair) longer than ``limit`` tokens,
    special tokens included. Texts are counted up to a character bound past the limit, so a huge text costs no more
    than the model's own reading of it."""
    bound = (limit + 1) * CHARS_PER_TOKEN_BOUND
    for i, item in enumerate(inputs):
        if isinstance(item, tuple):
            count = len(tokenizer.encode(item[0][:bound], item[1][:bound]).ids)
        else:
            count = len(tokenizer.encode(item[:bound]).ids)
        if count > limit:
            raise ApiError(400, f"{field}[{i}] has {count} tokens, more than this model's limit of {limit} (send "
                           "truncate: true, or leave it out, to cut it)", "too_long")
