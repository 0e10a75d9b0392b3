"""--sweep: the spec and its one-line mistakes, the crossing on hand-made figures, and sweeps on
the mocker, whose cache is a block LRU of a known capacity: the sweep finds that capacity within
one step, values never warm each other, and Ctrl-C keeps the values that finished."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drbench.cli import main
from drbench.config import BenchConfig
from drbench.errors import ExitStatus, UsageError
from drbench.report.sweep_files import crossing_sentence
from drbench.results import RunResult
from drbench.sweep import (
    MAX_VALUES,
    Crossing,
    LevelPoint,
    RoundFigures,
    SweepPoint,
    SweepSpec,
    crossing,
    parse_sweep,
    value_workload,
)
from drbench.sweep_run import _benchmark, run_sweep

ROOT = Path(__file__).resolve().parent.parent
FAST = ("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "4")
DOC = 400
CAPACITY = 1600  # tokens: four documents of 400, less each prompt's question and nonce
LONG_DOC = ("long-doc", f"doc={DOC}", "questions=1")


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main([*argv, "--dry-run"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    return err.strip()


# --- the spec -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("docs=4,1,2", (1, 2, 4)),
        ("docs=1:5", (1, 2, 3, 4, 5)),
        ("docs=2:11:3", (2, 5, 8, 11)),
        ("docs=2:12:3", (2, 5, 8, 11)),
        ("docs=1:40:x2", (1, 2, 4, 8, 16, 32)),
        ("docs=1:4:x1.5", (1, 2, 3)),  # 1, 1.5 -> 2, 2.25 -> 2 (dropped), 3.375 -> 3
        ("docs=7", (7,)),
    ],
)
def test_a_spec_gives_its_values_ascending(text: str, values: tuple[int, ...]) -> None:
    spec = parse_sweep(text, LONG_DOC)
    assert (spec.key, spec.values) == ("docs", values)


def test_each_value_replaces_the_key_in_the_workload() -> None:
    spec = ("long-doc", "docs=8", "doc=400")
    assert value_workload(spec, "docs", 3) == ("long-doc", "doc=400", "docs=3")
    assert value_workload(("sessions",), "users", 5) == ("sessions", "users=5")


@pytest.mark.parametrize(
    ("workload", "text", "message"),
    [
        (LONG_DOC, "docs", "--sweep docs: expected KEY=VALUES, e.g. docs=1,2,4,8 or docs=1:8"),
        (LONG_DOC, "docs=", "--sweep docs=: no values; give e.g. 1,2,4,8 or 1:8 after the ="),
        (LONG_DOC, "docs=1,,2", "--sweep docs=1,,2: '' is not an integer"),
        (LONG_DOC, "docs=1,2,2", "--sweep docs=1,2,2: 2 given twice; give each value once"),
        (LONG_DOC, "docs=8:1", "--sweep docs=8:1: HI 1 is below LO 8; give LO:HI with LO <= HI"),
        (LONG_DOC, "docs=1:8:0", "--sweep docs=1:8:0: STEP must be 1 or more (got 0)"),
        (LONG_DOC, "docs=1:8:x1", "--sweep docs=1:8:x1: x1 is not a factor above 1; write e.g. x2"),
        (LONG_DOC, "docs=1:2:3:4", "--sweep docs=1:2:3:4: expected LO:HI, LO:HI:STEP or LO:HI:xF"),
        (
            LONG_DOC,
            "dogs=1:8",
            "--sweep dogs=...: unknown key of --workload long-doc; did you mean docs? sweep "
            "docs= (its working set)",
        ),
        (
            LONG_DOC,
            "users=1:8",
            "--sweep users=...: --workload long-doc has no key users (that is sessions's); "
            "sweep docs= (its working set)",
        ),
        (
            LONG_DOC,
            "order=1,2",
            "--sweep order=...: order of --workload long-doc is not a count; sweep docs= (its "
            "working set)",
        ),
        (
            ("sessions",),
            "rounds=2,3",
            "--sweep rounds=2,3: rounds= sets run settings of its own (--rounds, --round2-mode); "
            "sweep another key, e.g. users=1:8",
        ),
        (
            LONG_DOC,
            "docs=0:4",
            "--workload long-doc: docs=0 is out of range; give an integer from 1 to 100000",
        ),
        (
            LONG_DOC,
            f"docs=1:{MAX_VALUES + 1}",
            f"--sweep docs=1:{MAX_VALUES + 1}: {MAX_VALUES + 1} values, each a whole run; give "
            f"at most {MAX_VALUES} (a larger STEP, or a geometric xF)",
        ),
    ],
)
def test_a_bad_spec_is_one_line_naming_the_flag(
    workload: tuple[str, ...], text: str, message: str
) -> None:
    with pytest.raises(UsageError) as info:
        parse_sweep(text, workload)
    assert str(info.value) == message


def test_the_cli_refuses_a_bad_sweep_before_sending_anything(capsys) -> None:
    assert refused(capsys, "--dataset", "x.jsonl", "--sweep", "docs=1:8") == (
        "drbench: --sweep varies a key of a --workload, and none is given: add e.g. "
        "--workload long-doc doc=4000 and --sweep docs=1:16"
    )
    assert refused(capsys, "--workload", "sessions", "--sweep", "docs=1:4") == (
        "drbench: --sweep docs=...: --workload sessions has no key docs (that is long-doc's); "
        "sweep users= (its working set)"
    )
    assert refused(capsys, "--workload", "shared-prefix", "--sweep", "groups=").startswith(
        "drbench: --sweep groups=: no values"
    )
    assert refused(capsys, "--workload", "shared-prefix", "--sweep", "grups=1,2").startswith(
        "drbench: --sweep grups=...: unknown key of --workload shared-prefix; did you mean groups?"
    )
    assert refused(
        capsys, "--workload", "long-doc", "--sweep", "docs=1,2", "--sweep-threshold", "0"
    ) == ("drbench: --sweep-threshold must be above 0 and at most 1 (got 0.0)")
    assert refused(
        capsys, "--workload", "long-doc", "--sweep", "docs=1,2", "--write-workload", "x.jsonl"
    ).startswith("drbench: --sweep runs the workload once per value")


# --- the crossing ---------------------------------------------------------------------------


def figures(rnd: int, hit: float | None, cached: float | None = None) -> RoundFigures:
    return RoundFigures(rnd, hit, cached, None, None, 10.0, 20.0, 30.0, 4, 0)


def point(value: int, hit: float | None, cached: float | None = None, units: int = 0) -> SweepPoint:
    rounds = (figures(1, 0.0, 0.0), figures(2, hit, cached))
    level = LevelPoint("C=1", rounds, units or value * 100, "tokens")
    return SweepPoint(value, f"docs_{value}", 0, False, (level,))


def test_the_crossing_is_interpolated_between_the_values_around_it() -> None:
    points = [point(1, 0.9), point(2, 0.9), point(4, 0.3), point(8, 0.0)]
    c = crossing(points, "C=1", round=2, threshold=0.5)
    assert (c.status, c.metric, c.between) == ("crossed", "server_hit_rate", (2, 4))
    assert c.value == pytest.approx(2 + (0.9 - 0.5) / (0.9 - 0.3) * 2)
    assert c.working_set_units == pytest.approx(100 * c.value)
    spec = SweepSpec("docs", (1, 2, 4, 8), LONG_DOC)
    assert crossing_sentence(c, spec) == (
        "sweep: the round 2 server hit rate falls below 0.5 at docs=3.33 (between 2 and 4; "
        "about 333 tokens of working set)"
    )


def test_the_order_of_the_points_does_not_matter() -> None:
    points = [point(8, 0.0), point(2, 0.9), point(4, 0.3), point(1, 0.9)]
    assert crossing(points, "C=1", round=2, threshold=0.5).between == (2, 4)


def test_a_rate_that_never_falls_is_not_reached() -> None:
    points = [point(1, 0.95), point(2, 0.5)]  # at the threshold is not below it
    c = crossing(points, "C=1", round=2, threshold=0.5)
    assert (c.status, c.value) == ("not reached", None)
    assert crossing_sentence(c, SweepSpec("docs", (1, 2), LONG_DOC)) == (
        "sweep: the round 2 server hit rate stays at or above 0.5 up to docs=2: not reached"
    )


def test_a_rate_below_at_the_first_value_says_to_sweep_lower() -> None:
    c = crossing([point(4, 0.2), point(8, 0.0)], "C=1", round=2, threshold=0.5)
    assert (c.status, c.value, c.between) == ("below from the first value", 4, None)
    assert "already at docs=4, the lowest value: sweep lower values" in crossing_sentence(
        c, SweepSpec("docs", (4, 8), LONG_DOC)
    )


def test_without_the_server_rate_usage_cached_share_decides() -> None:
    points = [point(1, None, 0.8), point(2, None, 0.4)]
    c = crossing(points, "C=1", round=2, threshold=0.5)
    assert (c.metric, c.status, c.value) == ("cached_share", "crossed", pytest.approx(1.75))
    none = crossing([point(1, None), point(2, None)], "C=1", round=2, threshold=0.5)
    assert (none.metric, none.status) == (None, "no measured hit rate")
    assert "needs --prometheus-url" in crossing_sentence(none, SweepSpec("docs", (1, 2), LONG_DOC))


def test_a_point_without_the_round_is_left_out() -> None:
    cut = SweepPoint(3, "docs_3", 130, True, (LevelPoint("C=1", (figures(1, 0.0),), 300, "t"),))
    c = crossing([point(1, 0.9), point(2, 0.9), cut], "C=1", round=2, threshold=0.5)
    assert c.status == "not reached"
    assert isinstance(c, Crossing)


# --- on the mocker --------------------------------------------------------------------------


def sweep_argv(url: str, out: Path, *extra: str) -> list[str]:
    return [
        "--endpoint",
        f"{url}/v1/chat/completions",
        "--prometheus-url",
        f"{url}/metrics",
        "--workload",
        *LONG_DOC,
        "--concurrency",
        "1",
        "--output-dir",
        str(out),
        "--quiet",
        *extra,
    ]


@pytest.mark.slow
def test_the_sweep_finds_the_capacity_the_mocker_was_started_with(
    mocker_factory, tmp_path, capsys
) -> None:
    mock = mocker_factory("--cache-capacity-tokens", str(CAPACITY), *FAST)
    out = tmp_path / "sweep"
    assert main(sweep_argv(mock.base_url, out, "--sweep", "docs=1:8")) == 0
    _, err = capsys.readouterr()
    data = json.loads((out / "sweep.json").read_text())
    assert data["sweep"] == {
        "key": "docs",
        "values": [1, 2, 3, 4, 5, 6, 7, 8],
        "workload": list(LONG_DOC),
        "threshold": 0.5,
        "measured_round": 2,
    }
    assert (data["stopped"], data["not_run"]) == (None, [])
    (found,) = data["below_threshold"]
    assert (found["status"], found["metric"], found["level"]) == (
        "crossed",
        "server_hit_rate",
        "C=1",
    )
    assert abs(found["value"] - CAPACITY / DOC) <= 1  # within one step of the capacity
    assert found["between"][1] - found["between"][0] == 1
    line = next(x for x in err.splitlines() if "falls below 0.5" in x)
    assert line.startswith("drbench: sweep: the round 2 server hit rate falls below 0.5 at docs=")
    by_value = {p["value"]: p for p in data["points"]}
    for value, p in by_value.items():
        (level,) = p["levels"]
        r1, r2 = level["rounds"]
        assert r1["server_hit_rate"] == 0.0  # a fresh nonce: no value warms the next
        assert level["working_set_units"] > value * DOC
        assert (r2["succeeded"], r2["failed"]) == (value, 0)
        if level["working_set_units"] <= CAPACITY:
            assert r2["server_hit_rate"] > 0.9
        if level["working_set_units"] > CAPACITY + DOC:
            assert r2["server_hit_rate"] < 0.1
        summary = json.loads((out / p["dir"] / "summary.json").read_text())
        assert summary["workload"]["settings"] == [f"doc={DOC}", "questions=1", f"docs={value}"]
        assert summary["config"]["sweep"] is None
    tokens = {
        json.loads((out / f"docs_{v}" / "summary.json").read_text())["run"]["run_token"]
        for v in by_value
    }
    assert len(tokens) == 8
    with (out / "sweep.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["value"], r["round"]) for r in rows] == [
        (str(v), str(r)) for v in range(1, 9) for r in (1, 2)
    ]
    assert (out / "sweep.png").is_file()


@pytest.mark.slow
def test_the_sweep_draws_its_plot(mocker_factory, tmp_path, capsys) -> None:
    mock = mocker_factory("--cache-capacity-tokens", str(CAPACITY), *FAST)
    out = tmp_path / "sweep"
    assert main(sweep_argv(mock.base_url, out, "--sweep", "docs=2,6")) == 0
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "not reached" not in capsys.readouterr().err


def test_an_interrupted_value_keeps_the_values_before_it(fast_mocker, tmp_path, capsys) -> None:
    out = tmp_path / "sweep"
    seen: list[int] = []

    def run_one(cfg: BenchConfig) -> tuple[int, RunResult | None]:
        seen.append(len(seen) + 1)
        if len(seen) == 3:
            raise KeyboardInterrupt
        return _benchmark(cfg)

    cfg = _config(sweep_argv(fast_mocker.base_url, out, "--no-plots", "--sweep", "docs=1:4"))
    assert run_sweep(cfg, run_one) == ExitStatus.INTERRUPTED
    data = json.loads((out / "sweep.json").read_text())
    assert [p["value"] for p in data["points"]] == [1, 2]
    assert (data["stopped"], data["not_run"]) == ("interrupted", [3, 4])
    assert not (out / "docs_3").exists()
    assert "sweep stopped (interrupted)" in capsys.readouterr().err


def test_a_run_stopped_by_ctrl_c_ends_the_sweep_there(fast_mocker, tmp_path) -> None:
    """A value whose run caught Ctrl-C itself (exit 130) is kept, and nothing after it runs."""
    out = tmp_path / "sweep"
    ran: list[str] = []

    def run_one(cfg: BenchConfig) -> tuple[int, RunResult | None]:
        ran.append(cfg.workload[-1])
        status, result = _benchmark(cfg)
        return (ExitStatus.INTERRUPTED if len(ran) == 2 else status), result

    cfg = _config(sweep_argv(fast_mocker.base_url, out, "--no-plots", "--sweep", "docs=1,2,3"))
    assert run_sweep(cfg, run_one) == ExitStatus.INTERRUPTED
    assert ran == ["docs=1", "docs=2"]
    data = json.loads((out / "sweep.json").read_text())
    assert [(p["value"], p["exit_status"]) for p in data["points"]] == [(1, 0), (2, 130)]
    assert data["not_run"] == [3]


def _config(argv: list[str]) -> BenchConfig:
    """The config the CLI builds from ``argv`` (the workload's implied settings applied)."""
    from drbench.cli import _resolve_runs, build_parser  # noqa: PLC0415
    from drbench.config import OPTIONS  # noqa: PLC0415

    args = build_parser().parse_args(argv)
    ((_, cfg),) = _resolve_runs({o.name: getattr(args, o.name) for o in OPTIONS}, None)
    return cfg


@pytest.mark.slow
def test_ctrl_c_during_a_value_keeps_what_finished(
    mocker_factory, tmp_path, sigint_reaches_children
) -> None:
    mock = mocker_factory("--cache-capacity-tokens", str(CAPACITY), "--ttft-ms", "300")
    out = tmp_path / "sweep"
    argv = sweep_argv(mock.base_url, out, "--sweep", "docs=1,2,8", "--no-plots")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "dual_round_benchmarker.py"), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (out / "docs_2" / "concurrency_1_round_1.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    data = json.loads((out / "sweep.json").read_text())
    assert [p["value"] for p in data["points"]] == [1, 2]
    one, two = data["points"]
    assert (one["interrupted"], len(one["levels"][0]["rounds"])) == (False, 2)
    assert two["interrupted"] is True and two["exit_status"] == 130
    assert [r["round"] for r in two["levels"][0]["rounds"]] in ([1], [1, 2])
    assert (data["stopped"], data["not_run"]) == ("interrupted", [8])
    assert "Traceback" not in err
