"""The client checks itself: event-loop lag and CPU use of each process during a round.

A benchmark client that is itself saturated reports the client's limit as the server's: tokens
sit in a socket buffer while the loop is busy, and TTFT and ITL grow by however late the loop
gets round to stamping them.  ``LoopSampler`` measures that in the process it runs in: a timer
callback, rescheduled every ``interval_s`` (10 ms), records how late it fired, and the process's
CPU time (``time.process_time``: user + system, all threads) is read at start and stop.
``client_limit_warning`` turns the round's ``ProcessLoad`` figures (one per process) into one
warning line suggesting ``--workers`` when a process was over ``LAG_P99_LIMIT_MS`` or
``CPU_LIMIT_PERCENT``.

Runs on the timing-critical path, so a tick does no more than a subtraction and a store into a
preallocated ``array('d')`` of bounded size (halved, keeping every other sample, when full), and
numpy is not imported: percentiles are computed once, at ``stop()``.  This module does not print,
does not know where a round's figures are written, and keeps no module-level state.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from drbench.messages import Message

__all__ = [
    "BUSY_ELSEWHERE_PERCENT",
    "CPU_LIMIT_PERCENT",
    "LAG_P99_LIMIT_MS",
    "MIN_SAMPLES",
    "LoopSampler",
    "ProcessLoad",
    "client_limit_warning",
]

LAG_P99_LIMIT_MS = 5.0  # a loop late by more than this at p99 delays the stamping of tokens
CPU_LIMIT_PERCENT = 90.0  # a process this close to one full core has no slack left
#: A lagging loop whose process used less than this much of a core was starved by something
#: else (another process, a blocking call): more worker processes would not help.
BUSY_ELSEWHERE_PERCENT = 50.0
MIN_SAMPLES = 20  # below this many ticks (about 0.2 s) a process's lag figures are not judged
_CAPACITY = 1 << 15  # lag samples kept (256 KiB); about 5.5 minutes at 10 ms before thinning


@dataclass(frozen=True, slots=True)
class ProcessLoad:
    """One process's load during one round."""

    worker: int | None  # None = the main process; 0..N-1 = worker processes
    duration_s: float  # wall time sampled
    cpu_s: float  # user+system CPU of this process over that time (time.process_time)
    loop_lag_p50_ms: float | None
    loop_lag_p99_ms: float | None
    loop_lag_max_ms: float | None
    samples: int
    # --executor ray: the host the process ran on, and how its clock maps onto the driver's
    # (clocks.ClockOffset; 0 and 0 when it shares this kernel's clock).  None for local ones.
    host: str | None = None
    clock_offset_ms: float | None = None
    clock_error_ms: float | None = None

    @property
    def cpu_percent(self) -> float | None:
        """CPU over wall time; 100 = one full core (threads can take it above 100)."""
        if self.duration_s <= 0:
            return None
        return 100.0 * self.cpu_s / self.duration_s

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, rounded to what the figures can mean (times to the microsecond), with
        ``cpu_percent`` taken from the rounded times, so the dict agrees with itself and
        ``from_dict`` gives it back unchanged."""
        rounded = ProcessLoad(
            self.worker, round(self.duration_s, 6), round(self.cpu_s, 6), None, None, None, 0
        )
        cpu = rounded.cpu_percent
        return {
            "worker": self.worker,
            "duration_s": rounded.duration_s,
            "cpu_s": rounded.cpu_s,
            "cpu_percent": None if cpu is None else round(cpu, 1),
            "loop_lag_p50_ms": _round_opt(self.loop_lag_p50_ms),
            "loop_lag_p99_ms": _round_opt(self.loop_lag_p99_ms),
            "loop_lag_max_ms": _round_opt(self.loop_lag_max_ms),
            "samples": self.samples,
            "host": self.host,
            "clock_offset_ms": _round_opt(self.clock_offset_ms),
            "clock_error_ms": _round_opt(self.clock_error_ms),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ProcessLoad:
        """The inverse of ``to_dict`` (``cpu_percent`` is derived, so it is not read back):
        worker processes hand their figures to the main one as dicts."""
        worker = d["worker"]
        if worker is not None and (isinstance(worker, bool) or not isinstance(worker, int)):
            raise ValueError(f"ProcessLoad: worker must be an int or None, got {worker!r}")
        return cls(
            worker=worker,
            duration_s=float(d["duration_s"]),
            cpu_s=float(d["cpu_s"]),
            loop_lag_p50_ms=_float_opt(d["loop_lag_p50_ms"]),
            loop_lag_p99_ms=_float_opt(d["loop_lag_p99_ms"]),
            loop_lag_max_ms=_float_opt(d["loop_lag_max_ms"]),
            samples=int(d["samples"]),
            host=_str_opt(d.get("host")),
            clock_offset_ms=_float_opt(d.get("clock_offset_ms")),
            clock_error_ms=_float_opt(d.get("clock_error_ms")),
        )


class LoopSampler:
    """Started on a running loop at round start, stopped at round end.

    Each tick is scheduled ``interval_s`` after the previous one *fired* (not after it was due),
    so a loop blocked for 50 ms yields one late tick, not a burst of catch-up ticks.
    """

    __slots__ = (
        "_buffer",
        "_cpu0",
        "_due",
        "_handle",
        "_interval",
        "_loop",
        "_result",
        "_wall0",
        "worker",
    )

    def __init__(
        self, worker: int | None = None, interval_s: float = 0.01, *, capacity: int = _CAPACITY
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"LoopSampler: interval_s must be > 0 (got {interval_s})")
        self.worker = worker
        self._interval = interval_s
        self._buffer = _LagBuffer(capacity)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._wall0: float | None = None
        self._cpu0 = 0.0
        self._result: ProcessLoad | None = None

    def start(self) -> None:
        """Begin sampling; must be called inside a running loop (RuntimeError otherwise)."""
        if self._wall0 is not None:
            raise RuntimeError("LoopSampler.start() called twice; use one sampler per round")
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._wall0 = time.perf_counter()
        self._cpu0 = time.process_time()
        self._due = loop.time() + self._interval
        self._handle = loop.call_at(self._due, self._tick)

    def stop(self) -> ProcessLoad:
        """End sampling and summarise; a second call returns the first call's figures, and a
        sampler never started (or stopped before its first tick) gives None lag figures."""
        if self._result is not None:
            return self._result
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._wall0 is None:
            duration_s, cpu_s = 0.0, 0.0
        else:
            duration_s = time.perf_counter() - self._wall0
            cpu_s = time.process_time() - self._cpu0
        p50, p99, peak = self._buffer.summary()
        self._result = ProcessLoad(
            worker=self.worker,
            duration_s=duration_s,
            cpu_s=cpu_s,
            loop_lag_p50_ms=p50,
            loop_lag_p99_ms=p99,
            loop_lag_max_ms=peak,
            samples=self._buffer.count,
        )
        return self._result

    def _tick(self) -> None:
        loop = self._loop
        assert loop is not None  # only start() schedules this
        now = loop.time()
        self._buffer.add((now - self._due) * 1000.0)
        self._due = now + self._interval
        self._handle = loop.call_at(self._due, self._tick)


def client_limit_warning(
    loads: Sequence[ProcessLoad], *, where: str, workers: int, cpus: int | None = None
) -> str | None:
    """One warning line when the client, not the server, may have limited the round, naming the
    process and the figure, and suggesting --workers N (N = double the current, at most the
    cores this process may use; ``cpus`` overrides that count) — or, when already at the core
    count, saying the machine is the limit.  Under --executor ray it names the host instead and
    asks for hosts or actors per host (or, for this process, a better driver machine).  None
    when every process stayed under the limits."""
    over = [(load, _excess(load)) for load in loads]
    over = [(load, excess) for load, excess in over if excess > 1.0]
    if not over:
        return None
    worst = max(over, key=lambda pair: pair[1])[0]
    if worst.host is not None:
        name = Message("process_actor", n=worst.worker, host=worst.host)
    elif worst.worker is None:
        name = Message("process_main")
    else:
        name = Message("process_worker", n=worst.worker)
    several = Message("several_over", over=len(over), n=len(loads)) if len(over) > 1 else ""
    line = Message("client_limit", where=where, name=name, figures=_figures(worst), several=several)
    cpu = worst.cpu_percent
    if cpu is not None and cpu < BUSY_ELSEWHERE_PERCENT and cpu <= CPU_LIMIT_PERCENT:
        return Message("busy_elsewhere", line=line, cpu=f"{cpu:.0f}")
    if any(load.host is not None for load in loads):  # --executor ray: hosts, not cores
        if worst.host is None:
            return Message("ray_driver_limit", line=line)
        return Message("ray_host_limit", line=line, host=worst.host, n=max(workers, 1) * 2)
    current = max(workers, 1)
    cores = cpus if cpus is not None else _usable_cpus()
    suggested = min(current * 2, cores)
    if suggested > current:
        return Message("more_workers", line=line, n=suggested)
    if cores == 1:
        machine = Message("single_core")
    else:
        machine = Message("all_cores", workers=workers, cores=cores)
    return Message("machine_limit", line=line, machine=machine)


class _LagBuffer:
    """Lags in ms: the exact count and max, and an evenly thinned sample for the percentiles.

    When full, every other kept sample is dropped and from then on only every other tick is kept
    (the stride doubles), so the kept samples still span the whole round evenly.
    """

    __slots__ = ("_kept", "_skip", "_stride", "_values", "count", "peak")

    def __init__(self, capacity: int) -> None:
        if capacity < 2:
            raise ValueError(f"LoopSampler: capacity must be >= 2 (got {capacity})")
        self._values = array("d", bytes(8 * capacity))
        self._kept = 0
        self._stride = 1
        self._skip = 0
        self.count = 0
        self.peak = 0.0

    def add(self, lag_ms: float) -> None:
        if lag_ms < 0.0:  # asyncio may run a timer up to its clock resolution early
            lag_ms = 0.0
        self.count += 1
        if lag_ms > self.peak:
            self.peak = lag_ms
        if self._skip:
            self._skip -= 1
            return
        if self._kept == len(self._values):
            half = self._kept // 2
            self._values[:half] = self._values[: 2 * half : 2]
            self._kept = half
            self._stride *= 2
        self._values[self._kept] = lag_ms
        self._kept += 1
        self._skip = self._stride - 1

    def summary(self) -> tuple[float | None, float | None, float | None]:
        """(p50, p99, max), or Nones when nothing was recorded."""
        if not self.count:
            return None, None, None
        kept = sorted(self._values[: self._kept])
        return _quantile(kept, 0.50), _quantile(kept, 0.99), self.peak


def _quantile(ordered: Sequence[float], q: float) -> float:
    """numpy's default (linear) quantile of an ascending, non-empty sequence."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _excess(load: ProcessLoad) -> float:
    """The process's worst figure as a multiple of its limit (> 1 = over)."""
    excess = 0.0
    cpu = load.cpu_percent
    if cpu is not None:
        excess = cpu / CPU_LIMIT_PERCENT
    if load.loop_lag_p99_ms is not None and load.samples >= MIN_SAMPLES:
        excess = max(excess, load.loop_lag_p99_ms / LAG_P99_LIMIT_MS)
    return excess


def _figures(load: ProcessLoad) -> Message:
    """``its event loop lagged ... and it used ...% of a core ...`` (the figures over a limit)."""
    parts = []
    lag = load.loop_lag_p99_ms
    if lag is not None and load.samples >= MIN_SAMPLES and lag > LAG_P99_LIMIT_MS:
        parts.append(Message("lagged", lag=f"{lag:.1f}", limit=f"{LAG_P99_LIMIT_MS:g}"))
    cpu = load.cpu_percent
    if cpu is not None and cpu > CPU_LIMIT_PERCENT:
        parts.append(Message("cpu_used", cpu=f"{cpu:.0f}", limit=f"{CPU_LIMIT_PERCENT:g}"))
    if len(parts) == 2:
        return Message("join_and", a=parts[0], b=parts[1], sep=Message("and"))
    return Message("join1", a=parts[0] if parts else "")


def _usable_cpus() -> int:
    """Cores this process may run on (its affinity mask where the OS has one), at least 1."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # macOS, Windows
        return max(os.cpu_count() or 1, 1)


def _round_opt(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _float_opt(value: Any) -> float | None:
    return None if value is None else float(value)


def _str_opt(value: Any) -> str | None:
    return None if value is None else str(value)
