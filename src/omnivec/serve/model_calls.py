"""What the batchers run (one model call per batch; an input the model refuses is redone alone, so it does not
fail the requests that share its batch) and how a route waits for it (queue, timeout and shutdown as HTTP errors)."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from omnivec.errors import InputError
from omnivec.serve.batcher import BatcherClosed, DynamicBatcher, QueueFull
from omnivec.serve.errors import ApiError

Guard = contextlib.AbstractContextManager[Any]


def embed_batch(model: Any, lock: Guard | None = None) -> Callable[[list[Any]], list[Any]]:
    """Vectors for a batch of decoded inputs, or for an input the model refuses alone, its exception. ``lock``:
    held around each model call, for a model a KB search also uses (from another thread)."""
    guard = lock if lock is not None else contextlib.nullcontext()

    def run(items: list[Any]) -> list[Any]:
        try:
            with guard:
                return list(model.encode(items, batch_size=len(items), convert_to_numpy=True))
        except Exception as exc:
            if len(items) == 1:
                return [exc]  # the handler answers 400 for bad input, 500 for a model failure
            # One input must not fail the requests sharing its batch: redo them alone.
            return [run([item])[0] for item in items]

    return run


def rerank_batch(model: Any, lock: Guard | None = None) -> Callable[[list[Any]], list[Any]]:
    """Scores for a batch of (query, document) pairs, or for a pair the model refuses alone, its exception."""
    guard = lock if lock is not None else contextlib.nullcontext()

    def run(pairs: list[Any]) -> list[Any]:
        try:
            with guard:
                return [float(x) for x in np.asarray(model.predict(pairs, batch_size=len(pairs))).reshape(-1)]
        except Exception as exc:
            if len(pairs) == 1:
                return [exc]  # the handler answers 400 for bad input, 500 for a model failure
            # One pair must not fail the requests sharing its batch: redo them alone.
            return [run([pair])[0] for pair in pairs]

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
