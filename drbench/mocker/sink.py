"""Where a streamed request's SSE events go: straight onto its transport, framed and timed.

The engine calls ``token()`` once per output token from its step loop; it writes one pre-built
HTTP chunk with no JSON encoding and no awaiting (asyncio buffers the write; a stalled reader
makes ``backlogged`` true and the engine holds that request back). The rarer events (role,
finish, usage, ``[DONE]``, faults) go through ``emit()``. With ``--trace`` it stamps every
event with ``time.monotonic_ns()`` as it is written.

``ShapedSink`` is the general path for the stream quirks of shape.py (empty tokens, N tokens
per chunk, one whole-answer chunk, one character per chunk, usage placement, tool calls, an id
per chunk): it JSON-encodes each chunk as it writes it.

What it does not do: end the HTTP response (the handler calls ``write_eof``) or decide when a
token is due (engine.py does).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence, Set
from typing import Any

from drbench.mocker.config import UsageMode
from drbench.mocker.shape import StreamShape, chunk_texts, token_pieces, tool_arguments
from drbench.mocker.wire import DONE_EVENT, Kind, StreamFormat, TokenBytes, frame, tool_call_id

__all__ = ["ShapedSink", "StreamSink"]

_HIGH_WATER_BYTES = 1 << 20  # past this much unsent data the reader is not keeping up


class _Sink:
    """What both writers share: the transport, the framing and the write-time log."""

    __slots__ = (
        "_chunked",
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
        include_usage: bool,
        trace: bool,
    ) -> None:
        self._transport = transport
        self._chunked = chunked
        self.fmt = fmt
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

    def garbage(self) -> None:
        """Write one SSE event whose data is not JSON (``--malformed-rate``)."""
        self._transport.write(frame(self.fmt.garbage_event(), self._chunked))
        if self.trace:
            self.chunk_ns.append(time.monotonic_ns())

    def drop(self) -> None:
        """Close the connection mid-stream (``--drop-rate``; also used at shutdown)."""
        self._transport.close()


class StreamSink(_Sink):
    """One streamed response's writer and write-time log."""

    __slots__ = ("_first", "_offset", "_prefix", "_rest", "_size")

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
        super().__init__(transport, chunked, fmt, include_usage, trace)
        self._prefix = fmt.prefix
        self._first = tokens.first
        self._rest = tokens.rest
        self._size = len(tokens.rest)
        self._offset = offset

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


class ShapedSink(_Sink):
    """A streamed response under the stream quirks of shape.py: same interface as
    ``StreamSink``, but every chunk is JSON-encoded when written (the slow, general path).

    The role chunk goes out with the first write; ``usage`` goes where ``--usage-mode`` (or
    ``--whole-answer``) puts it; under ``--new-id-per-chunk`` every chunk after the first gets
    a fresh id. With ``--trace``, every content chunk, empty or not, is a ``content_ns`` stamp.
    """

    __slots__ = ("_ids", "_role_pending", "_texts", "shape")

    def __init__(
        self,
        transport: asyncio.Transport,
        chunked: bool,
        fmt: StreamFormat,
        shape: StreamShape,
        answer: Sequence[str],
        empty: Set[int],
        include_usage: bool,
        trace: bool,
    ) -> None:
        super().__init__(transport, chunked, fmt, include_usage, trace)
        self.shape = shape
        pieces = token_pieces(answer, empty)
        if shape.tool_calls:
            pieces = tool_arguments(pieces)
        self._texts = chunk_texts(pieces, shape)
        self._role_pending = fmt.kind is Kind.CHAT
        self._ids = 0

    def token(self, i: int) -> None:
        """Write what is due at output token ``i`` (maybe nothing: a chunk of N tokens)."""
        texts = self._texts[i]
        if texts:
            self._write(self._content(texts, None), len(texts), False)

    def emit(self, i: int | None, first: bool, finish: tuple[str, dict[str, Any]] | None) -> None:
        """Token ``i``'s chunks (if any) and, if ``finish`` is given, the end of the stream."""
        texts = self._texts[i] if i is not None else ()
        if finish is None:
            if texts:
                self._write(self._content(texts, None), len(texts), False)
            return
        reason, usage = finish
        if self.shape.tool_calls and reason == "stop":
            reason = "tool_calls"
        mode = self.shape.usage_mode
        if self.shape.whole_answer:  # like mock-ai-api: usage on the finish chunk
            wanted = mode is not UsageMode.NONE
        else:
            wanted = self.include_usage and mode is not UsageMode.NONE
        shown = usage if wanted else None
        if texts and mode is UsageMode.LAST_TOKEN and not self.shape.whole_answer:
            events = self._content(texts, (reason, shown))
        else:
            events = self._content(texts, None) if texts else []
            fmt = self.fmt
            if self._role_pending:  # an answer of no tokens still opens with the role
                events.append(fmt.content_event("", role=True, response_id=self._next_id()))
                self._role_pending = False
            as_own_chunk = mode is UsageMode.FINAL and not self.shape.whole_answer
            events.append(
                fmt.finish_chunk(reason, None if as_own_chunk else shown, self._next_id())
            )
            if as_own_chunk and shown is not None:
                events.append(fmt.usage_chunk(shown, self._next_id()))
        self._write(events, len(texts), True)

    def _content(
        self, texts: Sequence[str], finish: tuple[str, dict[str, Any] | None] | None
    ) -> list[bytes]:
        """The content chunks of ``texts``; the last carries ``finish`` if given."""
        fmt, events = self.fmt, []
        last = len(texts) - 1
        for j, text in enumerate(texts):
            reason, usage = finish if finish is not None and j == last else (None, None)
            rid = self._next_id()
            if self.shape.tool_calls:
                call_id = None
                if self._role_pending:
                    call_id = tool_call_id(fmt.response_id)
                    self._role_pending = False
                events.append(fmt.tool_event(text, call_id, reason, usage, rid))
            else:
                role, self._role_pending = self._role_pending, False
                if role and fmt.kind is Kind.CHAT:
                    events.append(fmt.content_event("", role=True, response_id=rid))
                    rid = self._next_id()
                events.append(fmt.content_event(text, reason, usage, rid))
        return events

    def _next_id(self) -> str | None:
        """None (the response's own id) unless every chunk gets a fresh one."""
        self._ids += 1
        if not self.shape.new_id_per_chunk or self._ids == 1:
            return None
        return f"{self.fmt.kind.id_prefix}-{uuid.uuid4().hex}"

    def _write(self, events: list[bytes], contents: int, done: bool) -> None:
        data = b"".join(events) + (DONE_EVENT if done else b"")
        self._transport.write(frame(data, self._chunked))
        if self.trace:
            t = time.monotonic_ns()
            self.chunk_ns.extend([t] * len(events))
            self.content_ns.extend([t] * contents)
            if done:
                self.done_ns = t
