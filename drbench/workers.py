"""``--workers N``: one level's load sent by N worker processes, each with its own event loop,
aiohttp session and read stamping, so the client's CPU is not one core's.

The main process keeps the dispatcher (``engine.py``): it alone decides when a request goes and
counts what is in flight, so a closed loop keeps at most C requests in flight in total and sends
the next one when any ends (a shared queue, not C/N per worker), and an open loop's one schedule
is split over the workers as it is released.  A request is handed to the worker with the fewest in
flight ``lead_s`` before its due time and the worker sends it at the due time, so the hop between
processes is not part of the send lag.  The main process also keeps the Prometheus watcher (one
scrape per round), the observer, progress and the reports.

Clock contract: every stamp is ``time.perf_counter_ns()``, which on Linux is CLOCK_MONOTONIC, one
clock for every process of a host; a worker's stamps are therefore comparable with the round's
start taken in the main process (tests/test_workers.py checks it).

Messages cross ``multiprocessing`` pipes as plain tuples; records cross as dicts
(``RequestRecord.to_dict``).  Workers ignore SIGINT: on Ctrl-C the main process asks each to stop
what is in flight and to send every record it finished, then to exit; a worker whose pipe closes
exits by itself, and one that dies fails its in-flight requests (``connection``), never the run.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from drbench.client import Endpoint, PreparedRequest, make_session, open_connections, send
from drbench.engine import ExecutorInfo, RoundContext
from drbench.errors import DrbenchError
from drbench.executors import InProcess
from drbench.plan import RunPlan
from drbench.records import ErrorKind, RequestRecord
from drbench.selfcheck import LoopSampler, ProcessLoad

if TYPE_CHECKING:
    import aiohttp

    from drbench.tokens import TokenCounter

__all__ = ["WorkerPool", "WorkerSide", "WorkerSpec", "local_executor", "lost_record"]

_START_TIMEOUT_S = 60.0  # spawning imports drbench and aiohttp in every worker
_DRAIN_TIMEOUT_S = 10.0  # how long a cancelled round waits for the workers' last records


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to send and parse (plain data: it is pickled into the process)."""

    index: int
    endpoint: Endpoint
    timeout_s: float
    max_response_bytes: int
    tokenizer: str | None  # the --tokenizer path: a tokenizer is rebuilt, not pickled


@dataclass
class _Worker:
    """The main process's end of one worker."""

    spec: WorkerSpec
    process: multiprocessing.process.BaseProcess
    conn: Connection
    futures: dict[int, asyncio.Future[RequestRecord]] = field(default_factory=dict)
    sent: dict[int, PreparedRequest] = field(default_factory=dict)  # in flight, by index
    alive: bool = True
    ready: asyncio.Future[None] | None = None
    reply: asyncio.Future[Any] | None = None  # the answer to "end" or "cancel"


