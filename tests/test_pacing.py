"""The pacers as pure numbers: the open loop's schedule statistics and the closed loop's ramp-up.

No clock here: ``arrival_offsets`` is a seeded gamma process (vLLM's ``bench serve`` shape), so
its mean gap, coefficient of variation and reproducibility are checked on the numbers alone.
The tolerances are several standard errors wide at n = 20,000 and the seeds are fixed, so these
tests are deterministic; they fail on a wrong scale, shape or seeding, not on luck.
"""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drbench.levels import Level
from drbench.pacing import ClosedLoop, OpenLoop, arrival_offsets, pacer_for

N = 20_000
PROPS = settings(max_examples=100, deadline=None)


def gaps(offsets: tuple[float, ...]) -> list[float]:
    return [b - a for a, b in zip(offsets, offsets[1:], strict=False)]


def cv(values: list[float]) -> float:
    return statistics.pstdev(values) / statistics.fmean(values)


@pytest.mark.parametrize("rate", [1.0, 100.0, 5000.0])
@pytest.mark.parametrize("burstiness", [1.0, 0.25, 4.0])
def test_mean_gap_is_one_over_the_rate(rate: float, burstiness: float) -> None:
    """Within 3% at Poisson and steadier shapes; a burstier one (CV 2) has a wider sampling
    error of the mean (CV / sqrt(n)), so the bound is 4 standard errors when that is wider."""
    offsets = arrival_offsets(N, rate, burstiness, f"mean:{rate}:{burstiness}")
    mean = statistics.fmean(gaps(offsets))
    tolerance = max(0.03, 4 / math.sqrt(burstiness) / math.sqrt(N))
    assert mean == pytest.approx(1.0 / rate, rel=tolerance)
    # the whole schedule lasts about n / rate seconds: what a round at that rate takes
    assert offsets[-1] == pytest.approx((N - 1) / rate, rel=tolerance)


@pytest.mark.parametrize(
    ("burstiness", "expected_cv"),
    [(1.0, 1.0), (0.25, 2.0), (4.0, 0.5)],
    ids=["poisson", "bursty", "regular"],
)
@pytest.mark.parametrize("seed", ["0:rate=10", "1:rate=10", "42:rate=3.5"])
def test_coefficient_of_variation_is_one_over_sqrt_burstiness(
    burstiness: float, expected_cv: float, seed: str
) -> None:
    """CV = 1/sqrt(B): B = 1 is Poisson (exponential gaps), below 1 burstier, above 1 steadier."""
    offsets = arrival_offsets(N, 10.0, burstiness, seed)
    assert cv(gaps(offsets)) == pytest.approx(expected_cv, rel=0.06)
    assert expected_cv == pytest.approx(1 / math.sqrt(burstiness))


def test_burstiness_orders_the_spread_of_gaps() -> None:
    """The same rate, three shapes: a burstier schedule has more tiny gaps and longer pauses."""
    spread = [cv(gaps(arrival_offsets(N, 50.0, b, "order"))) for b in (0.25, 1.0, 4.0)]
    assert spread[0] > 1.5 * spread[1] > 1.5 * 1.5 * spread[2]


def test_the_same_seed_gives_the_identical_schedule() -> None:
    a = arrival_offsets(1000, 20.0, 1.0, "7:rate=20")
    b = arrival_offsets(1000, 20.0, 1.0, "7:rate=20")
    assert a == b
    assert isinstance(a, tuple)


@pytest.mark.parametrize(
    "other",
    [
        (1000, 20.0, 1.0, "8:rate=20"),  # another run seed
        (1000, 20.0, 1.0, "7:rate=21"),  # another level
        (1000, 21.0, 1.0, "7:rate=20"),  # another rate under the same seed string
        (1000, 20.0, 0.5, "7:rate=20"),  # another shape
    ],
)
def test_another_seed_level_rate_or_shape_gives_another_schedule(
    other: tuple[int, float, float, str],
) -> None:
    base = arrival_offsets(1000, 20.0, 1.0, "7:rate=20")
    assert arrival_offsets(*other) != base


def test_a_longer_schedule_starts_with_the_shorter_one() -> None:
    """The schedule is a sequence, not a fit to n: warm-up's n requests follow a level's first n."""
    assert arrival_offsets(2000, 5.0, 0.7, "s")[:300] == arrival_offsets(300, 5.0, 0.7, "s")


@PROPS
@given(
    n=st.integers(min_value=1, max_value=400),
    rate=st.floats(min_value=1e-3, max_value=1e6),
    burstiness=st.floats(min_value=0.05, max_value=1000),
    seed=st.text(max_size=12),
)
def test_offsets_start_at_zero_and_never_go_back(
    n: int, rate: float, burstiness: float, seed: str
) -> None:
    offsets = arrival_offsets(n, rate, burstiness, seed)
    assert len(offsets) == n
    assert offsets[0] == 0.0
    assert all(math.isfinite(t) for t in offsets)
    assert all(b >= a for a, b in zip(offsets, offsets[1:], strict=False))
    assert offsets == arrival_offsets(n, rate, burstiness, seed)


@pytest.mark.parametrize("n", [0, -3])
def test_no_requests_no_schedule(n: int) -> None:
    assert arrival_offsets(n, 10.0, 1.0, "x") == ()


@pytest.mark.parametrize("burstiness", [0.25, 1.0, 4.0])
def test_an_infinite_rate_sends_everything_at_zero(burstiness: float) -> None:
    assert arrival_offsets(500, math.inf, burstiness, "inf") == (0.0,) * 500


