"""One round of one level: a dispatcher releases requests as the pacer allows, an executor runs them.

The dispatcher goes through the round's requests in order.  Request ``i`` is released when the
pacer says it is due (an open loop's schedule; at once in a closed loop) and there is room under
the pacer's cap of requests in flight (C in a closed loop, ``--max-concurrency`` in an open one);
it then goes to the executor, which sends it (in this process or in a worker process) and returns
its record.  One request is released per event-loop iteration, so a wave of requests ending
together never holds up the stamping of other streams' reads for more than one send.

The executor is a seam: ``executors.InProcess`` sends through a transport (aiohttp, or a test
double), ``workers.WorkerPool`` through worker processes, ``ray_executor.RayPool`` through Ray
actors on other hosts.  ``--max-round-duration`` stops the
releases; what is in flight then finishes and the round is marked truncated; so does an executor
that lost a worker under ``--on-lost-worker stop`` (its ``halted``).  Ctrl-C cancels
the round; every exchange that ended before it is still parsed and reported.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any, Protocol

from drbench.client import PreparedRequest
from drbench.pacing import Pacer
from drbench.records import RequestRecord
from drbench.selfcheck import LoopSampler, ProcessLoad
from drbench.sse import DEFAULT_MAX_LINE_BYTES

__all__ = ["Executor", "ExecutorInfo", "RoundContext", "RoundRun", "run_round", "sleep_until"]

_SPIN_NS = 2_000_000  # the last 2 ms before a due time are waited by yielding, not by a timer


@dataclass(frozen=True, slots=True)
class RoundContext:
    """What every record of a round needs, in any process (plain data: it is pickled)."""

    level: str  # Level.key
    round: int
    start_ns: int  # perf_counter_ns (CLOCK_MONOTONIC) of the round's start
    max_line_bytes: int


@dataclass(frozen=True)
class ExecutorInfo:
    """Where a run's load came from: summary.json's ``run.executor``, and a line for the
    console when there is something to say (the Ray hosts and their clocks)."""

    details: dict[str, Any]
    line: str | None = None


class Executor(Protocol):
    """Where a round's requests run."""

    #: How long before its due time a request is handed over: 0 when the executor sends it at
    #: once; more when it must cross to another process first (it then waits for the due time).
    lead_s: float

    #: Why releases must stop (``--on-lost-worker stop`` and a worker was lost), else None.
    halted: str | None

    def describe(self) -> ExecutorInfo | None:
        """What the run's summary.json and console say about where the load came from (None:
        this process alone)."""
        ...

    async def open_connections(self, n: int) -> None:
        """Open up to ``n`` connections before a level, spread over the executor's processes."""
        ...

    async def begin_round(self, ctx: RoundContext) -> None: ...

    async def run_one(self, i: int, req: PreparedRequest, due_ns: int | None) -> RequestRecord:
        """Send request ``i`` (not before ``due_ns`` when given) and return its record; I/O
        failures are records, never exceptions."""
        ...

    async def salvage(self) -> list[tuple[int, RequestRecord]]:
        """After a cancelled round: the records of exchanges that ended but were not returned."""
        ...

    async def end_round(self) -> list[ProcessLoad]:
        """The self-check figures of the executor's own processes (none when it is this one)."""
        ...


@dataclass
class RoundRun:
    """What a round produced: the records of the requests sent, in request order."""

    records: list[RequestRecord]
    truncated: bool  # --max-round-duration stopped the releases
    unsent: int  # requests never sent because of that, or of a halt
    halted: str | None  # the executor's reason to stop releasing (a lost worker), if any
    client: list[ProcessLoad]  # self-check: this process first, then the executor's


async def sleep_until(due_ns: int) -> None:
    """Sleep to ``due_ns`` (perf_counter_ns) more precisely than a timer alone: epoll rounds
    its timeout up to a millisecond, so the last ``_SPIN_NS`` are spent yielding to the loop
    (other streams' reads keep being served meanwhile)."""
    while (left := due_ns - perf_counter_ns()) > 0:
        if left > _SPIN_NS:
            await asyncio.sleep((left - _SPIN_NS) / 1e9)
        else:
            await asyncio.sleep(0)


