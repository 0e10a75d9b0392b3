"""The shipped example CI gate script, run as a CI job would run it.

Every script runs with this test's own interpreter (``PYTHON=sys.executable``), so the suite
passes whichever ``python`` is first on PATH, or none at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GATE = ROOT / "examples" / "ci_gate.sh"


def run_gate(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "OUT": str(tmp_path / "gate"), "PYTHON": sys.executable, **env}
    full.pop("ENDPOINT", None)
    return subprocess.run(
        ["bash", str(GATE)], capture_output=True, text=True, env=full, timeout=180
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra, code, line", [("", 0, "ci_gate: PASS"), ("--slo ttft_ms=0.001", 4, "goodput below")]
)
def test_ci_gate_script(tmp_path: Path, extra: str, code: int, line: str) -> None:
    # plots.png is not what a gate checks; drawing it was a third of the script's run
    proc = run_gate(tmp_path, EXTRA_ARGS=f"--no-plots {extra}".strip())
    assert proc.returncode == code, proc.stderr
    assert line in proc.stdout + proc.stderr
    assert (tmp_path / "gate" / "summary.json").exists()


def test_ci_gate_says_so_when_the_mock_server_cannot_start(tmp_path: Path) -> None:
    proc = run_gate(tmp_path, MOCKER_ARGS="--itl-ms -1")
    assert proc.returncode == 1
    assert "ci_gate: FAIL: the mock server did not start" in proc.stderr
    assert "--itl-ms must be > 0" in proc.stderr  # the mocker's own line follows
    assert not (tmp_path / "gate").exists()  # the benchmark never ran


def test_ci_gate_says_so_when_the_interpreter_is_missing(tmp_path: Path) -> None:
    proc = run_gate(tmp_path, PYTHON=str(tmp_path / "no-such-python"))
    assert proc.returncode == 1
    assert "ci_gate: FAIL: the mock server did not start" in proc.stderr
    assert "no-such-python" in proc.stderr


REGRESSION = ROOT / "examples" / "ci_regression.sh"


@pytest.mark.slow
@pytest.mark.parametrize(
    "candidate, code, line",
    [
        ("", 0, "ci_regression: PASS: no regression beyond ttft_p50=200"),
        ("--ttft-ms 150", 7, "ci_regression: FAIL: the candidate regressed"),
    ],
)
def test_ci_regression_script(tmp_path: Path, candidate: str, code: int, line: str) -> None:
    env = {
        **os.environ,
        "OUT": str(tmp_path / "reg"),
        "PYTHON": sys.executable,
        "EXTRA_ARGS": "--no-plots --num-samples 6",
        "GATES": "ttft_p50=200",  # a mocker's TTFT moves a few ms between runs, never 3x
        "CANDIDATE_MOCKER_ARGS": candidate,
    }
    for name in ("BASELINE", "BASE_ENDPOINT", "CANDIDATE_ENDPOINT"):
        env.pop(name, None)
    proc = subprocess.run(
        ["bash", str(REGRESSION)], capture_output=True, text=True, env=env, timeout=180
    )
    assert proc.returncode == code, proc.stderr
    assert line in proc.stdout + proc.stderr
    compare = tmp_path / "reg" / "compare"
    assert (compare / "compare.json").exists() and (compare / "compare.html").exists()
    assert (tmp_path / "reg" / "baseline" / "report.html").exists()
