"""Worker processes that each hold a copy of a model: sentence-transformers' multi-process pool.

The model is pickled into every worker once, at start (spawn context, its CPU weights in shared memory). A call
cuts its inputs into chunks, puts ``(call, chunk, function, inputs, kwargs)`` on the input queue, and any idle
worker runs ``function(model, inputs, **kwargs)`` and sends the result back, tagged, on the output queue. The
caller waits with a timeout and checks between waits that every worker is alive, so a worker that dies (killed,
out of memory, crashed) is an error naming it, never a hang; an exception inside a worker comes back and is
raised in the caller with a note saying where it happened. Nothing here knows the model classes: the function
each chunk runs is a module-level function the caller's layer passes in (pickled by name).
"""

from __future__ import annotations

import itertools
import math
import pickle
import queue
import signal
import traceback
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.multiprocessing as mp

from omnivec.errors import ConfigError, InputError, OmnivecError
from omnivec.runtime.batching import progress
from omnivec.runtime.cpu import cpu_info

POLL_SECONDS = 0.5  # how long a caller waits for a result before it checks that every worker is still alive
JOIN_SECONDS = 5.0  # how long stopping waits for a terminated worker before it kills it
MAX_CHUNK_SIZE = 5000  # sentence-transformers' bound on the default chunk size

ChunkFunction = Callable[..., Any]  # function(model, inputs, **kwargs), defined at module level


class PoolWorkerError(OmnivecError, RuntimeError):
    """A worker process of a multi-process pool died (killed, out of memory, crashed) or cannot start; the message
    names the worker, its device and how it ended. The pool is then unusable: stop it and start a new one."""


class WorkerTraceback(Exception):
    """Where an exception raised in a worker happened: set as its ``__cause__`` in the caller."""


class ProcessPool(dict):
    """What ``start_multi_process_pool`` returns: sentence-transformers' dict (``"input"`` and ``"output"``
    queues, ``"processes"``), plus ``devices``, the model it serves, and ``failure`` (why it cannot be used any
    more: None while it works). Also a context manager that stops the pool on exit."""

    def __init__(self, input_queue: Any, output_queue: Any, processes: list[Any], devices: list[str],
                 model: torch.nn.Module) -> None:
        super().__init__(input=input_queue, output=output_queue, processes=processes)
        self.devices = devices
        self.failure: str | None = None
        self._model = weakref.ref(model)
        self._calls = itertools.count()  # tags each call's chunks, so results of an interrupted call are dropped

    def serves(self, model: torch.nn.Module) -> bool:
        """Whether this pool's workers hold copies of ``model``."""
        return self._model() is model

    def __enter__(self) -> ProcessPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        stop_pool(self)


