"""Decode a Server-Sent Events byte stream into events, incrementally.

Pure: ``feed()`` takes any split of the bytes (an event may straddle network chunks, a CRLF may be
cut between its CR and LF) and returns the events completed so far; ``flush()`` returns an event
left unterminated at end of stream.  It follows the WHATWG rules real servers rely on: LF, CR and
CRLF line ends, ``:`` comment lines (keep-alives) ignored, ``data:`` with or without one space,
multi-line data joined with ``\\n``.  No clock and no I/O: client.py stamps arrival times.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_MAX_LINE_BYTES", "SSEDecoder", "SSEEvent", "SSELineTooLong"]

_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True, frozen=True)
class SSEEvent:
    data: str
    event: str = "message"


class SSELineTooLong(ValueError):
    """A line passed the decoder's cap: a hostile or broken stream, not one to keep buffering."""


DEFAULT_MAX_LINE_BYTES = 4 * 1024 * 1024


class SSEDecoder:
    """Incremental decoder; one instance per stream.

    Linear in the bytes fed: an unfinished line is kept as a list of pieces and joined once, when
    its end arrives (re-joining it on every read made a 20 MB line cost seconds).  A line longer
    than ``max_line_bytes`` raises ``SSELineTooLong``.
    """

    __slots__ = ("_data", "_event", "_max_line", "_pending", "_pending_len", "_skip_lf", "_started")

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._pending: list[bytes] = []  # the pieces of the line not yet ended
        self._pending_len = 0
        self._data: list[str] = []
        self._event = ""
        self._max_line = max_line_bytes
        self._skip_lf = False  # the last chunk ended in CR: a leading LF belongs to it
        self._started = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        if not self._started:
            chunk = self._strip_bom(chunk)
            if not self._started:
                return []
        if b"\r" in chunk:  # CR and CRLF are line ends too; a CR at the end may own a leading LF
            self._skip_lf = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = chunk.rfind(b"\n")
        if end < 0:
            self._hold(chunk)
            return []
        if self._pending:
            head = b"".join(self._pending) + chunk[: end + 1]
            self._pending, self._pending_len = [], 0
        else:
            head = chunk[: end + 1]
        self._hold(chunk[end + 1 :])
        lines = head.split(b"\n")
        lines.pop()  # head ends with a line end: the last piece is empty
        events: list[SSEEvent] = []
        data = self._data
        cap = self._max_line
        for line in lines:
            if len(line) > cap:
                raise SSELineTooLong(f"an SSE line of {len(line)} bytes (cap {cap})")
            if line[:5] == b"data:":  # the usual line, handled inline (same as _field)
                value = line[5:]
                data.append((value[1:] if value[:1] == b" " else value).decode("utf-8", "replace"))
            elif not line:
                if data:
                    events.append(self._dispatch())
                    data = self._data
                else:
                    self._event = ""
            elif line[0] != 0x3A:  # ':' starts a comment
                self._field(line)
        return events

    def _hold(self, piece: bytes) -> None:
        if piece:
            self._pending.append(piece)
            self._pending_len += len(piece)
            if self._pending_len > self._max_line:
                raise SSELineTooLong(
                    f"an SSE line of more than {self._max_line} bytes (cap {self._max_line})"
                )

    def _strip_bom(self, chunk: bytes) -> bytes:
        """Drop a leading BOM, which may arrive split over the first reads."""
        head = b"".join(self._pending) + chunk
        if len(head) < 3 and _BOM.startswith(head):  # wait: this may be the start of a BOM
            self._pending, self._pending_len = [head] if head else [], len(head)
            return b""
        self._pending, self._pending_len = [], 0
        self._started = True
        return head[3:] if head.startswith(_BOM) else head

    def flush(self) -> list[SSEEvent]:
        """The event in progress when the stream ended without a blank line, if any."""
        if self._pending:
            self._field(b"".join(self._pending))
            self._pending, self._pending_len = [], 0
        return [self._dispatch()] if self._data else []

    def _field(self, line: bytes) -> None:
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value.decode("utf-8", "replace"))
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        # id and retry do not matter for one-shot completions streams; unknown fields are ignored.

    def _dispatch(self) -> SSEEvent:
        data = self._data
        event = SSEEvent(data[0] if len(data) == 1 else "\n".join(data), self._event or "message")
        self._data = []
        self._event = ""
        return event
