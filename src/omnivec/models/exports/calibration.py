"""Calibration texts for static int8 quantization: the caller's own (a list, or a file with one text per line), or
the built-in sample shipped with omnivec (``calibration_texts.txt``: 250+ varied English sentences and paragraphs
of 5-190 words, written for this purpose, no Hub dataset), tokenized by the model's own tokenizer into batches."""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from omnivec.errors import ConfigError

BUILTIN_FILE = "calibration_texts.txt"


def builtin_calibration_texts() -> list[str]:
    """The built-in calibration sample, in file order."""
    text = resources.files("omnivec.models.exports").joinpath(BUILTIN_FILE).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_calibration_file(path: str | os.PathLike) -> list[str]:
    """The non-blank lines of a UTF-8 text file, one calibration text per line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"calibration file {str(path)!r} could not be read as UTF-8 text (one text per line): "
                          f"{exc}") from None
    texts = [line.strip() for line in text.splitlines() if line.strip()]
    if not texts:
        raise ConfigError(f"calibration file {str(path)!r} has no texts; write one text per line.")
    return texts


def check_texts(dataset: Any) -> list[str]:
    """The caller's calibration texts, checked: a non-empty sequence of strings, not all blank."""
    if isinstance(dataset, str | bytes) or not isinstance(dataset, Sequence):
        raise ConfigError(f"dataset must be a list of calibration texts (strings); got {type(dataset).__name__}.")
    for index, text in enumerate(dataset):
        if not isinstance(text, str):
            raise ConfigError(f"dataset[{index}] must be a string (a calibration text); got {type(text).__name__}.")
    texts = [text for text in dataset if text.strip()]
    if not texts:
        raise ConfigError("dataset is empty: static quantization needs calibration texts (a few hundred typical "
                          "inputs); pass dataset=None to use omnivec's built-in sample.")
    return texts


def pick_samples(texts: Sequence[str], num_samples: int) -> list[str]:
    """At most ``num_samples`` texts, evenly spread over the list (a sorted or grouped file still gives a mix)."""
    if len(texts) <= num_samples:
        return list(texts)
    positions = np.linspace(0, len(texts) - 1, num_samples).round().astype(int)
    return [texts[int(i)] for i in positions]


def token_batches(transformer: Any, texts: Sequence[str], batch_size: int) -> list[dict[str, np.ndarray]]:
    """Batches of token arrays (int64) as the model runs them: truncated to its ``max_seq_length``, sorted by length
    and padded per batch, as omnivec's encode batches texts."""
    encoded = transformer.tokenize_unpadded(list(texts))
    order = sorted(range(len(texts)), key=lambda i: len(encoded["input_ids"][i]))
    batches = []
    for start in range(0, len(order), batch_size):
        features = transformer.collate(encoded, order[start:start + batch_size])
        batches.append({name: tensor.numpy() for name, tensor in features.items()})
    return batches
