"""The bounded log of recent request bodies behind ``GET /debug/requests`` (a test aid).

It keeps the raw bytes of at most ``--debug-requests`` bodies and at most
``--debug-requests-bytes`` bytes in all, dropping the oldest first, so a flood of large
requests cannot make the server hold gigabytes. A body larger than the whole byte budget is
logged as a small stub, ``{"truncated": true, "bytes": N}``, so the list still shows that it
came. Bodies are stored as received (they decoded as JSON objects) and served by joining
them, never re-encoded. No I/O.
"""

from __future__ import annotations

from collections import deque

__all__ = ["RequestLog"]


class RequestLog:
    """Recent JSON request bodies, bounded by count and by total bytes."""

    __slots__ = ("_bodies", "_bytes", "max_bodies", "max_bytes")

    def __init__(self, max_bodies: int, max_bytes: int) -> None:
        self.max_bodies = max_bodies
        self.max_bytes = max_bytes
        self._bodies: deque[bytes] = deque()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._bodies)

    @property
    def bytes_held(self) -> int:
        return self._bytes

    def add(self, raw: bytes) -> None:
        """Keep one body (a stub if it alone exceeds the byte budget); evict the oldest."""
        if self.max_bodies <= 0:
            return
        if len(raw) > self.max_bytes:
            raw = b'{"truncated": true, "bytes": %d}' % len(raw)
        bodies = self._bodies
        bodies.append(raw)
        self._bytes += len(raw)
        while len(bodies) > self.max_bodies or (self._bytes > self.max_bytes and len(bodies) > 1):
            self._bytes -= len(bodies.popleft())

    def render(self) -> bytes:
        """The bodies, oldest first, as one JSON array."""
        return b"[" + b",".join(self._bodies) + b"]"

    def clear(self) -> int:
        """Forget every body; returns how many there were."""
        n = len(self._bodies)
        self._bodies.clear()
        self._bytes = 0
        return n
