"""Dedupe and sampling with guarantees: no duplicates, without replacement, seeded, stratified.

Pure functions over sequences.  Each returns what it did (counts, per-group allocations) so the
entry point can report it; none prints.  The same seed and input always give the same output.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TypeVar

__all__ = ["allocate", "apportion", "dedupe", "sample", "stratified_sample"]

T = TypeVar("T")


def dedupe(items: Sequence[T], key: Callable[[T], Hashable]) -> tuple[list[T], int]:
    """The items with later repeats of a key removed (first one kept), and how many were removed."""
    seen: set[Hashable] = set()
    kept = []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            kept.append(item)
    return kept, len(items) - len(kept)


def sample(items: Sequence[T], n: int | None, rng: random.Random) -> list[T]:
    """``n`` distinct items drawn without replacement; all of them (in order) when ``n`` is None.

    Asking for more than exist gives every item once, in random order: never a duplicate.
    """
    if n is None:
        return list(items)
    return rng.sample(list(items), min(n, len(items)))


def apportion(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``total`` by ``weights`` with the largest-remainder method (sums exactly to total).

    Ties go to the group named first, so the result is deterministic.
    """
    wsum = sum(weights.values())
    if total <= 0 or wsum <= 0:
        return dict.fromkeys(weights, 0)
    exact = {k: total * w / wsum for k, w in weights.items()}
    out = {k: int(v) for k, v in exact.items()}
    order = sorted(weights, key=lambda k: -(exact[k] - out[k]))
    for k in order[: total - sum(out.values())]:
        out[k] += 1
    return out


def allocate(sizes: Mapping[str, int], total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Per-group sample sizes: ``total`` split by ``weights``, no group above its size.

    What a small group cannot supply is shared among the groups that still have records, so
    the sizes add up to ``min(total, sum(sizes))``.
    """
    alloc = dict.fromkeys(sizes, 0)
    remaining = min(total, sum(sizes.values()))
    while remaining > 0:
        open_groups = {k: weights[k] for k in sizes if alloc[k] < sizes[k]}
        if not any(open_groups.values()):
            open_groups = {k: 1.0 for k in open_groups}
        share = apportion(remaining, open_groups)
        for k, n in share.items():
            take = min(n, sizes[k] - alloc[k])
            alloc[k] += take
            remaining -= take
    return alloc


def stratified_sample(
    groups: Mapping[str, Sequence[T]],
    total: int,
    weights: Mapping[str, float],
    rng: random.Random,
) -> tuple[list[T], dict[str, int]]:
    """A seeded sample of ``total`` items across groups, split by ``weights``, then shuffled.

    Returns the items and how many came from each group.  Each group is sampled without
    replacement, so no item appears twice.
    """
    sizes = {k: len(v) for k, v in groups.items()}
    alloc = allocate(sizes, total, weights)
    picked: list[T] = []
    for name, items in groups.items():
        picked.extend(rng.sample(list(items), alloc[name]))
    rng.shuffle(picked)
    return picked, alloc
