"""The runner's scheduling: one send per loop iteration, and every received exchange recorded,
also when the round is interrupted while records still wait for the parser."""

from __future__ import annotations

import asyncio
from time import perf_counter_ns

import pytest

import drbench.runner as runner
from drbench.client import Endpoint, PreparedRequest
from drbench.config import BenchConfig
from drbench.records import Prompt, RequestRecord
from drbench.response import RawExchange

_STREAM = (
    b'data: {"id":"r","choices":[{"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


def test_turns_grant_one_waiter_per_loop_iteration() -> None:
    async def go() -> list[int]:
        loop = asyncio.get_running_loop()
        tick = [0]

        def count() -> None:  # runs once per loop iteration
            tick[0] += 1
            loop.call_soon(count)

        loop.call_soon(count)
        turns = runner._Turns()
        seen: list[int] = []

        async def waiter() -> None:
            await turns.wait()
            seen.append(tick[0])

        await asyncio.gather(*(waiter() for _ in range(6)))
        return seen

    seen = asyncio.run(go())
    assert len(seen) == 6 and len(set(seen)) == 6


def test_a_cancelled_waiter_gives_its_turn_up() -> None:
    async def go() -> list[str]:
        turns = runner._Turns()
        order: list[str] = []

        async def waiter(name: str) -> None:
            await turns.wait()
            order.append(name)

        a, b, c = (asyncio.ensure_future(waiter(n)) for n in "abc")
        await asyncio.sleep(0)  # all three are queued
        b.cancel()
        await asyncio.wait_for(asyncio.gather(a, c), timeout=2)
        return order

    assert asyncio.run(go()) == ["a", "c"]


class Observer:
    def __init__(self) -> None:
        self.done: list[RequestRecord] = []

    def round_started(self, concurrency: int, round: int, total: int) -> Observer:
        return self

    def update(self, record: RequestRecord) -> None:
        pass

    def close(self) -> None:
        pass

    def request_done(self, record: RequestRecord) -> None:
        self.done.append(record)


def test_interrupted_round_still_records_every_received_exchange(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    received: list[str] = []
    answer = asyncio.Event()

    async def instant_send(session, endpoint, req, timeout_s, max_bytes) -> RawExchange:
        raw = RawExchange(send_ns=perf_counter_ns(), status=200)
        await answer.wait()  # every request in flight ends in the same loop iteration
        raw.chunks.append((perf_counter_ns(), _STREAM))
        raw.end_ns = perf_counter_ns()
        received.append(req.prompt_id)
        return raw

    monkeypatch.setattr(runner, "send", instant_send)
    endpoint = Endpoint.parse("http://127.0.0.1:9/v1/chat/completions")
    prompts = [Prompt(id=f"p{i}", text="x") for i in range(400)]
    plan = runner.RunPlan(BenchConfig(), endpoint, "m", prompts)
    requests = [PreparedRequest.of(p.id, {"messages": [], "n": i}) for i, p in enumerate(prompts)]
    observer = Observer()
    parsed_at_interrupt = []

    async def go() -> None:
        task = asyncio.ensure_future(
            runner._run_round(plan, None, None, requests, 50, 1, observer)  # type: ignore[arg-type]
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
