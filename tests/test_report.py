"""Console text (en and the original README's zh labels), CSV rows and JSON files from synthetic rounds."""

from __future__ import annotations

import csv
import itertools
import json
import re
from pathlib import Path

import pytest

from drbench.breakdown import ttft_by_context, ttft_by_turn
from drbench.config import BenchConfig
from drbench.levels import Level
from drbench.records import ErrorKind, RequestRecord, TokenSource
from drbench.report.console import (
    display_width,
    format_comparison,
    format_level,
    format_overview,
    format_round,
    format_server,
    format_turns,
)
from drbench.report.files import csv_rows, write_csv, write_round, write_summary, write_tables
from drbench.results import LevelResult, RoundResult, RunResult
from drbench.slo import SLO, PercentileBound
from drbench.stats import RoundData, compare_all, compare_rounds, summarize_round


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
    header, units, rows = (
        overview.splitlines()[2],
        overview.splitlines()[3],
        overview.splitlines()[5:7],
    )
    assert "Goodput" in header and "(%)" in units and "(ms)" in units
    assert rows[0].split()[2] == "3/4" and "25.0" in rows[0].split()
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
        "speedup": None,
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


# --- more than two rounds: conversations, and a rate level's TTFT over time -------------------------


def session_run(n_rounds: int = 3, *, kind: str = "concurrency") -> RunResult:
    """Three conversations over ``n_rounds`` turns: turn k's TTFT is turn 1's / k, its context
    grows by 100 tokens a turn, and all but the newest 100 tokens are cached."""
    lv = Level.closed(3) if kind == "concurrency" else Level.open(10.0)
    level = LevelResult(level=lv, cold_start="nonce", round2_mode="continue")
    for rnd in range(1, n_rounds + 1):
        recs = []
        for i, ttft in enumerate((300.0, 600.0, 900.0)):
            r = record(f"p{i}", rnd, ttft / rnd)
            r.level, r.scheduled_ms, r.start_ms = lv.key, 100.0 * i, 100.0 * i
            r.prompt_tokens, r.cached_tokens = 100 * rnd, 100 * (rnd - 1)
            recs.append(r)
        summary = summarize_round(recs, level=lv, round=rnd)
        level.rounds.append(RoundResult(summary, recs))
    data = [RoundData(r.records, r.summary, r.server_hit_rate) for r in level.rounds]
    level.comparisons = compare_all(data, n_boot=20)
    level.comparison = level.comparisons[0].comparison if level.comparisons else None
    level.by_turn = ttft_by_turn([r.records for r in level.rounds])
    level.by_context = ttft_by_context(r.records for r in level.rounds)
    return RunResult(config=BenchConfig(rounds=n_rounds), started_at="t0", levels=[level])


def test_three_rounds_print_the_round_2_block_then_one_table_of_every_comparison() -> None:
    level = session_run(3).levels[0]
    text = format_comparison(level)
    assert text.count("Round 2 vs round 1 |") == 1  # the block as it was
    assert "TTFT p50  600.00 ms -> 300.00 ms (-50.0%)" in text
    table = text.split("Every round against round 1 and against the round before:")[1]
    rows = [line.split() for line in table.splitlines() if line.strip()[:1].isdigit()]
    # Round, vs, p50 change, p90 change, ratio geomean, its CI: 2 vs 1 once, then 3 vs 1 and 3 vs 2.
    assert [r[:4] for r in rows] == [
        ["2", "1", "-50.0%", "-50.0%"],
        ["3", "1", "-66.7%", "-66.7%"],
        ["3", "2", "-33.3%", "-33.3%"],
    ]
    assert [r[4] for r in rows] == ["0.500", "0.333", "0.667"]
    assert rows[1][6:] == ["0.0%", "->", "66.7%", "-", "->", "-"]  # cached share, hit rate
    zh = format_comparison(level, "zh")
    assert "各轮与第 1 轮及与前一轮的对比:" in zh and "第 2 轮 vs 第 1 轮" in zh
    two = session_run(2).levels[0]
    assert "Every round against" not in format_comparison(two)  # one comparison: the block


def test_turn_and_context_tables_for_a_conversation_level() -> None:
    level = session_run(3).levels[0]
    text = format_turns(level)
    assert "TTFT by turn | concurrency 3" in text
    turns = text.split("TTFT by turn")[1].split("TTFT by context length")[0]
    rows = [line.split() for line in turns.splitlines() if line.strip()[:1].isdigit()]
    # Turn, OK, mean context, TTFT p50, p90, p99, cached share
    assert [r[:4] + r[-1:] for r in rows] == [
        ["1", "3", "100", "600.00", "0.0%"],
        ["2", "3", "200", "300.00", "50.0%"],
        ["3", "3", "300", "200.00", "66.7%"],
    ]
    contexts = text.split("TTFT by context length | concurrency 3 | prompt tokens, every round")[1]
    assert [line.split()[:2] for line in contexts.splitlines()[3:]] == [
        ["64-127", "3"],
        ["128-255", "3"],
        ["256-511", "3"],
    ]
    assert "按轮次的 TTFT | 并发 3" in format_turns(level, "zh")
    assert format_turns(session_run(1).levels[0]) == ""  # one turn: nothing to break down
    repeat = session_run(3).levels[0]
    repeat.round2_mode = "repeat"
    assert format_turns(repeat) == ""  # a repeat is not a later turn


