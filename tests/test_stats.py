"""Round statistics, goodput and the round comparison, checked against hand-computed values."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from drbench.levels import Level
from drbench.records import ErrorKind, RequestRecord
from drbench.slo import SLO, PercentileBound
from drbench.stats import (
    Change,
    Distribution,
    RoundComparison,
    RoundData,
    compare_all,
    compare_rounds,
    round_pairs,
    summarize_round,
)

SEVEN = {"avg", "p50", "p90", "p99", "min", "max", "stddev"}


def ok(
    pid: str,
    *,
    start: float = 0.0,
    ttft: float = 100.0,
    itl: tuple[float, ...] = (),
    completion: int | None = 1,
    prompt: int | None = 10,
    cached: int | None = None,
    rnd: int = 1,
) -> RequestRecord:
    """A successful request: latency = TTFT + the sum of its gaps, ending at start + latency."""
    latency = ttft + sum(itl)
    return RequestRecord(
        prompt_id=pid,
        level="concurrency=4",
        round=rnd,
        start_ms=start,
        end_ms=start + latency,
        ttft_ms=ttft,
        latency_ms=latency,
        itl_ms=list(itl),
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
    )


def failed(
    pid: str, kind: ErrorKind, error: str, *, start: float = 0.0, end: float | None = None
) -> RequestRecord:
    return RequestRecord(
        prompt_id=pid,
        level="concurrency=4",
        round=1,
        start_ms=start,
        end_ms=end,
        error_kind=kind,
        error=error,
        status=503 if kind is ErrorKind.HTTP else None,
    )


def round_one() -> list[RequestRecord]:
    """Four successes and one failure; the figures below are worked out by hand in each test.

    a: TTFT 100, gaps 10 20       -> latency 130, 3 tokens, TPOT (130-100)/2 = 15, ends 130
    b: TTFT 200, gap 30           -> latency 230, 2 tokens, TPOT 30,              ends 230
    c: TTFT 300, no gap, start 50 -> latency 300, 1 token,  no TPOT,              ends 350
    d: TTFT 400, gaps 40 50 60    -> latency 550, 4 tokens, TPOT 150/3 = 50, start 100, ends 650
    f: timeout from 200 ms to 2000 ms: the round lasts 0 -> 2000 ms = 2 s.
    """
    return [
        ok("a", ttft=100, itl=(10, 20), completion=3, prompt=10, cached=5),
        ok("b", ttft=200, itl=(30,), completion=2, prompt=20),
        ok("c", start=50, ttft=300, completion=1, prompt=30, cached=30),
        ok("d", start=100, ttft=400, itl=(40, 50, 60), completion=4, prompt=40),
        failed("f", ErrorKind.TIMEOUT, "no answer within 30 s", start=200, end=2000),
    ]


def close(actual, expected) -> bool:
    return actual == pytest.approx(expected, rel=1e-12, abs=1e-12)


# --- Distribution ----------------------------------------------------------------------------------


def test_distribution_hand_computed():
    # [100, 200, 300, 400]: mean 250; linear percentiles at rank q*(n-1):
    # p50 rank 1.5 -> 250; p90 rank 2.7 -> 300 + 0.7*100 = 370; p99 rank 2.97 -> 397.
    # Population variance: (150² + 50² + 50² + 150²) / 4 = 12500, stddev = sqrt(12500).
    d = Distribution.of([400.0, 100.0, 300.0, 200.0])
    assert (d.avg, d.p50, d.min, d.max, d.count) == (250.0, 250.0, 100.0, 400.0, 4)
    assert close(d.p90, 370.0) and close(d.p99, 397.0)
    assert close(d.stddev, math.sqrt(12500.0))


def test_distribution_single_and_empty():
    one = Distribution.of([7.5])
    assert one.to_dict() == dict.fromkeys(SEVEN, 7.5) | {"stddev": 0.0}
    empty = Distribution.of([])
    assert empty.count == 0 and empty.to_dict() == dict.fromkeys(SEVEN)


def test_distribution_to_dict_is_plain_json():
    d = Distribution.of(np.array([1, 2, 3]))
    assert set(d.to_dict()) == SEVEN
    assert all(type(v) is float for v in d.to_dict().values())


# --- summarize_round --------------------------------------------------------------------------------


def test_counts_duration_and_averages():
    s = summarize_round(round_one(), level=Level.closed(4), round=1)
    assert (s.level, s.round) == (Level.closed(4), 1)
    assert (s.requests_total, s.succeeded, s.failed) == (5, 4, 1)
    assert s.duration_s == 2.0  # min start 0 ms, max end 2000 ms (the failure)
    assert s.input_tokens_avg == 25.0  # (10 + 20 + 30 + 40) / 4
    assert s.output_tokens_avg == 2.5  # (3 + 2 + 1 + 4) / 4


def test_metrics_exclude_failures_and_pool_itl():
    m = summarize_round(round_one(), level=Level.closed(4), round=1).metrics
    assert set(m) == {"ttft_ms", "itl_ms", "tpot_ms", "latency_ms"}
    # TTFT [100, 200, 300, 400]: see test_distribution_hand_computed.
    assert (m["ttft_ms"].avg, m["ttft_ms"].count) == (250.0, 4)
    # ITL pooled [10, 20, 30, 40, 50, 60]: mean 35; p50 rank 2.5 -> 35; p90 rank 4.5 -> 55;
    # p99 rank 4.95 -> 59.5; variance (25²+15²+5²+5²+15²+25²)/6 = 1750/6.
    itl = m["itl_ms"]
    assert (itl.avg, itl.p50, itl.min, itl.max, itl.count) == (35.0, 35.0, 10.0, 60.0, 6)
    assert close(itl.p90, 55.0) and close(itl.p99, 59.5)
    assert close(itl.stddev, math.sqrt(1750.0 / 6.0))
    # TPOT [15, 30, 50] (c has one token): mean 95/3, median 30.
    assert close(m["tpot_ms"].avg, 95.0 / 3.0) and m["tpot_ms"].p50 == 30.0
    assert m["tpot_ms"].count == 3
    # Latency [130, 230, 300, 550]: mean 302.5, median (230 + 300) / 2 = 265.
    assert (m["latency_ms"].avg, m["latency_ms"].p50, m["latency_ms"].max) == (302.5, 265.0, 550.0)


def test_pooled_itl_reads_every_storage_of_gaps_alike():
    """Whole-ns Gaps (the parse), float Gaps (hand-made values) and a plain list assigned later
    pool into the same figures as numpy over the floats themselves."""
    whole = ok("a", itl=(7.654321, 12.0, 0.000001))
    floats = ok("b", itl=(0.1234567891, 3.5))
    assert whole.itl_ms.ns_or_ms[0].typecode == "I" and floats.itl_ms.ns_or_ms[0].typecode == "d"
    plain = ok("c")
    plain.itl_ms = [4.25, 9.0]  # not converted: a list stays a list
    none = ok("d")  # no gaps at all
    itl = summarize_round([whole, floats, plain, none], level=Level.closed(4), round=1).metrics[
        "itl_ms"
    ]
    values = np.array([7.654321, 12.0, 0.000001, 0.1234567891, 3.5, 4.25, 9.0])
    assert itl.count == 7 and itl.min == 0.000001 and itl.max == 12.0
    assert itl.avg == float(values.mean()) and itl.p90 == float(np.percentile(values, 90))
    assert itl.stddev == float(values.std())
    empty = summarize_round([none], level=Level.closed(4), round=1).metrics["itl_ms"]
    assert empty.count == 0 and empty.avg is None


def test_throughput():
    t = summarize_round(round_one(), level=Level.closed(4), round=1).throughput
    assert t.output_tokens_per_s == 5.0  # 10 output tokens / 2 s
    assert t.total_tokens_per_s == 55.0  # (100 prompt + 10 output) / 2 s
    assert t.requests_per_s == 2.0  # 4 successes / 2 s


def test_given_duration_overrides_the_records():
    s = summarize_round(round_one(), level=Level.closed(4), round=1, duration_s=4.0)
    assert s.duration_s == 4.0 and s.throughput.output_tokens_per_s == 2.5


def test_client_cached_share_over_records_reporting_both():
    c = summarize_round(round_one(), level=Level.closed(4), round=1).cache
    # a: 5 of 10 cached, c: 30 of 30; b and d report no cached_tokens and are left out.
    assert (c.cached_tokens, c.prompt_tokens) == (35, 40)
    assert c.client_cached_share == 35 / 40


def test_cache_unknown_when_no_record_reports_it():
    records = [ok("a", cached=None), ok("b", cached=None)]
    c = summarize_round(records, level=Level.closed(1), round=1).cache
    assert (c.client_cached_share, c.cached_tokens, c.prompt_tokens) == (None, None, None)


def test_missing_token_counts_contribute_nothing():
    records = [
        ok("a", itl=(10, 10), completion=3, prompt=None),
        ok("b", itl=(10,), completion=None, prompt=8),
    ]
    s = summarize_round(records, level=Level.closed(1), round=1)
    assert s.output_tokens_avg == 3.0 and s.input_tokens_avg == 8.0
    assert s.metrics["tpot_ms"].count == 1  # b's TPOT is unknown, not 0
    assert s.throughput.output_tokens_per_s == 3 / 0.12  # 3 tokens over 120 ms
    assert s.throughput.total_tokens_per_s == (8 + 3) / 0.12


def test_all_counts_missing_gives_none_not_zero():
    records = [ok("a", completion=None, prompt=None), ok("b", completion=None, prompt=None)]
    s = summarize_round(records, level=Level.closed(1), round=1)
    assert s.output_tokens_avg is None and s.input_tokens_avg is None
    t = s.throughput
    assert (t.output_tokens_per_s, t.total_tokens_per_s) == (None, None)
    assert t.requests_per_s == 2 / 0.1


def test_all_failed_round():
    records = [failed("a", ErrorKind.CONNECTION, "refused", end=5.0)] * 3
    s = summarize_round(records, level=Level.closed(1), round=1)
    assert (s.succeeded, s.failed) == (0, 3)
    assert all(d.count == 0 and d.avg is None for d in s.metrics.values())
    assert s.input_tokens_avg is None
    assert s.throughput.output_tokens_per_s == 0.0  # nothing succeeded: truly zero tokens
    assert s.errors == [("connection", "refused", 3)]


def test_empty_round_and_unended_records():
    s = summarize_round([], level=Level.closed(1), round=2)
    assert (s.requests_total, s.duration_s, s.throughput.requests_per_s) == (0, None, None)
    s = summarize_round([failed("a", ErrorKind.STREAM, "cut")], level=Level.closed(1), round=1)
    assert s.duration_s is None and s.throughput.requests_per_s is None


def test_top_errors_grouped_and_limited():
    records = [ok("ok")]
    records += [failed("t", ErrorKind.TIMEOUT, "no answer within 30 s")] * 3
    records += [failed("h", ErrorKind.HTTP, "503  Service\nUnavailable")] * 2
    records += [failed("h", ErrorKind.HTTP, "429 Too Many Requests")] * 4
    records += [failed(f"x{i}", ErrorKind.STREAM, f"dropped #{i}") for i in range(4)]
    s = summarize_round(records, level=Level.closed(1), round=1)
    assert s.errors == [
        ("http", "429 Too Many Requests", 4),
        ("timeout", "no answer within 30 s", 3),
        ("http", "503 Service Unavailable", 2),  # whitespace and newline normalised
        ("stream", "dropped #0", 1),
        ("stream", "dropped #1", 1),
    ]


# --- goodput ----------------------------------------------------------------------------------------


def test_no_slo_no_goodput():
    assert summarize_round(round_one(), level=Level.closed(4), round=1).goodput is None
    assert summarize_round(round_one(), level=Level.closed(4), round=1, slo=SLO()).goodput is None


def test_goodput_met_by_some():
    # TTFT <= 250 ms: a (3 tokens) and b (2 tokens) of 5 requests; 2 s round.
    g = summarize_round(round_one(), level=Level.closed(4), round=1, slo=SLO(ttft_ms=250)).goodput
    assert (g.good, g.total, g.percent) == (2, 5, 40.0)
    assert (g.requests_per_s, g.output_tokens_per_s) == (1.0, 2.5)


def test_goodput_met_by_all_successes_but_never_by_a_failure():
    g = summarize_round(round_one(), level=Level.closed(4), round=1, slo=SLO(ttft_ms=1000)).goodput
    assert (g.good, g.total, g.percent) == (4, 5, 80.0)
    g = summarize_round(
        round_one()[:4], level=Level.closed(4), round=1, slo=SLO(ttft_ms=1000)
    ).goodput
    assert (g.good, g.total, g.percent) == (4, 4, 100.0)


def test_goodput_met_by_none():
    g = summarize_round(round_one(), level=Level.closed(4), round=1, slo=SLO(latency_ms=50)).goodput
    assert (g.good, g.percent, g.requests_per_s, g.output_tokens_per_s) == (0, 0.0, 0.0, 0.0)


def test_goodput_itl_mode_changes_the_count():
    # itl_ms 25: mean gaps a 15, b 30, c none, d 50 -> a, c good; worst gaps a 20 -> same.
    # itl_ms 18: mean a 15 passes, worst a 20 does not -> mean 2 good (a, c), max 1 good (c).
    def good(slo: SLO) -> int:
        return summarize_round(round_one(), level=Level.closed(4), round=1, slo=slo).goodput.good

    assert good(SLO(itl_ms=25)) == good(SLO(itl_ms=25, itl_mode="max")) == 2
    assert good(SLO(itl_ms=18)) == 2
    assert good(SLO(itl_ms=18, itl_mode="max")) == 1


# --- to_dict ----------------------------------------------------------------------------------------


def test_round_to_dict_shape():
    s = summarize_round(round_one(), level=Level.closed(4), round=1, slo=SLO(ttft_ms=250))
    d = json.loads(json.dumps(s.to_dict()))  # plain JSON types only
    assert d["level"] == {
        "kind": "concurrency",
        "concurrency": 4,
        "request_rate": None,
        "max_concurrency": None,
        "speedup": None,
    }
    assert (d["concurrency"], d["round"]) == (4, 1)  # schema 1's key is kept
    assert d["requests"] == {"total": 5, "succeeded": 4, "failed": 1}
    assert (d["duration_s"], d["input_tokens_avg"], d["output_tokens_avg"]) == (2.0, 25.0, 2.5)
    assert set(d["metrics"]) == {"ttft_ms", "itl_ms", "tpot_ms", "latency_ms"}
    assert all(set(v) == SEVEN for v in d["metrics"].values())
    assert d["metrics"]["latency_ms"]["avg"] == 302.5
    assert d["throughput"] == {
        "output_tokens_per_s": 5.0,
        "total_tokens_per_s": 55.0,
        "requests_per_s": 2.0,
    }
    assert d["goodput"] == {
        "good": 2,
        "total": 5,
        "percent": 40.0,
        "requests_per_s": 1.0,
        "output_tokens_per_s": 2.5,
    }
    assert d["cache"] == {"client_cached_share": 0.875, "cached_tokens": 35, "prompt_tokens": 40}
    assert d["errors"] == [{"kind": "timeout", "message": "no answer within 30 s", "count": 1}]
    # In flight: a 0-130, b 0-230, c 50-350, d 100-650, f 200-2000 ms: 3010 ms busy over the
    # 2000 ms round is 1.505 on average; a, b, c and d overlap from 100 to 130 ms: a peak of 4.
    # A closed loop has no schedule, so no send lag.
    assert d["load"] == {"send_lag_ms": None, "concurrency_mean": 1.505, "concurrency_peak": 4}
    no_slo = summarize_round(round_one(), level=Level.closed(4), round=1).to_dict()
    assert no_slo["goodput"] is None


# --- compare_rounds ---------------------------------------------------------------------------------


def paired_rounds() -> tuple[list[RequestRecord], list[RequestRecord]]:
    """Ratios TTFT2/TTFT1: p1 50/100 = 0.5, p2 100/200 = 0.5, p3 400/400 = 1, p4 200/100 = 2.

    p5 fails in round 2 and p6 exists only in round 1: neither is paired.
    """
    r1 = [
        ok("p1", ttft=100, completion=2, itl=(10,)),
        ok("p2", ttft=200, completion=2, itl=(10,)),
        ok("p3", ttft=400, completion=2, itl=(10,)),
        ok("p4", ttft=100, completion=2, itl=(10,)),
        ok("p5", ttft=100, completion=2, itl=(10,)),
        ok("p6", ttft=100, completion=2, itl=(10,)),
    ]
    r2 = [
        ok("p4", ttft=200, completion=2, itl=(10,), rnd=2),
        ok("p1", ttft=50, completion=2, itl=(10,), rnd=2),
        ok("p2", ttft=100, completion=2, itl=(10,), rnd=2),
        ok("p3", ttft=400, completion=2, itl=(10,), rnd=2),
        failed("p5", ErrorKind.HTTP, "500", end=10.0),
    ]
    return r1, r2


def compare(r1, r2, **kw):
    slo = kw.pop("slo", None)
    s1 = summarize_round(r1, level=Level.closed(4), round=1, slo=slo)
    s2 = summarize_round(r2, level=Level.closed(4), round=2, slo=slo)
    return compare_rounds(r1, r2, s1, s2, **kw), s1, s2


def test_ratio_figures_hand_computed():
    c, _, _ = compare(*paired_rounds())
    assert c.n_pairs == 4
    assert c.ratio_median == 0.75  # median of [0.5, 0.5, 1, 2]
    assert close(c.ratio_geomean, 0.5**0.25)  # (0.5 * 0.5 * 1 * 2) ** (1/4)
    assert c.share_faster == 0.5  # p1 and p2; p3 (ratio 1) is not faster


def test_bootstrap_ci_deterministic_and_contains_geomean():
    # Twelve prompts with ratios 0.25, 0.30, ..., 0.80 (round 1 TTFT 1000 ms each).
    ratios = [0.25 + 0.05 * i for i in range(12)]
    r1 = [ok(f"p{i}", ttft=1000.0) for i in range(12)]
    r2 = [ok(f"p{i}", ttft=1000.0 * q, rnd=2) for i, q in enumerate(ratios)]
    a, _, _ = compare(r1, r2, seed=7)
    b, _, _ = compare(r1, r2, seed=7)
    other, _, _ = compare(r1, r2, seed=8)
    assert a.ratio_geomean_ci95 == b.ratio_geomean_ci95
    assert a.ratio_geomean_ci95 != other.ratio_geomean_ci95
    assert close(a.ratio_geomean, math.exp(sum(math.log(q) for q in ratios) / 12))
    low, high = a.ratio_geomean_ci95
    assert 0.25 < low < a.ratio_geomean < high < 0.80  # inside the smallest and largest ratio


def test_bootstrap_ci_many_pairs_is_tight_around_the_truth():
    # 3000 prompts whose round-2 TTFT is 0.4x round 1 times noise: the CI narrows around 0.4.
    rng = np.random.default_rng(1)
    t1 = rng.uniform(100, 1000, 3000)
    t2 = t1 * 0.4 * np.exp(rng.normal(0, 0.2, 3000))
    r1 = [ok(f"p{i}", ttft=float(t)) for i, t in enumerate(t1)]
    r2 = [ok(f"p{i}", ttft=float(t), rnd=2) for i, t in enumerate(t2)]
    c, _, _ = compare(r1, r2, n_boot=500)
    low, high = c.ratio_geomean_ci95
    assert low < c.ratio_geomean < high
    assert 0.38 < low and high < 0.42 and high - low < 0.02
    assert c.share_faster > 0.99  # a ratio above 1 needs noise beyond 4.5 sigma


def test_round_figures_and_changes():
    c, s1, s2 = compare(*paired_rounds(), slo=SLO(ttft_ms=150), hit_rates=(0.0, 0.8))
    # Round 1 TTFT [100, 200, 400, 100, 100, 100]: mean 1000/6; round 2 [200, 50, 100, 400]: 187.5.
    avg = c.ttft_ms["avg"]
    assert close(avg.before, 1000 / 6) and avg.after == 187.5
    assert close(avg.change, 187.5 - 1000 / 6)
    assert close(avg.change_percent, 100 * (187.5 - 1000 / 6) / (1000 / 6))
    # p50: round 1 sorted [100, 100, 100, 100, 200, 400] -> 100; round 2 [50, 100, 200, 400] -> 150.
    assert c.ttft_ms["p50"].to_dict() == {
        "round1": 100.0,
        "round2": 150.0,
        "change": 50.0,
        "change_percent": 50.0,
    }
    assert set(c.ttft_ms) == {"avg", "p50", "p90", "p99"}
    # Goodput TTFT <= 150: round 1 p1 p4 p5 p6, four of six; round 2 p1 p2 of five (p5 failed).
    assert close(c.goodput_percent.before, 400 / 6) and c.goodput_percent.after == 40.0
    assert c.output_tokens_per_s.before == s1.throughput.output_tokens_per_s
    assert c.requests_per_s.after == s2.throughput.requests_per_s
    assert c.server_hit_rate.to_dict() == {
        "round1": 0.0,
        "round2": 0.8,
        "change": 0.8,
        "change_percent": None,  # relative to 0 is undefined
    }


def test_comparison_to_dict_is_json():
    c, _, _ = compare(*paired_rounds(), hit_rates=(0.1, None))
    d = json.loads(json.dumps(c.to_dict()))
    assert d["n_pairs"] == 4
    assert set(d["ttft_ratio"]) == {"median", "geomean", "geomean_ci95", "share_faster"}
    assert len(d["ttft_ratio"]["geomean_ci95"]) == 2
    assert set(d["throughput"]) == {"output_tokens_per_s", "requests_per_s"}
    assert d["goodput_percent"] == {
        "round1": None,
        "round2": None,
        "change": None,
        "change_percent": None,
    }
    assert d["server_hit_rate"]["round1"] == 0.1 and d["server_hit_rate"]["change"] is None
    assert d["client_cached_share"]["round1"] is None


@pytest.mark.parametrize("n", [0, 1])
def test_zero_or_one_pair_without_warnings(n):
    r1 = [ok(f"p{i}", ttft=100) for i in range(n)] + [ok("only1", ttft=100)]
    r2 = [ok(f"p{i}", ttft=50, rnd=2) for i in range(n)] + [ok("only2", ttft=50, rnd=2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c, _, _ = compare(r1, r2)
        json.dumps(c.to_dict())
    assert c.n_pairs == n and c.ratio_geomean_ci95 is None
    if n == 0:
        assert (c.ratio_median, c.ratio_geomean, c.share_faster) == (None, None, None)
    else:
        assert (c.ratio_median, c.ratio_geomean, c.share_faster) == (0.5, 0.5, 1.0)


def test_compare_empty_rounds_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c, _, _ = compare([], [])
    assert c.n_pairs == 0 and c.ttft_ms["avg"].change is None


def test_repeated_prompt_ids_pair_in_order():
    r1 = [ok("p", ttft=100), ok("p", ttft=200)]
    r2 = [ok("p", ttft=50, rnd=2), ok("p", ttft=300, rnd=2), ok("p", ttft=10, rnd=2)]
    c, _, _ = compare(r1, r2)
    assert c.n_pairs == 2 and c.ratio_median == (0.5 + 1.5) / 2


def test_change_none_safety():
    assert Change(None, 5.0).change is None and Change(None, 5.0).change_percent is None
    assert Change(0.0, 5.0).change == 5.0 and Change(0.0, 5.0).change_percent is None
    assert Change(200.0, 150.0).change_percent == -25.0


# --- every round against round 1 and the one before ----------------------------------------------


def test_round_pairs_list_k_vs_1_and_k_vs_k_minus_1_once_each():
    assert round_pairs(1) == []
    assert round_pairs(2) == [(2, 1)]  # 2 vs 1 is also 2 vs the one before: listed once
    assert round_pairs(3) == [(2, 1), (3, 1), (3, 2)]
    assert round_pairs(4) == [(2, 1), (3, 1), (3, 2), (4, 1), (4, 3)]


def sessions(n_rounds: int) -> list[RoundData]:
    """Four conversations; turn k's TTFT is turn 1's times FACTORS[k-1] and it reports
    CACHED[k-1] of its 10 prompt tokens cached; the server's hit rate is HITS[k-1]."""
    base = (100.0, 200.0, 400.0, 800.0)
    rounds = []
    for k in range(1, n_rounds + 1):
        recs = [
            ok(f"p{i}", ttft=t * FACTORS[k - 1], rnd=k, prompt=10, cached=CACHED[k - 1])
            for i, t in enumerate(base)
        ]
        summary = summarize_round(recs, level=Level.closed(4), round=k)
        rounds.append(RoundData(recs, summary, HITS[k - 1]))
    return rounds


