"""Ctrl-C at many points of a real run: every round whose requests all ended is reported.

The run is a subprocess against a mocker; its --prometheus-url is a metrics server this test
starts on 127.0.0.1 that answers slowly, so every round ends with about a second of closing
scrapes, the window where Ctrl-C used to drop the finished round from every report.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from drbench.levels import Level

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "examples" / "example_dataset.json"
PROMPTS = 4
LEVELS = (2, 4)
SCRAPE_DELAY_S = 0.4
INTERRUPTED = "interrupted before the closing scrape ended"
METRICS = b"""# TYPE vllm:prefix_cache_queries counter
vllm:prefix_cache_queries_total{engine="0"} 100.0
# TYPE vllm:prefix_cache_hits counter
vllm:prefix_cache_hits_total{engine="0"} 40.0
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0"} 0.0
"""


class SlowMetrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        time.sleep(SCRAPE_DELAY_S)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(METRICS)))
        self.end_headers()
        self.wfile.write(METRICS)

    def log_message(self, *args) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a run interrupted mid-scrape hangs up on us: expected


@pytest.fixture(scope="module")
def slow_metrics_url() -> Iterator[str]:
    server = QuietServer(("127.0.0.1", 0), SlowMetrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


def _rounds_in_log(log: Path) -> Counter:
    try:
        lines = log.read_text().splitlines()
    except FileNotFoundError:
        return Counter()
    return Counter(
        (Level.from_key(r["level"]).concurrency, r["round"]) for r in map(json.loads, lines)
    )


class _Run:
    """One run to interrupt: its command, its output folder and when to send SIGINT."""

    def __init__(self, cmd: list[str], out: Path, when) -> None:
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.log = out / "requests.jsonl"
        self.when = when
        self.appeared: float | None = None

    def due(self) -> bool:
        """``when(log counts, seconds since the log appeared)``, or the run has ended."""
        if self.proc.poll() is not None:
            return True
        if self.appeared is None and self.log.exists():
            self.appeared = time.monotonic()
        if self.appeared is None:
            return False
        try:
            counts = _rounds_in_log(self.log)
        except json.JSONDecodeError:  # a line being written
            return False
        return bool(self.when(counts, time.monotonic() - self.appeared))


def _interrupt_all(runs: list[_Run]) -> list[tuple[subprocess.Popen, str]]:
    """Watch every run at once; SIGINT each when its moment comes (or after 60 s)."""
    pending = list(runs)
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        for run in [r for r in pending if r.due()]:
            run.proc.send_signal(signal.SIGINT)
            pending.remove(run)
        time.sleep(0.01)
    for run in pending:
        run.proc.send_signal(signal.SIGINT)
    results = []
    for run in runs:
        _, err = run.proc.communicate(timeout=60)
        results.append((run.proc, err))
    return results


def _after_round(level: int, rnd: int):
    return lambda counts, _: counts[(level, rnd)] >= PROMPTS


def _after_s(seconds: float):
    return lambda _, elapsed: elapsed >= seconds


POINTS = [
    ("after C=2 round 1", _after_round(2, 1)),
    ("after C=2 round 2", _after_round(2, 2)),
    ("after C=4 round 1", _after_round(4, 1)),
    ("after C=4 round 2", _after_round(4, 2)),
    ("0.0 s", _after_s(0.0)),
    ("0.7 s", _after_s(0.7)),
    ("2.0 s", _after_s(2.0)),
    ("3.5 s", _after_s(3.5)),
]


@pytest.mark.slow
def test_ctrl_c_anywhere_loses_no_finished_round(
    mocker_factory, slow_metrics_url: str, tmp_path: Path, sigint_reaches_children
) -> None:
    """The runs go side by side (each waits on slow scrapes, not on the CPU): one at a time
    they took 25 s of the suite."""
    mock = mocker_factory("--ttft-ms", "5", "--itl-ms", "2", "--output-tokens", "8")
    runs = []
    for i, (_, when) in enumerate(POINTS):
        out = tmp_path / f"run{i}"
        cmd = [
            sys.executable,
            str(ROOT / "dual_round_benchmarker.py"),
            "--endpoint",
            mock.base_url + "/v1/chat/completions",
            "--dataset",
            str(DATASET),
            "--num-samples",
            str(PROMPTS),
            "--concurrency",
            *map(str, LEVELS),
            "--prometheus-url",
            slow_metrics_url,
            "--prometheus-interval",
            "0.2",
            "--output-dir",
            str(out),
            "--quiet",
            "--no-plots",
        ]
        runs.append(_Run(cmd, out, when))
    cut_closing_scrapes = early = 0
    for i, ((name, _), (proc, err)) in enumerate(zip(POINTS, _interrupt_all(runs), strict=True)):
        out = tmp_path / f"run{i}"
        assert proc.returncode == 130, (name, err)
        assert "Traceback" not in err, (name, err)
        counts = _rounds_in_log(out / "requests.jsonl")
        finished = {key for key, n in counts.items() if n == PROMPTS}
        if not finished:  # Ctrl-C before the first round ended: one line says what is left
            assert not (out / "summary.json").exists(), name
            kept = sum(counts.values())
            said = (
                f"drbench: interrupted before the first round ended: the {kept} finished "
                f"requests are kept in {out / 'requests.jsonl'} (no round finished, so there "
                "is no summary, CSV or round file)"
                if kept
                else "drbench: interrupted before the first round ended: no request had "
                f"finished, so nothing was kept (the empty files in {out} were removed)"
            )
            assert said in err.splitlines(), (name, err)
            early += 1
            continue
        summary = json.loads((out / "summary.json").read_text())
        assert summary["run"]["interrupted"] is True, name
        rounds = [
            (lv["concurrency"], r["round"], r) for lv in summary["levels"] for r in lv["rounds"]
        ]
        assert {(c, n) for c, n, _ in rounds} == finished, (name, counts)
        with (out / "metrics_summary.csv").open() as f:
            rows = {(int(r["concurrency"]), int(r["round"])) for r in csv.DictReader(f)}
        assert rows == finished, name
        for c, n in finished:
            assert (out / f"concurrency_{c}_round_{n}.json").exists(), (name, c, n)
        for _, _, r in rounds:
            assert r["requests"]["total"] == PROMPTS
            missing = [m["reason"] for m in r["server_metrics"]["missing"]]
            if missing:  # the only way a round here lacks server figures
                assert missing == [INTERRUPTED], (name, missing)
                cut_closing_scrapes += 1
    # the round-end triggers land inside the closing scrapes (about a second long)
    assert cut_closing_scrapes >= 2
    assert early >= 1  # "0.0 s": SIGINT as the log appears, while round 1's first scrape runs
