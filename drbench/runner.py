"""Levels x rounds: the two-round method on top of the engine.

At each level (a concurrency C, or a request rate) and for each round, the same requests are sent
as the level's pacer allows (``pacing.py``), by the run's executor (``executors.py`` in this
process, ``workers.py`` over worker processes), through the engine (``engine.py``).  Round 2
starts only when round 1 has completely finished, with the same schedule.  Warm-up requests (with
nonces of their own) go before a level's first round and count nowhere.  Everything observable
(each finished request, round, level, warning) goes to a ``RunObserver`` as it happens, so the
caller can log records crash-safely and show progress; the runner itself never prints.  Finished
rounds are appended to the RunResult the caller owns, so Ctrl-C loses none of them.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, nullcontext
from functools import partial
from typing import Protocol

import aiohttp

from drbench.client import PreparedRequest, make_session, open_connections, post_reset, send
from drbench.engine import Executor, RoundRun, run_round
from drbench.errors import LostWorkerError
from drbench.executors import InProcess, Transport
from drbench.levels import Level
from drbench.messages import Message, round_where
from drbench.oracle import CapacitySource, Expected, LevelOracle
from drbench.pacing import busiest_second, pacer_for, trace_offsets
from drbench.plan import (
    MetricsWatcher,
    RunPlan,
    WatcherFactory,
    continue_requests,
    level_requests,
    max_tokens_for,
    warmup_requests,
)
from drbench.records import RequestRecord
from drbench.results import LevelResult, RoundResult, RunResult
from drbench.reuse import BlockSource, LevelReuse, Reuse
from drbench.sanity import RoundFacts, load_warnings, no_usage_warning, round_warnings
from drbench.selfcheck import client_limit_warning

__all__ = [
    "MetricsWatcher",
    "RoundProgress",
    "RunObserver",
    "RunPlan",
    "WatcherFactory",
    "continue_requests",
    "max_tokens_for",
    "run",
]

_NO_CLOSING_SCRAPE = "interrupted before the closing scrape ended"
_MAX_PRECONNECT = 1024  # connections opened ahead of a level, at most


class RoundProgress(Protocol):
    def update(self, record: RequestRecord) -> None: ...
    def close(self) -> None: ...


class RunObserver(Protocol):
    """What the runner tells its caller; every method must return quickly (it runs on the loop)."""

    def round_started(self, level: Level, round: int, total: int) -> RoundProgress: ...
    def request_done(self, record: RequestRecord) -> None: ...
    def round_done(self, level: LevelResult, result: RoundResult) -> None: ...
    def level_done(self, level: LevelResult) -> None: ...
    def warning(self, message: str) -> None: ...
    def note(self, message: str) -> None: ...


async def run(
    plan: RunPlan,
    result: RunResult,
    observer: RunObserver,
    *,
    transport: Transport | None = None,
) -> None:
    """Run every level of the plan, appending each finished round to ``result``.

    ``transport`` replaces ``client.send`` in this process (tests pass an in-process double);
    with ``--workers`` above 1 the worker processes send instead.
    """
    cfg = plan.config
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(make_session(cfg.timeout))
        executor = await stack.enter_async_context(_executor(plan, session, transport))
        if (info := executor.describe()) is not None:
            result.executor = info.details
            if info.line:
                observer.note(info.line)
        watcher = plan.watcher_factory(session) if plan.watcher_factory else None
        try:
            if watcher is not None:
                for line in await watcher.probe():
                    result.warnings.append(line)
                    observer.warning(line)
            for index, lv in enumerate(cfg.levels):
                n = len(plan.prompts)
                level = LevelResult(
                    level=lv,
                    cold_start=cfg.cold_start,
                    effective_concurrency=min(lv.concurrency, n) if lv.concurrency else None,
                    round2_mode=cfg.round2_mode,
                )
                result.levels.append(level)
                await _run_level(plan, session, watcher, executor, level, index, observer)
                observer.level_done(level)
        finally:
            if watcher is not None:
                await watcher.stop()


def _executor(
    plan: RunPlan, session: aiohttp.ClientSession, transport: Transport | None
) -> AbstractAsyncContextManager[Executor]:
    """The run's executor as an async context (worker processes and Ray actors are stopped on
    the way out)."""
    cfg = plan.config
    if cfg.executor == "ray" and transport is None:
        from drbench.ray_executor import RayPool  # noqa: PLC0415 - Ray: optional, only when asked

        return RayPool.start(
            plan, per_host=cfg.worker_count, hosts=cfg.ray_hosts, address=cfg.ray_address
        )
    if cfg.worker_count > 1 and transport is None:
        from drbench.workers import WorkerPool  # noqa: PLC0415 - multiprocessing, only when asked

        return WorkerPool.start(plan, cfg.worker_count)
    send_one = transport or partial(
        send, session, plan.endpoint, timeout_s=cfg.timeout, max_bytes=cfg.max_response_bytes
    )
    connect = partial(open_connections, session, plan.endpoint) if transport is None else None
    local: Executor = InProcess(
        send_one, tokenizer=plan.tokenizer, timing=plan.timing, connect=connect
    )
    return nullcontext(local)  # nothing to start or stop


async def _run_level(
    plan: RunPlan,
    session: aiohttp.ClientSession,
    watcher: MetricsWatcher | None,
    executor: Executor,
    level: LevelResult,
    index: int,
    observer: RunObserver,
) -> None:
    cfg = plan.config
    if cfg.warmup:
        await _warm_up(plan, executor, level, index)
    await executor.open_connections(_connections_for(level.level, plan))
    if cfg.cold_start == "reset" and cfg.cache_reset_url:
        problem = await post_reset(session, cfg.cache_reset_url)
        if problem:
            level.warnings.append(Message("reset_not_cold", problem=problem))
            observer.warning(level.warnings[-1])
    requests = level_requests(plan, index)
    n, c = len(requests), level.level.concurrency
    if c is not None and c > n:
        level.warnings.append(Message("fewer_prompts", c=c, n=n))
        observer.warning(level.warnings[-1])
    oracle = _oracle_for(plan)  # the level starts cold
    for rnd in range(1, cfg.rounds + 1):
        if rnd > 1:
            if cfg.round_pause:
                await asyncio.sleep(cfg.round_pause)
            if cfg.round2_mode == "continue":
                previous = requests
                requests, failed = continue_requests(
                    previous,
                    level.rounds[-1].records,
                    plan.prompts,
                    cfg.followup_text,
                    plan.tokenizer,
                    round=rnd,
                )
                if oracle.lru is None:  # else the replay gave the cache the answers
                    oracle.reuse.answered(previous, level.rounds[-1].records)
                _drop_texts(level.rounds[-1].records)
                if failed:
                    level.warnings.append(
                        Message("not_continued", failed=failed, prev=rnd - 1, rnd=rnd)
                    )
        offered = oracle.before(requests)  # before the round: no request waits
        continuing = cfg.round2_mode == "continue" and rnd < cfg.rounds
        settle = partial(oracle.after, answers_reused=continuing)  # once its records are in
        result = await _run_round(
            plan, watcher, executor, requests, level, rnd, observer, offered=offered, settle=settle
        )
        if cfg.round2_mode != "continue" or rnd == cfg.rounds:
            _drop_texts(result.records)  # logged and in the round's file: not needed again
        facts = RoundFacts(
            level=level.level,
            round=rnd,
            records=result.records,
            client_cached_share=result.summary.cache.client_cached_share,
            server_hit_rate=result.server_hit_rate,
            cold_start=cfg.cold_start,
            block_size=plan.block_size,
            capacity_tokens=plan.capacity_tokens,
            cache_off_cause=plan.cache_off_cause,
            estimates={r.prompt_id: r.prompt_tokens for r in requests},
            offered_share=offered.share,
            expected_share=result.expected_share,
            expected_capacity_tokens=oracle.capacity_tokens,
        )
        lines = round_warnings(facts)
        if index == 0 and rnd == 1 and (line := no_usage_warning(result.records)):
            lines.insert(0, line)
        where = round_where(rnd, level.level)
        lines += load_warnings(
            level.level, result.summary, where, truncated=result.truncated, unsent=result.unsent
        )
        if line := client_limit_warning(result.client, where=where, workers=cfg.worker_count):
            lines.append(line)
        if result.halted is not None:
            lines.append(Message("halted", where=where, why=result.halted, unsent=result.unsent))
        for line in lines:
            level.warnings.append(line)
            observer.warning(line)
        if result.halted is not None:
            _compare(level, cfg.seed)
            raise LostWorkerError(Message("halted_run", why=result.halted))
    _compare(level, cfg.seed)


def _compare(level: LevelResult, seed: int) -> None:
    """Once a level's rounds are done: every later round against round 1 and the one before
    (``levels[].comparisons``, round 2 vs 1 also as ``comparison``), TTFT by turn and by
    context length."""
    from drbench.breakdown import ttft_by_context, ttft_by_turn  # noqa: PLC0415 - numpy
    from drbench.stats import RoundData, compare_all  # noqa: PLC0415 - numpy, after the rounds

    data = [RoundData(r.records, r.summary, r.server_hit_rate) for r in level.rounds]
    level.comparisons = compare_all(data, seed=seed)
    level.comparison = level.comparisons[0].comparison if level.comparisons else None
    level.by_turn = ttft_by_turn([r.records for r in level.rounds])
    level.by_context = ttft_by_context(r.records for r in level.rounds)


async def _warm_up(plan: RunPlan, executor: Executor, level: LevelResult, index: int) -> None:
    """``--warmup`` requests at the level's own pace, before round 1; kept out of everything."""
    cfg = plan.config
    requests = warmup_requests(plan, index, cfg.warmup)
    pacer = pacer_for(
        level.level,
        len(requests),
        burstiness=cfg.burstiness,
        seed=cfg.seed,
        ramp_up_s=0.0,
        timestamps_ms=plan.timestamps_ms,
    )
    done = await run_round(
        requests,
        pacer,
        executor,
        level=level.level.key,
        round=0,
        on_record=lambda rec: None,
        max_line_bytes=cfg.max_line_bytes,
    )
    level.warmup = {
        "requests": len(done.records),
        "failed": sum(not r.ok for r in done.records),
    }


