"""The long-doc workload: D documents of T tokens, K questions of Q tokens asked of each.

Mirrors LMCache's ``benchmarks/long_doc_qa/long_doc_qa.py`` (8 documents of 20000 tokens, each
sent ``--repeat-count 2`` times, 100-token answers, order ``--repeat-mode random`` by default),
with a question after the document so that the K prompts of a document differ.  The order
decides whether the working set fits the cache: ``grouped`` (LMCache's ``interleave``: a
document's questions back to back) reuses a document at once, ``interleaved`` (LMCache's
``tile``: every document before the next question) only after all D documents.  Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from drbench.tokens import TokenCounter
from drbench.workloads.synth import Synth
from drbench.workloads.workload import Workload, check_ranges, order_records, param

__all__ = ["NAME", "LongDocParams", "generate"]

NAME = "long-doc"

Order = Literal["random", "grouped", "interleaved"]

# LMCache's --repeat-mode names, which say the opposite of ours: refused with the translation.
LMCACHE_ORDERS = {"tile": "interleaved", "interleave": "grouped"}


@dataclass(frozen=True)
class LongDocParams:
    """LMCache long_doc_qa's defaults; questions=2 is its --repeat-count 2."""

    docs: int = param(8, "documents", lo=1, hi=100_000)
    doc: int = param(20000, "tokens of each document", lo=1, hi=10**7)
    questions: int = param(2, "questions asked of each document", lo=1, hi=100_000)
    question: int = param(20, "tokens of each question (after the document)", lo=1, hi=10**6)
    answer: int = param(100, "max_tokens of every answer", lo=1, hi=10**6)
    order: Order = param(
        "random",
        "send order: random (LMCache's default), grouped (a document's questions together), "
        "interleaved (each document once before any second question)",
    )

    def __post_init__(self) -> None:
        check_ranges(self, NAME)

    @property
    def implied(self) -> dict[str, Any]:
        """The run settings this workload needs (applied unless the user set them)."""
        return {}


def generate(p: LongDocParams, *, counter: TokenCounter, seed: int) -> Workload:
    """The D x K records in the chosen order; offered share D(K-1)T / (DK(T+Q))."""
    total = p.docs * p.questions
    synth = Synth.create(counter, workload=NAME, seed=seed, blocks=p.docs + total)
    synth.check_size(total * (p.doc + p.question), "lower docs=, doc= or questions=")
    records = synth.grouped(
        p.docs, p.questions, ("doc", "d", p.doc), ("question", "q", p.question), p.answer
    )
    offered = p.docs * (p.questions - 1) * p.doc / (total * (p.doc + p.question))
    return Workload(
        name=NAME,
        records=order_records(records, p.docs, p.questions, p.order, f"{seed}:{NAME}:order"),
        implied=p.implied,
        offered_round1=offered,
        detail=(
            f"{p.docs} documents of {p.doc} tokens x {p.questions} questions of {p.question} "
            f"tokens, {p.order} order"
        ),
    )
