"""Checks that say, in one line each, when a round cannot answer the cache question or when the
server's own numbers look wrong.

Pure: each takes a finished round and what the plan knew (the cold-start policy, the server's
cache block size and capacity and its profile's words for a cache that is off, the client's
estimate of each prompt's tokens) and returns warning lines; the
runner logs them, prints them and writes them into ``summary.json``.  docs/benchmarker_guide.md
lists every sentence.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from drbench.levels import Level
from drbench.messages import Message, round_where
from drbench.prometheus.profiles import GENERIC
from drbench.records import ColdStart, RequestRecord, TokenSource

if TYPE_CHECKING:  # numpy: sanity is imported before the first send
    from drbench.stats import RoundSummary

__all__ = [
    "COLD_MAX_SHARE",
    "OFFERED_MIN_SHARE",
    "SEND_LAG_WARN_MS",
    "WARM_MIN_SHARE",
    "RoundFacts",
    "load_warnings",
    "no_usage_warning",
    "round_warnings",
]

SEND_LAG_WARN_MS = 10.0  # an open loop whose send lag p99 is above this fell behind
COLD_MAX_SHARE = 0.05  # a round 1 more cached than this was not cold
WARM_MIN_SHARE = 0.01  # a later round less cached than this reused (almost) nothing
OFFERED_MIN_SHARE = 0.5  # from this offered prefix share on, getting under half of it is told
_EVENTS_PER_TOKEN = (0.5, 1.5)  # outside this, ITL is not a per-token figure


@dataclass(frozen=True)
class RoundFacts:
    """One finished round, as the checks need it."""

    level: Level
    round: int
    records: Sequence[RequestRecord]
    client_cached_share: float | None  # usage's cached_tokens / prompt_tokens
    server_hit_rate: float | None  # from the server's counters, when scraped
    cold_start: ColdStart
    block_size: int | None = None  # the server's cache block, when it says
    estimates: Mapping[str, int] | None = None  # prompt id -> the client's prompt-token count
    capacity_tokens: int | None = None  # the server's cache capacity, when it says
    cache_off_cause: str | None = None  # the server profile's words for "caching is off"
    # (None: the generic profile's, which names vLLM's and SGLang's switches)
    offered_share: float | None = None  # what an unlimited cache could reuse (reuse.py)
    expected_share: float | None = None  # what an LRU of the capacity would reuse (oracle.py)
    expected_capacity_tokens: int | None = None  # the capacity that LRU had


def round_warnings(f: RoundFacts) -> list[str]:
    """Every warning about one round, in a stable order."""
    where = round_where(f.round, f.level)
    ok = [r for r in f.records if r.ok]
    cache = _not_cold(f, where) if f.round == 1 else _not_warm(f, where, ok)
    return [
        *cache,
        *([] if cache else _below_offered(f, where)),
        *_implausible_usage(f, where, ok),
        *_ignored_limits(where, ok),
        *_events_per_token(where, ok),
    ]


def _shares(f: RoundFacts) -> Message:
    """``X% of prompt tokens cached (usage), Y% server hit rate`` (the figures known)."""
    named = [("share_usage", f.client_cached_share), ("share_server", f.server_hit_rate)]
    parts = [Message(key, v=f"{100 * v:.1f}") for key, v in named if v is not None]
    return Message("join2" if len(parts) == 2 else "join1", a=parts[0], b=parts[-1])


def _not_cold(f: RoundFacts, where: Message) -> list[str]:
    shares = [v for v in (f.client_cached_share, f.server_hit_rate) if v is not None]
    # Prompts that share prefixes among themselves (a workload) are cached within round 1.
    if not shares or max(shares) <= COLD_MAX_SHARE + (f.offered_share or 0.0):
        return []
    cause = Message(f"cause_cold_{f.cold_start}")
    return [Message("not_cold", where=where, shares=_shares(f), cause=cause)]


def _not_warm(f: RoundFacts, where: Message, ok: Sequence[RequestRecord]) -> list[str]:
    shares = [v for v in (f.client_cached_share, f.server_hit_rate) if v is not None]
    if not shares or max(shares) >= WARM_MIN_SHARE:
        return []  # no cache figures at all, or some reuse
    prompt = [r.prompt_tokens for r in ok if r.prompt_tokens is not None]
    mean = sum(prompt) / len(prompt) if prompt else None
    if f.block_size and mean is not None and mean < f.block_size:
        cause = Message("cause_short", mean=f"{mean:.0f}", block=f.block_size)
    elif f.capacity_tokens and sum(prompt) > f.capacity_tokens:
        cause = Message("cause_capacity", total=sum(prompt), capacity=f.capacity_tokens)
    else:
        cause = Message("cause_off", off=f.cache_off_cause or GENERIC.cache_off)
    return [Message("not_warm", where=where, shares=_shares(f), cause=cause)]


def _below_offered(f: RoundFacts, where: Message) -> list[str]:
    """The server got less than half the reuse the round's prompts offered (from 50% on).

    With the oracle's expected hit rate (an LRU of the server's capacity) the cause narrows:
    measured near expected means the capacity explains it; far below expected, it does not.
    """
    shares = [v for v in (f.client_cached_share, f.server_hit_rate) if v is not None]
    offer = f.offered_share
    if not shares or offer is None or offer < OFFERED_MIN_SHARE or max(shares) >= offer / 2:
        return []
    off = f.cache_off_cause or GENERIC.cache_off
    common: dict[str, object] = {
        "where": where,
        "shares": _shares(f),
        "offer": f"{100 * offer:.1f}",
    }
    expected, capacity = f.expected_share, f.expected_capacity_tokens
    if expected is None or capacity is None:
        return [Message("below_offered", **common, off=off)]
    common |= {"expected": f"{100 * expected:.1f}", "capacity": capacity}
    if max(shares) >= expected / 2:
        return [Message("below_offered_capacity", **common)]
    return [Message("below_offered_far", **common, off=off)]


def _implausible_usage(f: RoundFacts, where: Message, ok: Sequence[RequestRecord]) -> list[str]:
    if not f.estimates:
        return []
    pairs = [
        (r.prompt_tokens, f.estimates[r.prompt_id])
        for r in ok
        if r.token_source is TokenSource.USAGE
        and r.prompt_tokens is not None
        and f.estimates.get(r.prompt_id)
    ]
    if not pairs:
        return []
    told = statistics.median(p for p, _ in pairs)
    guessed = statistics.median(e for _, e in pairs)
    # The estimate is within tens of percent; the chat template adds a few dozen tokens.
    if (guessed >= 32 and told < guessed / 4) or told > 4 * guessed + 256:
        return [
            Message(
                "implausible_usage",
                where=where,
                told=f"{told:g}",
                ratio=f"{told / guessed:.2g}",
                guessed=f"{guessed:g}",
            )
        ]
    return []


def _ignored_limits(where: Message, ok: Sequence[RequestRecord]) -> list[str]:
    over = [
        r
        for r in ok
        if r.token_source is TokenSource.USAGE
        and r.max_tokens is not None
        and r.completion_tokens is not None
        and r.completion_tokens > r.max_tokens
    ]
    if not over:
        return []
    worst = max(over, key=lambda r: r.completion_tokens or 0)
    return [
        Message(
            "ignored_limits",
            where=where,
            over=len(over),
            ok=len(ok),
            got=worst.completion_tokens,
            asked=worst.max_tokens,
        )
    ]


def _events_per_token(where: Message, ok: Sequence[RequestRecord]) -> list[str]:
    counted = [r for r in ok if r.completion_tokens and r.completion_tokens >= 2]
    tokens = sum(r.completion_tokens or 0 for r in counted)
    events = sum(r.token_events for r in counted)
    if not tokens or not events:
        return []
    ratio = events / tokens
    lo, hi = _EVENTS_PER_TOKEN
    if lo <= ratio <= hi:
        return []
    estimated = all(r.token_source is TokenSource.ESTIMATE for r in counted)
    basis = Message("estimated_basis") if estimated else ""
    if ratio < lo:
        return [Message("tokens_per_event", where=where, v=f"{tokens / events:.1f}", basis=basis)]
    return [Message("events_per_token", where=where, v=f"{ratio:.1f}", basis=basis)]


def load_warnings(
    level: Level, summary: RoundSummary, where: str, *, truncated: bool, unsent: int
) -> list[str]:
    """What the load really was, when it was not what the level asked for (``where`` is
    ``messages.round_where``'s; a plain string is printed as it is)."""
    out: list[str] = []
    if truncated:
        total = summary.requests_total + unsent
        out.append(Message("truncated", where=where, unsent=unsent, total=total))
    load = summary.load
    lag = load.send_lag_ms if load is not None else None
    if load is None or lag is None or not lag.count or lag.p99 is None or lag.p50 is None:
        return out
    rate = level.rate or 0.0
    if math.isinf(rate) or lag.p99 <= SEND_LAG_WARN_MS:
        return out
    figures = Message("lag_figures", p50=f"{lag.p50:.1f}", p99=f"{lag.p99:.1f}")
    cap = level.max_concurrency
    if cap is not None and load.concurrency_peak is not None and load.concurrency_peak >= cap:
        out.append(Message("capped", where=where, cap=cap, figures=figures))
    else:
        out.append(Message("fell_behind", where=where, figures=figures))
    return out


def no_usage_warning(records: Sequence[RequestRecord]) -> str | None:
    """Said once per run: the server sent no usage, so every token count is the client's."""
    ok = [r for r in records if r.ok]
    if not ok or any(r.token_source is TokenSource.USAGE for r in ok):
        return None
    if all(r.token_source is TokenSource.TOKENIZER for r in ok):
        return Message("no_usage_tokenizer")
    return Message("no_usage")
