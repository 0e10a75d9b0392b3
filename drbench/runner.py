"""Levels x rounds: closed-loop workers, cold-start policy, multi-turn round 2, server metrics.

At each concurrency level C and for each round, the same N requests are sent with at most C in
flight; a worker sends its next request when its previous one ends.  Round 2 starts only when
round 1 has completely finished.  Workers only send and receive: one parser task turns each
finished exchange into its record, one per event-loop iteration, and workers take turns to send
(``_Turns``), so that a wave of requests ending together never holds up the stamping of reads.  Everything observable (each finished request, round, level,
warning) goes to a ``RunObserver`` as it happens, so the caller can log records crash-safely and
show progress; the runner itself never prints.  Finished rounds are appended to the RunResult the
caller owns, so Ctrl-C loses none of them.
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter, deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from time import perf_counter_ns
from typing import Protocol

import aiohttp

from drbench.client import Endpoint, PreparedRequest, make_session, post_reset, send
from drbench.config import DEFAULT_MAX_TOKENS, BenchConfig
from drbench.dataset import cold_prefix, with_prefix
from drbench.records import Prompt, RequestRecord
from drbench.response import RawExchange, finish_steps, parse_steps
from drbench.results import LevelResult, RoundResult, RunResult, ServerRound
from drbench.sanity import RoundFacts, no_usage_warning, round_warnings
from drbench.slo import SLO
from drbench.tokens import TokenCounter

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


class RoundProgress(Protocol):
    def update(self, record: RequestRecord) -> None: ...
    def close(self) -> None: ...


class MetricsWatcher(Protocol):
    """What the runner asks of the server-metrics watcher (``ServerMetricsWatcher``)."""

    async def probe(self) -> list[str]:
        """Scrape once before the first level; the warnings it has (dead URL, no metric)."""
        ...

    async def start_round(self) -> None: ...

    async def end_round(self) -> ServerRound:
        """The closing scrapes; the round's server figures."""
        ...

    def missing_round(self, reason: str) -> ServerRound:
        """Figures marked missing, for a round cut short before its closing scrape."""
        ...

    async def stop(self) -> None: ...


#: Builds the watcher on the run's session (one factory, so the runner owns the session).
WatcherFactory = Callable[[aiohttp.ClientSession], MetricsWatcher]


class RunObserver(Protocol):
    """What the runner tells its caller; every method must return quickly (it runs on the loop)."""

    def round_started(self, concurrency: int, round: int, total: int) -> RoundProgress: ...
    def request_done(self, record: RequestRecord) -> None: ...
    def round_done(self, level: LevelResult, result: RoundResult) -> None: ...
    def level_done(self, level: LevelResult) -> None: ...
    def warning(self, message: str) -> None: ...


@dataclass(frozen=True)
class RunPlan:
    """Everything the runner needs besides the config: resolved model, prompts, SLO, watcher."""

    config: BenchConfig
    endpoint: Endpoint
    model: str
    prompts: Sequence[Prompt]
    slo: SLO | None = None
    run_token: str = ""
    watcher_factory: WatcherFactory | None = None  # None: no --prometheus-url
    tokenizer: TokenCounter | None = None  # --tokenizer: counts when the server sends no usage
    timing: Counter[str] = field(default_factory=Counter)  # responses by stamp source
    block_size: int | None = None  # the server's prefix-cache block, when its metrics say
    capacity_tokens: int | None = None  # the server's prefix-cache capacity, when they say
    cache_off_cause: str | None = (
        None  # the server profile's reason for a cache that reused nothing
    )


async def run(plan: RunPlan, result: RunResult, observer: RunObserver) -> None:
    """Run every level of the plan, appending each finished round to ``result``."""
    cfg = plan.config
    async with make_session(max(cfg.concurrency), cfg.timeout) as session:
        watcher = plan.watcher_factory(session) if plan.watcher_factory else None
        try:
            if watcher is not None:
                for line in await watcher.probe():
                    result.warnings.append(line)
                    observer.warning(line)
            for index, concurrency in enumerate(cfg.concurrency):
                level = LevelResult(
                    concurrency=concurrency,
                    cold_start=cfg.cold_start,
                    effective_concurrency=min(concurrency, len(plan.prompts)),
                    round2_mode=cfg.round2_mode,
                )
                result.levels.append(level)
                await _run_level(plan, session, watcher, level, index, observer)
                observer.level_done(level)
        finally:
            if watcher is not None:
                await watcher.stop()


