"""compare.py: the change of every figure between two runs, its bootstrap CI, and the gates.

Known inputs: B's every TTFT is twice A's, so a paired comparison's change is +100% in every
bootstrap draw (a CI of exactly [100, 100]); the same values under other prompt ids are unpaired
and get a real interval around +100%.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drbench.compare import (
    GATEABLE,
    Change,
    GateCheck,
    Regression,
    compare_runs,
    parse_regressions,
)
from drbench.errors import DatasetError, UsageError
from drbench.levels import Level
from drbench.rundir import RunDir


def record(pid: str, ttft: float, itl: list[float], *, level: str = "concurrency=2", rnd: int = 1,
           ok: bool = True) -> dict[str, Any]:  # fmt: skip
    latency = ttft + sum(itl)
    return {
        "prompt_id": pid,
        "level": level,
        "round": rnd,
        "ok": ok,
        "ttft_ms": ttft,
        "itl_ms": itl,
        "tpot_ms": sum(itl) / len(itl) if itl else None,
        "latency_ms": latency,
    }


def run_dir(records: list[dict[str, Any]], *, levels: tuple[int, ...] = (2,),
            rounds: int = 1, tokens_per_s: float = 100.0) -> RunDir:  # fmt: skip
    lv = [
        {
            "level": Level.closed(c).to_dict(),
            "rounds": [
                {
                    "round": r,
                    "throughput": {"output_tokens_per_s": tokens_per_s, "requests_per_s": 1.0},
                    "cache": {"client_cached_share": 0.5, "server_hit_rate": None},
                    "goodput": None,
                }
                for r in range(1, rounds + 1)
            ],
        }
        for c in levels
    ]
    return RunDir(Path("x"), 2, {"levels": lv}, records)


A_TTFT = [10.0, 20.0, 30.0, 40.0, 50.0]


def test_paired_doubling_is_plus_100_percent_with_a_zero_width_interval() -> None:
    a = run_dir([record(f"p{i}", t, [1.0, 1.0]) for i, t in enumerate(A_TTFT)])
    b = run_dir([record(f"p{i}", 2 * t, [2.0, 2.0]) for i, t in enumerate(A_TTFT)])
    (rc,) = compare_runs(a, b, n_boot=200).rounds
    assert rc.paired and (rc.n_a, rc.n_b) == (5, 5)
    for metric in ("ttft_avg", "ttft_p50", "ttft_p99", "itl_avg", "itl_p50", "tpot_p90"):
        c = rc.change(metric)
        assert c.change_percent == pytest.approx(100.0)
        assert c.ci95_percent == pytest.approx((100.0, 100.0))
    c = rc.change("ttft_p50")
    assert (c.a, c.b) == (30.0, 60.0)
    assert rc.ttft_ratio_geomean == pytest.approx(2.0)
    assert rc.ttft_ratio_ci95 == pytest.approx((2.0, 2.0))
    latency = rc.change("latency_avg")  # 10+2 .. 50+2 against 20+4 .. 100+4
    assert latency.a == pytest.approx(32.0) and latency.b == pytest.approx(64.0)


def test_other_prompts_are_compared_unpaired_with_a_real_interval() -> None:
    a = run_dir([record(f"a{i}", t, [1.0]) for i, t in enumerate(A_TTFT)])
    b = run_dir([record(f"b{i}", 2 * t, [1.0]) for i, t in enumerate(A_TTFT)])
    (rc,) = compare_runs(a, b, n_boot=500).rounds
    assert not rc.paired and rc.ttft_ratio_geomean is None
    c = rc.change("ttft_avg")
    assert c.change_percent == pytest.approx(100.0)
    low, high = c.ci95_percent
    assert low < 100.0 < high and high - low > 20  # A and B drawn apart: their spreads add
    assert rc.to_dict()["ttft_ratio"] is None


def test_pairing_uses_the_prompts_that_succeeded_in_both() -> None:
    a = run_dir([record("p0", 10, [1]), record("p1", 20, [1]), record("p2", 30, [1], ok=False)])
    b = run_dir([record("p0", 20, [1]), record("p1", 40, [1], ok=False), record("p2", 60, [1])])
    (rc,) = compare_runs(a, b, n_boot=50).rounds
    assert rc.paired and (rc.n_a, rc.n_b) == (1, 1)  # p0 alone succeeded in both
    assert rc.change("ttft_avg").change_percent == pytest.approx(100.0)
    assert rc.change("ttft_avg").ci95_percent is None  # one pair: no interval


def test_round_figures_come_from_the_summary_without_an_interval() -> None:
    recs = [record(f"p{i}", t, [1.0]) for i, t in enumerate(A_TTFT)]
    (rc,) = compare_runs(run_dir(recs), run_dir(recs, tokens_per_s=80.0), n_boot=20).rounds
    c = rc.change("output_tokens_per_s")
    assert (c.a, c.b, c.change_percent, c.ci95_percent) == (100.0, 80.0, -20.0, None)
    assert c.worse_percent == pytest.approx(20.0)  # lower throughput is worse
    share = rc.change("client_cached_share")
    assert share.change == 0.0
    assert rc.change("server_hit_rate").a is None


def test_change_worse_direction_and_its_interval() -> None:
    up = Change("ttft_p50", 10.0, 12.0, (5.0, 30.0), higher_is_worse=True)
    assert up.worse_percent == pytest.approx(20.0) and up.worse_ci95 == (5.0, 30.0)
    down = Change("output_tokens_per_s", 10.0, 12.0, (5.0, 30.0), higher_is_worse=False)
    assert down.worse_percent == pytest.approx(-20.0) and down.worse_ci95 == (-30.0, -5.0)
    assert Change("x", 0.0, 1.0, None, True).change_percent is None  # no percent of 0


def test_gate_fails_only_beyond_the_threshold_with_the_interval_above_zero() -> None:
    gate = Regression("ttft_p99", 10.0)
    assert GateCheck(gate, "concurrency=2", 1, 25.0, (5.0, 40.0)).failed
    assert not GateCheck(gate, "concurrency=2", 1, 25.0, (-3.0, 40.0)).failed  # may be noise
    assert not GateCheck(gate, "concurrency=2", 1, 8.0, (5.0, 12.0)).failed  # within 10%
    assert not GateCheck(gate, "concurrency=2", 1, 25.0, None).failed  # no interval, no verdict
    msg = GateCheck(gate, "concurrency=2", 2, 25.0, (5.0, 40.0)).message()
    assert msg == (
        "--fail-on-regression ttft_p99=10: round 2 at concurrency=2: "
        "B worse by +25.0% (95% CI +5.0% .. +40.0%): FAILED"
    )


def test_gates_on_compared_runs() -> None:
    a = run_dir([record(f"p{i}", t, [1.0]) for i, t in enumerate(A_TTFT)])
    b = run_dir([record(f"p{i}", 2 * t, [1.0]) for i, t in enumerate(A_TTFT)])
    gates = parse_regressions(["ttft_p50=50", "ttft_p50=150", "itl_p50=0"])
    comp = compare_runs(a, b, gates, n_boot=100)
    assert [g.failed for g in comp.gates] == [True, False, False]  # ITL did not change
    assert comp.failed_gates == [comp.gates[0]]
    # an outlier moves the mean by 47%, but a draw without it moves nothing: not beyond noise
    noisy_a = run_dir([record(f"a{i}", t, [1.0]) for i, t in enumerate([1, 2, 3, 100])])
    noisy_b = run_dir([record(f"b{i}", t, [1.0]) for i, t in enumerate([1, 2, 3, 150])])
    comp = compare_runs(noisy_a, noisy_b, parse_regressions(["ttft_avg=10"]), n_boot=500)
    (check,) = comp.gates
    assert check.worse_percent == pytest.approx(47.17, abs=0.01)
    assert check.worse_ci95[0] < 0 and not check.failed


def test_levels_and_rounds_only_one_run_has() -> None:
    recs = [record("p0", 10, [1], level=f"concurrency={c}", rnd=r) for c in (1, 2) for r in (1, 2)]
    a = run_dir(recs, levels=(1, 2), rounds=2)
    b = run_dir(recs, levels=(2, 4), rounds=1)
    comp = compare_runs(a, b, n_boot=10)
    assert [(rc.level, rc.round) for rc in comp.rounds] == [("concurrency=2", 1)]
    assert comp.only_a == [
        "concurrency=1 round 1",
        "concurrency=1 round 2",
        "concurrency=2 round 2",
    ]
    assert comp.only_b == ["concurrency=4 round 1"]
    with pytest.raises(DatasetError, match="share no level and round"):
        compare_runs(run_dir([], levels=(1,)), run_dir([], levels=(4,)))


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("ttft_p99", "give METRIC=PCT"),
        ("ttft_p98=10", "give METRIC=PCT"),
        ("output_tokens_per_s=5", "give METRIC=PCT"),  # one figure per round: no interval
        ("ttft_p99=-1", "PCT must be a number >= 0"),
        ("ttft_p99=ten", "PCT must be a number >= 0"),
        ("ttft_p99=nan", "PCT must be a number >= 0"),
    ],
)
def test_bad_regression_items_are_one_line(item: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as exc:
        parse_regressions([item])
    assert f"--fail-on-regression {item}" in str(exc.value) and "\n" not in str(exc.value)


def test_every_per_request_figure_can_gate() -> None:
    assert len(GATEABLE) == 16 and "latency_p99" in GATEABLE
    assert [g.text for g in parse_regressions(["ttft_p99=10", "tpot_avg=2.5"])] == [
        "ttft_p99=10",
        "tpot_avg=2.5",
    ]
