"""When each request of a round is released: the pacers.

A pacer answers two questions for the dispatcher (``engine.py``): how early request ``i`` may go
(``due_s``, seconds after the round's start) and how many requests may be in flight at a moment
(``cap_at``).  A closed loop has no schedule, only a cap of C (reached over ``--ramp-up`` seconds);
an open loop has a schedule of gamma-distributed arrivals and, optionally, a cap
(``--max-concurrency``).  The schedule is computed once per level from the seed and the level, so
round 2 replays round 1's exactly and the two rounds differ only by the cache.  A trace level
(``--fixed-schedule``) is an open loop whose schedule is the records' own timestamps.  Pure: no
clock, no loop.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from drbench.levels import Level

__all__ = [
    "ClosedLoop",
    "OpenLoop",
    "Pacer",
    "arrival_offsets",
    "busiest_second",
    "pacer_for",
    "trace_offsets",
]


class Pacer(Protocol):
    @property
    def has_schedule(self) -> bool:
        """Whether requests have due times (an open loop): records then carry their lag."""
        ...

    def due_s(self, i: int) -> float:
        """The earliest release of request ``i``, in seconds after the round's start."""
        ...

    def cap_at(self, t_s: float) -> int | None:
        """The most requests in flight allowed ``t_s`` seconds into the round (None: no cap)."""
        ...

    def cap_grows_at(self, t_s: float) -> float | None:
        """When, after ``t_s``, ``cap_at`` next grows (None: never), so a dispatcher that waits
        for room knows when to look again even if no request ends."""
        ...


@dataclass(frozen=True, slots=True)
class ClosedLoop:
    """C workers, each sending its next request when its previous one ends; with ``ramp_up_s``
    worker k starts at k * ramp_up_s / C."""

    concurrency: int
    ramp_up_s: float = 0.0

    @property
    def has_schedule(self) -> bool:
        return False

    def due_s(self, i: int) -> float:
        return 0.0

    def cap_at(self, t_s: float) -> int:
        if self.ramp_up_s <= 0:
            return self.concurrency
        started = math.floor(t_s * self.concurrency / self.ramp_up_s) + 1
        return max(1, min(self.concurrency, started))

    def cap_grows_at(self, t_s: float) -> float | None:
        cap = self.cap_at(t_s)
        if self.ramp_up_s <= 0 or cap >= self.concurrency:
            return None
        t = cap * self.ramp_up_s / self.concurrency
        while self.cap_at(t) <= cap:  # the division may land a float's width short of it
            t = math.nextafter(t, math.inf)
        return t


@dataclass(frozen=True, slots=True)
class OpenLoop:
    """Requests released at fixed offsets, whether or not earlier ones ended (at most
    ``max_concurrency`` in flight when given: a due request then waits for room)."""

    offsets_s: tuple[float, ...]
    max_concurrency: int | None = None

    @property
    def has_schedule(self) -> bool:
        return True

    def due_s(self, i: int) -> float:
        return self.offsets_s[i]

    def cap_at(self, t_s: float) -> int | None:
        return self.max_concurrency

    def cap_grows_at(self, t_s: float) -> float | None:
        return None


def arrival_offsets(n: int, rate: float, burstiness: float, seed: str) -> tuple[float, ...]:
    """``n`` release times (seconds from the round's start) of an open loop at ``rate`` req/s.

    As vLLM's ``bench serve``: the first request goes at 0, then gamma-distributed gaps of shape
    ``burstiness`` and mean 1 / rate (shape 1 is a Poisson process; below 1 burstier, above 1
    more regular).  An infinite rate sends every request at 0.  ``seed`` is a string (the run's
    seed and the level) so each level has its own schedule, the same in every round and run.
    """
    if n <= 0:
        return ()
    if math.isinf(rate):
        return (0.0,) * n
    rng = random.Random(seed)
    scale = 1.0 / (rate * burstiness)
    out, t = [0.0], 0.0
    for _ in range(n - 1):
        t += rng.gammavariate(burstiness, scale)
        out.append(t)
    return tuple(out)


def trace_offsets(timestamps_ms: Sequence[float], n: int, speedup: float) -> tuple[float, ...]:
    """``n`` release times (seconds from the round's start) replaying ``timestamps_ms`` (in
    order) at ``speedup``: the first timestamp is time 0, as AIPerf's fixed schedule with its
    auto offset.  Past the end (warm-up requests cycle the prompts) the trace starts over one
    mean gap after its last request, so a longer warm-up keeps the trace's pace."""
    if n <= 0 or not timestamps_ms:
        return ()
    first, m = timestamps_ms[0], len(timestamps_ms)
    span = timestamps_ms[-1] - first
    period = span + (span / (m - 1) if m > 1 else 0.0)
    return tuple(
        (timestamps_ms[i % m] - first + (i // m) * period) / 1000.0 / speedup for i in range(n)
    )


def busiest_second(offsets_s: Sequence[float]) -> int:
    """The most releases of a sorted schedule within any one second (at least 1)."""
    most, lo = 1 if offsets_s else 0, 0
    for hi, t in enumerate(offsets_s):
        while t - offsets_s[lo] >= 1.0:
            lo += 1
        most = max(most, hi - lo + 1)
    return most


def pacer_for(
    level: Level,
    n: int,
    *,
    burstiness: float,
    seed: int,
    ramp_up_s: float,
    timestamps_ms: Sequence[float] = (),
) -> Pacer:
    """The pacer of a level of ``n`` requests (``timestamps_ms``: the trace of a trace level)."""
    if level.kind == "concurrency":
        return ClosedLoop(level.concurrency or 1, ramp_up_s)
    if level.kind == "trace":
        offsets = trace_offsets(timestamps_ms, n, level.speedup or 1.0)
        if len(offsets) < n:
            raise ValueError(f"a trace level of {n} requests needs their timestamps")
        return OpenLoop(offsets, level.max_concurrency)
    offsets = arrival_offsets(n, level.rate or math.inf, burstiness, f"{seed}:{level.key}")
    return OpenLoop(offsets, level.max_concurrency)
