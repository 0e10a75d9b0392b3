"""--executor ray against a real mocker, on a local Ray cluster this module starts (2 CPUs,
127.0.0.1): the load the server really got, the schedule, the round barrier, lost actors.

Every test of the module is in one xdist group (tests/conftest.py makes ``-n`` mean ``--dist
loadgroup``), so one xdist worker starts one cluster for all of them.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drbench.cli import main
from tests.load_runs import (
    DATASET,
    ROOT,
    cli_args,
    logged,
    peak_in_flight,
    run_records,
    served_chats,
)

ray = pytest.importorskip(
    "ray", reason="Ray is not installed: pip install '.[ray]' (.ci/run installs it)"
)

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster() -> str:
    """The address of a 2-CPU Ray cluster on 127.0.0.1, joined by this process."""
    from drbench.ray_executor import runtime_env

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        namespace="drbench-tests",
        runtime_env=runtime_env(),
        _node_ip_address="127.0.0.1",
        object_store_memory=100 * 1024 * 1024,
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def test_two_actors_keep_a_closed_loop_at_c_in_flight_in_total_and_rounds_apart(
    cluster, mocker_factory, tmp_path: Path, capsys
) -> None:
    trace = tmp_path / "trace.jsonl"
    mock = mocker_factory(
        "--ttft-ms", "30", "--itl-ms", "3", "--output-tokens", "8", "--trace", str(trace)
    )
    out = tmp_path / "run"
    flags = ["--concurrency", "3", "--executor", "ray", "--workers", "2", "--rounds", "2"]
    code = main(cli_args(mock, out, *flags))
    assert code == 0, capsys.readouterr().err
    records = run_records(out)
    assert len(records) == 20 and all(r["ok"] for r in records)
    assert {r["worker"] for r in records} == {0, 1}  # both actors sent
    rounds = {r["response_id"]: r["round"] for r in records}
    by_round: dict[int, list[tuple[int, int]]] = {1: [], 2: []}
    for e in served_chats(trace, 21):  # the preflight, then 20
        if e.get("id") in rounds:
            by_round[rounds[e["id"]]].append((e["read_ns"], e["done_ns"]))
    assert len(by_round[1]) == len(by_round[2]) == 10
    for spans in by_round.values():  # never more than C at the server, and C reached
        assert peak_in_flight(spans) == 3
    # the barrier: every request of round 2 reached the server after round 1's last one ended
    assert min(s for s, _ in by_round[2]) > max(d for _, d in by_round[1])
    summary = json.loads((out / "summary.json").read_text())
    executor = summary["run"]["executor"]
    assert executor["kind"] == "ray" and executor["hosts"] == 1
    assert [a["index"] for a in executor["actors"]] == [0, 1]
    assert all(a["shared_clock"] and a["clock_offset_ms"] == 0 for a in executor["actors"])
    clients = summary["levels"][0]["rounds"][0]["client"]
    assert [c["worker"] for c in clients] == [None, 0, 1]
    assert clients[0]["host"] is None and clients[1]["host"] == clients[2]["host"] != ""
    duration_ms = summary["levels"][0]["rounds"][0]["duration_s"] * 1000
    assert all(0 <= r["start_ms"] <= duration_ms for r in records if r["round"] == 1)


def test_an_open_loop_keeps_the_single_process_schedule_split_over_the_actors(
    cluster, mocker_factory, tmp_path: Path, capsys
) -> None:
    mock = mocker_factory("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "4")
    runs = {}
    for name, extra in (("one", []), ("ray", ["--executor", "ray", "--workers", "2"])):
        out = tmp_path / name
        flags = ["--request-rate", "25", "--seed", "5", "--rounds", "1", *extra]
        assert main(cli_args(mock, out, *flags)) == 0, capsys.readouterr().err
        runs[name] = {r["prompt_id"]: r for r in run_records(out)}
    assert runs["one"].keys() == runs["ray"].keys()
    for pid, rec in runs["ray"].items():  # the same due time for every prompt
        assert rec["scheduled_ms"] == pytest.approx(runs["one"][pid]["scheduled_ms"], abs=1e-3)
    ray_records = list(runs["ray"].values())
    assert {r["worker"] for r in ray_records} == {0, 1}
    assert all(r["send_lag_ms"] >= 0 for r in ray_records)  # never before its time
    # handed over 50 ms early, a request goes at its due time (generous: a shared 2-core box)
    lags = sorted(r["send_lag_ms"] for r in ray_records)
    assert lags[len(lags) // 2] < 25


def test_results_equal_two_worker_processes_within_noise(
    cluster, mocker_factory, tmp_path: Path, capsys
) -> None:
    mock = mocker_factory("--ttft-ms", "60", "--itl-ms", "4", "--output-tokens", "12")
    summaries = {}
    for name, extra in (("workers", []), ("ray", ["--executor", "ray"])):
        out = tmp_path / name
        flags = ["--concurrency", "4", "--workers", "2", *extra]
        assert main(cli_args(mock, out, *flags)) == 0, capsys.readouterr().err
        summaries[name] = json.loads((out / "summary.json").read_text())["levels"][0]["rounds"]
    for a, b in zip(summaries["workers"], summaries["ray"], strict=True):
        assert a["requests"]["succeeded"] == b["requests"]["succeeded"] == 10
        assert a["cache"]["client_cached_share"] == b["cache"]["client_cached_share"]
        assert a["output_tokens_avg"] == b["output_tokens_avg"] == 12
        # within noise on a shared 2-core machine: the mocker serves 60 ms, then 4 ms a token;
        # TPOT, not the ITL median: a starved reader gets several tokens in one read (gaps of 0)
        for metric, slack in (("ttft_ms", 30.0), ("tpot_ms", 3.0)):
            got_a, got_b = a["metrics"][metric]["p50"], b["metrics"][metric]["p50"]
            assert abs(got_a - got_b) < max(slack, 0.5 * got_a), (metric, got_a, got_b)


def test_measured_clock_offsets_stay_within_their_error_bound(
    cluster, mocker_factory, tmp_path: Path, capsys, monkeypatch
) -> None:
    """Told the actors run under another kernel, the pool measures their offsets; on this one
    machine the truth is 0, so each estimate must be within its own error bound of 0, and
    the records must still fall inside the driver's round."""
    import drbench.ray_executor as ray_executor

    monkeypatch.setattr(ray_executor, "boot_id", lambda: "another-kernel")
    mock = mocker_factory("--ttft-ms", "20", "--itl-ms", "2", "--output-tokens", "6")
    out = tmp_path / "run"
    flags = ["--concurrency", "2", "--executor", "ray", "--workers", "2", "--rounds", "2"]
    assert main(cli_args(mock, out, *flags)) == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    actors = summary["run"]["executor"]["actors"]
    assert actors and not any(a["shared_clock"] for a in actors)
    for a in actors:
        assert a["clock_error_ms"] > 0
        assert abs(a["clock_offset_ms"]) <= a["clock_error_ms"] + 0.01, a
    for rnd in summary["levels"][0]["rounds"]:
        for c in rnd["client"][1:]:  # re-measured after every round
            assert abs(c["clock_offset_ms"]) <= c["clock_error_ms"] + 0.01, c
        duration_ms = rnd["duration_s"] * 1000
        mine = [r for r in run_records(out) if r["round"] == rnd["round"]]
        slack = max(a["clock_error_ms"] for a in actors)
        assert all(-slack <= r["start_ms"] <= duration_ms + slack for r in mine)


