"""drbench.selfcheck: loop lag and CPU of a real loop, the record's round trip, the warning line."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from drbench.selfcheck import (
    CPU_LIMIT_PERCENT,
    LAG_P99_LIMIT_MS,
    MIN_SAMPLES,
    LoopSampler,
    ProcessLoad,
    _LagBuffer,
    _quantile,
    client_limit_warning,
)


def _load(worker: int | None = 0, *, cpu_s: float = 0.2, lag_p99_ms: float = 1.0) -> ProcessLoad:
    return ProcessLoad(
        worker=worker,
        duration_s=1.0,
        cpu_s=cpu_s,
        loop_lag_p50_ms=0.5,
        loop_lag_p99_ms=lag_p99_ms,
        loop_lag_max_ms=lag_p99_ms + 1.0,
        samples=100,
    )


# -- the sampler on a real loop ------------------------------------------------------------------


def test_a_blocked_loop_shows_its_lag() -> None:
    async def blocked() -> ProcessLoad:
        sampler = LoopSampler(worker=1)
        sampler.start()
        for _ in range(4):
            await asyncio.sleep(0.02)
            time.sleep(0.05)  # the loop cannot run the sampler's timer meanwhile
        return sampler.stop()

    load = asyncio.run(blocked())
    assert load.worker == 1
    assert load.loop_lag_max_ms is not None and load.loop_lag_max_ms >= 30
    assert load.loop_lag_p99_ms is not None and load.loop_lag_p99_ms >= 30
    assert load.samples >= 4


def test_an_idle_loop_shows_little_lag_and_little_cpu() -> None:
    async def idle() -> ProcessLoad:
        sampler = LoopSampler(worker=None, interval_s=0.01)
        sampler.start()
        await asyncio.sleep(0.3)
        return sampler.stop()

    load = asyncio.run(idle())
    assert load.worker is None
    assert load.loop_lag_p50_ms is not None and load.loop_lag_p50_ms < 15
    assert load.cpu_percent is not None and load.cpu_percent < 50
    assert load.duration_s >= 0.25
    # rescheduled from when each tick fired, so never more ticks than intervals in the round
    assert 5 <= load.samples <= load.duration_s / 0.01 + 2


def test_a_busy_coroutine_shows_its_cpu() -> None:
    async def busy() -> ProcessLoad:
        sampler = LoopSampler()
        sampler.start()
        await asyncio.sleep(0)
        # spin for 0.3 s of this process's CPU, not of wall time: on a loaded machine the
        # share of a core it gets varies, the CPU it burns does not
        end = time.process_time() + 0.3
        while time.process_time() < end:
            pass
        await asyncio.sleep(0)
        return sampler.stop()

    load = asyncio.run(busy())
    assert load.cpu_s >= 0.29
    assert load.cpu_percent is not None and load.cpu_percent > 5


def test_stopped_twice_gives_the_same_figures_and_the_timer_is_gone() -> None:
    async def twice() -> tuple[ProcessLoad, ProcessLoad, int]:
        sampler = LoopSampler(interval_s=0.005)
        sampler.start()
        await asyncio.sleep(0.05)
        first = sampler.stop()
        await asyncio.sleep(0.05)  # a live timer would keep ticking here
        return first, sampler.stop(), sampler._buffer.count

    first, second, ticks = asyncio.run(twice())
    assert first is second
    assert ticks == first.samples


def test_stopped_without_samples_gives_none_figures() -> None:
    never_started = LoopSampler(worker=3).stop()
    assert never_started == ProcessLoad(3, 0.0, 0.0, None, None, None, 0)
    assert never_started.cpu_percent is None
    assert never_started.to_dict()["cpu_percent"] is None

    async def at_once() -> ProcessLoad:
        sampler = LoopSampler(interval_s=10.0)
        sampler.start()
        return sampler.stop()

    quick = asyncio.run(at_once())
    assert quick.samples == 0
    assert quick.loop_lag_p50_ms is None and quick.loop_lag_max_ms is None
    assert quick.duration_s >= 0


def test_start_needs_a_running_loop_and_happens_once() -> None:
    with pytest.raises(RuntimeError):
        LoopSampler().start()

    async def again() -> None:
        sampler = LoopSampler()
        sampler.start()
        try:
            sampler.start()
        finally:
            sampler.stop()

    with pytest.raises(RuntimeError, match="twice"):
        asyncio.run(again())


def test_bad_interval_and_capacity_are_refused() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        LoopSampler(interval_s=0)
    with pytest.raises(ValueError, match="capacity"):
        LoopSampler(capacity=1)


def test_the_module_does_not_import_numpy() -> None:
    code = "import sys, drbench.selfcheck; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- the bounded lag store and the quantile ------------------------------------------------------


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200), st.floats(0, 1))
def test_quantile_matches_numpys_default(values: list[float], q: float) -> None:
    ordered = sorted(values)
    assert _quantile(ordered, q) == pytest.approx(float(np.quantile(values, q)), rel=1e-9, abs=1e-6)


def test_a_full_buffer_thins_evenly_and_keeps_the_exact_max_and_count() -> None:
    buffer = _LagBuffer(capacity=16)
    for i in range(1000):
        buffer.add(float(i))
    buffer.add(5000.0)
    p50, p99, peak = buffer.summary()
    assert buffer.count == 1001
    assert peak == 5000.0
    assert p50 is not None and 400 <= p50 <= 600  # spread over the whole run, not its start
    assert p99 is not None and p99 >= 900


def test_a_full_buffer_in_a_sampler_still_summarises() -> None:
    async def many() -> ProcessLoad:
        sampler = LoopSampler(interval_s=0.001, capacity=4)
        sampler.start()
        await asyncio.sleep(0.1)
        return sampler.stop()

    load = asyncio.run(many())
    assert load.samples > 4
    assert load.loop_lag_p50_ms is not None and load.loop_lag_max_ms is not None
    assert load.loop_lag_p50_ms <= load.loop_lag_max_ms


def test_an_early_timer_counts_as_no_lag() -> None:
    buffer = _LagBuffer(capacity=4)
    buffer.add(-0.001)
    assert buffer.summary() == (0.0, 0.0, 0.0)


# -- the record ----------------------------------------------------------------------------------


def test_cpu_percent_is_one_core_at_100() -> None:
    assert _load(cpu_s=0.5).cpu_percent == pytest.approx(50.0)
    assert _load(cpu_s=1.5).cpu_percent == pytest.approx(150.0)  # threads can exceed a core


def test_to_dict_is_json_and_from_dict_is_its_inverse() -> None:
    load = ProcessLoad(2, 1.25, 0.5, 0.25, 3.5, 12.0, 120)
    d = json.loads(json.dumps(load.to_dict(), allow_nan=False))
    assert d == {
        "worker": 2,
        "duration_s": 1.25,
        "cpu_s": 0.5,
        "cpu_percent": 40.0,
        "loop_lag_p50_ms": 0.25,
        "loop_lag_p99_ms": 3.5,
        "loop_lag_max_ms": 12.0,
        "samples": 120,
        "host": None,
        "clock_offset_ms": None,
        "clock_error_ms": None,
    }
    assert ProcessLoad.from_dict(d) == load
    remote = ProcessLoad(1, 1.0, 0.5, 0.1, 0.2, 0.3, 50, "gpu-7", -3.25, 0.125)
    assert ProcessLoad.from_dict(json.loads(json.dumps(remote.to_dict()))) == remote
    empty = ProcessLoad(None, 0.0, 0.0, None, None, None, 0)
    assert ProcessLoad.from_dict(empty.to_dict()) == empty


@given(
    st.one_of(st.none(), st.integers(0, 64)),
    st.floats(0, 1e5),
    st.floats(0, 1e5),
    st.one_of(st.none(), st.floats(0, 1e4)),
    st.integers(0, 10**9),
)
def test_round_trip_of_any_record_is_stable(
    worker: int | None, duration_s: float, cpu_s: float, lag: float | None, samples: int
) -> None:
    load = ProcessLoad(worker, duration_s, cpu_s, lag, lag, lag, samples)
    once = load.to_dict()
    back = ProcessLoad.from_dict(once)
    assert back.to_dict() == once
    assert back.worker == worker and back.samples == samples
    assert back.duration_s == pytest.approx(duration_s, abs=1e-6)


def test_from_dict_refuses_a_worker_that_is_not_an_int() -> None:
    d = _load().to_dict()
    with pytest.raises(ValueError, match="worker"):
        ProcessLoad.from_dict({**d, "worker": True})
    with pytest.raises(ValueError, match="worker"):
        ProcessLoad.from_dict({**d, "worker": "0"})


# -- the warning ---------------------------------------------------------------------------------


def test_a_lagging_loop_that_used_little_cpu_was_starved_and_more_workers_would_not_help() -> None:
    loads = [_load(None, cpu_s=0.3, lag_p99_ms=20.0)]
    line = client_limit_warning(loads, where="round 1 at rate 10 req/s", workers=1, cpus=8)
    assert line is not None and "--workers 2" not in line
    assert (
        "its event loop lagged 20.0 ms at p99 (limit 5 ms) while it used only 30% of a core" in line
    )
    assert line.endswith("rerun on a quieter machine (more --workers would not help)")


def test_calm_loads_give_no_warning() -> None:
    calm = [_load(None), _load(0), _load(1, cpu_s=0.85, lag_p99_ms=4.9)]
    assert client_limit_warning(calm, where="round 1 at concurrency 8", workers=2) is None
    assert client_limit_warning([], where="round 1 at concurrency 8", workers=2) is None


def test_a_lagging_worker_is_named_with_its_figure() -> None:
    loads = [_load(None), _load(0), _load(1, cpu_s=0.7, lag_p99_ms=12.34)]
    line = client_limit_warning(loads, where="round 2 at concurrency 64", workers=2, cpus=8)
    assert line == (
        "round 2 at concurrency 64: the client may have limited this round, not the server:"
        " worker 1: its event loop lagged 12.3 ms at p99 (limit 5 ms);"
        " give --workers 4 to spread the client over more cores"
    )


def test_under_ray_the_host_that_limited_the_load_is_named() -> None:
    """--executor ray: the warning names the actor's host and asks for hosts or actors, not
    for cores of this machine (which may not be the one that was short)."""
    on = replace(_load(1, cpu_s=0.7, lag_p99_ms=12.34), host="gpu-node-3")
    loads = [_load(None), replace(_load(0), host="gpu-node-2"), on]
    line = client_limit_warning(loads, where="round 1 at concurrency 512", workers=2, cpus=2)
    assert line == (
        "round 1 at concurrency 512: the client may have limited this round, not the server:"
        " Ray actor 1 on host gpu-node-3: its event loop lagged 12.3 ms at p99 (limit 5 ms);"
        " host gpu-node-3 limited the load: add hosts (--ray-hosts) or actors per host"
        " (--workers 4) where there are free cores"
    )
    driver = [_load(None, cpu_s=0.97), replace(_load(0), host="gpu-node-2")]
    line = client_limit_warning(driver, where="round 1", workers=1, cpus=2)
    assert line is not None and "the main process: it used 97% of a core" in line
    assert "this process dispatches every request to the Ray actors" in line


def test_a_busy_main_process_is_named_with_its_cpu() -> None:
    line = client_limit_warning([_load(None, cpu_s=0.97)], where="round 1", workers=1, cpus=2)
    assert line is not None
    assert "the main process: it used 97% of a core (limit 90%)" in line
    assert line.endswith("give --workers 2 to spread the client over more cores")
    assert "\n" not in line


def test_both_figures_and_the_worst_of_several_processes() -> None:
    loads = [_load(0, cpu_s=0.95), _load(1, cpu_s=0.99, lag_p99_ms=40.0), _load(2)]
    line = client_limit_warning(loads, where="round 1", workers=3, cpus=16)
    assert line is not None
    assert (
        "worker 1: its event loop lagged 40.0 ms at p99 (limit 5 ms) and it used 99% of a core"
        in line
    )
    assert "(2 of 3 processes over a limit)" in line
    assert "--workers 6" in line


def test_at_the_core_count_the_machine_is_the_limit() -> None:
    line = client_limit_warning([_load(0, cpu_s=1.0)], where="round 1", workers=2, cpus=2)
    assert line is not None
    assert "--workers 2 already uses all 2 cores of this machine" in line
    assert "the client machine is the limit" in line
    single = client_limit_warning([_load(None, cpu_s=1.0)], where="round 1", workers=0, cpus=1)
    assert single is not None
    assert single.endswith(
        "; this machine has a single core, so the client machine is the limit:"
        " run the client on a larger machine or lower the load"
    )
    # the suggestion is capped at the cores, not merely doubled
    capped = client_limit_warning([_load(0, cpu_s=1.0)], where="round 1", workers=3, cpus=4)
    assert capped is not None and "give --workers 4 " in capped


def test_a_suggestion_without_cpus_stays_within_this_machine() -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    line = client_limit_warning([_load(0, cpu_s=1.0)], where="round 1", workers=1)
    assert line is not None
    if (cores or 1) >= 2:
        assert line.endswith("give --workers 2 to spread the client over more cores")
    else:
        assert "the client machine is the limit" in line


def test_too_few_samples_are_not_judged_on_lag() -> None:
    few = ProcessLoad(0, 0.1, 0.01, 30.0, 30.0, 30.0, MIN_SAMPLES - 1)
    assert client_limit_warning([few], where="round 1", workers=1, cpus=4) is None
    enough = ProcessLoad(0, 0.1, 0.01, 30.0, 30.0, 30.0, MIN_SAMPLES)
    assert client_limit_warning([enough], where="round 1", workers=1, cpus=4) is not None


def test_the_thresholds_are_the_documented_ones() -> None:
    assert LAG_P99_LIMIT_MS == 5.0
    assert CPU_LIMIT_PERCENT == 90.0
    at_limit = [_load(0, cpu_s=0.9, lag_p99_ms=5.0)]  # at, not over
    assert client_limit_warning(at_limit, where="round 1", workers=1, cpus=4) is None
