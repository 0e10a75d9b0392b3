"""``--executor ray``: one level's load sent by Ray actors on the hosts of a Ray cluster.

Each actor is what a ``--workers`` process is (``workers.WorkerSide``): the in-process executor on
its own event loop, aiohttp session and read stamping.  This process (the driver) keeps the
dispatcher (``engine.py``), so one level is one load across every actor: a closed loop keeps at
most C in flight in total, the driver being the shared queue (a request goes to the actor with
the fewest in flight when any request ends), and an open loop's one schedule is split over the
actors as it is released.  A round ends only when every actor's requests have ended and each has
answered ``end_round``, so round 2 starts on no host before round 1 finished on all of them.

Clocks (``clocks.py``): an actor under this kernel shares its CLOCK_MONOTONIC (offset 0, exact);
one on another host has its offset measured at start and again after every round (the fastest of
a few round trips; the error bound is half that trip).  The actor gets the round's start and each
due time on its own clock, so its records' times are relative to the driver's round start and a
due time is kept on every host; its absolute ``send_ns`` is mapped back.

Each record comes back as its own Ray reply (pickled by us: one bytes value each way is cheaper
for the driver than Ray's serialization of each argument) as its request ends, so
``requests.jsonl`` stays crash-safe.  A lost actor (its process or host gone: Ray raises ``RayActorError``) fails its
in-flight requests (``connection``) and the round goes on without it, or stops under
``--on-lost-worker stop``; a reply that never comes is given up after the request's timeout and a
grace period, so nothing waits for a host forever.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from drbench.client import PreparedRequest, make_session
from drbench.clocks import ClockOffset, ClockSample, boot_id, estimate_offset
from drbench.engine import ExecutorInfo, RoundContext
from drbench.errors import DrbenchError, UsageError
from drbench.messages import Message
from drbench.plan import RunPlan
from drbench.records import RequestRecord
from drbench.redact import redact_text
from drbench.selfcheck import ProcessLoad
from drbench.workers import WorkerSide, WorkerSpec, local_executor, lost_record

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["RAY_HINT", "RayPool", "RayWorker", "check_address", "import_ray", "runtime_env"]

_START_TIMEOUT_S = 120.0  # placing actors may wait for a node, and each imports drbench
_CLOCK_SAMPLES = 7
_MAX_CONCURRENCY = 100_000  # an actor's concurrent calls: never the limit (the pacer is)
_PACKAGE = Path(__file__).resolve().parent
RAY_HINT = 'pip install ".[ray]" (or pip install ray) on this machine and on every host'


def import_ray() -> ModuleType:
    """The ``ray`` module, or a one-line UsageError saying how to install it."""
    try:
        import ray  # noqa: PLC0415 - optional: only --executor ray needs it
    except ImportError:
        raise UsageError(f"--executor ray needs Ray, which is not installed: {RAY_HINT}") from None
    return ray


class RayWorker:
    """The body of one actor (made a Ray actor class by ``ray.remote`` at start, so this module
    imports without Ray).  Every method is a coroutine: Ray runs them on the actor's event loop,
    where the session, the parser task and the stamping live."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self._stack = AsyncExitStack()
        self._side: WorkerSide | None = None
        self._ctx: RoundContext | None = None
        self._begun: asyncio.Future[None] | None = None  # the current round's begin

    async def start(self) -> dict[str, Any]:
        """Open the session; where this actor runs (host name, Ray node, pid, kernel boot id)."""
        from drbench.tokens import load_counter  # noqa: PLC0415 - only with --tokenizer

        tokenizer = load_counter(self.spec.tokenizer) if self.spec.tokenizer else None
        session = await self._stack.enter_async_context(make_session(self.spec.timeout_s))
        self._side = WorkerSide(self.spec, local_executor(self.spec, session, tokenizer))
        self._side.collect()
        import ray  # noqa: PLC0415 - in an actor, Ray is there

        return {
            "host": socket.gethostname(),
            "node": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
            "boot_id": boot_id(),
        }

    async def now(self) -> int:
        return perf_counter_ns()

    async def connect(self, n: int) -> None:
        await self._require().executor.open_connections(n)

    async def begin_round(self, ctx: RoundContext) -> None:
        await self._enter(ctx)

    async def run(self, call: bytes) -> bytes:
        """Send one request and return its record, both pickled here rather than by Ray (one
        bytes argument each way instead of four Ray-serialized ones): ``call`` is (round
        context, i, due_ns on this host's clock, the request).

        The round comes with the request because Ray does not keep the order of an async
        actor's calls: the first of the round to arrive begins it."""
        ctx, i, due_ns, req = pickle.loads(call)
        await self._enter(ctx)
        rec = await self._require().run(i, req, due_ns)
        return pickle.dumps(rec, protocol=pickle.HIGHEST_PROTOCOL)

    async def end_round(self) -> tuple[dict[str, Any], dict[str, int]]:
        self._ctx, self._begun = None, None
        return await self._require().end()

    async def cancel(self) -> bytes:
        """Stop what is in flight; every record of the round, as (i, record) pairs, pickled."""
        return pickle.dumps(await self._require().cancel(), protocol=pickle.HIGHEST_PROTOCOL)

    async def stop(self) -> None:
        if self._side is not None:
            await self._side.stop_all()
        await self._stack.aclose()

    async def _enter(self, ctx: RoundContext) -> None:
        """Begin round ``ctx`` once, whichever of its calls comes first; the others wait."""
        if self._ctx != ctx or self._begun is None:
            self._ctx = ctx
            self._begun = asyncio.ensure_future(self._require().begin(ctx))
        await self._begun

    def _require(self) -> WorkerSide:
        if self._side is None:
            raise RuntimeError("RayWorker.start() first")
        return self._side