def _kill_an_actor_once_requests_run(proc: subprocess.Popen, out: Path) -> str:
    """Wait until the run's actors exist and a record is logged, then kill one; its name."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        names = sorted(
            (a["name"], a["namespace"])
            for a in ray.util.list_named_actors(all_namespaces=True)
            if a["name"].startswith("drbench-") and a["name"].endswith("-worker-0")
        )
        if names and logged(out) >= 1:
            name, namespace = names[0]
            ray.kill(ray.get_actor(name, namespace=namespace))
            return name
        time.sleep(0.05)
    raise AssertionError(f"no actor to kill (exit {proc.poll()})")


def _run_cli(cluster: str, mock, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        str(ROOT / "dual_round_benchmarker.py"),
        *cli_args(mock, out, "--executor", "ray", "--workers", "2", "--ray-address", cluster),
        *extra,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_killed_actor_fails_its_requests_and_the_run_goes_on(
    cluster, mocker_factory, tmp_path: Path
) -> None:
    mock = mocker_factory("--ttft-ms", "300", "--itl-ms", "30", "--output-tokens", "10")
    out = tmp_path / "run"
    proc = _run_cli(cluster, mock, out, "--concurrency", "4", "--rounds", "2")
    _kill_an_actor_once_requests_run(proc, out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err  # failed requests are data, not a crash
    assert "Traceback" not in err
    records = run_records(out)
    assert len(records) == 20  # every prompt of both rounds has its record: nothing hung
    lost = [r for r in records if r["error"] and "Ray actor 0" in r["error"]]
    assert lost and all(r["error_kind"] == "connection" and r["round"] == 1 for r in lost)
    assert all(r["ok"] for r in records if r["round"] == 2)  # actor 1 carried round 2
    assert {r["worker"] for r in records if r["round"] == 2} == {1}


def test_a_killed_actor_under_on_lost_worker_stop_ends_the_run_with_exit_8(
    cluster, mocker_factory, tmp_path: Path
) -> None:
    mock = mocker_factory("--ttft-ms", "300", "--itl-ms", "30", "--output-tokens", "10")
    out = tmp_path / "run"
    proc = _run_cli(cluster, mock, out, "--concurrency", "2", "--on-lost-worker", "stop")
    _kill_an_actor_once_requests_run(proc, out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 8, err
    assert "Traceback" not in err
    assert "the run stopped: Ray actor 0 on host" in err and "--on-lost-worker stop" in err
    summary = json.loads((out / "summary.json").read_text())
    (round1,) = summary["levels"][0]["rounds"]  # round 2 never ran
    assert round1["halted"].startswith("Ray actor 0 on host")
    assert round1["unsent"] > 0  # nothing more was released once the actor was lost
    assert round1["requests"]["total"] + round1["unsent"] == 10


def test_joining_by_address_and_asking_for_more_hosts_than_the_cluster_has(
    cluster, mocker_factory, tmp_path: Path
) -> None:
    mock = mocker_factory("--ttft-ms", "5", "--output-tokens", "4")
    proc = _run_cli(cluster, mock, tmp_path / "big", "--ray-hosts", "3")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err.strip().splitlines()[-1] == (
        "drbench: --ray-hosts 3: the Ray cluster has 1 live host(s) with 2 CPU(s) free for "
        "--workers 2: give fewer hosts or fewer workers per host"
    )


def _actor_pids() -> list[int]:
    """The processes of this machine's drbench actors (Ray names them after the class)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if proc.name.isdigit() and cmdline.startswith(b"ray::RayWorker"):
            pids.append(int(proc.name))
    return sorted(pids)


