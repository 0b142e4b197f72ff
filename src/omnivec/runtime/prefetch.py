"""Prepare the next batches in a background thread while the model computes the current one."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def prefetched(jobs: Iterable[Callable[[], T]], depth: int = 2) -> Iterator[T]:
    """Yield each job's result in order, running up to ``depth`` jobs ahead in a worker thread.

    Decoding (Pillow, PyAV) and torch compute both release the GIL, so they overlap. An exception
    in a job surfaces when its result is reached.
    """
    jobs = iter(jobs)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="omnivec-prefetch") as pool:
        pending = deque(pool.submit(job) for job in islice(jobs, depth))
        while pending:
            result = pending.popleft().result()
            upcoming = next(jobs, None)
            if upcoming is not None:
                pending.append(pool.submit(upcoming))
            yield result
