"""The shared-prefix workload: G groups of Q prompts, each a group prefix plus a unique suffix.

Mirrors SGLang's ``bench_serving --dataset-name generated-shared-prefix`` (its defaults, and its
shuffled send order unless ``--gsp-ordered``) and vLLM's ``prefix_repetition``.  Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from drbench.tokens import TokenCounter
from drbench.workloads.synth import Synth
from drbench.workloads.workload import Workload, check_ranges, order_records, param

__all__ = ["NAME", "SharedPrefixParams", "generate"]

NAME = "shared-prefix"

Order = Literal["random", "grouped", "interleaved"]


@dataclass(frozen=True)
class SharedPrefixParams:
    """SGLang's gsp defaults: 64 groups x 16 prompts, 2048-token prefix, 128 + 256 tokens."""

    groups: int = param(64, "prompt groups, each with its own shared prefix", lo=1, hi=100_000)
    prompts: int = param(16, "prompts per group", lo=1, hi=100_000)
    prefix: int = param(2048, "tokens of the prefix every prompt of a group shares", lo=0, hi=10**6)
    suffix: int = param(128, "tokens of each prompt's unique suffix", lo=1, hi=10**6)
    output: int = param(256, "max_tokens of every prompt", lo=1, hi=10**6)
    order: Order = param(
        "random", "send order: random (SGLang's default), grouped, interleaved (round robin)"
    )

    def __post_init__(self) -> None:
        check_ranges(self, NAME)

    @property
    def implied(self) -> dict[str, Any]:
        """The run settings this workload needs (applied unless the user set them)."""
        return {}


def generate(p: SharedPrefixParams, *, counter: TokenCounter, seed: int) -> Workload:
    """The G x Q records in the chosen order; offered share G(Q-1)P / (GQ(P+S))."""
    total = p.groups * p.prompts
    synth = Synth.create(counter, workload=NAME, seed=seed, blocks=p.groups + total)
    synth.check_size(total * (p.prefix + p.suffix), "lower groups=, prompts=, prefix= or suffix=")
    records = synth.grouped(
        p.groups, p.prompts, ("prefix", "g", p.prefix), ("suffix", "p", p.suffix), p.output
    )
    offered = p.groups * (p.prompts - 1) * p.prefix / (total * (p.prefix + p.suffix))
    return Workload(
        name=NAME,
        records=order_records(records, p.groups, p.prompts, p.order, f"{seed}:{NAME}:order"),
        implied=p.implied,
        offered_round1=offered,
        detail=(
            f"{p.groups} groups x {p.prompts} prompts, prefix {p.prefix} + suffix {p.suffix} "
            f"tokens, {p.order} order"
        ),
    )
