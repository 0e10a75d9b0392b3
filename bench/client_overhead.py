#!/usr/bin/env python3
"""How far the benchmarker's own timing is from the truth, and what the client costs in CPU.

Runs the real CLI (``dual_round_benchmarker.py --cold-start none --rounds 1 --quiet``) in a child
process pinned to one core, against the mocker (``--trace``) pinned to another, and joins the
child's ``requests.jsonl`` with the mocker's trace by response id.  ``--before DIR`` runs every
part for the CLI of another checkout too (``git archive 79df1c0 | tar -x -C DIR``) and prints the two
side by side.

Fidelity (``--ttft-ms 100 --itl-ms 20``, one child per concurrency level). All stamps share
CLOCK_MONOTONIC (the client's ``perf_counter_ns``, the mocker's ``monotonic_ns``):

- ``TTFT client`` = the record's ``ttft_ms`` (client send -> client stamp of the first text event);
- ``TTFT srv``    = mocker's write of the first content event - mocker's read of the request
  (``arrived_ns``, its handler start): the TTFT the server saw, so ``err`` = client - srv is the client's whole error,
  the send path included: (client first-token stamp - client send stamp) - (server first write -
  server read).  The send path's share also holds the server's own delay in reading a request
  (its handler runs after the request's bytes arrived), which no client stamp can remove;
- ``recv err``    = client TTFT - (mocker first write - client ``send_ns``): the receive side
  alone (client stamp - mocker write time of the first token);
- ``send->read``  = mocker finished reading the request body - client ``send_ns``: the request's
  path out (write, kernel, server read), part of the client's TTFT and not of the server's;
- ``ITL client`` / ``ITL sent`` = gaps between successive text events as stamped by the client,
  and between the mocker's writes of the same events; ``error`` = mean difference;
- ``recv delay`` = client stamp - mocker write time over every text event (mean and p99).

Cost (``--ttft-ms 0 --itl-ms 0.001``, the mocker's smallest ITL; long outputs): text events the
client stamped in the middle 60% of the run divided by the child's CPU time over the same window
(``/proc/PID/stat``, sampled every 50 ms), so it counts everything the client does in steady
state: receive, parse, log.  The mocker writes faster than a client reads there, so one read
carries several events and the figure is per event, flattered by that.

CPU per chunk (``--tokens-per-chunk 1 --itl-ms 1``: one token per SSE event per write, as vLLM
writes, at a rate both clients keep up with): CPU-seconds in the same middle window divided by
the reads that carried text events there (distinct arrival stamps: per socket read for the
benchmarker, whose stamps socket_stamps.py takes there, per ``readany`` for the raw reader), for
the benchmarker and for
``bench/raw_reader.py`` (a minimal aiohttp reader: post, ``readany``, split lines,
``json.loads``) against the same mocker; ``events/read`` says how close to one chunk per read
the run was.

Startup: the child's CPU time when it opens its first connection (the first request: ``GET
/v1/models``), taken inside the child by a ``socket.connect`` audit hook that the tiny launcher
below installs before it runs the CLI unchanged with ``runpy``; from every run above and from
``--startup-runs`` runs against a closed port (they stop at that connection).

The machine may be shared: each row says how much CPU other processes used meanwhile
(``other``, 100% = one core), and ``--nice -10`` (as root) keeps them from preempting the mocker
and the client, approximating the dedicated cores the targets assume.

    python bench/client_overhead.py                  # everything, about a minute
    python bench/client_overhead.py --nice -10       # on a shared machine
    python bench/client_overhead.py --levels 64 --skip-cost --keep /tmp/co  # keep the files

Bounded: each child is killed after ``--child-timeout-s``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drbench.mocker.process import MockerProcess  # noqa: E402

CLI = ROOT / "dual_round_benchmarker.py"
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_SAMPLE_S = 0.05
RAW_READER = ROOT / "bench" / "raw_reader.py"
_TTFT_TARGET_MS = {64: 1.0, 256: 1.0}  # mean error with the send path, against the server's TTFT
_ZERO_ITL_MS = 0.001  # the mocker refuses 0; 1 us per token means "as fast as it can write"

# Runs in the child before the CLI: records the CPU time of the first socket.connect (the first
# request's connection), writes it to $DRBENCH_BENCH_CPU_OUT, then runs the CLI as a script would.
_LAUNCHER = r"""
import os, resource, runpy, sys
_out = os.environ.pop("DRBENCH_BENCH_CPU_OUT")
_seen = []
def _hook(event, args):
    if event == "socket.connect" and not _seen:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        _seen.append(1)
        with open(_out, "w") as f:
            f.write(repr(ru.ru_utime + ru.ru_stime))
