"""The simulated inference engine: a scheduler with ``max_num_seqs`` slots, a FIFO wait queue,
the prefix cache, and ONE step loop that produces every running request's tokens.

The step loop is a self-rescheduling event-loop callback (no task per stream, no timer per
token): a heap holds each running request's next due time; each step emits every token due
within a short slack, then sleeps until the next due time. Token times follow each request's
own schedule (``due + ITL``), so the delivered mean ITL equals the configured one as long as the
server keeps up. A token that is already late is due in the next step (not twice in one step):
after a stall a request catches up over a few quick steps, as vLLM's front end flushes the
tokens its engine produced meanwhile, and an overloaded server stays busy, serving the late
requests round-robin in due order.

Handlers create a ``Seq``, ``submit`` it and await ``seq.done`` (resolved with the outcome:
``"stop"``, ``"length"``, ``"abort"`` or ``"drop"``); ``abort`` frees a slot at once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from drbench.mocker.cache import PrefixCache, block_hashes
from drbench.mocker.config import MockerConfig
from drbench.mocker.metrics import EngineGauges, MockerMetrics, cache_config_labels
from drbench.mocker.sink import ShapedSink, StreamSink
from drbench.mocker.timing import Fault, Planner, RequestPlan, decode_interval_s, prefill_delay_s
from drbench.mocker.tokenizer import filler_tokens
from drbench.mocker.wire import usage_dict

__all__ = ["Engine", "Seq", "SeqState"]

_SLACK_S = 0.0002  # tokens due this soon are emitted in the current step
_MAX_PER_STEP = 512  # then yield to the event loop so new requests are read in between


class SeqState:
    """Lifecycle of a request inside the engine (plain ints: compared on the hot path)."""

    WAITING = 0
    RUNNING = 1
    DONE = 2


@dataclass(slots=True, eq=False)
class Seq:
    """One request as the engine sees it."""

    request_id: str
    prompt: list[str]  # prompt tokens
    plan: RequestPlan
    sink: StreamSink | ShapedSink | None  # None for a non-streamed request
    arrival: float  # loop.time() when the body was read
    done: asyncio.Future[str]
    hashes: list[int] = field(default_factory=list)
    state: int = SeqState.WAITING
    cached_tokens: int = 0
    generated: int = 0
    first_token_at: float | None = None
    finished_at: float | None = None


class Engine:
    """Scheduler, prefix cache, metrics and the step loop of one mock server."""

    def __init__(self, cfg: MockerConfig, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.cfg = cfg
        self._loop = loop or asyncio.get_running_loop()
        self.filler = filler_tokens()
        self.planner = Planner(cfg, self.filler)
        self.cache = PrefixCache(cfg.block_size, cfg.cache_capacity_tokens)
        self.metrics = MockerMetrics(
            cfg.served_model,
            EngineGauges(
                running=lambda: len(self._running),
                waiting=lambda: self._num_waiting,
                kv_usage=self.kv_usage,
                memory_bytes=self.memory_bytes,
            ),
            cache_config_labels(
                cfg.block_size, self.cache.capacity_blocks, cfg.cache_capacity_tokens > 0
            ),
            cfg.metrics_profile,
            self.cache.capacity_blocks * cfg.block_size,
        )
        self._jitter_rng = random.Random(f"{cfg.seed}:jitter")
        self._itl_s = cfg.itl_ms / 1000.0
        self._fixed_itl = cfg.jitter == 0 and cfg.decode_slowdown == 0
        self._running: set[Seq] = set()
        self._waiting: deque[Seq] = deque()
        self._num_waiting = 0
        self._heap: list[tuple[float, int, Seq]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    # -- public API ------------------------------------------------------------------------

    def new_seq(
        self,
        request_id: str,
        prompt: list[str],
        plan: RequestPlan,
        sink: StreamSink | ShapedSink | None,
        arrival: float,
    ) -> Seq:
        """A request ready to submit, with its prompt's block hashes computed."""
        seq = Seq(request_id, prompt, plan, sink, arrival, self._loop.create_future())
        seq.hashes = block_hashes(prompt, self.cfg.block_size)
        return seq

    def submit(self, seq: Seq) -> None:
        """Admit now if a slot is free, else queue (FIFO)."""
        if len(self._running) < self.cfg.max_num_seqs and not self._num_waiting:
            self._admit(seq, self._loop.time())
            self._schedule()
        else:
            self._waiting.append(seq)
            self._num_waiting += 1

    def abort(self, seq: Seq) -> None:
        """Drop a request wherever it is (client gone); its slot goes to the next in line."""
        if seq.state == SeqState.WAITING:
            self._num_waiting -= 1
            self._end(seq, "abort", self._loop.time())
        elif seq.state == SeqState.RUNNING:
            now = self._loop.time()
            self._end(seq, "abort", now)
            self._admit_waiting(now)
            self._schedule()

    def output_tokens(self, seq: Seq) -> list[str]:
        """The tokens a request generated so far (its answer text, split)."""
        return self.planner.output(seq.plan.filler_offset, seq.generated)

    def reset_cache(self) -> None:
        self.cache.reset()

    def shutdown(self) -> None:
        """Abort everything, closing streams, so handlers finish promptly."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = self._loop.time()
        for seq in [*self._running, *self._waiting]:
            if seq.state != SeqState.DONE:
                if seq.state == SeqState.WAITING:
                    self._num_waiting -= 1
                if seq.sink is not None:
                    seq.sink.drop()
                self._end(seq, "abort", now)

    @property
    def num_running(self) -> int:
        return len(self._running)

    @property
    def num_waiting(self) -> int:
        return self._num_waiting

    def kv_usage(self) -> float:
        """Share of the KV pool the running requests' tokens occupy (capped at 1)."""
        cap = self.cache.capacity_blocks
        if cap <= 0:
            return 0.0
        b = self.cfg.block_size
        used = sum(-(-(len(s.prompt) + s.generated) // b) for s in self._running)
        return min(used / cap, 1.0)

    def memory_bytes(self) -> float:
        """Bytes of KV the prefix cache holds (``memory_usage_bytes``)."""
        return float(self.cache.cached_tokens * self.cfg.kv_bytes_per_token)

    # -- the step loop ---------------------------------------------------------------------

    def _step(self) -> None:
        self._timer = None
        now = self._loop.time()
        horizon = now + _SLACK_S
        heap = self._heap
        budget = _MAX_PER_STEP
        while heap and heap[0][0] <= horizon and budget:
            due, _, seq = heapq.heappop(heap)
            if seq.state == SeqState.RUNNING:
                budget -= 1
                try:
                    self._advance(seq, due, now)
                except Exception:  # noqa: BLE001 - a broken stream must not stop the loop
                    self._end(seq, "abort", now)
        if self._num_waiting:
            self._admit_waiting(now)
        self._schedule()

    def _advance(self, seq: Seq, due: float, now: float) -> None:
        """Produce token ``seq.generated`` (or finish) and queue the next one."""
        i = seq.generated
        n = seq.plan.output_tokens
        if i == 0:
            self._on_first_token(seq, now)
        sink = seq.sink
        if sink is not None:
            if sink.closed:
                self._end(seq, "abort", now)
                return
            if i == seq.plan.fault_at and self._fault(seq, now):
                return
            if i == 0 or i + 1 >= n:
                finish = self._finish_info(seq, i + 1 if n else 0) if i + 1 >= n else None
                sink.emit(i if n else None, i == 0, finish)
            elif sink.backlogged:
                heapq.heappush(self._heap, (now + self._itl_s, next(self._order), seq))
                return
            else:
                sink.token(i)
        if n:
            seq.generated = i + 1
        if seq.generated >= n:
            self._end(seq, seq.plan.finish_reason, now)
            return
        itl = self._itl_s if self._fixed_itl else self._interval()
        nxt = due + itl
        if nxt <= now + _SLACK_S:
            # Late: due in the next step, not twice in this one; an ITL below the step
            # granularity (e.g. --itl-ms 0.001, "as fast as possible") keeps streaming.
            nxt = now + min(itl, 2 * _SLACK_S)
        heapq.heappush(self._heap, (nxt, next(self._order), seq))

    def _fault(self, seq: Seq, now: float) -> bool:
        """Apply a mid-stream fault; True when the request ended."""
        assert seq.sink is not None
        if seq.plan.fault is Fault.DROP:
            seq.sink.drop()
            self._end(seq, "drop", now)
            return True
        seq.sink.garbage()
        return False

    def _finish_info(self, seq: Seq, completion_tokens: int) -> tuple[str, dict[str, Any]]:
        return seq.plan.finish_reason, self.usage(seq, completion_tokens)

    def usage(self, seq: Seq, completion_tokens: int) -> dict[str, Any]:
        """The ``usage`` a response reports: truthful, except ``prompt_tokens`` under
        ``--fake-prompt-tokens`` (the metrics always count the real prompt)."""
        fake = self.cfg.fake_prompt_tokens
        prompt = len(seq.prompt) if fake is None else fake
        return usage_dict(prompt, completion_tokens, seq.cached_tokens)

    def _interval(self) -> float:
        cfg = self.cfg
        u = self._jitter_rng.uniform(-1.0, 1.0) if cfg.jitter else 0.0
        return decode_interval_s(
            cfg.itl_ms, len(self._running), cfg.max_num_seqs, cfg.decode_slowdown, cfg.jitter, u
        )

    # -- admission and completion ----------------------------------------------------------

    def _admit(self, seq: Seq, now: float) -> None:
        n = len(seq.prompt)
        cached = self.cache.match(seq.hashes, n)
        seq.cached_tokens = cached
        seq.state = SeqState.RUNNING
        self._running.add(seq)
        self.metrics.on_admit(n, cached)
        # As vLLM v1 does in allocate_slots: the blocks this step computes are cached at
        # scheduling time, so a request admitted after this one shares them even if this
        # one's prefill has not finished yet; hits depend on admission order, not timing.
        self.cache.insert(seq.hashes)
        due = now + prefill_delay_s(n - cached, self.cfg.ttft_ms, self.cfg.prefill_tokens_per_s)
        heapq.heappush(self._heap, (due, next(self._order), seq))

    def _admit_waiting(self, now: float) -> None:
        waiting, limit = self._waiting, self.cfg.max_num_seqs
        while waiting and len(self._running) < limit:
            seq = waiting.popleft()
            if seq.state == SeqState.WAITING:
                self._num_waiting -= 1
                self._admit(seq, now)

    def _on_first_token(self, seq: Seq, now: float) -> None:
        seq.first_token_at = now
        self.metrics.on_first_token(now - seq.arrival, len(seq.prompt), seq.cached_tokens)

    def _end(self, seq: Seq, outcome: str, now: float) -> None:
        was_running = seq.state == SeqState.RUNNING
        seq.state = SeqState.DONE
        seq.finished_at = now
        self._running.discard(seq)
        completed = outcome in ("stop", "length")
        if completed:
            answer = self.output_tokens(seq)
            self.cache.insert(block_hashes(seq.prompt + answer, self.cfg.block_size, seq.hashes))
        if was_running or completed:
            self.metrics.on_end(
                now - seq.arrival if completed else None,
                seq.generated,
                outcome if completed else "abort",
                len(seq.prompt),
                seq.cached_tokens,
            )
        if not seq.done.done():
            seq.done.set_result(outcome)

    def _schedule(self) -> None:
        heap = self._heap
        while heap and heap[0][2].state != SeqState.RUNNING:
            heapq.heappop(heap)  # lazily drop aborted requests
        if not heap:
            return
        when = heap[0][0]
        if self._timer is not None:
            if self._timer_at <= when:
                return
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._step)
