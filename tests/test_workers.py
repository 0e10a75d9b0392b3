"""--workers, open loops and warm-up against a real mocker: the load the server really got."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drbench.cli import main
from tests.load_runs import ROOT, cli_args, logged, peak_in_flight, run_records, served_chats


def test_two_workers_keep_a_closed_loop_at_c_in_flight_in_total(
    mocker_factory, tmp_path: Path, capsys
) -> None:
    trace = tmp_path / "trace.jsonl"
    mock = mocker_factory(
        "--ttft-ms", "20", "--itl-ms", "2", "--output-tokens", "6", "--trace", str(trace)
    )
    out = tmp_path / "run"
    flags = ["--concurrency", "3", "--workers", "2", "--rounds", "1", "--cold-start", "none"]
    code = main(cli_args(mock, out, *flags))
    assert code == 0, capsys.readouterr().err
    records = run_records(out)
    assert len(records) == 10 and all(r["ok"] for r in records)
    assert {r["worker"] for r in records} == {0, 1}  # both processes sent
    spans = [(e["read_ns"], e["done_ns"]) for e in served_chats(trace, 11)]
    assert len(spans) == 10
    assert peak_in_flight(spans) == 3  # never more than C at the server, and C reached
    # the workers' stamps are on the main process's clock: every send falls inside the round
    summary = json.loads((out / "summary.json").read_text())
    duration_ms = summary["levels"][0]["rounds"][0]["duration_s"] * 1000
    assert all(0 <= r["start_ms"] <= r["end_ms"] <= duration_ms + r["start_ms"] for r in records)
    clients = summary["levels"][0]["rounds"][0]["client"]
    assert [c["worker"] for c in clients] == [None, 0, 1]


def _child_clock(conn) -> None:
    conn.send(time.perf_counter_ns())


def test_perf_counter_is_one_clock_for_every_process_of_the_host() -> None:
    """The contract workers rely on: a child's perf_counter_ns falls between two of ours."""
    assert "CLOCK_MONOTONIC" in time.get_clock_info("perf_counter").implementation
    ctx = multiprocessing.get_context("spawn")
    here, there = ctx.Pipe()
    process = ctx.Process(target=_child_clock, args=(there,))
    before = time.perf_counter_ns()
    process.start()
    theirs = here.recv()
    after = time.perf_counter_ns()
    process.join(10)
    assert before < theirs < after


@pytest.mark.slow
def test_an_open_loop_is_not_limited_by_the_connection_pool(
    mocker_factory, tmp_path: Path, capsys
) -> None:
    """1,000 slow requests at 500 req/s: they are all sent within ~2 s, long before the first
    answer (3 s), so nearly all of them are in flight at once."""
    data = tmp_path / "many.jsonl"
    data.write_text("".join(json.dumps({"text": f"q{i}"}) + "\n" for i in range(1000)))
    mock = mocker_factory("--ttft-ms", "3000", "--itl-ms", "1", "--output-tokens", "2")
    out = tmp_path / "run"
    code = main(cli_args(mock, out, "--request-rate", "500", "--rounds", "1", dataset=data))
    assert code == 0, capsys.readouterr().err
    rnd = json.loads((out / "summary.json").read_text())["levels"][0]["rounds"][0]
    assert rnd["requests"]["succeeded"] == 1000
    assert rnd["load"]["concurrency_peak"] >= 900
    assert rnd["load"]["send_lag_ms"]["p50"] is not None
    records = run_records(out)
    assert all(r["scheduled_ms"] is not None and r["send_lag_ms"] is not None for r in records)