sys.addaudithook(_hook)
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))  # as when run as a script
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@dataclass
class ChildRun:
    """One benchmarker child: its exit code, output directory and CPU samples."""

    command: list[str]
    out_dir: Path
    returncode: int = 0
    startup_cpu_s: float | None = None
    samples: list[tuple[int, float]] = field(default_factory=list)  # (monotonic_ns, cpu_s)
    other_load: float = float("nan")  # CPU share (1.0 = a core) used by other processes meanwhile

    def records(self) -> list[dict]:
        path = self.out_dir / "requests.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_child(
    args: argparse.Namespace,
    mock: MockerProcess,
    dataset: Path,
    n: int,
    concurrency: int,
    max_tokens: int,
    cli: Path = CLI,
) -> ChildRun:
    """Run the CLI once (one level, one round) on the client core; sample its CPU while it runs."""
    assert mock.base_url is not None and mock.proc is not None
    work = Path(tempfile.mkdtemp(prefix=f"c{concurrency}-", dir=dataset.parent))
    cli_args = [
        str(cli), "--endpoint", f"{mock.base_url}/v1/chat/completions", "--dataset", str(dataset),
        "--num-samples", str(n), "--concurrency", str(concurrency), "--max-tokens",
        str(max_tokens), "--cold-start", "none", "--rounds", "1", "--quiet", "--no-plots",
        "--output-dir", str(work / "out"), *args.cli_arg,
    ]  # fmt: skip
    load = _LoadMeter(mock.proc.pid)
    run = _launch(args, cli_args, work)
    run.other_load = load.other_share()
    if run.returncode != 0:
        err = (work / "stderr").read_text(errors="replace")
        raise SystemExit(f"client_overhead: benchmarker exited {run.returncode}: {err[-600:]}")
    return run


def run_raw_reader(
    args: argparse.Namespace,
    mock: MockerProcess,
    dataset: Path,
    n: int,
    concurrency: int,
    max_tokens: int,
) -> ChildRun:
    """Run bench/raw_reader.py as run_child runs the CLI: same core, launcher and CPU samples."""
    assert mock.base_url is not None and mock.proc is not None
    work = Path(tempfile.mkdtemp(prefix=f"raw{concurrency}-", dir=dataset.parent))
    (work / "out").mkdir()
    cli_args = [
        str(RAW_READER), "--endpoint", f"{mock.base_url}/v1/chat/completions", "--dataset",
        str(dataset), "--num-samples", str(n), "--concurrency", str(concurrency),
        "--max-tokens", str(max_tokens), "--out", str(work / "out" / "requests.jsonl"),
    ]  # fmt: skip
    load = _LoadMeter(mock.proc.pid)
    run = _launch(args, cli_args, work)
    run.other_load = load.other_share()
    if run.returncode != 0:
        err = (work / "stderr").read_text(errors="replace")
        raise SystemExit(f"client_overhead: raw_reader exited {run.returncode}: {err[-600:]}")
    return run


def startup_runs(args: argparse.Namespace, work: Path) -> list[float]:
    """CPU-seconds at the first connection, from CLI runs against a closed port (they stop at
    that first connection with exit 3, so they cost little and nothing else disturbs them)."""
    dataset = work / "startup.jsonl"
    write_dataset(dataset, 10)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = []
    for i in range(args.startup_runs):
        run_dir = work / f"startup-{i}"
        run_dir.mkdir()
        cli_args = [
            str(CLI), "--endpoint", f"http://127.0.0.1:{port}/v1/chat/completions",
            "--dataset", str(dataset), "--quiet", "--output-dir", str(run_dir / "out"),
        ]  # fmt: skip
        run = _launch(args, cli_args, run_dir)
        if run.startup_cpu_s is not None:
            out.append(run.startup_cpu_s)
    return out


