"""The small Mooncake-format trace shipped as datasets/mooncake_sample.jsonl, made from a seed.

Invented by the project (no real request in it), shaped like the FAST'25 traces: requests on
Poisson arrivals (about 10 a second, 200 in about 20 s), prompts of 1 to 8 blocks of 512 tokens
(input lengths 512..4096), and a few hash-id trees: system prompts of 1, 2, 3 and 4 blocks that
many requests start with, conversations that grow by extending an earlier request's blocks, and
some requests that share nothing.  ``sample_text()`` is the file's exact content; a test checks
that the shipped file equals it.  No I/O except ``write_sample``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

__all__ = ["SAMPLE_SEED", "make_sample", "sample_text", "write_sample"]

SAMPLE_SEED = 0
_BLOCK = 512
_MAX_BLOCKS = 8  # 4096 tokens at most
_ROOTS = (1, 2, 3, 4)  # blocks of each tree's shared system prompt


def make_sample(seed: int = SAMPLE_SEED, requests: int = 200) -> list[dict[str, Any]]:
    """The trace's lines as dicts, in timestamp order."""
    rng = random.Random(f"{seed}:mooncake-sample")
    next_id = 0

    def fresh(n: int) -> list[int]:
        nonlocal next_id
        next_id += n
        return list(range(next_id - n, next_id))

    roots = [fresh(n) for n in _ROOTS]
    earlier: list[list[list[int]]] = [[] for _ in roots]  # each tree's earlier prompts (full blocks)
    lines: list[dict[str, Any]] = []
    t_ms = 0.0
    for _ in range(requests):
        t_ms += rng.expovariate(10.0) * 1000
        tree = rng.randrange(len(roots) + 1)  # the last "tree" is: no shared prefix at all
        if tree == len(roots):
            prefix: list[int] = []
        elif earlier[tree] and rng.random() < 0.4:
            prefix = list(rng.choice(earlier[tree]))  # a conversation's next turn
        else:
            prefix = list(roots[tree])
        prefix = prefix[: _MAX_BLOCKS - 1]
        blocks = rng.randint(max(1, len(prefix)), _MAX_BLOCKS)
        ids = prefix + fresh(blocks - len(prefix))
        cut = rng.randint(0, _BLOCK - 1) if blocks > 1 else 0
        if tree < len(roots):
            earlier[tree].append(ids[:-1] if cut else ids)
        lines.append(
            {
                "timestamp": int(t_ms),
                "input_length": blocks * _BLOCK - cut,
                "output_length": rng.randint(16, 256),
                "hash_ids": ids,
            }
        )
    return lines


def sample_text(seed: int = SAMPLE_SEED, requests: int = 200) -> str:
    """The JSONL text of the sample: one line per request, as the FAST'25 files write them."""
    return "".join(json.dumps(line) + "\n" for line in make_sample(seed, requests))


def write_sample(path: str | Path, seed: int = SAMPLE_SEED) -> None:
    """Write the sample to ``path`` (how datasets/mooncake_sample.jsonl was made)."""
    Path(path).write_text(sample_text(seed), encoding="utf-8")
