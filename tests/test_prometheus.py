"""Prometheus integration end to end, against the mocker: per-round hit rates from counter deltas,
each server profile (the mocker's --metrics-profile) detected and read, counters/gauges/histograms
as specified, selectors, a dead metrics URL, SLO goodput, multi-turn round 2 and the CI exit codes.

Runs under pytest, or directly: ``python tests/test_prometheus.py``.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drbench.cli import main  # noqa: E402

DATASET = ROOT / "examples" / "example_dataset.json"
FAST = ("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "8")


def bench(mock, out: Path, *extra: str, metrics: bool = True) -> int:
    argv = [
        "--endpoint",
        mock.base_url + "/v1/chat/completions",
        "--dataset",
        str(DATASET),
        "--output-dir",
        str(out),
        "--quiet",
        "--concurrency",
        "2",
    ]
    if metrics:
        argv += ["--prometheus-url", mock.base_url + "/metrics", "--prometheus-interval", "0.2"]
    return main([*argv, *extra])


def rounds(out: Path) -> list[dict]:
    return json.loads((out / "summary.json").read_text())["levels"][0]["rounds"]


def by_name(server: dict) -> dict[str, dict]:
    return {m["metric"]: m for m in server["metrics"]}


def test_hit_rate_is_cold_then_warm_from_counter_deltas(mocker_factory, tmp_path: Path) -> None:
    mock = mocker_factory(*FAST)
    assert bench(mock, tmp_path / "a") == 0
    r1, r2 = rounds(tmp_path / "a")
    assert r1["cache"]["server_hit_rate"] == 0  # preflight is outside the round's deltas
    assert r2["cache"]["server_hit_rate"] > 0.9
    assert r2["server_metrics"]["hit_rate_source"] == "vllm_prefix_cache_hit_rate"
    # the client's view from usage agrees with the server's counters
    assert r2["cache"]["client_cached_share"] == pytest.approx(
        r2["cache"]["server_hit_rate"], abs=0.02
    )
    csv_head = (tmp_path / "a" / "metrics_summary.csv").read_text().splitlines()[0]
    assert "cache_server_hit_rate" in csv_head and "cache_client_cached_share" in csv_head


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize(
    "profile, source, title, block_size",
    [
        ("vllm", "vllm_prefix_cache_hit_rate", "vLLM", 16),
        ("sglang", "sglang_prefix_cache_hit_rate", "SGLang", None),  # SGLang does not say
        ("lmcache", "lmcache_retrieve_hit_rate", "LMCache on vLLM", 16),
    ],
)
def test_each_server_profile_is_detected_and_gives_the_round_hit_rates(
    mocker_factory, tmp_path: Path, profile: str, source: str, title: str, block_size
) -> None:
    mock = mocker_factory(*FAST, "--metrics-profile", profile, "--cache-capacity-tokens", "64000")
    out = tmp_path / profile
    assert bench(mock, out) == 0
    run = summary(out)["run"]
    assert run["server_profile"]["name"] == profile
    assert run["server_profile"]["title"] == title
    assert run["server_profile"]["chosen_by"] == "detected"
    assert run["server_profile"]["block_size"] == block_size
    assert run["server_profile"]["capacity_tokens"] == 64000
    r1, r2 = rounds(out)
    assert r1["cache"]["server_hit_rate"] == 0  # nonce cold start: nothing reused
    assert r2["cache"]["server_hit_rate"] > 0.9
    assert r2["server_metrics"]["hit_rate_source"] == source
    assert r2["server_metrics"]["profile"] == profile
    assert r2["cache"]["client_cached_share"] == pytest.approx(
        r2["cache"]["server_hit_rate"], abs=0.02
    )
    reported = {m["metric"].split(":")[0] for m in r2["server_metrics"]["metrics"]}
    derived = r2["server_metrics"]["derived"]
    flush_note = [w for w in run["warnings"] if "every 10 s" in w]
    if profile == "sglang":
        assert reported == {"sglang"} and list(derived) == [source]
    if profile == "lmcache":  # LMCache's own counters and vLLM's view of the connector agree
        assert reported == {"lmcache", "vllm"}
        assert derived["vllm_external_prefix_cache_hit_rate"] == pytest.approx(derived[source])
        assert derived["vllm_prefix_cache_hit_rate"] is None  # vLLM's own caching is off
        assert len(flush_note) == 1 and "--round-pause 10" in flush_note[0]
    else:
        assert flush_note == []


def test_a_server_profile_flag_that_contradicts_the_names_warns(
    mocker_factory, tmp_path: Path, capsys
) -> None:
    mock = mocker_factory(*FAST)
    out = tmp_path / "x"
    assert bench(mock, out, "--server-profile", "sglang", "--num-samples", "2") == 0
    assert (
        "--server-profile sglang but the endpoint exposes vLLM metrics; its SGLang hit rates "
        "may be missing (use --server-profile auto or vllm)" in capsys.readouterr().err
    )
    profile = summary(out)["run"]["server_profile"]
    assert (profile["name"], profile["chosen_by"], profile["block_size"]) == (
        "sglang",
        "flag",
        None,
    )
    assert rounds(out)[1]["cache"]["server_hit_rate"] is None  # missing, never 0


def test_the_generic_profile_reads_any_known_server(mocker_factory, tmp_path: Path) -> None:
    mock = mocker_factory(*FAST, "--metrics-profile", "sglang")
    out = tmp_path / "g"
    assert bench(mock, out, "--server-profile", "generic", "--num-samples", "4") == 0
    profile = summary(out)["run"]["server_profile"]
    assert (profile["name"], profile["chosen_by"], profile["capacity_tokens"]) == (
        "generic",
        "flag",
        None,  # generic knows no size source
    )
    r2 = rounds(out)[1]
    assert r2["server_metrics"]["hit_rate_source"] == "sglang_prefix_cache_hit_rate"
    assert r2["cache"]["server_hit_rate"] > 0.5  # short prompts: whole blocks only
    assert r2["cache"]["server_hit_rate"] == pytest.approx(r2["cache"]["client_cached_share"])
    assert not any("--server-profile" in w for w in summary(out)["run"]["warnings"])


def test_counters_gauges_and_histograms_are_reported_as_specified(
    mocker_factory, tmp_path: Path
) -> None:
    mock = mocker_factory(
        "--ttft-ms", "5", "--itl-ms", "10", "--output-tokens", "20"
    )  # ~1 s rounds
    assert bench(mock, tmp_path / "k") == 0
    m = by_name(rounds(tmp_path / "k")[1]["server_metrics"])
    hits = m["vllm:prefix_cache_hits"]
    assert hits["kind"] == "counter" and hits["delta"] == hits["after"] - hits["before"] > 0
    running = m["vllm:num_requests_running"]
    assert running["kind"] == "gauge" and running["samples"] >= 2
    assert 0 < running["mean"] <= running["max"] <= 2  # at most --concurrency in flight
    ttft = m["vllm:time_to_first_token_seconds"]
    assert ttft["kind"] == "histogram" and ttft["delta"] == 10  # one observation per request
    assert ttft["mean"] == pytest.approx(ttft["delta_sum"] / ttft["delta"])
    assert 0.003 < ttft["mean"] < 1.0  # seconds, as the server measures


def test_selector_and_total_suffix(mocker_factory, tmp_path: Path) -> None:
    mock = mocker_factory(*FAST)
    sel = (
        'vllm:prefix_cache_hits_total{model_name="mock-llm"}',
        "vllm:num_requests_running",
        'vllm:prefix_cache_queries{model_name="other"}',
    )
    assert bench(mock, tmp_path / "s", "--prometheus-metrics", *sel) == 0
    server = rounds(tmp_path / "s")[1]["server_metrics"]
    reported = by_name(server)
    hits = next(v for k, v in reported.items() if k.startswith("vllm:prefix_cache_hits"))
    assert hits["delta"] > 0  # '_total' given, family found without it
    assert any(k.startswith("vllm:num_requests_running") for k in reported)
    assert not any(
        "prefix_cache_queries" in k and v["delta"] for k, v in reported.items()
    )  # no series matched
    assert server["missing"] and "other" in json.dumps(server["missing"])


def test_dead_metrics_url_warns_once_and_the_run_completes(
    mocker_factory, tmp_path: Path, capsys
) -> None:
    mock = mocker_factory(*FAST)
    argv = ["--prometheus-url", "http://127.0.0.1:9/metrics"]
    assert bench(mock, tmp_path / "d", *argv, metrics=False) == 0
    err = capsys.readouterr().err
    assert err.count("127.0.0.1:9") == 1, err
    r1, r2 = rounds(tmp_path / "d")
    assert r1["requests"]["succeeded"] == 10
    assert r2["cache"]["server_hit_rate"] is None  # missing, never 0
    assert r2["server_metrics"]["missing"]


@pytest.mark.parametrize(
    "bound, expect", [("100000", (100.0, 100.0)), ("0.001", (0.0, 0.0)), ("100", "between")]
)
def test_goodput_against_slos(mocker_factory, tmp_path: Path, bound: str, expect) -> None:
    # cold long prompts (~2,300 tokens at 10,000 tok/s) take over 200 ms; everything else ~10-25 ms
    mock = mocker_factory(*FAST, "--prefill-tokens-per-s", "10000")
    assert bench(mock, tmp_path / "g", "--slo", f"ttft_ms={bound}", metrics=False) == 0
    g1, g2 = (r["goodput"] for r in rounds(tmp_path / "g"))
    assert set(g1) == {"good", "total", "percent", "requests_per_s", "output_tokens_per_s"}
    if expect == "between":
        assert 0 < g1["good"] < 10 and g2["good"] == 10
        assert g1["percent"] == pytest.approx(100.0 * g1["good"] / 10)
    else:
        assert (g1["percent"], g2["percent"]) == expect
    assert (g2["requests_per_s"] > 0) == (g2["good"] > 0)


def test_slo_file_and_no_slo(mocker_factory, tmp_path: Path) -> None:
    mock = mocker_factory(*FAST)
    assert (
        bench(
            mock,
            tmp_path / "f",
            "--slo-file",
            str(ROOT / "examples" / "slo_example.yaml"),
            metrics=False,
        )
        == 0
    )
    assert rounds(tmp_path / "f")[0]["goodput"]["good"] == 10
    assert bench(mock, tmp_path / "n", metrics=False) == 0
    assert rounds(tmp_path / "n")[0]["goodput"] is None


def test_continue_mode_sends_the_real_first_answer(mocker_factory, tmp_path: Path) -> None:
    mock = mocker_factory(*FAST)
    out = tmp_path / "c"
    argv = ("--round2-mode", "continue", "--num-samples", "4", "--followup-text", "And then?")
    assert bench(mock, out, *argv) == 0
    records = [json.loads(x) for x in (out / "requests.jsonl").read_text().splitlines()]
    answers = {r["prompt_id"]: r["output_text"] for r in records if r["round"] == 1}
    with urllib.request.urlopen(mock.base_url + "/debug/requests") as resp:
        bodies = [b for b in json.load(resp) if len(b.get("messages", [])) >= 3]
    dataset = {d["id"]: d for d in json.loads(DATASET.read_text())}
    assert len(bodies) == 4
    for body in bodies:
        *first, assistant, followup = body["messages"]
        pid = next(
            p
            for p in answers
            if first[-1]["content"].endswith(
                dataset[p].get("text") or dataset[p]["messages"][-1]["content"]
            )
        )
        assert assistant == {"role": "assistant", "content": answers[pid]} and answers[pid]
        expected = dataset[pid].get("followup", "And then?")  # ex-03 has none: the flag's text
        assert followup == {"role": "user", "content": expected}
    r2 = rounds(out)[1]
    # the whole first exchange is the cached prefix; only the answer's tail and the follow-up are new
    assert (
        r2["cache"]["server_hit_rate"] > 0.5 and rounds(out)[0]["cache"]["server_hit_rate"] < 0.05
    )


def test_exit_codes_for_ci(mocker_factory, tmp_path: Path, capsys) -> None:
    """The gates end to end; every combination of thresholds is unit-tested in test_gates.py."""
    ok = mocker_factory(*FAST)
    assert (
        bench(ok, tmp_path / "2", "--slo", "ttft_ms=0.001", "--fail-on-slo", "50", metrics=False)
        == 4
    )
    assert (tmp_path / "2" / "summary.json").exists()  # reports are written before the gate fails
    assert bench(ok, tmp_path / "3", "--fail-on-slo", "50", metrics=False) == 2
    assert "--fail-on-slo needs SLO bounds" in capsys.readouterr().err
    flaky = mocker_factory(*FAST, "--error-rate", "0.3", "--seed", "1")
    gates = ("--fail-on-errors", "5", "--slo", "ttft_ms=0.001", "--fail-on-slo", "50")
    assert bench(flaky, tmp_path / "6", *gates, metrics=False) == 5  # errors gate wins


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
