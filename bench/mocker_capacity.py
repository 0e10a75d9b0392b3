#!/usr/bin/env python3
"""Capacity of the mock server: delivered chunk rate, TTFT and ITL at rising concurrency.

Starts the mocker (``MockerProcess``) pinned to one core, pins this process (the load client)
to another, and for each level opens N keep-alive connections that each send streaming chat
requests back to back for ``--duration-s`` seconds. The client is a raw asyncio protocol that
only counts content events and stamps their arrival, so it stays lighter than the server.

Prints, per level: delivered content chunks/s against the target (streams / ITL), delivered
TTFT and ITL (mean, p50, p99) against the configured values, and the CPU share each process
used in the measuring window (server at ~100% means the server is the bottleneck).

    python bench/mocker_capacity.py                       # levels 1 16 64 256 1024, ITL 20 ms
    python bench/mocker_capacity.py --levels 256 --itl-ms 20 --duration-s 5

Bounded: every level stops after ``--duration-s`` plus the time to drain in-flight streams.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drbench.mocker.process import MockerProcess  # noqa: E402
from drbench.mocker.tokenizer import render_chat, tokenize  # noqa: E402

_PAT = b'"delta":{"content":"'
_END = b"\r\n0\r\n\r\n"
_TAIL = 32


@dataclass
class LevelStats:
    """What the client saw inside the measuring window."""

    window_start_ns: int = 0
    window_end_ns: int = 0
    chunks: int = 0
    requests: int = 0
    errors: int = 0
    ttft_ns: list[int] = field(default_factory=list)
    gaps_ns: list[int] = field(default_factory=list)

    def in_window(self, t: int) -> bool:
        return self.window_start_ns <= t <= self.window_end_ns


class StreamClient(asyncio.Protocol):
    """One keep-alive connection sending the same streaming request back to back."""

    def __init__(
        self, request: bytes, stats: LevelStats, deadline_ns: int, finished: asyncio.Future[None]
    ) -> None:
        self.request = request
        self.stats = stats
        self.deadline_ns = deadline_ns
        self.finished = finished
        self.transport: asyncio.Transport | None = None
        self.tail = b""
        self.sent_ns = 0
        self.last_ns: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        self.tail = b""
        self.last_ns = None
        self.sent_ns = time.perf_counter_ns()
        assert self.transport is not None
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        t = time.perf_counter_ns()
        buf = self.tail + data
        k = buf.count(_PAT)
        st = self.stats
        if k:
            inside = st.in_window(t)
            if self.last_ns is None:
                if st.in_window(self.sent_ns):
                    st.ttft_ns.append(t - self.sent_ns)
                k_gaps = k - 1
            else:
                k_gaps = k
                if inside:
                    st.gaps_ns.append(t - self.last_ns)
                k_gaps -= 1
            if inside:
                st.chunks += k
                if k_gaps > 0:
                    st.gaps_ns.extend([0] * k_gaps)
            self.last_ns = t
        if buf.endswith(_END):
            if st.in_window(t):
                st.requests += 1
            if t < self.deadline_ns:
                self._send()
                return
            assert self.transport is not None
            self.transport.close()
            return
        if buf.startswith(b"HTTP/1.") and b" 200 " not in buf[:16]:
            st.errors += 1
            assert self.transport is not None
            self.transport.close()
            return
        self.tail = buf[-_TAIL:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self.finished.set_result(None)


def _request_bytes(host: str, port: int, model: str, prompt: str) -> bytes:
    body = json.dumps(
        {"model": model, "stream": True, "messages": [{"role": "user", "content": prompt}]}
    ).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _prompt(i: int) -> str:
    return f"stream {i}: " + "please write a long answer about caches. " * 4


def _proc_cpu_s(pid: int) -> float:
    fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")


def _core_ticks(cpu: int) -> tuple[int, int]:
    """(busy, total) jiffies of one core, softirq included (loopback TCP work lands there)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            v = [int(x) for x in line.split()[1:]]
            idle = v[3] + v[4]
            return sum(v) - idle, sum(v)
    return 0, 0


