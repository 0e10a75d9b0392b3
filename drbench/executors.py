"""The executor that sends a round's requests from this process, through a transport.

The transport is the one function that touches the network (``client.send`` on the run's aiohttp
session); tests pass a double that returns made-up exchanges, so the engine's behaviour is tested
without a server.  Every finished exchange goes to one parser task that turns it into its record a
slice per event-loop iteration (``response.parse_steps``), so a long answer never holds up the
stamping of other streams' reads.  Worker processes run this same executor on their own loop.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass

from drbench.client import PreparedRequest
from drbench.engine import ExecutorInfo, RoundContext, sleep_until
from drbench.records import RequestRecord
from drbench.response import RawExchange, finish_steps, parse_steps
from drbench.selfcheck import ProcessLoad
from drbench.tokens import TokenCounter

__all__ = ["InProcess", "Transport"]

#: Sends one prepared request and returns what the wire gave (never raises for I/O).
Transport = Callable[[PreparedRequest], Awaitable[RawExchange]]


@dataclass(slots=True)
class _Pending:
    """An exchange that ended, waiting for the parser."""

    i: int
    req: PreparedRequest
    raw: RawExchange
    done: asyncio.Future[RequestRecord]


class InProcess:
    """Sends from this process's event loop; ``lead_s`` 0 (the dispatcher releases on time)."""

    lead_s = 0.0
    halted: str | None = None  # nothing here to lose

    def __init__(
        self,
        transport: Transport,
        *,
        tokenizer: TokenCounter | None = None,
        timing: Counter[str] | None = None,
        worker: int | None = None,
        connect: Callable[[int], Awaitable[int]] | None = None,
    ) -> None:
        self.transport = transport
        self._connect = connect
        self.tokenizer = tokenizer
        self.timing = timing if timing is not None else Counter()
        self.worker = worker
        self._ctx: RoundContext | None = None
        self._queue: asyncio.Queue[_Pending] | None = None
        self._parser: asyncio.Task[None] | None = None
        self._current: _Pending | None = None  # the exchange being parsed
        self._parsed: list[tuple[int, RequestRecord]] = []  # this round's records, for salvage

    def describe(self) -> ExecutorInfo | None:
        return None

    async def open_connections(self, n: int) -> None:
        """Open ``n`` connections ahead of a level (``client.open_connections``), if it can."""
        if self._connect is not None and n > 0:
            await self._connect(n)

    async def begin_round(self, ctx: RoundContext) -> None:
        self._ctx = ctx
        self._parsed = []
        self._queue = asyncio.Queue()
        self._parser = asyncio.ensure_future(self._parse_all())

    async def run_one(self, i: int, req: PreparedRequest, due_ns: int | None) -> RequestRecord:
        assert self._queue is not None, "begin_round first"
        if due_ns is not None:
            await sleep_until(due_ns)
        raw = await self.transport(req)
        done: asyncio.Future[RequestRecord] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(i, req, raw, done))
        return await done

    async def salvage(self) -> list[tuple[int, RequestRecord]]:
        """After a cancelled round: every record of the round (the engine keeps those it has
        not seen: a record parsed just before the cancel may not have reached it), and what
        ended but was not parsed yet, parsed in one go."""
        if self._parser is not None:  # it must not take an item off the queue meanwhile
            self._parser.cancel()
            await asyncio.gather(self._parser, return_exceptions=True)
            self._parser = None
        items = [self._current] if self._current is not None else []
        while self._queue is not None and not self._queue.empty():
            items.append(self._queue.get_nowait())
        self._current = None
        late = [(it.i, finish_steps(self._steps(it))) for it in items]
        return [*self._parsed, *late]

    async def end_round(self) -> list[ProcessLoad]:
        if self._parser is not None:
            self._parser.cancel()
            await asyncio.gather(self._parser, return_exceptions=True)
            self._parser = None
        return []

    async def _parse_all(self) -> None:
        assert self._queue is not None
        while True:
            item = self._current = await self._queue.get()
            steps = self._steps(item)
            while True:  # a slice of a record per loop iteration: reads keep being stamped
                try:
                    next(steps)
                except StopIteration as stop:
                    self._current = None
                    self._parsed.append((item.i, stop.value))
                    if not item.done.done():
                        item.done.set_result(stop.value)
                    break
                await asyncio.sleep(0)
            del item, steps  # not the raw bytes of the last answer kept while the queue is empty

    def _steps(self, item: _Pending) -> Generator[None, None, RequestRecord]:
        ctx = self._ctx
        assert ctx is not None
        raw = item.raw
        self.timing["socket" if raw.socket_stamps else "wakeup"] += 1
        return _finishing(
            parse_steps(
                raw,
                prompt_id=item.req.prompt_id,
                level=ctx.level,
                round=ctx.round,
                round_start_ns=ctx.start_ns,
                prompt_tokens=item.req.prompt_tokens,
                tokenizer=self.tokenizer,
                max_line_bytes=ctx.max_line_bytes,
            ),
            item.req,
            self.worker,
        )


def _finishing(
    steps: Generator[None, None, RequestRecord], req: PreparedRequest, worker: int | None
) -> Generator[None, None, RequestRecord]:
    """The parse, then what the request itself knows: its max_tokens and who sent it."""
    rec = yield from steps
    rec.max_tokens = req.max_tokens
    rec.worker = worker
    return rec
