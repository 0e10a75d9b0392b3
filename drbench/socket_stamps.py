"""When each response body byte came off the socket: read stamps taken below aiohttp.

aiohttp hands a read's bytes to the waiting task only after the rest of that event-loop
iteration has run (other streams' reads, other requests' sends), and the task resumes in the
next one; under load that wait is most of a naive client's TTFT and ITL error.  So the client
does not stamp when its task wakes: ``make_connector`` gives aiohttp ``StampingProtocol``, whose
``data_received`` notes ``perf_counter_ns()`` before aiohttp parses the HTTP framing, and a
``StampLog`` attached to one response maps the body bytes the reader later gets back to those
notes (``split``).

The request side has the same problem the other way round: a stamp taken before
``session.post`` comes before aiohttp has acquired the connection, built the request and (on
Python < 3.12, from a task of its own that runs an iteration later) written it, which under a
wave of sends is milliseconds before the bytes leave.  So the protocol also wraps its
transport's ``write``/``writelines`` (instance attributes, once per connection) and notes
``perf_counter_ns()`` when each non-empty write returns: asyncio's selector transport calls
``sock.send`` inside ``write`` when its buffer is empty, so that is when the request's bytes were
handed to the kernel (``sent_ns``).  A write the kernel took only part of leaves the rest in the
transport's buffer; the stamp is then when the last byte was queued (a request larger than the
socket's send buffer), which is earlier than its send, never later.

The same protocol also skips aiohttp's ``resume_reading`` when nothing is paused (aiohttp calls
it after every read that leaves its buffer low, and it then only feeds the parser ``b""``):
per chunk that is a third of what the protocol costs, and the reader's wake-up comes sooner.

Relies on two aiohttp internals: the class ``aiohttp.client_proto.ResponseHandler`` and the
connector's ``_factory`` attribute (a ``functools.partial`` of it), and on a transport whose
``write`` can be shadowed per instance (asyncio's; not uvloop's).  Where any is missing or
different, ``make_connector`` returns a plain ``TCPConnector``, ``attach`` returns None and
``sent_ns`` returns its fallback: the client stamps chunks when its task wakes up and the
request just before ``session.post``.  No parsing and no I/O here.  (Named for the
socket, not "arrival": in load testing that word means the request arrival process.)
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from time import perf_counter_ns
from typing import Any

import aiohttp

try:
    from aiohttp.client_proto import ResponseHandler
except ImportError:  # another aiohttp layout: stamps are taken when the reading task wakes
    _HAVE_HANDLER = False
else:
    _HAVE_HANDLER = True

__all__ = ["StampLog", "StampingProtocol", "attach", "make_connector", "sent_ns"]


class StampLog:
    """Arrival times of one response body's bytes, as ``(perf_counter_ns, bytes fed so far)``."""

    __slots__ = ("_consumed", "_content", "_marks", "_noted", "_protocol")

    def __init__(self, protocol: Any, content: aiohttp.StreamReader) -> None:
        self._protocol = protocol
        self._content = content
        self._marks: deque[tuple[int, int]] = deque()
        self._consumed = 0  # body bytes the reader has taken so far
        self._noted = content.total_bytes
        if self._noted:  # came with the headers, before the reader could attach
            self._marks.append((protocol.arrival_ns, self._noted))
        protocol.arrival_log = self

    def note(self, t_ns: int) -> None:
        """Called by the protocol after each read: the bytes fed since the last note came at t."""
        total = self._content.total_bytes
        if total > self._noted:
            self._noted = total
            self._marks.append((t_ns, total))

    def split(self, data: bytes, fallback_ns: int) -> list[tuple[int, bytes]]:
        """The next ``data`` the reader got, cut where its bytes arrived in different reads.

        Bytes no note covers (none should be) get ``fallback_ns``, the reader's own stamp.
        """
        start, end = self._consumed, self._consumed + len(data)
        self._consumed = end
        marks = self._marks
        while marks and marks[0][1] <= start:
            marks.popleft()
        if marks and marks[0][1] >= end:  # the usual case: all of it came in one read
            t_ns = marks[0][0]
            if marks[0][1] == end:
                marks.popleft()
            return [(t_ns, data)]
        pieces = []
        pos = start
        while pos < end:
            if not marks:
                pieces.append((fallback_ns, data[pos - start :]))
                break
            t_ns, upto = marks[0]
            cut = min(upto, end)
            pieces.append((t_ns, data[pos - start : cut - start]))
            pos = cut
            if upto <= end:
                marks.popleft()
        return pieces

    def detach(self) -> None:
        """Stop noting (the reader is done with this response)."""
        if getattr(self._protocol, "arrival_log", None) is self:
            self._protocol.arrival_log = None


