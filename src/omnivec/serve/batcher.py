"""Dynamic batching: pack the items of concurrent requests into shared, serialized model calls."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from omnivec.errors import ConfigError, InputError, OmnivecError


class QueueFull(OmnivecError):
    """The bounded queue cannot take the request now; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BatcherClosed(OmnivecError, RuntimeError):
    """The batcher was closed before the request could be answered."""


@dataclass
class BatchStats:
    """Counters for metrics export; ``batch_sizes`` maps a batch size to how many batches had it."""

    requests: int = 0
    items: int = 0
    batches: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)
    queue_depth: int = 0
    rejected: int = 0
    timeouts: int = 0
    failed_batches: int = 0
    total_seconds: float = 0.0


class _Request:
    __slots__ = ("future", "results", "remaining", "queued")

    def __init__(self, future: asyncio.Future, n: int) -> None:
        self.future = future
        self.results: list[Any] = [None] * n
        self.remaining = n  # results not yet delivered
        self.queued = n  # items still waiting in the queue


# (request, index in the request, item, cost): cost is computed at submit so a failing cost() reaches its caller.
_Slot = tuple[_Request, int, Any, int]


class DynamicBatcher:
    """Run ``run_batch`` on batches packed from concurrent ``submit`` calls, one model call at a time.

    A batch closes at ``max_batch_size`` items, before the next item's ``cost`` would pass ``max_tokens`` (a costlier
    item runs alone), or ``max_wait_ms`` after its first item; when the last batch served a single request (light
    load) there is no wait. ``batching=False``: one call per request, alone.
    """

    def __init__(
        self,
        run_batch: Callable[[list[Any]], list[Any]],
        *,
        max_batch_size: int = 32,
        max_tokens: int | None = None,
        cost: Callable[[Any], int] | None = None,
        max_wait_ms: float = 5.0,
        max_queue: int = 1024,
        batching: bool = True,
        name: str = "model",
    ) -> None:
        if max_batch_size < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ConfigError("max_batch_size and max_queue must be >= 1 and max_wait_ms >= 0")
        if max_tokens is not None and cost is None:
            raise ConfigError("max_tokens needs a cost function")
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_tokens = max_tokens
        self._cost = cost
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.batching = batching
        self.name = name
        self._stats = BatchStats()
        self._queue: deque[_Slot] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._running: list[_Request] = []
        self._closed = False
        # Smoothed model-call duration and size, for the Retry-After estimate.
        self._ema_seconds: float | None = None
        self._ema_size = float(max_batch_size)
        self._last_requests = 1  # requests served by the last batch: more than one means there is load to batch

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def stats(self) -> BatchStats:
        """A snapshot of the counters."""
        return replace(self._stats, batch_sizes=dict(self._stats.batch_sizes))

    async def start(self) -> None:
        """Start the worker on the running loop (``submit`` does this on first use)."""
        if self._closed:
            raise BatcherClosed(f"batcher {self.name!r} is closed")
        if self._worker is None:
            self._wakeup = asyncio.Event()
            # One thread: model calls are serialized because models are not thread-safe.
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"omnivec-{self.name}")
            self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"batcher-{self.name}")

    async def submit(self, items: list[Any], timeout: float | None = None) -> list[Any]:
        """Queue ``items`` and return their results in order.

        Raises ``QueueFull`` when the queue has no room, ``InputError`` (a ValueError) when ``items`` could never fit,
        ``asyncio.TimeoutError`` after ``timeout`` seconds, and whatever ``run_batch`` raised for its batch.
        """
        await self.start()
        items = list(items)
        if not items:
            return []
        if len(items) > self.max_queue:
            raise InputError(f"{len(items)} items exceed the queue size {self.max_queue} of {self.name!r}")
        if self._stats.queue_depth + len(items) > self.max_queue:
            self._stats.rejected += 1
            raise QueueFull(f"queue of {self.name!r} is full", self.retry_after())
        costs = [self._cost(item) for item in items] if self._cost is not None else [0] * len(items)
        req = _Request(asyncio.get_running_loop().create_future(), len(items))
        self._queue.extend((req, i, item, c) for i, (item, c) in enumerate(zip(items, costs, strict=True)))
        self._stats.queue_depth += len(items)
        self._stats.requests += 1
        self._stats.items += len(items)
        self._wakeup_event().set()
        try:
            # Shield so a timeout does not cancel the future the worker may be about to fill.
            return await asyncio.wait_for(asyncio.shield(req.future), timeout)
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            # Timed out, or the caller went away (client disconnect): spare the model its queued items.
            self._stats.timeouts += isinstance(exc, asyncio.TimeoutError)
            self._unqueue(req)
            raise
        finally:
            if not req.future.done():
                req.future.cancel()  # its running items' results are discarded on arrival

    def retry_after(self) -> float:
        """Seconds until the queue has likely drained enough: queued batches times a recent batch's time."""
        if self._ema_seconds is None:
            return 1.0  # no batch finished yet, so the model's speed is unknown
        batches_ahead = math.ceil(self._stats.queue_depth / max(self._ema_size, 1.0)) + 1
        return max(0.01, batches_ahead * self._ema_seconds)

    async def close(self) -> None:
        """Stop the worker; queued and running requests fail with ``BatcherClosed``."""
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        error = BatcherClosed(f"batcher {self.name!r} was closed")
        for req in self._running + [slot[0] for slot in self._queue]:
            if not req.future.done():
                req.future.set_exception(error)
        self._queue.clear()
        self._running = []
        self._stats.queue_depth = 0
        if self._executor is not None:
            # The thread cannot be interrupted; do not block the loop on a model call that may be stuck.
            self._executor.shutdown(wait=False, cancel_futures=True)

    def _wakeup_event(self) -> asyncio.Event:
        assert self._wakeup is not None, "start() creates it before anything is queued or collected"
        return self._wakeup

    def _unqueue(self, req: _Request) -> None:
        if req.queued:
            self._queue = deque(slot for slot in self._queue if slot[0] is not req)
            self._stats.queue_depth -= req.queued
            req.queued = 0

    def _take(self) -> _Slot:
        slot = self._queue.popleft()
        slot[0].queued -= 1
        self._stats.queue_depth -= 1
        return slot

    def _fits(self, batch: list[_Slot], used: int) -> bool:
        """Whether the queue head may join ``batch`` that already costs ``used``."""
        head_req, _, _, c = self._queue[0]
        if not self.batching:
            return head_req is batch[0][0]
        return len(batch) < self.max_batch_size and (self.max_tokens is None or used + c <= self.max_tokens)

    async def _collect(self) -> list[_Slot]:
        loop, wakeup = asyncio.get_running_loop(), self._wakeup_event()
        while not self._queue:
            wakeup.clear()
            await wakeup.wait()
        batch = [self._take()]
        used = batch[0][3]
        # A last batch that served one request means light load: the model keeps up, so a lone request goes at once
        # instead of waiting for company. Under load requests queue while the model runs, and the wait returns.
        deadline = loop.time() + (self.max_wait if self._last_requests > 1 else 0.0)
        while True:
            if self._queue:
                if not self._fits(batch, used):
                    return batch
                batch.append(self._take())
                used += batch[-1][3]
                continue
            # Waiting cannot help a full batch, and an unbatched request was queued whole, so it is complete.
            full = len(batch) >= self.max_batch_size or (self.max_tokens is not None and used >= self.max_tokens)
            remaining = deadline - loop.time()
            if full or not self.batching or remaining <= 0:
                return batch
            wakeup.clear()
            with contextlib.suppress(asyncio.TimeoutError):  # the next pass sees the deadline has passed
                await asyncio.wait_for(wakeup.wait(), remaining)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            self._running = list({id(slot[0]): slot[0] for slot in batch}.values())
            self._last_requests = len(self._running)
            start, error = time.perf_counter(), None
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, [slot[2] for slot in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"run_batch of {self.name!r} gave {len(results)} results for {len(batch)} items")
            except Exception as exc:  # the error belongs to this batch's requests only; the worker goes on
                error = exc
            self._record(len(batch), time.perf_counter() - start, failed=error is not None)
            if error is not None:
                for req in self._running:
                    self._unqueue(req)  # the request has failed: its later items would be wasted model time
                    if not req.future.done():
                        req.future.set_exception(error)
            else:
                for (req, i, _, _), result in zip(batch, results, strict=True):
                    req.results[i] = result
                    req.remaining -= 1
                    if req.remaining == 0 and not req.future.done():
                        req.future.set_result(req.results)
            self._running = []

    def _record(self, size: int, seconds: float, failed: bool) -> None:
        s = self._stats
        s.batches += 1
        s.batch_sizes[size] = s.batch_sizes.get(size, 0) + 1
        s.total_seconds += seconds
        s.failed_batches += failed
        a = 0.2  # smoothing: recent batches matter most, one outlier does not swing Retry-After
        self._ema_seconds = seconds if self._ema_seconds is None else (1 - a) * self._ema_seconds + a * seconds
        self._ema_size = (1 - a) * self._ema_size + a * size
