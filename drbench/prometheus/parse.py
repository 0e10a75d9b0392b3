"""Server metrics from Prometheus text: selectors, parsing into snapshots, metric names.

A *snapshot* maps each selector (by its text) to the value of the family it matched on one
endpoint at one instant, kept per series so that deltas can detect counter resets.  Parsing goes
through ``prometheus_client.parser`` after a cheap line filter that keeps only the families the
selectors can match (a vLLM ``/metrics`` page is mostly histogram buckets nobody asked for, and
parsing runs in the benchmark's event loop).  No I/O here and no per-round arithmetic: the round
report lives in ``rounds.py``, the async scraper in ``watch.py``, what each server exposes in
``profiles.py``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from drbench.errors import UsageError
from drbench.prometheus.profiles import IDLE_GAUGES, PRESET_METRICS
from drbench.textsplit import split_outside_braces

__all__ = [
    "ExpositionError",
    "HistogramValue",
    "LabelMatcher",
    "MetricKind",
    "MetricSelector",
    "MetricValue",
    "Snapshot",
    "is_idle",
    "metric_names",
    "parse_selectors",
    "preset_selectors",
    "snapshot_from_text",
]

_FLAG = "--prometheus-metrics"
_EXAMPLE = 'e.g. vllm:prefix_cache_hits_total{model_name="m"}'
_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_MATCHER_RE = re.compile(
    r"""\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*(?:,|$)""",
    re.DOTALL,
)
_SAMPLE_LINE_RE = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{|\s|$)")
_FAMILY_SUFFIXES = ("", "_total", "_created", "_bucket", "_sum", "_count", "_info")
_SERIES_IGNORED_LABELS = frozenset({"le", "quantile"})

LabelKey = tuple[tuple[str, str], ...]


class MetricKind(str, Enum):
    """A family's type; an untyped family named ``*_total`` is read as a counter (the convention)."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    SUMMARY = "summary"
    UNTYPED = "untyped"


_KINDS = {
    "counter": MetricKind.COUNTER,
    "gauge": MetricKind.GAUGE,
    "histogram": MetricKind.HISTOGRAM,
    "summary": MetricKind.SUMMARY,
    "untyped": MetricKind.UNTYPED,
    "unknown": MetricKind.UNTYPED,
    "info": MetricKind.GAUGE,
    "stateset": MetricKind.GAUGE,
}


class ExpositionError(ValueError):
    """A metrics response that is not Prometheus text (an HTML page, JSON, a truncated body)."""


@dataclass(frozen=True, slots=True)
class LabelMatcher:
    """One PromQL label matcher; a label a series lacks reads as "" (as in PromQL)."""

    label: str
    op: str  # "=", "!=", "=~", "!~"
    value: str
    pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op not in ("=", "!=", "=~", "!~"):
            raise ValueError(f"unknown label matcher operator {self.op!r}")
        if self.op in ("=~", "!~") and self.pattern is None:
            object.__setattr__(self, "pattern", re.compile(self.value))

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = labels.get(self.label, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        found = self.pattern is not None and self.pattern.fullmatch(got) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.label}{self.op}"{escaped}"'


