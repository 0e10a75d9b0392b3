"""The CLI end to end against the mocker: output files, the cache effect, cold round 1, failures,
preflight errors, Ctrl-C.  Delays are small and assertions on time use wide margins."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drbench.cli import main

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "examples" / "example_dataset.json"
FAST = ("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "8")


def run_cli(
    mock, out: Path, *extra: str, path: str = "/v1/chat/completions", plots: bool = False
) -> int:
    """One in-process run; plots.png only when asked (drawing it costs ~0.5 s of CPU a run)."""
    argv = [
        "--endpoint",
        mock.base_url + path,
        "--dataset",
        str(DATASET),
        "--output-dir",
        str(out),
        "--quiet",
        *(() if plots else ("--no-plots",)),
    ]
    return main([*argv, *extra])


def load_summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def rounds_of(summary: dict, level: int = 0) -> list[dict]:
    return summary["levels"][level]["rounds"]


@pytest.mark.slow
def test_every_output_file_and_the_summary_contract(fast_mocker, tmp_path: Path) -> None:
    mock = fast_mocker
    out = tmp_path / "run"
    assert (
        run_cli(
            mock,
            out,
            "--concurrency",
            "2",
            "4",
            "--num-samples",
            "6",
            "--api-key",
            "sk-test-SECRET",
            plots=True,
        )
        == 0
    )
    files = sorted(p.name for p in out.iterdir())
    assert files == [
        "concurrency_2_round_1.json",
        "concurrency_2_round_2.json",
        "concurrency_4_round_1.json",
        "concurrency_4_round_2.json",
        "metrics_summary.csv",
        "plots.png",
        "report.html",
        "requests.jsonl",
        "summary.json",
    ]
    s = load_summary(out)
    assert s["schema_version"] == 2 and s["tool"]["name"] == "drbench"
    assert s["config"]["api_key"] == "***" and s["config"]["model"] == "mock-llm"
    assert [lv["concurrency"] for lv in s["levels"]] == [2, 4]
    assert [lv["level"] for lv in s["levels"]] == [
        {
            "kind": "concurrency",
            "concurrency": c,
            "request_rate": None,
            "max_concurrency": None,
            "speedup": None,
        }
        for c in (2, 4)
    ]
    for lv in s["levels"]:
        assert lv["cold_start"] == "nonce" and lv["comparison"]["n_pairs"] == 6
        assert lv["warmup"] is None  # no --warmup
        for r in lv["rounds"]:
            assert r["requests"] == {"total": 6, "succeeded": 6, "failed": 0}
            assert r["level"] == lv["level"] and r["concurrency"] == lv["concurrency"]
            assert (r["truncated"], r["unsent"]) == (False, 0)
            load = r["load"]
            assert load["send_lag_ms"] is None  # a closed loop has no schedule to lag behind
            assert 1 <= load["concurrency_peak"] <= lv["concurrency"]
            assert 0 < load["concurrency_mean"] <= load["concurrency_peak"]
            (own,) = r["client"]  # --workers 1: this process alone sent the load
            assert own["worker"] is None and own["duration_s"] > 0 and own["cpu_s"] >= 0
            assert set(r["metrics"]) == {"ttft_ms", "itl_ms", "tpot_ms", "latency_ms"}
            for dist in r["metrics"].values():
                assert set(dist) == {"avg", "p50", "p90", "p99", "min", "max", "stddev"}
                assert dist["min"] <= dist["p50"] <= dist["p99"] <= dist["max"]
            assert set(r["throughput"]) == {
                "output_tokens_per_s",
                "total_tokens_per_s",
                "requests_per_s",
            }
            assert r["duration_s"] > 0 and r["output_tokens_avg"] == 8
    lines = (out / "requests.jsonl").read_text().splitlines()
    assert len(lines) == 6 * 2 * 2
    rec = json.loads(lines[0])
    assert rec["ok"] and rec["token_source"] == "usage" and len(rec["itl_ms"]) == 7
    assert rec["level"] == "concurrency=2" and rec["worker"] is None
    assert rec["scheduled_ms"] is None and rec["send_lag_ms"] is None
    assert [json.loads(x)["level"] for x in lines] == ["concurrency=2"] * 12 + [
        "concurrency=4"
    ] * 12
    rows = list(csv.DictReader((out / "metrics_summary.csv").open()))
    assert [(r["concurrency"], r["round"]) for r in rows] == [
        ("2", "1"),
        ("2", "2"),
        ("4", "1"),
        ("4", "2"),
    ]
    assert {r["level_kind"] for r in rows} == {"concurrency"}
    assert [r["level_concurrency"] for r in rows] == ["2", "2", "4", "4"]
    assert float(rows[0]["metrics_ttft_ms_p50"]) == pytest.approx(
        s["levels"][0]["rounds"][0]["metrics"]["ttft_ms"]["p50"]
    )
    per_round = json.loads((out / "concurrency_4_round_2.json").read_text())
    assert len(per_round["records"]) == 6 and per_round["summary"]["round"] == 2
    assert per_round["schema_version"] == 2 and per_round["level"]["concurrency"] == 4
    assert (out / "plots.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    assert "Plotly.newPlot" in page and "<div class='chart' id='ttft-cdf-1'></div>" in page
    for p in out.iterdir():
        if p.suffix != ".png":
            assert "sk-test-SECRET" not in p.read_text()


def test_round_two_is_faster_and_cached(mocker_factory, tmp_path: Path) -> None:
    mock = mocker_factory(
        "--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "4", "--prefill-tokens-per-s", "10000"
    )
    assert run_cli(mock, tmp_path / "r", "--concurrency", "1") == 0
    r1, r2 = rounds_of(load_summary(tmp_path / "r"))
    assert r1["cache"]["client_cached_share"] == 0  # the nonce makes every prompt miss
    assert r2["cache"]["client_cached_share"] > 0.9
    # the long prompts (~2,000 tokens) prefill in ~200 ms cold and skip it warm
    assert r2["metrics"]["ttft_ms"]["p90"] < 0.5 * r1["metrics"]["ttft_ms"]["p90"]
    cmp = load_summary(tmp_path / "r")["levels"][0]["comparison"]
    assert cmp["ttft_ratio"]["share_faster"] >= 0.8 and cmp["ttft_ratio"]["median"] < 1


def test_three_turns_hit_the_history_and_show_every_comparison(
    mocker_factory, tmp_path: Path, capsys
) -> None:
    mock = mocker_factory(*FAST)
    out = tmp_path / "turns"
    argv = [
        "--endpoint",
        mock.base_url + "/v1/chat/completions",
        "--dataset",
        str(DATASET),
        "--output-dir",
        str(out),
        "--no-plots",
        "--concurrency",
        "2",
        "--num-samples",
        "4",
        "--rounds",
        "3",
        "--round2-mode",
        "continue",
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    level = load_summary(out)["levels"][0]
    turns = level["by_turn"]
    assert [t["round"] for t in turns] == [1, 2, 3]
    # Later turns resend the conversation so far: a longer context, mostly cached.
    assert turns[2]["context_tokens_mean"] > turns[1]["context_tokens_mean"]
    assert turns[0]["cached_share"] == 0 and turns[2]["cached_share"] > 0.5
    assert turns[2]["cached_share"] > turns[0]["cached_share"]
    assert [(c["round"], c["against"]) for c in level["comparisons"]] == [(2, 1), (3, 1), (3, 2)]
    assert level["comparisons"][1]["n_pairs"] == 4  # a session pairs with itself across turns
    assert sum(b["requests"] for b in level["by_context"]) == 12
    # the default console: each level's compact answer, no per-round tables (--verbose has them)
    assert text.count("Concurrency: 2 | cold start: nonce | round 2: continue | 4 prompts") == 1
    assert "R3 vs R1" in text and "Round 1 metrics" not in text
    assert "Round 2 vs round 1 |" not in text  # the verbose comparison block
    assert "Every round against round 1 and against the round before:" in text
    assert "TTFT by turn | concurrency 2" in text and "TTFT by context length" in text
    assert "Round 3 vs round 1 | concurrency 2: TTFT p50" in text  # the overview's line
    assert "TTFT over time" not in text  # a closed loop
    assert (out / "ttft_by_turn.csv").exists() and (out / "ttft_by_context.csv").exists()
    assert not (out / "ttft_over_time.csv").exists()


def test_a_rate_level_shows_ttft_over_time_with_verbose(
    fast_mocker, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "rate"
    argv = ["--request-rate", "40", "--num-samples", "4", "--output-dir", str(out), "--no-plots"]
    argv.append("--verbose")  # every round's full table, the comparison block
    assert (
        main(
            [
                "--endpoint",
                fast_mocker.base_url + "/v1/chat/completions",
                "--dataset",
                str(DATASET),
                *argv,
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert text.count("TTFT over time (requests by when each was due") == 2  # each round
    assert "Round 1 metrics" in text and "Round 2 vs round 1 | rate 40 req/s" in text
    windows = rounds_of(load_summary(out))[0]["ttft_over_time"]
    assert sum(w["started"] for w in windows) == 4 and windows[0]["start_s"] == 0
    assert (out / "ttft_over_time.csv").exists() and not (out / "ttft_by_turn.csv").exists()


@pytest.mark.slow
def test_nonce_makes_round_one_cold_on_a_second_run(fast_mocker, tmp_path: Path) -> None:
    mock = fast_mocker
    for name in ("first", "second"):
        assert run_cli(mock, tmp_path / name, "--concurrency", "2") == 0
    assert rounds_of(load_summary(tmp_path / "second"))[0]["cache"]["client_cached_share"] == 0
    # without the nonce the same second run finds round 1 already warm (so the check above can fail)
    assert run_cli(mock, tmp_path / "n1", "--concurrency", "2", "--cold-start", "none") == 0
    assert run_cli(mock, tmp_path / "n2", "--concurrency", "2", "--cold-start", "none") == 0
    assert rounds_of(load_summary(tmp_path / "n2"))[0]["cache"]["client_cached_share"] > 0.9


def test_reset_policy_calls_the_reset_url(fast_mocker, tmp_path: Path) -> None:
    mock = fast_mocker
    assert run_cli(mock, tmp_path / "a", "--cold-start", "none", "--concurrency", "2") == 0
    reset = ("--cold-start", "reset", "--cache-reset-url", mock.base_url + "/reset_prefix_cache")
    assert run_cli(mock, tmp_path / "b", *reset, "--concurrency", "2") == 0
    s = load_summary(tmp_path / "b")
    assert s["levels"][0]["cold_start"] == "reset"
    assert rounds_of(s)[0]["cache"]["client_cached_share"] < 0.05


def test_completions_endpoint(fast_mocker, tmp_path: Path) -> None:
    mock = fast_mocker
    assert run_cli(mock, tmp_path / "c", "--concurrency", "3", path="/v1/completions") == 0
    r1, r2 = rounds_of(load_summary(tmp_path / "c"))
    assert r1["requests"]["succeeded"] == 10 and r2["cache"]["client_cached_share"] > 0.9


@pytest.mark.parametrize(
    "fault, kinds",
    [
        ("--error-rate", {"http"}),
        ("--drop-rate", {"stream", "connection"}),
        ("--malformed-rate", {"malformed"}),
    ],
)
def test_injected_failures_are_recorded_not_fatal(
    mocker_factory, tmp_path: Path, fault: str, kinds: set
) -> None:
    mock = mocker_factory(*FAST, fault, "0.4", "--seed", "3")
    out = tmp_path / "f"
    # the preflight retries transient failures, so the run starts despite the faults
    assert run_cli(mock, out, "--concurrency", "3", "--rounds", "1") == 0
    (r1,) = rounds_of(load_summary(out))
    assert 0 < r1["requests"]["failed"] < 10
    assert {e["kind"] for e in r1["errors"]} <= kinds
    assert 0 < sum(e["count"] for e in r1["errors"]) <= r1["requests"]["failed"]  # top 5 messages
    failed = [
        json.loads(x)
        for x in (out / "requests.jsonl").read_text().splitlines()
        if not json.loads(x)["ok"]
    ]
    assert len(failed) == r1["requests"]["failed"] and all(f["error"] for f in failed)


def test_preflight_errors_are_one_line_with_exit_3(fast_mocker, tmp_path: Path, capsys) -> None:
    code = main(
        [
            "--endpoint",
            "http://127.0.0.1:9/v1/chat/completions",
            "--model",
            "m",
            "--dataset",
            str(DATASET),
            "--output-dir",
            str(tmp_path / "x"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert (
        code == 3
        and err.startswith("drbench: preflight request to http://127.0.0.1:9")
        and "\n" not in err
    )
    assert not (tmp_path / "x").exists()  # nothing measured, nothing left behind
    mock = fast_mocker
    assert run_cli(mock, tmp_path / "y", "--model", "no-such-model") == 3
    err = capsys.readouterr().err
    assert "does not serve model 'no-such-model'" in err and "Check --model" in err


def test_existing_output_dir_is_not_overwritten(fast_mocker, tmp_path: Path, capsys) -> None:
    mock = fast_mocker
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert run_cli(mock, out) == 2
    assert "already holds results" in capsys.readouterr().err and (out / "keep.txt").exists()
    assert run_cli(mock, out, "--overwrite", "--rounds", "1", "--num-samples", "2") == 0


@pytest.mark.slow
def test_ctrl_c_keeps_everything_measured(
    mocker_factory, tmp_path: Path, sigint_reaches_children
) -> None:
    mock = mocker_factory("--ttft-ms", "5", "--itl-ms", "20", "--output-tokens", "20")
    out = tmp_path / "int"
    cmd = [
        sys.executable,
        str(ROOT / "dual_round_benchmarker.py"),
        "--endpoint",
        mock.base_url + "/v1/chat/completions",
        "--dataset",
        str(DATASET),
        "--concurrency",
        "2",
        "--output-dir",
        str(out),
        "--quiet",
        "--no-plots",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "requests.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # interrupt once round 1 is done and round 2 has begun
        if (out / "concurrency_2_round_1.json").exists() and len(
            log.read_text().splitlines()
        ) >= 12:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    records = [json.loads(x) for x in (out / "requests.jsonl").read_text().splitlines()]
    assert sum(r["round"] == 1 for r in records) == 10 and any(r["round"] == 2 for r in records)
    s = load_summary(out)
    assert s["run"]["interrupted"] is True and len(rounds_of(s)) == 1
    assert "Traceback" not in err


@pytest.mark.slow
def test_demo_runs_against_the_bundled_mocker(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "dual_round_benchmarker.py"),
            "--demo",
            "--quiet",
            "--no-plots",
            "--output-dir",
            str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    s = load_summary(tmp_path / "d")
    assert [lv["concurrency"] for lv in s["levels"]] == [1, 5]
    assert "Summary" in proc.stdout