async def run_round(
    requests: Sequence[PreparedRequest],
    pacer: Pacer,
    executor: Executor,
    *,
    level: str,
    round: int,
    on_record: Callable[[RequestRecord], None],
    max_duration_s: float | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> RoundRun:
    """Release every request as ``pacer`` allows; ``on_record`` gets each record as it ends.

    The round's clock starts after a full garbage collection, and the survivors are frozen
    until the round ends: a collection mid-round would stall every stream's timestamps, and one
    at the start would make the first requests late on their schedule.
    """
    gc.collect()
    gc.freeze()
    try:
        ctx = RoundContext(level, round, perf_counter_ns(), max_line_bytes)
        dispatcher = _Dispatcher(requests, pacer, executor, ctx, on_record, max_duration_s)
        await executor.begin_round(ctx)
        sampler = LoopSampler()
        sampler.start()
        try:
            await dispatcher.run()
        finally:
            own = sampler.stop()
        workers = await executor.end_round()
    finally:
        gc.unfreeze()
    sent = [r for r in dispatcher.records if r is not None]
    return RoundRun(
        records=sent,
        truncated=dispatcher.truncated,
        unsent=len(requests) - dispatcher.released,
        halted=executor.halted,
        client=[own, *workers],
    )


class _Dispatcher:
    """The release loop of one round and the bookkeeping of what is in flight."""

    def __init__(
        self,
        requests: Sequence[PreparedRequest],
        pacer: Pacer,
        executor: Executor,
        ctx: RoundContext,
        on_record: Callable[[RequestRecord], None],
        max_duration_s: float | None,
    ) -> None:
        self.requests, self.pacer, self.executor, self.ctx = requests, pacer, executor, ctx
        self.on_record = on_record
        self.deadline_ns = (
            ctx.start_ns + int(max_duration_s * 1e9) if max_duration_s is not None else None
        )
        self.deadline_s = max_duration_s  # the deadline in seconds from the round's start
        self.records: list[RequestRecord | None] = [None] * len(requests)
        self.in_flight = 0
        self.released = 0
        self.truncated = False
        self.tasks: set[asyncio.Task[None]] = set()
        self.room = asyncio.Event()

    async def run(self) -> None:
        finished = False
        try:
            for i, req in enumerate(self.requests):
                due_ns = self.ctx.start_ns + int(self.pacer.due_s(i) * 1e9)
                if not await self._wait_until(due_ns, int(self.executor.lead_s * 1e9)):
                    break
                if not await self._wait_for_room():
                    break
                if self.executor.halted is not None:
                    break
                self._release(i, req, due_ns)
                await asyncio.sleep(0)  # one release per loop iteration
            while self.tasks:
                await asyncio.wait(set(self.tasks))
            finished = True
        finally:
            if not finished:  # cancelled (Ctrl-C): stop what is in flight, keep what ended
                for task in self.tasks:
                    task.cancel()
                await asyncio.gather(*self.tasks, return_exceptions=True)
                for i, rec in await self.executor.salvage():
                    self._keep(i, rec)

    def _release(self, i: int, req: PreparedRequest, due_ns: int) -> None:
        self.in_flight += 1
        self.released += 1
        scheduled = due_ns if self.pacer.has_schedule else None
        task = asyncio.ensure_future(self._one(i, req, scheduled))
        self.tasks.add(task)

    async def _one(self, i: int, req: PreparedRequest, due_ns: int | None) -> None:
        try:
            rec = await self.executor.run_one(i, req, due_ns)
            if due_ns is not None and rec.send_ns is not None:
                rec.scheduled_ms = (due_ns - self.ctx.start_ns) / 1e6
                rec.send_lag_ms = (rec.send_ns - due_ns) / 1e6
            self._keep(i, rec)
        finally:
            self.in_flight -= 1
            self.room.set()
            task = asyncio.current_task()
            if task is not None:
                self.tasks.discard(task)

    def _keep(self, i: int, rec: RequestRecord) -> None:
        if self.records[i] is None:
            self.records[i] = rec
            self.on_record(rec)

    async def _wait_until(self, due_ns: int, lead_ns: int) -> bool:
        """Wait until ``lead_ns`` before a due time; False when the round's deadline comes
        before the due time itself (a request handed over early must not go after it)."""
        if self.deadline_ns is not None and due_ns >= self.deadline_ns:
            await sleep_until(self.deadline_ns)
            self.truncated = True
            return False
        await sleep_until(due_ns - lead_ns)
        return not self._past_deadline()

    async def _wait_for_room(self) -> bool:
        """Wait until the pacer's cap allows one more request in flight; False at the deadline."""
        while True:
            now_s = (perf_counter_ns() - self.ctx.start_ns) / 1e9
            cap = self.pacer.cap_at(now_s)
            if cap is None or self.in_flight < cap:
                return True
            waits = [t for t in (self.pacer.cap_grows_at(now_s), self.deadline_s) if t is not None]
            timeout = max(0.0, min(waits) - now_s) if waits else None
            self.room.clear()
            try:
                await asyncio.wait_for(self.room.wait(), timeout)
            except asyncio.TimeoutError:
                pass
            if self._past_deadline():
                return False

    def _past_deadline(self) -> bool:
        if self.deadline_ns is not None and perf_counter_ns() >= self.deadline_ns:
            self.truncated = True
            return True
        return False