def _launch(args: argparse.Namespace, cli_args: list[str], work: Path) -> ChildRun:
    """Start the CLI under the launcher on the client core and wait, sampling its CPU time."""
    cpu_file, err_file = work / "cpu_at_first_connect", work / "stderr"
    run = ChildRun(command=[sys.executable, *cli_args], out_dir=work / "out")
    env = dict(os.environ, DRBENCH_BENCH_CPU_OUT=str(cpu_file))
    cpu = None if args.no_pin else {args.client_cpu}
    with err_file.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, *cli_args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            preexec_fn=lambda: _place(0, cpu, args.nice),
        )
    deadline = time.monotonic() + args.child_timeout_s
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise SystemExit(f"client_overhead: benchmarker child timed out: {run.command}")
        sample = _proc_cpu_s(proc.pid)
        if sample is not None:
            run.samples.append((time.monotonic_ns(), sample))
        time.sleep(_SAMPLE_S)
    run.returncode = proc.returncode
    if cpu_file.exists():
        run.startup_cpu_s = float(cpu_file.read_text())
    return run


class _LoadMeter:
    """CPU the rest of the machine used while a child ran: all busy time minus this script, the
    mocker and the (reaped) child. The machine is shared, so every figure comes with it."""

    def __init__(self, mocker_pid: int) -> None:
        self.mocker_pid = mocker_pid
        self.t0 = time.monotonic()
        self.start = (_system_busy_s(), _proc_cpu_s(mocker_pid) or 0.0, _rusage_s())

    def other_share(self) -> float:
        busy0, mock0, (self0, kids0) = self.start
        busy1, mock1, (self1, kids1) = (
            _system_busy_s(),
            _proc_cpu_s(self.mocker_pid) or mock0,
            _rusage_s(),
        )
        ours = (mock1 - mock0) + (self1 - self0) + (kids1 - kids0)
        return max(0.0, busy1 - busy0 - ours) / (time.monotonic() - self.t0)


def text_stamps(rec: dict) -> list[int]:
    """The client's absolute stamps of a record's text events (send + TTFT, then each gap)."""
    if rec.get("ttft_ms") is None or rec.get("send_ns") is None:
        return []
    t = rec["send_ns"] + rec["ttft_ms"] * 1e6
    out = [round(t)]
    for gap in rec.get("itl_ms") or ():
        t += gap * 1e6
        out.append(round(t))
    return out


@dataclass
class Fidelity:
    """Joined client/mocker figures of one level (all in ms)."""

    concurrency: int
    requests: int = 0
    unmatched: int = 0
    ttft_client: list[float] = field(default_factory=list)
    ttft_sent: list[float] = field(default_factory=list)
    ttft_server: list[float] = field(default_factory=list)
    send_read: list[float] = field(default_factory=list)
    itl_client: list[float] = field(default_factory=list)
    itl_sent: list[float] = field(default_factory=list)
    recv_delay: list[float] = field(default_factory=list)
    other_load: float = float("nan")


def join(concurrency: int, records: list[dict], trace: dict[str, dict]) -> Fidelity:
    """Pair each successful record with its trace line; events are matched by position."""
    fid = Fidelity(concurrency)
    for rec in records:
        entry = trace.get(rec.get("response_id") or "")
        stamps = text_stamps(rec)
        if not rec.get("ok") or entry is None or len(stamps) != len(entry["content_ns"]):
            fid.unmatched += 1
            continue
        sent = entry["content_ns"]
        send_ns = rec["send_ns"]
        fid.requests += 1
        fid.ttft_client.append(rec["ttft_ms"])
        fid.ttft_sent.append((sent[0] - send_ns) / 1e6)
        arrived = entry.get("arrived_ns") or entry["read_ns"]  # older mockers: the body read
        fid.ttft_server.append((sent[0] - arrived) / 1e6)
        fid.send_read.append((arrived - send_ns) / 1e6)
        fid.itl_client.extend(rec["itl_ms"])
        fid.itl_sent.extend((b - a) / 1e6 for a, b in pairwise(sent))
        fid.recv_delay.extend((c - s) / 1e6 for c, s in zip(stamps, sent, strict=True))
    return fid


