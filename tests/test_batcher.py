"""DynamicBatcher: packing, budgets, bounded queue, failures and timeouts, with a fake model."""

from __future__ import annotations

import asyncio
import random
import threading
import time

import pytest

from omnivec.serve.batcher import BatcherClosed, DynamicBatcher, QueueFull


class FakeModel:
    """Multiplies by ten, records batches and how many calls overlap; ``gate`` holds calls until set."""

    def __init__(self, gate: threading.Event | None = None, delay: float = 0.0, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.gate, self.delay, self.fail_on = gate, delay, fail_on
        self.active = self.max_active = 0
        self.started = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, items: list[int]) -> list[int]:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self.started.set()
            if self.gate is not None:
                assert self.gate.wait(10)
            time.sleep(self.delay)
            self.batches.append(list(items))
            if self.fail_on is not None and self.fail_on in items:
                raise RuntimeError("model failed")
            return [x * 10 for x in items]
        finally:
            with self._lock:
                self.active -= 1


async def _wait_started(model: FakeModel) -> None:
    await asyncio.to_thread(model.started.wait, 5)


def _concurrent(batching: bool) -> tuple[FakeModel, list[list[int]], list[list[int]]]:
    rng = random.Random(0)
    requests = [[rng.randrange(1000) for _ in range(rng.randint(1, 5))] for _ in range(64)]
    model = FakeModel(delay=0.002)

    async def main() -> list[list[int]]:
        batcher = DynamicBatcher(model, max_batch_size=8, max_wait_ms=5, batching=batching)
        results = await asyncio.gather(*(batcher.submit(r) for r in requests))
        assert batcher.stats.requests == 64 and batcher.stats.queue_depth == 0
        await batcher.close()
        return results

    return model, requests, asyncio.run(main())


def test_concurrent_requests_are_packed_and_routed():
    model, requests, results = _concurrent(batching=True)
    assert results == [[x * 10 for x in r] for r in requests]
    assert max(len(b) for b in model.batches) <= 8
    flat = [(i, x) for i, r in enumerate(requests) for x in r]  # (request index, item) in submission order
    pos, mixed = 0, False
    for b in model.batches:  # FIFO: batches are consecutive runs of the submission order
        owners = {i for i, _ in flat[pos : pos + len(b)]}
        assert [x for _, x in flat[pos : pos + len(b)]] == b
        mixed |= len(owners) > 1
        pos += len(b)
    assert pos == len(flat) and mixed
    assert model.max_active == 1


def test_batching_off_runs_each_request_alone():
    model, requests, results = _concurrent(batching=False)
    assert results == [[x * 10 for x in r] for r in requests]
    assert len(model.batches) == len(requests)
    assert sorted(map(tuple, model.batches)) == sorted(map(tuple, requests))


def test_token_budget():
    rng = random.Random(1)
    requests = [[rng.randint(1, 12) for _ in range(rng.randint(1, 4))] for _ in range(40)] + [[30], [2, 25, 3]]
    model = FakeModel()

    async def main() -> list[list[int]]:
        batcher = DynamicBatcher(model, max_batch_size=100, max_tokens=20, cost=lambda x: x, max_wait_ms=5)
        out = await asyncio.gather(*(batcher.submit(r) for r in requests))
        await batcher.close()
        return out

    assert asyncio.run(main()) == [[x * 10 for x in r] for r in requests]
    assert any(len(b) > 1 for b in model.batches)
    for b in model.batches:
        assert sum(b) <= 20 or len(b) == 1, b
    assert [30] in model.batches and [25] in model.batches


def test_lone_requests_go_at_once_and_requests_under_load_wait_for_company():
    model = FakeModel()

    async def main() -> tuple[float, float]:
        batcher = DynamicBatcher(model, max_batch_size=64, max_wait_ms=100)
        t0 = time.perf_counter()
        assert await batcher.submit([1, 2]) == [10, 20]  # light load: no wait for others
        alone = time.perf_counter() - t0
        assert await batcher.submit([3]) == [30]
        await asyncio.gather(*(batcher.submit([x]) for x in (4, 5, 6)))  # load: one batch serves three requests
        t0 = time.perf_counter()
        first = asyncio.ensure_future(batcher.submit([7]))
        await asyncio.sleep(0.03)
        assert await batcher.submit([8]) == [80] and await first == [70]
        waited = time.perf_counter() - t0
        await batcher.close()
        return alone, waited

    alone, waited = asyncio.run(main())
    assert alone < 0.05 and [3] in model.batches and [4, 5, 6] in model.batches
    assert [7, 8] in model.batches and 0.09 <= waited < 0.5  # the window held the batch open for the second one


