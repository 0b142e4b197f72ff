"""Slow clients against a live ``omnivec serve`` on loopback (issue 12, item 4): trickled bodies, idle and
header-trickling connections, and more slow connections than the cap must not starve real requests."""

from __future__ import annotations

import contextlib
import socket
import time

import httpx

from tests.fixtures.hostile_server import BODY_TIMEOUT_S, HEADER_TIMEOUT_S, MAX_CONNECTIONS


def _slow_body(url: str) -> socket.socket:
    """A connection that sent headers announcing a 1000-byte body, and one byte of it."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{")
    return sock


def test_a_trickled_body_is_cut_off_after_the_deadline(served):
    sock = _slow_body(served.url)
    start, reply = time.monotonic(), b""
    try:
        for _ in range(40):  # one byte each 0.25 s: 10 s at most, well past the 2 s deadline
            try:
                sock.sendall(b" ")
            except OSError:
                break  # closed by the server
            sock.settimeout(0.25)
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            reply += chunk
            if not chunk or b"\r\n\r\n" in reply:
                break
        elapsed = time.monotonic() - start
        sock.settimeout(5)  # the body may follow the head in another segment: read to the close
        with contextlib.suppress(OSError):
            while more := sock.recv(4096):
                reply += more
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 408") and b"did not arrive within 2 s" in reply, reply[:300]
    assert BODY_TIMEOUT_S - 0.5 < elapsed < BODY_TIMEOUT_S + 3, elapsed


def _answers(socks: list[socket.socket], wait_s: float) -> list[str]:
    """Each socket's status line (its first 12 bytes), or "" if it sent none within ``wait_s`` of the call."""
    deadline, statuses = time.monotonic() + wait_s, []
    for sock in socks:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            statuses.append(sock.recv(4096)[:12].decode())
        except TimeoutError:
            statuses.append("")
    return statuses


def test_slow_connections_cannot_starve_real_requests(served):
    """Slow bodies under the connection cap are all cut off by the deadline (408). Twice the cap's worth: each gets
    a 503 at once or a 408 at the deadline, never more 408s than the cap, and real requests are served after.
    (Which ones get 503 depends on how far the server got when the others connected: under load, all of them.)"""
    under_cap = [_slow_body(served.url) for _ in range(MAX_CONNECTIONS - 2)]  # plus a probe: still under the cap
    try:
        start = time.monotonic()
        busy = httpx.get(served.url + "/health", timeout=10)
        assert busy.status_code == 200 and time.monotonic() - start < 2, busy.status_code
        assert _answers(under_cap, BODY_TIMEOUT_S + 8) == ["HTTP/1.1 408"] * len(under_cap)
    finally:
        for sock in under_cap:
            sock.close()
    socks = [_slow_body(served.url) for _ in range(2 * MAX_CONNECTIONS)]
    try:
        statuses = _answers(socks, BODY_TIMEOUT_S + 8)
        assert set(statuses) <= {"HTTP/1.1 503", "HTTP/1.1 408"}, statuses
        assert statuses.count("HTTP/1.1 408") < MAX_CONNECTIONS, statuses  # the cap held
        assert httpx.get(served.url + "/health", timeout=10).status_code == 200
    finally:
        for sock in socks:
            sock.close()


def _open(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _closed_after(sock: socket.socket, trickle: bytes, limit_s: float) -> tuple[bytes, float]:
    """Sends ``trickle`` a byte each 0.2 s (bounded by ``limit_s``) until the server closes; returns what it answered
    and when it closed."""
    start, reply = time.monotonic(), b""
    for i in range(int(limit_s / 0.2)):
        if i < len(trickle):
            try:
                sock.sendall(trickle[i:i + 1])
            except OSError:
                break
        sock.settimeout(0.2)
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            break
        if not chunk:
            break
        reply += chunk
    return reply, time.monotonic() - start


def test_idle_and_trickled_header_connections_are_closed_at_the_header_deadline(served):
    """A socket that sends nothing, and one that sends its headers a byte each 0.2 s: 408 and closed about
    HEADER_TIMEOUT_S after opening (before the fix both stayed open, each counting toward the connection cap)."""
    headers = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"
    for trickle in (b"", headers):
        sock = _open(served.url)
        try:
            reply, elapsed = _closed_after(sock, trickle, HEADER_TIMEOUT_S + 8)
        finally:
            sock.close()
        assert reply.startswith(b"HTTP/1.1 408") and b"headers did not arrive within 2 s" in reply, reply[:300]
        assert HEADER_TIMEOUT_S - 0.5 < elapsed < HEADER_TIMEOUT_S + 4, elapsed


def test_idle_connections_at_the_cap_lock_nobody_out_past_the_header_deadline(served):
    """The cap's worth of sockets that never send a byte: past the header deadline they are closed and a real
    request is answered 200."""
    socks = [_open(served.url) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(HEADER_TIMEOUT_S + 1)
        assert _answers(socks, 5) == ["HTTP/1.1 408"] * MAX_CONNECTIONS
        assert httpx.get(served.url + "/health", timeout=10).status_code == 200
    finally:
        for sock in socks:
            sock.close()


# -- item 5: bad input is 4xx and stays in its own request ----------------------------------------------------------
