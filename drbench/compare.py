"""Two runs compared, level by level and round by round, with bootstrap confidence intervals.

``--compare DIR_A DIR_B`` (a cache off/on pair, two commits, two servers) asks of every headline
figure: how much did B change it, and could noise alone have done that?  A per-request figure
(TTFT, ITL, TPOT, latency at avg/p50/p90/p99) is recomputed from both runs' requests.jsonl and
its change gets a 95% percentile-bootstrap interval.  Where both rounds sent the same prompt ids
the bootstrap is paired (one draw of prompts for both sides, so the prompts' own spread cancels)
and the per-prompt TTFT ratio B/A is given too; otherwise A and B are drawn independently.
Round-level figures (throughput, goodput, hit rates) are one number per round: their change has
no interval, so no gate takes them.  ``--fail-on-regression METRIC=PCT`` fails only when B is
worse by more than PCT and the interval excludes zero.  Pure: dicts in, dataclasses out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drbench.errors import DatasetError, UsageError
from drbench.messages import Message
from drbench.rundir import RunDir, level_key

__all__ = [
    "GATEABLE",
    "ROUND_FIGURES",
    "Change",
    "Comparison",
    "GateCheck",
    "Regression",
    "RoundCompare",
    "compare_runs",
    "parse_regressions",
]

_FIELDS = {"ttft": "ttft_ms", "itl": "itl_ms", "tpot": "tpot_ms", "latency": "latency_ms"}
_STATS = ("avg", "p50", "p90", "p99")
GATEABLE = tuple(f"{m}_{s}" for m in _FIELDS for s in _STATS)  # ttft_avg ... latency_p99
# name -> (path in a round of summary.json, higher is worse)
ROUND_FIGURES: dict[str, tuple[tuple[str, ...], bool]] = {
    "output_tokens_per_s": (("throughput", "output_tokens_per_s"), False),
    "requests_per_s": (("throughput", "requests_per_s"), False),
    "goodput_percent": (("goodput", "percent"), False),
    "client_cached_share": (("cache", "client_cached_share"), False),
    "server_hit_rate": (("cache", "server_hit_rate"), False),
}
N_BOOT = 2000
_N_BOOT_ITL = 500  # every draw concatenates the drawn requests' gaps: kept cheaper


@dataclass(frozen=True)
class Change:
    """One figure of one round: A, B, the change and (per-request figures) its 95% CI."""

    metric: str
    a: float | None
    b: float | None
    ci95_percent: tuple[float, float] | None  # of change_percent; None: no interval
    higher_is_worse: bool

    @property
    def change(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def change_percent(self) -> float | None:
        if self.a is None or self.b is None or self.a == 0:
            return None
        return (self.b - self.a) / abs(self.a) * 100

    @property
    def worse_percent(self) -> float | None:
        """How much worse B is, in percent (negative: better), whichever way is worse."""
        c = self.change_percent
        return None if c is None else (c if self.higher_is_worse else -c)

    @property
    def worse_ci95(self) -> tuple[float, float] | None:
        """The CI of ``worse_percent``: both ends above 0 means B is worse beyond noise."""
        ci = self.ci95_percent
        if ci is None:
            return None
        return ci if self.higher_is_worse else (-ci[1], -ci[0])

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "a": self.a,
            "b": self.b,
            "change": self.change,
            "change_percent": self.change_percent,
            "ci95_percent": list(self.ci95_percent) if self.ci95_percent else None,
            "worse_when": "higher" if self.higher_is_worse else "lower",
        }


@dataclass(frozen=True)
class RoundCompare:
    """One level and round present in both runs."""

    level: str  # the level's key, e.g. concurrency=5
    round: int
    paired: bool  # both sent the same prompt ids: the bootstrap draws prompts, not requests
    n_a: int  # successful requests used from A (paired: the prompts that succeeded in both)
    n_b: int
    changes: list[Change]
    ttft_ratio_geomean: float | None = None  # paired only: geomean of TTFT_B / TTFT_A
    ttft_ratio_ci95: tuple[float, float] | None = None

    def change(self, metric: str) -> Change:
        return next(c for c in self.changes if c.metric == metric)

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "round": self.round,
            "paired": self.paired,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "ttft_ratio": (
                {
                    "geomean": self.ttft_ratio_geomean,
                    "geomean_ci95": list(self.ttft_ratio_ci95) if self.ttft_ratio_ci95 else None,
                }
                if self.paired
                else None
            ),
            "figures": [c.to_dict() for c in self.changes],
        }


@dataclass(frozen=True)
class Regression:
    """``--fail-on-regression METRIC=PCT``: B may be at most PCT percent worse than A."""

    metric: str
    percent: float

    @property
    def text(self) -> str:
        return f"{self.metric}={self.percent:g}"


@dataclass(frozen=True)
class GateCheck:
    """One regression gate on one level and round."""

    gate: Regression
    level: str
    round: int
    worse_percent: float | None
    worse_ci95: tuple[float, float] | None

    @property
    def failed(self) -> bool:
        w, ci = self.worse_percent, self.worse_ci95
        return w is not None and ci is not None and w > self.gate.percent and ci[0] > 0

    def message(self) -> Message:
        ci = (
            Message("regression_no_ci")
            if self.worse_ci95 is None
            else Message(
                "regression_ci", lo=f"{self.worse_ci95[0]:+.1f}", hi=f"{self.worse_ci95[1]:+.1f}"
            )
        )
        return Message(
            "regression_gate",
            gate=self.gate.text,
            where=Message("where", round=self.round, level=self.level),
            w="n/a" if self.worse_percent is None else f"{self.worse_percent:+.1f}%",
            ci=ci,
            verdict=Message("regression_failed" if self.failed else "regression_ok"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.gate.metric,
            "threshold_percent": self.gate.percent,
            "level": self.level,
            "round": self.round,
            "worse_percent": self.worse_percent,
            "worse_ci95": list(self.worse_ci95) if self.worse_ci95 else None,
            "failed": self.failed,
        }


@dataclass(frozen=True)
class Comparison:
    """Every level and round both runs have, the ones only one has, and the gates' verdicts."""

    rounds: list[RoundCompare]
    only_a: list[str]  # "concurrency=5 round 2" that B lacks
    only_b: list[str]
    gates: list[GateCheck] = field(default_factory=list)

    @property
    def failed_gates(self) -> list[GateCheck]:
        return [g for g in self.gates if g.failed]