FACTORS = (1.0, 0.5, 0.25, 0.2)
CACHED = (0, 5, 8, 9)
HITS = (0.0, 0.4, 0.7, None)


@pytest.mark.parametrize("n_rounds", [3, 4])
def test_compare_all_is_compare_rounds_for_every_pair(n_rounds):
    data = sessions(n_rounds)
    got = compare_all(data, seed=7, n_boot=50)
    assert [(c.round, c.against) for c in got] == round_pairs(n_rounds)
    for c in got:
        before, after = data[c.against - 1], data[c.round - 1]
        by_hand = compare_rounds(
            before.records,
            after.records,
            before.summary,
            after.summary,
            hit_rates=(before.server_hit_rate, after.server_hit_rate),
            seed=7,
            n_boot=50,
        )
        assert c.comparison == by_hand
        # Every prompt's ratio is the same factor: the geometric mean is that factor exactly.
        factor = FACTORS[c.round - 1] / FACTORS[c.against - 1]
        assert close(c.comparison.ratio_geomean, factor) and c.comparison.n_pairs == 4
        assert c.comparison.client_cached_share == Change(
            CACHED[c.against - 1] / 10, CACHED[c.round - 1] / 10
        )
        assert c.comparison.server_hit_rate == Change(HITS[c.against - 1], HITS[c.round - 1])