@dataclass
class _Actor:
    """The driver's end of one actor."""

    index: int
    handle: Any  # ray.actor.ActorHandle
    host: str = "?"  # its host name, as the reports show it
    node: str = ""  # its Ray node id: what a host is
    pid: int | None = None
    clock: ClockOffset = field(default_factory=ClockOffset)
    in_flight: int = 0
    alive: bool = True
    why_lost: str = ""


class RayPool:
    """An executor whose requests are sent by Ray actors."""

    lead_s = 0.05  # a Ray call to another host, with room for a busy driver
    #: How long an actor may take to answer a call beyond the work itself (a request waits its
    #: --timeout plus this); one that does not is lost: stopped, hung or cut off from here.
    reply_grace_s = 30.0

    def __init__(self, ray: ModuleType, actors: list[_Actor], plan: RunPlan) -> None:
        self.ray = ray
        self.actors = actors
        self.plan = plan
        self.halted: str | None = None
        self._ctx: RoundContext | None = None

    @classmethod
    @asynccontextmanager
    async def start(
        cls, plan: RunPlan, *, per_host: int, hosts: int | None, address: str | None
    ) -> AsyncIterator[RayPool]:
        """Join (or start) the cluster, place ``per_host`` actors on each of ``hosts`` hosts,
        wait until each is ready, and stop them all on the way out."""
        ray = import_ray()
        owns = not ray.is_initialized()
        if owns:
            _init(ray, address)
        pool = cls(ray, [], plan)
        group = None
        try:
            group = await _place(ray, per_host, hosts)
            await pool._start_actors(group, per_host)
            await pool._measure_clocks()
            yield pool
        finally:
            await pool._stop()
            if group is not None:
                with suppress(Exception):
                    ray.util.remove_placement_group(group)
            if owns:
                ray.shutdown()

    @property
    def hosts(self) -> dict[str, int]:
        """Actors per host (by its shown name), in order."""
        out: dict[str, int] = {}
        for actor in self.actors:
            out[actor.host] = out.get(actor.host, 0) + 1
        return out

    def describe(self) -> ExecutorInfo:
        hosts = self.hosts
        shared = all(a.clock.shared for a in self.actors)
        worst = max((a.clock.error_ms for a in self.actors), default=0.0)
        clocks = (
            Message("ray_clock_shared") if shared else Message("ray_clock_error", ms=f"{worst:.3f}")
        )
        line = Message(
            "ray_started",
            actors=len(self.actors),
            hosts=len(hosts),
            where=", ".join(f"{host} x{n}" for host, n in hosts.items()),
            clocks=clocks,
        )
        details = {
            "kind": "ray",
            "hosts": len(hosts),
            "actors": [
                {
                    "index": a.index,
                    "host": a.host,
                    "node_id": a.node,
                    "pid": a.pid,
                    "shared_clock": a.clock.shared,
                    "clock_offset_ms": round(a.clock.offset_ms, 6),
                    "clock_error_ms": round(a.clock.error_ms, 6),
                }
                for a in self.actors
            ],
        }
        return ExecutorInfo(details, line)

    async def open_connections(self, n: int) -> None:
        alive = self._alive()
        if alive and n > 0:
            each = -(-n // len(alive))
            await self._ask(alive, lambda a: a.handle.connect.remote(each))

    async def begin_round(self, ctx: RoundContext) -> None:
        self._ctx = ctx
        for actor in self._alive():  # not awaited: each actor's first request begins it anyway
            actor.handle.begin_round.remote(self._remote_ctx(actor, ctx))

    async def run_one(self, i: int, req: PreparedRequest, due_ns: int | None) -> RequestRecord:
        alive = self._alive()
        if not alive:
            return lost_record(self._ctx, req, "every Ray actor was lost")
        ctx = self._ctx
        assert ctx is not None, "begin_round first"
        actor = min(alive, key=lambda a: a.in_flight)
        remote_due = actor.clock.to_remote(due_ns) if due_ns is not None else None
        actor.in_flight += 1
        wait_s = self.lead_s + self.plan.config.timeout + self.reply_grace_s
        call = (self._remote_ctx(actor, ctx), i, remote_due, req.for_sender())
        ref = actor.handle.run.remote(pickle.dumps(call, protocol=pickle.HIGHEST_PROTOCOL))
        try:
            reply = await asyncio.wait_for(_awaitable(ref), wait_s)
        except asyncio.TimeoutError:
            with suppress(Exception):
                self.ray.cancel(ref)
            self._lost(actor, f"sent no reply in {wait_s:g} s")
            return lost_record(ctx, req, actor.why_lost, actor.index)
        except self.ray.exceptions.RayActorError as exc:
            self._lost(actor, f"was lost ({type(exc).__name__})")
            return lost_record(ctx, req, actor.why_lost, actor.index)
        except self.ray.exceptions.RayError as exc:  # our code raised in the actor: a bug
            why = f"Ray actor {actor.index} on host {actor.host} failed: {_gist(exc)}"
            return lost_record(ctx, req, why, actor.index)
        finally:
            actor.in_flight -= 1
        return _on_driver_clock(actor, pickle.loads(reply))

    async def salvage(self) -> list[tuple[int, RequestRecord]]:
        """Ask every actor to stop what is in flight and to send every record it finished."""
        replies = await self._ask(self._alive(), lambda a: a.handle.cancel.remote())
        return [
            (i, _on_driver_clock(actor, rec))
            for actor, reply in replies
            if reply is not None
            for i, rec in pickle.loads(reply)
        ]

    async def end_round(self) -> list[ProcessLoad]:
        replies = await self._ask(self._alive(), lambda a: a.handle.end_round.remote())
        loads = []
        for actor, reply in replies:
            if reply is None:
                continue
            load, timing = reply
            loads.append(
                replace(
                    ProcessLoad.from_dict(load),
                    host=actor.host,
                    clock_offset_ms=actor.clock.offset_ms,
                    clock_error_ms=actor.clock.error_ms,
                )
            )
            self.plan.timing.update(timing)
        await self._measure_clocks()  # for the next round: hosts' clocks drift apart
        return loads

    # -- the driver's side ---------------------------------------------------------------------

    def _alive(self) -> list[_Actor]:
        return [a for a in self.actors if a.alive]

    def _remote_ctx(self, actor: _Actor, ctx: RoundContext) -> RoundContext:
        return replace(ctx, start_ns=actor.clock.to_remote(ctx.start_ns))

    def _lost(self, actor: _Actor, what: str) -> None:
        """Send ``actor`` nothing more (``what`` happened to it: "was lost (ActorDiedError)")."""
        if not actor.alive:
            return
        actor.alive = False
        actor.why_lost = f"Ray actor {actor.index} on host {actor.host} {what}"
        if self.plan.config.on_lost_worker == "stop" and self.halted is None:
            self.halted = actor.why_lost

    async def _ask(self, actors: list[_Actor], call: Any) -> list[tuple[_Actor, Any]]:
        """``call(actor)`` on each actor at once; each one's reply, None for one that died or
        did not answer in time (both are marked lost)."""

        async def one(actor: _Actor) -> tuple[_Actor, Any]:
            try:
                return actor, await asyncio.wait_for(_awaitable(call(actor)), self.reply_grace_s)
            except self.ray.exceptions.RayActorError as exc:
                self._lost(actor, f"was lost ({type(exc).__name__})")
            except asyncio.TimeoutError:
                self._lost(actor, f"sent no reply in {self.reply_grace_s:g} s")
            except self.ray.exceptions.RayError:
                pass
            return actor, None

        return list(await asyncio.gather(*(one(a) for a in actors)))

    async def _start_actors(self, group: Any, per_host: int) -> None:
        from ray.util.scheduling_strategies import (  # noqa: PLC0415
            PlacementGroupSchedulingStrategy,
        )

        cfg = self.plan.config
        remote = self.ray.remote(RayWorker)
        tag = self.plan.run_token or str(os.getpid())
        for k in range(len(group.bundle_specs) * per_host):
            spec = WorkerSpec(
                k, self.plan.endpoint, cfg.timeout, cfg.max_response_bytes, cfg.tokenizer
            )
            handle = remote.options(
                name=f"drbench-{tag}-worker-{k}",  # `ray list actors` shows whose it is
                num_cpus=1,
                max_concurrency=_MAX_CONCURRENCY,
                max_restarts=0,
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    placement_group=group, placement_group_bundle_index=k // per_host
                ),
            ).remote(spec)
            self.actors.append(_Actor(k, handle))
        try:
            infos = await asyncio.wait_for(
                asyncio.gather(*(_awaitable(a.handle.start.remote()) for a in self.actors)),
                _START_TIMEOUT_S,
            )
        except asyncio.TimeoutError:
            raise DrbenchError(
                f"the Ray actors did not start within {_START_TIMEOUT_S:g} s; see `ray status`"
            ) from None
        except self.ray.exceptions.RayError as exc:
            raise DrbenchError(f"a Ray actor could not start: {_gist(exc)}") from None
        here = boot_id()
        for actor, info in zip(self.actors, infos, strict=True):
            actor.host, actor.node, actor.pid = str(info["host"]), str(info["node"]), info["pid"]
            if here is not None and info.get("boot_id") == here:
                actor.clock = ClockOffset(shared=True)
        _tell_apart(self.actors)

    async def _measure_clocks(self) -> None:
        """Each other host's offset, measured once per Ray node (its actors share its clock)
        through one of its actors; a node whose measure fails keeps the offset it had."""
        by_node: dict[str, list[_Actor]] = {}
        for actor in self._alive():
            if not actor.clock.shared:
                by_node.setdefault(actor.node, []).append(actor)
        for actors in by_node.values():
            if (clock := await self._measure(actors[0])) is not None:
                for actor in actors:
                    actor.clock = clock

    async def _measure(self, actor: _Actor) -> ClockOffset | None:
        """``actor``'s clock offset from the fastest of a few round trips (None: no answer)."""
        samples = []
        try:
            for _ in range(_CLOCK_SAMPLES):
                sent = perf_counter_ns()
                remote = await asyncio.wait_for(
                    _awaitable(actor.handle.now.remote()), self.reply_grace_s
                )
                samples.append(ClockSample(sent, remote, perf_counter_ns()))
        except self.ray.exceptions.RayActorError as exc:
            self._lost(actor, f"was lost ({type(exc).__name__})")
            return None
        except asyncio.TimeoutError:
            self._lost(actor, f"sent no reply in {self.reply_grace_s:g} s")
            return None
        except self.ray.exceptions.RayError:
            return None
        return estimate_offset(samples)

    async def _stop(self) -> None:
        await self._ask(self._alive(), lambda a: a.handle.stop.remote())
        for actor in self.actors:
            with suppress(Exception):
                self.ray.kill(actor.handle)


