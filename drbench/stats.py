"""Statistics of a round, its goodput, and the comparison of each later round with earlier ones.

Pure functions over ``RequestRecord`` lists (numpy inside): no I/O, no printing, no clock.
Definitions follow docs/benchmarker_guide.md and vLLM's ``bench serve`` where they agree:
percentiles by linear interpolation, population standard deviation, ITL pooled over every gap of
every successful request, failed requests counted but left out of every latency figure.
Missing data stays ``None`` (never 0); rendering the figures is ``report/``'s job.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drbench.breakdown import TimeWindow, ttft_over_time
from drbench.gaps import Gaps
from drbench.levels import Level
from drbench.records import RequestRecord
from drbench.slo import SLO

__all__ = [
    "DEFAULT_PERCENTILES",
    "METRICS",
    "AppliedLoad",
    "BoundCheck",
    "CacheUsage",
    "Change",
    "Comparison",
    "Distribution",
    "Goodput",
    "RoundComparison",
    "RoundData",
    "RoundSummary",
    "Throughput",
    "compare_all",
    "compare_rounds",
    "paired_ttft_ratios",
    "pct_key",
    "round_pairs",
    "summarize_round",
]

METRICS = ("ttft_ms", "itl_ms", "tpot_ms", "latency_ms")
DEFAULT_PERCENTILES = (50.0, 90.0, 99.0)  # the seed's P50/P90/P99: summary.json always has them
TOP_ERRORS = 5
_ERROR_TEXT_MAX = 300
_BOOT_CHUNK_CELLS = 1_000_000  # bound the bootstrap's index matrix to ~8 MB per chunk


def pct_key(p: float) -> str:
    """The name of a percentile in tables, files and SLO keys: 50 -> ``p50``, 99.9 -> ``p99.9``."""
    return f"p{p:g}"


@dataclass(frozen=True)
class Distribution:
    """The seven figures of a metric row (the original README's table) plus the sample count.

    ``p50``, ``p90`` and ``p99`` are always computed (summary.json's contract); ``selected``
    holds the percentiles the run asked for (``--percentiles``), in order, keyed ``p95`` etc.:
    the ones tables show.
    """

    avg: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    min: float | None
    max: float | None
    stddev: float | None
    count: int = 0
    selected: tuple[tuple[str, float | None], ...] = ()  # () : P50, P90, P99

    @classmethod
    def of(
        cls,
        values: Iterable[float] | np.ndarray[Any, Any],
        percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    ) -> Distribution:
        """Linear-interpolated percentiles and population stddev (as vLLM); all None when empty."""
        arr = values if isinstance(values, np.ndarray) else np.fromiter(values, dtype=float)
        wanted = sorted({*DEFAULT_PERCENTILES, *percentiles})
        if arr.size == 0:
            return cls(None, None, None, None, None, None, None, 0, _pick(percentiles, {}))
        found = dict(zip(wanted, (float(v) for v in np.percentile(arr, wanted)), strict=False))
        return cls(
            avg=float(arr.mean()),
            p50=found[50.0],
            p90=found[90.0],
            p99=found[99.0],
            min=float(arr.min()),
            max=float(arr.max()),
            stddev=float(arr.std()),
            count=int(arr.size),
            selected=_pick(percentiles, found),
        )

    @property
    def percentiles(self) -> tuple[tuple[str, float | None], ...]:
        """(name, value) of the selected percentiles, in order; P50, P90, P99 by default."""
        return self.selected or (("p50", self.p50), ("p90", self.p90), ("p99", self.p99))

    @property
    def keys(self) -> tuple[str, ...]:
        """The selected percentiles' names, in order (``p50``, ``p95``...)."""
        return tuple(k for k, _ in self.percentiles)

    def get(self, key: str) -> float | None:
        """A figure by name: ``avg``, ``min``..., or any percentile this distribution holds."""
        for k, v in self.percentiles:
            if k == key:
                return v
        value: float | None = getattr(self, key, None)
        return value

    def to_dict(self) -> dict[str, float | None]:
        """The summary.json metric shape: avg, p50, p90, p99, min, max, stddev, and every other
        selected percentile among the p-keys in ascending order (additive within schema 2)."""
        pcts = {"p50": self.p50, "p90": self.p90, "p99": self.p99, **dict(self.percentiles)}
        ordered = sorted(pcts.items(), key=lambda kv: float(kv[0][1:]))
        return {
            "avg": self.avg,
            **dict(ordered),
            "min": self.min,
            "max": self.max,
            "stddev": self.stddev,
        }


def _pick(
    percentiles: Sequence[float], found: dict[float, float]
) -> tuple[tuple[str, float | None], ...]:
    return tuple((pct_key(p), found.get(float(p))) for p in percentiles)


@dataclass(frozen=True)
class BoundCheck:
    """One SLO bound on a round's percentile (``ttft_p95_ms: 500``): the value and the verdict.

    A percentile bound judges the round, not a request: it takes no part in goodput.  ``met``
    is None when the round has no value for it (no successful request).
    """

    key: str  # the SLO key, e.g. ttft_p95_ms
    bound_ms: float
    value_ms: float | None

    @property
    def met(self) -> bool | None:
        return None if self.value_ms is None else self.value_ms <= self.bound_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "bound_ms": self.bound_ms,
            "value_ms": self.value_ms,
            "met": self.met,
        }


@dataclass(frozen=True)
class Goodput:
    """Requests that succeeded within every SLO bound, of all requests sent in the round."""

    good: int
    total: int
    percent: float | None  # 100 * good / total; None for an empty round
    requests_per_s: float | None  # good requests / round duration
    output_tokens_per_s: float | None  # output tokens of good requests / round duration

    def to_dict(self) -> dict[str, Any]:
        return {
            "good": self.good,
            "total": self.total,
            "percent": self.percent,
            "requests_per_s": self.requests_per_s,
            "output_tokens_per_s": self.output_tokens_per_s,
        }


@dataclass(frozen=True)
class Throughput:
    """Rates over the round's duration (first send to last completion), successful requests."""

    output_tokens_per_s: float | None
    total_tokens_per_s: float | None  # (prompt + output) tokens / duration
    requests_per_s: float | None

    def to_dict(self) -> dict[str, float | None]:
        return {
            "output_tokens_per_s": self.output_tokens_per_s,
            "total_tokens_per_s": self.total_tokens_per_s,
            "requests_per_s": self.requests_per_s,
        }


@dataclass(frozen=True)
class CacheUsage:
    """Client-side view of prefix caching: usage's cached_tokens over prompt_tokens.

    Summed over the successful requests that report both counts; ``None`` throughout when no
    request reports ``cached_tokens`` (the server does not expose it, which is not a 0% hit).
    """

    client_cached_share: float | None
    cached_tokens: int | None
    prompt_tokens: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "client_cached_share": self.client_cached_share,
            "cached_tokens": self.cached_tokens,
            "prompt_tokens": self.prompt_tokens,
        }


