"""Multi-process encoding and scoring, as sentence-transformers has it: ``start_multi_process_pool`` /
``stop_multi_process_pool`` on every model (``MultiProcessPool``), and the pool paths of ``Embedder.encode``
(``pool=``, ``chunk_size=``, ``device=[...]``) and ``CrossEncoder.predict`` / ``rank``.

The workers (``runtime/process_pool.py``) run the model's own one-process code on each chunk: ``encode`` up to the
float32 vectors (truncated and normalised, per row), the scorer up to the raw scores. What depends on every row,
``precision`` (its ranges come from the whole set) and the CrossEncoder's activation and softmax, is applied
here, in the caller, to the joined result, so the numbers are those of one process.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch

from omnivec.errors import InputError
from omnivec.runtime.precision import Precision, as_requested
from omnivec.runtime.process_pool import (
    ProcessPool,
    check_devices,
    chunk_inputs,
    default_devices,
    run_chunks,
    start_pool,
    stop_pool,
)

Devices = Sequence[str | torch.device]


class MultiProcessPool:
    """``start_multi_process_pool`` / ``stop_multi_process_pool`` (a base of ``BaseModel``)."""

    def start_multi_process_pool(self, target_devices: Devices | None = None) -> ProcessPool:
        """Start one worker process per device, each with a copy of this model, for ``encode(..., pool=pool)``
        (``predict`` / ``rank`` for a CrossEncoder). Default devices: every CUDA device, else four CPU workers.

        As in sentence-transformers the model moves to the CPU (and stays there) and its weights go to shared
        memory. The pool is sentence-transformers' dict (``"input"``, ``"output"``, ``"processes"``); stop it with
        ``stop_multi_process_pool(pool)`` or use it as a context manager (``with model.start_multi_process_pool()
        as pool:``). A script that starts one needs the ``if __name__ == "__main__":`` guard. The workers hold the
        model as it is now: settings changed later (``max_seq_length``, ...) do not reach them."""
        model = cast(torch.nn.Module, self)  # a base of BaseModel only
        return start_pool(model, default_devices() if target_devices is None else target_devices)

    @staticmethod
    def stop_multi_process_pool(pool: Mapping[str, Any]) -> None:
        """Terminate the pool's workers and close its queues."""
        stop_pool(pool)


class EncodeMultiProcess:
    """``encode_multi_process`` (a base of ``Embedder``)."""

    def encode_multi_process(self, sentences: Sequence[Any], pool: ProcessPool, prompt_name: str | None = None,
                             prompt: str | None = None, batch_size: int = 32, chunk_size: int | None = None,
                             show_progress_bar: bool | None = None, precision: Precision = "float32",
                             normalize_embeddings: bool = False, truncate_dim: int | None = None) -> np.ndarray:
        """Deprecated, as in sentence-transformers: ``encode(sentences, pool=pool, ...)`` does the same."""
        warnings.warn("The `encode_multi_process` method has been deprecated, and its functionality has been "
                      "integrated into `encode`: call `encode(..., pool=pool)`.", DeprecationWarning, stacklevel=2)
        encode = cast(Any, self).encode  # the Embedder's
        return encode(list(sentences), prompt_name=prompt_name, prompt=prompt, batch_size=batch_size,
                      chunk_size=chunk_size, show_progress_bar=show_progress_bar, precision=precision,
                      normalize_embeddings=normalize_embeddings, truncate_dim=truncate_dim, pool=pool)


@dataclass(frozen=True)
class PoolRequest:
    """How a call asked for worker processes: a started ``pool``, or ``devices`` for a pool of its own."""

    pool: ProcessPool | None
    devices: list[str] | None
    chunk_size: int | None


