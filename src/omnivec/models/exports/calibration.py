"""Calibration inputs for static int8 quantization: the caller's own texts (a list, or a file with one text per line),
or the built-in sample shipped with omnivec (``calibration_texts.txt``: 250+ varied English sentences and paragraphs
of 5-190 words, written for this purpose, no Hub dataset), tokenized by the model's own tokenizer into batches; for a
dual encoder's image and audio towers, the caller's images and audio, decoded and preprocessed as encode does."""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from omnivec.errors import ConfigError, InputError
from omnivec.inputs.modality import tag_inputs
from omnivec.runtime.units import DecodeOptions, Unit, decode

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


def check_texts(dataset: Any) -> list[str] | list[tuple[str, str]]:
    """The caller's calibration inputs, checked: a non-empty sequence of strings (an Embedder's texts) or of
    (query, document) pairs (a CrossEncoder's), one kind only; blank texts are dropped."""
    if isinstance(dataset, str | bytes) or not isinstance(dataset, Sequence):
        raise ConfigError(f"dataset must be a list of calibration texts (strings); got {type(dataset).__name__}.")
    pairs = bool(dataset) and isinstance(dataset[0], tuple | list)
    for index, item in enumerate(dataset):
        ok = (isinstance(item, tuple | list) and len(item) == 2 and all(isinstance(part, str) for part in item)
              if pairs else isinstance(item, str))
        if not ok:
            expected = "a (query, document) pair of strings, like dataset[0]" if pairs else "a string (a calibration text)"
            raise ConfigError(f"dataset[{index}] must be {expected}; got {type(item).__name__}.")
    if pairs:
        kept_pairs = [(str(item[0]), str(item[1])) for item in dataset if "".join(item).strip()]
        if kept_pairs:
            return kept_pairs
    else:
        kept = [text for text in dataset if text.strip()]
        if kept:
            return kept
    raise ConfigError("dataset is empty: static quantization needs calibration texts (a few hundred typical "
                      "inputs); pass dataset=None to use omnivec's built-in sample.")


def pick_samples(texts: Sequence[Any], num_samples: int) -> list[Any]:
    """At most ``num_samples`` texts, evenly spread over the list (a sorted or grouped file still gives a mix)."""
    if len(texts) <= num_samples:
        return list(texts)
    positions = np.linspace(0, len(texts) - 1, num_samples).round().astype(int)
    return [texts[int(i)] for i in positions]


def token_batches(transformer: Any, texts: Sequence[Any], batch_size: int) -> list[dict[str, np.ndarray]]:
    """Batches of token arrays (int64) of texts or text pairs as the model runs them: truncated to its
    ``max_seq_length``, sorted by length and padded per batch, as omnivec's encode batches texts."""
    encoded = transformer.tokenize_unpadded(list(texts))
    order = sorted(range(len(texts)), key=lambda i: len(encoded["input_ids"][i]))
    batches = []
    for start in range(0, len(order), batch_size):
        features = transformer.collate(encoded, order[start:start + batch_size])
        batches.append({name: tensor.numpy() for name, tensor in features.items()})
    return batches


_MEDIA_EXAMPLES = {"image": "image file paths or PIL images", "audio": "audio file paths or {'array': ..., "
                   "'sampling_rate': ...} dicts"}


def tower_calibration(dataset: Any, modalities: Sequence[str], model_name: str) -> dict[str, list[Any]]:
    """The calibration inputs of each tower of a dual encoder (``modalities``: ``text`` and ``image`` or ``audio``)
    from one ``dataset`` that may mix texts and media, each tagged as encode tags it (a string naming an existing
    media file is that medium). The text tower falls back to the built-in sample; a media tower without inputs of
    its modality is an error saying what to pass (never calibrated on noise)."""
    grouped: dict[str, list[Any]] = {modality: [] for modality in modalities}
    if dataset is not None:
        if isinstance(dataset, str | bytes) or not isinstance(dataset, Sequence):
            raise ConfigError(f"dataset must be a list of calibration inputs (texts, {', '.join(_MEDIA_EXAMPLES.values())}"
                              f"); got {type(dataset).__name__}.")
        try:
            items = tag_inputs(list(dataset))
        except InputError as exc:
            raise ConfigError(f"dataset: {exc}") from None
        for item in items:
            if not isinstance(item.modality, str) or item.modality not in grouped:
                raise ConfigError(f"dataset[{item.index}] is {item.modality} input; this model's towers take "
                                  f"{', '.join(modalities)}.")
            grouped[item.modality].append(item.value)
    grouped["text"] = [text for text in grouped.get("text", []) if text.strip()] or builtin_calibration_texts()
    for modality, values in grouped.items():
        if not values:
            raise ConfigError(
                f"The {modality} tower of {model_name} needs {modality} inputs to calibrate its static int8 "
                f"quantization, and dataset has none: pass dataset=[...] with typical {_MEDIA_EXAMPLES[modality]} "
                f"(a few dozen or more; texts may be mixed in for the text tower) to "
                f"export_static_quantized_openvino_model or quantize_for(model, 'openvino', [...]); backend="
                "'openvino-int8' then loads the files it wrote. backend='onnx-int8' needs no calibration.")
    return grouped


def media_batches(transformer: Any, modality: str, values: Sequence[Any], batch_size: int) -> list[dict[str, np.ndarray]]:
    """Batches of one medium's processor features (numpy), decoded (images RGB, audio at the processor's rate) and
    preprocessed by the model's own processor, as encode prepares them."""
    extractor = getattr(transformer.processor, "feature_extractor", transformer.processor)
    rate = getattr(extractor, "sampling_rate", None)
    options = DecodeOptions(sampling_rate=int(rate) if rate else None)
    try:
        decoded = [decode(Unit(index, modality, value), index, options) for index, value in enumerate(values)]
    except InputError as exc:  # its index counts this medium's calibration inputs only
        raise ConfigError(f"dataset: a calibration {modality} input could not be decoded ({exc})") from None
    batches = []
    for start in range(0, len(decoded), batch_size):
        features = transformer.preprocess(modality, decoded[start:start + batch_size])
        batches.append({name: value.numpy() for name, value in features.items() if hasattr(value, "numpy")})
    return batches