async def _run_level(
    plan: RunPlan,
    session: aiohttp.ClientSession,
    watcher: MetricsWatcher | None,
    level: LevelResult,
    index: int,
    observer: RunObserver,
) -> None:
    cfg = plan.config
    if cfg.cold_start == "reset" and cfg.cache_reset_url:
        problem = await post_reset(session, cfg.cache_reset_url)
        if problem:
            level.warnings.append(problem + " (round 1 may not be cold)")
            observer.warning(level.warnings[-1])
    nonce = cfg.cold_start == "nonce"
    n = len(plan.prompts)
    requests = [
        _prepare(plan, with_prefix(_as_sent(plan, p), cold_prefix(plan.run_token, index, i, n)))
        if nonce
        else _prepare(plan, p)
        for i, p in enumerate(plan.prompts)
    ]
    if level.concurrency > n:
        level.warnings.append(
            f"concurrency {level.concurrency} with {n} prompts keeps at most {n} requests in "
            f"flight: the level is really concurrency {n} (give --num-samples "
            f"{level.concurrency} or more to load it)"
        )
        observer.warning(level.warnings[-1])
    for rnd in range(1, cfg.rounds + 1):
        if rnd > 1:
            if cfg.round_pause:
                await asyncio.sleep(cfg.round_pause)
            if cfg.round2_mode == "continue":
                requests, failed = continue_requests(
                    requests,
                    level.rounds[-1].records,
                    plan.prompts,
                    cfg.followup_text,
                    plan.tokenizer,
                )
                _drop_texts(level.rounds[-1].records)
                if failed:
                    level.warnings.append(
                        f"{failed} prompt(s) failed in round {rnd - 1}; round {rnd} resent "
                        "their previous request instead of continuing the conversation"
                    )
        result = await _run_round(plan, session, watcher, requests, level, rnd, observer)
        if cfg.round2_mode != "continue" or rnd == cfg.rounds:
            _drop_texts(result.records)  # logged and in the round's file: not needed again
        facts = RoundFacts(
            concurrency=level.concurrency,
            round=rnd,
            records=result.records,
            client_cached_share=result.summary.cache.client_cached_share,
            server_hit_rate=result.server_hit_rate,
            cold_start=cfg.cold_start,
            block_size=plan.block_size,
            capacity_tokens=plan.capacity_tokens,
            cache_off_cause=plan.cache_off_cause,
            estimates={r.prompt_id: r.prompt_tokens for r in requests},
        )
        lines = round_warnings(facts)
        if index == 0 and rnd == 1 and (line := no_usage_warning(result.records)):
            lines.insert(0, line)
        for line in lines:
            level.warnings.append(line)
            observer.warning(line)
    if len(level.rounds) >= 2:
        from drbench.stats import compare_rounds  # noqa: PLC0415 - numpy, after the rounds

        r1, r2 = level.rounds[0], level.rounds[1]
        level.comparison = compare_rounds(
            r1.records,
            r2.records,
            r1.summary,
            r2.summary,
            hit_rates=(r1.server_hit_rate, r2.server_hit_rate),
            seed=cfg.seed,
        )


async def _run_round(
    plan: RunPlan,
    session: aiohttp.ClientSession,
    watcher: MetricsWatcher | None,
    requests: list[PreparedRequest],
    level: LevelResult,
    rnd: int,
    observer: RunObserver,
) -> RoundResult:
    """One round; it is appended to ``level`` as soon as its last request ends.

    A round whose requests have all ended is kept even if Ctrl-C comes before its closing
    Prometheus scrapes (or during them): its server figures are then marked missing.
    """
    cfg, endpoint, concurrency = plan.config, plan.endpoint, level.concurrency
    records: list[RequestRecord | None] = [None] * len(requests)
    progress = observer.round_started(concurrency, rnd, len(requests))
    if watcher is not None:
        await watcher.start_round()
    queue = iter(enumerate(requests))
    ended: asyncio.Queue[tuple[int, PreparedRequest, RawExchange] | None] = asyncio.Queue()
    turns = _Turns()
    timing = plan.timing
    gc.collect()
    gc.freeze()  # a full collection mid-round would stall every stream's timestamps
    round_start_ns = perf_counter_ns()

    def steps(req: PreparedRequest, raw: RawExchange) -> Generator[None, None, RequestRecord]:
        timing["socket" if raw.socket_stamps else "wakeup"] += 1
        return parse_steps(
            raw,
            prompt_id=req.prompt_id,
            concurrency=concurrency,
            round=rnd,
            round_start_ns=round_start_ns,
            prompt_tokens=req.prompt_tokens,
            tokenizer=plan.tokenizer,
            max_line_bytes=cfg.max_line_bytes,
        )

    def finish(i: int, req: PreparedRequest, rec: RequestRecord) -> None:
        rec.max_tokens = req.max_tokens
        records[i] = rec
        observer.request_done(rec)
        progress.update(rec)

    async def worker() -> None:
        for i, req in queue:
            await turns.wait()
            raw = await send(session, endpoint, req, cfg.timeout, cfg.max_response_bytes)
            ended.put_nowait((i, req, raw))

    async def workers() -> None:
        try:
            await asyncio.gather(*(worker() for _ in range(min(concurrency, len(requests)))))
        finally:
            ended.put_nowait(None)

    async def parser() -> None:
        while (item := await ended.get()) is not None:
            i, req, raw = item
            parse = steps(req, raw)
            while True:  # a slice of a record per loop iteration: reads keep being stamped
                try:
                    next(parse)
                except StopIteration as stop:
                    finish(i, req, stop.value)
                    break
                finally:
                    await asyncio.sleep(0)

    result: RoundResult | None = None
    interrupted = True
    try:
        await asyncio.gather(workers(), parser())
        interrupted = False
    finally:
        while not ended.empty():  # interrupted: what was received is still parsed and logged
            if (item := ended.get_nowait()) is not None:
                i, req, raw = item
                finish(i, req, finish_steps(steps(req, raw)))
        gc.unfreeze()
        progress.close()
        done = [r for r in records if r is not None]
        if len(done) == len(records):  # every request ended: the round is kept
            result = _keep_round(plan, level, done, rnd, watcher)
            if interrupted:  # Ctrl-C after the last record: report the round and stop
                observer.round_done(level, result)
    assert result is not None  # the gather above returned: every request has its record
    if watcher is not None:
        try:
            result.server = await watcher.end_round()
        finally:  # also when Ctrl-C comes during the closing scrapes
            observer.round_done(level, result)
    else:
        observer.round_done(level, result)
    return result


