"""The sessions workload: U users, each a conversation of R rounds over a shared system prompt.

Mirrors LMCache's ``benchmarks/multi-round-qa`` (its defaults: 10 users, 5 rounds, a 1000-token
system prompt shared by every user, a 2000-token private history per user, 100-token answers).
One record per user carries round 1 and the follow-up questions; the run sends it with
``--rounds R --round2-mode continue`` (round k: the conversation so far, with the real answers,
plus ``followups[k-2]``).  Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drbench.tokens import TokenCounter
from drbench.workloads.synth import Synth
from drbench.workloads.workload import Workload, check_ranges, param

__all__ = ["NAME", "SessionsParams", "generate"]

NAME = "sessions"


@dataclass(frozen=True)
class SessionsParams:
    """LMCache multi-round-qa's defaults; question=20 is about its fixed question sentence
    ("Here's question #1: can you tell me a new long story with a happy ending?")."""

    users: int = param(10, "users, each one conversation", lo=1, hi=100_000)
    rounds: int = param(5, "rounds (turns) per user; sets --rounds", lo=2, hi=1000)
    system: int = param(1000, "tokens of the system prompt shared by all users", lo=0, hi=10**6)
    history: int = param(2000, "tokens of each user's private history (first turn)", lo=0, hi=10**6)
    question: int = param(20, "tokens of each question", lo=1, hi=10**6)
    answer: int = param(100, "max_tokens of every answer", lo=1, hi=10**6)

    def __post_init__(self) -> None:
        check_ranges(self, NAME)

    @property
    def implied(self) -> dict[str, Any]:
        """The run settings this workload needs (applied unless the user set them)."""
        return {"rounds": self.rounds, "round2_mode": "continue"}


def generate(p: SessionsParams, *, counter: TokenCounter, seed: int) -> Workload:
    """One record per user; offered share in round 1 (U-1)A / (U(A+H+Q))."""
    per_user = p.rounds  # history + first question, then R-1 follow-ups
    synth = Synth.create(counter, workload=NAME, seed=seed, blocks=1 + p.users * (per_user + 1))
    asked = p.users * (p.system + p.history + p.rounds * p.question)
    synth.check_size(asked, "lower users=, rounds=, system=, history= or question=")
    system = synth.block("system", 0, p.system)
    records: list[dict[str, Any]] = []
    for u in range(p.users):
        base = 1 + u * (per_user + 1)
        history = synth.block(f"history-u{u}", base, p.history)
        first = synth.extend(history, f"question-u{u}-r1", base + 1, p.history + p.question)
        followups = [
            synth.block(f"question-u{u}-r{r}", base + r, p.question) for r in range(2, p.rounds + 1)
        ]
        records.append(
            {
                "id": f"user-{u}",
                "messages": _messages(system, first),
                "followups": followups,
                "max_tokens": p.answer,
                "prefix_group": "shared",
            }
        )
    offered = (p.users - 1) * p.system / (p.users * (p.system + p.history + p.question))
    return Workload(
        name=NAME,
        records=records,
        implied=p.implied,
        offered_round1=offered,
        detail=(
            f"{p.users} users x {p.rounds} rounds, system {p.system} (shared) + history "
            f"{p.history} + question {p.question} tokens, answers {p.answer}"
        ),
    )


def _messages(system: str, first: str) -> list[dict[str, str]]:
    """The system turn (left out when system=0: an empty system turn is not a prompt) and
    the user's first turn."""
    user = {"role": "user", "content": first}
    return [{"role": "system", "content": system}, user] if system else [user]
