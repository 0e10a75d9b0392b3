"""How another host's ``perf_counter_ns`` maps onto the driver's: offsets and their error bounds.

Every stamp of a request is taken on the host that sends it, so a duration (TTFT, ITL, latency)
needs no mapping.  What does is an instant compared across hosts: a round's start (each host's
records are relative to it), an open loop's due times, a record's absolute ``send_ns``.  The
driver asks a remote process for its clock between two of its own readings; the remote reading
was taken somewhere inside that round trip, so its midpoint estimate is off by at most half the
round trip (Cristian's algorithm).  The sample with the shortest round trip bounds it best.

Two processes under one kernel read the same CLOCK_MONOTONIC: their offset is exactly 0, which a
matching ``/proc/sys/kernel/random/boot_id`` proves better than any measurement.  Pure: the
readings are handed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ClockOffset", "ClockSample", "boot_id", "estimate_offset"]


@dataclass(frozen=True, slots=True)
class ClockSample:
    """One exchange: the driver's clock before (``sent_ns``) and after (``back_ns``) asking,
    and the remote clock's answer (``remote_ns``)."""

    sent_ns: int
    remote_ns: int
    back_ns: int


@dataclass(frozen=True, slots=True)
class ClockOffset:
    """remote clock = driver clock + ``offset_ns``, true to within ``error_ns``."""

    offset_ns: int = 0
    error_ns: int = 0
    shared: bool = False  # the same kernel's clock: exact, not measured

    def to_remote(self, driver_ns: int) -> int:
        return driver_ns + self.offset_ns

    def to_driver(self, remote_ns: int) -> int:
        return remote_ns - self.offset_ns

    @property
    def offset_ms(self) -> float:
        return self.offset_ns / 1e6

    @property
    def error_ms(self) -> float:
        return self.error_ns / 1e6


def estimate_offset(samples: Sequence[ClockSample]) -> ClockOffset:
    """The offset from the sample of the shortest round trip, with half that trip as its error.

    A sample whose driver readings go backwards (not a monotonic clock) is left out; ValueError
    when none is left."""
    usable = [s for s in samples if s.back_ns >= s.sent_ns]
    if not usable:
        raise ValueError("no clock sample with a non-negative round trip")
    best = min(usable, key=lambda s: s.back_ns - s.sent_ns)
    trip = best.back_ns - best.sent_ns
    midpoint = best.sent_ns + trip // 2
    return ClockOffset(best.remote_ns - midpoint, (trip + 1) // 2)


def boot_id(path: Path = Path("/proc/sys/kernel/random/boot_id")) -> str | None:
    """This kernel's boot id (Linux), or None where there is none: two processes with the same
    one share CLOCK_MONOTONIC."""
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