if _HAVE_HANDLER:

    class StampingResponseHandler(ResponseHandler):
        """aiohttp's response protocol, noting when each read arrived before it is parsed."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.arrival_ns = 0
            self.arrival_log: StampLog | None = None
            self.sent_ns = 0  # when the last non-empty write returned; 0: none, or not wrapped

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            _stamp_writes(self, transport)

        def data_received(self, data: bytes) -> None:
            if data:  # b"" is aiohttp resuming its decompressor: bytes of the last arrival
                self.arrival_ns = perf_counter_ns()
            ResponseHandler.data_received(self, data)
            log = self.arrival_log
            if log is not None:
                log.note(self.arrival_ns)

        def resume_reading(self, resume_parser: bool = True) -> None:
            """aiohttp's reader calls this after every read that leaves its buffer low, paused
            or not; un-paused, it would only feed the parser b"" and resume a running
            transport.  Skipped then (a third of the protocol's work per chunk)."""
            if getattr(self, "_reading_paused", True) or getattr(self, "_buffer_paused", True):
                ResponseHandler.resume_reading(self, resume_parser)

    #: The protocol class connections get, or None where aiohttp's internals differ.
    StampingProtocol: type[StampingResponseHandler] | None = StampingResponseHandler
else:  # pragma: no cover - only without aiohttp.client_proto
    StampingProtocol = None


def _stamp_writes(protocol: StampingResponseHandler, transport: Any) -> None:
    """Shadow the transport's ``write``/``writelines`` so each non-empty one notes its return time
    on ``protocol.sent_ns``; a transport that refuses instance attributes is left alone."""
    write, writelines = transport.write, transport.writelines

    def stamped_write(data: Any) -> None:
        write(data)
        if data:
            protocol.sent_ns = perf_counter_ns()

    def stamped_writelines(chunks: Any) -> None:
        writelines(chunks)
        protocol.sent_ns = perf_counter_ns()

    try:
        transport.write = stamped_write
        transport.writelines = stamped_writelines
    except (AttributeError, TypeError):  # slots or a C transport: sent_ns stays 0 (fallback)
        return


def sent_ns(resp: aiohttp.ClientResponse, fallback_ns: int) -> int:
    """When the request of ``resp`` was handed to the kernel: its connection's last write, if it
    came after ``fallback_ns`` (the stamp taken before ``session.post``), else ``fallback_ns``.

    Called once the response has started: the request was written by then (a server that
    answers before reading the whole body gets the last write so far).  A reused connection's
    stamp of the previous request is older than ``fallback_ns`` and so is never taken.
    """
    conn = resp.connection
    # A short answer may have ended (and its connection been released) before the caller
    # resumed: the response still holds the protocol it was read from.
    protocol = conn.protocol if conn is not None else getattr(resp, "_protocol", None)
    stamp = getattr(protocol, "sent_ns", 0) if StampingProtocol is not None else 0
    return stamp if isinstance(stamp, int) and stamp > fallback_ns else fallback_ns


def make_connector(**kwargs: Any) -> aiohttp.TCPConnector:
    """A TCPConnector whose connections stamp arrivals, or a plain one if aiohttp differs."""
    connector = aiohttp.TCPConnector(**kwargs)
    factory = getattr(connector, "_factory", None)
    if (
        StampingProtocol is not None
        and isinstance(factory, functools.partial)
        and factory.func is ResponseHandler
    ):
        protocol: type[ResponseHandler] = StampingProtocol  # what the connector's type says
        connector._factory = functools.partial(protocol, *factory.args, **factory.keywords)
    return connector


def attach(resp: aiohttp.ClientResponse) -> StampLog | None:
    """A StampLog for this response's body, or None when its connection does not stamp."""
    conn = resp.connection
    # A short answer may have ended (and its connection been released) before the caller
    # resumed: the response still holds the protocol it was read from.
    protocol = conn.protocol if conn is not None else getattr(resp, "_protocol", None)
    if StampingProtocol is None or not isinstance(protocol, StampingProtocol):
        return None
    return StampLog(protocol, resp.content)