async def _run_round(
    plan: RunPlan,
    watcher: MetricsWatcher | None,
    executor: Executor,
    requests: list[PreparedRequest],
    level: LevelResult,
    rnd: int,
    observer: RunObserver,
    *,
    offered: Reuse | None = None,
    settle: Callable[[Sequence[RequestRecord]], Expected | None] | None = None,
) -> RoundResult:
    """One round; it is appended to ``level`` as soon as its last request ends.

    A round whose requests have all ended is kept even if Ctrl-C comes before its closing
    Prometheus scrapes (or during them): its server figures are then marked missing.
    """
    cfg = plan.config
    progress = observer.round_started(level.level, rnd, len(requests))
    if watcher is not None:
        await watcher.start_round()
    pacer = pacer_for(
        level.level,
        len(requests),
        burstiness=cfg.burstiness,
        seed=cfg.seed,
        ramp_up_s=cfg.ramp_up,
        timestamps_ms=plan.timestamps_ms,
    )
    seen: list[RequestRecord] = []

    def on_record(rec: RequestRecord) -> None:
        seen.append(rec)
        observer.request_done(rec)
        progress.update(rec)

    done: RoundRun | None = None
    result: RoundResult | None = None
    try:
        done = await run_round(
            requests,
            pacer,
            executor,
            level=level.level.key,
            round=rnd,
            on_record=on_record,
            max_duration_s=cfg.max_round_duration,
            max_line_bytes=cfg.max_line_bytes,
        )
    finally:
        progress.close()
        if done is None and len(seen) == len(requests):  # Ctrl-C after the last record
            done = RoundRun(sorted(seen, key=_order(requests)), False, 0, None, [])
            result = _keep_round(plan, level, done, rnd, watcher, offered, settle)
            observer.round_done(level, result)
        elif done is not None:
            result = _keep_round(plan, level, done, rnd, watcher, offered, settle)
    assert result is not None  # run_round returned: every sent request has its record
    if watcher is not None:
        try:
            result.server = await watcher.end_round()
        finally:  # also when Ctrl-C comes during the closing scrapes
            observer.round_done(level, result)
    else:
        observer.round_done(level, result)
    return result