@dataclass(frozen=True, slots=True)
class MetricSelector:
    """A metric name with optional label matchers; ``X`` and ``X_total`` name the same counter."""

    name: str
    matchers: tuple[LabelMatcher, ...] = ()

    @classmethod
    def parse(cls, text: str) -> MetricSelector:
        """Parse ``name`` or ``name{label="v", label!~"re"}``; a bad one is a ``UsageError``."""
        raw = text.strip()
        m = _NAME_RE.match(raw)
        if m is None:
            raise _bad_selector(text, "expected a metric name first")
        rest = raw[m.end() :].strip()
        if not rest:
            return cls(m.group())
        if not (rest.startswith("{") and rest.endswith("}")):
            raise _bad_selector(text, "labels must follow the name in {...}")
        return cls(m.group(), _parse_matchers(text, rest[1:-1]))

    def __str__(self) -> str:
        if not self.matchers:
            return self.name
        return self.name + "{" + ",".join(str(m) for m in self.matchers) + "}"

    def family_candidates(self) -> tuple[str, ...]:
        """Family names this selector may mean, best first (exact, without, with ``_total``)."""
        if self.name.endswith("_total"):
            return (self.name, self.name[: -len("_total")])
        return (self.name, self.name + "_total")

    def matches_labels(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


@dataclass(frozen=True, slots=True)
class HistogramValue:
    """Count, sum and cumulative buckets ``(le, count)`` sorted by ``le`` (summaries: none)."""

    count: float
    sum: float
    buckets: tuple[tuple[float, float], ...] = ()

    def __add__(self, other: HistogramValue) -> HistogramValue:
        merged = dict(self.buckets)
        for le, n in other.buckets:
            merged[le] = merged.get(le, 0.0) + n
        return HistogramValue(self.count + other.count, self.sum + other.sum, _sorted(merged))

    def __sub__(self, other: HistogramValue) -> HistogramValue:
        old = dict(other.buckets)
        buckets = {le: n - old.get(le, 0.0) for le, n in self.buckets}
        return HistogramValue(self.count - other.count, self.sum - other.sum, _sorted(buckets))


@dataclass(frozen=True, slots=True)
class MetricValue:
    """The series of one family a selector matched on one endpoint at one instant.

    ``series`` maps each label set (``le``/``quantile`` removed) to a float, or to a
    ``HistogramValue`` for histograms and summaries.  A declared counter or histogram without
    any series yet (a labelled family nothing has touched) has empty ``series``: its total is 0.
    """

    family: str
    kind: MetricKind
    series: Mapping[LabelKey, float | HistogramValue]

    @property
    def total(self) -> float:
        """Sum over series: the value for counters and gauges, the observation count otherwise."""
        return sum(v.count if isinstance(v, HistogramValue) else v for v in self.series.values())

    def histogram(self) -> HistogramValue:
        """The series of a histogram or summary added together (bucket by bucket)."""
        out = HistogramValue(0.0, 0.0)
        for v in self.series.values():
            if isinstance(v, HistogramValue):
                out = out + v
        return out


#: Selector text -> value, for the selectors that matched something.
Snapshot = dict[str, MetricValue]


def parse_selectors(values: Iterable[str]) -> list[MetricSelector]:
    """Selectors from flag or recipe values; one value may hold several, separated by commas."""
    out: dict[str, MetricSelector] = {}
    for value in values:
        for part in split_outside_braces(value, ","):  # commas also separate label matchers
            if part.strip():
                sel = MetricSelector.parse(part)
                out.setdefault(str(sel), sel)
    return list(out.values())


def preset_selectors(names: Iterable[str] = PRESET_METRICS) -> list[MetricSelector]:
    """Selectors of a profile's preset names (default: every known name)."""
    return [MetricSelector(name) for name in names]


def metric_names(text: str) -> frozenset[str]:
    """The sample names of an exposition, cheaply (no parsing): what profile detection reads."""
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            m = _SAMPLE_LINE_RE.match(line)
            if m is not None:
                names.add(m.group(1))
    return frozenset(names)


def snapshot_from_text(text: str, selectors: Iterable[MetricSelector]) -> Snapshot:
    """Match ``selectors`` against one exposition; raises ``ExpositionError`` on garbage."""
    selectors = list(selectors)
    _check_looks_like_prometheus(text)
    kept = _prefilter(text, _wanted_sample_names(selectors))
    try:
        families = _families(kept)
    except Exception as exc:  # the parser raises ValueError, IndexError, ... on malformed lines
        raise ExpositionError(f"malformed Prometheus text ({type(exc).__name__}: {exc})") from exc
    snap: Snapshot = {}
    for sel in selectors:
        value = _select(families, sel)
        if value is not None:
            snap[str(sel)] = value
    return snap


def is_idle(snap: Snapshot, gauges: Iterable[str] = IDLE_GAUGES) -> bool:
    """True unless one of a profile's load ``gauges`` in ``snap`` shows work in flight."""
    return all(snap[name].total == 0 for name in gauges if name in snap)


# -- private helpers ---------------------------------------------------------------------------


def _bad_selector(text: str, why: str) -> UsageError:
    return UsageError(f"{_FLAG}: cannot parse {text!r}: {why} ({_EXAMPLE})")


def _parse_matchers(text: str, body: str) -> tuple[LabelMatcher, ...]:
    matchers: list[LabelMatcher] = []
    pos = 0
    while body[pos:].strip():
        m = _MATCHER_RE.match(body, pos)
        if m is None:
            raise _bad_selector(text, f"bad label matcher at {body[pos:].strip()!r}")
        label, op, quoted = m.groups()
        value = re.sub(r"\\(.)", lambda e: "\n" if e[1] == "n" else e[1], quoted[1:-1], flags=re.S)
        pattern = None
        if op in ("=~", "!~"):
            try:
                pattern = re.compile(value)
            except re.error as exc:
                raise _bad_selector(text, f"bad regular expression {value!r}: {exc}") from None
        matchers.append(LabelMatcher(label, op, value, pattern))
        pos = m.end()
    return tuple(matchers)


def _check_looks_like_prometheus(text: str) -> None:
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            if _SAMPLE_LINE_RE.match(line) is None:
                raise ExpositionError(f"not Prometheus text (starts with {line.strip()[:40]!r})")
            return


def _wanted_sample_names(selectors: Iterable[MetricSelector]) -> frozenset[str]:
    """Sample names of every family a selector may mean (for ``X_created``, of ``X`` too, so
    that ``_normalize`` can tell a counter's creation time from a metric of that name)."""
    families = {fam for sel in selectors for fam in sel.family_candidates()}
    families |= {fam[: -len("_created")] for fam in families if fam.endswith("_created")}
    return frozenset(fam + suffix for fam in families for suffix in _FAMILY_SUFFIXES)


def _prefilter(text: str, wanted: frozenset[str]) -> str:
    """Keep the sample, HELP and TYPE lines of wanted families, in order."""
    kept = []
    for line in text.splitlines():
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE") and parts[2] in wanted:
                kept.append(line)
        else:
            m = _SAMPLE_LINE_RE.match(line)
            if m is not None and m.group(1) in wanted:
                kept.append(line)
    return "\n".join(kept) + "\n"


@dataclass(slots=True)
class _Family:
    kind: MetricKind
    series: dict[LabelKey, float | HistogramValue]


def _families(text: str) -> dict[str, _Family]:
    families: dict[str, _Family] = {}
    for fam in text_string_to_metric_families(text):
        kind = _KINDS.get(fam.type)
        if kind is None:
            continue
        reader = _histogram_series if kind in (MetricKind.HISTOGRAM, MetricKind.SUMMARY) else None
        series = (reader or _scalar_series)(fam.name, fam.samples)
        known = families.get(fam.name)
        if known is not None and known.kind is kind:
            known.series.update(series)
        else:
            families[fam.name] = _Family(kind, series)
    return _normalize(families)


def _scalar_series(name: str, samples: Iterable[Sample]) -> dict[LabelKey, float | HistogramValue]:
    sums: dict[LabelKey, float] = {}
    for s in samples:
        if (s.name.endswith("_created") and s.name != name) or not math.isfinite(s.value):
            continue
        key = _label_key(s.labels)
        sums[key] = sums.get(key, 0.0) + float(s.value)
    series: dict[LabelKey, float | HistogramValue] = dict(sums)
    return series


def _histogram_series(
    name: str, samples: Iterable[Sample]
) -> dict[LabelKey, float | HistogramValue]:
    parts: dict[LabelKey, dict] = {}
    for s in samples:
        suffix = s.name[len(name) :]
        if suffix not in ("_bucket", "_count", "_sum") or not math.isfinite(s.value):
            continue
        part = parts.setdefault(_label_key(s.labels), {"buckets": {}})
        if suffix == "_bucket":
            part["buckets"][float(s.labels.get("le", "+Inf"))] = float(s.value)
        else:
            part[suffix] = float(s.value)
    series: dict[LabelKey, float | HistogramValue] = {}
    for key, part in parts.items():
        buckets = _sorted(part["buckets"])
        count = part.get("_count", buckets[-1][1] if buckets else 0.0)
        series[key] = HistogramValue(count, part.get("_sum", 0.0), buckets)
    return series


def _normalize(families: dict[str, _Family]) -> dict[str, _Family]:
    """Undo the parser's splits: ``X_created`` families (prometheus_client types them gauge or
    leaves them untyped) and ``X_total`` samples under ``# TYPE X counter``."""
    for name in list(families):
        fam = families[name]
        if fam.kind not in (MetricKind.UNTYPED, MetricKind.GAUGE):
            continue
        if name.endswith("_created") and name[: -len("_created")] in families:
            del families[name]
        elif name.endswith("_total") and fam.kind is MetricKind.UNTYPED:
            base = families.get(name[: -len("_total")])
            if base is not None and base.kind is MetricKind.COUNTER:
                base.series.update(fam.series)
                del families[name]
            else:
                fam.kind = MetricKind.COUNTER
    return families


def _select(families: Mapping[str, _Family], sel: MetricSelector) -> MetricValue | None:
    for name in sel.family_candidates():
        fam = families.get(name)
        if fam is None:
            continue
        series = {k: v for k, v in fam.series.items() if sel.matches_labels(dict(k))}
        cumulative = fam.kind in (MetricKind.COUNTER, MetricKind.HISTOGRAM, MetricKind.SUMMARY)
        if series or (cumulative and not sel.matchers):
            return MetricValue(name, fam.kind, series)
    return None


def _label_key(labels: Mapping[str, str]) -> LabelKey:
    return tuple(sorted((k, v) for k, v in labels.items() if k not in _SERIES_IGNORED_LABELS))


def _sorted(buckets: Mapping[float, float]) -> tuple[tuple[float, float], ...]:
    return tuple(sorted(buckets.items()))
