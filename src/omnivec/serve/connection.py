"""uvicorn's h11 connection with a request-header deadline.

uvicorn starts no timer when a connection opens, and its keep-alive timer only runs after a response and stops at
the first byte received. A socket that sends nothing, or trickles its headers a byte at a time, would stay open
forever and count toward ``--max-connections``: enough of them make every real request 503. Here a connection
gets ``header_timeout_s`` from when it opens (and from the end of each response) to send complete request
headers; past it the server answers 408 and closes it. The body has its own deadline (``serve/edge.py``)."""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

# Seconds from a connection's opening (or the end of its last response) to complete request headers.
HEADER_TIMEOUT_S = 10.0


class HeaderDeadlineH11(H11Protocol):
    """``H11Protocol`` that closes a connection whose request headers do not arrive within ``header_timeout_s``."""

    header_timeout_s: float = HEADER_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a new request's headers were parsed: its body has the Edge's deadline
            self._cancel_header_timer()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._cancel_header_timer()
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        # Armed before uvicorn looks at pipelined data: a request already waiting cancels it in handle_events.
        self._arm_header_timer()
        super().on_response_complete()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        message = f"the request headers did not arrive within {self.header_timeout_s:g} s".encode()
        try:  # h11 lets a server answer before a request, as uvicorn's own 400 for a malformed one does
            headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(message)).encode()),
                       (b"connection", b"close")]
            self.transport.write(self.conn.send(h11.Response(status_code=408, headers=headers,
                                                             reason=b"Request Timeout")) or b"")
            self.transport.write(self.conn.send(h11.Data(data=message)) or b"")
            self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            pass  # mid-way through something h11 cannot answer now: closing is enough
        self.transport.close()


def header_deadline_protocol(header_timeout_s: float) -> type[HeaderDeadlineH11]:
    """The protocol class for uvicorn's ``Config(http=...)`` with this deadline."""
    return type("HeaderDeadlineH11", (HeaderDeadlineH11,), {"header_timeout_s": header_timeout_s})
