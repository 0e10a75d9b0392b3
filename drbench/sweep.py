"""The capacity sweep, as data: ``--sweep KEY=VALUES``, each value's figures, where the hit rate
falls below the threshold.

A sweep runs the same ``--workload`` once per value of one of its keys (the working set: groups
of shared-prefix, docs of long-doc, users of sessions), each run an ordinary measured run with a
run token, so a nonce, of its own: one value's prompts never warm the next one's.  This module
parses the spec against the workload (one line naming ``--sweep`` for every mistake), turns a
finished run into a ``SweepPoint`` and finds the crossing; sweep_run.py runs the values and
report/sweep_files.py writes and prints them.  No I/O here.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from drbench.errors import UsageError
from drbench.workloads import WORKLOADS, parse_workload
from drbench.workloads.workload import key_kind

if TYPE_CHECKING:  # results imports the config; only types are needed here
    from drbench.results import LevelResult, RoundResult, RunResult

__all__ = [
    "FLAG",
    "MAX_VALUES",
    "WORKING_SET_KEYS",
    "Crossing",
    "LevelPoint",
    "RoundFigures",
    "SweepPoint",
    "SweepSpec",
    "crossing",
    "measured_round",
    "parse_sweep",
    "point_of",
    "value_workload",
]

FLAG = "--sweep"
MAX_VALUES = 200  # a sweep of more runs than this is a typo (1:10000), not a plan

#: The key that is the working set of each workload (what the sweep is for; others may be swept).
WORKING_SET_KEYS = {"shared-prefix": "groups", "long-doc": "docs", "sessions": "users"}

#: The oracle's expected hit rate on a RoundResult (issue 13, "The oracle"): read when present.

Metric = Literal["server_hit_rate", "cached_share"]
Status = Literal["crossed", "not reached", "below from the first value", "no measured hit rate"]


@dataclass(frozen=True)
class SweepSpec:
    """The key swept and its values, ascending (the crossing is read from low to high)."""

    key: str
    values: tuple[int, ...]
    workload: tuple[str, ...]  # the --workload spec the values are put into

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "values": list(self.values), "workload": list(self.workload)}


def parse_sweep(text: str, workload: Sequence[str]) -> SweepSpec:
    """``docs=1,2,4``, ``docs=1:8``, ``docs=1:16:3`` or ``users=1:64:x2`` over ``workload``
    (``--workload``'s NAME and items); every value is checked as the workload checks it."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise UsageError(f"{FLAG} {text}: expected KEY=VALUES, e.g. docs=1,2,4,8 or docs=1:8")
    name, *items = workload
    _check_key(name, key)
    values = _values(f"{FLAG} {text}", raw)
    first = value_workload(workload, key, values[0])
    implied = parse_workload(first[0], first[1:]).implied  # range-checks the lowest value
    for v in values[1:]:
        spec = value_workload(workload, key, v)
        if parse_workload(spec[0], spec[1:]).implied != implied:
            raise UsageError(
                f"{FLAG} {text}: {key}= sets run settings of its own ({_settings(implied)}); "
                f"sweep another key, e.g. {_example_key(name)}"
            )
    return SweepSpec(key=key, values=values, workload=tuple(workload))


def value_workload(workload: Sequence[str], key: str, value: int) -> tuple[str, ...]:
    """The --workload spec of one value: the swept key's item replaced (or added)."""
    name, *items = workload
    kept = [item for item in items if item.partition("=")[0] != key]
    return (name, *kept, f"{key}={value}")


def _check_key(name: str, key: str) -> None:
    if name not in WORKLOADS:
        parse_workload(name, [])  # the workload's own one line for an unknown name
    fields = {f.name for f in dataclasses.fields(WORKLOADS[name][0])}
    own = WORKING_SET_KEYS.get(name)
    suggestion = f"sweep {own}= (its working set)" if own else "it has no working-set key"
    if key not in fields:
        holders = [w for w, k in WORKING_SET_KEYS.items() if k == key]
        if holders:
            raise UsageError(
                f"{FLAG} {key}=...: --workload {name} has no key {key} (that is {holders[0]}'s); "
                f"{suggestion}"
            )
        near = difflib.get_close_matches(key, sorted(fields), n=1, cutoff=0.6)
        hint = f"did you mean {near[0]}? " if near else ""
        raise UsageError(f"{FLAG} {key}=...: unknown key of --workload {name}; {hint}{suggestion}")
    kind, _ = key_kind(WORKLOADS[name][0], key)
    if kind != "int":
        raise UsageError(
            f"{FLAG} {key}=...: {key} of --workload {name} is not a count; {suggestion}"
        )


def _values(where: str, raw: str) -> tuple[int, ...]:
    if not raw:
        raise UsageError(f"{where}: no values; give e.g. 1,2,4,8 or 1:8 after the =")
    if ":" in raw:
        values = _range(where, raw)
    else:
        values = [_int(where, v) for v in raw.split(",")]
    if len(set(values)) != len(values):
        twice = sorted({v for v in values if values.count(v) > 1})
        raise UsageError(f"{where}: {', '.join(map(str, twice))} given twice; give each value once")
    if not values:
        raise UsageError(f"{where}: the range holds no value; give LO <= HI")
    if len(values) > MAX_VALUES:
        raise UsageError(
            f"{where}: {len(values)} values, each a whole run; give at most {MAX_VALUES} "
            "(a larger STEP, or a geometric xF)"
        )
    return tuple(sorted(values))


def _range(where: str, raw: str) -> list[int]:
    """LO:HI (step 1), LO:HI:STEP, or LO:HI:xF (LO, LO*F, ... rounded, while <= HI)."""
    parts = raw.split(":")
    if len(parts) not in (2, 3):
        raise UsageError(f"{where}: expected LO:HI, LO:HI:STEP or LO:HI:xF")
    lo, hi = _int(where, parts[0]), _int(where, parts[1])
    if hi < lo:
        raise UsageError(f"{where}: HI {hi} is below LO {lo}; give LO:HI with LO <= HI")
    step = parts[2].strip() if len(parts) == 3 else "1"
    if step.lower().startswith("x"):
        try:
            factor = float(step[1:])
        except ValueError:
            factor = math.nan
        if not (math.isfinite(factor) and factor > 1):
            raise UsageError(f"{where}: {step} is not a factor above 1; write e.g. x2")
        if lo < 1:
            raise UsageError(f"{where}: a geometric range starts at 1 or more (got {lo})")
        out: list[int] = []
        x = float(lo)
        while round(x) <= hi and len(out) <= MAX_VALUES:
            if not out or round(x) != out[-1]:
                out.append(round(x))
            x *= factor
        return out
    n = _int(where, step)
    if n < 1:
        raise UsageError(f"{where}: STEP must be 1 or more (got {n})")
    if (hi - lo) // n + 1 > MAX_VALUES:
        return list(range(lo, lo + n * (MAX_VALUES + 1), n))  # refused by the caller's count
    return list(range(lo, hi + 1, n))


def _int(where: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise UsageError(f"{where}: {text.strip()!r} is not an integer") from None


def _settings(implied: dict[str, Any]) -> str:
    return ", ".join(f"--{k.replace('_', '-')}" for k in implied) or "none"


def _example_key(name: str) -> str:
    return f"{WORKING_SET_KEYS[name]}=1:8" if name in WORKING_SET_KEYS else "a count"


# --- figures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundFigures:
    """What the sweep reads of one round: measured hit rates, the ideal share, TTFT."""

    round: int
    server_hit_rate: float | None
    cached_share: float | None  # usage's cached_tokens / prompt_tokens
    offered_share: float | None  # what an unlimited prefix cache could reuse of the round
    expected_hit_rate: float | None  # the oracle's (RoundResult.expected_share), if computed
    ttft_p50_ms: float | None
    ttft_p90_ms: float | None
    ttft_p99_ms: float | None
    succeeded: int
    failed: int

    def measured(self, metric: Metric) -> float | None:
        return self.server_hit_rate if metric == "server_hit_rate" else self.cached_share

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LevelPoint:
    """One level of one value's run."""

    level: str  # Level.short: "c4", "r2", ...
    rounds: tuple[RoundFigures, ...]
    working_set_units: int | None  # units round 1 sent that an unlimited cache must hold
    unit: str | None  # "tokens", "estimated tokens"...

    def round(self, number: int) -> RoundFigures | None:
        return next((r for r in self.rounds if r.round == number), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "working_set_units": self.working_set_units,
            "unit": self.unit,
            "rounds": [r.to_dict() for r in self.rounds],
        }


@dataclass(frozen=True)
class SweepPoint:
    """One value of the sweep: its run's figures, level by level, and how the run ended."""

    value: int
    dir: str  # the run's subdirectory, relative to the sweep's
    exit_status: int
    interrupted: bool
    levels: tuple[LevelPoint, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "dir": self.dir,
            "exit_status": self.exit_status,
            "interrupted": self.interrupted,
            "levels": [lv.to_dict() for lv in self.levels],
        }


def point_of(value: int, dir: str, exit_status: int, run: RunResult | None) -> SweepPoint:
    """A finished (or interrupted) run's figures; a run that measured nothing has no level."""
    if run is None:
        return SweepPoint(value, dir, exit_status, interrupted=True)
    levels = tuple(_level_point(lv) for lv in run.levels if lv.rounds)
    return SweepPoint(value, dir, exit_status, run.interrupted, levels)


def _level_point(level: LevelResult) -> LevelPoint:
    first = level.rounds[0].offered
    units = first.total - first.reused if first is not None else None
    return LevelPoint(
        level=level.level.short,
        rounds=tuple(_figures(r) for r in level.rounds),
        working_set_units=units,
        unit=first.unit if first is not None else None,
    )


def _figures(r: RoundResult) -> RoundFigures:
    ttft = r.summary.metrics["ttft_ms"]
    return RoundFigures(
        round=r.summary.round,
        server_hit_rate=r.server_hit_rate,
        cached_share=r.summary.cache.client_cached_share,
        offered_share=r.offered_share,
        expected_hit_rate=expected_hit_rate(r),
        ttft_p50_ms=ttft.p50,
        ttft_p90_ms=ttft.p90,
        ttft_p99_ms=ttft.p99,
        succeeded=r.summary.succeeded,
        failed=r.summary.failed,
    )


def expected_hit_rate(r: RoundResult) -> float | None:
    """The oracle's expected hit rate of the round (an LRU of the server's capacity,
    drbench/oracle.py); None where it could not simulate it (no known capacity)."""
    return r.expected_share


# --- the crossing ---------------------------------------------------------------------------


def measured_round(rounds: int) -> int:
    """The round whose hit rate decides: round 2 (the warm pass over the working set), or
    round 1 of a one-round run (then the within-round reuse is all there is)."""
    return 2 if rounds >= 2 else 1


@dataclass(frozen=True)
class Crossing:
    """Where the measured hit rate first falls below the threshold, at one level."""

    level: str
    metric: Metric | None
    round: int
    threshold: float
    status: Status
    value: float | None = None  # interpolated working set, in the swept key's unit
    between: tuple[int, int] | None = None  # the two values around it
    working_set_units: float | None = None  # the same point in units of round 1's working set
    unit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "metric": self.metric,
            "round": self.round,
            "threshold": self.threshold,
            "status": self.status,
            "value": self.value,
            "between": list(self.between) if self.between else None,
            "working_set_units": self.working_set_units,
            "unit": self.unit,
        }


@dataclass(frozen=True)
class _Sample:
    value: int
    rate: float
    units: int | None
    unit: str | None


def crossing(points: Sequence[SweepPoint], level: str, *, round: int, threshold: float) -> Crossing:
    """The first value whose measured hit rate is below ``threshold`` (values ascending),
    interpolated linearly from the value before it; the server's hit rate when every point
    has one, else usage's cached share, else no figure to read."""
    figures = [
        (p.value, lp, lp.round(round))
        for p in points
        for lp in p.levels
        if lp.level == level and lp.round(round) is not None
    ]
    metric = _metric([f for _, _, f in figures if f is not None])
    base = Crossing(level, metric, round, threshold, "no measured hit rate")
    if metric is None:
        return base
    samples = [
        _Sample(v, rate, lp.working_set_units, lp.unit)
        for v, lp, f in figures
        if f is not None and (rate := f.measured(metric)) is not None
    ]
    samples.sort(key=lambda s: s.value)
    for i, s in enumerate(samples):
        if s.rate >= threshold:
            continue
        if i == 0:
            return dataclasses.replace(base, status="below from the first value", value=s.value)
        prev = samples[i - 1]
        t = (prev.rate - threshold) / (prev.rate - s.rate)
        units = (
            prev.units + t * (s.units - prev.units)
            if prev.units is not None and s.units is not None
            else None
        )
        return dataclasses.replace(
            base,
            status="crossed",
            value=prev.value + t * (s.value - prev.value),
            between=(prev.value, s.value),
            working_set_units=units,
            unit=s.unit,
        )
    return dataclasses.replace(base, status="not reached")


def _metric(figures: Sequence[RoundFigures]) -> Metric | None:
    if figures and all(f.server_hit_rate is not None for f in figures):
        return "server_hit_rate"
    if figures and all(f.cached_share is not None for f in figures):
        return "cached_share"
    return None