@dataclass(frozen=True)
class AppliedLoad:
    """How the load was really applied: the client's lag behind its schedule, and how many
    requests were in flight (the level asks for a shape; these say what the server got)."""

    send_lag_ms: Distribution  # open loop: actual send - scheduled send; count 0 in a closed loop
    concurrency_mean: float | None  # time-averaged requests in flight over the round
    concurrency_peak: int | None  # the most requests in flight at one instant

    @classmethod
    def of(cls, records: Sequence[RequestRecord]) -> AppliedLoad:
        lags = Distribution.of(r.send_lag_ms for r in records if r.send_lag_ms is not None)
        spans = [(r.start_ms, r.end_ms) for r in records if r.end_ms is not None]
        if not spans:
            return cls(lags, None, None)
        first = min(s for s, _ in spans)
        last = max(e for _, e in spans)
        busy = sum(e - s for s, e in spans)
        mean = busy / (last - first) if last > first else float(len(spans))
        # Ends sort before starts at the same instant: a request that ends as the next one
        # starts (a closed loop's slot) is not counted twice.
        events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
        peak = running = 0
        for _, step in events:
            running += step
            peak = max(peak, running)
        return cls(lags, mean, peak)

    def to_dict(self) -> dict[str, Any]:
        return {
            "send_lag_ms": self.send_lag_ms.to_dict() if self.send_lag_ms.count else None,
            "concurrency_mean": self.concurrency_mean,
            "concurrency_peak": self.concurrency_peak,
        }