def test_warm_up_requests_count_nowhere_and_do_not_warm_round_1(
    mocker_factory, tmp_path: Path, capsys
) -> None:
    """Even with --cold-start none (prompts sent as they are), the warm-up's own nonce keeps
    round 1 cold on a fresh server."""
    mock = mocker_factory("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "4")
    out = tmp_path / "run"
    code = main(cli_args(mock, out, "--concurrency", "2", "--warmup", "12", "--cold-start", "none"))
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    level = summary["levels"][0]
    assert level["warmup"] == {"requests": 12, "failed": 0}
    r1, r2 = level["rounds"]
    assert r1["requests"]["total"] == r2["requests"]["total"] == 10
    assert r1["cache"]["client_cached_share"] == 0.0
    assert r2["cache"]["client_cached_share"] > 0.5
    records = run_records(out)
    assert len(records) == 20 and {r["round"] for r in records} == {1, 2}
    assert not any(r["prompt_id"].startswith("warmup") for r in records)


def _children(pid: int) -> set[int]:
    """The worker processes of ``pid`` (not multiprocessing's resource tracker)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    out = set()
    for child in map(int, text.split()):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                out.add(child)
        except OSError:
            continue
    return out


@pytest.mark.slow
def test_ctrl_c_with_workers_keeps_every_finished_record_and_stops_them(
    mocker_factory, tmp_path: Path, sigint_reaches_children
) -> None:
    mock = mocker_factory("--ttft-ms", "30", "--itl-ms", "20", "--output-tokens", "20")
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        str(ROOT / "dual_round_benchmarker.py"),
        *cli_args(mock, out, "--concurrency", "2", "--workers", "2"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "requests.jsonl"
    workers: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        workers |= _children(proc.pid)
        if log.exists() and len(log.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    records = run_records(out)
    assert len(records) >= 3 and all(r["worker"] in (0, 1) for r in records)
    assert len(workers) >= 2  # the worker processes were there ...
    time.sleep(0.5)
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    assert not [p for p in alive if "zombie" not in Path(f"/proc/{p}/status").read_text()]


def test_connections_opened_before_a_level_serve_its_first_wave(fast_mocker) -> None:
    """open_connections leaves n idle connections in the pool: a wave of n requests then opens
    none (the handshakes are not paid while the first streams are timed)."""
    import asyncio

    import aiohttp

    from drbench import client
    from drbench.records import Prompt

    endpoint = client.Endpoint.parse(fast_mocker.base_url + "/v1/chat/completions")
    created: list[object] = []

    async def go() -> tuple[int, int, list[int | None]]:
        trace = aiohttp.TraceConfig()

        async def on_create(session, ctx, params) -> None:
            created.append(params)

        trace.on_connection_create_end.append(on_create)
        connector = client.make_connector(limit=0)
        async with aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as session:
            opened = await client.open_connections(session, endpoint, 8)
            before = len(created)
            body = endpoint.body(Prompt(id="p", text="hi"), model="mock-llm", max_tokens=2,
                                 temperature=0.0)  # fmt: skip
            req = client.PreparedRequest.of("p", body)
            raws = await asyncio.gather(
                *(client.send(session, endpoint, req, 30) for _ in range(8))
            )
            return opened, before, [r.status for r in raws]

    opened, before, statuses = asyncio.run(go())
    assert opened == 8 and before == 8
    assert statuses == [200] * 8
    assert len(created) == 8  # the wave reused them all


def _kill_a_worker_once_a_record_is_logged(proc: subprocess.Popen, out: Path) -> None:
    """SIGKILL the first worker process of ``proc`` once both exist and a record is logged."""
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while time.monotonic() < deadline and proc.poll() is None:
        workers = _children(proc.pid) or workers
        if len(workers) >= 2 and logged(out) >= 1:
            break
        time.sleep(0.01)
    assert workers, f"no worker process to kill (exit {proc.poll()})"
    os.kill(min(workers), signal.SIGKILL)


@pytest.mark.slow
def test_a_killed_worker_fails_its_requests_and_the_round_goes_on(
    mocker_factory, tmp_path: Path
) -> None:
    mock = mocker_factory("--ttft-ms", "200", "--itl-ms", "20", "--output-tokens", "10")
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        str(ROOT / "dual_round_benchmarker.py"),
        *cli_args(mock, out, "--concurrency", "4", "--workers", "2", "--rounds", "1"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _kill_a_worker_once_a_record_is_logged(proc, out)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err  # failed requests are data, not a crash
    assert "Traceback" not in err
    records = run_records(out)
    assert len(records) == 10  # every prompt has its record: nothing hung, nothing lost
    lost = [r for r in records if r["error"] and "worker process" in r["error"]]
    assert lost and all(r["error_kind"] == "connection" for r in lost)
    assert all(r["prompt_id"] and r["level"] == "concurrency=4" for r in lost)
    assert any(r["ok"] for r in records)  # the other worker carried the round on


@pytest.mark.slow
def test_a_killed_worker_under_on_lost_worker_stop_ends_the_run_with_exit_8(
    mocker_factory, tmp_path: Path
) -> None:
    mock = mocker_factory("--ttft-ms", "300", "--itl-ms", "30", "--output-tokens", "10")
    out = tmp_path / "run"
    flags = ["--concurrency", "2", "--workers", "2", "--on-lost-worker", "stop"]
    cmd = [sys.executable, str(ROOT / "dual_round_benchmarker.py"), *cli_args(mock, out, *flags)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _kill_a_worker_once_a_record_is_logged(proc, out)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 8, err
    assert "Traceback" not in err
    assert re.search(r"the run stopped: worker process [01] exited", err), err
    summary = json.loads((out / "summary.json").read_text())
    (round1,) = summary["levels"][0]["rounds"]  # round 2 never ran
    assert re.match(r"worker process [01] exited", round1["halted"])
    assert round1["unsent"] > 0 and round1["requests"]["total"] + round1["unsent"] == 10


def test_two_workers_split_one_open_loop_schedule_and_send_on_time(
    mocker_factory, tmp_path: Path, capsys
) -> None:
    """The schedule is the single-process one (seeded by the level), split over both workers;
    handed over early, each request still goes at its due time, never before."""
    from drbench.levels import Level
    from drbench.pacing import pacer_for

    mock = mocker_factory("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "4")
    out = tmp_path / "run"
    code = main(cli_args(mock, out, "--request-rate", "40", "--workers", "2", "--seed", "3"))
    assert code == 0, capsys.readouterr().err
    records = run_records(out)
    expected = pacer_for(Level.open(40.0), 10, burstiness=1.0, seed=3, ramp_up_s=0.0)
    for rnd in (1, 2):
        got = sorted(r["scheduled_ms"] for r in records if r["round"] == rnd)
        want = [expected.due_s(i) * 1000 for i in range(10)]
        assert got == pytest.approx(want, abs=1e-3)
    assert {r["worker"] for r in records} == {0, 1}
    assert all(r["send_lag_ms"] >= 0 for r in records)  # not sent before its time


def test_what_crosses_to_a_worker_pickles_and_comes_back_equal() -> None:
    """The worker's spec, the round context and the prepared requests are plain data (no
    lambdas, sessions or tokenizers: the tokenizer travels as its path)."""
    import pickle

    from drbench.client import Endpoint, PreparedRequest
    from drbench.engine import RoundContext
    from drbench.workers import WorkerSpec

    spec = WorkerSpec(
        1, Endpoint.parse("http://u:p@127.0.0.1:9/v1/completions"), 30.0, 1 << 20, "t"
    )
    ctx = RoundContext("rate=10", 2, 123, 1 << 20)
    req = PreparedRequest.of("p1", {"prompt": "hi", "max_tokens": 3})
    for thing in (spec, ctx, req):
        assert pickle.loads(pickle.dumps(thing)) == thing
    assert pickle.loads(pickle.dumps(spec)).endpoint.headers["Authorization"].startswith("Basic ")


def test_a_request_crosses_without_its_decoded_payload() -> None:
    """The body is what is sent; the payload (the same prompt decoded) stays in the main
    process, which alone builds follow-ups from it: a long prompt crosses once, not twice."""
    import pickle

    from drbench.client import PreparedRequest

    req = PreparedRequest.of("p1", {"prompt": "word " * 20_000, "max_tokens": 7})
    sent = req.for_sender()
    assert (sent.prompt_id, sent.body, sent.prompt_tokens) == (
        req.prompt_id,
        req.body,
        req.prompt_tokens,
    )
    assert sent.max_tokens == 7 and sent.payload == {"max_tokens": 7}
    assert len(pickle.dumps(sent)) < 0.6 * len(pickle.dumps(req))
    assert PreparedRequest.of("p2", {"prompt": "x"}).for_sender().max_tokens is None
