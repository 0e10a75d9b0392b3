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
    where = f"round {f.round} at {f.level.label}"
    ok = [r for r in f.records if r.ok]
    cache = _not_cold(f, where) if f.round == 1 else _not_warm(f, where, ok)
    return [
        *cache,
        *([] if cache else _below_offered(f, where)),
        *_implausible_usage(f, where, ok),
        *_ignored_limits(where, ok),
        *_events_per_token(where, ok),
    ]


def _shares(f: RoundFacts) -> list[str]:
    named = [("of prompt tokens cached (usage)", f.client_cached_share)]
    named.append(("server hit rate", f.server_hit_rate))
    return [f"{100 * v:.1f}% {name}" for name, v in named if v is not None]


def _not_cold(f: RoundFacts, where: str) -> list[str]:
    shares = [v for v in (f.client_cached_share, f.server_hit_rate) if v is not None]
    # Prompts that share prefixes among themselves (a workload) are cached within round 1.
    if not shares or max(shares) <= COLD_MAX_SHARE + (f.offered_share or 0.0):
        return []
    cause = {
        "none": "--cold-start none sends prompts the server may have cached before (an earlier "
        "level or run); use --cold-start nonce (the default) or --cold-start reset",
        "reset": "the cache reset did not empty the cache, or another client shares the server; "
        "check --cache-reset-url, or use --cold-start nonce",
        "nonce": "the chat template's header before the nonce is cached, or another client "
        "shares the server; compare the cached tokens per prompt with the template's length",
    }.get(f.cold_start, "")
    return [f"{where} was not cold: {', '.join(_shares(f))}. Likely cause: {cause}"]


def _not_warm(f: RoundFacts, where: str, ok: Sequence[RequestRecord]) -> list[str]:
    shares = [v for v in (f.client_cached_share, f.server_hit_rate) if v is not None]
    if not shares or max(shares) >= WARM_MIN_SHARE:
        return []  # no cache figures at all, or some reuse
    prompt = [r.prompt_tokens for r in ok if r.prompt_tokens is not None]
    mean = sum(prompt) / len(prompt) if prompt else None
    if f.block_size and mean is not None and mean < f.block_size:
        cause = (
            f"the prompts average {mean:.0f} tokens, shorter than the server's cache block of "
            f"{f.block_size} tokens (only whole blocks are cached): use longer prompts"
        )
    elif f.capacity_tokens and sum(prompt) > f.capacity_tokens:
        cause = (
            f"the round's prompts total {sum(prompt)} tokens, more than the server's cache holds "
            f"({f.capacity_tokens} tokens), so each is evicted before it is reused: use fewer or "
            "shorter prompts"
        )
    else:
        off = f.cache_off_cause or GENERIC.cache_off
        cause = f"{off}, or the cache is too small for the round's prompts (evicted before reuse)"
    return [
        f"{where} reused almost nothing ({', '.join(_shares(f))}), so it does not measure "
        f"what the cache buys. Likely cause: {cause}"
    ]


def _below_offered(f: RoundFacts, where: str) -> list[str]:
    """The server got less than half the reuse the round's prompts offered (from 50% on).

    With the oracle's expected hit rate (an LRU of the server's capacity) the cause narrows:
    measured near expected means the capacity explains it; far below expected, it does not.
    """
    shares = [v for v in (f.client_cached_share, f.server_hit_rate) if v is not None]
    offer = f.offered_share
    if not shares or offer is None or offer < OFFERED_MIN_SHARE or max(shares) >= offer / 2:
        return []
    off = f.cache_off_cause or GENERIC.cache_off
    head = f"{where} reused less than half of what its prompts offered ({', '.join(_shares(f))}; "
    expected, capacity = f.expected_share, f.expected_capacity_tokens
    if expected is None or capacity is None:
        return [
            f"{head}offered prefix share {100 * offer:.1f}%). Likely cause: {off}, the cache "
            "holds less than the round's working set (evicted before reuse), a router spreads "
            "the shared prefixes over replicas, or requests sharing a prefix ran together "
            "before it was cached"
        ]
    yardstick = (
        f"offered prefix share {100 * offer:.1f}%, expected {100 * expected:.1f}% from an LRU "
        f"of {capacity} tokens)"
    )
    if max(shares) >= expected / 2:
        return [
            f"{head}{yardstick}. Likely cause: the cache holds less than the round's working "
            "set, as the expected hit rate says (evicted before reuse): a bigger cache, fewer "
            "or shorter prompts, or a grouped order would reuse more"
        ]
    return [
        f"{head}{yardstick}, far below what its capacity allows. Likely cause: {off}, an "
        "eviction policy that keeps less than LRU, a router spreads the shared prefixes over "
        "replicas, or requests sharing a prefix ran together before it was cached"
    ]


