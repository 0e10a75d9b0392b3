#!/usr/bin/env python3
"""--executor ray measured against the local executors on this one machine.

Starts a Ray head on 127.0.0.1 (``ray start --head --num-cpus N``; ``ray stop`` at the end: it
stops every Ray process of this machine), a mocker, and runs the real CLI
(``dual_round_benchmarker.py --rounds 1 --cold-start none --quiet``) in a child process once per
executor: this process alone (``--workers 1``), two worker processes (``--workers 2``) and two
Ray actors (``--executor ray --workers 2 --ray-address auto``).  Figures come from each run's own
``summary.json`` (the self-check's CPU of every process during the round) and ``requests.jsonl``.

1. Stream load: a closed loop at concurrency 64 of 400-token answers, one token per write, as
   fast as the mocker can: token events per second, the CPU every client process used in the
   round, per token event, and the driver's (this process's) CPU per request, which is what
   dispatching through Ray costs the one process that all hosts share.
   Then the dispatch cost alone: 2,000 requests of 8 tokens at concurrency 64, requests per
   second and the driver's CPU per request.
2. TTFT: a closed loop at concurrency 8 of 8-token answers with a 50 ms TTFT: the client's TTFT
   p50 and its excess over the mocker's own (from its --trace), per executor.
3. Open loop: 50 and 200 requests/s of 2-token answers: send lag p50/p99 and the rate achieved.
4. Start: the wall time of a 1-request run (for Ray: joining the cluster and placing actors).

Every row prints the machine's load average.  On two shared cores, the mocker, the driver, two
workers and Ray's own processes (GCS, raylet) compete for the same CPU: the throughput rows show
that contention, the per-event and per-request CPU figures are the ones that project to hosts
with cores of their own.

    python bench/ray_executor.py
    python bench/ray_executor.py --skip-open-loop --concurrency 32
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drbench.mocker.process import MockerProcess  # noqa: E402

MODES = {
    "1 process": ["--workers", "1"],
    "2 workers": ["--workers", "2"],
    "2 Ray actors": ["--executor", "ray", "--workers", "2"],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_head(cpus: int) -> str:
    ray = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    subprocess.run(
        [ray, "start", "--head", f"--num-cpus={cpus}", "--node-ip-address=127.0.0.1",
         f"--port={port}", "--include-dashboard=false", "--disable-usage-stats"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip
    return f"127.0.0.1:{port}"


def _stop_head() -> None:
    ray = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120, check=False)


def _dataset(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"text": f"q{i} hello"}) + "\n" for i in range(n)))
    return path


def _run(args: list[str], out: Path) -> tuple[dict, list[dict], float]:
    if "ray" in args:  # the head this script started: `ray start` clusters want their token,
        args = [*args, "--ray-address", "auto"]  # which "auto" finds on this host
    cmd = [
        sys.executable, str(ROOT / "dual_round_benchmarker.py"), *args,
        "--rounds", "1", "--cold-start", "none", "--output-dir", str(out), "--overwrite",
        "--quiet", "--no-plots",
    ]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          timeout=900)  # fmt: skip
    wall = time.perf_counter() - t0
    for line in done.stderr.splitlines():
        if "warning" in line or "error" in line:
            print("    " + line.removeprefix("drbench: ")[:300])
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}): {done.stderr[-500:]}")
    summary = json.loads((out / "summary.json").read_text())
    records = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    return summary, records, wall


def _load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def streams(tmp: Path, concurrency: int, prompts: int) -> None:
    print(f"1. Closed loop, concurrency {concurrency}, 400 tokens per answer, one per write")
    print(
        f"{'executor':>13} {'events/s':>9} {'round s':>8} {'client CPU s':>13} "
        f"{'µs CPU/event':>13} {'driver µs/req':>14}  machine"
    )
    data = _dataset(tmp / "s.jsonl", prompts)
    with MockerProcess(["--ttft-ms", "0", "--itl-ms", "0.001", "--output-tokens", "400"]) as mock:
        for name, flags in MODES.items():
            summary, records, _ = _run(
                ["--endpoint", mock.base_url + "/v1/chat/completions", "--dataset", str(data),
                 "--concurrency", str(concurrency), "--max-tokens", "400", *flags],
                tmp / "s",
            )  # fmt: skip
            rnd = summary["levels"][0]["rounds"][0]
            events = sum(r["token_events"] for r in records)
            cpu = sum(c["cpu_s"] for c in rnd["client"])
            driver = rnd["client"][0]["cpu_s"]
            print(
                f"{name:>13} {events / rnd['duration_s']:>9.0f} {rnd['duration_s']:>8.2f} "
                f"{cpu:>13.2f} {1e6 * cpu / events:>13.2f} {1e6 * driver / len(records):>14.0f}"
                f"  {_load()}"
            )


def dispatch(tmp: Path, requests: int) -> None:
    print(f"\n1b. Dispatch: {requests:,} requests of 8 tokens at concurrency 64")
    print(f"{'executor':>13} {'req/s':>7} {'round s':>8} {'driver µs CPU/req':>18}  machine")
    data = _dataset(tmp / "d.jsonl", requests)
    with MockerProcess(["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "8"]) as mock:
        for name, flags in MODES.items():
            summary, records, _ = _run(
                ["--endpoint", mock.base_url + "/v1/chat/completions", "--dataset", str(data),
                 "--concurrency", "64", *flags],
                tmp / "d",
            )  # fmt: skip
            rnd = summary["levels"][0]["rounds"][0]
            driver = rnd["client"][0]["cpu_s"]
            print(
                f"{name:>13} {len(records) / rnd['duration_s']:>7.0f} {rnd['duration_s']:>8.2f} "
                f"{1e6 * driver / len(records):>18.0f}  {_load()}"
            )


def ttft(tmp: Path) -> None:
    print("\n2. TTFT, closed loop at concurrency 8, mocker TTFT 50 ms, 8 tokens")
    print(f"{'executor':>13} {'TTFT p50 ms':>12} {'over mocker ms':>15} {'n':>5}  machine")
    data = _dataset(tmp / "t.jsonl", 200)
    for name, flags in MODES.items():
        trace = tmp / f"trace-{name.replace(' ', '_')}.jsonl"
        mock_args = [
            "--ttft-ms",
            "50",
            "--itl-ms",
            "2",
            "--output-tokens",
            "8",
            "--trace",
            str(trace),
        ]
        with MockerProcess(mock_args) as mock:
            _, records, _ = _run(
                ["--endpoint", mock.base_url + "/v1/chat/completions", "--dataset", str(data),
                 "--concurrency", "8", *flags],
                tmp / "t",
            )  # fmt: skip
        served = {}
        for line in trace.read_text().splitlines():
            e = json.loads(line)
            if e.get("content_ns"):
                served[e["id"]] = (e["content_ns"][0] - e["read_ns"]) / 1e6
        over = [
            r["ttft_ms"] - served[r["response_id"]] for r in records if r["response_id"] in served
        ]
        p50 = statistics.median(r["ttft_ms"] for r in records)
        print(f"{name:>13} {p50:>12.2f} {statistics.median(over):>15.2f} {len(over):>5}  {_load()}")


def open_loop(tmp: Path, rates: list[float], seconds: float) -> None:
    print("\n3. Open loop, 2-token answers (send lag = actual send - scheduled send)")
    print(
        f"{'executor':>13} {'rate':>6} {'lag p50 ms':>11} {'lag p99 ms':>11} {'achieved/s':>11}  machine"
    )
    with MockerProcess(["--ttft-ms", "1", "--itl-ms", "1", "--output-tokens", "2"]) as mock:
        for rate in rates:
            n = max(100, int(rate * seconds))
            data = _dataset(tmp / f"o{n}.jsonl", n)
            for name, flags in MODES.items():
                summary, records, _ = _run(
                    ["--endpoint", mock.base_url + "/v1/chat/completions", "--dataset", str(data),
                     "--request-rate", f"{rate:g}", *flags],
                    tmp / "o",
                )  # fmt: skip
                lag = summary["levels"][0]["rounds"][0]["load"]["send_lag_ms"]
                sends = sorted(r["start_ms"] for r in records)
                achieved = (len(sends) - 1) / ((sends[-1] - sends[0]) / 1000)
                print(
                    f"{name:>13} {rate:>6g} {lag['p50']:>11.3f} {lag['p99']:>11.3f} "
                    f"{achieved:>11.0f}  {_load()}"
                )


def start(tmp: Path) -> None:
    print("\n4. Wall time of a 1-request run (start, preflight, one request, reports)")
    data = _dataset(tmp / "one.jsonl", 1)
    with MockerProcess(["--ttft-ms", "1", "--output-tokens", "2"]) as mock:
        for name, flags in MODES.items():
            _, _, wall = _run(
                ["--endpoint", mock.base_url + "/v1/chat/completions", "--dataset", str(data),
                 "--concurrency", "1", *flags],
                tmp / "one",
            )  # fmt: skip
            print(f"{name:>13} {wall:>7.2f} s  {_load()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpus", type=int, default=2, help="CPUs the Ray head offers")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--prompts", type=int, default=512, help="prompts of the stream run")
    ap.add_argument("--rates", type=float, nargs="+", default=[50, 200])
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each open-loop level")
    ap.add_argument("--skip-streams", action="store_true")
    ap.add_argument("--skip-dispatch", action="store_true")
    ap.add_argument("--dispatch-requests", type=int, default=2000)
    ap.add_argument("--skip-ttft", action="store_true")
    ap.add_argument("--skip-open-loop", action="store_true")
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores; Ray head with {args.cpus} CPUs; {_load()}")
    _start_head(args.cpus)
    try:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            if not args.skip_streams:
                streams(tmp, args.concurrency, args.prompts)
            if not args.skip_dispatch:
                dispatch(tmp, args.dispatch_requests)
            if not args.skip_ttft:
                ttft(tmp)
            if not args.skip_open_loop:
                open_loop(tmp, args.rates, args.seconds)
            start(tmp)
    finally:
        _stop_head()


if __name__ == "__main__":
    main()
