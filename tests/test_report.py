"""Console text (en and the original README's zh labels), CSV rows and JSON files from synthetic rounds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from drbench.config import BenchConfig
from drbench.levels import Level
from drbench.records import ErrorKind, RequestRecord, TokenSource
from drbench.report.console import format_comparison, format_overview, format_round, format_server
from drbench.report.files import csv_rows, write_csv, write_round, write_summary
from drbench.results import LevelResult, RoundResult, RunResult
from drbench.slo import SLO
from drbench.stats import compare_rounds, summarize_round


def record(pid: str, rnd: int, ttft: float, ok: bool = True) -> RequestRecord:
    rec = RequestRecord(
        pid,
        "concurrency=5",
        rnd,
        0.0,
        end_ms=ttft + 40,
        ttft_ms=ttft,
        latency_ms=ttft + 40,
        itl_ms=[10.0] * 4,
        prompt_tokens=100,
        completion_tokens=5,
        cached_tokens=0 if rnd == 1 else 96,
        token_source=TokenSource.USAGE,
    )
    if not ok:
        rec.error_kind, rec.error = ErrorKind.HTTP, "HTTP 500: boom"
    return rec


def run_result() -> RunResult:
    slo = SLO(ttft_ms=100)
    level = LevelResult(level=Level.closed(5), cold_start="nonce")
    for rnd, ttfts in ((1, [200.0, 150.0, 90.0]), (2, [50.0, 40.0, 30.0])):
        recs = [record(f"p{i}", rnd, t) for i, t in enumerate(ttfts)] + [
            record("p9", rnd, 1.0, ok=False)
        ]
        level.rounds.append(
            RoundResult(summarize_round(recs, level=Level.closed(5), round=rnd, slo=slo), recs)
        )
    r1, r2 = level.rounds
    level.comparison = compare_rounds(r1.records, r2.records, r1.summary, r2.summary)
    return RunResult(config=BenchConfig(api_key="sk-x"), started_at="t0", model="m", levels=[level])


def test_round_block_in_both_languages() -> None:
    r1 = run_result().levels[0].rounds[0]
    en = format_round(r1, "en")
    assert "Concurrency: 5 | Round 1 metrics" in en
    assert "Total requests: 4 | Succeeded: 3 | Failed: 1" in en
    assert "Requests meeting the SLO: 1 / 4 (25.00%)" in en
    assert "1 x [http] HTTP 500: boom" in en
    for row in ("TTFT (ms)", "ITL (ms)", "TPOT (ms)", "Latency (ms)"):
        assert row in en
    zh = format_round(r1, "zh")
    assert "并发: 5 | 第 1 轮性能指标" in zh and "总请求数: 4 | 成功: 3 | 失败: 1" in zh
    assert "满足 SLO 的请求数: 1 / 4 (25.00%)" in zh and "Token 吞吐量:" in zh


def test_comparison_and_overview() -> None:
    run = run_result()
    text = format_comparison(run.levels[0])
    assert "TTFT p50  150.00 ms -> 40.00 ms (-73.3%)" in text
    assert "faster in round 2: 100.0% of 3 prompts" in text
    assert "Cached share     0.0% -> 96.0%" in text
    overview = format_overview(run)
    assert "3/4" in overview and "25.0%" in overview
    header, rows = overview.splitlines()[2], overview.splitlines()[4:6]
    assert header.split()[0] == "Level" and [r.split()[:2] for r in rows] == [
        ["C=5", "1"],
        ["C=5", "2"],
    ]


def test_server_table_lists_urls_only_when_several_and_says_what_is_missing() -> None:
    one = {
        "metrics": [
            {
                "metric": "vllm:x",
                "url": "u1",
                "kind": "counter",
                "before": 1.0,
                "after": 2500.0,
                "delta": 2499.0,
            }
        ],
        "derived": {"vllm_prefix_cache_hit_rate": 0.5},
        "missing": [{"url": "u2", "metric": None, "reason": "down"}],
    }
    text = format_server(one)
    assert "URL" not in text.splitlines()[0] and "2,500" in text
    assert (
        "vllm_prefix_cache_hit_rate: 50.0%" in text and "missing: (all metrics) at u2: down" in text
    )
    two = {"metrics": [*one["metrics"], {**one["metrics"][0], "url": "u2"}]}
    assert "URL" in format_server(two).splitlines()[0]


def test_csv_and_json_files(tmp_path: Path) -> None:
    run = run_result()
    rows = csv_rows(run.levels)
    assert [(r["concurrency"], r["round"]) for r in rows] == [(5, 1), (5, 2)]
    assert [(r["level_kind"], r["level_concurrency"], r["level_request_rate"]) for r in rows] == [
        ("concurrency", 5, None)
    ] * 2
    # A closed loop has no send lag, but its columns are there, as a rate run's are.
    assert rows[0]["load_send_lag_ms_p99"] is None and rows[0]["load_concurrency_peak"] == 4
    assert {
        "metrics_ttft_ms_p99",
        "goodput_percent",
        "cache_client_cached_share",
        "throughput_requests_per_s",
    } <= set(rows[0])
    write_csv(tmp_path, run)
    on_disk = list(csv.DictReader((tmp_path / "metrics_summary.csv").open()))
    assert float(on_disk[1]["metrics_ttft_ms_p50"]) == 40.0 and on_disk[0]["goodput_good"] == "1"
    summary = json.loads(write_summary(tmp_path, run).read_text())
    assert summary["schema_version"] == 2
    assert summary["levels"][0]["level"] == {
        "kind": "concurrency",
        "concurrency": 5,
        "request_rate": None,
        "max_concurrency": None,
    }
    assert summary["levels"][0]["concurrency"] == 5 and summary["levels"][0]["warmup"] is None
    assert (
        summary["config"]["api_key"] == "***" and summary["levels"][0]["comparison"]["n_pairs"] == 3
    )
    per_round_path = write_round(tmp_path, run.levels[0].rounds[1])
    assert per_round_path.name == "concurrency_5_round_2.json"  # a closed loop's name as before
    per_round = json.loads(per_round_path.read_text())
    assert per_round["schema_version"] == 2 and per_round["level"]["concurrency"] == 5
    assert (per_round["summary"]["truncated"], per_round["summary"]["unsent"]) == (False, 0)
    assert per_round["summary"]["client"] == []
    assert {r["level"] for r in per_round["records"]} == {"concurrency=5"}
    assert (
        per_round["summary"]["cache"]["client_cached_share"] == 0.96
        and len(per_round["records"]) == 4
    )
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave nothing behind
