"""One round's server figures from the snapshots taken before, during and after it.

Counters: the delta, per series, where a series that went backwards was reset and counts its
after value.  Gauges: mean and max over every reading of the round (before, samples, after).
Histograms and summaries: the count and sum deltas, their mean, and quantiles interpolated in the
bucket deltas as PromQL's ``histogram_quantile`` does.  Derived hit rates come from counter
deltas only, never from a cumulative or windowed gauge (../shared/notes §1.5); which counters
and in what order of preference is the server profile's (``profiles.py``).  A figure whose
input is missing is ``None``, never 0.  Pure: the snapshots come from ``watch.py``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from drbench.prometheus.parse import HistogramValue, MetricKind, MetricValue, Snapshot
from drbench.prometheus.profiles import DERIVED_RATES, DerivedRate

__all__ = [
    "MetricReport",
    "Missing",
    "RoundServerMetrics",
    "UrlRound",
    "counter_delta",
    "derived_input_names",
    "histogram_delta",
    "histogram_quantile",
    "summarize_round",
]

_CUMULATIVE_HISTOGRAMS = (MetricKind.HISTOGRAM, MetricKind.SUMMARY)


@dataclass(slots=True)
class UrlRound:
    """What one endpoint gave for one round; ``before``/``after`` are None when that scrape failed."""

    url: str
    before: Snapshot | None
    after: Snapshot | None
    samples: Sequence[Snapshot] = ()  # the successful scrapes taken during the round
    reported: Sequence[str] = ()  # selector texts to report for this endpoint, in order
    error: str | None = None  # why a before/after scrape failed


@dataclass(slots=True)
class MetricReport:
    """One metric of one round on one endpoint (``url`` None: the total over every endpoint)."""

    metric: str  # the selector's text
    url: str | None
    kind: MetricKind | None  # None when the metric was never seen
    family: str | None = None  # the family the selector matched
    before: float | None = None  # histograms and summaries: the observation count
    after: float | None = None
    delta: float | None = None  # counters (reset-aware); histograms: the count delta
    reset: bool = False  # some series of a counter or histogram went backwards
    mean: float | None = None  # gauges: mean of the readings; histograms: delta sum / delta count
    max: float | None = None  # gauges: max of the readings
    samples: int = 0  # gauges: how many readings mean and max are over
    delta_sum: float | None = None  # histograms and summaries
    p50: float | None = None  # histograms: quantiles of the round's observations
    p90: float | None = None
    p99: float | None = None
    missing: str | None = None  # why a figure is None
    urls: tuple[str, ...] = ()  # totals: the endpoints that contributed
    histogram: HistogramValue | None = field(default=None, repr=False)  # the round's delta

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "histogram"}
        d["kind"] = self.kind.value if self.kind else None
        d["urls"] = list(self.urls)
        return d


@dataclass(frozen=True, slots=True)
class Missing:
    """A figure that could not be had: ``metric`` None means nothing came from ``url``."""

    url: str
    metric: str | None
    reason: str


@dataclass(slots=True)
class RoundServerMetrics:
    """Every server figure of one round, ready for tables, CSV and ``summary.json``."""

    metrics: list[MetricReport]
    derived: dict[str, float | None]  # rates some of whose inputs the servers expose, best first
    missing: list[Missing] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    profile: str | None = None  # the server profile whose rates ``derived`` holds

    @property
    def hit_rate_source(self) -> str | None:
        """The first name in ``derived`` (the profile's order) with a value: ``hit_rate``'s."""
        return next((name for name, v in self.derived.items() if v is not None), None)

    @property
    def hit_rate(self) -> float | None:
        """The round's server-side prefix-cache hit rate, best source first; None if none."""
        source = self.hit_rate_source
        return None if source is None else self.derived[source]

    def metric(self, name: str, url: str | None = None) -> MetricReport | None:
        """The report of selector text ``name`` on ``url`` (None: the total, or the only URL)."""
        found = [m for m in self.metrics if m.metric == name]
        for m in found:
            if m.url == url:
                return m
        return found[0] if url is None and len(found) == 1 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": [m.to_dict() for m in self.metrics],
            "derived": dict(self.derived),
            "hit_rate": self.hit_rate,
            "hit_rate_source": self.hit_rate_source,
            "missing": [
                {"url": m.url, "metric": m.metric, "reason": m.reason} for m in self.missing
            ],
            "warnings": list(self.warnings),
            "profile": self.profile,
        }


