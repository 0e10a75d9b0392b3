"""Dedupe and sampling guarantees: no duplicates, without replacement, seeded, stratified."""

from __future__ import annotations

import random

from drbench.convert.sampling import allocate, apportion, dedupe, sample, stratified_sample


def test_dedupe_keeps_the_first_and_counts() -> None:
    items = ["a", "b", "A", "c", "b", "a"]
    kept, removed = dedupe(items, key=str.lower)
    assert kept == ["a", "b", "c"] and removed == 3


def test_sample_without_replacement_and_seeded() -> None:
    items = list(range(50))
    for seed in range(20):
        got = sample(items, 20, random.Random(seed))
        assert len(got) == 20 and len(set(got)) == 20 and set(got) <= set(items)
    assert sample(items, 20, random.Random(7)) == sample(items, 20, random.Random(7))
    assert sample(items, 20, random.Random(7)) != sample(items, 20, random.Random(8))


def test_sample_more_than_exist_gives_each_once() -> None:
    got = sample(["x", "y", "z"], 10, random.Random(0))
    assert sorted(got) == ["x", "y", "z"]
    assert sample(["x", "y", "z"], None, random.Random(0)) == ["x", "y", "z"]


def test_apportion_sums_exactly_and_breaks_ties_in_order() -> None:
    assert apportion(10, {"a": 0.5, "b": 0.3, "c": 0.2}) == {"a": 5, "b": 3, "c": 2}
    assert apportion(7, dict.fromkeys("abcdef", 1.0)) == {
        "a": 2, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1,
    }  # fmt: skip
    assert apportion(1, {"a": 1.0, "b": 1.0}) == {"a": 1, "b": 0}
    assert apportion(3, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}) == {"a": 1, "b": 1, "c": 1}
    for total in range(0, 40):
        assert sum(apportion(total, {"a": 0.15, "b": 0.35, "c": 0.5}).values()) == total


def test_allocate_caps_small_groups_and_redistributes() -> None:
    alloc = allocate({"a": 1, "b": 10, "c": 10}, 12, dict.fromkeys("abc", 1.0))
    assert alloc == {"a": 1, "b": 6, "c": 5}
    assert allocate({"a": 2, "b": 3}, 99, {"a": 1.0, "b": 1.0}) == {"a": 2, "b": 3}
    prop = allocate({"a": 10, "b": 30}, 8, {"a": 10.0, "b": 30.0})
    assert prop == {"a": 2, "b": 6}


def test_stratified_sample_no_duplicates_and_reported_counts() -> None:
    groups = {"a": [f"a{i}" for i in range(3)], "b": [f"b{i}" for i in range(20)]}
    picked, alloc = stratified_sample(groups, 10, {"a": 1.0, "b": 1.0}, random.Random(5))
    assert alloc == {"a": 3, "b": 7}
    assert len(picked) == 10 and len(set(picked)) == 10
    assert sum(p.startswith("a") for p in picked) == 3
    again, _ = stratified_sample(groups, 10, {"a": 1.0, "b": 1.0}, random.Random(5))
    assert again == picked
