"""What each round sends: the run's plan, its prepared requests, the cold-start and round-2 policies.

Everything here is decided before a round starts and is plain data (no session, no loop), so a
round's requests can be handed to worker processes as they are.  The runner asks this module for a
level's round-1 requests (with the cold-start nonce), its warm-up requests (with nonces of their
own) and round k+1's requests (the same ones, or the conversation continued with round k's answers).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from drbench.client import Endpoint, PreparedRequest
from drbench.config import DEFAULT_MAX_TOKENS, BenchConfig
from drbench.dataset import cold_prefix, with_prefix
from drbench.records import Prompt, RequestRecord
from drbench.results import ServerRound
from drbench.reuse import Tokenization
from drbench.slo import SLO
from drbench.tokens import TokenCounter

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "MetricsWatcher",
    "RunPlan",
    "WatcherFactory",
    "continue_requests",
    "level_requests",
    "max_tokens_for",
    "prefix_groups",
    "warmup_requests",
]


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
WatcherFactory = Callable[["aiohttp.ClientSession"], MetricsWatcher]


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
    # How the cache oracle makes units of a request (None: --tokenizer's ids, else the
    # estimate); tests hand it the bundled mocker's own tokenizer.
    tokenization: Tokenization | None = None

    @property
    def timestamps_ms(self) -> tuple[float, ...]:
        """The prompts' send times under --fixed-schedule (in order; empty without one)."""
        return tuple(p.timestamp_ms for p in self.prompts if p.timestamp_ms is not None)


def level_requests(plan: RunPlan, index: int) -> list[PreparedRequest]:
    """Round 1 of level ``index``: every prompt, with its nonce under ``--cold-start nonce``.

    Prompts of one ``prefix_group`` share their nonce (each other prompt has its own), so a
    workload's shared prefix stays shared inside round 1 while no block is shared with another
    level, another group or an earlier run.
    """
    if plan.config.cold_start != "nonce":
        return [_prepare(plan, p) for p in plan.prompts]
    groups = prefix_groups(plan.prompts)
    n = max(groups, default=-1) + 1
    return [
        _prepare(plan, with_prefix(_as_sent(plan, p), cold_prefix(plan.run_token, index, g, n)))
        for p, g in zip(plan.prompts, groups, strict=True)
    ]


def prefix_groups(prompts: Sequence[Prompt]) -> list[int]:
    """Each prompt's group number, counted in order of first appearance; a prompt without a
    ``prefix_group`` is a group of its own."""
    numbers: dict[object, int] = {}
    return [
        numbers.setdefault(p.group if p.group is not None else (i,), len(numbers))
        for i, p in enumerate(prompts)
    ]


def warmup_requests(plan: RunPlan, index: int, count: int) -> list[PreparedRequest]:
    """``count`` requests sent before level ``index`` (the prompts, cycled), left out of every
    statistic.  Each carries a nonce of its own, counted past every level's (level numbers from
    the number of levels on), whatever the cold-start policy: a warm-up request shares no block
    with any request of round 1, so it warms connections and the server, never its cache."""
    prompts, levels = plan.prompts, len(plan.config.levels)
    if not prompts or count <= 0:
        return []
    per_level = max(len(prompts), count)
    out = []
    for j in range(count):
        prompt = replace(prompts[j % len(prompts)], id=f"warmup-{j}")
        nonce = cold_prefix(plan.run_token, levels + index, j, per_level)
        out.append(_prepare(plan, with_prefix(_as_sent(plan, prompt), nonce)))
    return out


def continue_requests(
    previous: Sequence[PreparedRequest],
    records: Sequence[RequestRecord],
    prompts: Sequence[Prompt],
    default_followup: str,
    tokenizer: TokenCounter | None = None,
    *,
    round: int = 2,
) -> tuple[list[PreparedRequest], int]:
    """Round ``round`` of a conversation: the previous round's request, its real answer, then
    the record's follow-up turn for that round (``followups``, else ``followup``, else
    ``default_followup``).

    A prompt whose previous request failed has no answer to continue from; it is resent as it
    was (and counted, so the report can say so).  One that was never sent (a round truncated by
    --max-round-duration) is resent too, but not counted as failed.
    """
    answers = {r.prompt_id: r.output_text for r in records if r.ok}
    sent = {r.prompt_id for r in records}
    by_id = {p.id: p for p in prompts}
    out, failed = [], 0
    for req in previous:
        answer = answers.get(req.prompt_id)
        if answer is None:
            out.append(req)
            failed += req.prompt_id in sent
            continue
        prompt = by_id.get(req.prompt_id)
        followup = prompt.followup_for(round, default_followup) if prompt else default_followup
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