def test_three_rounds_by_hand():
    three = {(c.round, c.against): c.comparison for c in compare_all(sessions(3), n_boot=20)}
    assert set(three) == {(2, 1), (3, 1), (3, 2)}
    # p50 of turn 1 [100, 200, 400, 800] is 300; turn 2 halves it (150), turn 3 quarters it (75).
    assert three[(3, 1)].ttft_ms["p50"] == Change(300.0, 75.0)
    assert three[(3, 1)].ttft_ms["p50"].change_percent == -75.0
    assert three[(3, 2)].ttft_ms["p50"] == Change(150.0, 75.0)
    assert three[(3, 2)].ttft_ms["p50"].change_percent == -50.0
    assert three[(3, 2)].share_faster == 1.0


def test_a_later_comparison_names_its_rounds_before_and_after_in_json():
    c = compare_all(sessions(3), n_boot=20)[2]
    d = json.loads(json.dumps(c.to_dict()))
    assert (d["round"], d["against"]) == (3, 2)
    assert d["ttft_ms"]["p50"] == {
        "before": 150.0,
        "after": 75.0,
        "change": -75.0,
        "change_percent": -50.0,
    }
    assert d["client_cached_share"]["before"] == 0.5 and d["server_hit_rate"]["after"] == 0.7
    assert {"n_pairs", "ttft_ratio", "throughput", "goodput_percent"} <= set(d)
    # The round 2 vs 1 comparison keeps schema 2's keys where it always was.
    assert set(c.comparison.to_dict()["ttft_ms"]["p50"]) == {
        "round1",
        "round2",
        "change",
        "change_percent",
    }
    assert isinstance(c, RoundComparison)


