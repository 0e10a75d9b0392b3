"""The ideal-cache oracle: per round, the hit rate an LRU of the server's capacity would get.

Beside the *attainable* share (an unlimited cache: reuse.py's offered share, computed before a
round), this replays the round through an ``LruCache`` of the server's capacity in blocks:
the **expected** hit rate.  A request's prompt is looked up when it is sent (its leading cached
blocks, at most ``(units - 1) // block`` of them) and its blocks are then findable, as vLLM v1
caches the blocks it schedules; when it ends, its prompt and its real answer (the record's
text) are inserted tail first, so the LRU order follows when requests ended, as vLLM's
free-block queue does.  Requests are replayed in the order of their records' start and end
times (an end before a start at the same time): at concurrency 1 that is the send order,
each request over before the next.

The replay needs the answers, so it runs once the round's records are in, before the next
round starts; the prompts' units and hashes were made before the round (for the offered
share) and are not made again.  What it does not model: blocks pinned by running requests
(vLLM cannot evict them; here they can go), the server's own tokenizer and template when
``--tokenizer`` is not given, preemption, and several replicas.  docs/cache_analysis.md says
how close it gets.  Pure apart from the cache objects it is handed; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from drbench.messages import Message
from drbench.reuse import (
    BlockSource,
    LevelReuse,
    LruCache,
    Reuse,
    Tokenization,
    UnitKind,
    Units,
    chain_hashes,
    reusable_blocks,
)

if TYPE_CHECKING:
    from drbench.client import PreparedRequest
    from drbench.records import RequestRecord

__all__ = [
    "NO_CAPACITY",
    "CapacitySource",
    "Expected",
    "LevelOracle",
    "Sent",
    "efficiency",
    "replay",
]

CapacitySource = Literal["server", "flag"]

#: What the report says when there is no capacity to compute the expected hit rate from.
NO_CAPACITY = Message("no_capacity")


@dataclass(frozen=True, slots=True)
class Expected:
    """Units an LRU of the server's capacity would have served, over the units sent."""

    cached: int
    total: int
    capacity_tokens: int
    capacity_source: CapacitySource
    block_size: int
    unit: UnitKind
    block_source: BlockSource = "server"
    requests: int = 0  # the round's requests that ended well (the only ones replayed)

    @property
    def share(self) -> float | None:
        """cached / total: the expected hit rate; None for a round that sent no unit."""
        return self.cached / self.total if self.total else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cached_units": self.cached,
            "total_units": self.total,
            "unit": self.unit,
            "requests": self.requests,
            "capacity_tokens": self.capacity_tokens,
            "capacity_blocks": self.capacity_tokens // self.block_size,
            "capacity_source": self.capacity_source,
            "block_size": self.block_size,
            "block_size_source": self.block_source,
        }


@dataclass(frozen=True, slots=True)
class Sent:
    """One request of a round as the oracle saw it before the round: its units and hashes."""

    prompt_id: str
    payload: Mapping[str, Any]
    units: Units
    hashes: Sequence[int]


def efficiency(measured: float | None, attainable: float | None) -> float | None:
    """measured / attainable: the share of the possible reuse the server got (None when
    either is unknown or nothing was attainable)."""
    if measured is None or not attainable:
        return None
    return measured / attainable


def replay(
    sent: Sequence[Sent],
    records: Sequence[RequestRecord],
    cache: LruCache,
    tokens: Tokenization,
    block_size: int,
) -> tuple[int, int, int, list[list[int]]]:
    """Replay a finished round through ``cache``: (cached units, total units, requests, the
    chains of what each request left cached: prompt and answer).

    Only requests that ended well are replayed (a failed one has no usage to compare with;
    its blocks are left out too).
    """
    by_id = {r.prompt_id: r for r in records if r.ok}
    done = [(s, by_id[s.prompt_id]) for s in sent if s.prompt_id in by_id]
    timed = all(r.end_ms is not None for _, r in done)
    events: list[tuple[float, int, int]] = []  # (time, 0 = end / 1 = start, index)
    for i, (_, rec) in enumerate(done):
        if timed:
            events += [(rec.start_ms, 1, i), (rec.end_ms or rec.start_ms, 0, i)]
        else:  # no times: one after the other, in send order
            events += [(2.0 * i, 1, i), (2.0 * i + 1, 0, i)]
    events.sort()
    cached = total = 0
    chains: list[list[int]] = []
    for _, kind, i in events:
        s, rec = done[i]
        if kind == 1:
            count = s.units.count
            cached += cache.lookup(s.hashes[: reusable_blocks(count, block_size)]) * block_size
            total += count
            cache.insert(s.hashes)
        else:
            held = tokens.held(s.payload, s.units, rec.output_text or "")
            chain = chain_hashes(held.blocks(block_size))
            cache.insert(chain)
            chains.append(chain)
    return cached, total, len(done), chains


@dataclass
class LevelOracle:
    """One level's yardsticks: the attainable share before each round (``before``) and the
    expected hit rate once its records are in (``after``); both caches start cold."""

    reuse: LevelReuse
    capacity_tokens: int | None = None
    capacity_source: CapacitySource = "server"
    lru: LruCache | None = None
    _sent: list[Sent] = field(default_factory=list)

    @classmethod
    def for_level(
        cls,
        reuse: LevelReuse,
        capacity_tokens: int | None,
        capacity_source: CapacitySource = "server",
    ) -> LevelOracle:
        lru = LruCache(capacity_tokens // reuse.block_size) if capacity_tokens else None
        return cls(reuse, capacity_tokens, capacity_source, lru)

    def before(self, requests: Sequence[PreparedRequest]) -> Reuse:
        """The attainable (offered) share of a round about to be sent."""
        tokens = self.reuse.tokens
        units = [tokens.prompt(r.payload) for r in requests]
        found, chains = self.reuse.offer(units)
        if self.lru is not None:  # kept for the replay only when there is one to make
            self._sent = [
                Sent(r.prompt_id, r.payload, u, h)
                for r, u, h in zip(requests, units, chains, strict=True)
            ]
        return found

    def after(self, records: Sequence[RequestRecord], *, answers_reused: bool) -> Expected | None:
        """The round's expected hit rate (None without a capacity).  With ``answers_reused``
        (``--round2-mode continue``) the answers also go to the unlimited cache, so the next
        turn is offered its history; the caller then skips ``LevelReuse.answered``."""
        if self.lru is None or self.capacity_tokens is None:
            return None
        reuse = self.reuse
        cached, total, n, chains = replay(
            self._sent, records, self.lru, reuse.tokens, reuse.block_size
        )
        self._sent = []
        if answers_reused:
            reuse.remember_chains(chains)
        return Expected(
            cached,
            total,
            self.capacity_tokens,
            self.capacity_source,
            reuse.block_size,
            reuse.unit,
            reuse.block_source,
            n,
        )