def derived_input_names(rates: Sequence[DerivedRate] = DERIVED_RATES) -> list[str]:
    """Every counter a derived rate can use; the watcher scrapes them whatever the user selects."""
    names = (n for rate in rates for pair in rate.inputs for n in pair)
    return list(dict.fromkeys(names))


def counter_delta(before: MetricValue, after: MetricValue) -> tuple[float, bool]:
    """Sum of per-series increases; a series that went backwards was reset and counts in full."""
    delta, reset = 0.0, False
    for key, now in after.series.items():
        was = before.series.get(key, 0.0)
        if isinstance(now, HistogramValue) or isinstance(was, HistogramValue):
            continue  # a counter's series are floats; a histogram's go to histogram_delta
        if now < was:
            reset = True
            delta += now
        else:
            delta += now - was
    return delta, reset


def histogram_delta(before: MetricValue, after: MetricValue) -> tuple[HistogramValue, bool]:
    """Per-series bucket, count and sum deltas added up; a series whose count fell was reset."""
    out, reset = HistogramValue(0.0, 0.0), False
    for key, now in after.series.items():
        was = before.series.get(key)
        if not isinstance(now, HistogramValue):
            continue
        if not isinstance(was, HistogramValue):
            out = out + now
        elif now.count < was.count:
            reset = True
            out = out + now
        else:
            out = out + (now - was)
    return out, reset


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The q-quantile from cumulative ``(le, count)`` buckets, as PromQL ``histogram_quantile``.

    Linear interpolation inside the bucket holding the rank, the first bucket starting at 0;
    a rank in the +Inf bucket gives the highest finite bound.  None without observations.
    """
    if not buckets or not math.isinf(buckets[-1][0]) or buckets[-1][1] <= 0:
        return None
    counts = _monotonic([n for _, n in buckets])
    rank = q * counts[-1]
    i = next(i for i, n in enumerate(counts) if n >= rank)
    upper = buckets[i][0]
    if math.isinf(upper):
        return buckets[-2][0] if len(buckets) > 1 else None
    if i == 0 and upper <= 0:
        return upper
    lower, below = (buckets[i - 1][0], counts[i - 1]) if i > 0 else (0.0, 0.0)
    if counts[i] == below:
        return upper
    return lower + (upper - lower) * (rank - below) / (counts[i] - below)


def summarize_round(
    rounds: Sequence[UrlRound],
    warnings: Iterable[str] = (),
    rates: Sequence[DerivedRate] = DERIVED_RATES,
    profile: str | None = None,
) -> RoundServerMetrics:
    """Reports per endpoint and metric, totals across endpoints, a profile's derived ``rates``
    (in their order of preference), what is missing."""
    per_url = {ur.url: {sel: _url_report(sel, ur) for sel in ur.reported} for ur in rounds}
    reports: list[MetricReport] = []
    for sel in dict.fromkeys(sel for ur in rounds for sel in ur.reported):
        found = [per_url[ur.url][sel] for ur in rounds if sel in per_url[ur.url]]
        reports.extend(found)
        total = _total(sel, found) if len(rounds) > 1 else None
        if total is not None:
            reports.append(total)
    missing = [Missing(r.url, r.metric, r.missing) for r in reports if r.missing and r.url]
    missing += [
        Missing(ur.url, None, _unavailable(ur)) for ur in rounds if ur.error and not ur.reported
    ]
    return RoundServerMetrics(reports, _derived(rounds, rates), missing, list(warnings), profile)


# -- private helpers ---------------------------------------------------------------------------


def _url_report(sel: str, ur: UrlRound) -> MetricReport:
    before = ur.before.get(sel) if ur.before is not None else None
    after = ur.after.get(sel) if ur.after is not None else None
    readings = [s[sel] for s in (ur.before, *ur.samples, ur.after) if s is not None and sel in s]
    ref = after or before or (readings[-1] if readings else None)
    if ref is None:
        return MetricReport(sel, ur.url, None, missing=_reason(ur, None, None))
    rep = MetricReport(sel, ur.url, ref.kind, ref.family)
    if ref.kind is MetricKind.COUNTER or ref.kind in _CUMULATIVE_HISTOGRAMS:
        if before is None and ur.before is not None and after is not None:
            before = MetricValue(after.family, after.kind, {})  # first seen during the round
        _fill_cumulative(rep, before, after)
    else:
        rep.before = before.total if before is not None else None
        rep.after = after.total if after is not None else None
        values = [r.total for r in readings]
        rep.mean, rep.max, rep.samples = sum(values) / len(values), max(values), len(values)
    if before is None or after is None:
        rep.missing = _reason(ur, before, after)
    return rep


def _fill_cumulative(
    rep: MetricReport, before: MetricValue | None, after: MetricValue | None
) -> None:
    rep.before = before.total if before is not None else None
    rep.after = after.total if after is not None else None
    if before is None or after is None:
        return
    if rep.kind is MetricKind.COUNTER:
        rep.delta, rep.reset = counter_delta(before, after)
    else:
        hist, rep.reset = histogram_delta(before, after)
        _fill_histogram(rep, hist)


def _fill_histogram(rep: MetricReport, hist: HistogramValue) -> None:
    rep.histogram, rep.delta, rep.delta_sum = hist, hist.count, hist.sum
    rep.mean = hist.sum / hist.count if hist.count > 0 else None
    rep.p50, rep.p90, rep.p99 = (histogram_quantile(q, hist.buckets) for q in (0.5, 0.9, 0.99))


def _total(sel: str, found: Sequence[MetricReport]) -> MetricReport | None:
    """Counters and histograms add up across endpoints; gauges (fractions, queues) do not."""
    kinds = {r.kind for r in found if r.kind is not None}
    if len(kinds) != 1 or not (kinds <= {MetricKind.COUNTER, *_CUMULATIVE_HISTOGRAMS}):
        return None
    kind = kinds.pop()
    rep = MetricReport(sel, None, kind, found[0].family if len(found) == 1 else None)
    done = [r for r in found if r.delta is not None]
    if not done:
        rep.missing = "no endpoint gave it"
        return rep
    rep.urls = tuple(r.url for r in done if r.url)
    rep.before = sum(r.before or 0.0 for r in done)
    rep.after = sum(r.after or 0.0 for r in done)
    rep.reset = any(r.reset for r in done)
    if kind is MetricKind.COUNTER:
        rep.delta = sum(r.delta or 0.0 for r in done)
    else:
        hist = HistogramValue(0.0, 0.0)
        for r in done:
            hist = hist + (r.histogram or HistogramValue(0.0, 0.0))
        _fill_histogram(rep, hist)
    return rep


def _derived(rounds: Sequence[UrlRound], rates: Sequence[DerivedRate]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for rate in rates:
        for num_name, den_name in rate.inputs:
            num, num_seen = _counter_total(num_name, rounds)
            den, den_seen = _counter_total(den_name, rounds)
            if num_seen or den_seen:
                ok = num is not None and den is not None and den > 0
                out[rate.name] = num / den if ok and num is not None and den else None
                break
    return out


def _counter_total(sel: str, rounds: Sequence[UrlRound]) -> tuple[float | None, bool]:
    """The round's delta of a counter summed over endpoints, and whether any endpoint has it."""
    reports = [_url_report(sel, ur) for ur in rounds]
    seen = any(r.kind is not None for r in reports)
    deltas = [r.delta for r in reports if r.kind is MetricKind.COUNTER and r.delta is not None]
    return (sum(deltas) if deltas else None), seen


def _reason(ur: UrlRound, before: MetricValue | None, after: MetricValue | None) -> str:
    failed = (before is None and ur.before is None) or (after is None and ur.after is None)
    return _unavailable(ur) if failed else "not exposed"


def _unavailable(ur: UrlRound) -> str:
    return f"endpoint unavailable ({ur.error or 'scrape failed'})"


def _monotonic(counts: Sequence[float]) -> list[float]:
    """Cumulative counts made non-decreasing (float noise and racy scrapes), as PromQL does."""
    out, top = [], -math.inf
    for n in counts:
        top = max(top, n)
        out.append(top)
    return out
