"""The load options from the command line and from recipes: what they resolve to, and the one
line (exit 2, no traceback) a wrong combination or value gets."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from drbench.cli import main
from drbench.config import BenchConfig, build_config
from drbench.errors import ConfigError
from drbench.levels import Level

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "examples" / "example_dataset.json"
FAST = ("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "8")


def dry_run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    """The resolved config --dry-run prints (exit 0, nothing on stderr)."""
    assert main([*argv, "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    printed = json.loads(out)
    return printed["config"] if "config" in printed else printed[0]["config"]


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one stderr line of a usage error: exit 2, nothing on stdout, no traceback."""
    assert main([*argv, "--dry-run"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("drbench: ")
    assert "Traceback" not in err
    return err.strip()


def checked(**flags: Any) -> BenchConfig:
    return build_config(flags, environ={}).check()


# --- levels ------------------------------------------------------------------------------------


def test_request_rates_are_the_levels_and_clear_the_default_concurrency(capsys) -> None:
    cfg = dry_run(capsys, "--request-rate", "10", "20", "inf")
    assert cfg["concurrency"] == []
    assert cfg["request_rate"][:2] == [10.0, 20.0]
    assert float(cfg["request_rate"][2]) == math.inf
    assert cfg["burstiness"] == 1.0 and cfg["max_concurrency"] is None


def test_build_config_gives_rate_levels() -> None:
    cfg = checked(request_rate=[10, 20, math.inf], max_concurrency=16)
    assert cfg.concurrency == ()
    assert cfg.request_rate == (10, 20, math.inf)
    assert cfg.levels == (
        Level.open(10, 16),
        Level.open(20, 16),
        Level.open(math.inf, 16),
    )
    assert [lv.key for lv in cfg.levels] == ["rate=10", "rate=20", "rate=inf"]


def test_without_request_rate_the_levels_are_concurrencies() -> None:
    assert checked().levels == (Level.closed(5),)  # the default
    assert checked(concurrency=[1, 8]).levels == (Level.closed(1), Level.closed(8))


def test_rate_flags_repeat_like_every_list_flag(capsys) -> None:
    cfg = dry_run(capsys, "--request-rate", "1", "--request-rate", "2.5")
    assert cfg["request_rate"] == [1.0, 2.5]


def test_request_rate_with_concurrency_is_one_line_naming_both(capsys) -> None:
    err = refused(capsys, "--request-rate", "10", "--concurrency", "5")
    assert err.startswith("drbench: --request-rate and --concurrency both give levels")
    assert "--max-concurrency" in err  # how to cap a rate level instead
    with pytest.raises(ConfigError, match="--request-rate and --concurrency both give levels"):
        checked(request_rate=[10], concurrency=[5])


def test_max_concurrency_needs_a_request_rate(capsys) -> None:
    err = refused(capsys, "--max-concurrency", "4")
    assert err == (
        "drbench: --max-concurrency caps a --request-rate or --fixed-schedule level; a "
        "--concurrency level already keeps at most C in flight"
    )
    assert refused(capsys, "--max-concurrency", "4", "--concurrency", "2") == err
    cfg = dry_run(capsys, "--request-rate", "10", "--max-concurrency", "4")
    assert cfg["max_concurrency"] == 4


def test_ramp_up_is_for_a_closed_loop_only(capsys) -> None:
    err = refused(capsys, "--request-rate", "5", "--ramp-up", "2")
    assert err == (
        "drbench: --ramp-up spreads a closed loop's start; a --request-rate or --fixed-schedule "
        "level has its schedule"
    )
    assert dry_run(capsys, "--concurrency", "4", "--ramp-up", "2")["ramp_up"] == 2.0
    # zero is "no ramp-up", so it does not conflict
    assert dry_run(capsys, "--request-rate", "5", "--ramp-up", "0")["ramp_up"] == 0.0


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["--request-rate", "5", "5"], "5"),
        (["--request-rate", "2.5", "1", "2.5"], "2.5"),
        (["--request-rate", "inf", "inf"], "inf"),
        (["--request-rate", "1", "2", "1", "2"], "1, 2"),
    ],
)
def test_repeated_rates_are_refused(capsys, argv: list[str], shown: str) -> None:
    err = refused(capsys, *argv)
    assert err == f"drbench: --request-rate lists {shown} twice: give each level once"


@pytest.mark.parametrize(("text", "got"), [("0", "0.0"), ("-1", "-1.0"), ("nan", "nan")])
def test_rates_out_of_range_are_refused_with_the_range(capsys, text: str, got: str) -> None:
    err = refused(capsys, "--request-rate", "10", text)
    assert err == f"drbench: --request-rate must be above 0 and at most 1000000, or inf (got {got})"