@dataclass
class Window:
    """The middle of a run: its text events, the reads that carried them, CPU and wall time."""

    events: int = 0
    reads: int = 0
    cpu_s: float = float("nan")
    wall_s: float = 0.0

    @property
    def events_per_cpu_s(self) -> float:
        return self.events / self.cpu_s if self.cpu_s else float("inf")

    @property
    def us_per_read(self) -> float:
        return 1e6 * self.cpu_s / self.reads if self.reads else float("nan")

    @property
    def share(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s else float("nan")


def steady_window(run: ChildRun, trim: float = 0.2) -> Window:
    """Events, reads (distinct stamps of a request's text events) and CPU over the middle of the
    run (``trim`` cut from each end of the span of text-event stamps)."""
    per_request = [text_stamps(r) for r in run.records() if r.get("send_ns") is not None]
    stamps = sorted(t for rs in per_request for t in rs)
    if not stamps or len(run.samples) < 3:
        return Window()
    first, last = stamps[0], stamps[-1]
    lo, hi = first + (last - first) * trim, last - (last - first) * trim
    inside = [s for s in run.samples if lo <= s[0] <= hi]
    if len(inside) < 2:
        return Window()
    (t0, c0), (t1, c1) = inside[0], inside[-1]
    events = sum(1 for t in stamps if t0 <= t < t1)
    reads = sum(len({t for t in rs if t0 <= t < t1}) for rs in per_request)
    return Window(events, reads, c1 - c0, (t1 - t0) / 1e9)


def write_dataset(path: Path, n: int) -> None:
    """N short distinct chat prompts (about 60 tokens each)."""
    with path.open("w") as f:
        for i in range(n):
            text = f"Request {i}: " + "explain how a prefix cache speeds up serving. " * 6
            f.write(json.dumps({"id": f"p{i}", "text": text}) + "\n")


def read_trace(path: Path) -> dict[str, dict]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            out[entry["id"]] = entry
    return out


@dataclass
class Client:
    """One benchmarker under test: a label and its CLI (this checkout's, or ``--before``'s)."""

    label: str
    cli: Path


def fidelity_part(
    args: argparse.Namespace, work: Path, clients: list[Client]
) -> tuple[dict[str, list[Fidelity]], list[ChildRun]]:
    trace = work / "trace.jsonl"
    biggest = max(_prompts_for(c, args) for c in args.levels)
    dataset = work / "prompts.jsonl"
    write_dataset(dataset, biggest)
    mocker_args = [
        "--ttft-ms", str(args.ttft_ms), "--itl-ms", str(args.itl_ms), "--output-tokens",
        str(args.output_tokens), "--max-num-seqs", str(2 * max(args.levels)), "--trace", str(trace),
    ]  # fmt: skip
    runs: dict[str, list[ChildRun]] = {c.label: [] for c in clients}
    with MockerProcess(mocker_args) as mock:
        _pin_mocker(mock, args)
        assert mock.base_url is not None
        for c in args.levels:
            n = _prompts_for(c, args)
            for client in clients:  # interleaved, so a change of machine load hits both
                run = run_child(args, mock, dataset, n, c, args.output_tokens, client.cli)
                runs[client.label].append(run)
    sent = read_trace(trace)  # complete: the mocker flushes its trace when it stops
    rows: dict[str, list[Fidelity]] = {}
    for client in clients:
        rows[client.label] = []
        for c, run in zip(args.levels, runs[client.label], strict=True):
            rows[client.label].append(join(c, run.records(), sent))
            rows[client.label][-1].other_load = run.other_load
    return rows, [r for rs in runs.values() for r in rs]


def cost_part(args: argparse.Namespace, work: Path, cli: Path) -> ChildRun:
    dataset = work / "prompts.jsonl"
    write_dataset(dataset, args.cost_prompts)
    mocker_args = [
        "--ttft-ms", "0", "--itl-ms", str(_ZERO_ITL_MS), "--output-tokens", str(args.cost_tokens),
        "--max-num-seqs", str(2 * args.cost_concurrency),
    ]  # fmt: skip
    with MockerProcess(mocker_args) as mock:
        _pin_mocker(mock, args)
        assert mock.base_url is not None
        return run_child(
            args, mock, dataset, args.cost_prompts, args.cost_concurrency, args.cost_tokens, cli
        )


def chunk_part(args: argparse.Namespace, work: Path, clients: list[Client]) -> dict[str, ChildRun]:
    """The raw reader and the benchmarker(s), one after the other, on one one-chunk-per-write
    mocker (``--tokens-per-chunk 1``: every token its own SSE event and its own write)."""
    dataset = work / "chunk-prompts.jsonl"
    write_dataset(dataset, args.chunk_prompts)
    mocker_args = [
        "--ttft-ms", "0", "--itl-ms", str(args.chunk_itl_ms), "--tokens-per-chunk", "1",
        "--output-tokens", str(args.chunk_tokens), "--max-num-seqs",
        str(2 * args.chunk_concurrency),
    ]  # fmt: skip
    shape = (args.chunk_prompts, args.chunk_concurrency, args.chunk_tokens)
    out: dict[str, ChildRun] = {}
    with MockerProcess(mocker_args) as mock:
        _pin_mocker(mock, args)
        out["raw"] = run_raw_reader(args, mock, dataset, *shape)
        for client in clients:
            out[client.label] = run_child(args, mock, dataset, *shape, client.cli)
    return out


def print_fidelity(rows: list[Fidelity], args: argparse.Namespace, label: str) -> None:
    print(
        f"Fidelity ({label}): mocker --ttft-ms {args.ttft_ms:g} --itl-ms {args.itl_ms:g} "
        f"--output-tokens {args.output_tokens}, {args.prompts_per_slot} wave(s) of C requests "
        "started together; ms; cli = the benchmarker's record, srv = the mocker's own TTFT "
        "(first write - request read), err = cli - srv (send path included), recv err = the "
        "receive side alone, sent = the mocker's write times; other = CPU the rest of the "
        "machine used meanwhile (100% = one core)"
    )
    print(
        f"{'C':>5} {'reqs':>5} | {'TTFT cli':>9} {'srv':>8} {'err':>7} {'recv err':>8} | "
        f"{'p99 cli':>8} {'srv':>8} | {'send->read':>10} {'p99':>7} | {'ITL cli':>7} "
        f"{'sent':>7} {'err':>8} | {'p99 cli':>7} {'sent':>7} | {'recv delay':>10} {'p99':>7} | "
        f"{'other':>5}"
    )
    for f in rows:
        print(
            f"{f.concurrency:>5} {f.requests:>5} | {_mean(f.ttft_client):9.2f} "
            f"{_mean(f.ttft_server):8.2f} {_err(f.ttft_client, f.ttft_server):+7.3f} "
            f"{_err(f.ttft_client, f.ttft_sent):+8.3f} | "
            f"{_pct(f.ttft_client, 99):8.2f} {_pct(f.ttft_server, 99):8.2f} | "
            f"{_mean(f.send_read):10.2f} {_pct(f.send_read, 99):7.2f} | "
            f"{_mean(f.itl_client):7.3f} {_mean(f.itl_sent):7.3f} "
            f"{_err(f.itl_client, f.itl_sent):+8.4f} | {_pct(f.itl_client, 99):7.2f} "
            f"{_pct(f.itl_sent, 99):7.2f} | {_mean(f.recv_delay):10.3f} "
            f"{_pct(f.recv_delay, 99):7.2f} | {100 * f.other_load:4.0f}%"
            + (f"  ({f.unmatched} requests unmatched)" if f.unmatched else "")
        )
    for f in rows:
        if f.concurrency in _TTFT_TARGET_MS:
            err, bound = _err(f.ttft_client, f.ttft_server), _TTFT_TARGET_MS[f.concurrency]
            verdict = _verdict(err < bound)
            print(
                f"target: mean TTFT error (send path included) < {bound:g} ms at "
                f"C={f.concurrency}: {verdict}"
            )
    worst = max(abs(_err(f.itl_client, f.itl_sent)) for f in rows)
    print(f"target: mean ITL error < 0.1 ms at every level: {_verdict(worst < 0.1)}")


def print_cost(run: ChildRun, args: argparse.Namespace, label: str) -> None:
    w = steady_window(run)
    print(
        f"\nCost ({label}): mocker --ttft-ms 0 --itl-ms {_ZERO_ITL_MS:g} --output-tokens "
        f"{args.cost_tokens}; {args.cost_prompts} prompts at concurrency {args.cost_concurrency}"
    )
    print(
        f"steady state: {w.events} text events in {w.reads} reads, {w.wall_s:.2f} s at "
        f"{100 * w.share:.0f}% of a core: {w.events_per_cpu_s:,.0f} events per client "
        f"CPU-second (target >= 60,000: {_verdict(w.events_per_cpu_s >= 60000)}); other "
        f"processes used {100 * run.other_load:.0f}% of a core"
    )


def print_chunks(runs: dict[str, ChildRun], args: argparse.Namespace) -> None:
    print(
        f"\nCPU per chunk: mocker --ttft-ms 0 --itl-ms {args.chunk_itl_ms:g} --tokens-per-chunk 1 "
        f"--output-tokens {args.chunk_tokens}; {args.chunk_prompts} prompts at concurrency "
        f"{args.chunk_concurrency}; middle 60% of each run; raw = bench/raw_reader.py"
    )
    print(
        f"{'client':>10} | {'events':>7} {'reads':>7} {'ev/read':>7} | {'CPU s':>6} {'core':>5} | "
        f"{'us/read':>8} {'x raw':>6} {'us/event':>8} | {'other':>5}"
    )
    raw_us = steady_window(runs["raw"]).us_per_read
    for label, run in runs.items():
        w = steady_window(run)
        ratio = w.us_per_read / raw_us if raw_us == raw_us else float("nan")
        print(
            f"{label:>10} | {w.events:>7} {w.reads:>7} {w.events / max(w.reads, 1):7.2f} | "
            f"{w.cpu_s:6.2f} {100 * w.share:4.0f}% | {w.us_per_read:8.1f} {ratio:6.2f} "
            f"{1e6 * w.cpu_s / max(w.events, 1):8.1f} | "
            f"{100 * run.other_load:4.0f}%"
        )
    ours = steady_window(runs["after"]).us_per_read
    print(f"target: CPU per chunk at or below the raw reader's: {_verdict(ours <= raw_us)}")


def print_summary(
    fid: dict[str, list[Fidelity]], chunks: dict[str, ChildRun], labels: list[str]
) -> None:
    """Before and after, side by side: the figures the targets are about."""
    print("\nSummary (" + " -> ".join(labels) + ")")
    if fid:
        for i, c in enumerate(fid[labels[0]]):
            cells = [
                f"{_err(fid[lb][i].ttft_client, fid[lb][i].ttft_server):+.3f}" for lb in labels
            ]
            print(
                f"  mean TTFT error, send path included, C={c.concurrency}: " + " -> ".join(cells)
            )
    if chunks:
        raw = steady_window(chunks["raw"]).us_per_read
        cells = [
            f"{steady_window(chunks[lb]).us_per_read / raw:.2f}x" for lb in labels if lb in chunks
        ]
        print(f"  CPU per chunk / raw reader's ({raw:.1f} us): " + " -> ".join(cells))


def print_startup(closed_port: list[float], real: list[float]) -> None:
    print("\nStartup: the CLI's CPU-seconds at its first connection (the first request)")
    for label, xs in (("runs against a closed port", closed_port), ("the runs above", real)):
        if xs:
            print(
                f"  {label}: median {statistics.median(xs):.3f} s, min {min(xs):.3f}, "
                f"max {max(xs):.3f} over {len(xs)} runs"
            )
    every = closed_port + real
    if every:
        print(f"target: under 0.5 s: {_verdict(statistics.median(every) < 0.5)} (median)")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if not args.no_pin:
        os.sched_setaffinity(0, {args.mocker_cpu})  # keep this script off the client's core
    clients = [Client("after", CLI)]
    if args.before:
        cli = Path(args.before).resolve() / CLI.name
        if not cli.exists():
            raise SystemExit(f"client_overhead: --before {args.before}: no {CLI.name} there")
        clients.insert(0, Client("before", cli))
    labels = [c.label for c in clients]
    print(f"machine load before the runs: {os.getloadavg()[0]:.2f} (1-min load average)")
    with tempfile.TemporaryDirectory(prefix="drbench-overhead-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        runs: list[ChildRun] = []
        fid: dict[str, list[Fidelity]] = {}
        chunks: dict[str, ChildRun] = {}
        if not args.skip_fidelity:
            fid, runs = fidelity_part(args, work, clients)
            for label in labels:
                print_fidelity(fid[label], args, label)
                print()
        if not args.skip_chunks:
            chunks = chunk_part(args, work, clients)
            print_chunks(chunks, args)
            runs.extend(r for k, r in chunks.items() if k != "raw")
        if not args.skip_cost:
            for client in clients:
                runs.append(cost_part(args, work, client.cli))
                print_cost(runs[-1], args, client.label)
        if len(clients) > 1:
            print_summary(fid, chunks, labels)
        real = [r.startup_cpu_s for r in runs if r.startup_cpu_s is not None]
        print_startup(startup_runs(args, work), real)
        if runs:
            print("\nlast benchmarker command (run under the launcher, pinned):")
            print(" ".join(runs[-1].command))
    print(f"machine load after the runs: {os.getloadavg()[0]:.2f} (1-min load average)")
    print(
        "bench: python "
        + " ".join([str(Path(__file__).relative_to(ROOT)), *(argv or sys.argv[1:])])
    )
    return 0


def _prompts_for(concurrency: int, args: argparse.Namespace) -> int:
    return max(args.min_prompts, args.prompts_per_slot * concurrency)


def _pin_mocker(mock: MockerProcess, args: argparse.Namespace) -> None:
    if mock.proc is None:
        return
    cpu = None if args.no_pin else {args.mocker_cpu}
    for tid in os.listdir(f"/proc/{mock.proc.pid}/task"):
        _place(int(tid), cpu, args.nice)


def _place(tid: int, cpu: set[int] | None, nice: int) -> None:
    """Pin a thread (0: this one) to ``cpu`` and give it the niceness ``nice``."""
    if cpu:
        os.sched_setaffinity(tid, cpu)
    if nice:
        os.setpriority(os.PRIO_PROCESS, tid, nice)


def _proc_cpu_s(pid: int) -> float | None:
    try:
        fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields_[11]) + int(fields_[12])) / _CLK_TCK


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _system_busy_s() -> float:
    """Busy CPU-seconds of the whole machine since boot (/proc/stat, all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / _CLK_TCK


def _rusage_s() -> tuple[float, float]:
    """(this process, its reaped children) CPU-seconds."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def _mean(xs: list[float]) -> float:
    return statistics.fmean(xs) if xs else float("nan")


