"""TTFT broken down: by round (a turn, in ``--round2-mode continue``), by context length, over time.

A round's table says how fast a round was as a whole; cache workloads need to see where inside
the run the time went: sessions get slower or faster as turns add history, long contexts cost
more prefill unless the history hits, and a trace replay's load changes over its length.  These
are pure functions over ``RequestRecord`` lists (numpy for the percentiles, as stats.py): no I/O,
no printing, no clock.  Failed requests count where a row says "failed" or "started" and are
left out of every TTFT figure; missing data is ``None``, never 0.

Kept apart from stats.py, which summarises and compares whole rounds (stats imports this module
for a round's ``ttft_over_time``; this one imports nothing of it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from drbench.records import RequestRecord

__all__ = [
    "ContextBucket",
    "TimeWindow",
    "TurnRow",
    "context_bucket",
    "ttft_by_context",
    "ttft_by_turn",
    "ttft_over_time",
    "window_width_s",
]

WINDOWS = 10  # at most this many windows over a round (see window_width_s)


@dataclass(frozen=True)
class TurnRow:
    """One round of a level; in ``--round2-mode continue`` round k is turn k of every session."""

    round: int
    requests: int  # successful requests
    context_tokens_mean: float | None  # mean prompt tokens: the conversation so far
    ttft_p50_ms: float | None
    ttft_p90_ms: float | None
    ttft_p99_ms: float | None
    cached_share: float | None  # usage cached_tokens / prompt_tokens, as a round's cache line

    def to_dict(self) -> dict[str, Any]:
        """One entry of summary.json's ``levels[].by_turn``."""
        return {
            "round": self.round,
            "requests": self.requests,
            "context_tokens_mean": self.context_tokens_mean,
            "ttft_ms": {"p50": self.ttft_p50_ms, "p90": self.ttft_p90_ms, "p99": self.ttft_p99_ms},
            "cached_share": self.cached_share,
        }


@dataclass(frozen=True)
class ContextBucket:
    """Successful requests whose prompt had ``low_tokens`` <= prompt tokens < ``high_tokens``."""

    low_tokens: int
    high_tokens: int
    requests: int
    context_tokens_mean: float
    ttft_p50_ms: float | None
    ttft_p90_ms: float | None
    ttft_p99_ms: float | None
    cached_share: float | None

    def to_dict(self) -> dict[str, Any]:
        """One entry of summary.json's ``levels[].by_context``."""
        return {
            "low_tokens": self.low_tokens,
            "high_tokens": self.high_tokens,
            "requests": self.requests,
            "context_tokens_mean": self.context_tokens_mean,
            "ttft_ms": {"p50": self.ttft_p50_ms, "p90": self.ttft_p90_ms, "p99": self.ttft_p99_ms},
            "cached_share": self.cached_share,
        }


@dataclass(frozen=True)
class TimeWindow:
    """The requests of a round whose start fell in [``start_s``, ``end_s``) of the round (the
    last window also holds its end)."""

    start_s: float
    end_s: float
    started: int  # requests sent (successful or not)
    failed: int
    ttft_p50_ms: float | None  # over the window's successful requests
    ttft_p90_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        """One entry of summary.json's ``levels[].rounds[].ttft_over_time``."""
        return {
            "start_s": self.start_s,
            "end_s": self.end_s,
            "started": self.started,
            "failed": self.failed,
            "ttft_ms": {"p50": self.ttft_p50_ms, "p90": self.ttft_p90_ms},
        }


def ttft_by_turn(rounds: Sequence[Sequence[RequestRecord]]) -> list[TurnRow]:
    """A row per round (``rounds[0]`` is round 1): successes, mean context, TTFT, cached share."""
    rows = []
    for index, records in enumerate(rounds):
        ok = [r for r in records if r.ok]
        p50, p90, p99 = _percentiles(_ttfts(ok), (50, 90, 99))
        known = [r.prompt_tokens for r in ok if r.prompt_tokens is not None]
        rows.append(
            TurnRow(
                round=index + 1,
                requests=len(ok),
                context_tokens_mean=sum(known) / len(known) if known else None,
                ttft_p50_ms=p50,
                ttft_p90_ms=p90,
                ttft_p99_ms=p99,
                cached_share=_cached_share(ok),
            )
        )
    return rows