@dataclass
class RoundSummary:
    """Everything the report shows for one (level, round)."""

    level: Level
    round: int
    requests_total: int
    succeeded: int
    failed: int
    duration_s: float | None
    input_tokens_avg: float | None
    output_tokens_avg: float | None
    metrics: dict[str, Distribution]  # keys: METRICS
    throughput: Throughput
    cache: CacheUsage
    goodput: Goodput | None = None  # None when no SLO was given
    errors: list[tuple[str, str, int]] = field(default_factory=list)  # (kind, message, count)
    load: AppliedLoad | None = None
    ttft_over_time: list[TimeWindow] = field(default_factory=list)  # breakdown.ttft_over_time
    slo_bounds: list[BoundCheck] = field(default_factory=list)  # the SLO's percentile bounds

    def to_dict(self) -> dict[str, Any]:
        """One entry of summary.json's ``levels[].rounds[]``."""
        return {
            "level": self.level.to_dict(),
            "concurrency": self.level.concurrency,  # schema 1's key: None for a rate level
            "round": self.round,
            "requests": {
                "total": self.requests_total,
                "succeeded": self.succeeded,
                "failed": self.failed,
            },
            "duration_s": self.duration_s,
            "input_tokens_avg": self.input_tokens_avg,
            "output_tokens_avg": self.output_tokens_avg,
            "metrics": {name: self.metrics[name].to_dict() for name in METRICS},
            "throughput": self.throughput.to_dict(),
            "goodput": self.goodput.to_dict() if self.goodput else None,
            "cache": self.cache.to_dict(),
            "errors": [{"kind": k, "message": m, "count": n} for k, m, n in self.errors],
            "load": self.load.to_dict() if self.load else None,
            "ttft_over_time": [w.to_dict() for w in self.ttft_over_time],
            "slo_percentiles": [b.to_dict() for b in self.slo_bounds],
        }


def summarize_round(
    records: Sequence[RequestRecord],
    *,
    level: Level,
    round: int,
    slo: SLO | None = None,
    duration_s: float | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
) -> RoundSummary:
    """The summary of one round's records (``duration_s`` defaults to first send..last end);
    ``percentiles`` are the ones its tables show (``--percentiles``)."""
    ok = [r for r in records if r.ok]
    values = _metric_values(ok)
    if duration_s is None:
        duration_s = _duration_s(records)
    prompt_sum = _known_sum(r.prompt_tokens for r in ok)
    output_sum = _known_sum(r.completion_tokens for r in ok)
    total_sum = None if prompt_sum is None or output_sum is None else prompt_sum + output_sum
    return RoundSummary(
        level=level,
        round=round,
        requests_total=len(records),
        succeeded=len(ok),
        failed=len(records) - len(ok),
        duration_s=duration_s,
        input_tokens_avg=_known_mean(r.prompt_tokens for r in ok),
        output_tokens_avg=_known_mean(r.completion_tokens for r in ok),
        metrics={m: Distribution.of(values[m], percentiles) for m in METRICS},
        throughput=Throughput(
            output_tokens_per_s=_rate(output_sum, duration_s),
            total_tokens_per_s=_rate(total_sum, duration_s),
            requests_per_s=_rate(len(ok), duration_s),
        ),
        cache=_cache_usage(ok),
        goodput=_goodput(records, slo, duration_s),
        errors=_top_errors(records),
        load=AppliedLoad.of(records),
        ttft_over_time=ttft_over_time(records),
        slo_bounds=_bound_checks(values, slo),
    )