def test_overview_adds_the_last_round_against_round_1_after_two_rounds() -> None:
    three = format_overview(session_run(3))
    assert (
        "Round 3 vs round 1 | concurrency 3: TTFT p50 600.00 ms -> 200.00 ms (-66.7%) | "
        "TTFT p90 840.00 ms -> 280.00 ms (-66.7%) | TTFT ratio geomean 0.333" in three
    )
    assert "Cached 0.0% -> 66.7% | Hit rate - -> -" in three
    assert "第 3 轮 vs 第 1 轮 | 并发 3" in format_overview(session_run(3), "zh")
    assert "vs round 1" not in format_overview(session_run(2))


def test_over_time_shows_at_a_rate_level_only() -> None:
    rate = session_run(2, kind="rate").levels[0].rounds[0]
    text = format_round(rate)
    assert "TTFT over time (requests by when each was due, 0.02 s windows):" in text
    after = text.split("0.02 s windows):")[1].splitlines()
    assert after[3].split() == ["0-0.02", "1", "0", "300.00", "300.00"]
    assert "TTFT 随时间变化" in format_round(rate, "zh")
    closed = session_run(2).levels[0].rounds[0]
    assert "TTFT over time" not in format_round(closed)


def test_summary_json_and_tables_of_three_rounds(tmp_path: Path) -> None:
    run = session_run(3)
    level = json.loads(write_summary(tmp_path, run).read_text())["levels"][0]
    assert level["comparison"]["ttft_ms"]["p50"]["round1"] == 600.0  # schema 2's, unchanged
    assert [(c["round"], c["against"]) for c in level["comparisons"]] == [(2, 1), (3, 1), (3, 2)]
    assert level["comparisons"][2]["ttft_ms"]["p50"] == {
        "before": 300.0,
        "after": 200.0,
        "change": -100.0,
        "change_percent": -100 / 3,
    }
    assert level["comparisons"][0]["ttft_ratio"] == level["comparison"]["ttft_ratio"]
    assert [(t["round"], t["context_tokens_mean"]) for t in level["by_turn"]] == [
        (1, 100.0),
        (2, 200.0),
        (3, 300.0),
    ]
    assert [(b["low_tokens"], b["high_tokens"]) for b in level["by_context"]] == [
        (64, 128),
        (128, 256),
        (256, 512),
    ]
    assert len(level["rounds"][0]["ttft_over_time"]) == 10
    written = write_tables(tmp_path, run)
    assert sorted(p.name for p in written) == ["ttft_by_context.csv", "ttft_by_turn.csv"]
    turns = list(csv.DictReader((tmp_path / "ttft_by_turn.csv").open()))
    assert [(t["level_kind"], t["round"], t["ttft_ms_p50"]) for t in turns] == [
        ("concurrency", "1", "600.0"),
        ("concurrency", "2", "300.0"),
        ("concurrency", "3", "200.0"),
    ]
    assert "ttft_over_time" not in "".join(csv_rows(run.levels)[0])  # a table of its own
    rate = tmp_path / "rate"
    rate.mkdir()
    assert [p.name for p in write_tables(rate, session_run(2, kind="rate"))] == [
        "ttft_by_turn.csv",
        "ttft_by_context.csv",
        "ttft_over_time.csv",
    ]
    windows = list(csv.DictReader((rate / "ttft_over_time.csv").open()))
    assert len(windows) == 20 and windows[0]["level_request_rate"] == "10.0"
    assert (windows[0]["round"], windows[0]["start_s"], windows[0]["started"]) == ("1", "0.0", "1")


def test_plots_get_a_row_of_ttft_over_time_at_a_rate_level(tmp_path: Path) -> None:
    from drbench.report.plots import write_plots  # noqa: PLC0415 - matplotlib (requirements-dev)

    def height(run: RunResult, name: str) -> int:
        out = tmp_path / name
        out.mkdir()
        png = write_plots(out, run).read_bytes()  # IHDR: width, then height, big-endian
        return int.from_bytes(png[20:24], "big")

    assert height(session_run(2), "closed") == 1200  # three rows of panels at 100 dpi
    assert height(session_run(2, kind="rate"), "rate") == 1600  # and the over-time row


def _tables(text: str) -> list[list[str]]:
    """Each tabulate table of ``text``: the header line, the dashes, the rows that follow."""
    lines = text.splitlines()
    tables = []
    for i, line in enumerate(lines):
        if i and set(line.strip()) == {"-", " "}:  # a dashes row (a rule has no spaces)
            rows = [lines[i - 1], line]
            if i > 1 and set(_columns(lines[i - 2])) <= set(_columns(line)):
                rows.insert(0, lines[i - 2])  # a header on two lines: name, then unit
            rows += [x for x in itertools.takewhile(lambda x: x.strip(), lines[i + 1 :])]
            tables.append(rows)
    return tables


