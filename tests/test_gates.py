"""The CI gates as a pure function of the run's results (drbench/gates.py)."""

from __future__ import annotations

from drbench.config import BenchConfig
from drbench.errors import ExitStatus
from drbench.gates import evaluate_gates, exit_status
from drbench.levels import Level
from drbench.records import ErrorKind, RequestRecord, TokenSource
from drbench.results import LevelResult, RoundResult, RunResult
from drbench.slo import SLO
from drbench.stats import summarize_round


def rec(i: int, *, ok: bool = True, ttft: float = 10.0) -> RequestRecord:
    r = RequestRecord(
        prompt_id=f"p{i}", level="concurrency=4", round=1, start_ms=0.0, end_ms=50.0, ttft_ms=ttft,
        latency_ms=50.0, itl_ms=[5.0], token_events=2, prompt_tokens=10, completion_tokens=2,
        token_source=TokenSource.USAGE,
    )  # fmt: skip
    if not ok:
        r.error_kind, r.error = ErrorKind.HTTP, "HTTP 500: boom"
    return r


def run_of(records: list[RequestRecord], slo: SLO | None = None) -> RunResult:
    summary = summarize_round(records, level=Level.closed(4), round=1, slo=slo)
    level = LevelResult(Level.closed(4), "nonce", [RoundResult(summary, records)])
    return RunResult(BenchConfig(), "t0", levels=[level])


def status(records: list[RequestRecord], slo: SLO | None = None, **cfg: float) -> ExitStatus:
    result = run_of(records, slo)
    return exit_status(evaluate_gates(result, BenchConfig(**cfg)))


def test_no_gate_no_failure_is_ok_and_every_round_is_checked_for_success() -> None:
    gates = evaluate_gates(run_of([rec(i) for i in range(4)]), BenchConfig())
    assert [(g.gate, g.passed) for g in gates] == [("no_success", True)]
    assert exit_status(gates) is ExitStatus.OK


def test_the_error_gate_compares_the_failed_share_with_its_threshold() -> None:
    records = [rec(0, ok=False)] + [rec(i) for i in range(1, 4)]  # 25% failed
    assert status(records, fail_on_errors=30.0) is ExitStatus.OK
    assert status(records, fail_on_errors=20.0) is ExitStatus.ERRORS_FAILED
    gate = evaluate_gates(run_of(records), BenchConfig(fail_on_errors=20.0))[-1]
    assert gate.message() == (
        "--fail-on-errors 20% failed: round 1 at concurrency 4 had 25.0% failed requests "
        "(1 of 4): exit 5"
    )


def test_the_slo_gate_and_the_error_gate_wins_over_it() -> None:
    slo = SLO(ttft_ms=20.0)
    records = [rec(0, ttft=30.0), rec(1, ok=False), rec(2), rec(3)]  # goodput 50%
    assert status(records, slo, fail_on_slo=50.0) is ExitStatus.OK
    assert status(records, slo, fail_on_slo=60.0) is ExitStatus.SLO_FAILED
    both = status(records, slo, fail_on_slo=60.0, fail_on_errors=10.0)
    assert both is ExitStatus.ERRORS_FAILED


def test_a_round_with_no_success_wins_over_every_gate() -> None:
    records = [rec(i, ok=False) for i in range(4)]
    assert status(records, SLO(ttft_ms=20.0), fail_on_slo=60.0, fail_on_errors=10.0) is (
        ExitStatus.NO_SUCCESS
    )
    gate = evaluate_gates(run_of(records), BenchConfig())[0]
    assert gate.message() == (
        "no request succeeded in round 1 at concurrency 4 (4 of 4 failed: 4 http): exit 6"
    )
    assert gate.to_dict()["exit_status"] == 6 and gate.to_dict()["passed"] is False
    assert gate.level == Level.closed(4)
    assert (gate.to_dict()["level"], gate.to_dict()["concurrency"]) == ("concurrency=4", 4)


def test_fail_on_slo_also_gates_the_percentile_bounds() -> None:
    from drbench.slo import PercentileBound  # noqa: PLC0415

    records = [rec(i, ttft=t) for i, t in enumerate((10.0, 12.0, 14.0, 40.0))]
    loose = SLO(percentile_bounds=(PercentileBound("ttft_p95_ms", 100.0),))
    tight = SLO(percentile_bounds=(PercentileBound("ttft_p95_ms", 20.0),))
    # a round's P95 TTFT is 36.1 ms: within 100 ms, not within 20 ms
    assert status(records, loose, fail_on_slo=90.0) is ExitStatus.OK
    assert status(records, tight, fail_on_slo=90.0) is ExitStatus.SLO_FAILED
    assert status(records, tight) is ExitStatus.OK  # judged and reported, gated only on request
    gate = evaluate_gates(run_of(records, tight), BenchConfig(fail_on_slo=90.0))[-1]
    assert (gate.gate, gate.passed) == ("slo_percentile", False)
    assert gate.message() == (
        "--fail-on-slo: round 1 at concurrency 4 missed its SLO bound ttft_p95_ms <= 20 ms (it "
        "was 36.10 ms): exit 4"
    )
    assert gate.message().render("zh").startswith("--fail-on-slo: 并发 4 的第 1 轮 未满足")
