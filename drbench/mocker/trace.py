"""``--trace FILE``: one JSON line per completion request with the server-side write times.

Lines are kept in memory and appended to the file by a background flush every half second and
at shutdown (never an fsync per request), so tracing costs one ``json.dumps`` per request and
nothing per chunk beyond a ``time.monotonic_ns()`` stamp taken in sink.py. All times are
``time.monotonic_ns()`` (CLOCK_MONOTONIC), which every process on the machine shares, so a
client's ``perf_counter_ns()`` stamps can be compared with them directly on Linux.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import IO, Any

from drbench.errors import UsageError

__all__ = ["TraceWriter"]

_FLUSH_EVERY_S = 0.5


class TraceWriter:
    """Buffered JSONL appender; ``record`` is cheap, ``flush``/``close`` do the file I/O."""

    def __init__(self, path: str) -> None:
        try:
            self._file: IO[str] | None = open(path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise UsageError(f"llm_mocker: cannot open --trace {path}: {exc.strerror}") from None
        self.path = path
        self._lines: list[str] = []
        self._task: asyncio.Task[None] | None = None

    def record(self, entry: dict[str, Any]) -> None:
        """Queue one request's line."""
        self._lines.append(json.dumps(entry, separators=(",", ":")))

    def start(self) -> None:
        """Begin the periodic flush (call from inside the running event loop)."""
        self._task = asyncio.get_running_loop().create_task(self._flush_loop())

    def flush(self) -> None:
        if self._lines and self._file is not None:
            lines, self._lines = self._lines, []
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()

    async def close(self) -> None:
        """Stop the flusher, write what is left, close the file."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_EVERY_S)
            self.flush()
