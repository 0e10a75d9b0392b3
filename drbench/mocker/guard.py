"""A deadline for a connection's first request head (the slowloris guard).

aiohttp's server has no header-read timeout: a client that sends half a request line and
stalls would hold its connection (and a file descriptor) forever. ``HeadDeadline`` wraps the
aiohttp protocol of each connection and closes the connection when no complete request head
(the blank line ending the headers) has arrived within ``timeout_s`` of connecting. Later
requests on a kept-alive connection are bounded by aiohttp's own ``keepalive_timeout``, which
the server sets to the same value, and a slow body by the handler's read timeout.

It only forwards the asyncio protocol callbacks and looks at the received bytes until the first
head is complete; it never touches aiohttp internals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["HeadDeadline", "guarded"]

_HEAD_ENDS = (b"\r\n\r\n", b"\n\n")


class HeadDeadline(asyncio.Protocol):
    """Forwards to ``inner``; closes the transport if the first head is late."""

    __slots__ = ("_inner", "_tail", "_timeout_s", "_timer", "_transport")

    def __init__(self, inner: asyncio.Protocol, timeout_s: float) -> None:
        self._inner = inner
        self._timeout_s = timeout_s
        self._timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._timeout_s, self._expire)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            seen = self._tail + data
            if any(end in seen for end in _HEAD_ENDS):
                self._disarm()
            else:
                self._tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._tail = b""

    def _expire(self) -> None:
        self._timer = None
        if self._transport is not None:
            self._transport.close()


def guarded(
    factory: Callable[[], asyncio.Protocol], timeout_s: float
) -> Callable[[], HeadDeadline]:
    """A protocol factory for ``loop.create_server`` that wraps ``factory``'s protocols."""
    return lambda: HeadDeadline(factory(), timeout_s)