class WorkerPool:
    """An executor whose requests are sent by worker processes."""

    lead_s = 0.02

    def __init__(self, workers: list[_Worker], plan: RunPlan) -> None:
        self.workers = workers
        self.plan = plan
        self._late: list[tuple[int, RequestRecord]] = []  # records of cancelled requests
        self._ctx: RoundContext | None = None
        self._loop = asyncio.get_running_loop()
        self.halted: str | None = None  # set when a worker dies under --on-lost-worker stop

    @classmethod
    @asynccontextmanager
    async def start(cls, plan: RunPlan, n: int) -> AsyncIterator[WorkerPool]:
        """Spawn ``n`` workers, wait until each is ready, and stop them all on the way out."""
        cfg = plan.config
        ctx = multiprocessing.get_context("spawn")  # fork would copy this running loop
        workers: list[_Worker] = []
        pool = cls(workers, plan)
        try:
            for k in range(n):
                spec = WorkerSpec(
                    k, plan.endpoint, cfg.timeout, cfg.max_response_bytes, cfg.tokenizer
                )
                here, there = ctx.Pipe()
                process = ctx.Process(
                    target=worker_main, args=(there, spec), name=f"drbench-worker-{k}", daemon=True
                )
                process.start()
                there.close()
                worker = _Worker(spec, process, here, ready=pool._loop.create_future())
                workers.append(worker)
                pool._loop.add_reader(here.fileno(), pool._readable, worker)
            await pool._all_ready()
            yield pool
        finally:
            await pool._stop()

    def describe(self) -> ExecutorInfo:
        return ExecutorInfo({"kind": "workers", "workers": len(self.workers)})

    async def open_connections(self, n: int) -> None:
        alive = [w for w in self.workers if w.alive]
        if alive and n > 0:
            await self._ask("connect", -(-n // len(alive)))

    async def begin_round(self, ctx: RoundContext) -> None:
        self._ctx = ctx
        self._late.clear()
        self._broadcast(("round", ctx))

    async def run_one(self, i: int, req: PreparedRequest, due_ns: int | None) -> RequestRecord:
        alive = [w for w in self.workers if w.alive]
        if not alive:
            return lost_record(self._ctx, req, "every worker process exited")
        worker = min(alive, key=lambda w: len(w.futures))
        fut: asyncio.Future[RequestRecord] = self._loop.create_future()
        worker.futures[i] = fut
        worker.sent[i] = req
        try:
            worker.conn.send(("go", i, due_ns, req.for_sender()))
        except OSError:
            self._died(worker)
        try:
            return await fut
        finally:
            worker.futures.pop(i, None)
            worker.sent.pop(i, None)

    async def salvage(self) -> list[tuple[int, RequestRecord]]:
        """Ask every worker to stop what is in flight and to send what it finished."""
        await self._ask("cancel")
        late, self._late = self._late, []
        return late

    async def end_round(self) -> list[ProcessLoad]:
        replies = await self._ask("end")
        loads = []
        for reply in replies:
            if reply is not None:
                load, timing = reply
                loads.append(ProcessLoad.from_dict(load))
                self.plan.timing.update(timing)
        return loads

    # -- the main process's side of the pipes --------------------------------------------------

    def _readable(self, worker: _Worker) -> None:
        try:
            while worker.conn.poll():
                self._handle(worker, worker.conn.recv())
        except (EOFError, OSError):
            self._died(worker)

    def _handle(self, worker: _Worker, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "rec":
            _, i, d = msg
            rec = RequestRecord.from_dict(d)
            fut = worker.futures.pop(i, None)
            if fut is not None and not fut.done():
                fut.set_result(rec)
            else:
                self._late.append((i, rec))
        elif kind == "ready" and worker.ready is not None and not worker.ready.done():
            worker.ready.set_result(None)
        elif kind in ("ended", "cancelled", "connected") and worker.reply is not None:
            if not worker.reply.done():
                worker.reply.set_result(msg[1] if len(msg) > 1 else True)

    def _died(self, worker: _Worker) -> None:
        if not worker.alive:
            return
        worker.alive = False
        with suppress(ValueError, OSError):
            self._loop.remove_reader(worker.conn.fileno())
        code = worker.process.exitcode
        why = f"worker process {worker.spec.index} exited" + (
            f" (exit code {code})" if code is not None else ""
        )
        if self.plan.config.on_lost_worker == "stop" and self.halted is None:
            self.halted = why
        for i, fut in worker.futures.items():
            if not fut.done():
                fut.set_result(lost_record(self._ctx, worker.sent.get(i), why, worker.spec.index))
        worker.futures.clear()
        for pending in (worker.ready, worker.reply):
            if pending is not None and not pending.done():
                pending.set_result(None)

    def _broadcast(self, msg: tuple[Any, ...]) -> None:
        for worker in self.workers:
            if worker.alive:
                try:
                    worker.conn.send(msg)
                except OSError:
                    self._died(worker)

    async def _ask(self, kind: str, *args: Any) -> list[Any]:
        """Send ``kind`` to every live worker and wait for each one's answer (None: no answer)."""
        for worker in self.workers:
            worker.reply = self._loop.create_future() if worker.alive else None
        self._broadcast((kind, *args))
        pending = [w.reply for w in self.workers if w.reply is not None]
        if pending:
            await asyncio.wait(pending, timeout=_DRAIN_TIMEOUT_S)
        return [
            w.reply.result() if w.reply is not None and w.reply.done() else None
            for w in self.workers
        ]

    async def _all_ready(self) -> None:
        waits = [w.ready for w in self.workers if w.ready is not None]
        done, _ = await asyncio.wait(waits, timeout=_START_TIMEOUT_S)
        late = [w.spec.index for w in self.workers if not (w.alive and w.ready in done)]
        if late or not all(w.alive for w in self.workers):
            raise DrbenchError(
                f"worker process(es) {', '.join(map(str, late))} did not start within "
                f"{_START_TIMEOUT_S:g} s; try fewer --workers"
            )

    async def _stop(self) -> None:
        self._broadcast(("stop",))
        for worker in self.workers:
            with suppress(ValueError, OSError):
                self._loop.remove_reader(worker.conn.fileno())
        deadline = self._loop.time() + 5.0
        for worker in self.workers:
            while worker.process.is_alive() and self._loop.time() < deadline:
                await asyncio.sleep(0.02)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(1.0)
            worker.conn.close()


def lost_record(
    ctx: RoundContext | None,
    req: PreparedRequest | None,
    why: str,
    worker: int | None = None,
) -> RequestRecord:
    """The record of a request a dead worker (``worker``: its index, when it had been sent to
    one) took with it."""
    now = perf_counter_ns()
    return RequestRecord(
        prompt_id=req.prompt_id if req is not None else "",
        level=ctx.level if ctx is not None else "",
        round=ctx.round if ctx is not None else 0,
        start_ms=(now - ctx.start_ns) / 1e6 if ctx is not None else 0.0,
        error_kind=ErrorKind.CONNECTION,
        error=why,
        send_ns=now,
        max_tokens=req.max_tokens if req is not None else None,
        worker=worker,
    )


# -- the worker process ------------------------------------------------------------------------


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """A worker process's entry point: serve the main process until it says stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides what Ctrl-C does
    with suppress(KeyboardInterrupt, BrokenPipeError, EOFError):
        asyncio.run(_serve(conn, spec))


class WorkerSide:
    """A worker's executor and the bookkeeping of its rounds, whatever carries the messages
    (this module's pipe, or a Ray actor's method calls: ``ray_executor.py``)."""

    def __init__(self, spec: WorkerSpec, executor: InProcess) -> None:
        self.spec = spec
        self.executor = executor
        self.tasks: set[asyncio.Task[RequestRecord]] = set()
        self.sampler: LoopSampler | None = None

    async def run(self, i: int, req: PreparedRequest, due_ns: int | None) -> RequestRecord:
        """Send request ``i`` (at ``due_ns`` on this process's clock) and return its record."""
        task = asyncio.ensure_future(self.executor.run_one(i, req, due_ns))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return await task

    def collect(self) -> None:
        """A full collection between rounds (at start, and as each round ends), so the next
        round's start only freezes the heap, as engine.run_round does in the main process, and
        its first requests do not wait for a collection."""
        gc.collect()

    async def begin(self, ctx: RoundContext) -> None:
        gc.freeze()
        await self.executor.begin_round(ctx)
        self.sampler = LoopSampler(worker=self.spec.index)
        self.sampler.start()

    async def end(self) -> tuple[dict[str, Any], dict[str, int]]:
        """The round's self-check figures (a ``ProcessLoad`` dict) and its stamp-source counts."""
        load = self.sampler.stop() if self.sampler is not None else None
        self.sampler = None
        await self.executor.end_round()
        gc.unfreeze()
        self.collect()
        timing = dict(self.executor.timing)
        self.executor.timing.clear()
        return (load.to_dict() if load else _idle(self.spec)), timing

    async def cancel(self) -> list[tuple[int, RequestRecord]]:
        """Stop what is in flight; every record of the round, parsed."""
        await self.stop_all()
        return await self.executor.salvage()

    async def stop_all(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _serve(conn: Connection, spec: WorkerSpec) -> None:
    from drbench.tokens import load_counter  # noqa: PLC0415 - only with --tokenizer

    tokenizer = load_counter(spec.tokenizer) if spec.tokenizer else None
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[Any, ...] | None] = asyncio.Queue()

    def readable() -> None:
        try:
            while conn.poll():
                inbox.put_nowait(conn.recv())
        except (EOFError, OSError):  # the main process is gone
            loop.remove_reader(conn.fileno())
            inbox.put_nowait(None)

    async with make_session(spec.timeout_s) as session:
        side = WorkerSide(spec, local_executor(spec, session, tokenizer))
        relays: set[asyncio.Task[None]] = set()

        async def one(i: int, req: PreparedRequest, due_ns: int | None) -> None:
            with suppress(asyncio.CancelledError):  # "cancel" salvages it
                rec = await side.run(i, req, due_ns)
                conn.send(("rec", i, rec.to_dict()))

        loop.add_reader(conn.fileno(), readable)
        side.collect()
        conn.send(("ready",))
        while (msg := await inbox.get()) is not None:
            kind = msg[0]
            if kind == "go":
                _, i, due_ns, req = msg
                relay = asyncio.ensure_future(one(i, req, due_ns))
                relays.add(relay)
                relay.add_done_callback(relays.discard)
            elif kind == "round":
                await side.begin(msg[1])
            elif kind == "end":
                conn.send(("ended", await side.end()))
            elif kind == "cancel":
                for i, rec in await side.cancel():
                    conn.send(("rec", i, rec.to_dict()))
                conn.send(("cancelled",))
            elif kind == "connect":
                await side.executor.open_connections(msg[1])
                conn.send(("connected",))
            elif kind == "stop":
                break
        await side.stop_all()
        await asyncio.gather(*relays, return_exceptions=True)


def local_executor(
    spec: WorkerSpec, session: aiohttp.ClientSession, tokenizer: TokenCounter | None
) -> InProcess:
    """The in-process executor a worker runs, on its own session."""
    transport = partial(
        send,
        session,
        spec.endpoint,
        timeout_s=spec.timeout_s,
        max_bytes=spec.max_response_bytes,
    )
    connect = partial(open_connections, session, spec.endpoint)
    return InProcess(transport, tokenizer=tokenizer, worker=spec.index, connect=connect)


def _idle(spec: WorkerSpec) -> dict[str, Any]:
    return ProcessLoad(spec.index, 0.0, 0.0, None, None, None, 0).to_dict()
