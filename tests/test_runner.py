"""The runner's scheduling: one send per loop iteration, and every received exchange recorded,
also when the round is interrupted while records still wait for the parser; a round whose
requests all ended is kept whenever Ctrl-C comes (before or during its closing scrapes)."""

from __future__ import annotations

import asyncio
from time import perf_counter_ns

import pytest

import drbench.runner as runner
from drbench.client import Endpoint, PreparedRequest
from drbench.config import BenchConfig
from drbench.engine import run_round
from drbench.executors import InProcess
from drbench.levels import Level
from drbench.pacing import ClosedLoop
from drbench.prometheus import Missing, RoundServerMetrics
from drbench.records import Prompt, RequestRecord
from drbench.response import RawExchange
from drbench.results import LevelResult, RoundResult, RunResult

_STREAM = (
    b'data: {"id":"r","choices":[{"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


def _exchange() -> RawExchange:
    raw = RawExchange(send_ns=perf_counter_ns(), status=200)
    raw.chunks.append((perf_counter_ns(), _STREAM))
    raw.end_ns = perf_counter_ns()
    return raw


def test_the_dispatcher_releases_one_request_per_loop_iteration() -> None:
    async def go() -> list[int]:
        loop = asyncio.get_running_loop()
        tick = [0]

        def count() -> None:  # runs once per loop iteration
            tick[0] += 1
            loop.call_soon(count)

        loop.call_soon(count)
        seen: list[int] = []

        async def transport(req: PreparedRequest) -> RawExchange:
            seen.append(tick[0])
            return _exchange()

        requests = [PreparedRequest.of(f"p{i}", {"messages": [], "n": i}) for i in range(6)]
        await run_round(
            requests, ClosedLoop(6), InProcess(transport), level="concurrency=6", round=1,
            on_record=lambda rec: None,
        )  # fmt: skip
        return seen

    seen = asyncio.run(go())
    assert len(seen) == 6 and len(set(seen)) == 6


def test_a_freed_slot_goes_to_the_next_request_in_order() -> None:
    """A closed loop of 2: p0 is slow, so every slot p1 frees goes to the next prompt in order
    (never to a later one), and p0's slot is never given twice."""

    async def go() -> tuple[list[str], int]:
        order: list[str] = []
        in_flight = [0, 0]  # now, peak

        async def transport(req: PreparedRequest) -> RawExchange:
            order.append(req.prompt_id)
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
            try:
                await asyncio.sleep(0.2 if req.prompt_id == "p0" else 0)
                return _exchange()
            finally:
                in_flight[0] -= 1

        requests = [PreparedRequest.of(f"p{i}", {"messages": [], "n": i}) for i in range(6)]
        await asyncio.wait_for(
            run_round(
                requests, ClosedLoop(2), InProcess(transport), level="concurrency=2", round=1,
                on_record=lambda rec: None,
            ),
            timeout=10,
        )  # fmt: skip
        return order, in_flight[1]

    order, peak = asyncio.run(go())
    assert order == [f"p{i}" for i in range(6)] and peak == 2


class Observer:
    def __init__(self) -> None:
        self.done: list[RequestRecord] = []
        self.rounds: list[RoundResult] = []
        self.started: list[tuple[Level, int, int]] = []

    def round_started(self, level: Level, round: int, total: int) -> Observer:
        self.started.append((level, round, total))
        return self

    def update(self, record: RequestRecord) -> None:
        pass

    def close(self) -> None:
        pass

    def request_done(self, record: RequestRecord) -> None:
        self.done.append(record)

    def round_done(self, level: LevelResult, result: RoundResult) -> None:
        self.rounds.append(result)

    def level_done(self, level: LevelResult) -> None:
        pass

    def warning(self, message: str) -> None:
        pass

    def note(self, message: str) -> None:
        pass


def test_interrupted_round_still_records_every_received_exchange(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    received: list[str] = []
    answer = asyncio.Event()

    async def instant_send(req: PreparedRequest) -> RawExchange:
        raw = RawExchange(send_ns=perf_counter_ns(), status=200)
        await answer.wait()  # every request in flight ends in the same loop iteration
        raw.chunks.append((perf_counter_ns(), _STREAM))
        raw.end_ns = perf_counter_ns()
        received.append(req.prompt_id)
        return raw

    endpoint = Endpoint.parse("http://127.0.0.1:9/v1/chat/completions")
    prompts = [Prompt(id=f"p{i}", text="x") for i in range(400)]
    plan = runner.RunPlan(BenchConfig(), endpoint, "m", prompts)
    requests = [PreparedRequest.of(p.id, {"messages": [], "n": i}) for i, p in enumerate(prompts)]
    observer = Observer()
    parsed_at_interrupt = []
    level = LevelResult(level=Level.closed(50), cold_start="nonce")
    executor = InProcess(instant_send)

    async def go() -> None:
        task = asyncio.ensure_future(
            runner._run_round(plan, None, executor, requests, level, 1, observer)  # type: ignore[arg-type]
        )
        for _ in range(80):  # all 50 workers have taken their turn and wait for an answer
            await asyncio.sleep(0)
        answer.set()
        for _ in range(5):  # the parser takes one record per iteration: most are still queued
            await asyncio.sleep(0)
        parsed_at_interrupt.append(len(observer.done))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert 0 < len(received) < len(requests)  # really interrupted mid-round
    assert parsed_at_interrupt[0] < len(received)  # so the drain had work to do
    assert [r.prompt_id for r in observer.done] == received
    assert all(r.ok and r.output_text == "hi" for r in observer.done)
    assert level.rounds == [] and observer.rounds == []  # a round cut short is not a round
    assert observer.started == [(Level.closed(50), 1, 400)]
    assert {r.level for r in observer.done} == {"concurrency=50"}


class SlowWatcher:
    """A metrics watcher whose closing scrape never ends (until cancelled)."""

    def __init__(self) -> None:
        self.closing = asyncio.Event()

    async def start_round(self) -> None:
        pass

    async def end_round(self) -> RoundServerMetrics:
        self.closing.set()
        await asyncio.sleep(3600)
        raise AssertionError("never reached")

    def missing_round(self, reason: str) -> RoundServerMetrics:
        return RoundServerMetrics([], {}, [Missing("http://m/metrics", None, reason)])


def _round_setup(n: int):
    async def quick_send(req: PreparedRequest) -> RawExchange:
        raw = RawExchange(send_ns=perf_counter_ns(), status=200)
        await asyncio.sleep(0)
        raw.chunks.append((perf_counter_ns(), _STREAM))
        raw.end_ns = perf_counter_ns()
        return raw

    endpoint = Endpoint.parse("http://127.0.0.1:9/v1/chat/completions")
    prompts = [Prompt(id=f"p{i}", text="x") for i in range(n)]
    plan = runner.RunPlan(BenchConfig(), endpoint, "m", prompts)
    requests = [PreparedRequest.of(p.id, {"messages": [], "n": i}) for i, p in enumerate(prompts)]
    level = LevelResult(level=Level.closed(4), cold_start="nonce")
    return plan, InProcess(quick_send), requests, Observer(), level


def test_ctrl_c_during_the_closing_scrape_keeps_the_round() -> None:
    plan, executor, requests, observer, level = _round_setup(8)
    watcher = SlowWatcher()

    async def go() -> None:
        task = asyncio.ensure_future(
            runner._run_round(plan, watcher, executor, requests, level, 1, observer)  # type: ignore[arg-type]
        )
        await watcher.closing.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert len(level.rounds) == 1 and observer.rounds == level.rounds  # kept and reported
    kept = level.rounds[0]
    assert len(kept.records) == 8 and kept.summary.requests_total == 8
    assert [m.reason for m in kept.server.missing] == [runner._NO_CLOSING_SCRAPE]


def test_ctrl_c_after_the_last_record_keeps_the_round() -> None:
    """Cancelled in the loop iterations between the last record and the end of the round."""

    async def go(spins: int, plan, executor, requests, observer, level, watcher) -> int:
        task = asyncio.ensure_future(
            runner._run_round(plan, watcher, executor, requests, level, 1, observer)  # type: ignore[arg-type]
        )
        while len(observer.done) < 3:
            await asyncio.sleep(0)
        for _ in range(spins):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return len(observer.done)

    for spins in range(12):  # 0-3: still in the gather; 4+: in the closing scrape
        setup = _round_setup(3)
        level = setup[-1]
        assert asyncio.run(go(spins, *setup, SlowWatcher())) == 3
        observer = setup[3]
        assert len(level.rounds) == 1 and observer.rounds == level.rounds, spins
        assert [m.reason for m in level.rounds[0].server.missing] == [runner._NO_CLOSING_SCRAPE]


class FileObserver(Observer):
    """Keeps what requests.jsonl and each round's file would get, when they would get it."""

    def __init__(self) -> None:
        super().__init__()
        self.logged: list[str | None] = []
        self.round_files: list[list[str | None]] = []

    def request_done(self, record: RequestRecord) -> None:
        super().request_done(record)
        self.logged.append(record.to_dict()["output_text"])

    def round_done(self, level: LevelResult, result: RoundResult) -> None:
        super().round_done(level, result)
        self.round_files.append([r.to_dict()["output_text"] for r in result.records])


@pytest.mark.parametrize("mode", ["repeat", "continue"])
def test_answers_are_logged_and_filed_then_freed_once_no_round_needs_them(mode: str) -> None:
    sent: list[dict] = []

    async def answering_send(req: PreparedRequest) -> RawExchange:
        sent.append(req.payload)
        raw = RawExchange(send_ns=perf_counter_ns(), status=200)
        await asyncio.sleep(0)
        raw.chunks.append((perf_counter_ns(), _STREAM))
        raw.end_ns = perf_counter_ns()
        return raw

    endpoint = Endpoint.parse("http://127.0.0.1:9/v1/chat/completions")
    prompts = [Prompt(id=f"p{i}", text="x") for i in range(3)]
    cfg = BenchConfig(concurrency=(2,), rounds=3, round2_mode=mode, followup_text="more?")
    plan = runner.RunPlan(cfg, endpoint, "m", prompts)
    result = RunResult(config=cfg, started_at="t0")
    observer = FileObserver()
    asyncio.run(runner.run(plan, result, observer, transport=answering_send))
    assert observer.logged == ["hi"] * 9  # requests.jsonl: every answer, as it ends
    assert observer.round_files == [["hi"] * 3] * 3  # every round's file has its answers
    kept = [r for rnd in result.levels[0].rounds for r in rnd.records]
    assert len(kept) == 9 and all(r.ok and r.output_text is None for r in kept)  # then freed
    turns = [len(p["messages"]) for p in sent]
    if mode == "continue":  # rounds 2 and 3 were built from the real answers before they went
        assert turns == [1] * 3 + [3] * 3 + [5] * 3
        assert sent[-1]["messages"][1] == {"role": "assistant", "content": "hi"}
        assert sent[-1]["messages"][3] == {"role": "assistant", "content": "hi"}
    else:
        assert turns == [1] * 9
