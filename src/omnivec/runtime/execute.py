"""Run units through a model: grouped by modality, batched, media decoded ahead of compute, order restored."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from omnivec.errors import InputError
from omnivec.inputs.modality import Item
from omnivec.runtime.batching import plan_batches, progress, restore_order
from omnivec.runtime.prefetch import prefetched
from omnivec.runtime.units import DecodeOptions, Unit, decode

# (modality) -> (input module that prepares features, modules to run in order)
Stages = Callable[[str], tuple[Any, Sequence[torch.nn.Module]]]


@dataclass
class RunOptions:
    prompt: str | None
    batch_size: int
    max_tokens: int | None
    show_progress_bar: bool | None
    output_value: str | None  # None: every output, one dict per input
    device: torch.device
    decode: DecodeOptions


def _per_modality(units: Sequence[Unit],
                  embed: Callable[[str, list[Unit]], Sequence[torch.Tensor] | torch.Tensor]) -> list[torch.Tensor]:
    """``embed(modality, units)`` (one row per unit) for each modality's units, put back in the units' order."""
    groups: dict[str, list[int]] = defaultdict(list)
    for position, unit in enumerate(units):
        groups[unit.modality].append(position)
    out: list[torch.Tensor | None] = [None] * len(units)
    for modality, positions in groups.items():
        for position, vector in zip(positions, embed(modality, [units[p] for p in positions]), strict=True):
            out[position] = vector
    return out  # type: ignore[return-value]


def embed_units(units: Sequence[Unit], items: Sequence[Item], stages: Stages, opts: RunOptions) -> list[torch.Tensor]:
    """One output tensor per unit, in the units' order."""

    def embed(modality: str, subset: list[Unit]) -> list[torch.Tensor]:
        if modality == "text":
            return _embed_texts([u.value for u in subset], stages, opts)
        return _embed_media(modality, subset, items, stages, opts)

    return _per_modality(units, embed)


def run_token_batches(rows: Sequence[Sequence[int]], batch_size: int, max_tokens: int | None,
                      show_progress_bar: bool | None, desc: str,
                      run: Callable[[list[int]], Sequence[torch.Tensor]]) -> list[torch.Tensor]:
    """Pre-tokenized rows run in batches of similar token length (at most ``batch_size`` rows and ``max_tokens``
    padded tokens); ``run(indices)`` gives one output per row of a batch. The outputs come back in row order."""
    return run_batches(plan_batches([len(ids) for ids in rows], batch_size, max_tokens), show_progress_bar, desc, run)


def run_batches(batches: Sequence[np.ndarray], show_progress_bar: bool | None, desc: str,
                run: Callable[[list[int]], Sequence[torch.Tensor]]) -> list[torch.Tensor]:
    """``run(indices)`` for each planned batch, under a progress bar; the outputs put back in input order."""
    results: list[torch.Tensor] = []
    for indices in progress(batches, len(batches), show_progress_bar, desc):
        results.extend(run(indices.tolist()))
    return restore_order(batches, results)


def _embed_texts(texts: list[str], stages: Stages, opts: RunOptions) -> list[torch.Tensor]:
    transformer, modules = stages("text")
    # Tokenize once up front: exact token lengths make tighter batches than character counts.
    encoded = _tokenize(transformer, texts, opts.prompt)

    def run(indices: list[int]) -> list[torch.Tensor]:
        features = _text_batch(transformer, encoded, indices, opts.prompt, opts.device)
        return _outputs(_run(modules, features), opts.output_value)

    return run_token_batches(encoded["input_ids"], opts.batch_size, opts.max_tokens, opts.show_progress_bar,
                             "Encoding", run)


def _tokenize(transformer: Any, texts: Sequence[str], prompt: str | None) -> dict[str, list[list[int]]]:
    return transformer.tokenize_unpadded([prompt + text for text in texts] if prompt else texts)


def _text_batch(transformer: Any, encoded: dict[str, list[list[int]]], indices: Sequence[int], prompt: str | None,
                device: torch.device | str) -> dict[str, Any]:
    features = to_device(transformer.collate(encoded, indices), device)
    features["modality"] = "text"
    if prompt:  # lets Pooling leave the prompt's tokens out (include_prompt=False)
        features["prompt_length"] = transformer.prompt_length(prompt)
    return features