def check_address(address: str | None, timeout_s: float = 5.0) -> None:
    """A one-line UsageError when nothing listens at a ``HOST:PORT`` (or ``ray://HOST:PORT``)
    address: ray.init would retry it for about 20 s, printing a line a second.  ``auto``, a
    missing address and one without a port are left to Ray."""
    if not address or address == "auto":
        return
    hostport = address.removeprefix("ray://").rsplit("@", 1)[-1].split("/", 1)[0]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(
            f"--ray-address {redact_text(address)}: nothing answers at {host}:{port} "
            f"({reason}); is the head running (`ray start --head` prints its address)?"
        ) from None


def runtime_env() -> dict[str, Any]:
    """What every actor's Python gets: this drbench package, shipped through the cluster, so
    each host runs the driver's code (its other dependencies must be installed there)."""
    return {"py_modules": [str(_PACKAGE)], "excludes": ["__pycache__"]}


def _on_driver_clock(actor: _Actor, rec: RequestRecord) -> RequestRecord:
    """``rec`` from ``actor``, its one absolute stamp (``send_ns``) mapped onto this clock (its
    other times are relative to the round's start, which the actor got on its own clock)."""
    if rec.send_ns is not None:
        rec.send_ns = actor.clock.to_driver(rec.send_ns)
    return rec


