"""The engine with an in-process transport double: pacing, caps, lag, truncation, Ctrl-C.

No server: the transport is an async function that waits as a server would and returns a
well-formed streamed exchange, counting how many calls are in flight at once.
"""

from __future__ import annotations

import asyncio
import math
from time import perf_counter_ns

from drbench.client import PreparedRequest
from drbench.engine import run_round
from drbench.executors import InProcess
from drbench.levels import Level
from drbench.pacing import ClosedLoop, OpenLoop, arrival_offsets, pacer_for
from drbench.response import RawExchange
from drbench.stats import AppliedLoad

_STREAM = (
    b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
    b'data: {"id":"x","choices":[{"index":0,"delta":{"content":" there"}}]}\n\n'
    b'data: {"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


class FakeServer:
    """A transport double: each call takes ``delay_s`` and answers two tokens."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.in_flight = 0
        self.peak = 0
        self.calls = 0

    async def __call__(self, req: PreparedRequest) -> RawExchange:
        raw = RawExchange(send_ns=perf_counter_ns())
        self.calls += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
            raw.status = 200
            raw.chunks.append((perf_counter_ns(), _STREAM))
            raw.end_ns = perf_counter_ns()
            return raw
        finally:
            self.in_flight -= 1


def _requests(n: int) -> list[PreparedRequest]:
    return [
        PreparedRequest.of(f"p{i}", {"messages": [{"role": "user", "content": "x"}]})
        for i in range(n)
    ]


def _round(requests, pacer, server, *, max_duration_s=None, level="rate=1", rnd=1):
    async def go():
        seen = []
        done = await run_round(
            requests,
            pacer,
            InProcess(server),
            level=level,
            round=rnd,
            on_record=seen.append,
            max_duration_s=max_duration_s,
        )
        return done, seen

    return asyncio.run(go())


def test_a_closed_loop_never_has_more_than_c_in_flight_and_keeps_c_busy() -> None:
    server = FakeServer(delay_s=0.01)
    done, seen = _round(_requests(40), ClosedLoop(4), server, level="concurrency=4")
    assert server.peak == 4
    assert len(done.records) == 40 == len(seen) and all(r.ok for r in done.records)
    assert all(r.scheduled_ms is None and r.send_lag_ms is None for r in done.records)
    assert [r.prompt_id for r in done.records] == [f"p{i}" for i in range(40)]
    assert {r.level for r in done.records} == {"concurrency=4"}
    load = AppliedLoad.of(done.records)
    assert load.concurrency_peak == 4 and load.concurrency_mean > 2.5


def test_an_open_loop_sends_on_its_schedule_and_records_the_lag() -> None:
    offsets = arrival_offsets(30, 100.0, 1.0, "seed")
    server = FakeServer(delay_s=0.05)
    done, _ = _round(_requests(30), OpenLoop(offsets), server)
    for rec, due in zip(done.records, offsets, strict=True):
        assert math.isclose(rec.scheduled_ms, due * 1000, abs_tol=1e-5)  # from round start
        assert rec.send_lag_ms is not None and rec.send_lag_ms >= 0  # never early
        assert math.isclose(rec.start_ms - rec.scheduled_ms, rec.send_lag_ms, abs_tol=1e-3)
    # 30 requests over ~0.3 s, each taking 50 ms: an open loop overlaps them, unlike one worker
    assert server.peak >= 3


def test_an_open_loop_does_not_wait_for_answers() -> None:
    """All at once (rate inf) with slow answers: every request is in flight together."""
    server = FakeServer(delay_s=0.3)
    done, _ = _round(
        _requests(200),
        pacer_for(Level.open(math.inf), 200, burstiness=1, seed=0, ramp_up_s=0),
        server,
    )
    assert server.peak == 200 and len(done.records) == 200


def test_max_concurrency_caps_an_open_loop_and_the_wait_shows_as_send_lag() -> None:
    server = FakeServer(delay_s=0.05)
    done, _ = _round(_requests(20), OpenLoop((0.0,) * 20, max_concurrency=3), server)
    assert server.peak == 3
    lags = sorted(r.send_lag_ms for r in done.records)
    assert lags[-1] >= 5 * 40  # the last waited for ~6 waves of 50 ms (wide margin)


def test_ramp_up_starts_the_workers_spread_over_the_ramp() -> None:
    server = FakeServer(delay_s=0.5)
    done, _ = _round(_requests(4), ClosedLoop(4, ramp_up_s=0.6), server, level="concurrency=4")
    starts = sorted(r.start_ms for r in done.records)
    assert starts[1] >= 140 and starts[2] >= 290 and starts[3] >= 440  # 0, 150, 300, 450 ms


def test_max_round_duration_stops_sending_and_marks_the_round_truncated() -> None:
    server = FakeServer(delay_s=0.05)
    done, seen = _round(_requests(100), ClosedLoop(1), server, max_duration_s=0.3)
    assert done.truncated
    assert 0 < len(done.records) < 100 and done.unsent == 100 - len(done.records)
    assert all(r.ok for r in done.records)  # what was in flight finished
    assert len(seen) == len(done.records)


def test_the_schedule_is_the_same_in_both_rounds() -> None:
    level = Level.open(50.0)
    pacers = [pacer_for(level, 10, burstiness=0.5, seed=7, ramp_up_s=0) for _ in range(2)]
    runs = [_round(_requests(10), p, FakeServer(), rnd=k + 1)[0] for k, p in enumerate(pacers)]
    assert [r.scheduled_ms for r in runs[0].records] == [r.scheduled_ms for r in runs[1].records]


def test_cancelling_a_round_keeps_every_record_that_ended() -> None:
    fast, slow = 0.0, 5.0

    class Mixed(FakeServer):
        async def __call__(self, req):
            self.delay_s = slow if req.prompt_id in {"p3", "p4"} else fast
            return await super().__call__(req)

    async def go():
        seen = []
        task = asyncio.ensure_future(
            run_round(
                _requests(5),
                ClosedLoop(5),
                InProcess(Mixed()),
                level="concurrency=5",
                round=1,
                on_record=seen.append,
            )
        )
        while len(seen) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        return seen

    seen = asyncio.run(asyncio.wait_for(go(), 10))
    assert sorted(r.prompt_id for r in seen) == ["p0", "p1", "p2"]


def test_a_request_handed_over_early_is_not_sent_after_the_round_cap() -> None:
    """An executor with a lead (worker processes) gets requests before their due time; one due
    after --max-round-duration must not be handed over anyway."""

    class Early(InProcess):
        lead_s = 0.05

    async def go():
        return await run_round(
            _requests(3),
            OpenLoop((0.0, 0.1, 0.32)),
            Early(FakeServer()),
            level="rate=1",
            round=1,
            on_record=lambda rec: None,
            max_duration_s=0.3,
        )

    done = asyncio.run(go())
    assert done.truncated and done.unsent == 1
    assert [r.prompt_id for r in done.records] == ["p0", "p1"]
    assert all(r.send_lag_ms >= 0 for r in done.records)  # sent at the due time, not at hand-over
