"""The shipped example CI gate script, run as a CI job would run it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize(
    "extra, code, line", [("", 0, "ci_gate: PASS"), ("--slo ttft_ms=0.001", 4, "goodput below")]
)
def test_ci_gate_script(tmp_path: Path, extra: str, code: int, line: str) -> None:
    env = {**os.environ, "OUT": str(tmp_path / "gate"), "EXTRA_ARGS": extra}
    env.pop("ENDPOINT", None)
    proc = subprocess.run(
        ["bash", str(ROOT / "examples" / "ci_gate.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert proc.returncode == code, proc.stderr
    assert line in proc.stdout + proc.stderr
    assert (tmp_path / "gate" / "summary.json").exists()
