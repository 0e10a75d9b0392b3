"""A load level: a closed loop of C concurrent requests, an open loop of R requests/s, or a
trace replayed on its own timestamps at a speed-up factor.

A level used to be a bare concurrency; it is now a value with a kind, so that records, file names,
tables, plots and summary.json all say which shape of load produced a figure.  ``key`` is the
compact form every record carries (``concurrency=5``, ``rate=10``, ``rate=inf``, ``trace=2x``); ``slug`` names
the per-round files; ``to_dict`` is summary.json's ``level`` object (schema 2).  An infinite rate
is written ``"inf"`` in JSON, as vLLM's result files do, so the files stay strict JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Level", "LevelKind", "format_rate"]

LevelKind = Literal["concurrency", "rate", "trace"]


@dataclass(frozen=True, slots=True)
class Level:
    """``concurrency`` is C for a closed loop; ``rate`` (req/s, ``math.inf`` = all at once) for
    an open loop; ``speedup`` for a trace replay (``--fixed-schedule``: each record's timestamp
    divided by it).  ``max_concurrency`` caps the requests in flight of an open loop or a trace."""

    kind: LevelKind
    concurrency: int | None = None
    rate: float | None = None
    max_concurrency: int | None = None
    speedup: float | None = None

    def __post_init__(self) -> None:
        if self.kind == "concurrency" and (self.concurrency is None or self.concurrency < 1):
            raise ValueError(f"a concurrency level needs C >= 1, not {self.concurrency}")
        if self.kind == "rate" and (self.rate is None or not self.rate > 0):
            raise ValueError(f"a rate level needs a rate > 0, not {self.rate}")
        if self.kind == "trace" and (self.speedup is None or not 0 < self.speedup < math.inf):
            raise ValueError(f"a trace level needs a finite speed-up > 0, not {self.speedup}")

    @classmethod
    def closed(cls, concurrency: int) -> Level:
        return cls("concurrency", concurrency=concurrency)

    @classmethod
    def open(cls, rate: float, max_concurrency: int | None = None) -> Level:
        return cls("rate", rate=float(rate), max_concurrency=max_concurrency)

    @classmethod
    def trace(cls, speedup: float, max_concurrency: int | None = None) -> Level:
        return cls("trace", speedup=float(speedup), max_concurrency=max_concurrency)

    @property
    def in_flight_cap(self) -> int | None:
        """The most requests this level may have in flight (None: as many as the schedule)."""
        return self.concurrency if self.kind == "concurrency" else self.max_concurrency

    @property
    def key(self) -> str:
        """``concurrency=5``, ``rate=10`` or ``trace=2x``: what each record of the level carries."""
        if self.kind == "concurrency":
            return f"concurrency={self.concurrency}"
        if self.kind == "trace":
            return f"trace={format_rate(self.speedup)}x"
        return f"rate={format_rate(self.rate)}"

    @property
    def slug(self) -> str:
        """The level's part of a file name: ``concurrency_5``, ``rate_2.5``, ``trace_1x``."""
        return self.key.replace("=", "_")

    @property
    def label(self) -> str:
        """How tables and messages name it: ``concurrency 5``, ``rate 10 req/s (at most 32 in
        flight)``, ``rate inf (all at once)``, ``trace at 2x speed``."""
        if self.kind == "concurrency":
            return f"concurrency {self.concurrency}"
        rate = self.rate or 0.0
        if self.kind == "trace":
            text = f"trace at {format_rate(self.speedup)}x speed"
        elif math.isinf(rate):
            text = "rate inf (all at once)"
        else:
            text = f"rate {format_rate(rate)} req/s"
        if self.max_concurrency is not None:
            text += f" (at most {self.max_concurrency} in flight)"
        return text

    @property
    def short(self) -> str:
        """For progress bars and narrow columns: ``C=5``, ``R=10/s``, ``R=inf``, ``T=2x``."""
        if self.kind == "concurrency":
            return f"C={self.concurrency}"
        if self.kind == "trace":
            return f"T={format_rate(self.speedup)}x"
        rate = self.rate or 0.0
        return "R=inf" if math.isinf(rate) else f"R={format_rate(rate)}/s"

    @property
    def x(self) -> float:
        """The level's position on a plot's x axis: C, the rate, or the speed-up."""
        if self.kind == "concurrency":
            return float(self.concurrency or 0)
        if self.kind == "trace":
            return self.speedup or 0.0
        return self.rate or 0.0

    def to_dict(self) -> dict[str, Any]:
        rate: float | str | None = self.rate
        if self.rate is not None and math.isinf(self.rate):
            rate = "inf"
        return {
            "kind": self.kind,
            "concurrency": self.concurrency,
            "request_rate": rate,
            "max_concurrency": self.max_concurrency,
            "speedup": self.speedup,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Level:
        if d.get("kind") == "trace":
            return cls.trace(float(d.get("speedup") or 0), d.get("max_concurrency"))
        if d.get("kind") == "rate":
            rate = d.get("request_rate")
            value = math.inf if rate == "inf" else float(rate or 0)
            return cls.open(value, d.get("max_concurrency"))
        return cls.closed(int(d["concurrency"]))

    @classmethod
    def from_key(cls, key: str) -> Level:
        """Inverse of ``key`` (a rate or trace level's cap is not in its key)."""
        kind, _, value = key.partition("=")
        if kind == "trace" and value.endswith("x"):
            return cls.trace(float(value[:-1]))
        if kind == "rate":
            return cls.open(math.inf if value == "inf" else float(value))
        if kind == "concurrency":
            return cls.closed(int(value))
        raise ValueError(f"not a level key: {key!r}")


def format_rate(rate: float | None) -> str:
    """``10``, ``2.5``, ``inf``: the shortest text that reads back as the same rate."""
    if rate is None:
        return "-"
    if math.isinf(rate):
        return "inf"
    return f"{rate:g}" if float(f"{rate:g}") == rate else repr(rate)
