"""Peak resident memory of a call, sampled from /proc (torch's allocations are invisible to tracemalloc)."""

from __future__ import annotations

import os
import threading
import time
from typing import Callable

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def peak_rss_delta(fn: Callable[[], object]) -> tuple[float, object]:
    """(peak RSS above the starting RSS during ``fn``, in MiB; fn's result)."""
    start, peak, done = _rss(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        result = fn()
    finally:
        done.set()
        thread.join()
    return (max(peak[0], _rss()) - start) / 2**20, result
