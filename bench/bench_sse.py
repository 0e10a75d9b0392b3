"""SSE decoder cost on long lines: one line of 5, 20 and 50 MB fed in 64 KiB reads.

Before the decoder kept an unfinished line in pieces, it re-copied the pending line on every
read (5 MB 0.37 s, 20 MB 6.7 s, 50 MB 29 s: quadratic).  Linear means the seconds per MB stay
flat as the line grows.  Also: a normal stream (200k one-token events) for the per-event cost.
Run: python bench/bench_sse.py   (single-threaded; say the machine's load when quoting it)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, uninstalled

from drbench.sse import SSEDecoder  # noqa: E402

READ = 64 * 1024


def feed_line(mb: int) -> float:
    data = b"data: " + b"x" * (mb << 20) + b"\n\n"
    dec = SSEDecoder(max_line_bytes=(mb + 1) << 20)
    t0 = time.perf_counter()
    events = []
    for i in range(0, len(data), READ):
        events += dec.feed(data[i : i + READ])
    took = time.perf_counter() - t0
    assert len(events) == 1 and len(events[0].data) == mb << 20
    return took


def feed_events(n: int) -> float:
    one = b'data: {"choices":[{"index":0,"delta":{"content":"tok"}}]}\n\n'
    data = one * n
    dec = SSEDecoder()
    t0 = time.perf_counter()
    count = sum(len(dec.feed(data[i : i + READ])) for i in range(0, len(data), READ))
    took = time.perf_counter() - t0
    assert count == n
    return took


def main() -> None:
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for mb in (5, 20, 50):
        took = feed_line(mb)
        print(f"one {mb:>2} MB line in 64 KiB reads: {took:.3f} s ({1000 * took / mb:.2f} ms/MB)")
    n = 200_000
    took = feed_events(n)
    print(f"{n} one-token events: {took:.3f} s ({1e9 * took / n:.0f} ns/event)")


if __name__ == "__main__":
    main()