def test_a_rate_that_is_not_a_number_is_refused(capsys) -> None:
    err = refused(capsys, "--request-rate", "fast")
    assert err == "drbench: --request-rate: invalid float value: 'fast' (see --help)"


@pytest.mark.parametrize(("text", "got"), [("0", "0.0"), ("-0.5", "-0.5"), ("1001", "1001.0")])
def test_burstiness_must_be_above_zero(capsys, text: str, got: str) -> None:
    err = refused(capsys, "--request-rate", "1", "--burstiness", text)
    assert err == f"drbench: --burstiness must be above 0 and at most 1000 (got {got})"
    assert dry_run(capsys, "--request-rate", "1", "--burstiness", "0.25")["burstiness"] == 0.25


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--warmup", "-1"], "--warmup must be from 0 to 1000000 (got -1)"),
        (["--max-round-duration", "0"], "--max-round-duration must be above 0 and at most 604800"),
        (["--ramp-up", "-1"], "--ramp-up must be from 0 to 86400 (got -1.0)"),
        (["--request-rate", "1", "--max-concurrency", "0"], "--max-concurrency must be from 1"),
    ],
)
def test_other_load_ranges(capsys, argv: list[str], message: str) -> None:
    assert message in refused(capsys, *argv)


def test_warmup_and_round_cap_resolve(capsys) -> None:
    cfg = dry_run(capsys, "--warmup", "8", "--max-round-duration", "30")
    assert (cfg["warmup"], cfg["max_round_duration"]) == (8, 30.0)
    default = dry_run(capsys)
    assert (default["warmup"], default["max_round_duration"], default["workers"]) == (0, None, 1)


# --- workers -----------------------------------------------------------------------------------


def test_workers_auto_is_one_per_core_but_one(capsys) -> None:
    assert dry_run(capsys, "--workers", "auto")["workers"] == "auto"
    cfg = checked(workers="auto")
    assert cfg.worker_count == max(1, (os.cpu_count() or 1) - 1)


def test_workers_number(capsys) -> None:
    assert dry_run(capsys, "--workers", "2")["workers"] == 2
    assert checked(workers=2).worker_count == 2
    assert checked().worker_count == 1  # the default: this process sends


def test_workers_zero_is_refused_with_the_range(capsys) -> None:
    assert refused(capsys, "--workers", "0") == "drbench: --workers must be from 1 to 256 (got 0)"


def test_workers_word_is_refused_saying_what_is_allowed(capsys) -> None:
    err = refused(capsys, "--workers", "x")
    assert err == "drbench: --workers: expected an integer or 'auto', got 'x' (see --help)"


# --- recipes -----------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "load.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("inf", ["inf", ".inf", "'inf'"])
def test_recipe_request_rate_with_inf(tmp_path, capsys, inf: str) -> None:
    recipe = write(
        tmp_path,
        f"request_rate: [1, {inf}]\nburstiness: 0.5\nmax_concurrency: 3\nwarmup: 2\n"
        "workers: auto\nmax_round_duration: 60\n",
    )
    cfg = dry_run(capsys, "--recipe", recipe)
    assert cfg["concurrency"] == []
    assert cfg["request_rate"][0] == 1.0 and float(cfg["request_rate"][1]) == math.inf
    assert (cfg["burstiness"], cfg["max_concurrency"], cfg["warmup"]) == (0.5, 3, 2)
    assert (cfg["workers"], cfg["max_round_duration"]) == ("auto", 60.0)


def test_recipe_rate_as_a_string_list(tmp_path, capsys) -> None:
    cfg = dry_run(capsys, "--recipe", write(tmp_path, "request_rate: '2 4,8'\n"))
    assert cfg["request_rate"] == [2.0, 4.0, 8.0]


