"""The run's pass/fail checks for CI: which gate failed, where, with what value against what.

Always on: a round in which no request succeeded fails the run (exit 6), so a CI job never goes
green on 0/N.  With ``--fail-on-errors`` a round whose failed share is above the threshold fails
(exit 5); with ``--fail-on-slo`` a round whose goodput is below it, or that missed one of the
SLO's percentile bounds (``ttft_p95_ms``: they judge the round, not its requests), fails (exit 4).  The worst failing
gate gives the exit code (6 > 5 > 4).  Pure: results in, verdicts out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from drbench.config import BenchConfig
from drbench.errors import ExitStatus
from drbench.levels import Level
from drbench.messages import Message, round_where
from drbench.results import RunResult

__all__ = ["GateResult", "evaluate_gates", "exit_status"]

_SEVERITY = {ExitStatus.NO_SUCCESS: 3, ExitStatus.ERRORS_FAILED: 2, ExitStatus.SLO_FAILED: 1}


@dataclass(frozen=True)
class GateResult:
    """One gate checked on one round."""

    gate: str  # "no_success" | "fail_on_errors" | "fail_on_slo" | "slo_percentile"
    level: Level
    round: int
    value: float | None  # percent: failed share, goodput; succeeded count for no_success
    threshold: float | None
    passed: bool
    status: ExitStatus  # the exit code when it fails
    detail: str = ""

    def message(self) -> str:
        """The line a failed gate prints (a ``messages.Message``: English, or ``--lang``)."""
        where = round_where(self.round, self.level)
        if self.gate == "no_success":
            return Message(
                "gate_no_success", where=where, detail=self.detail, status=int(self.status)
            )
        if self.gate == "slo_percentile":
            return Message(
                "gate_percentile",
                where=where,
                bound=self.detail,
                value=f"{self.value:.2f}" if self.value is not None else "-",
                threshold=f"{self.threshold:g}",
                status=int(self.status),
            )
        return Message(
            "gate_failed",
            flag="--" + self.gate.replace("_", "-"),
            threshold=f"{self.threshold:g}",
            where=where,
            value=f"{self.value:.1f}",
            what=Message("gate_errors" if self.gate == "fail_on_errors" else "gate_goodput"),
            detail=self.detail,
            status=int(self.status),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "level": self.level.key,
            "concurrency": self.level.concurrency,
            "round": self.round,
            "value": self.value,
            "threshold": self.threshold,
            "passed": self.passed,
            "exit_status": int(self.status),
        }


def evaluate_gates(result: RunResult, cfg: BenchConfig) -> list[GateResult]:
    """Every gate on every finished round, in run order."""
    out: list[GateResult] = []
    for level in result.levels:
        for rnd in level.rounds:
            s = rnd.summary
            if s.requests_total:
                failed = Counter(r.error_kind.value for r in rnd.records if r.error_kind)
                kinds = ", ".join(f"{n} {kind}" for kind, n in failed.most_common())
                out.append(
                    GateResult(
                        "no_success",
                        s.level,
                        s.round,
                        value=float(s.succeeded),
                        threshold=None,
                        passed=s.succeeded > 0,
                        status=ExitStatus.NO_SUCCESS,
                        detail=Message(
                            "gate_failed_detail",
                            failed=s.failed,
                            total=s.requests_total,
                            kinds=kinds,
                        ),
                    )
                )
            if cfg.fail_on_errors is not None and s.requests_total:
                pct = 100.0 * s.failed / s.requests_total
                out.append(
                    GateResult(
                        "fail_on_errors",
                        s.level,
                        s.round,
                        value=pct,
                        threshold=cfg.fail_on_errors,
                        passed=pct <= cfg.fail_on_errors,
                        status=ExitStatus.ERRORS_FAILED,
                        detail=Message("gate_of", n=s.failed, total=s.requests_total),
                    )
                )
            if cfg.fail_on_slo is not None and s.goodput is not None:
                pct = s.goodput.percent or 0.0
                out.append(
                    GateResult(
                        "fail_on_slo",
                        s.level,
                        s.round,
                        value=pct,
                        threshold=cfg.fail_on_slo,
                        passed=pct >= cfg.fail_on_slo,
                        status=ExitStatus.SLO_FAILED,
                        detail=Message("gate_good", good=s.goodput.good, total=s.requests_total),
                    )
                )
            if cfg.fail_on_slo is not None:
                out += [
                    GateResult(
                        "slo_percentile",
                        s.level,
                        s.round,
                        value=bound.value_ms,
                        threshold=bound.bound_ms,
                        passed=bound.met is not False,  # no value: no_success says why
                        status=ExitStatus.SLO_FAILED,
                        detail=bound.key,
                    )
                    for bound in s.slo_bounds
                ]
    return out


def exit_status(gates: list[GateResult]) -> ExitStatus:
    """The worst failing gate's code, or OK."""
    failed = [g.status for g in gates if not g.passed]
    return max(failed, key=_SEVERITY.__getitem__) if failed else ExitStatus.OK