def test_a_hung_actor_is_given_up_after_the_timeout_and_the_round_goes_on(
    cluster, mocker_factory, tmp_path: Path, capsys, monkeypatch
) -> None:
    """An actor that stops answering (SIGSTOP: alive to Ray, silent to us) must not hang the
    run: its requests fail once --timeout and the reply grace have passed, and the other
    actor carries the round."""
    import os
    import signal
    import threading

    from drbench.ray_executor import RayPool

    monkeypatch.setattr(RayPool, "reply_grace_s", 2.0)
    mock = mocker_factory("--ttft-ms", "300", "--itl-ms", "30", "--output-tokens", "10")
    out = tmp_path / "run"
    stopped: list[int] = []

    def stop_one() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pids = _actor_pids()
            if len(pids) == 2 and logged(out) >= 1:
                os.kill(pids[0], signal.SIGSTOP)
                stopped.append(pids[0])
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=stop_one, daemon=True)
    watcher.start()
    flags = ["--concurrency", "4", "--executor", "ray", "--workers", "2", "--rounds", "1"]
    t0 = time.monotonic()
    try:
        code = main(cli_args(mock, out, *flags, "--timeout", "4"))
    finally:
        watcher.join(5)
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    took = time.monotonic() - t0
    assert stopped, "no actor was stopped"
    assert code == 0, capsys.readouterr().err
    assert took < 60, took
    records = run_records(out)
    assert len(records) == 10
    silent = [r for r in records if r["error"] and "sent no reply in 6.05 s" in r["error"]]
    assert silent and all(r["error_kind"] == "connection" for r in silent)
    assert sum(r["ok"] for r in records) == 10 - len(silent)
    (index,) = {r["worker"] for r in silent}  # the one actor that went silent
    assert f"Ray actor {index} on host" in silent[0]["error"]
    assert all(r["ok"] for r in records if r["worker"] != index)


def test_ctrl_c_keeps_every_finished_record_and_removes_the_actors(
    cluster, mocker_factory, tmp_path: Path, sigint_reaches_children
) -> None:
    import signal

    mock = mocker_factory("--ttft-ms", "200", "--itl-ms", "20", "--output-tokens", "10")
    out = tmp_path / "run"
    proc = _run_cli(cluster, mock, out, "--concurrency", "2", "--rounds", "2")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if logged(out) >= 12:  # in round 2
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    records = run_records(out)
    assert 12 <= len(records) <= 20 and all(r["ok"] for r in records)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["interrupted"] and len(summary["levels"][0]["rounds"]) == 1
    for _ in range(100):  # the run removed its actors on the way out
        if not _actor_pids():
            break
        time.sleep(0.1)
    assert not _actor_pids()
    named = ray.util.list_named_actors(all_namespaces=True)
    assert not [a for a in named if a["name"].startswith("drbench-")]


def test_an_address_where_nothing_listens_is_one_line_before_anything_is_sent(
    tmp_path: Path, capsys
) -> None:
    """Not ray.init's 20 s of retries a line a second: a closed port is refused at once, and
    a credential in a ray:// address is not echoed."""
    import socket

    with socket.socket() as s:  # a port that was free a moment ago, and now is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "run"
    for address, shown in (
        (f"127.0.0.1:{port}", f"127.0.0.1:{port}"),
        (f"ray://user:s3cret@127.0.0.1:{port}", f"ray://***@127.0.0.1:{port}"),
    ):
        argv = [
            "--endpoint", "http://127.0.0.1:9/v1/chat/completions", "--dataset", str(DATASET),
            "--executor", "ray", "--ray-address", address, "--output-dir", str(out),
        ]  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"drbench: --ray-address {shown}: nothing answers at ")
        assert "s3cret" not in err and len(err.splitlines()) == 1
        assert not out.exists()
