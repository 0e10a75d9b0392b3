"""What a run produced, level by level and round by round: the objects reports are made from.

The runner fills these as rounds finish, so an interrupted run still holds every finished round;
``to_dict()`` gives the ``summary.json`` contract of docs/benchmarker_guide.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from drbench import __version__
from drbench.config import BenchConfig
from drbench.levels import Level
from drbench.oracle import NO_CAPACITY, efficiency
from drbench.records import ColdStart, RequestRecord, Round2Mode
from drbench.redact import redact_text

if TYPE_CHECKING:  # stats imports numpy: not before a run has something to summarise
    from drbench.breakdown import ContextBucket, TurnRow
    from drbench.gates import GateResult
    from drbench.oracle import Expected
    from drbench.reuse import Reuse
    from drbench.selfcheck import ProcessLoad
    from drbench.stats import Comparison, RoundComparison, RoundSummary

__all__ = ["SCHEMA_VERSION", "LevelResult", "RoundResult", "RunResult", "ServerRound"]

SCHEMA_VERSION = 2


class ServerRound(Protocol):
    """What a round's server-side figures give the reports.

    Prometheus' ``RoundServerMetrics`` is the one implementation; the results and reports need
    only this much of it, so they do not depend on where the Prometheus code lives.
    """

    @property
    def hit_rate(self) -> float | None:
        """The round's prefix-cache hit rate from counter deltas, or None."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The ``server_metrics`` block of the round's JSON (docs/benchmarker_guide.md)."""
        ...


@dataclass
class RoundResult:
    """One round of one level: its records, their summary and the server's view of it."""

    summary: RoundSummary
    records: list[RequestRecord]
    server: ServerRound | None = None  # when --prometheus-url is given
    truncated: bool = False  # --max-round-duration stopped it before every request was sent
    unsent: int = 0  # requests the truncation (or a halt) left unsent
    halted: str | None = None  # --on-lost-worker stop: the lost worker that stopped the round
    client: list[ProcessLoad] = field(default_factory=list)  # self-check: main process first
    offered: Reuse | None = None  # what an unlimited prefix cache could reuse of the round
    # What an LRU of the server's capacity would reuse (oracle.py); None without a capacity.
    expected: Expected | None = None

    @property
    def offered_share(self) -> float | None:
        """The attainable hit rate: an unlimited cache's share (computed before the round)."""
        return self.offered.share if self.offered is not None else None

    @property
    def expected_share(self) -> float | None:
        """The expected hit rate: an LRU of the server's capacity, replayed on the round."""
        return self.expected.share if self.expected is not None else None

    @property
    def measured_share(self) -> tuple[float | None, str | None]:
        """The measured hit rate efficiency is taken of, and which it is: usage's cached share
        (per request, like the oracle's units) when the server reports it, else the server's
        counter hit rate."""
        usage = self.summary.cache.client_cached_share
        if usage is not None:
            return usage, "usage"
        hit = self.server_hit_rate
        return (hit, "server") if hit is not None else (None, None)

    @property
    def efficiency(self) -> float | None:
        """Cache efficiency: measured / attainable (None when either is unknown or 0)."""
        return efficiency(self.measured_share[0], self.offered_share)

    @property
    def server_hit_rate(self) -> float | None:
        return self.server.hit_rate if self.server is not None else None

    def oracle_dict(self) -> dict[str, Any]:
        """``cache.oracle``: how the expected hit rate was made, or why it was not, and which
        measured figure the efficiency is of."""
        _, measured = self.measured_share
        return {
            "expected": self.expected.to_dict() if self.expected is not None else None,
            "expected_missing": None if self.expected is not None else NO_CAPACITY,
            "efficiency_measured": measured,
        }

    def to_dict(self) -> dict[str, Any]:
        d = self.summary.to_dict()
        for error in d.get("errors") or []:  # a message may quote a URL with its password
            if error.get("message"):
                error["message"] = redact_text(error["message"])
        d["cache"] = {
            **(d.get("cache") or {}),
            "server_hit_rate": self.server_hit_rate,
            "offered_share": self.offered_share,
            "offered": self.offered.to_dict() if self.offered is not None else None,
            "attainable": self.offered_share,
            "expected": self.expected_share,
            "efficiency": self.efficiency,
            "oracle": self.oracle_dict(),
        }
        d["server_metrics"] = self.server.to_dict() if self.server is not None else None
        d["truncated"] = self.truncated
        d["unsent"] = self.unsent
        d["halted"] = self.halted
        d["client"] = [p.to_dict() for p in self.client]
        return d


@dataclass
class LevelResult:
    """All rounds at one level, each later round compared with earlier ones, and TTFT by turn
    and by context length (filled by the runner once the level's rounds are done)."""

    level: Level
    cold_start: ColdStart
    rounds: list[RoundResult] = field(default_factory=list)
    comparison: Comparison | None = None  # round 2 vs round 1: schema 2's ``comparison``
    comparisons: list[RoundComparison] = field(default_factory=list)  # stats.round_pairs order
    by_turn: list[TurnRow] = field(default_factory=list)
    by_context: list[ContextBucket] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    effective_concurrency: int | None = None  # at most the number of prompts
    round2_mode: Round2Mode = "repeat"
    warmup: dict[str, int] | None = None  # {"requests": N, "failed": k} when --warmup was given

    @property
    def concurrency(self) -> int | None:
        """C of a closed-loop level (None for a rate level)."""
        return self.level.concurrency

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level.to_dict(),
            "concurrency": self.level.concurrency,
            "warmup": self.warmup,
            "effective_concurrency": self.effective_concurrency,
            "cold_start": self.cold_start,
            "round2_mode": self.round2_mode,
            "rounds": [r.to_dict() for r in self.rounds],
            "comparison": self.comparison.to_dict() if self.comparison else None,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "by_turn": [row.to_dict() for row in self.by_turn],
            "by_context": [row.to_dict() for row in self.by_context],
            "warnings": [redact_text(w) for w in self.warnings],
        }


@dataclass
class RunResult:
    """The whole run; ``interrupted`` is set when Ctrl-C or a crash cut it short."""

    config: BenchConfig
    started_at: str
    model: str | None = None
    run_token: str = ""
    finished_at: str | None = None
    interrupted: bool = False
    levels: list[LevelResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timing: dict[str, Any] = field(default_factory=dict)  # how chunks were stamped
    max_tokens_sources: dict[str, int] = field(default_factory=dict)  # flag/dataset/default
    gates: list[GateResult] = field(default_factory=list)  # once the run ended
    server_profile: dict[str, Any] | None = None  # prometheus ServerSetup.to_dict(), if scraped
    workload: dict[str, Any] | None = None  # --workload: workload_run.workload_summary
    executor: dict[str, Any] | None = None  # --workers / --executor ray: engine.ExecutorInfo

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "drbench", "version": __version__},
            "config": {
                **self.config.to_dict(),
                "model": self.model,
                "max_tokens_sources": dict(self.max_tokens_sources),
            },
            "run": {
                "started_at": self.started_at,
                "finished_at": self.finished_at,
                "interrupted": self.interrupted,
                "run_token": self.run_token,
                "warnings": [redact_text(w) for w in self.warnings],
                "timing": dict(self.timing),
                "server_profile": self.server_profile,
                "executor": self.executor,
            },
            "workload": self.workload,
            "levels": [lv.to_dict() for lv in self.levels if lv.rounds],
            "gates": [g.to_dict() for g in self.gates],
        }
