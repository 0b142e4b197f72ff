"""What the batchers run (one model call per batch; an input the model refuses is redone alone, so it does not
fail the requests that share its batch) and how a route waits for it (queue, timeout and shutdown as HTTP errors)."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from omnivec.errors import InputError
from omnivec.models.sparse_tensors import nonzero_rows
from omnivec.serve.batcher import BatcherClosed, DynamicBatcher, QueueFull
from omnivec.serve.errors import ApiError

Guard = contextlib.AbstractContextManager[Any]
Options = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class WithOptions:
    """A batch item with keyword arguments for its model call (a prompt, raw scores): a batch makes one model call
    per distinct set of options, so requests with different options still share the batcher."""

    value: Any
    options: Options = ()


# Scores as the model gives them, before its activation: TEI's and infinity's ``raw_scores``.
RAW_SCORES: Options = (("activation_fn", torch.nn.Identity()),)


def embed_batch(model: Any, lock: Guard | None = None) -> Callable[[list[Any]], list[Any]]:
    """Vectors for a batch of decoded inputs, or for an input the model refuses alone, its exception. ``lock``:
    held around each model call, for a model a KB search also uses (from another thread)."""
    guard = lock if lock is not None else contextlib.nullcontext()

    def call(items: list[Any], options: Options) -> list[Any]:
        with guard:
            return list(model.encode(items, batch_size=len(items), convert_to_numpy=True, **dict(options)))

    return _grouped(call)


@dataclass(frozen=True)
class SparseRow:
    """One sparse embedding as the wire carries it: the non-zero dimensions in increasing order, and their weights."""

    indices: list[int]
    values: list[float]


def is_sparse_model(model: Any) -> bool:
    """A SparseEncoder (its vectors are sparse, over the vocabulary), told by its class's sentence-transformers type."""
    return getattr(type(model), "model_type", None) == "SparseEncoder"


def sparse_embed_batch(model: Any, lock: Guard | None = None) -> Callable[[list[Any]], list[Any]]:
    """Sparse vectors (``SparseRow``) of a batch of texts (or ``{"text": ...}`` inputs) from a SparseEncoder, with
    the items' options (``prompt_name``, ``task``) as ``encode`` arguments; an input the model refuses alone, its
    exception."""
    guard = lock if lock is not None else contextlib.nullcontext()

    def call(items: list[Any], options: Options) -> list[Any]:
        texts = [item["text"] if isinstance(item, dict) else item for item in items]
        with guard:
            rows = model.encode(texts, batch_size=len(texts), convert_to_tensor=False, save_to_cpu=True,
                                **dict(options))
        return [SparseRow(indices.tolist(), values.tolist()) for indices, values in nonzero_rows(rows)]

    return _grouped(call)


def rerank_batch(model: Any, lock: Guard | None = None) -> Callable[[list[Any]], list[Any]]:
    """Scores for a batch of (query, document) pairs, or for a pair the model refuses alone, its exception."""
    guard = lock if lock is not None else contextlib.nullcontext()

    def call(pairs: list[Any], options: Options) -> list[Any]:
        with guard:
            scores = model.predict(pairs, batch_size=len(pairs), **dict(options))
            return [float(x) for x in np.asarray(scores).reshape(-1)]

    return _grouped(call)


def _grouped(call: Callable[[list[Any], Options], list[Any]]) -> Callable[[list[Any]], list[Any]]:
    """``call`` once per distinct options of the batch's items, results in item order."""

    def alone_on_failure(values: list[Any], options: Options) -> list[Any]:
        try:
            return call(values, options)
        except Exception as exc:
            if len(values) == 1:
                return [exc]  # the handler answers 400 for bad input, 500 for a model failure
            # One input must not fail the requests sharing its batch: redo them alone.
            return [alone_on_failure([value], options)[0] for value in values]

    def run(items: list[Any]) -> list[Any]:
        groups: dict[Options, list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(item.options if isinstance(item, WithOptions) else (), []).append(i)
        results: list[Any] = [None] * len(items)
        for options, positions in groups.items():
            values = [items[i].value if isinstance(items[i], WithOptions) else items[i] for i in positions]
            for i, result in zip(positions, alone_on_failure(values, options), strict=True):
                results[i] = result
        return results

    return run


async def submit(batcher: DynamicBatcher, items: list[Any], timeout: float) -> list[Any]:
    """The batcher's results for ``items``; a full queue is a 429 with Retry-After, a late model a 504."""
    if len(items) > batcher.max_queue:
        raise ApiError(413, f"{len(items)} inputs exceed this server's queue of {batcher.max_queue}", "too_many_inputs")
    try:
        return await batcher.submit(items, timeout=timeout)
    except QueueFull as exc:
        wait = str(max(1, math.ceil(exc.retry_after)))
        raise ApiError(429, f"server busy: retry after {wait} s", "queue_full", {"Retry-After": wait}) from None
    except asyncio.TimeoutError:
        raise ApiError(504, f"the model did not answer within {timeout} s", "timeout") from None
    except BatcherClosed:
        raise ApiError(503, "the server is shutting down", "unavailable") from None
    except (InputError, ValueError) as exc:
        raise ApiError(400, str(exc), "invalid_input") from None


def check_results(results: list[Any], what: str, action: str) -> None:
    """Raise for the first item the model refused: a 400 naming ``what[i]`` for bad input, else the model's own
    failure (a 500, logged)."""
    for i, result in enumerate(results):
        if isinstance(result, (InputError, ValueError)):
            raise ApiError(400, f"{what}[{i}] cannot be {action}: {result}", "invalid_input")
        if isinstance(result, Exception):
            raise result  # the model failed on valid input: a 500, logged
