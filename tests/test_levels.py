"""Levels as values: the key every record carries, the file slug, the labels, summary.json's
``level`` object (strict JSON, ``"inf"`` for an infinite rate) and the way back from each."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drbench.levels import Level, format_rate

PROPS = settings(max_examples=300, deadline=None)
finite_rates = st.floats(min_value=1e-9, max_value=1e9, allow_nan=False, allow_infinity=False)


@pytest.mark.parametrize(
    ("level", "key", "slug", "label", "short", "x"),
    [
        (Level.closed(5), "concurrency=5", "concurrency_5", "concurrency 5", "C=5", 5.0),
        (Level.open(10), "rate=10", "rate_10", "rate 10 req/s", "R=10/s", 10.0),
        (Level.open(2.5), "rate=2.5", "rate_2.5", "rate 2.5 req/s", "R=2.5/s", 2.5),
        (Level.open(0.1), "rate=0.1", "rate_0.1", "rate 0.1 req/s", "R=0.1/s", 0.1),
        (
            Level.open(math.inf),
            "rate=inf",
            "rate_inf",
            "rate inf (all at once)",
            "R=inf",
            math.inf,
        ),
        (
            Level.open(10, max_concurrency=32),
            "rate=10",
            "rate_10",
            "rate 10 req/s (at most 32 in flight)",
            "R=10/s",
            10.0,
        ),
        (
            Level.open(math.inf, max_concurrency=4),
            "rate=inf",
            "rate_inf",
            "rate inf (all at once) (at most 4 in flight)",
            "R=inf",
            math.inf,
        ),
        (Level.trace(1), "trace=1x", "trace_1x", "trace at 1x speed", "T=1x", 1.0),
        (
            Level.trace(2.5, max_concurrency=8),
            "trace=2.5x",
            "trace_2.5x",
            "trace at 2.5x speed (at most 8 in flight)",
            "T=2.5x",
            2.5,
        ),
    ],
)
def test_names_of_a_level(level: Level, key: str, slug: str, label: str, short: str, x: float):
    assert (level.key, level.slug, level.label, level.short, level.x) == (
        key,
        slug,
        label,
        short,
        x,
    )


def test_kinds_and_in_flight_caps() -> None:
    assert Level.closed(3).kind == "concurrency"
    assert Level.closed(3).in_flight_cap == 3
    assert Level.open(5).kind == "rate"
    assert Level.open(5).in_flight_cap is None
    assert Level.open(5, max_concurrency=7).in_flight_cap == 7
    assert Level.open(5).concurrency is None and Level.closed(3).rate is None
    assert Level.trace(2).kind == "trace" and Level.trace(2).in_flight_cap is None
    assert Level.trace(2, max_concurrency=3).in_flight_cap == 3


@pytest.mark.parametrize("speedup", [0, -1, math.inf, math.nan])
def test_a_trace_level_needs_a_finite_positive_speedup(speedup: float) -> None:
    with pytest.raises(ValueError, match="a trace level needs a finite speed-up > 0"):
        Level.trace(speedup)


def test_open_stores_the_rate_as_a_float() -> None:
    level = Level.open(10)
    assert isinstance(level.rate, float)
    assert level == Level("rate", rate=10.0)


def test_levels_are_hashable_values() -> None:
    assert len({Level.closed(2), Level.closed(2), Level.open(2), Level.open(2.0)}) == 2
    assert Level.open(2, max_concurrency=1) != Level.open(2)
    with pytest.raises(AttributeError):
        Level.closed(2).concurrency = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (
            Level.closed(5),
            {
                "kind": "concurrency",
                "concurrency": 5,
                "request_rate": None,
                "max_concurrency": None,
                "speedup": None,
            },
        ),
        (
            Level.open(2.5, 8),
            {
                "kind": "rate",
                "concurrency": None,
                "request_rate": 2.5,
                "max_concurrency": 8,
                "speedup": None,
            },
        ),
        (
            Level.open(math.inf),
            {
                "kind": "rate",
                "concurrency": None,
                "request_rate": "inf",
                "max_concurrency": None,
                "speedup": None,
            },
        ),
        (
            Level.trace(2, 4),
            {
                "kind": "trace",
                "concurrency": None,
                "request_rate": None,
                "max_concurrency": 4,
                "speedup": 2.0,
            },
        ),
    ],
)
def test_to_dict_is_strict_json_and_reads_back(level: Level, expected: dict[str, object]) -> None:
    d = level.to_dict()
    assert d == expected
    text = json.dumps(d, allow_nan=False)  # an infinite rate is "inf", never Infinity
    assert Level.from_dict(json.loads(text)) == level


@PROPS
@given(
    level=st.one_of(
        st.builds(Level.closed, st.integers(min_value=1, max_value=10**6)),
        st.builds(
            Level.open,
            finite_rates | st.just(math.inf),
            st.none() | st.integers(min_value=1, max_value=10**6),
        ),
        st.builds(
            Level.trace,
            st.floats(min_value=1e-6, max_value=1e4),
            st.none() | st.integers(min_value=1, max_value=10**6),
        ),
    )
)
def test_every_level_survives_json_and_its_key(level: Level) -> None:
    assert Level.from_dict(json.loads(json.dumps(level.to_dict(), allow_nan=False))) == level
    # the key leaves out a rate or trace level's cap, and only that
    uncapped = Level(level.kind, level.concurrency, level.rate, speedup=level.speedup)
    assert Level.from_key(level.key) == uncapped
    assert level.slug == level.key.replace("=", "_")


@pytest.mark.parametrize(
    ("key", "level"),
    [
        ("concurrency=1", Level.closed(1)),
        ("concurrency=64", Level.closed(64)),
        ("rate=10", Level.open(10)),
        ("rate=0.25", Level.open(0.25)),
        ("rate=inf", Level.open(math.inf)),
    ],
)
def test_from_key(key: str, level: Level) -> None:
    assert Level.from_key(key) == level
    assert Level.from_key(key).key == key


@pytest.mark.parametrize(
    "key", ["", "concurrency", "5", "c=5", "rate", "rate=", "rate=0", "rate=-1", "concurrency=0"]
)
def test_from_key_refuses_what_is_not_a_level(key: str) -> None:
    with pytest.raises(ValueError):
        Level.from_key(key)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"kind": "concurrency"}, "C >= 1, not None"),
        ({"kind": "concurrency", "concurrency": 0}, "C >= 1, not 0"),
        ({"kind": "concurrency", "concurrency": -2}, "C >= 1, not -2"),
        ({"kind": "rate"}, "rate > 0, not None"),
        ({"kind": "rate", "rate": 0.0}, "rate > 0, not 0.0"),
        ({"kind": "rate", "rate": -1.0}, "rate > 0, not -1.0"),
        ({"kind": "rate", "rate": math.nan}, "rate > 0, not nan"),
        ({"kind": "rate", "rate": -math.inf}, "rate > 0, not -inf"),
    ],
)
def test_invalid_levels_raise_value_error(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Level(**kwargs)  # type: ignore[arg-type]


def test_closed_and_open_constructors_check_too() -> None:
    with pytest.raises(ValueError):
        Level.closed(0)
    with pytest.raises(ValueError):
        Level.open(0)
    with pytest.raises(ValueError):
        Level.open(math.nan)


@pytest.mark.parametrize(
    ("rate", "text"),
    [
        (10.0, "10"),
        (1.0, "1"),
        (2.5, "2.5"),
        (0.1, "0.1"),
        (1000000.0, "1e+06"),
        (1234567.5, "1234567.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (math.inf, "inf"),
        (None, "-"),
    ],
)
def test_format_rate_is_short(rate: float | None, text: str) -> None:
    assert format_rate(rate) == text


@PROPS
@given(rate=finite_rates | st.just(math.inf))
def test_format_rate_reads_back_exactly(rate: float) -> None:
    text = format_rate(rate)
    assert float(text) == rate
    assert len(text) <= len(repr(rate))  # never longer than Python's own shortest form
    assert Level.from_key(f"rate={text}").rate == rate