def _self_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def run_level(
    host: str, port: int, streams: int, args: argparse.Namespace, server_pid: int
) -> dict[str, float]:
    """Drive one concurrency level and summarise it."""
    loop = asyncio.get_running_loop()
    ramp_s = min(0.5, 0.002 * streams)
    now = time.perf_counter_ns()
    stats = LevelStats()
    stats.window_start_ns = now + int((ramp_s + args.warmup_s) * 1e9)
    stats.window_end_ns = stats.window_start_ns + int(args.duration_s * 1e9)
    futures = []
    for i in range(streams):
        prompt = _prompt(i)
        fut: asyncio.Future[None] = loop.create_future()
        futures.append(fut)
        req = _request_bytes(host, port, "mock-llm", prompt)
        loop.call_later(
            ramp_s * i / streams, _connect, loop, host, port, req, stats, stats.window_end_ns, fut
        )
    await asyncio.sleep((stats.window_start_ns - time.perf_counter_ns()) / 1e9)
    cpu0, self0 = _proc_cpu_s(server_pid), _self_cpu_s()
    core0 = _core_ticks(args.server_cpu)
    await asyncio.sleep((stats.window_end_ns - time.perf_counter_ns()) / 1e9)
    cpu1, self1 = _proc_cpu_s(server_pid), _self_cpu_s()
    core1 = _core_ticks(args.server_cpu)
    await asyncio.wait_for(asyncio.gather(*futures), timeout=args.drain_timeout_s)
    row = _summary(streams, stats, args, (cpu1 - cpu0), (self1 - self0))
    total = core1[1] - core0[1]
    row["server_core_pct"] = 100.0 * (core1[0] - core0[0]) / total if total else float("nan")
    return row


def _connect(
    loop: asyncio.AbstractEventLoop,
    host: str,
    port: int,
    req: bytes,
    stats: LevelStats,
    deadline_ns: int,
    fut: asyncio.Future[None],
) -> None:
    task = loop.create_task(
        loop.create_connection(lambda: StreamClient(req, stats, deadline_ns, fut), host, port)
    )

    def failed(t: asyncio.Task) -> None:
        if t.exception() is not None and not fut.done():
            stats.errors += 1
            fut.set_result(None)

    task.add_done_callback(failed)


def _summary(
    streams: int, st: LevelStats, args: argparse.Namespace, server_cpu_s: float, client_cpu_s: float
) -> dict[str, float]:
    window_s = (st.window_end_ns - st.window_start_ns) / 1e9

    def pct(values: list[int], q: float) -> float:
        if not values:
            return float("nan")
        s = sorted(values)
        return s[min(len(s) - 1, int(q * len(s)))] / 1e6

    return {
        "streams": streams,
        "requests": st.requests,
        "errors": st.errors,
        "chunks_per_s": st.chunks / window_s,
        "target_chunks_per_s": streams * 1000.0 / args.itl_ms,
        "ttft_mean_ms": statistics.fmean(st.ttft_ns) / 1e6 if st.ttft_ns else float("nan"),
        "ttft_p50_ms": pct(st.ttft_ns, 0.5),
        "ttft_p99_ms": pct(st.ttft_ns, 0.99),
        "itl_mean_ms": statistics.fmean(st.gaps_ns) / 1e6 if st.gaps_ns else float("nan"),
        "itl_p50_ms": pct(st.gaps_ns, 0.5),
        "itl_p99_ms": pct(st.gaps_ns, 0.99),
        "server_cpu_pct": 100.0 * server_cpu_s / window_s,
        "client_cpu_pct": 100.0 * client_cpu_s / window_s,
    }