def context_bucket(prompt_tokens: int) -> tuple[int, int]:
    """The power-of-two bucket [2^k, 2^(k+1)) holding ``prompt_tokens`` ([0, 1) for 0).

    Why powers of two and not quantile edges: contexts of a session span orders of magnitude
    (a question, then the question plus every answer before it) and prefill cost grows with
    them, so log-spaced buckets keep each one's spread proportionate; and fixed edges put two
    levels, two runs or two servers in the same buckets, where quantile edges would move with
    each run's data and make their rows incomparable.
    """
    if prompt_tokens < 0:
        raise ValueError(f"prompt_tokens must be >= 0, got {prompt_tokens}")
    if prompt_tokens == 0:
        return 0, 1
    low = 1 << (prompt_tokens.bit_length() - 1)
    return low, 2 * low


def ttft_by_context(rounds: Iterable[Sequence[RequestRecord]]) -> list[ContextBucket]:
    """Every successful request of a level's rounds with a known prompt token count, by
    ``context_bucket``; only buckets that hold a request, from the shortest context up."""
    buckets: dict[tuple[int, int], list[RequestRecord]] = {}
    for records in rounds:
        for r in records:
            if r.ok and r.prompt_tokens is not None:
                buckets.setdefault(context_bucket(r.prompt_tokens), []).append(r)
    out = []
    for (low, high), members in sorted(buckets.items()):
        p50, p90, p99 = _percentiles(_ttfts(members), (50, 90, 99))
        out.append(
            ContextBucket(
                low_tokens=low,
                high_tokens=high,
                requests=len(members),
                context_tokens_mean=sum(r.prompt_tokens or 0 for r in members) / len(members),
                ttft_p50_ms=p50,
                ttft_p90_ms=p90,
                ttft_p99_ms=p99,
                cached_share=_cached_share(members),
            )
        )
    return out


def window_width_s(span_s: float) -> float:
    """The window for a round whose requests started over ``span_s`` seconds: the smallest of
    1, 2, 5 x 10^k s that cuts the span into at most ``WINDOWS`` windows.

    Equal tenths of the span would give edges like 0.37 s; a 1-2-5 width gives edges a reader
    can add up (0.5 s, 1 s, 2 s...) at the cost of 5 to 10 windows instead of exactly 10.  A
    round sent all at once (span 0) gets one 1 s window.
    """
    if span_s <= 0:
        return 1.0
    target = span_s / WINDOWS
    exponent = math.floor(math.log10(target))
    for mantissa in (1, 2, 5, 10):
        width = float(f"{mantissa}e{exponent}")
        if width >= target * (1 - 1e-9):
            return width
    raise AssertionError("unreachable: 10 x 10^k >= target")  # pragma: no cover


def ttft_over_time(records: Sequence[RequestRecord]) -> list[TimeWindow]:
    """A round's requests in windows of ``window_width_s`` by when each was due: its scheduled
    time in an open loop (so the load the schedule meant is what is counted, however late the
    client was), else its actual start.  Times are from the round's start; empty windows are
    kept (a lull in a trace is information)."""
    if not records:
        return []
    times = [(r.scheduled_ms if r.scheduled_ms is not None else r.start_ms) / 1000 for r in records]
    span = max(max(times), 0.0)
    width = window_width_s(span)
    count = max(1, math.ceil(span / width - 1e-9))
    members: list[list[RequestRecord]] = [[] for _ in range(count)]
    for t, r in zip(times, records, strict=True):
        members[min(max(math.floor(t / width + 1e-9), 0), count - 1)].append(r)
    out = []
    for i, group in enumerate(members):
        p50, p90 = _percentiles(_ttfts([r for r in group if r.ok]), (50, 90))
        out.append(
            TimeWindow(
                start_s=_round_edge(i * width),
                end_s=_round_edge((i + 1) * width),
                started=len(group),
                failed=sum(not r.ok for r in group),
                ttft_p50_ms=p50,
                ttft_p90_ms=p90,
            )
        )
    return out


def _ttfts(records: Iterable[RequestRecord]) -> list[float]:
    return [r.ttft_ms for r in records if r.ttft_ms is not None]


def _percentiles(values: list[float], qs: tuple[int, ...]) -> tuple[float | None, ...]:
    """Linear-interpolated percentiles (as stats.Distribution); all None for no values."""
    if not values:
        return (None,) * len(qs)
    return tuple(float(v) for v in np.percentile(np.asarray(values, dtype=float), qs))


def _cached_share(ok: Iterable[RequestRecord]) -> float | None:
    """Σ cached_tokens / Σ prompt_tokens over requests reporting both (stats' cache line)."""
    cached = prompt = 0
    seen = False
    for r in ok:
        if r.cached_tokens is not None and r.prompt_tokens is not None:
            seen = True
            cached += r.cached_tokens
            prompt += r.prompt_tokens
    return cached / prompt if seen and prompt else None


def _round_edge(seconds: float) -> float:
    """A window edge without float noise (0.30000000000000004 -> 0.3)."""
    return round(seconds, 9)
