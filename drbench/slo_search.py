"""The sessions-within-SLO search, as data: ``--slo-search ttft_p95_ms=2000 [round=K] [max=N]``.

The question LMCache's multi-round QA asks: how many concurrent sessions can the server keep
within a TTFT bound in a later round?  Each probe is an ordinary measured run of ``--workload
sessions`` with ``users=U`` at concurrency U; U doubles from 1 until a probe fails (or ``max``),
then bisects between the largest U that passed and the smallest that failed.  A probe passes
when round K (default the last) has no failed request and its TTFT percentile is within the
bound: a failed request has no TTFT, and leaving it out would pass an overloaded server.  This
module parses the spec, picks the next probe and reads a finished probe; sweep_run.py runs them.
No I/O here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from drbench.errors import UsageError

if TYPE_CHECKING:  # results imports the config; only the type is needed here
    from drbench.results import RunResult

__all__ = ["FLAG", "Probe", "SearchSpec", "answer", "next_probe", "parse_search", "probe_of"]

FLAG = "--slo-search"
_PERCENTILES = (50, 90, 95, 99)
_DEFAULT_MAX = 64
_MAX_MAX = 100_000  # sessions' users= range


@dataclass(frozen=True)
class SearchSpec:
    """The bound (TTFT percentile of one round, in ms) and the largest U probed."""

    percentile: int
    bound_ms: float
    round: int
    max_users: int

    @property
    def metric(self) -> str:
        return f"ttft_p{self.percentile}_ms"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "metric": self.metric}


def parse_search(items: Sequence[str], workload: Sequence[str], rounds: int) -> SearchSpec:
    """``["ttft_p95_ms=2000", "round=5", "max=128"]`` for ``--workload sessions``; every
    mistake one line naming --slo-search."""
    if not workload or workload[0] != "sessions":
        raise UsageError(
            f"{FLAG} searches the users= of --workload sessions (one session each, at "
            "concurrency U): add --workload sessions"
        )
    bound: tuple[int, float] | None = None
    rnd, top = rounds, _DEFAULT_MAX
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise UsageError(f"{FLAG} {item}: expected KEY=VALUE, e.g. ttft_p95_ms=2000")
        if key.startswith("ttft_p") and key.endswith("_ms"):
            pct = key[len("ttft_p") : -len("_ms")]
            if not pct.isdigit() or int(pct) not in _PERCENTILES:
                shown = ", ".join(f"ttft_p{p}_ms" for p in _PERCENTILES)
                raise UsageError(f"{FLAG} {item}: bound one of {shown}")
            ms = _number(item, raw, float)
            if not (math.isfinite(ms) and ms > 0):
                raise UsageError(f"{FLAG} {item}: give a bound in ms above 0")
            bound = (int(pct), ms)
        elif key == "round":
            rnd = _number(item, raw, int)
            if not 1 <= rnd <= rounds:
                raise UsageError(f"{FLAG} {item}: the run has rounds 1 to {rounds}")
        elif key == "max":
            top = _number(item, raw, int)
            if not 1 <= top <= _MAX_MAX:
                raise UsageError(f"{FLAG} {item}: give max from 1 to {_MAX_MAX}")
        else:
            raise UsageError(
                f"{FLAG} {item}: unknown key {key!r}; give ttft_p95_ms=MS, round=K, max=N"
            )
    if bound is None:
        raise UsageError(f"{FLAG}: needs a bound, e.g. {FLAG} ttft_p95_ms=2000")
    return SearchSpec(percentile=bound[0], bound_ms=bound[1], round=rnd, max_users=top)


def _number(item: str, raw: str, typ: type) -> Any:
    try:
        return typ(raw)
    except ValueError:
        kind = "an integer" if typ is int else "a number"
        raise UsageError(f"{FLAG} {item}: expected {kind}") from None


@dataclass(frozen=True)
class Probe:
    """One probe's outcome: the round's TTFT percentile and failures, and whether it passed."""

    users: int
    ttft_ms: float | None
    failed: int
    passed: bool
    dir: str
    exit_status: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe_of(spec: SearchSpec, users: int, dir: str, status: int, run: RunResult | None) -> Probe:
    """Read round ``spec.round`` of a finished probe (a probe that lacks it does not pass)."""
    import numpy as np  # noqa: PLC0415 - after a run, never for --help

    rounds = [r for lv in (run.levels if run else []) for r in lv.rounds]
    found = next((r for r in rounds if r.summary.round == spec.round), None)
    if found is None:
        return Probe(users, None, 0, False, dir, status)
    ttfts = [r.ttft_ms for r in found.records if r.ok and r.ttft_ms is not None]
    value = float(np.percentile(ttfts, spec.percentile)) if ttfts else None
    failed = found.summary.failed
    passed = value is not None and failed == 0 and value <= spec.bound_ms
    return Probe(users, value, failed, passed, dir, status)


def _bounds(passed: Mapping[int, bool], top: int) -> tuple[int, int]:
    """(largest U that passed below the first failure, smallest U that failed); 0 and top+1
    when there is none."""
    hi = min((u for u, ok in passed.items() if not ok), default=top + 1)
    lo = max((u for u, ok in passed.items() if ok and u < hi), default=0)
    return lo, hi


def next_probe(passed: Mapping[int, bool], top: int) -> int | None:
    """The next U to run: doubling until a failure or ``top``, then bisection; None when the
    answer is known."""
    lo, hi = _bounds(passed, top)
    if hi == top + 1 and lo < top:  # nothing failed yet: double
        return min(top, 2 * lo) if lo else 1
    if hi - lo <= 1:
        return None
    return (lo + hi) // 2


def answer(passed: Mapping[int, bool], top: int) -> int | None:
    """The largest U within the bound (None: not even one session)."""
    lo, _ = _bounds(passed, top)
    return lo or None