def _pin(pid: int, cpu: int) -> None:
    """Pin every thread of a process to one CPU."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), {cpu})


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", type=int, nargs="+", default=[1, 16, 64, 256, 1024])
    p.add_argument("--itl-ms", type=float, default=20.0)
    p.add_argument("--ttft-ms", type=float, default=20.0)
    p.add_argument("--output-tokens", default="64-128")
    p.add_argument("--duration-s", type=float, default=4.0)
    p.add_argument("--warmup-s", type=float, default=1.0)
    p.add_argument("--drain-timeout-s", type=float, default=30.0)
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--no-pin", action="store_true", help="do not pin the two processes")
    p.add_argument(
        "--port",
        type=int,
        help="drive a mocker already listening on this port "
        "(start it with the flags this script would pass) instead of starting one",
    )
    p.add_argument("--server-pid", type=int, help="with --port: that mocker's pid (for CPU)")
    p.add_argument(
        "--mocker-arg",
        action="append",
        default=[],
        help="extra mocker flag (repeatable), e.g. --mocker-arg=--trace=/tmp/t.jsonl",
    )
    return p.parse_args(argv)


def _print_row(r: dict[str, float], prompt_ttft_ms: float) -> None:
    print(
        f"{int(r['streams']):>7} {int(r['requests']):>8} {int(r['errors']):>6} "
        f"{r['chunks_per_s']:>10.0f} {r['target_chunks_per_s']:>8.0f} "
        f"{r['ttft_mean_ms']:>7.1f} {r['ttft_p50_ms']:>7.1f} {r['ttft_p99_ms']:>7.1f} "
        f"{prompt_ttft_ms:>6.1f} {r['itl_mean_ms']:>7.2f} {r['itl_p50_ms']:>7.2f} "
        f"{r['itl_p99_ms']:>7.2f} {r['server_cpu_pct']:>6.0f}% {r['server_core_pct']:>6.0f}% "
        f"{r['client_cpu_pct']:>6.0f}%",
        flush=True,
    )


async def _main_async(args: argparse.Namespace, port: int, server_pid: int) -> None:
    # The prefix cache is off (each connection repeats its prompt), so the configured TTFT is
    # --ttft-ms plus the whole prompt at the mocker's default 20,000 tokens/s prefill.
    n_prompt = len(tokenize(render_chat([{"role": "user", "content": _prompt(0)}])))
    cfg_ttft = args.ttft_ms + n_prompt / 20000 * 1000
    print(
        f"mocker: --itl-ms {args.itl_ms} --ttft-ms {args.ttft_ms} --output-tokens "
        f"{args.output_tokens}; window {args.duration_s} s per level; pinned: "
        f"{'no' if args.no_pin else f'server cpu {args.server_cpu}, client cpu {args.client_cpu}'}"
    )
    print(
        f"{'streams':>7} {'requests':>8} {'errors':>6} {'chunks/s':>10} {'target':>8} "
        f"{'TTFTavg':>7} {'TTFTp50':>7} {'TTFTp99':>7} {'TTFTcf':>6} {'ITLavg':>7} "
        f"{'ITLp50':>7} {'ITLp99':>7} {'server':>7} {'core':>7} {'client':>7}"
    )
    for streams in args.levels:
        row = await run_level("127.0.0.1", port, streams, args, server_pid)
        _print_row(row, cfg_ttft)
    print(
        f"(configured ITL {args.itl_ms:.2f} ms; TTFTcf = configured TTFT incl. prefill; "
        "server/client = each process's CPU time as a share of one core; core = how busy the "
        "server's core was, softirq included)"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    mocker_args = [
        "--itl-ms",
        str(args.itl_ms),
        "--ttft-ms",
        str(args.ttft_ms),
        "--output-tokens",
        args.output_tokens,
        "--max-num-seqs",
        str(max(args.levels) * 2),
        "--cache-capacity-tokens",
        "0",
        *args.mocker_arg,
    ]
    if args.port is not None:  # a mocker started by hand (same flags, e.g. under a profiler)
        if not args.no_pin:
            _pin(args.server_pid, args.server_cpu)
            os.sched_setaffinity(0, {args.client_cpu})
        asyncio.run(_main_async(args, args.port, args.server_pid))
        return 0
    with MockerProcess(mocker_args) as proc:
        assert proc.proc is not None and proc.port is not None
        if not args.no_pin:
            _pin(proc.proc.pid, args.server_cpu)
            os.sched_setaffinity(0, {args.client_cpu})
        asyncio.run(_main_async(args, proc.port, proc.proc.pid))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