def _order(requests: list[PreparedRequest]) -> Callable[[RequestRecord], int]:
    position = {r.prompt_id: i for i, r in enumerate(requests)}
    return lambda rec: position.get(rec.prompt_id, len(position))


def _keep_round(
    plan: RunPlan,
    level: LevelResult,
    done: RoundRun,
    rnd: int,
    watcher: MetricsWatcher | None,
    offered: Reuse | None = None,
    settle: Callable[[Sequence[RequestRecord]], Expected | None] | None = None,
) -> RoundResult:
    """Summarise a round whose requests all ended and append it to its level at once (with
    the oracle's expected hit rate, replayed on its records while their answers are here)."""
    from drbench.stats import summarize_round  # noqa: PLC0415 - numpy: not before the first send

    summary = summarize_round(
        done.records,
        level=level.level,
        round=rnd,
        slo=plan.slo,
        percentiles=plan.config.percentiles,
    )
    server = watcher.missing_round(_NO_CLOSING_SCRAPE) if watcher is not None else None
    result = RoundResult(
        summary=summary,
        records=list(done.records),
        server=server,
        truncated=done.truncated,
        unsent=done.unsent,
        halted=done.halted,
        client=list(done.client),
        offered=offered,
        expected=settle(done.records) if settle is not None else None,
    )
    level.rounds.append(result)
    return result