def pool_or_place(model: torch.nn.Module, pool: Any, device: Any, chunk_size: Any) -> PoolRequest | None:
    """The checked ``pool`` / ``device=[...]`` / ``chunk_size`` arguments of a call, or None for one process, after
    moving ``model`` to a single ``device`` when one is given. A pool wins over a device list (as in
    sentence-transformers); ``chunk_size`` is checked always, and used only with either."""
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise InputError(f"chunk_size must be a positive integer (inputs per chunk sent to a worker) or None, "
                         f"got {chunk_size!r}.")
    if pool is None and not isinstance(device, (list, tuple)):
        if device is not None:
            model.to(device)
        return None
    if pool is not None:
        if not isinstance(pool, ProcessPool):
            raise InputError(f"pool must be what start_multi_process_pool() returned, got {type(pool).__name__}.")
        return PoolRequest(pool, None, chunk_size)
    return PoolRequest(None, check_devices(device, "device"), chunk_size)


@contextmanager
def _pool_for(model: torch.nn.Module, request: PoolRequest) -> Iterator[ProcessPool]:
    """The caller's pool (of this model), or a pool on the call's devices, stopped when the call ends."""
    if request.pool is not None:
        if not request.pool.serves(model):
            raise InputError("pool was started by another model; start one with this model's "
                             "start_multi_process_pool().")
        yield request.pool
        return
    assert request.devices is not None
    pool = start_pool(model, request.devices)
    try:
        yield pool
    finally:
        stop_pool(pool)


def _run(model: torch.nn.Module, request: PoolRequest, function: Any, inputs: Sequence[Any],
         kwargs: dict[str, Any], show_progress_bar: bool | None) -> list[Any]:
    with _pool_for(model, request) as pool:
        chunks = chunk_inputs(inputs, request.chunk_size, len(pool.devices))
        return run_chunks(pool, function, chunks, kwargs, show_progress_bar)


def encode_in_pool(model: Any, request: PoolRequest, inputs: Sequence[Any], *, single: bool,
                   chunk_kwargs: dict[str, Any], precision: Precision, convert_to_numpy: bool,
                   convert_to_tensor: bool, show_progress_bar: bool | None) -> Any:
    """``Embedder.encode`` of (checked, non-empty) ``inputs`` in worker processes. ``chunk_kwargs``: the ``encode``
    arguments each chunk is encoded with (prompt resolved, truncation, normalisation, ...); precision and the
    output type are applied here to the joined vectors."""
    kwargs = {**chunk_kwargs, "precision": "float32", "convert_to_tensor": True, "show_progress_bar": False}
    parts = _run(model, request, _encode_chunk, inputs, kwargs, show_progress_bar)
    if not all(isinstance(part, torch.Tensor) for part in parts):  # token embeddings: a list per input
        rows = [row for part in parts for row in part]
        return rows[0] if single else rows
    return as_requested(torch.cat(parts), precision, convert_to_numpy, convert_to_tensor, single)


def encode_chunks_in_pool(model: Any, request: PoolRequest, inputs: Sequence[Any], kwargs: dict[str, Any],
                          show_progress_bar: bool | None) -> list[Any]:
    """``model.encode(chunk, **kwargs)`` of each chunk of ``inputs`` in worker processes, in order: for a model class
    whose ``encode`` takes other arguments than ``Embedder.encode`` (SparseEncoder)."""
    return _run(model, request, _encode_chunk, inputs, kwargs, show_progress_bar)


def scores_in_pool(model: Any, request: PoolRequest, method: str, pairs: Sequence[Any], *, batch_size: int,
                   prompt: str | None, max_tokens: int | None, show_progress_bar: bool | None) -> torch.Tensor:
    """The raw scores of ``pairs`` (the scorer's ``score`` or ``rank_scores``, named by ``method``) computed in
    worker processes, in order; the caller applies the activation."""
    kwargs = {"method": method, "batch_size": batch_size, "prompt": prompt, "max_tokens": max_tokens}
    return torch.cat(_run(model, request, _score_chunk, pairs, kwargs, show_progress_bar))


# -- what a worker runs on one chunk (module-level functions: pickled by name) ------------------------------
def _encode_chunk(model: Any, inputs: list[Any], **kwargs: Any) -> Any:
    return model.encode(inputs, **kwargs)


def _score_chunk(model: Any, pairs: list[Any], *, method: str, batch_size: int, prompt: str | None,
                 max_tokens: int | None) -> torch.Tensor:
    return model._run(getattr(model.scorer, method), pairs, batch_size, prompt, False, max_tokens)

