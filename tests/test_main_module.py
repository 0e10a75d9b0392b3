"""``python -m drbench`` is the benchmarker's command line: same version, same one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drbench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version_from_the_package() -> None:
    from drbench import __version__

    done = _run("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"drbench {__version__}"


def test_a_bad_flag_is_one_line_and_exit_2() -> None:
    done = _run("--concurrency", "0")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "drbench: --concurrency must be from 1 to 10000 (got 0)"
    ]