def _columns(line: str) -> list[int]:
    """The display column where each cell of a table line starts (two spaces part cells)."""
    starts, col, prev_space = [], 0, 2
    for ch in line:
        if ch != " " and prev_space >= 2:
            starts.append(col)
        prev_space = prev_space + 1 if ch == " " else 0
        col += display_width(ch)
    return starts


def test_zh_tables_align_by_display_width_not_by_characters() -> None:
    run = run_result()
    level = run.levels[0]
    server = {
        "metrics": [
            {"metric": "vllm:x", "kind": "counter", "before": 1.0, "after": 3.0, "delta": 2.0}
        ]
    }
    texts = [
        format_level(level, "zh"),
        format_overview(run, "zh"),
        format_round(level.rounds[0], "zh"),
        format_server(server, "zh"),
    ]
    wide = 0
    for text in texts:
        tables = _tables(text)
        assert tables, text
        for table in tables:
            dashes = next(x for x in table if set(x.strip()) == {"-", " "})
            header, rows = table[: table.index(dashes)], table[table.index(dashes) + 1 :]
            assert rows
            # each cell starts (in display columns) where its column's dashes start
            for row in [*header, *rows]:
                assert set(_columns(row)) <= set(_columns(dashes)), (row, dashes)
            wide += sum(len(x) != display_width(x) for x in table)  # CJK took 2 columns
    assert wide >= 4  # the test did see Chinese cells
    assert "指标" in texts[2] and "最小" in texts[2] and "吞吐量:" in texts[2]
    assert "有效吞吐 (SLO):" in texts[2] and "类型" in texts[3] and "之前" in texts[3]
    assert "汇总" in texts[1] and "较第1轮" in texts[1] and "命中率是服务端" in texts[1]
    # the comparison block pads its labels by display width: every value starts in one column
    block = format_comparison(level, "zh")
    labelled = [x for x in block.splitlines() if "->" in x and not x.lstrip().startswith("TTFT")]
    assert len(labelled) >= 4  # output tokens/s, requests/s, goodput, cached, hit rate
    values = [re.match(r"  \S.*?\s+(?=[-\d])", x) for x in labelled]
    assert {display_width(m.group(0)) if m else -1 for m in values} == {19}, labelled


def test_chosen_percentiles_reach_console_csv_and_json(tmp_path: Path) -> None:
    slo = SLO(ttft_ms=100, percentile_bounds=(PercentileBound("ttft_p95_ms", 150.0),))
    level = LevelResult(level=Level.closed(5), cold_start="nonce")
    for rnd, ttfts in ((1, [200.0, 150.0, 90.0]), (2, [50.0, 40.0, 30.0])):
        recs = [record(f"p{i}", rnd, t) for i, t in enumerate(ttfts)]
        summary = summarize_round(
            recs, level=Level.closed(5), round=rnd, slo=slo, percentiles=(50, 95, 99)
        )
        level.rounds.append(RoundResult(summary, recs))
    r1, r2 = level.rounds
    level.comparison = compare_rounds(r1.records, r2.records, r1.summary, r2.summary)
    run = RunResult(config=BenchConfig(percentiles=(50, 95, 99)), started_at="t0", levels=[level])
    block = format_round(r1)
    header = next(x for x in block.splitlines() if x.startswith("Metric"))
    assert header.split() == ["Metric", "Avg", "P50", "P95", "P99", "Min", "Max", "Stddev"]
    assert "SLO TTFT P95 <= 150.00 ms: 195.00 ms (missed)" in block
    assert "SLO TTFT P95 <= 150.00 ms: 49.00 ms (met)" in format_round(r2)
    assert "TTFT P95" in format_level(level) and "TTFT P90" not in format_level(level)
    assert "TTFT P50" in format_overview(run) and "TTFT P99" in format_overview(run)
    rows = csv_rows(run.levels)
    assert rows[0]["metrics_ttft_ms_p95"] == pytest.approx(195.0)
    assert rows[0]["metrics_ttft_ms_p90"] == pytest.approx(190.0)  # P90 stays in the files
    assert rows[0]["slo_ttft_p95_ms_met"] is False and rows[1]["slo_ttft_p95_ms_met"] is True
    assert rows[1]["slo_ttft_p95_ms_value_ms"] == pytest.approx(49.0)
    summary = json.loads(write_summary(tmp_path, run).read_text())
    first = summary["levels"][0]["rounds"][0]
    assert list(first["metrics"]["ttft_ms"])[1:5] == ["p50", "p90", "p95", "p99"]
    assert first["slo_percentiles"] == [
        {"key": "ttft_p95_ms", "bound_ms": 150.0, "value_ms": 195.0, "met": False}
    ]
    assert summary["config"]["percentiles"] == [50, 95, 99]
