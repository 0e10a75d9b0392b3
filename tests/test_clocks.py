"""clocks.py: the offset of another host's clock from round trips, and its error bound."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drbench.clocks import ClockOffset, ClockSample, boot_id, estimate_offset


def _exchange(driver_ns: int, offset_ns: int, out_ns: int, back_ns: int) -> ClockSample:
    """A round trip of ``out_ns`` there and ``back_ns`` back, to a clock ``offset_ns`` ahead."""
    return ClockSample(driver_ns, driver_ns + out_ns + offset_ns, driver_ns + out_ns + back_ns)


def test_the_fastest_round_trip_gives_the_offset_and_half_its_length_the_error() -> None:
    samples = [
        _exchange(1_000, 5_000_000, 900_000, 100_000),  # 1 ms trip, lopsided
        _exchange(9_000_000, 5_000_000, 50_000, 50_000),  # 0.1 ms, even: the one to take
        _exchange(20_000_000, 5_000_000, 3_000_000, 10_000),
    ]
    clock = estimate_offset(samples)
    assert clock == ClockOffset(5_000_000, 50_000)
    assert clock.to_driver(clock.to_remote(123)) == 123
    assert (clock.offset_ms, clock.error_ms) == (5.0, 0.05)


@given(
    offset=st.integers(-(10**15), 10**15),
    trips=st.lists(
        st.tuples(st.integers(0, 10**8), st.integers(0, 10**8)), min_size=1, max_size=10
    ),
)
def test_the_true_offset_is_always_within_the_error_bound(offset, trips) -> None:
    t, samples = 10**12, []
    for out, back in trips:
        samples.append(_exchange(t, offset, out, back))
        t += out + back + 1
    clock = estimate_offset(samples)
    assert abs(clock.offset_ns - offset) <= clock.error_ns


def test_samples_that_run_backwards_are_left_out() -> None:
    good = _exchange(100, 7, 10, 10)
    assert estimate_offset([ClockSample(50, 0, 40), good]) == estimate_offset([good])
    with pytest.raises(ValueError, match="no clock sample"):
        estimate_offset([ClockSample(50, 0, 40)])


def test_boot_id_reads_the_kernel_file_or_says_none(tmp_path: Path) -> None:
    f = tmp_path / "boot_id"
    f.write_text("3f1c\n")
    assert boot_id(f) == "3f1c"
    assert boot_id(tmp_path / "missing") is None
