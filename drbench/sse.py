"""Decode a Server-Sent Events byte stream into events, incrementally.

Pure: ``feed()`` takes any split of the bytes (an event may straddle network chunks, a CRLF may be
cut between its CR and LF) and returns the events completed so far; ``flush()`` returns an event
left unterminated at end of stream.  It follows the WHATWG rules real servers rely on: LF, CR and
CRLF line ends, ``:`` comment lines (keep-alives) ignored, ``data:`` with or without one space,
multi-line data joined with ``\\n``.  No clock and no I/O: client.py stamps arrival times.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEEvent"]

_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True, frozen=True)
class SSEEvent:
    data: str
    event: str = "message"


class SSEDecoder:
    """Incremental decoder; one instance per stream."""

    __slots__ = ("_buf", "_data", "_event", "_skip_lf", "_started")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []
        self._event = ""
        self._skip_lf = False  # the last chunk ended in CR: a leading LF belongs to it
        self._started = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        buf = self._buf + chunk if self._buf else chunk
        if not self._started:
            if len(buf) < 3 and _BOM.startswith(buf):  # wait: this may be the start of a BOM
                self._buf = buf
                return []
            self._started = True
            if buf.startswith(_BOM):
                buf = buf[3:]
        if b"\r" in buf:
            self._skip_lf = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        events: list[SSEEvent] = []
        data = self._data
        for line in lines:
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

    def flush(self) -> list[SSEEvent]:
        """The event in progress when the stream ended without a blank line, if any."""
        if self._buf:
            self._field(self._buf)
            self._buf = b""
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
