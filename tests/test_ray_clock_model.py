"""The clock model of ``--executor ray`` on a host whose clock is far from the driver's.

One machine cannot have two clocks, so the actor here is a stand-in with a clock 5 s ahead (an
in-process handle with Ray's call shape, no Ray needed): it checks what it is told on its own
clock and answers on it, and the real ``RayPool`` and dispatcher must map both ways, so a
request sent 1 ms after its due time has a send lag of 1 ms, not 5 s.
"""

from __future__ import annotations

import asyncio
import pickle
from dataclasses import dataclass, field
from time import perf_counter_ns
from types import SimpleNamespace
from typing import Any

from drbench.client import Endpoint, PreparedRequest
from drbench.clocks import ClockOffset
from drbench.config import BenchConfig
from drbench.engine import run_round
from drbench.pacing import ClosedLoop, OpenLoop
from drbench.plan import RunPlan
from drbench.ray_executor import RayPool, _Actor
from drbench.records import RequestRecord

SKEW_NS = 5_000_000_000  # the actor's clock is 5 s ahead of the driver's
LATE_NS = 1_000_000  # it sends each request 1 ms after its due time (on its own clock)


class _ActorDied(Exception):
    pass


FAKE_RAY = SimpleNamespace(
    exceptions=SimpleNamespace(RayActorError=_ActorDied, RayError=Exception),
    cancel=lambda ref: None,
    kill=lambda handle: None,
)


def _method(fn: Any) -> SimpleNamespace:
    """``handle.name.remote(*args)`` as Ray spells it: an awaitable of the result."""
    return SimpleNamespace(remote=lambda *args: fn(*args))


@dataclass
class SkewedActor:
    """An actor whose clock reads ``perf_counter_ns() + SKEW_NS``."""

    seen: list[tuple[int, int | None, int]] = field(default_factory=list)  # start, due, i

    def __post_init__(self) -> None:
        self.run = _method(self._run)
        self.now = _method(self._now)
        self.end_round = _method(self._end_round)
        self.begin_round = SimpleNamespace(remote=lambda ctx: None)  # its ref is not awaited

    async def _now(self) -> int:
        return perf_counter_ns() + SKEW_NS

    async def _run(self, call: bytes) -> bytes:
        ctx, i, due_ns, req = pickle.loads(call)
        self.seen.append((ctx.start_ns, due_ns, i))
        now = perf_counter_ns() + SKEW_NS
        send = (due_ns if due_ns is not None else now) + LATE_NS
        rec = RequestRecord(
            prompt_id=req.prompt_id,
            level=ctx.level,
            round=ctx.round,
            start_ms=(send - ctx.start_ns) / 1e6,
            end_ms=(send - ctx.start_ns) / 1e6 + 10.0,
            ttft_ms=5.0,
            latency_ms=10.0,
            status=200,
            send_ns=send,
            worker=0,
        )
        await asyncio.sleep(0)
        return pickle.dumps(rec)

    async def _end_round(self) -> tuple[dict[str, Any], dict[str, int]]:
        load = {
            "worker": 0,
            "duration_s": 1.0,
            "cpu_s": 0.1,
            "loop_lag_p50_ms": 0.1,
            "loop_lag_p99_ms": 0.2,
            "loop_lag_max_ms": 0.3,
            "samples": 100,
        }
        return load, {}


def _pool(actor: SkewedActor, clock: ClockOffset) -> RayPool:
    endpoint = Endpoint.parse("http://127.0.0.1:9/v1/chat/completions")
    plan = RunPlan(BenchConfig(), endpoint, "m", [])
    return RayPool(FAKE_RAY, [_Actor(0, actor, host="far-host", clock=clock)], plan)


def _requests(n: int) -> list[PreparedRequest]:
    return [PreparedRequest.of(f"p{i}", {"prompt": "hi", "max_tokens": 4}) for i in range(n)]


def test_due_times_and_the_round_start_reach_the_actor_on_its_clock_and_come_back() -> None:
    actor = SkewedActor()
    pool = _pool(actor, ClockOffset(SKEW_NS, 50_000))
    offsets = (0.0, 0.01, 0.02, 0.05)
    records: list[RequestRecord] = []

    async def go() -> Any:
        return await run_round(
            _requests(4), OpenLoop(offsets), pool, level="rate=10", round=1,
            on_record=records.append,
        )  # fmt: skip

    run = asyncio.run(go())
    starts = {start for start, _, _ in actor.seen}
    assert len(starts) == 1  # one round start, on the actor's clock
    (remote_start,) = starts
    assert remote_start > perf_counter_ns() + SKEW_NS // 2  # on the actor's clock, not ours
    for _, due, i in actor.seen:
        assert due is not None
        assert due - remote_start == round(offsets[i] * 1e9)  # the schedule, on its clock
    for rec in run.records:  # mapped back: 1 ms late, and a send instant on the driver's clock
        assert rec.send_lag_ms is not None
        assert abs(rec.send_lag_ms - LATE_NS / 1e6) < 1e-3
        assert rec.start_ms == rec.scheduled_ms + LATE_NS / 1e6  # on the driver's round
    assert [r.scheduled_ms for r in sorted(run.records, key=lambda r: r.prompt_id)] == [
        t * 1000 for t in offsets
    ]
    (far,) = run.client[1:]
    assert (far.host, far.clock_offset_ms, far.clock_error_ms) == ("far-host", 5000.0, 0.05)


def test_the_offset_is_measured_from_round_trips_and_bounded() -> None:
    actor = SkewedActor()
    pool = _pool(actor, ClockOffset())  # not shared, not measured yet

    async def go() -> None:
        await pool._measure_clocks()
        records: list[RequestRecord] = []
        await run_round(
            _requests(3), ClosedLoop(2), pool, level="concurrency=2", round=1,
            on_record=records.append,
        )  # fmt: skip
        for rec in records:  # the records' times relative to the driver's round start
            assert 0 < rec.start_ms < 1000

    asyncio.run(go())
    clock = pool.actors[0].clock
    assert not clock.shared
    assert abs(clock.offset_ns - SKEW_NS) <= clock.error_ns
    assert 0 < clock.error_ns < 1_000_000_000
    details = pool.describe().details
    assert details["actors"][0]["clock_offset_ms"] == round(clock.offset_ms, 6)


def test_nodes_that_share_a_host_name_are_told_apart_in_the_reports() -> None:
    from drbench.ray_executor import _tell_apart

    actors = [
        _Actor(0, None, host="gpu-1", node="aaaaaa11"),
        _Actor(1, None, host="gpu-1", node="aaaaaa11"),
        _Actor(2, None, host="vm", node="3f2a1c99"),
        _Actor(3, None, host="vm", node="77b0e400"),
    ]
    _tell_apart(actors)
    assert [a.host for a in actors] == ["gpu-1", "gpu-1", "vm#3f2a1c", "vm#77b0e4"]
    pool = RayPool(FAKE_RAY, actors, _pool(SkewedActor(), ClockOffset()).plan)
    assert pool.hosts == {"gpu-1": 2, "vm#3f2a1c": 1, "vm#77b0e4": 1}
    assert pool.describe().details["hosts"] == 3
