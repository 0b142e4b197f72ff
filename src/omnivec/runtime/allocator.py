"""glibc's malloc raises its mmap threshold each time a large block mmapped is freed, up to 32 MiB; after that, the
decoded audio windows and image batches of a long index run come from the heap, whose freed pieces are rarely
given back. A 3-hour recording then grew an index run by 970 MiB instead of ~300. A fixed threshold keeps large
blocks mmapped, returned to the system when freed."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h); setting it also turns the dynamic threshold off
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value


def fix_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold at 128 KiB for this process; False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to set
        return False
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    logger.debug("malloc mmap threshold fixed at %d bytes: %s", MMAP_THRESHOLD_BYTES, done)
    return done
