"""One ``omnivec index`` run at a time per KB: an OS file lock on ``<kb>/index.lock`` (``filelock``: ``flock`` on
POSIX, so the kernel releases it when the holder dies, even by ``kill -9``), held for the whole run. The holder
writes who it is to ``<kb>/index.lock.json`` so a second run can name it. Readers (search, the server) take no
lock: they read committed data only."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from omnivec.errors import ConfigError, OmnivecError

LOCK_NAME = "index.lock"
INFO_NAME = "index.lock.json"


class KBLockedError(OmnivecError):
    """Another index run holds the KB (the CLI exits with status 2)."""


@contextlib.contextmanager
def index_lock(kb_dir: Path, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the KB's index lock; when another run holds it, wait up to ``wait_s`` seconds (0: not at all), then
    raise ``KBLockedError`` naming the holder (pid, host, start time)."""
    from filelock import FileLock, Timeout

    if not wait_s >= 0:  # also NaN
        raise ConfigError(f"--wait-lock must be a number of seconds >= 0, got {wait_s!r}.")
    kb_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(kb_dir / LOCK_NAME))
    try:
        lock.acquire(blocking=False)
    except Timeout:
        if wait_s == 0:
            raise KBLockedError(f"{_holder(kb_dir)} holds the KB {str(kb_dir)!r}: wait for it to finish, or pass "
                                "--wait-lock SECONDS to wait for it.") from None
        print(f"{_holder(kb_dir)} holds the KB {str(kb_dir)!r}; waiting up to {wait_s:g} s", file=sys.stderr)
        try:
            lock.acquire(timeout=wait_s)
        except Timeout:
            raise KBLockedError(f"{_holder(kb_dir)} still holds the KB {str(kb_dir)!r} after {wait_s:g} s "
                                "(--wait-lock).") from None
    info = kb_dir / INFO_NAME
    try:
        staged = info.with_suffix(f".{os.getpid()}.tmp")  # replaced whole: a reader never sees half of it
        staged.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}),
                          encoding="utf-8")
        os.replace(staged, info)
        yield
    finally:
        info.unlink(missing_ok=True)  # before the lock goes, so the next holder's info is never removed
        lock.release()


def _holder(kb_dir: Path) -> str:
    """"Another index run (pid 123 on host, started 2026-01-01 12:00:00 UTC)", from the holder's info file."""
    try:
        info = json.loads((kb_dir / INFO_NAME).read_text(encoding="utf-8"))
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(info["started"])))
        return f"Another index run (pid {int(info['pid'])} on {info['host']}, started {started})"
    except (OSError, ValueError, KeyError, TypeError):  # taken a moment ago, its info not yet written
        return "Another index run"
