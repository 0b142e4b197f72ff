"""glibc's malloc raises its mmap threshold each time a large mmapped block is freed (up to 32 MiB), so the decoded
audio windows and pixels of a long index run soon come from the heap, and the heap keeps what is freed: a 3-hour
recording grew a run by 970 MiB. Handing the heap's free pages back after each batch (``malloc_trim``) keeps the
peak flat without giving up the raised threshold, which torch's large tensors need to stay fast (a fixed 128 KiB
threshold made text embedding 50 % slower)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def release_free_memory() -> bool:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim(0)``); False where the C library has
    no such call (musl, macOS)."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