@dataclass(frozen=True)
class Change:
    """One figure in two rounds: ``before`` the earlier (the baseline), ``after`` the later.

    ``change`` is after - before, ``change_percent`` relative to before.  Which rounds these are
    is the caller's to say: ``levels[].comparison`` names them ``round1``/``round2`` in JSON (as
    schema 2 always did), ``levels[].comparisons[]`` names them ``before``/``after`` beside
    ``against``/``round``.
    """

    before: float | None
    after: float | None

    @property
    def change(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before

    @property
    def change_percent(self) -> float | None:
        if self.change is None or not self.before:
            return None
        return 100.0 * self.change / self.before

    def to_dict(self, names: tuple[str, str] = ("round1", "round2")) -> dict[str, float | None]:
        """``names`` are the JSON keys of before and after."""
        return {
            names[0]: self.before,
            names[1]: self.after,
            "change": self.change,
            "change_percent": self.change_percent,
        }


@dataclass(frozen=True)
class Comparison:
    """A later round against an earlier one at one level: paired per-prompt TTFT ratios and both
    rounds' figures (round 2 against round 1 unless the caller pairs others).

    The ratio is TTFT(later) / TTFT(earlier) of the same prompt id, so values under 1 mean the
    later round was faster; in ``--round2-mode continue`` a prompt id is one conversation, so
    the pair is the same session at two turns.  The geometric mean is the natural average of
    ratios (the mean of log-ratios, exponentiated); its 95% CI is a percentile bootstrap over
    prompts.  ``share_faster`` is a fraction in [0, 1].  Hit rates are the server's
    (Prometheus), as given by the caller.
    """

    n_pairs: int
    ratio_median: float | None
    ratio_geomean: float | None
    ratio_geomean_ci95: tuple[float, float] | None
    share_faster: float | None
    ttft_ms: dict[str, Change]  # keys: avg, p50, p90, p99
    output_tokens_per_s: Change
    requests_per_s: Change
    goodput_percent: Change
    client_cached_share: Change
    server_hit_rate: Change

    def to_dict(self, names: tuple[str, str] = ("round1", "round2")) -> dict[str, Any]:
        """summary.json's ``levels[].comparison``; ``names`` are each Change's keys."""
        ci = self.ratio_geomean_ci95
        return {
            "n_pairs": self.n_pairs,
            "ttft_ratio": {
                "median": self.ratio_median,
                "geomean": self.ratio_geomean,
                "geomean_ci95": list(ci) if ci is not None else None,
                "share_faster": self.share_faster,
            },
            "ttft_ms": {name: change.to_dict(names) for name, change in self.ttft_ms.items()},
            "throughput": {
                "output_tokens_per_s": self.output_tokens_per_s.to_dict(names),
                "requests_per_s": self.requests_per_s.to_dict(names),
            },
            "goodput_percent": self.goodput_percent.to_dict(names),
            "client_cached_share": self.client_cached_share.to_dict(names),
            "server_hit_rate": self.server_hit_rate.to_dict(names),
        }


@dataclass(frozen=True)
class RoundComparison:
    """Round ``round`` against round ``against`` (the earlier one, the Comparison's before)."""

    round: int
    against: int
    comparison: Comparison

    def to_dict(self) -> dict[str, Any]:
        """One entry of summary.json's ``levels[].comparisons``: before is ``against``."""
        return {
            "round": self.round,
            "against": self.against,
            **self.comparison.to_dict(("before", "after")),
        }


@dataclass(frozen=True)
class RoundData:
    """What comparing a round needs: its records, its summary, the server's hit rate."""

    records: Sequence[RequestRecord]
    summary: RoundSummary
    server_hit_rate: float | None = None


def round_pairs(n_rounds: int) -> list[tuple[int, int]]:
    """(round, against) for every comparison of ``n_rounds`` rounds: each round k >= 2 against
    round 1 (what the cache bought since the cold round) and against round k - 1 (what the
    last turn added); for k = 2 those are one comparison, listed once."""
    pairs: list[tuple[int, int]] = []
    for k in range(2, n_rounds + 1):
        pairs.append((k, 1))
        if k - 1 != 1:
            pairs.append((k, k - 1))
    return pairs


def compare_all(
    rounds: Sequence[RoundData], *, seed: int = 0, n_boot: int = 2000
) -> list[RoundComparison]:
    """``compare_rounds`` for every pair of ``round_pairs`` (rounds numbered from 1 in order)."""
    out = []
    for k, j in round_pairs(len(rounds)):
        before, after = rounds[j - 1], rounds[k - 1]
        comparison = compare_rounds(
            before.records,
            after.records,
            before.summary,
            after.summary,
            hit_rates=(before.server_hit_rate, after.server_hit_rate),
            seed=seed,
            n_boot=n_boot,
        )
        out.append(RoundComparison(k, j, comparison))
    return out


def compare_rounds(
    r1: Sequence[RequestRecord],
    r2: Sequence[RequestRecord],
    s1: RoundSummary,
    s2: RoundSummary,
    *,
    hit_rates: tuple[float | None, float | None] = (None, None),
    seed: int = 0,
    n_boot: int = 2000,
) -> Comparison:
    """Pair the successful requests of both rounds by prompt id and compare (see ``Comparison``);
    ``r1``/``s1`` are the earlier round (before), ``r2``/``s2`` the later (after)."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    ratios = paired_ttft_ratios(r1, r2)
    logs = np.log(ratios)
    t1, t2 = s1.metrics["ttft_ms"], s2.metrics["ttft_ms"]
    g1, g2 = s1.goodput, s2.goodput
    return Comparison(
        n_pairs=int(ratios.size),
        ratio_median=float(np.median(ratios)) if ratios.size else None,
        ratio_geomean=float(np.exp(logs.mean())) if ratios.size else None,
        ratio_geomean_ci95=_bootstrap_ci(logs, seed=seed, n_boot=n_boot),
        share_faster=float(np.mean(ratios < 1.0)) if ratios.size else None,
        ttft_ms={k: Change(getattr(t1, k), getattr(t2, k)) for k in ("avg", "p50", "p90", "p99")},
        output_tokens_per_s=Change(
            s1.throughput.output_tokens_per_s, s2.throughput.output_tokens_per_s
        ),
        requests_per_s=Change(s1.throughput.requests_per_s, s2.throughput.requests_per_s),
        goodput_percent=Change(g1.percent if g1 else None, g2.percent if g2 else None),
        client_cached_share=Change(s1.cache.client_cached_share, s2.cache.client_cached_share),
        server_hit_rate=Change(*hit_rates),
    )


def _metric_values(ok: Sequence[RequestRecord]) -> dict[str, np.ndarray[Any, Any]]:
    """The four metrics' values over successful requests; ITL pools every gap."""
    return {
        "ttft_ms": np.fromiter((r.ttft_ms for r in ok if r.ttft_ms is not None), dtype=float),
        "itl_ms": _all_gaps(ok),
        "tpot_ms": np.fromiter((t for r in ok if (t := r.tpot_ms) is not None), dtype=float),
        "latency_ms": np.fromiter(
            (r.latency_ms for r in ok if r.latency_ms is not None), dtype=float
        ),
    }


def _bound_checks(values: dict[str, np.ndarray[Any, Any]], slo: SLO | None) -> list[BoundCheck]:
    """Each percentile bound of the SLO against the round's own percentile of that metric
    (ITL: every gap pooled, as the ITL row of the table)."""
    if slo is None:
        return []
    out = []
    for bound in slo.percentile_bounds:
        arr = values[bound.metric]
        value = float(np.percentile(arr, bound.percentile)) if arr.size else None
        out.append(BoundCheck(bound.key, bound.bound_ms, value))
    return out


def _all_gaps(ok: Sequence[RequestRecord]) -> np.ndarray[Any, Any]:
    """Every gap of every record in ms, read from each ``Gaps`` buffer (no float per gap)."""
    parts = [_gaps_ms(r.itl_ms) for r in ok if r.itl_ms]
    return np.concatenate(parts) if parts else np.empty(0)


def _gaps_ms(itl: Sequence[float]) -> np.ndarray[Any, Any]:
    if isinstance(itl, Gaps):
        values, per_ms = itl.ns_or_ms
        # ns / 1e6 in float64: the same correctly rounded float as the int / 1e6 of the parse.
        return np.asarray(values, dtype=float) / per_ms
    return np.fromiter(itl, dtype=float, count=len(itl))


def _duration_s(records: Sequence[RequestRecord]) -> float | None:
    """First send to last completion, in seconds; None when no record has ended."""
    ends = [r.end_ms for r in records if r.end_ms is not None]
    if not records or not ends:
        return None
    return (max(ends) - min(r.start_ms for r in records)) / 1000.0


def _goodput(
    records: Sequence[RequestRecord], slo: SLO | None, duration_s: float | None
) -> Goodput | None:
    if slo is None or not slo.has_request_bounds:
        return None
    good = [r for r in records if slo.check(r)]
    total = len(records)
    return Goodput(
        good=len(good),
        total=total,
        percent=100.0 * len(good) / total if total else None,
        requests_per_s=_rate(len(good), duration_s),
        output_tokens_per_s=_rate(_known_sum(r.completion_tokens for r in good), duration_s),
    )


def _cache_usage(ok: Sequence[RequestRecord]) -> CacheUsage:
    both = [
        (r.cached_tokens, r.prompt_tokens)
        for r in ok
        if r.cached_tokens is not None and r.prompt_tokens is not None
    ]
    if not both:
        return CacheUsage(None, None, None)
    cached = sum(c for c, _ in both)
    prompt = sum(p for _, p in both)
    return CacheUsage(cached / prompt if prompt else None, cached, prompt)


def _top_errors(records: Sequence[RequestRecord]) -> list[tuple[str, str, int]]:
    """The most common failures, grouped by kind and (whitespace-normalised, capped) text."""
    counts: Counter[tuple[str, str]] = Counter()
    for r in records:
        if r.error_kind is not None:
            text = " ".join((r.error or "").split())[:_ERROR_TEXT_MAX]
            counts[(r.error_kind.value, text)] += 1
    return [(kind, text, n) for (kind, text), n in counts.most_common(TOP_ERRORS)]


def paired_ttft_ratios(r1: Sequence[RequestRecord], r2: Sequence[RequestRecord]) -> np.ndarray:
    """TTFT2/TTFT1 per prompt id (repeated ids pair in order); only positive TTFTs of successes."""
    first: dict[str, list[float]] = defaultdict(list)
    for r in r1:
        if r.ok and r.ttft_ms is not None and r.ttft_ms > 0:
            first[r.prompt_id].append(r.ttft_ms)
    ratios: list[float] = []
    taken: Counter[str] = Counter()
    for r in r2:
        if not (r.ok and r.ttft_ms is not None and r.ttft_ms > 0):
            continue
        i = taken[r.prompt_id]
        if i < len(first.get(r.prompt_id, ())):
            ratios.append(r.ttft_ms / first[r.prompt_id][i])
            taken[r.prompt_id] += 1
    return np.asarray(ratios, dtype=float)


def _bootstrap_ci(logs: np.ndarray, *, seed: int, n_boot: int) -> tuple[float, float] | None:
    """95% percentile-bootstrap CI of exp(mean(logs)); None with fewer than two pairs."""
    n = logs.size
    if n < 2:
        return None
    rng = np.random.Generator(np.random.PCG64(seed))
    means = np.empty(n_boot)
    rows = max(1, _BOOT_CHUNK_CELLS // n)
    for lo in range(0, n_boot, rows):
        hi = min(n_boot, lo + rows)
        means[lo:hi] = logs[rng.integers(0, n, size=(hi - lo, n))].mean(axis=1)
    low, high = np.exp(np.percentile(means, [2.5, 97.5]))
    return float(low), float(high)


def _known_sum(values: Iterable[int | None]) -> int | None:
    """Sum of the known values; None when there were values but none known (0 for none at all)."""
    seen = known = 0
    total = 0
    for v in values:
        seen += 1
        if v is not None:
            known += 1
            total += v
    return None if seen and not known else total


def _known_mean(values: Iterable[int | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _rate(amount: float | None, duration_s: float | None) -> float | None:
    if amount is None or duration_s is None or duration_s <= 0:
        return None
    return amount / duration_s