def _oracle_for(plan: RunPlan) -> LevelOracle:
    """A level's oracle: the block size and capacity from the server's metrics, else from
    --cache-block-size and --cache-capacity-tokens (else 16 and no expected hit rate)."""
    cfg = plan.config
    block, capacity = plan.block_size, plan.capacity_tokens
    block_source: BlockSource = "server"
    capacity_source: CapacitySource = "server"
    if not block and cfg.cache_block_size:
        block, block_source = cfg.cache_block_size, "flag"
    if not capacity and cfg.cache_capacity_tokens:
        capacity, capacity_source = cfg.cache_capacity_tokens, "flag"
    reuse = LevelReuse.for_server(
        block, plan.tokenizer, source=block_source, tokenization=plan.tokenization
    )
    return LevelOracle.for_level(reuse, capacity, capacity_source)


def _connections_for(level: Level, plan: RunPlan) -> int:
    """How many connections to open before a level: what it may have in flight (for a rate or
    trace level without a cap, about a second's worth of requests: the trace's busiest second),
    at most ``_MAX_PRECONNECT``."""
    prompts = len(plan.prompts)
    cap = level.in_flight_cap
    if cap is None and level.kind == "trace":
        cap = busiest_second(trace_offsets(plan.timestamps_ms, prompts, level.speedup or 1.0))
    elif cap is None:
        rate = level.rate or math.inf
        cap = prompts if math.isinf(rate) else math.ceil(rate)
    return min(cap, prompts, _MAX_PRECONNECT)


def _drop_texts(records: Sequence[RequestRecord]) -> None:
    """Free the answers' text once requests.jsonl, the round's file and (``--round2-mode
    continue``) the next round's requests have it: a run keeps every record to its end, and the
    text would be most of what a record weighs."""
    for record in records:
        record.output_text = None
