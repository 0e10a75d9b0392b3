"""What the load tests (tests/test_workers.py, tests/test_ray_executor.py) share: the CLI's
flags against a mocker, the records a run wrote, and the mocker's own --trace of what it got."""

from __future__ import annotations

import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "examples" / "example_dataset.json"


def cli_args(mock, out: Path, *extra: str, dataset: Path = DATASET) -> list[str]:
    """The benchmarker's flags common to these tests, then ``extra``."""
    return [
        "--endpoint", mock.base_url + "/v1/chat/completions",
        "--dataset", str(dataset),
        "--output-dir", str(out),
        "--quiet", "--no-plots",
        *extra,
    ]  # fmt: skip


def run_records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]


def mocker_trace(path: Path, at_least: int) -> list[dict]:
    """The mocker's trace entries once it holds ``at_least`` (it flushes every half second)."""
    lines: list[str] = []
    for _ in range(100):
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= at_least:
            break
        time.sleep(0.1)
    return [json.loads(line) for line in lines]


def served_chats(path: Path, at_least: int) -> list[dict]:
    """The trace's chat requests the mocker finished (not the preflight's /v1/models)."""
    entries = mocker_trace(path, at_least)
    return [
        e for e in entries if e.get("path", "").endswith("/chat/completions") and e.get("done_ns")
    ]


def peak_in_flight(spans: list[tuple[int, int]]) -> int:
    """The most (start, end) spans open at one instant."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    peak = running = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def logged(out: Path) -> int:
    """Records in the run's requests.jsonl so far."""
    log = out / "requests.jsonl"
    return log.read_text().count("\n") if log.exists() else 0