def parse_regressions(items: Sequence[str]) -> list[Regression]:
    """``ttft_p99=10`` ... -> gates; a bad item is one UsageError naming it and the fix."""
    out = []
    for item in items:
        metric, sep, pct = item.partition("=")
        if not sep or metric not in GATEABLE:
            raise UsageError(
                f"--fail-on-regression {item}: give METRIC=PCT with METRIC one of "
                f"{', '.join(GATEABLE)} (e.g. ttft_p99=10)"
            )
        try:
            value = float(pct)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value >= 0):
            raise UsageError(
                f"--fail-on-regression {item}: PCT must be a number >= 0 (percent worse allowed)"
            )
        out.append(Regression(metric, value))
    return out


def compare_runs(
    a: RunDir,
    b: RunDir,
    gates: Sequence[Regression] = (),
    *,
    seed: int = 0,
    n_boot: int = N_BOOT,
) -> Comparison:
    """Compare every (level, round) both runs hold; raises DatasetError when they share none."""
    rounds_a = _rounds(a)
    rounds_b = _rounds(b)
    both = [k for k in rounds_a if k in rounds_b]
    if not both:
        raise DatasetError(
            f"--compare {a.path} {b.path}: the runs share no level and round "
            f"(A has {_names(rounds_a) or 'none'}, B has {_names(rounds_b) or 'none'}); "
            "compare runs of the same levels"
        )
    out = [
        _compare_round(a, b, key, rnd, rounds_a[key, rnd], rounds_b[key, rnd], seed, n_boot)
        for key, rnd in both
    ]
    checks = [
        GateCheck(
            g, rc.level, rc.round, rc.change(g.metric).worse_percent, rc.change(g.metric).worse_ci95
        )
        for g in gates
        for rc in out
    ]
    return Comparison(
        out,
        only_a=[f"{k} round {r}" for k, r in rounds_a if (k, r) not in rounds_b],
        only_b=[f"{k} round {r}" for k, r in rounds_b if (k, r) not in rounds_a],
        gates=checks,
    )


def _rounds(run: RunDir) -> dict[tuple[str, int], dict[str, Any]]:
    return {(level_key(lv), int(r["round"])): r for lv in run.levels for r in lv["rounds"]}


def _names(rounds: dict[tuple[str, int], Any]) -> str:
    return ", ".join(f"{k} round {r}" for k, r in rounds)


