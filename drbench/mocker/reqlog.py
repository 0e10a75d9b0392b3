"""The bounded log of recent request bodies behind ``GET /debug/requests`` (a test aid).

It keeps the raw bytes of at most ``--debug-requests`` bodies and at most
``--debug-requests-bytes`` bytes in all, dropping the oldest first, so a flood of large
requests cannot make the server hold gigabytes. A body larger than the whole byte budget is
logged as a small stub, ``{"truncated": true, "bytes": N}``, so the list still shows that it
came. Bodies are stored as received (they decoded as JSON objects) and served by joining
them, never re-encoded. Each body's request headers are kept beside it as the parser's raw
pairs (no copy, no encoding on the request's path; counted in the byte budget) and encoded
only when ``GET /debug/requests?headers=1`` asks for them. No I/O.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence

RawHeaders = Sequence[tuple[bytes, bytes]]

__all__ = ["RequestLog"]


class RequestLog:
    """Recent JSON request bodies, bounded by count and by total bytes."""

    __slots__ = ("_bodies", "_bytes", "_headers", "max_bodies", "max_bytes")

    def __init__(self, max_bodies: int, max_bytes: int) -> None:
        self.max_bodies = max_bodies
        self.max_bytes = max_bytes
        self._bodies: deque[bytes] = deque()
        self._headers: deque[RawHeaders] = deque()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._bodies)

    @property
    def bytes_held(self) -> int:
        return self._bytes

    def add(self, raw: bytes, headers: RawHeaders = ()) -> None:
        """Keep one body (a stub if it alone exceeds the byte budget) and its request's
        headers; evict the oldest."""
        if self.max_bodies <= 0:
            return
        size = sum(len(k) + len(v) for k, v in headers)
        if len(raw) + size > self.max_bytes:
            raw = b'{"truncated": true, "bytes": %d}' % len(raw)
            headers, size = (), 0
        bodies, kept = self._bodies, self._headers
        bodies.append(raw)
        kept.append(headers)
        self._bytes += len(raw) + size
        while len(bodies) > self.max_bodies or (self._bytes > self.max_bytes and len(bodies) > 1):
            gone = kept.popleft()
            self._bytes -= len(bodies.popleft()) + sum(len(k) + len(v) for k, v in gone)

    def render(self, with_headers: bool = False) -> bytes:
        """The bodies, oldest first, as one JSON array; ``with_headers``: an array of
        ``{"headers": {name: value}, "body": BODY}`` (a repeated name keeps its last value)."""
        if not with_headers:
            return b"[" + b",".join(self._bodies) + b"]"
        items = (
            b'{"headers": %s, "body": %s}' % (_headers_json(h).encode(), body)
            for h, body in zip(self._headers, self._bodies, strict=True)
        )
        return b"[" + b",".join(items) + b"]"

    def clear(self) -> int:
        """Forget every body; returns how many there were."""
        n = len(self._bodies)
        self._bodies.clear()
        self._headers.clear()
        self._bytes = 0
        return n


def _headers_json(headers: RawHeaders) -> str:
    pairs = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}
    return json.dumps(pairs, ensure_ascii=False)