def _implausible_usage(f: RoundFacts, where: str, ok: Sequence[RequestRecord]) -> list[str]:
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
            f"{where}: the server's usage.prompt_tokens (median {told:g}) is "
            f"{told / guessed:.2g}x the estimate from the prompts' text (median {guessed:g}): "
            "its usage looks implausible, so token counts and cached shares are suspect"
        ]
    return []


def _ignored_limits(where: str, ok: Sequence[RequestRecord]) -> list[str]:
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
        f"{where}: {len(over)} of {len(ok)} answers had more tokens than max_tokens asked (e.g. "
        f"{worst.completion_tokens} > {worst.max_tokens}): the server ignores max_tokens, so "
        "output lengths and throughput are not the configured ones"
    ]


def _events_per_token(where: str, ok: Sequence[RequestRecord]) -> list[str]:
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
    basis = (
        " (token counts estimated from the text: the server sends no usage)" if estimated else ""
    )
    if ratio < lo:
        return [
            f"{where}: the server streamed {tokens / events:.1f} tokens per event{basis}: ITL is "
            "the gap between events of several tokens, TPOT stays per token"
        ]
    return [
        f"{where}: the server streamed {ratio:.1f} events per token{basis} (pieces of tokens, "
        "e.g. one character per event): ITL is per event, not per token"
    ]


def load_warnings(
    level: Level, summary: RoundSummary, where: str, *, truncated: bool, unsent: int
) -> list[str]:
    """What the load really was, when it was not what the level asked for."""
    out = []
    if truncated:
        out.append(
            f"{where} was truncated by --max-round-duration: {unsent} of "
            f"{summary.requests_total + unsent} requests were never sent; its figures cover the "
            "requests sent"
        )
    load = summary.load
    lag = load.send_lag_ms if load is not None else None
    if load is None or lag is None or not lag.count or lag.p99 is None or lag.p50 is None:
        return out
    rate = level.rate or 0.0
    if math.isinf(rate) or lag.p99 <= SEND_LAG_WARN_MS:
        return out
    figures = f"send lag p50 {lag.p50:.1f} ms, p99 {lag.p99:.1f} ms"
    cap = level.max_concurrency
    if cap is not None and load.concurrency_peak is not None and load.concurrency_peak >= cap:
        out.append(
            f"{where}: requests waited for room under --max-concurrency {cap} ({figures}): the "
            "server did not keep up with the schedule at that cap (queueing in the client, by "
            "design)"
        )
    else:
        out.append(
            f"{where}: the client fell behind its schedule ({figures}), so the server got less "
            "than the schedule asked: lower the rate (or --speedup), or send from more processes "
            "(--workers)"
        )
    return out


def no_usage_warning(records: Sequence[RequestRecord]) -> str | None:
    """Said once per run: the server sent no usage, so every token count is the client's."""
    ok = [r for r in records if r.ok]
    if not ok or any(r.token_source is TokenSource.USAGE for r in ok):
        return None
    if all(r.token_source is TokenSource.TOKENIZER for r in ok):
        return "the server sends no usage: token counts come from --tokenizer"
    return (
        "the server sends no usage (stream_options.include_usage): token counts are estimated "
        "from the text (about 4 characters per token); pass --tokenizer PATH for exact counts"
    )