def _keep_round(
    plan: RunPlan,
    level: LevelResult,
    records: list[RequestRecord],
    rnd: int,
    watcher: MetricsWatcher | None,
) -> RoundResult:
    """Summarise a round whose requests all ended and append it to its level at once."""
    from drbench.stats import summarize_round  # noqa: PLC0415 - numpy: not before the first send

    summary = summarize_round(records, concurrency=level.concurrency, round=rnd, slo=plan.slo)
    server = watcher.missing_round(_NO_CLOSING_SCRAPE) if watcher is not None else None
    result = RoundResult(summary=summary, records=list(records), server=server)
    level.rounds.append(result)
    return result


class _Turns:
    """Lets one waiting worker send per event-loop iteration.

    In a closed loop many requests end together (each wave started together), and their workers
    would all send their next request within one loop iteration; every read arriving meanwhile
    would wait for all of those sends before it is stamped.  Taking turns bounds that wait to one
    send, without changing how many requests are in flight.
    """

    __slots__ = ("_loop", "_scheduled", "_waiting")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._scheduled = False

    async def wait(self) -> None:
        fut = self._loop.create_future()
        self._waiting.append(fut)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._next)
        await fut

    def _next(self) -> None:
        waiting = self._waiting
        while waiting:
            fut = waiting.popleft()
            if not fut.done():  # a cancelled worker gives its turn up
                fut.set_result(None)
                break
        self._scheduled = bool(waiting)
        if waiting:
            self._loop.call_soon(self._next)


def _drop_texts(records: Sequence[RequestRecord]) -> None:
    """Free the answers' text once requests.jsonl, the round's file and (``--round2-mode
    continue``) the next round's requests have it: a run keeps every record to its end, and the
    text would be most of what a record weighs (issue 11)."""
    for record in records:
        record.output_text = None


def continue_requests(
    previous: Sequence[PreparedRequest],
    records: Sequence[RequestRecord],
    prompts: Sequence[Prompt],
    default_followup: str,
    tokenizer: TokenCounter | None = None,
) -> tuple[list[PreparedRequest], int]:
    """Round k+1 of a conversation: round k's request, its real answer, then a follow-up turn.

    A prompt whose previous request failed has no answer to continue from; it is resent as it
    was (and counted, so the report can say so).
    """
    answers = {r.prompt_id: r.output_text for r in records if r.ok}
    followups = {p.id: p.followup for p in prompts}
    out, failed = [], 0
    for req in previous:
        answer = answers.get(req.prompt_id)
        if answer is None:
            out.append(req)
            failed += 1
            continue
        followup = followups.get(req.prompt_id) or default_followup
        payload = dict(req.payload)
        if "messages" in payload:
            payload["messages"] = [
                *payload["messages"],
                {"role": "assistant", "content": answer},
                {"role": "user", "content": followup},
            ]
        else:
            payload["prompt"] = f"{payload['prompt']}{answer}\n\n{followup}\n\n"
        out.append(PreparedRequest.of(req.prompt_id, payload, tokenizer))
    return out, failed


def max_tokens_for(prompt: Prompt, configured: int | None) -> tuple[int, str]:
    """A request's max_tokens and where it came from: an explicit --max-tokens (or recipe key)
    wins over the record's own value, which wins over the default."""
    if configured is not None:
        return configured, "flag"
    if prompt.max_tokens is not None:
        return prompt.max_tokens, "dataset"
    return DEFAULT_MAX_TOKENS, "default"


def _as_sent(plan: RunPlan, prompt: Prompt) -> Prompt:
    """The prompt in the shape the endpoint gets it: for completions, chat messages are joined
    into one text first, so that the nonce goes before the role labels, at the very start."""
    if plan.endpoint.kind == "completions" and prompt.messages is not None:
        return replace(prompt, text=prompt.as_text(), messages=None)
    return prompt


def _prepare(plan: RunPlan, prompt: Prompt) -> PreparedRequest:
    cfg = plan.config
    max_tokens, _ = max_tokens_for(prompt, cfg.max_tokens)
    body = plan.endpoint.body(
        prompt, model=plan.model, max_tokens=max_tokens, temperature=cfg.temperature
    )
    return PreparedRequest.of(prompt.id, body, plan.tokenizer)