def _media_batch(transformer: Any, modality: str, values: list[Any], prompt: str | None) -> dict[str, Any]:
    if modality == "message" and prompt:
        system = [{"role": "system", "content": [{"type": "text", "text": prompt}]}]
        values = [system + value for value in values]
    features = transformer.preprocess(modality, values)
    features["modality"] = modality
    return features


def text_features(transformer: Any, modules: Sequence[torch.nn.Module], texts: Sequence[str], prompt: str | None,
                  device: torch.device | str) -> dict[str, Any]:
    """Every output of one forward pass over ``texts`` (one batch), gradients kept (training): the
    ``sentence_embedding`` and whatever else the modules add."""
    return _run(modules, _text_batch(transformer, _tokenize(transformer, texts, prompt), range(len(texts)), prompt,
                                     device))


def forward_units(units: Sequence[Unit], stages: Stages, prompt: str | None, device: torch.device) -> list[torch.Tensor]:
    """Sentence embeddings of already decoded units, one forward pass per modality, gradients kept (training)."""

    def embed(modality: str, subset: list[Unit]) -> torch.Tensor:
        transformer, modules = stages(modality)
        values = [u.value for u in subset]
        if modality == "text":
            return text_features(transformer, modules, values, prompt, device)["sentence_embedding"]
        features = to_device(_media_batch(transformer, modality, values, prompt), device)
        return _run(modules, features)["sentence_embedding"]

    return _per_modality(units, embed)


def decode_workers() -> int:
    """Threads that decode media: the cores torch's own threads leave free (at least one)."""
    return max(1, min(8, (os.cpu_count() or 1) - torch.get_num_threads()))


def _embed_media(modality: str, units: list[Unit], items: Sequence[Item], stages: Stages,
                 opts: RunOptions) -> list[torch.Tensor]:
    transformer, modules = stages(modality)
    batches = [range(start, min(start + opts.batch_size, len(units))) for start in range(0, len(units), opts.batch_size)]
    results: list[torch.Tensor] = []
    with ThreadPoolExecutor(max_workers=decode_workers(), thread_name_prefix="omnivec-decode") as pool:

        def prepare(indices: range) -> dict[str, Any]:
            values = list(pool.map(lambda i: decode(units[i], items[units[i].item].index, opts.decode), indices))
            return _media_batch(transformer, modality, values, opts.prompt)

        jobs = (lambda indices=indices: prepare(indices) for indices in batches)
        for features in progress(prefetched(jobs, depth=1), len(batches), opts.show_progress_bar, f"Encoding {modality}"):
            features = to_device(features, opts.device)
            results.extend(_outputs(_run(modules, features), opts.output_value))
    return results


def to_device(features: dict[str, Any], device: torch.device | str) -> dict[str, Any]:
    """The features with every tensor moved to ``device`` (other values kept as they are)."""
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}


def _run(modules: Sequence[torch.nn.Module], features: dict[str, Any]) -> dict[str, Any]:
    for module in modules:
        features = module(features)
    return features


def _outputs(features: dict[str, Any], output_value: str | None) -> list[Any]:
    if output_value is None:
        return _every_output(features)
    if output_value == "token_embeddings":
        if "token_embeddings" not in features or "attention_mask" not in features:
            raise InputError("output_value='token_embeddings' needs a model that produces token embeddings; "
                             "this one outputs pooled vectors directly.")
        return [row[mask.bool()].cpu()
                for row, mask in zip(features["token_embeddings"], features["attention_mask"], strict=True)]
    return list(features["sentence_embedding"].cpu())


_PER_TOKEN = frozenset({"input_ids", "attention_mask", "token_type_ids", "token_embeddings"})


def _every_output(features: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per row of every feature (sentence-transformers' ``output_value=None``). Per-token tensors are cut to
    the row's own tokens: how much padding a row would carry depends on which inputs share its batch."""
    mask = features.get("attention_mask")
    rows = next(v.shape[0] for v in features.values() if isinstance(v, torch.Tensor) and v.ndim > 0)
    out: list[dict[str, Any]] = []
    for row in range(rows):
        keep = mask[row].bool() if mask is not None else None
        item: dict[str, Any] = {}
        for name, value in features.items():
            if not (isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] == rows):
                item[name] = value  # per-batch values (modality, prompt_length) as they are
                continue
            value = value[row]
            if keep is not None and name in _PER_TOKEN and value.shape[0] == keep.shape[0]:
                value = value[keep]
            item[name] = value.cpu()
        out.append(item)
    return out
