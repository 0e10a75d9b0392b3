"""The reporter is a run's one voice on the terminal: what --quiet silences and what it keeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from drbench.config import BenchConfig
from drbench.report.live import LiveReporter
from drbench.results import RunResult

CFG = BenchConfig(
    endpoint="http://u:pw@127.0.0.1:9/v1/chat/completions", concurrency=(1, 4), rounds=2
)


def _speak(reporter: LiveReporter) -> None:
    reporter.run_started(CFG, prompts=3, model="m")
    reporter.note("plots.png skipped: pip install matplotlib to get it")
    reporter.gate_failed("--fail-on-errors 5% failed: exit 5")
    reporter.overview(RunResult(config=CFG, started_at="t0", model="m"))
    reporter.results_written()
    reporter.close()


def test_every_line_when_not_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _speak(LiveReporter(tmp_path, lang="en", quiet=False))
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "drbench: 3 prompts x 2 rounds at concurrency 1 4 against "
        f"http://***@127.0.0.1:9/v1/chat/completions (model m, cold start: nonce); "
        f"results in {tmp_path}",
        "drbench: plots.png skipped: pip install matplotlib to get it",
        "drbench: --fail-on-errors 5% failed: exit 5",
        f"drbench: results written to {tmp_path}",
    ]
    assert out.strip()  # the overview tables
    assert "pw" not in out + err


def test_quiet_keeps_gates_overview_and_where_results_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _speak(LiveReporter(tmp_path, lang="en", quiet=True))
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "drbench: --fail-on-errors 5% failed: exit 5",
        f"drbench: results written to {tmp_path}",
    ]
    assert out.strip()
