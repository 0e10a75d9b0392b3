#!/usr/bin/env python3
"""The load engine measured from outside: open-loop fidelity and what --workers buys.

Runs the real CLI (``dual_round_benchmarker.py --rounds 1 --cold-start none --quiet``) in a child
process against the mocker, and reads the run's own ``summary.json`` and ``requests.jsonl``.

Open-loop fidelity: at 100, 1,000 and 5,000 requests/s (short answers, ``--ttft-ms 1``), the send
lag (actual send - scheduled send, per record) at p50/p99/max, and the rate achieved (requests
sent / time from the first to the last send).

Workers: a closed loop at concurrency 64 of long answers streamed one token per write as fast as
the mocker can (``--itl-ms 0.001 --output-tokens 400``), with ``--workers 1`` and ``--workers 2``:
token events stamped per second of the round, and the client's CPU (the CLI and its workers, from
``getrusage(RUSAGE_CHILDREN)``) per token event.  On a machine where the mocker and the client
share two cores the mocker is usually the limit; the CPU per event is the figure that projects
to a machine with cores to spare.

Each row prints the machine's load average; ``--client-cpu`` / ``--mocker-cpu`` pin the two
sides to cores with ``taskset`` when it exists.

    python bench/load_engine.py
    python bench/load_engine.py --skip-workers
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drbench.mocker.process import MockerProcess  # noqa: E402


def _pin(cmd: list[str], cpu: str | None) -> list[str]:
    if cpu is None or not shutil.which("taskset"):
        return cmd
    return ["taskset", "-c", cpu, *cmd]


def _pin_mocker(mock: MockerProcess, cpu: str | None) -> None:
    if cpu is not None and shutil.which("taskset") and mock.proc is not None:
        subprocess.run(["taskset", "-pc", cpu, str(mock.proc.pid)], check=True, capture_output=True)


def _dataset(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"text": f"q{i} hello"}) + "\n" for i in range(n)))
    return path


def _run_cli(args: list[str], out: Path, cpu: str | None) -> tuple[dict, list[dict], float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [
        sys.executable,
        str(ROOT / "dual_round_benchmarker.py"),
        *args,
        "--rounds",
        "1",
        "--cold-start",
        "none",
        "--output-dir",
        str(out),
        "--overwrite",
        "--quiet",
        "--no-plots",
    ]
    done = subprocess.run(
        _pin(cmd, cpu), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        timeout=600,
    )  # fmt: skip
    for line in done.stderr.splitlines():
        if "warning" in line:
            print("    " + line.removeprefix("drbench: "))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = json.loads((out / "summary.json").read_text())
    records = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    return summary, records, cpu_s


def _load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def open_loop(
    tmp: Path, rates: list[float], seconds: float, client_cpu: str | None, mocker_cpu
) -> None:
    print("Open-loop fidelity (send lag = actual send - scheduled send)")
    print(
        f"{'rate':>8} {'n':>6} {'lag p50 ms':>11} {'lag p99 ms':>11} {'lag max ms':>11} {'achieved/s':>11}  machine"
    )
    mock_args = ["--ttft-ms", "1", "--itl-ms", "1", "--output-tokens", "2"]
    with MockerProcess(mock_args) as mock:
        _pin_mocker(mock, mocker_cpu)
        for rate in rates:
            n = max(200, int(rate * seconds))
            data = _dataset(tmp / f"d{n}.jsonl", n)
            summary, records, _ = _run_cli(
                ["--endpoint", mock.base_url + "/v1/chat/completions", "--dataset", str(data),
                 "--request-rate", f"{rate:g}", "--timeout", "60"],
                tmp / f"rate{rate:g}", client_cpu,
            )  # fmt: skip
            lag = summary["levels"][0]["rounds"][0]["load"]["send_lag_ms"]
            sends = sorted(r["start_ms"] for r in records)
            achieved = (len(sends) - 1) / ((sends[-1] - sends[0]) / 1000) if len(sends) > 1 else 0
            print(
                f"{rate:>8g} {n:>6} {lag['p50']:>11.3f} {lag['p99']:>11.3f} {lag['max']:>11.3f} "
                f"{achieved:>11.0f}  {_load()}"
            )


def workers(tmp: Path, counts: list[int], prompts: int, client_cpu: str | None, mocker_cpu) -> None:
    print("\nWorkers: closed loop, concurrency 64, 400 tokens per answer, one token per write")
    print(
        f"{'workers':>8} {'events':>8} {'round s':>8} {'events/s':>9} {'client CPU s':>13} {'µs CPU/event':>13}  machine"
    )
    mock_args = ["--ttft-ms", "0", "--itl-ms", "0.001", "--output-tokens", "400"]
    data = _dataset(tmp / "w.jsonl", prompts)
    with MockerProcess(mock_args) as mock:
        _pin_mocker(mock, mocker_cpu)
        for k in counts:
            summary, records, cpu_s = _run_cli(
                ["--endpoint", mock.base_url + "/v1/chat/completions", "--dataset", str(data),
                 "--concurrency", "64", "--workers", str(k), "--max-tokens", "400"],
                tmp / f"w{k}", client_cpu,
            )  # fmt: skip
            events = sum(r["token_events"] for r in records)
            duration = summary["levels"][0]["rounds"][0]["duration_s"]
            print(
                f"{k:>8} {events:>8} {duration:>8.2f} {events / duration:>9.0f} {cpu_s:>13.2f} "
                f"{1e6 * cpu_s / events:>13.2f}  {_load()}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[100, 1000, 5000])
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each open-loop level")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--worker-prompts", type=int, default=256, help="prompts of the workers' run")
    ap.add_argument("--client-cpu", default=None, help="taskset CPU list for the client")
    ap.add_argument("--mocker-cpu", default=None, help="taskset CPU list for the mocker")
    ap.add_argument("--skip-open-loop", action="store_true")
    ap.add_argument("--skip-workers", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not args.skip_open_loop:
            open_loop(tmp, args.rates, args.seconds, args.client_cpu, args.mocker_cpu)
        if not args.skip_workers:
            workers(tmp, args.workers, args.worker_prompts, args.client_cpu, args.mocker_cpu)


if __name__ == "__main__":
    main()
