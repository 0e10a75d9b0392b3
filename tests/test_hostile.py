"""No server answer may crash, stall or exhaust the run: every hostile mode of tests/hostile.py,
each mixed with well-behaved prompts in one round.  For each: the run ends within its deadline,
the hostile request fails with the right kind (or succeeds, flagged), the other streams are
unaffected, memory stays bounded, and the exit code is never 1."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drbench.cli import main
from tests.hostile import HostileServer, dataset_line

ROOT = Path(__file__).resolve().parent.parent
NORMAL = 4


def dataset(tmp_path: Path, mode: str) -> Path:
    path = tmp_path / "data.jsonl"
    lines = [dataset_line(mode, 0)] + [dataset_line(None, i) for i in range(NORMAL)]
    path.write_text("\n".join(lines) + "\n")
    return path


def argv(server: HostileServer, tmp_path: Path, mode: str, *extra: str) -> list[str]:
    return [
        "--endpoint", server.base_url + "/v1/chat/completions",
        "--dataset", str(dataset(tmp_path, mode)),
        "--output-dir", str(tmp_path / "out"),
        "--concurrency", str(NORMAL + 1),
        "--rounds", "1", "--quiet", "--no-plots", *extra,
    ]  # fmt: skip


def records(tmp_path: Path) -> dict[str, dict]:
    lines = (tmp_path / "out" / "requests.jsonl").read_text().splitlines()
    return {r["prompt_id"]: r for r in map(json.loads, lines)}


def check_the_others(recs: dict[str, dict]) -> None:
    others = [r for pid, r in recs.items() if pid.startswith("ok-")]
    assert len(others) == NORMAL and all(r["ok"] for r in others)
    assert all(r["ttft_ms"] < 2000 for r in others), [r["ttft_ms"] for r in others]


CASES = {  # mode: (extra flags, the hostile record's error kind, a phrase of its error)
    "long_line": ((), "oversize", "SSE line"),
    "half_event": (("--timeout", "3"), "timeout", "--timeout"),
    "dribble": (("--timeout", "2"), "timeout", "--timeout"),
    "deep_json": ((), "malformed", "nested too deep"),
    "html": ((), "malformed", "text/html"),
    "json": ((), "malformed", "application/json"),
}


@pytest.mark.parametrize("mode", sorted(CASES))
def test_a_hostile_answer_is_a_failed_request(mode: str, tmp_path: Path) -> None:
    extra, kind, phrase = CASES[mode]
    with HostileServer() as server:
        t0 = time.monotonic()
        code = main(argv(server, tmp_path, mode, *extra))
        took = time.monotonic() - t0
    assert code == 0  # the other prompts succeeded: a failed request is data
    assert took < 30, took
    recs = records(tmp_path)
    bad = recs[f"{mode}-0"]
    assert bad["error_kind"] == kind and phrase in bad["error"], bad["error"]
    check_the_others(recs)


@pytest.mark.parametrize("value", ["string", "object", "negative", "nan"])
def test_odd_usage_fields_fall_back_to_the_estimate(value: str, tmp_path: Path) -> None:
    with HostileServer() as server:
        assert main(argv(server, tmp_path, f"usage_{value}")) == 0
    bad = records(tmp_path)[f"usage_{value}-0"]
    assert bad["ok"] and bad["token_source"] == "estimate" and "ignored usage" in bad["note"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())  # strict JSON
    assert summary["levels"][0]["rounds"][0]["requests"]["succeeded"] == NORMAL + 1


def test_a_server_talking_after_done_is_not_waited_for(tmp_path: Path) -> None:
    with HostileServer() as server:
        t0 = time.monotonic()
        assert main(argv(server, tmp_path, "after_done", "--timeout", "20")) == 0
        assert time.monotonic() - t0 < 15
    assert records(tmp_path)["after_done-0"]["ok"]


def test_retry_after_is_honoured_by_the_preflight(tmp_path: Path, capsys) -> None:
    with HostileServer(rate_limited=2, retry_after="1") as server:
        assert main(argv(server, tmp_path, "normal")) == 0
    err = capsys.readouterr().err
    assert err.count("preflight: HTTP 429 with Retry-After 1 s; waited 1 s") == 2
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert sum("Retry-After" in w for w in summary["run"]["warnings"]) == 2


@pytest.mark.parametrize("mode", ["endless", "long_line"])
def test_memory_stays_bounded_on_endless_answers(mode: str, tmp_path: Path) -> None:
    """A subprocess, so its own peak RSS can be read; before the caps an endless stream took
    2.4 GB, and a long line was re-copied on every read (a 50 MB one stalled another request's
    TTFT by 18 s).

    The peak is the process's own VmHWM, written as it exits: its ru_maxrss (os.wait4) also
    counts the memory of the pytest worker that spawned it (Linux keeps the pre-exec high-water
    mark), which a worker that ran the report tests first takes past the bound."""
    peak_file = tmp_path / "peak_kb"
    wrapper = (
        "import atexit, runpy, sys\n"
        "def peak():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        f"            open({str(peak_file)!r}, 'w').write(line.split()[1])\n"
        "atexit.register(peak)\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    with HostileServer() as server:
        cmd = [sys.executable, "-c", wrapper, str(ROOT / "dual_round_benchmarker.py")]
        cmd += argv(server, tmp_path, mode, "--timeout", "60")
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=120)
        took = time.monotonic() - t0
    assert proc.returncode == 0, err
    assert took < 45, took
    peak_mb = int(peak_file.read_text()) / 1024  # kilobytes
    assert peak_mb < 400, peak_mb  # the 32 MiB response cap, not the whole stream
    recs = records(tmp_path)
    assert recs[f"{mode}-0"]["error_kind"] == "oversize"
    check_the_others(recs)