def test_queue_full_and_recovery():
    gate = threading.Event()
    model = FakeModel(gate=gate)

    async def main() -> None:
        batcher = DynamicBatcher(model, max_batch_size=2, max_wait_ms=1, max_queue=4)
        first = asyncio.create_task(batcher.submit([1, 2]))  # taken by the worker, held by the gate
        await _wait_started(model)
        queued = asyncio.create_task(batcher.submit([3, 4, 5, 6]))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull) as info:
            await batcher.submit([7])
        assert info.value.retry_after > 0
        with pytest.raises(ValueError):
            await batcher.submit(list(range(5)))  # can never fit
        assert batcher.stats.rejected == 1 and batcher.stats.queue_depth == 4
        gate.set()
        assert await first == [10, 20] and await queued == [30, 40, 50, 60]
        assert await batcher.submit([7]) == [70]
        assert 0 < batcher.retry_after() and batcher.stats.queue_depth == 0
        await batcher.close()

    try:
        asyncio.run(main())
    finally:
        gate.set()


def test_failure_only_hits_its_batch():
    model = FakeModel(fail_on=13)

    async def main() -> None:
        batcher = DynamicBatcher(model, max_batch_size=4, max_wait_ms=5)
        bad, good = batcher.submit([1, 13]), batcher.submit([2, 3])
        outcomes = await asyncio.gather(bad, good, return_exceptions=True)
        assert isinstance(outcomes[0], RuntimeError) and isinstance(outcomes[1], RuntimeError)  # same batch
        assert await batcher.submit([4, 5]) == [40, 50]
        assert batcher.stats.failed_batches == 1
        await batcher.close()

    asyncio.run(main())


def test_failure_spares_requests_in_other_batches():
    gate = threading.Event()
    model = FakeModel(gate=gate, fail_on=13)

    async def main() -> None:
        batcher = DynamicBatcher(model, max_batch_size=2, max_wait_ms=1)
        bad = asyncio.create_task(batcher.submit([13, 1, 2]))  # spans two batches: its second is dropped
        await _wait_started(model)
        good = asyncio.create_task(batcher.submit([3, 4]))
        await asyncio.sleep(0)
        gate.set()
        with pytest.raises(RuntimeError, match="model failed"):
            await bad
        assert await good == [30, 40]
        assert [2] not in model.batches
        await batcher.close()

    try:
        asyncio.run(main())
    finally:
        gate.set()


def test_timeout_drops_only_that_request():
    gate = threading.Event()
    model = FakeModel(gate=gate)

    async def main() -> None:
        batcher = DynamicBatcher(model, max_batch_size=1, max_wait_ms=1)
        running = asyncio.create_task(batcher.submit([1], timeout=0.05))
        await _wait_started(model)
        waiting = asyncio.create_task(batcher.submit([2, 3], timeout=0.05))
        with pytest.raises(asyncio.TimeoutError):
            await running
        with pytest.raises(asyncio.TimeoutError):
            await waiting
        assert batcher.stats.queue_depth == 0 and batcher.stats.timeouts == 2
        gate.set()
        assert await batcher.submit([4]) == [40]
        assert model.batches == [[1], [4]]  # the timed-out queued items never reached the model
        await batcher.close()

    try:
        asyncio.run(main())
    finally:
        gate.set()


def test_close_fails_pending_and_refuses_new():
    gate = threading.Event()
    model = FakeModel(gate=gate)

    async def main() -> None:
        batcher = DynamicBatcher(model, max_batch_size=1, max_wait_ms=1)
        running = asyncio.create_task(batcher.submit([1]))
        await _wait_started(model)
        queued = asyncio.create_task(batcher.submit([2]))
        await asyncio.sleep(0)
        await batcher.close()
        for task in (running, queued):
            with pytest.raises(BatcherClosed):
                await task
        with pytest.raises(BatcherClosed):
            await batcher.submit([3])

    try:
        asyncio.run(main())
    finally:
        gate.set()