def _compare_round(
    a: RunDir,
    b: RunDir,
    key: str,
    rnd: int,
    sum_a: dict[str, Any],
    sum_b: dict[str, Any],
    seed: int,
    n_boot: int,
) -> RoundCompare:
    recs_a = [r for r in a.round_records(key, rnd) if r.get("ok")]
    recs_b = [r for r in b.round_records(key, rnd) if r.get("ok")]
    ids_a = {r.get("prompt_id") for r in a.round_records(key, rnd)}
    ids_b = {r.get("prompt_id") for r in b.round_records(key, rnd)}
    paired = bool(ids_a) and ids_a == ids_b
    if paired:  # the prompts that succeeded in both, in one order
        by_id = {r["prompt_id"]: r for r in recs_b}
        pairs = [(r, by_id[r["prompt_id"]]) for r in recs_a if r["prompt_id"] in by_id]
        recs_a, recs_b = [p[0] for p in pairs], [p[1] for p in pairs]
    rng = np.random.Generator(np.random.PCG64(seed))
    changes = []
    for name, fld in _FIELDS.items():
        values_a = [_values(r, fld) for r in recs_a]
        values_b = [_values(r, fld) for r in recs_b]
        for stat in _STATS:
            changes.append(
                _per_request(
                    f"{name}_{stat}",
                    values_a,
                    values_b,
                    stat,
                    paired,
                    rng,
                    n_boot if fld != "itl_ms" else min(n_boot, _N_BOOT_ITL),
                )
            )
    for name, (path, worse) in ROUND_FIGURES.items():
        changes.append(Change(name, _dig(sum_a, path), _dig(sum_b, path), None, worse))
    geo, geo_ci = (None, None)
    if paired:
        geo, geo_ci = _ratio_geomean(recs_a, recs_b, rng, n_boot)
    return RoundCompare(key, rnd, paired, len(recs_a), len(recs_b), changes, geo, geo_ci)


def _values(record: dict[str, Any], fld: str) -> np.ndarray[Any, Any]:
    """A request's values of one figure: its one TTFT/TPOT/latency, or its every ITL gap."""
    v = record.get(fld)
    if fld == "itl_ms":
        return np.asarray(v or [], dtype=float)
    return np.asarray([v] if isinstance(v, (int, float)) else [], dtype=float)


def _stat(stat: str) -> Callable[[np.ndarray[Any, Any]], float]:
    if stat == "avg":
        return lambda x: float(x.mean()) if x.size else math.nan
    q = float(stat[1:])
    return lambda x: float(np.percentile(x, q)) if x.size else math.nan


def _stat_rows(stat: str, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The figure of every row of a bootstrap matrix at once."""
    if stat == "avg":
        return np.asarray(x.mean(axis=1))
    return np.asarray(np.percentile(x, float(stat[1:]), axis=1))


def _per_request(
    name: str,
    values_a: list[np.ndarray[Any, Any]],
    values_b: list[np.ndarray[Any, Any]],
    stat: str,
    paired: bool,
    rng: np.random.Generator,
    n_boot: int,
) -> Change:
    """The figure over A's and B's requests, and a bootstrap CI of B's change in percent."""
    f = _stat(stat)
    flat_a = np.concatenate(values_a) if values_a else np.empty(0)
    flat_b = np.concatenate(values_b) if values_b else np.empty(0)
    if flat_a.size == 0 or flat_b.size == 0:
        return Change(name, None, None, None, True)
    a, b = f(flat_a), f(flat_b)
    ci = None
    na, nb = len(values_a), len(values_b)
    if na >= 2 and nb >= 2 and a != 0:
        ia = rng.integers(0, na, size=(n_boot, na))
        ib = ia if paired else rng.integers(0, nb, size=(n_boot, nb))
        if all(v.size == 1 for v in values_a) and all(v.size == 1 for v in values_b):
            da, db = _stat_rows(stat, flat_a[ia]), _stat_rows(stat, flat_b[ib])
        else:  # ITL: draw requests, keep each one's gaps together
            da = np.asarray([f(np.concatenate([values_a[i] for i in row])) for row in ia])
            db = np.asarray([f(np.concatenate([values_b[i] for i in row])) for row in ib])
        ok = np.isfinite(da) & np.isfinite(db) & (da != 0)
        if ok.sum() >= 2:
            lo, hi = np.percentile((db[ok] - da[ok]) / np.abs(da[ok]) * 100, [2.5, 97.5])
            ci = (float(lo), float(hi))
    return Change(name, a, b, ci, True)


def _ratio_geomean(
    recs_a: list[dict[str, Any]],
    recs_b: list[dict[str, Any]],
    rng: np.random.Generator,
    n_boot: int,
) -> tuple[float | None, tuple[float, float] | None]:
    """Geomean of the per-prompt TTFT ratio B/A, and its 95% bootstrap CI (2+ pairs)."""
    logs = np.asarray(
        [
            math.log(rb["ttft_ms"] / ra["ttft_ms"])
            for ra, rb in zip(recs_a, recs_b, strict=True)
            if (ra.get("ttft_ms") or 0) > 0 and (rb.get("ttft_ms") or 0) > 0
        ],
        dtype=float,
    )
    if logs.size == 0:
        return None, None
    geo = float(math.exp(logs.mean()))
    if logs.size < 2:
        return geo, None
    means = logs[rng.integers(0, logs.size, size=(n_boot, logs.size))].mean(axis=1)
    lo, hi = np.exp(np.percentile(means, [2.5, 97.5]))
    return geo, (float(lo), float(hi))


def _dig(d: dict[str, Any], path: tuple[str, ...]) -> float | None:
    cur: Any = d
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return float(cur) if isinstance(cur, (int, float)) and not isinstance(cur, bool) else None