def default_devices() -> list[str]:
    """Every CUDA device, else four CPU workers (sentence-transformers' default)."""
    if torch.cuda.is_available():
        return [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    return ["cpu"] * 4


def check_devices(devices: Any, argument: str) -> list[str]:
    """A non-empty list of device names torch understands (``"cpu"``, ``"cuda:1"``, ``torch.device``)."""
    if isinstance(devices, (str, torch.device)) or not isinstance(devices, Sequence) or not devices:
        raise InputError(f"{argument} must be a non-empty list of devices such as ['cpu', 'cpu'] or "
                         f"['cuda:0', 'cuda:1'], got {devices!r}.")
    names = []
    for position, device in enumerate(devices):
        try:
            names.append(str(torch.device(device)))
        except (RuntimeError, TypeError):
            raise InputError(f"{argument}[{position}] = {device!r} is not a device name torch knows "
                             "('cpu', 'cuda', 'cuda:1', 'mps', ...).") from None
    return names


def start_pool(model: torch.nn.Module, devices: Sequence[str | torch.device]) -> ProcessPool:
    """One worker process per entry of ``devices``, each with a copy of ``model``.

    As in sentence-transformers the model is moved to the CPU (where it stays) and its weights are put in shared
    memory, which CPU workers then use without a copy. CPU workers split the usable cores between them, so that
    N workers do not each start one thread per core."""
    names = check_devices(devices, "target_devices")
    model.to("cpu")
    model.share_memory()
    context = mp.get_context("spawn")
    input_queue, output_queue = context.Queue(), context.Queue()
    cpu_workers = sum(torch.device(name).type == "cpu" for name in names)
    threads = max(1, cpu_info().cores // cpu_workers) if cpu_workers else 0
    processes: list[Any] = []
    pool = ProcessPool(input_queue, output_queue, processes, names, model)
    for index, name in enumerate(names):
        process = context.Process(
            target=_work, name=f"omnivec-pool-{index}",
            args=(model, index, name, threads if torch.device(name).type == "cpu" else 0, input_queue, output_queue),
            daemon=True,
        )
        try:
            process.start()  # pickles the model here, in the caller
        except Exception as exc:  # e.g. an ONNX Runtime / OpenVINO session, which cannot be pickled
            stop_pool(pool)
            raise ConfigError(f"The model cannot be copied into a worker process ({type(exc).__name__}: {exc}); "
                              "multi-process encoding needs a model that pickles, such as one loaded with "
                              "backend='torch'.") from exc
        processes.append(process)
    return pool


def stop_pool(pool: Mapping[str, Any]) -> None:
    """Terminate the workers and close the queues (a second stop does nothing)."""
    if isinstance(pool, ProcessPool):
        if pool.failure == "stopped":
            return
        pool.failure = "stopped"
    processes = list(pool["processes"])
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(JOIN_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()
        process.close()
    pool["input"].cancel_join_thread()  # chunks nobody will take must not block the caller's exit
    pool["input"].close()
    pool["output"].close()


def chunk_inputs(inputs: Sequence[Any], chunk_size: int | None, workers: int) -> list[list[Any]]:
    """``inputs`` cut in chunks of ``chunk_size`` (default as sentence-transformers: about ten chunks per worker,
    at most 5,000 inputs each)."""
    size = chunk_size or max(1, min(math.ceil(len(inputs) / workers / 10), MAX_CHUNK_SIZE))
    return [list(inputs[start:start + size]) for start in range(0, len(inputs), size)]


def run_chunks(pool: ProcessPool, function: ChunkFunction, chunks: Sequence[list[Any]], kwargs: Mapping[str, Any],
               show_progress_bar: bool | None = None) -> list[Any]:
    """``function(model, chunk, **kwargs)`` of every chunk, run by the pool's workers, in chunk order."""
    _check_usable(pool)
    call = next(pool._calls)
    for index, chunk in enumerate(chunks):
        pool["input"].put((call, index, function, chunk, dict(kwargs)))
    results: dict[int, Any] = {}
    failures: dict[int, tuple[BaseException, str, int]] = {}
    for _ in progress(range(len(chunks)), len(chunks), show_progress_bar, "Chunks", unit="chunk"):
        tag, index, ok, value, worker, trace = _next_result(pool)
        while tag != call:  # left over from an earlier call that was interrupted
            tag, index, ok, value, worker, trace = _next_result(pool)
        if ok:
            results[index] = value
        else:
            failures[index] = (value, trace, worker)
    if failures:  # every chunk was collected first, so nothing of this call is left in the queue
        index = min(failures)
        exc, trace, worker = failures[index]
        start = sum(len(chunk) for chunk in chunks[:index])
        # As concurrent.futures does: the worker's traceback, as text, is the cause the caller's traceback shows.
        exc.__cause__ = WorkerTraceback(
            f"raised in multi-process pool worker {worker} ({pool.devices[worker]}) on chunk {index}, inputs {start} "
            f"to {start + len(chunks[index]) - 1} of this call (an index in the message counts from the chunk's "
            f'start):\n"""\n{trace}"""')
        raise exc
    return [results[index] for index in range(len(chunks))]


def _check_usable(pool: ProcessPool) -> None:
    if pool.failure == "stopped":
        raise InputError("This multi-process pool was stopped; start a new one with start_multi_process_pool().")
    if pool.failure is None:
        pool.failure = _dead_workers(pool)
    if pool.failure is not None:
        raise PoolWorkerError(f"{pool.failure} Stop the pool (stop_multi_process_pool) and start a new one.")


def _next_result(pool: ProcessPool) -> tuple[int, int, bool, Any, int, str]:
    """The next result on the output queue; between waits, an error if a worker has died (its chunk is lost)."""
    while True:
        try:
            return pool["output"].get(timeout=POLL_SECONDS)
        except queue.Empty:
            pass
        _check_usable(pool)


def _dead_workers(pool: ProcessPool) -> str | None:
    """How the pool's dead workers ended, or None when all are alive."""
    ends = []
    for index, process in enumerate(pool["processes"]):
        if process.is_alive():
            continue
        code = process.exitcode
        if code is not None and code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
            if -code == signal.SIGKILL:
                how += " (by another process, or by the kernel when memory ran out)"
        else:
            how = (f"exited with code {code} (its traceback is on stderr; a script that starts a pool needs an "
                   "`if __name__ == '__main__':` guard, as spawned workers import it)")
        ends.append(f"multi-process pool worker {index} (pid {process.pid}, {pool.devices[index]}) {how}")
    if not ends:
        return None
    text = "; ".join(ends)
    return text[0].upper() + text[1:] + "."


def _work(model: torch.nn.Module, worker: int, device: str, threads: int, inputs: Any, outputs: Any) -> None:
    """A worker's loop: run each chunk it takes, send back its result or its exception. It ends when the pool
    terminates it, or by itself once the process that started it is gone."""
    failed: BaseException | None = None
    try:
        if threads:
            torch.set_num_threads(threads)
        model.to(device)
        model.eval()
    except Exception as exc:  # e.g. a device this machine does not have: every chunk reports it
        failed = exc
    parent = mp.parent_process()
    while True:
        try:
            call, index, function, chunk, kwargs = inputs.get(timeout=POLL_SECONDS * 4)
        except queue.Empty:
            if parent is not None and not parent.is_alive():  # the caller was killed: no one will stop this worker
                return
            continue
        try:
            if failed is not None:
                raise RuntimeError(f"The worker could not place the model on {device}: {failed}") from failed
            value = _to_cpu(function(model, chunk, **kwargs))
        except Exception as exc:
            outputs.put((call, index, False, _portable(exc), worker, traceback.format_exc()))
        else:
            outputs.put((call, index, True, value, worker, ""))


def _to_cpu(value: Any) -> Any:
    """Tensors moved to the CPU (a CUDA tensor sent to another process lives only as long as its sender)."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(item) for item in value)
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    return value


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (the queue pickles in a background thread, where a failure would be lost),
    else a RuntimeError with its type and message."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc
