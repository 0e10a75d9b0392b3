"""Right numbers on servers that stream like real ones, and loud warnings when a run cannot answer
the cache question: whole CLI runs against the mocker in its real-server modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drbench.cli import main
from drbench.mocker.tokenizer import tokenize

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "examples" / "example_dataset.json"
FAST = ("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "8")


def run(mock, out: Path, *extra: str, path: str = "/v1/chat/completions") -> int:
    argv = ["--endpoint", mock.base_url + path, "--dataset", str(DATASET)]
    return main([*argv, "--output-dir", str(out), "--quiet", "--no-plots", *extra])


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]


def warnings(out: Path) -> list[str]:
    s = summary(out)
    return s["run"]["warnings"] + [w for lv in s["levels"] for w in lv["warnings"]]


def test_ttft_is_the_first_empty_content_token(mocker_factory, tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    mock = mocker_factory(
        "--ttft-ms", "5", "--itl-ms", "60", "--output-tokens", "6",
        "--empty-first-tokens", "3", "--trace", str(trace),
    )  # fmt: skip
    out = tmp_path / "o"
    assert run(mock, out, "--num-samples", "3", "--rounds", "1", "--concurrency", "3") == 0
    mock.stop()  # flushes the trace
    sent = {t["id"]: t for t in map(json.loads, trace.read_text().splitlines())}
    for rec in records(out):
        assert rec["ok"] and rec["token_events"] == 6 and rec["completion_tokens"] == 6
        first_write_ms = (sent[rec["response_id"]]["content_ns"][0] - rec["send_ns"]) / 1e6
        # the first non-empty token came 3 x 60 ms later: a TTFT on it would be 180 ms off
        assert abs(rec["ttft_ms"] - first_write_ms) < 40, (rec["ttft_ms"], first_write_ms)


def test_answers_of_empty_tokens_only_succeed_with_a_note(mocker_factory, tmp_path: Path) -> None:
    mock = mocker_factory(*FAST, "--empty-first-tokens", "100")
    out = tmp_path / "o"
    assert run(mock, out, "--num-samples", "3", "--rounds", "1", "--fail-on-errors", "0") == 0
    for rec in records(out):
        assert rec["ok"] and rec["token_events"] == 8 and rec["completion_tokens"] == 8
        assert rec["ttft_ms"] is not None and rec["tpot_ms"] is not None


def test_a_whole_answer_in_one_chunk_has_no_tpot(mocker_factory, tmp_path: Path) -> None:
    mock = mocker_factory(*FAST, "--whole-answer")
    out = tmp_path / "o"
    assert run(mock, out, "--num-samples", "3", "--rounds", "1") == 0
    recs = records(out)
    assert all(r["ok"] and r["token_events"] == 1 and r["tpot_ms"] is None for r in recs)
    assert all(r["completion_tokens"] == 8 for r in recs)  # usage on the late finish chunk
    tpot = summary(out)["levels"][0]["rounds"][0]["metrics"]["tpot_ms"]
    assert tpot["avg"] is None


def test_no_usage_and_one_character_per_chunk(mocker_factory, tmp_path: Path) -> None:
    mock = mocker_factory(*FAST, "--usage-mode", "none", "--char-chunks")
    out = tmp_path / "o"
    assert run(mock, out, "--num-samples", "3", "--rounds", "1") == 0
    for rec in records(out):
        assert rec["token_source"] == "estimate"
        assert rec["completion_tokens"] == -(-len(rec["output_text"]) // 4)
        assert rec["token_events"] > 2 * rec["completion_tokens"]  # ~4 characters per token
    said = warnings(out)
    assert any("sends no usage" in w for w in said)
    assert any("events per token" in w and "ITL is per event" in w for w in said)


def test_tool_call_answers_succeed(mocker_factory, tmp_path: Path) -> None:
    mock = mocker_factory(*FAST, "--tool-calls")
    out = tmp_path / "o"
    assert run(mock, out, "--num-samples", "3", "--rounds", "1") == 0
    assert all(r["ok"] and r["finish_reason"] == "tool_calls" for r in records(out))


@pytest.mark.parametrize("block", ["4", "16"])
def test_round_1_is_cold_at_every_level(mocker_factory, tmp_path: Path, block: str) -> None:
    mock = mocker_factory(*FAST, "--block-size", block)
    out = tmp_path / "o"
    assert run(mock, out, "--concurrency", "1", "2", "4", "--num-samples", "6") == 0
    recs = records(out)
    assert {r["level"] for r in recs} == {"concurrency=1", "concurrency=2", "concurrency=4"}
    # The one exception: whole blocks of the chat template's header before the nonce
    # (the mocker's "<|im_start|>system\n" is 4 tokens, "<|im_start|>user\n" 3).
    first_role = {
        row.get("id"): row["messages"][0]["role"] if "messages" in row else "user"
        for row in json.loads(DATASET.read_text())
    }
    for r in recs:
        if r["round"] == 1:
            header = len(tokenize(f"<|im_start|>{first_role[r['prompt_id']]}\n"))
            assert r["cached_tokens"] == 0 or r["cached_tokens"] == header // int(block) * int(
                block
            ), r
            if header < int(block):
                assert r["cached_tokens"] == 0, r
    assert all(r["cached_tokens"] > 0 for r in recs if r["round"] == 2)
    assert not any("not cold" in w for w in warnings(out))


def test_token_level_caching_shares_at_most_the_nonces_first_token(
    mocker_factory, tmp_path: Path
) -> None:
    mock = mocker_factory(*FAST, "--block-size", "1")
    out = tmp_path / "o"
    argv = ("--concurrency", "1", "3", "--num-samples", "10")
    assert run(mock, out, *argv, path="/v1/completions") == 0  # no template header before it
    assert max(r["cached_tokens"] for r in records(out) if r["round"] == 1) <= 2


def test_prompts_seen_before_are_a_loud_not_cold_round(fast_mocker, tmp_path: Path) -> None:
    mock = fast_mocker
    argv = ("--cold-start", "none", "--num-samples", "5", "--rounds", "1")
    assert run(mock, tmp_path / "a", *argv) == 0
    assert run(mock, tmp_path / "b", *argv) == 0
    said = [w for w in warnings(tmp_path / "b") if "not cold" in w]
    assert (
        len(said) == 1 and "--cold-start none" in said[0] and "round 1 at concurrency 5" in said[0]
    )


def test_prompts_shorter_than_a_block_make_a_loud_not_warm_round(
    mocker_factory, tmp_path: Path
) -> None:
    mock = mocker_factory(*FAST, "--block-size", "512")
    out = tmp_path / "o"
    metrics = ("--prometheus-url", mock.base_url + "/metrics")
    assert run(mock, out, "--num-samples", "4", *metrics) == 0
    said = [w for w in warnings(out) if "reused almost nothing" in w]
    assert len(said) == 1 and "cache block of 512 tokens" in said[0]


def test_a_refused_cache_reset_stops_the_run(mocker_factory, tmp_path: Path, capsys) -> None:
    mock = mocker_factory(*FAST, "--no-reset-endpoint")
    reset = ("--cache-reset-url", mock.base_url + "/reset_prefix_cache")
    assert run(mock, tmp_path / "o", *reset) == 3
    err = capsys.readouterr().err
    assert "HTTP 404" in err and "VLLM_SERVER_DEV_MODE=1" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_reset_url_implies_reset_and_conflicts_with_another_policy(
    fast_mocker, tmp_path: Path, capsys
) -> None:
    mock = fast_mocker
    reset = ("--cache-reset-url", mock.base_url + "/reset_prefix_cache")
    assert run(mock, tmp_path / "o", *reset, "--num-samples", "2") == 0
    assert {lv["cold_start"] for lv in summary(tmp_path / "o")["levels"]} == {"reset"}
    capsys.readouterr()
    assert run(mock, tmp_path / "p", *reset, "--cold-start", "nonce") == 2
    assert "--cache-reset-url is only called with --cold-start reset" in capsys.readouterr().err


def test_preflight_uses_the_real_max_tokens(mocker_factory, tmp_path: Path, capsys) -> None:
    mock = mocker_factory(*FAST, "--max-model-len", "4096")
    assert run(mock, tmp_path / "o", "--max-tokens", "5000") == 3
    err = capsys.readouterr().err
    assert "HTTP 400" in err and "4096" in err and not (tmp_path / "o").exists()


def test_a_round_with_no_success_exits_6_and_says_why(mocker_factory, tmp_path: Path, capsys):
    mock = mocker_factory(*FAST, "--max-model-len", "600")
    out = tmp_path / "o"
    # records 5, 6, 7 and 9 hold ~2,400-token contexts: every request of the round fails (400)
    code = run(mock, out, "--rounds", "1", "--max-tokens", "16", "--concurrency", "2")
    assert code == 0  # some prompts fit
    code = main(
        ["--endpoint", mock.base_url + "/v1/chat/completions", "--dataset", str(_long_only(tmp_path)),
         "--output-dir", str(tmp_path / "p"), "--quiet", "--no-plots", "--rounds", "1",
         "--max-tokens", "16"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 6
    assert "prompts need more than the model's max_model_len 600" in err
    assert "no request succeeded in round 1 at concurrency 5 (4 of 4 failed: 4 http): exit 6" in err
    gates = summary(tmp_path / "p")["gates"]
    assert gates == [
        {"gate": "no_success", "level": "concurrency=5", "concurrency": 5, "round": 1,
         "value": 0.0, "threshold": None, "passed": False, "exit_status": 6}
    ]  # fmt: skip


def _long_only(tmp_path: Path) -> Path:
    rows = [r for r in json.loads(DATASET.read_text()) if len(json.dumps(r)) > 4000]
    path = tmp_path / "long.json"
    path.write_text(json.dumps(rows))
    return path


def test_implausible_usage_and_ignored_max_tokens_are_warned(mocker_factory, tmp_path: Path):
    mock = mocker_factory(
        "--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "30",
        "--fake-prompt-tokens", "10", "--ignore-max-tokens",
    )  # fmt: skip
    out = tmp_path / "o"
    assert run(mock, out, "--rounds", "1", "--max-tokens", "16") == 0
    said = warnings(out)
    assert any("usage.prompt_tokens (median 10)" in w and "implausible" in w for w in said)
    assert any("more tokens than max_tokens asked (e.g. 30 > 16)" in w for w in said)


def test_an_explicit_max_tokens_wins_over_the_records(fast_mocker, tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(
        "".join(json.dumps({"text": f"q{i}", "max_tokens": 50}) + "\n" for i in range(3))
    )
    mock = fast_mocker
    for out, extra, limit, source in (
        (tmp_path / "a", ("--max-tokens", "4"), 4, "flag"),
        (tmp_path / "b", (), 50, "dataset"),
    ):
        argv = ["--endpoint", mock.base_url + "/v1/chat/completions", "--dataset", str(data)]
        assert main([*argv, "--output-dir", str(out), "--quiet", "--no-plots", *extra]) == 0
        assert {r["max_tokens"] for r in records(out)} == {limit}
        assert summary(out)["config"]["max_tokens_sources"] == {source: 3}


def test_smaller_ones(mocker_factory, tmp_path: Path, capsys) -> None:
    mock = mocker_factory(*FAST, "--error-rate", "0.5")
    assert run(mock, tmp_path / "a", "--concurrency", "4", "4") == 2
    assert "--concurrency lists 4 twice" in capsys.readouterr().err
    out = tmp_path / "b"
    assert run(mock, out, "--concurrency", "20", "--rounds", "1", "--fail-on-errors", "5") == 5
    err = capsys.readouterr().err
    level = summary(out)["levels"][0]
    assert level["effective_concurrency"] == 10
    assert any("really concurrency 10" in w for w in level["warnings"])
    # --quiet still says why requests failed, and which gate failed with what
    assert "round 1 at concurrency 20:" in err and "requests failed; most often" in err
    assert "--fail-on-errors 5% failed: round 1 at concurrency 20 had" in err
    assert any(g["gate"] == "fail_on_errors" and not g["passed"] for g in summary(out)["gates"])


def test_a_wrong_endpoint_path_is_told_to_check_the_path(fast_mocker, tmp_path, capsys):
    mock = fast_mocker
    assert run(mock, tmp_path / "o", path="/v2/chat/completions") == 3
    assert "check the path of --endpoint" in capsys.readouterr().err


def test_the_summary_says_how_the_run_was_timed(fast_mocker, tmp_path: Path) -> None:
    import aiohttp

    mock = fast_mocker
    out = tmp_path / "o"
    assert run(mock, out, "--num-samples", "3") == 0
    timing = summary(out)["run"]["timing"]
    assert timing["aiohttp"] == aiohttp.__version__
    assert timing["chunk_stamps"] == {"socket": 6}