def test_percentiles_of_choice_are_shown_in_order_and_added_to_the_seven() -> None:
    values = np.arange(1.0, 101.0)  # 1..100: linear percentiles are 1 + 0.99 * p
    d = Distribution.of(values, (50, 95, 99.9))
    assert d.keys == ("p50", "p95", "p99.9")
    assert d.get("p95") == pytest.approx(1 + 0.99 * 95)
    assert d.get("p99.9") == pytest.approx(1 + 0.99 * 99.9)
    assert d.p90 == pytest.approx(1 + 0.99 * 90)  # the contract's three stay computed
    # summary.json: the seven keys, and the extra percentiles among the p-keys in order
    assert list(d.to_dict()) == ["avg", "p50", "p90", "p95", "p99", "p99.9", "min", "max", "stddev"]
    default = Distribution.of(values)
    assert default.keys == ("p50", "p90", "p99") and set(default.to_dict()) == SEVEN
    empty = Distribution.of([], (95,))
    assert empty.get("p95") is None and empty.keys == ("p95",)


def test_a_percentile_bound_judges_the_round_not_a_request() -> None:
    recs = [ok(f"p{i}", ttft=float(t)) for i, t in enumerate(range(10, 110, 10))]  # 10..100 ms
    slo = SLO(percentile_bounds=(PercentileBound("ttft_p95_ms", 90.0),))
    s = summarize_round(recs, level=Level.closed(1), round=1, slo=slo, percentiles=(50, 95))
    assert s.goodput is None  # no per-request bound: no goodput
    (check,) = s.slo_bounds
    assert check.value_ms == pytest.approx(95.5) and check.met is False
    assert s.metrics["ttft_ms"].get("p95") == pytest.approx(95.5)
    assert s.to_dict()["slo_percentiles"] == [
        {"key": "ttft_p95_ms", "bound_ms": 90.0, "value_ms": check.value_ms, "met": False}
    ]
    loose = SLO(ttft_ms=50, percentile_bounds=(PercentileBound("ttft_p50_ms", 60.0),))
    s = summarize_round(recs, level=Level.closed(1), round=1, slo=loose)
    assert s.slo_bounds[0].met is True and s.goodput is not None and s.goodput.good == 5