def test_pacer_for_a_rate_level_replays_the_same_schedule_in_every_round() -> None:
    """Round 2 builds its pacer anew from the same level and seed: the same instants."""
    level = Level.open(25.0, max_concurrency=8)
    r1 = pacer_for(level, 300, burstiness=0.5, seed=3, ramp_up_s=0.0)
    r2 = pacer_for(level, 300, burstiness=0.5, seed=3, ramp_up_s=0.0)
    assert r1.has_schedule and r2.has_schedule
    assert [r1.due_s(i) for i in range(300)] == [r2.due_s(i) for i in range(300)]
    assert isinstance(r1, OpenLoop) and isinstance(r2, OpenLoop)
    # the schedule is the seeded process of "seed:level key", capped by the level's cap
    assert r1.offsets_s == arrival_offsets(300, 25.0, 0.5, "3:rate=25")
    assert r1.cap_at(0.0) == r1.cap_at(100.0) == 8
    assert r1.cap_grows_at(0.0) is None


def test_pacer_for_gives_each_level_and_seed_its_own_schedule() -> None:
    def schedule(level: Level, seed: int) -> list[float]:
        p = pacer_for(level, 200, burstiness=1.0, seed=seed, ramp_up_s=0.0)
        return [p.due_s(i) for i in range(200)]

    base = schedule(Level.open(10.0), 0)
    assert schedule(Level.open(10.0), 1) != base
    assert schedule(Level.open(10.5), 0) != base
    # the cap is not part of the key: capping a level does not change when requests are due
    assert schedule(Level.open(10.0, max_concurrency=2), 0) == base


def test_pacer_for_an_infinite_rate_is_all_due_at_once() -> None:
    p = pacer_for(Level.open(math.inf), 50, burstiness=1.0, seed=0, ramp_up_s=0.0)
    assert p.has_schedule
    assert {p.due_s(i) for i in range(50)} == {0.0}
    assert p.cap_at(0.0) is None


def test_pacer_for_a_concurrency_level_is_a_closed_loop() -> None:
    p = pacer_for(Level.closed(6), 100, burstiness=0.25, seed=9, ramp_up_s=3.0)
    assert p == ClosedLoop(6, 3.0)
    assert not p.has_schedule
    assert {p.due_s(i) for i in range(100)} == {0.0}


@pytest.mark.parametrize("t", [0.0, 0.5, 10.0, 1e6])
def test_closed_loop_without_ramp_up_is_c_from_the_start(t: float) -> None:
    p = ClosedLoop(4)
    assert p.cap_at(t) == 4
    assert p.cap_grows_at(t) is None


def test_closed_loop_ramp_up_starts_one_worker_every_ramp_over_c() -> None:
    """C = 4 over 2 s: workers start at 0, 0.5, 1.0 and 1.5 s."""
    p = ClosedLoop(4, 2.0)
    caps = {0.0: 1, 0.25: 1, 0.4999: 1, 0.5: 2, 0.9: 2, 1.0: 3, 1.4999: 3, 1.5: 4, 2.0: 4, 60: 4}
    assert {t: p.cap_at(t) for t in caps} == caps
    assert p.cap_grows_at(0.0) == 0.5
    assert p.cap_grows_at(0.3) == 0.5
    assert p.cap_grows_at(0.5) == 1.0
    assert p.cap_grows_at(1.2) == 1.5
    assert p.cap_grows_at(1.5) is None  # all four started
    assert p.cap_grows_at(5.0) is None


def test_following_cap_grows_at_visits_every_start() -> None:
    p, t, starts = ClosedLoop(4, 2.0), 0.0, [0.0]
    while (t := p.cap_grows_at(t)) is not None:
        starts.append(t)
    assert starts == [0.0, 0.5, 1.0, 1.5]
    assert [p.cap_at(s) for s in starts] == [1, 2, 3, 4]


def test_ramp_up_shorter_than_one_step_still_starts_with_one() -> None:
    p = ClosedLoop(1, 5.0)
    assert p.cap_at(0.0) == 1
    assert p.cap_grows_at(0.0) is None


@PROPS
@given(
    c=st.integers(min_value=1, max_value=10_000),
    ramp=st.floats(min_value=1e-3, max_value=86_400),
    frac=st.floats(min_value=0.0, max_value=1.2),
)
def test_ramp_up_cap_is_monotone_and_cap_grows_at_is_the_next_step(
    c: int, ramp: float, frac: float
) -> None:
    """Whatever C and S: the cap is between 1 and C, never falls, reaches C by S, and
    cap_grows_at names a later instant at which (to the float's last digits) it has grown."""
    p = ClosedLoop(c, ramp)
    t = frac * ramp
    cap = p.cap_at(t)
    assert 1 <= cap <= c
    assert p.cap_at(t * 1.01 + 1e-9) >= cap
    assert p.cap_at(ramp) == c
    grows = p.cap_grows_at(t)
    if cap == c:
        assert grows is None
        return
    assert grows is not None and grows > t
    assert grows == pytest.approx(cap * ramp / c)
    assert p.cap_at(grows * (1 + 1e-12) + 1e-12) == cap + 1


def test_open_loop_cap_is_fixed_and_never_grows() -> None:
    capped = OpenLoop((0.0, 0.1, 0.2), max_concurrency=2)
    free = OpenLoop((0.0, 0.1, 0.2))
    assert capped.has_schedule and free.has_schedule
    assert [capped.due_s(i) for i in range(3)] == [0.0, 0.1, 0.2]
    assert [capped.cap_at(t) for t in (0.0, 0.15, 99.0)] == [2, 2, 2]
    assert [free.cap_at(t) for t in (0.0, 0.15, 99.0)] == [None, None, None]
    assert capped.cap_grows_at(0.0) is None and free.cap_grows_at(0.0) is None