def test_a_flag_rate_clears_the_default_concurrency_under_a_recipe(tmp_path, capsys) -> None:
    cfg = dry_run(capsys, "--recipe", write(tmp_path, "warmup: 1\n"), "--request-rate", "3")
    assert (cfg["concurrency"], cfg["request_rate"], cfg["warmup"]) == ([], [3.0], 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "request_rate: [1, 2]\nconcurrency: 4\n",
            "--request-rate (recipe key 'request_rate' in {r}) and --concurrency both give levels",
        ),
        (
            "request_rate: 0\n",
            "--request-rate (recipe key 'request_rate' in {r}) must be above 0 and at most 1000000,"
            " or inf (got 0.0)",
        ),
        (
            "request_rate: [2, 2]\n",
            "--request-rate (recipe key 'request_rate' in {r}) lists 2 twice",
        ),
        (
            "max_concurrency: 3\n",
            "--max-concurrency (recipe key 'max_concurrency' in {r}) caps a --request-rate or "
            "--fixed-schedule level",
        ),
        (
            "request_rate: [5]\nramp_up: 1\n",
            "--ramp-up (recipe key 'ramp_up' in {r}) spreads a closed loop's start",
        ),
        ("workers: 0\n", "--workers (recipe key 'workers' in {r}) must be from 1 to 256 (got 0)"),
        ("burstiness: 0\nrequest_rate: [1]\n", "--burstiness (recipe key 'burstiness' in {r})"),
    ],
)
def test_recipe_load_errors_name_the_key_and_file(
    tmp_path, capsys, text: str, message: str
) -> None:
    recipe = write(tmp_path, text)
    err = refused(capsys, "--recipe", recipe)
    assert err.startswith("drbench: " + message.format(r=recipe)), err


def test_recipe_workers_word_is_one_line_naming_the_line(tmp_path, capsys) -> None:
    recipe = write(tmp_path, "concurrency: 2\nworkers: many\n")
    err = refused(capsys, "--recipe", recipe)
    assert err.startswith(f"drbench: {recipe}:2: workers: ")
    assert "'many'" in err


def test_recipe_rate_levels_run_against_the_mock(tmp_path, mocker_factory, capsys) -> None:
    """request_rate: [20, inf] end to end: rate levels in summary.json (schema 2), per-round
    files named by the rate, and records that carry their level, schedule and lag."""
    mock = mocker_factory(*FAST)
    out = tmp_path / "results"
    recipe = write(
        tmp_path,
        f"endpoint: {mock.url('/v1/chat/completions')}\n"
        f"dataset: {DATASET}\n"
        "num_samples: 2\nmax_tokens: 8\nquiet: true\nno_plots: true\n"
        "request_rate: [20, inf]\nwarmup: 1\n",
    )

    status = main(["--recipe", recipe, "--output-dir", str(out)])

    assert status == 0, capsys.readouterr().err
    names = {p.name for p in out.iterdir()}
    assert {f"rate_{r}_round_{n}.json" for r in ("20", "inf") for n in (1, 2)} <= names
    assert not any(n.startswith("concurrency_") for n in names)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["schema_version"] == 2
    levels = summary["levels"]
    assert [lv["level"] for lv in levels] == [
        {
            "kind": "rate",
            "concurrency": None,
            "request_rate": 20.0,
            "max_concurrency": None,
            "speedup": None,
        },
        {
            "kind": "rate",
            "concurrency": None,
            "request_rate": "inf",
            "max_concurrency": None,
            "speedup": None,
        },
    ]
    assert [lv["concurrency"] for lv in levels] == [None, None]
    for lv in levels:
        assert lv["warmup"] == {"requests": 1, "failed": 0}
        assert [r["round"] for r in lv["rounds"]] == [1, 2]
        for rnd in lv["rounds"]:
            assert rnd["level"] == lv["level"]
            assert rnd["requests"]["total"] == 2  # warm-up requests are not counted
            assert rnd["truncated"] is False and rnd["unsent"] == 0
            assert rnd["load"]["send_lag_ms"] is not None  # an open loop has a schedule
            assert rnd["client"][0]["worker"] is None  # the main process sent
    lines = (out / "requests.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 2 * 2 * 2  # prompts x rounds x levels; no warm-up record
    assert {r["level"] for r in records} == {"rate=20", "rate=inf"}
    assert all("concurrency" not in r for r in records)
    for r in records:
        assert r["worker"] is None
        assert r["scheduled_ms"] is not None and r["send_lag_ms"] is not None
        assert r["send_lag_ms"] == pytest.approx(r["start_ms"] - r["scheduled_ms"], abs=0.01)
    inf_schedule = {r["scheduled_ms"] for r in records if r["level"] == "rate=inf"}
    assert inf_schedule == {0.0}
    # round 2 replays round 1's schedule
    at_20 = [r for r in records if r["level"] == "rate=20"]
    by_round = {
        n: sorted((r["prompt_id"], r["scheduled_ms"]) for r in at_20 if r["round"] == n)
        for n in (1, 2)
    }
    assert by_round[1] == by_round[2]


def test_an_infinite_rate_is_written_as_inf_in_the_config_json() -> None:
    """As vLLM writes it: summary.json and --dry-run stay strict JSON and keep the level."""
    import json as _json

    from drbench.config import build_config as _build

    cfg = _build({"request_rate": [10, float("inf")]})
    assert cfg.to_dict()["request_rate"] == [10.0, "inf"]
    assert "Infinity" not in _json.dumps(cfg.to_dict())
