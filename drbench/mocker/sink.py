"""Where a streamed request's SSE events go: straight onto its transport, framed and timed.

The engine calls ``token()`` once per output token from its step loop; it writes one pre-built
HTTP chunk with no JSON encoding and no awaiting (asyncio buffers the write; a stalled reader
makes ``backlogged`` true and the engine holds that request back). The rarer events (role,
finish, usage, ``[DONE]``, faults) go through ``emit()``. With ``--trace`` it stamps every
event with ``time.monotonic_ns()`` as it is written.

What it does not do: end the HTTP response (the handler calls ``write_eof``) or decide when a
token is due (engine.py does).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from drbench.mocker.wire import DONE_EVENT, StreamFormat, TokenBytes, frame

__all__ = ["StreamSink"]

_HIGH_WATER_BYTES = 1 << 20  # past this much unsent data the reader is not keeping up


class StreamSink:
    """One streamed response's writer and write-time log."""

    __slots__ = (
        "_chunked",
        "_first",
        "_offset",
        "_prefix",
        "_rest",
        "_size",
        "_transport",
        "chunk_ns",
        "content_ns",
        "done_ns",
        "fmt",
        "include_usage",
        "trace",
    )

    def __init__(
        self,
        transport: asyncio.Transport,
        chunked: bool,
        fmt: StreamFormat,
        tokens: TokenBytes,
        offset: int,
        include_usage: bool,
        trace: bool,
    ) -> None:
        self._transport = transport
        self._chunked = chunked
        self.fmt = fmt
        self._prefix = fmt.prefix
        self._first = tokens.first
        self._rest = tokens.rest
        self._size = len(tokens.rest)
        self._offset = offset
        self.include_usage = include_usage
        self.trace = trace
        self.chunk_ns: list[int] = []
        self.content_ns: list[int] = []
        self.done_ns: int | None = None

    @property
    def closed(self) -> bool:
        """The client went away (or the connection was dropped)."""
        return self._transport.is_closing()

    @property
    def backlogged(self) -> bool:
        """The client has not read what was already written; hold further tokens back."""
        return self._transport.get_write_buffer_size() > _HIGH_WATER_BYTES

    def token(self, i: int) -> None:
        """Write output token ``i`` (not the first) as one content chunk: the hot path."""
        data = self._prefix + self._rest[(self._offset + i) % self._size]
        if self._chunked:
            self._transport.write(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            self._transport.write(data)
        if self.trace:
            t = time.monotonic_ns()
            self.chunk_ns.append(t)
            self.content_ns.append(t)

    def emit(self, i: int | None, first: bool, finish: tuple[str, dict[str, Any]] | None) -> None:
        """Write, as one frame: the role chunk if ``first``, token ``i`` if given, then the
        finish chunk, the usage chunk (if asked for) and ``[DONE]`` if ``finish`` is given."""
        events: list[bytes] = []
        content_pos = -1
        if first and (role := self.fmt.role_event()):
            events.append(role)
        if i is not None:
            table = self._first if first else self._rest
            content_pos = len(events)
            events.append(self._prefix + table[(self._offset + i) % self._size])
        if finish is not None:
            reason, usage = finish
            events.append(self.fmt.finish_event(reason))
            if self.include_usage:
                events.append(self.fmt.usage_event(usage))
        self._transport.write(
            frame(b"".join(events) + (DONE_EVENT if finish else b""), self._chunked)
        )
        if self.trace:
            t = time.monotonic_ns()
            self.chunk_ns.extend([t] * len(events))
            if content_pos >= 0:
                self.content_ns.append(t)
            if finish is not None:
                self.done_ns = t

    def garbage(self) -> None:
        """Write one SSE event whose data is not JSON (``--malformed-rate``)."""
        self._transport.write(frame(self.fmt.garbage_event(), self._chunked))
        if self.trace:
            self.chunk_ns.append(time.monotonic_ns())

    def drop(self) -> None:
        """Close the connection mid-stream (``--drop-rate``; also used at shutdown)."""
        self._transport.close()
