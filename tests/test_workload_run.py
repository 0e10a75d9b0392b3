"""--workload on the benchmarker: the settings a workload implies, --write-workload, and each
workload run end to end on the bundled mocker, where the measured reuse follows the workload's
structure (and a cache smaller than the working set shows it evicting)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from drbench.cli import main
from drbench.dataset import load_prompts
from drbench.tokens import EstimateCounter
from drbench.workloads import generate, parse_workload

ROOT = Path(__file__).resolve().parent.parent
TRACE = ROOT / "datasets" / "mooncake_sample.jsonl"
FAST = ("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "4")


def dry_config(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main([*argv, "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return json.loads(out)["config"]


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main([*argv, "--dry-run"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    return err.strip()


# --- settings -------------------------------------------------------------------------------


def test_sessions_imply_their_rounds_in_continue_mode(capsys) -> None:
    cfg = dry_config(capsys, "--workload", "sessions", "rounds=4")
    assert (cfg["rounds"], cfg["round2_mode"]) == (4, "continue")
    assert cfg["workload"] == ["sessions", "rounds=4"]
    same = dry_config(capsys, "--workload", "sessions", "rounds=4", "--rounds", "4")
    assert same["rounds"] == 4


def test_a_setting_that_contradicts_the_workload_is_one_line(capsys) -> None:
    assert refused(capsys, "--workload", "sessions", "rounds=3", "--rounds", "2") == (
        "drbench: --workload sessions runs with --rounds 3, but --rounds 2 is given: drop "
        "--rounds, or set rounds=N on the workload"
    )
    assert refused(capsys, "--workload", "sessions", "--round2-mode", "repeat") == (
        "drbench: --workload sessions runs with --round2-mode continue, but --round2-mode "
        "repeat is given: drop --round2-mode"
    )


def test_the_trace_replays_its_timestamps_unless_a_pace_is_given(capsys) -> None:
    cfg = dry_config(capsys, "--workload", "mooncake", f"trace={TRACE}")
    assert cfg["fixed_schedule"] is True and cfg["concurrency"] == []
    closed = dry_config(capsys, "--workload", "mooncake", f"trace={TRACE}", "--concurrency", "4")
    assert closed["fixed_schedule"] is False and closed["concurrency"] == [4]
    rate = dry_config(capsys, "--workload", "mooncake", f"trace={TRACE}", "--request-rate", "9")
    assert rate["fixed_schedule"] is False and rate["request_rate"] == [9.0]


def test_workload_and_its_companions_refuse_what_does_not_fit(capsys, tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "x"}\n')
    assert refused(capsys, "--workload", "long-doc", "--dataset", str(data)) == (
        "drbench: --workload and --dataset both give the prompts: drop one of them"
    )
    assert refused(capsys, "--write-workload", str(tmp_path / "w.jsonl")) == (
        "drbench: --write-workload writes a --workload's records, and none is given"
    )
    assert refused(capsys, "--workload", "shared-prefx") == (
        "drbench: --workload shared-prefx: unknown workload; did you mean shared-prefix? "
        "(shared-prefix, sessions, long-doc, mooncake)"
    )


# --- --write-workload -------------------------------------------------------------------------


def test_write_workload_writes_a_dataset_and_sends_nothing(capsys, tmp_path: Path) -> None:
    out = tmp_path / "sp.jsonl"
    spec = ["shared-prefix", "groups=3", "prompts=2", "prefix=40", "suffix=8"]
    assert main(["--workload", *spec, "--write-workload", str(out), "--seed", "7"]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"drbench: wrote {out}: shared-prefix: 3 groups x 2 prompts")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    expected = generate(parse_workload(spec[0], spec[1:]), counter=EstimateCounter(), seed=7)
    assert lines == expected.records
    prompts = load_prompts(out)  # an ordinary dataset
    assert [p.group for p in prompts] == [r["prefix_group"] for r in lines]


def test_write_workload_says_how_to_keep_the_workloads_settings(capsys, tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    assert (
        main(["--workload", "sessions", "users=2", "rounds=3", "--write-workload", str(out)]) == 0
    )
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        "drbench: as --dataset, run it with --rounds 3 --round2-mode continue to keep the workload"
    )
    (user,) = load_prompts(out)[:1]
    assert len(user.followups) == 2


def test_write_workload_into_a_missing_folder_is_one_line(capsys, tmp_path: Path) -> None:
    target = tmp_path / "nope" / "w.jsonl"
    assert main(["--workload", "long-doc", "docs=1", "--write-workload", str(target)]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"drbench: --write-workload {target}: no folder {target.parent}; create it first\n"
    )


# --- end to end on the mocker -----------------------------------------------------------------


def _run(url: str, out: Path, *argv: str) -> dict[str, Any]:
    args = ["--endpoint", url, "--output-dir", str(out), "--max-tokens", "4", "--quiet", *argv]
    assert main(args) == 0
    return json.loads((out / "summary.json").read_text())


def _shares(summary: dict[str, Any]) -> list[tuple[float, float]]:
    """(offered, measured usage cached share) of every round of the first level."""
    return [
        (r["cache"]["offered_share"], r["cache"]["client_cached_share"])
        for r in summary["levels"][0]["rounds"]
    ]


@pytest.mark.slow
def test_shared_prefix_reuse_follows_the_workload_until_the_cache_is_too_small(
    mocker_factory, tmp_path: Path
) -> None:
    spec = [
        "shared-prefix",
        "groups=4",
        "prompts=4",
        "prefix=256",
        "suffix=16",
        "order=interleaved",
    ]
    big = mocker_factory(*FAST, "--cache-capacity-tokens", "200000")
    small = mocker_factory(*FAST, "--cache-capacity-tokens", "512")  # < the 4 prefixes' 1024
    runs = {}
    for name, server in (("big", big), ("small", small)):
        runs[name] = _run(
            server.url("/v1/chat/completions"),
            tmp_path / name,
            "--workload",
            *spec,
            "--concurrency",
            "1",
        )
    (b1, b2), (s1, s2) = _shares(runs["big"]), _shares(runs["small"])
    # round 1: the workload offers 4 x 3 x 256 / (16 x 272) = 70.6% of the prompt tokens
    assert b1[0] == pytest.approx(s1[0]) and 0.6 < b1[0] < 0.75
    assert b1[1] == pytest.approx(b1[0], abs=0.08)  # a big cache gets what was offered
    assert s1[1] < 0.1  # interleaved over 4 groups, 512 tokens evict each prefix in turn
    assert b2[1] > 0.9 and s2[1] < 0.1  # round 2: everything, or nothing survived
    warnings = runs["small"]["levels"][0]["warnings"]
    assert any("reused less than half of what its prompts offered" in w for w in warnings)
    assert runs["small"]["workload"]["name"] == "shared-prefix"
    assert len(load_prompts(tmp_path / "small" / "workload.jsonl")) == 16


@pytest.mark.slow
def test_long_doc_order_decides_whether_the_documents_stay_cached(
    mocker_factory, tmp_path: Path
) -> None:
    server = mocker_factory(*FAST, "--cache-capacity-tokens", "600")  # one 400-token doc fits
    url = server.url("/v1/chat/completions")
    spec = ["long-doc", "docs=3", "doc=400", "questions=3", "question=10"]
    grouped = _run(url, tmp_path / "g", "--workload", *spec, "order=grouped", "--concurrency", "1")
    mixed = _run(
        url, tmp_path / "i", "--workload", *spec, "order=interleaved", "--concurrency", "1"
    )
    (g_offered, g1), (i_offered, i1) = _shares(grouped)[0], _shares(mixed)[0]
    assert g_offered == pytest.approx(i_offered)  # the same prompts, in another order
    assert g1 > 0.5  # each document's 2nd and 3rd questions find it
    assert i1 < 0.1  # three documents in turn through room for one: evicted every time


@pytest.mark.slow
def test_sessions_later_turns_hit_the_history(mocker_factory, tmp_path: Path) -> None:
    server = mocker_factory(*FAST)
    spec = ["sessions", "users=3", "rounds=3", "system=200", "history=300", "question=10"]
    summary = _run(
        server.url("/v1/chat/completions"),
        tmp_path / "s",
        "--workload",
        *spec,
        "--concurrency",
        "1",
    )
    (level,) = summary["levels"]
    assert [r["round"] for r in level["rounds"]] == [1, 2, 3]
    shares = [r["cache"]["client_cached_share"] for r in level["rounds"]]
    # round 1: users 2 and 3 reuse the shared system prompt; later turns their whole history
    assert 0.15 < shares[0] < 0.4
    assert shares[1] > 0.8 and shares[2] > 0.8
    turns = level["by_turn"]
    assert [t["round"] for t in turns] == [1, 2, 3]
    assert turns[0]["context_tokens_mean"] < turns[1]["context_tokens_mean"]
    assert [(c["round"], c["against"]) for c in level["comparisons"]] == [(2, 1), (3, 1), (3, 2)]


@pytest.mark.slow
def test_the_mooncake_sample_replays_on_its_timestamps(fast_mocker, tmp_path: Path) -> None:
    summary = _run(
        fast_mocker.url("/v1/chat/completions"),
        tmp_path / "m",
        "--workload",
        "mooncake",
        f"trace={TRACE}",
        "limit=30",
        "--speedup",
        "10",
    )
    (level,) = summary["levels"]
    assert level["level"]["kind"] == "trace" and level["level"]["speedup"] == 10.0
    records = json.loads((tmp_path / "m" / "trace_10x_round_1.json").read_text())["records"]
    trace = [json.loads(line) for line in TRACE.read_text().splitlines()[:30]]
    due = [(t["timestamp"] - trace[0]["timestamp"]) / 10 for t in trace]
    assert [r["scheduled_ms"] for r in records] == pytest.approx(due)
    assert summary["workload"]["sent"] == 30
    offered = [r["cache"]["offered_share"] for r in level["rounds"]]
    assert 0 < offered[0] < offered[1]  # the trace's own sharing, then all of round 1


@pytest.mark.slow
def test_the_workloads_recipe_runs_every_workload_on_the_mocker(
    mocker_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = mocker_factory(*FAST, "--cache-capacity-tokens", "4096")
    monkeypatch.chdir(ROOT)  # the recipe names datasets/mooncake_sample.jsonl
    monkeypatch.setenv("DRB_ENDPOINT", server.url("/v1/chat/completions"))
    monkeypatch.setenv("DRB_METRICS_URL", server.url("/metrics"))
    monkeypatch.setenv("DRB_OUTPUT_DIR", str(tmp_path))
    assert main(["--recipe", str(ROOT / "examples" / "recipe_workloads.yaml"), "--quiet"]) == 0
    summaries = {
        name: json.loads((tmp_path / name / "summary.json").read_text())
        for name in ("shared-prefix", "sessions", "long-doc", "mooncake")
    }
    assert {n: s["workload"]["name"] for n, s in summaries.items()} == {n: n for n in summaries}
    first = {n: s["levels"][0]["rounds"][0] for n, s in summaries.items()}
    hit = {n: r["cache"]["server_hit_rate"] for n, r in first.items()}
    offered = {n: r["cache"]["offered_share"] for n, r in first.items()}
    # 4 in flight: a group's prompts that run together miss its prefix, so less than offered
    assert 0.3 < hit["shared-prefix"] <= offered["shared-prefix"] + 0.02
    assert hit["long-doc"] < 0.1 < offered["long-doc"]  # 4 x 2048 tokens through 4096: evicted
    assert len(summaries["sessions"]["levels"][0]["rounds"]) == 3
    assert summaries["mooncake"]["levels"][0]["level"]["kind"] == "trace"
