"""Per-subset prompt-length summary and the "smart format recommendation" of convert_longbench.

Given a subset's prompt lengths in tokens, its ``max_tokens``, the server's ``--max-model-len``
and a KV-cache budget in tokens, recommend (docs/converter_guide.md explains why):

- ``--max-tokens``: the subset's official maximum generation length (or the user's override);
- concurrency 1..C, where C = floor(KV budget / (p90 prompt tokens + max_tokens)): the most
  requests of a typical long prompt that run at once without preemption;
- ``--num-samples``: the prompts that fit the model, capped at floor(KV budget / mean prompt
  tokens), so every prompt of round 1 can still be cached when round 2 repeats it.

Pure arithmetic and one text table; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tabulate import tabulate

__all__ = ["SubsetReport", "analyse", "percentile", "render"]

MAX_CONCURRENCY = 256  # beyond this the recommendation stops being informative


@dataclass(frozen=True, slots=True)
class SubsetReport:
    """What one subset looks like in tokens, and what to run it with."""

    subset: str
    records: int
    min_tokens: int
    p50_tokens: int
    p90_tokens: int
    max_tokens_seen: int
    over_limit: int  # prompts with prompt + max_tokens above --max-model-len
    max_tokens: int
    num_samples: int
    concurrency: tuple[int, int]
    round_fits_cache: bool  # every fitting prompt fits the KV budget at once
    chat_template: bool
    shared_prefix_tokens: int = 0  # tokens every prompt of the subset starts with


def percentile(values: Sequence[int], q: float) -> int:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of non-empty ``values``."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def analyse(
    subset: str,
    prompt_tokens: Sequence[int],
    *,
    max_tokens: int,
    max_model_len: int,
    kv_cache_tokens: int,
    chat_template: bool = True,
    shared_prefix_tokens: int = 0,
) -> SubsetReport:
    """The summary and recommendation for one subset (see the module docstring for the rules)."""
    limit = max(1, max_model_len - max_tokens)
    fitting = [min(t, limit) for t in prompt_tokens]
    over = sum(1 for t in prompt_tokens if t > limit)
    p90 = percentile(fitting, 90) if fitting else 0
    per_request = p90 + max_tokens
    top = max(1, min(MAX_CONCURRENCY, kv_cache_tokens // max(1, per_request)))
    mean = sum(fitting) / len(fitting) if fitting else 1
    cache_capacity = max(1, int(kv_cache_tokens // max(1.0, mean)))
    return SubsetReport(
        subset=subset,
        records=len(prompt_tokens),
        min_tokens=min(prompt_tokens, default=0),
        p50_tokens=percentile(prompt_tokens, 50) if prompt_tokens else 0,
        p90_tokens=percentile(prompt_tokens, 90) if prompt_tokens else 0,
        max_tokens_seen=max(prompt_tokens, default=0),
        over_limit=over,
        max_tokens=max_tokens,
        num_samples=min(len(prompt_tokens), cache_capacity),
        concurrency=(1, top),
        round_fits_cache=len(prompt_tokens) <= cache_capacity,
        chat_template=chat_template,
        shared_prefix_tokens=shared_prefix_tokens,
    )


def render(reports: Sequence[SubsetReport], *, counter: str, max_model_len: int, kv: int) -> str:
    """The recommendation table, with a footnote line per flag raised."""
    rows = [
        [
            r.subset,
            r.records,
            f"{r.min_tokens}/{r.p50_tokens}/{r.p90_tokens}/{r.max_tokens_seen}",
            r.over_limit or "",
            r.num_samples,
            r.max_tokens,
            f"{r.concurrency[0]}-{r.concurrency[1]}",
            r.shared_prefix_tokens or "",
            "" if r.chat_template else "no",
        ]
        for r in reports
    ]
    headers = [
        "subset",
        "records",
        "tokens min/p50/p90/max",
        "over limit",
        "--num-samples",
        "--max-tokens",
        "concurrency",
        "shared prefix",
        "chat template",
    ]
    lines = [
        f"Prompt lengths ({counter}); limits: --max-model-len {max_model_len}, "
        f"KV-cache budget {kv} tokens",
        tabulate(rows, headers=headers, tablefmt="simple"),
    ]
    lines.extend(_footnotes(reports, max_model_len))
    return "\n".join(lines)


def _footnotes(reports: Sequence[SubsetReport], max_model_len: int) -> list[str]:
    notes = []
    over = [f"{r.subset} ({r.over_limit})" for r in reports if r.over_limit]
    if over:
        notes.append(
            f"over limit: prompts that with --max-tokens exceed --max-model-len {max_model_len}: "
            f"{', '.join(over)} (see --overlong)"
        )
    spill = [r.subset for r in reports if not r.round_fits_cache]
    if spill:
        notes.append(
            f"cache: all prompts of {', '.join(spill)} do not fit the KV-cache budget at once; "
            "with more than --num-samples prompts, round 2 finds early prompts evicted"
        )
    if any(r.shared_prefix_tokens for r in reports):
        notes.append(
            "shared prefix: tokens every prompt of the subset starts with (the template's "
            "instruction); a cold round 1 still finds them cached after the first request"
        )
    plain = [r.subset for r in reports if not r.chat_template]
    if plain:
        notes.append(
            f"chat template: LongBench sends {', '.join(plain)} without one; benchmark them "
            "against a /v1/completions URL to match"
        )
    return notes