def _tell_apart(actors: list[_Actor]) -> None:
    """Name each host once: Ray nodes that share a host name (containers, or several nodes of
    one machine) get their node id's first characters after it (``vm#3f2a1c``)."""
    nodes: dict[str, set[str]] = {}
    for actor in actors:
        nodes.setdefault(actor.host, set()).add(actor.node)
    for actor in actors:
        if len(nodes[actor.host]) > 1:
            actor.host = f"{actor.host}#{actor.node[:6]}"


def _init(ray: ModuleType, address: str | None) -> None:
    """Join the cluster at ``address`` (None: ray.init's own choice)."""
    try:
        ray.init(
            address=address,
            namespace="drbench",
            runtime_env=runtime_env(),
            include_dashboard=False,
            log_to_driver=False,
            logging_level="WARNING",
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        hint = ""
        refused = getattr(ray.exceptions, "AuthenticationError", ())  # newer Ray only
        if isinstance(exc.__cause__, refused):
            hint = (
                " (the cluster wants its token: export RAY_AUTH_MODE=token, with the token in "
                "~/.ray/auth_token or RAY_AUTH_TOKEN, or give --ray-address auto on one of "
                "its hosts)"
            )
        raise UsageError(
            f"--ray-address {address or '(not given)'}: could not join the Ray cluster: "
            f"{_gist(exc)}{hint}"
        ) from None


async def _place(ray: ModuleType, per_host: int, hosts: int | None) -> Any:
    """A placement group of one bundle of ``per_host`` CPUs on each of ``hosts`` different
    hosts (every live host with that many CPUs when None)."""
    fit = [
        n
        for n in ray.nodes()
        if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= per_host
    ]
    want = hosts if hosts is not None else len(fit)
    if want < 1 or want > len(fit):
        raise UsageError(
            f"--ray-hosts {want}: the Ray cluster has {len(fit)} live host(s) with {per_host} "
            f"CPU(s) free for --workers {per_host}: give fewer hosts or fewer workers per host"
        )
    group = ray.util.placement_group([{"CPU": per_host}] * want, strategy="STRICT_SPREAD")
    try:
        await asyncio.wait_for(_awaitable(group.ready()), _START_TIMEOUT_S)
    except asyncio.TimeoutError:
        ray.util.remove_placement_group(group)
        raise DrbenchError(
            f"Ray could not place {per_host} actor(s) on each of {want} host(s) within "
            f"{_START_TIMEOUT_S:g} s (their CPUs are taken?); see `ray status`"
        ) from None
    return group


async def _awaitable(ref: Any) -> Any:
    """An ObjectRef as a coroutine (``asyncio.wait_for`` wants one to cancel)."""
    return await ref


def _gist(exc: BaseException) -> str:
    """The line that says what went wrong (Ray puts the remote traceback before it)."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__
