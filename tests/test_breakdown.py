"""TTFT by turn, by context length and over time, on hand-made records with known answers."""

from __future__ import annotations

import json

import pytest

from drbench.breakdown import (
    context_bucket,
    ttft_by_context,
    ttft_by_turn,
    ttft_over_time,
    window_width_s,
)
from drbench.levels import Level
from drbench.records import ErrorKind, RequestRecord
from drbench.stats import summarize_round


def rec(
    pid: str,
    rnd: int,
    *,
    ttft: float = 100.0,
    prompt: int | None = 10,
    cached: int | None = None,
    start: float = 0.0,
    scheduled: float | None = None,
    fail: bool = False,
) -> RequestRecord:
    r = RequestRecord(
        prompt_id=pid,
        level="rate=10",
        round=rnd,
        start_ms=start,
        end_ms=start + ttft + 5,
        ttft_ms=None if fail else ttft,
        latency_ms=None if fail else ttft + 5,
        prompt_tokens=prompt,
        completion_tokens=None if fail else 2,
        cached_tokens=cached,
        scheduled_ms=scheduled,
    )
    if fail:
        r.error_kind, r.error = ErrorKind.HTTP, "HTTP 500"
    return r


def test_by_turn_one_row_per_round():
    turn1 = [rec("a", 1, ttft=100, prompt=10, cached=0), rec("b", 1, ttft=300, prompt=30)]
    turn2 = [
        rec("a", 2, ttft=20, prompt=50, cached=40),
        rec("b", 2, ttft=40, prompt=70, cached=60),
        rec("c", 2, fail=True, prompt=1000, cached=0),  # failures count nowhere
    ]
    rows = ttft_by_turn([turn1, turn2])
    assert [r.round for r in rows] == [1, 2]
    one, two = rows
    assert (one.requests, one.context_tokens_mean) == (2, 20.0)
    # linear interpolation of [100, 300]: p50 200, p90 280, p99 298
    assert (one.ttft_p50_ms, one.ttft_p90_ms, one.ttft_p99_ms) == (200.0, 280.0, 298.0)
    assert one.cached_share == 0.0  # only a reports cached tokens: 0 of its 10
    assert (two.requests, two.context_tokens_mean, two.ttft_p50_ms) == (2, 60.0, 30.0)
    assert two.cached_share == 100 / 120
    assert json.loads(json.dumps(two.to_dict())) == {
        "round": 2,
        "requests": 2,
        "context_tokens_mean": 60.0,
        "ttft_ms": {"p50": 30.0, "p90": 38.0, "p99": 39.8},
        "cached_share": 100 / 120,
    }


def test_by_turn_unknown_is_none_not_zero():
    (row,) = ttft_by_turn([[rec("a", 1, prompt=None), rec("b", 1, fail=True)]])
    assert row.requests == 1 and row.context_tokens_mean is None and row.cached_share is None
    (empty,) = ttft_by_turn([[rec("b", 1, fail=True)]])
    assert empty.requests == 0 and empty.ttft_p50_ms is None


@pytest.mark.parametrize(
    ("tokens", "bucket"),
    [(0, (0, 1)), (1, (1, 2)), (2, (2, 4)), (3, (2, 4)), (511, (256, 512)), (512, (512, 1024))],
)
def test_context_buckets_are_powers_of_two(tokens, bucket):
    assert context_bucket(tokens) == bucket


def test_context_bucket_refuses_a_negative_count():
    with pytest.raises(ValueError, match="prompt_tokens must be >= 0"):
        context_bucket(-1)


