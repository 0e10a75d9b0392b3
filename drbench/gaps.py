"""``Gaps``: a request's inter-token gaps in ms, stored in 4 bytes each instead of 32.

A run keeps every record until its reports are written, and a list of floats costs 32 bytes a
token (an 8-byte pointer to a 24-byte float object).  The gaps are differences of
``perf_counter_ns`` stamps, so they are whole nanoseconds: ``Gaps`` keeps them as such in an
``array('I')`` (4 bytes, gaps up to 4.29 s), or ``array('q')`` when one is longer or negative,
and gives each back as ``ns / 1e6``, the very float the list held (so JSON files and statistics
are unchanged).  Values that are not whole nanoseconds (built by hand, NaN, read back from an
edited file) are kept as given, in an ``array('d')``.  Read-only: a record's gaps are measured
once.  No numpy here: ``stats.py`` reads the buffer through ``ns_or_ms``.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import pairwise
from typing import Any, overload

__all__ = ["Gaps"]

_NS_PER_MS = 1e6


class Gaps(Sequence[float]):
    """Gaps between token events, in ms (see the module docstring for the storage)."""

    __slots__ = ("_values",)

    def __init__(self, values: Iterable[float | None] = ()) -> None:
        """Gaps given in ms; ``None`` (a null read back from JSON) is kept as NaN."""
        ms = [float("nan") if v is None else float(v) for v in values]
        ns = _whole_ns(ms)
        self._values: array[Any] = _compact(ns) if ns is not None else array("d", ms)

    @classmethod
    def from_stamps(cls, stamps_ns: Sequence[int]) -> Gaps:
        """The gaps between consecutive ``perf_counter_ns`` stamps (one fewer than stamps)."""
        gaps = cls()
        gaps._values = _compact([b - a for a, b in pairwise(stamps_ns)])
        return gaps

    @property
    def ns_or_ms(self) -> tuple[array[Any], float]:
        """The stored array and what divides it into ms (1e6 for nanoseconds, else 1.0): for
        numpy's buffer protocol, without a float object per gap."""
        values = self._values
        return values, (1.0 if values.typecode == "d" else _NS_PER_MS)

    def __len__(self) -> int:
        return len(self._values)

    @overload
    def __getitem__(self, index: int) -> float: ...
    @overload
    def __getitem__(self, index: slice) -> list[float]: ...
    def __getitem__(self, index: int | slice) -> float | list[float]:
        if isinstance(index, slice):
            return list(self)[index]
        values = self._values
        return values[index] if values.typecode == "d" else values[index] / _NS_PER_MS

    def __iter__(self) -> Iterator[float]:
        values = self._values
        if values.typecode == "d":
            return iter(values)
        return (v / _NS_PER_MS for v in values)

    def tolist(self) -> list[float]:
        """The gaps as a list of floats: what ``to_dict`` writes."""
        values = self._values
        if values.typecode == "d":
            return values.tolist()
        return [v / _NS_PER_MS for v in values]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Gaps):
            return self.tolist() == other.tolist()
        if isinstance(other, (list, tuple)):
            return self.tolist() == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Gaps({self.tolist()!r})"

    def __sizeof__(self) -> int:
        """The wrapper and the array it alone owns, so ``sys.getsizeof`` tells the real cost."""
        return object.__sizeof__(self) + self._values.__sizeof__()

    def __reduce__(self) -> tuple[type[Gaps], tuple[list[float]]]:
        return Gaps, (self.tolist(),)


def _compact(ns: list[int]) -> array[int]:
    """4 bytes a gap when every gap fits an unsigned 32-bit count of ns, else 8."""
    try:
        return array("I", ns)
    except OverflowError:  # a gap over 4.29 s, or a stamp out of order
        return array("q", ns)


def _whole_ns(ms: list[float]) -> list[int] | None:
    """The gaps as whole ns when each one is exactly ``ns / 1e6`` (as measured), else None."""
    out = []
    for v in ms:
        try:
            n = round(v * _NS_PER_MS)
        except (OverflowError, ValueError):  # inf, NaN
            return None
        if n / _NS_PER_MS != v or not -(2**63) <= n < 2**63:
            return None
        out.append(n)
    return out
