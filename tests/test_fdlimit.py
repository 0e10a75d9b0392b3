"""File descriptors: a run gets enough before it starts (soft limit raised), or is refused with
one line naming --concurrency and ulimit -n (exit 2); no request is lost to EMFILE."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from drbench.errors import UsageError
from drbench.fdlimit import FD_MARGIN, fds_needed, plan_limit

ROOT = Path(__file__).resolve().parent.parent
INF = resource.RLIM_INFINITY
SOFT, HARD = resource.getrlimit(resource.RLIMIT_NOFILE)


def test_plan_limit() -> None:
    assert fds_needed(1000, 2) == 1000 + 4 + FD_MARGIN
    assert plan_limit(100, 0, 4096, 8192, INF) is None  # enough already
    assert plan_limit(100, 0, INF, INF, INF) is None
    assert plan_limit(1000, 1, 256, 8192, INF) == 8192  # raised to the hard limit
    assert plan_limit(1000, 0, 256, INF, INF) == 1000 + FD_MARGIN
    assert plan_limit(1000, 0, 256, 256, INF, prompts=10) is None  # only 10 ever in flight
    with pytest.raises(UsageError) as err:
        plan_limit(1000, 0, 256, 512, INF)
    assert str(err.value) == (
        "--concurrency 1000 needs about 1064 open files but this process may open 256 "
        "(ulimit -n; hard limit 512); lower --concurrency or raise ulimit -n to at least 1064"
    )


def _limited(soft: int, hard: int):
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _cli(out: Path, endpoint: str, dataset: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "dual_round_benchmarker.py"),
        "--endpoint",
        endpoint,
        "--dataset",
        str(dataset),
        "--output-dir",
        str(out),
        "--quiet",
        "--no-plots",
        *extra,
    ]


def _dataset(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"q{i}", "text": f"q {i}"}) + "\n" for i in range(n)))
    return path


def test_a_hard_limit_too_low_refuses_the_run_with_one_line(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path / "many.jsonl", 1200)
    cmd = _cli(tmp_path / "o", "http://127.0.0.1:9/v1/chat/completions", dataset)
    cmd += ["--concurrency", "10", "1000", "--model", "m"]
    run = subprocess.run(
        cmd, capture_output=True, text=True, timeout=60, preexec_fn=_limited(256, 256)
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == [
        "drbench: --concurrency 1000 needs about 1064 open files but this process may open 256 "
        "(ulimit -n; hard limit 256); lower --concurrency or raise ulimit -n to at least 1064"
    ]
    assert not (tmp_path / "o").exists()  # refused before anything was created or sent


def test_a_low_soft_limit_is_raised_and_no_request_fails(mocker_factory, tmp_path: Path) -> None:
    """300 requests in flight under `ulimit -n 256`: before, dozens failed on EMFILE."""
    n = 300
    hard = HARD if HARD != INF else 65536
    assert hard >= fds_needed(n), "this machine's hard limit is too low for the test"
    dataset = _dataset(tmp_path / "many.jsonl", n)
    mock = mocker_factory("--ttft-ms", "200", "--itl-ms", "1", "--output-tokens", "2")
    out = tmp_path / "run"
    cmd = _cli(out, mock.base_url + "/v1/chat/completions", dataset, "--concurrency", str(n))
    run = subprocess.run(
        cmd + ["--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=180,
        preexec_fn=_limited(256, hard),
    )
    assert run.returncode == 0, run.stderr
    records = [json.loads(x) for x in (out / "requests.jsonl").read_text().splitlines()]
    assert len(records) == n and all(r["ok"] for r in records), {r["error"] for r in records}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["levels"][0]["rounds"][0]["requests"]["succeeded"] == n


_WARM_UP_CHECK = """
import sys
from drbench.benchmark import _import_report_modules
from drbench.config import BenchConfig
from drbench.levels import Level
from drbench.records import RequestRecord, TokenSource
from drbench.results import LevelResult, RoundResult, RunResult
_import_report_modules(BenchConfig(no_plots=True))
before = set(sys.modules)
from drbench.report.console import format_comparison, format_overview, format_round
from drbench.report.files import strict_json
from drbench.stats import compare_rounds, summarize_round
four = Level.closed(4)
level = LevelResult(level=four, cold_start="nonce")
for rnd in (1, 2):
    recs = [RequestRecord(f"q{i}", four.key, rnd, 1.0, 50.0, 10.0 * i + rnd, 50.0, [1.0] * 7, 90, 8, 0,
                          TokenSource.USAGE) for i in range(20)]
    level.rounds.append(RoundResult(summarize_round(recs, level=four, round=rnd), recs))
r1, r2 = level.rounds
level.comparison = compare_rounds(r1.records, r2.records, r1.summary, r2.summary)
run = RunResult(config=BenchConfig(), started_at="t", levels=[level])
format_round(r2, "zh"), format_comparison(level), format_overview(run), strict_json(run.to_dict())
print(sorted(set(sys.modules) - before))
"""


def test_nothing_is_left_to_import_once_the_first_round_starts() -> None:
    """Imports between rounds open files while every pooled socket is still open (EMFILE)."""
    env_path = str(ROOT)
    run = subprocess.run(
        [sys.executable, "-c", _WARM_UP_CHECK],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=env_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