def test_by_context_pools_the_rounds_and_lists_only_filled_buckets():
    r1 = [rec("a", 1, ttft=100, prompt=600, cached=0), rec("b", 1, ttft=50, prompt=100)]
    r2 = [
        rec("a", 2, ttft=40, prompt=900, cached=600),
        rec("b", 2, ttft=30, prompt=3000, cached=100),
        rec("c", 2, prompt=None),  # no count: in no bucket
        rec("d", 2, fail=True, prompt=600),
    ]
    buckets = ttft_by_context([r1, r2])
    assert [(b.low_tokens, b.high_tokens, b.requests) for b in buckets] == [
        (64, 128, 1),
        (512, 1024, 2),
        (2048, 4096, 1),
    ]
    mid = buckets[1]
    assert mid.context_tokens_mean == 750.0 and mid.ttft_p50_ms == 70.0
    assert mid.cached_share == 600 / 1500
    assert buckets[0].cached_share is None  # b reported no cached tokens
    assert buckets[2].to_dict()["ttft_ms"] == {"p50": 30.0, "p90": 30.0, "p99": 30.0}


@pytest.mark.parametrize(
    ("span", "width"),
    [(0.0, 1.0), (10.0, 1.0), (10.5, 2.0), (20.0, 2.0), (0.35, 0.05), (3600.0, 500.0), (1.0, 0.1)],
)
def test_window_width_is_1_2_5_with_at_most_ten_windows(span, width):
    assert window_width_s(span) == width
    assert span / width <= 10 + 1e-9


def test_over_time_windows_by_schedule_with_failures_and_lulls():
    # Scheduled over 0..1000 ms: 0.1 s windows, ten of them; sent late does not move a request.
    records = [
        rec("a", 1, scheduled=0.0, start=0.0, ttft=10),
        rec("b", 1, scheduled=50.0, start=400.0, ttft=30),  # sent 350 ms late: still window 0
        rec("c", 1, scheduled=300.0, start=300.0, ttft=20),  # exactly on an edge: window 3
        rec("d", 1, scheduled=310.0, start=310.0, fail=True),
        rec("e", 1, scheduled=1000.0, start=1000.0, ttft=90),  # the end: in the last window
    ]
    windows = ttft_over_time(records)
    assert len(windows) == 10
    assert [(w.start_s, w.end_s) for w in windows[:4]] == [
        (0.0, 0.1),
        (0.1, 0.2),
        (0.2, 0.3),
        (0.3, 0.4),
    ]
    assert [w.started for w in windows] == [2, 0, 0, 2, 0, 0, 0, 0, 0, 1]
    assert [w.failed for w in windows] == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert (windows[0].ttft_p50_ms, windows[0].ttft_p90_ms) == (20.0, 28.0)
    assert windows[3].ttft_p50_ms == 20.0  # d failed: only c's TTFT
    assert windows[1].ttft_p50_ms is None  # a lull: kept, with no TTFT
    assert windows[-1].to_dict() == {
        "start_s": 0.9,
        "end_s": 1.0,
        "started": 1,
        "failed": 0,
        "ttft_ms": {"p50": 90.0, "p90": 90.0},
    }


def test_over_time_of_a_closed_loop_uses_the_actual_start():
    records = [rec("a", 1, start=0.0), rec("b", 1, start=2500.0), rec("c", 1, start=5000.0)]
    windows = ttft_over_time(records)
    assert [(w.start_s, w.started) for w in windows] == [
        (0.0, 1),
        (0.5, 0),
        (1.0, 0),
        (1.5, 0),
        (2.0, 0),
        (2.5, 1),
        (3.0, 0),
        (3.5, 0),
        (4.0, 0),
        (4.5, 1),
    ]
    assert ttft_over_time([]) == []
    (burst,) = ttft_over_time([rec("a", 1, scheduled=0.0), rec("b", 1, scheduled=0.0)])
    assert (burst.start_s, burst.end_s, burst.started) == (0.0, 1.0, 2)


def test_a_round_summary_carries_its_windows():
    records = [rec("a", 1, scheduled=0.0), rec("b", 1, scheduled=2000.0, fail=True)]
    s = summarize_round(records, level=Level.open(1.0), round=1)
    d = json.loads(json.dumps(s.to_dict()))
    assert len(d["ttft_over_time"]) == 10 and d["ttft_over_time"][0]["started"] == 1
    assert d["ttft_over_time"][-1] == {
        "start_s": 1.8,
        "end_s": 2.0,
        "started": 1,
        "failed": 1,
        "ttft_ms": {"p50": None, "p90": None},
    }