def _err(client: list[float], sent: list[float]) -> float:
    return _mean(client) - _mean(sent)


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(q / 100 * len(s)))]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", type=int, nargs="+", default=[1, 64, 256])
    p.add_argument("--ttft-ms", type=float, default=100.0)
    p.add_argument("--itl-ms", type=float, default=20.0)
    p.add_argument("--output-tokens", type=int, default=32)
    p.add_argument(
        "--prompts-per-slot", type=int, default=1, help="prompts = this x concurrency (waves)"
    )
    p.add_argument("--min-prompts", type=int, default=8)
    p.add_argument("--cost-tokens", type=int, default=12000)
    p.add_argument("--cost-prompts", type=int, default=32)
    p.add_argument("--cost-concurrency", type=int, default=8)
    p.add_argument("--chunk-itl-ms", type=float, default=1.0)
    p.add_argument("--chunk-tokens", type=int, default=500)
    p.add_argument("--chunk-prompts", type=int, default=96)
    p.add_argument("--chunk-concurrency", type=int, default=16)
    p.add_argument(
        "--before",
        metavar="DIR",
        help="also run the CLI of this checkout (e.g. git archive 79df1c0 | tar -x -C DIR) and compare",
    )
    p.add_argument("--startup-runs", type=int, default=5, help="closed-port runs for startup CPU")
    p.add_argument("--mocker-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--no-pin", action="store_true", help="do not pin the processes")
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness of the mocker and the client (e.g. -10 on a shared machine, needs root)",
    )
    p.add_argument(
        "--cli-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra benchmarker argument, repeatable (e.g. --cli-arg=--workers --cli-arg=2)",
    )
    p.add_argument("--skip-fidelity", action="store_true")
    p.add_argument("--skip-cost", action="store_true")
    p.add_argument("--skip-chunks", action="store_true")
    p.add_argument("--keep", metavar="DIR", help="keep datasets, traces and results in DIR")
    p.add_argument("--child-timeout-s", type=float, default=120.0)
    return p.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(main())
