"""The small Mooncake-format trace shipped as datasets/mooncake_sample.jsonl, made from a seed.

Invented by the project (no real request in it), shaped like the FAST'25 traces: requests on
Poisson arrivals (about 10 a second, 200 in about 20 s), prompts of 1 to 8 blocks of 512 tokens
(input lengths 512..4096), and a few hash-id trees: system prompts of 1, 2, 3 and 4 blocks that
many requests start with, conversations that grow by extending an earlier request's blocks, and
some requests that share nothing.  ``sample_text()`` is the file's exact content; a test checks
that the shipped file equals it.  No I/O except ``write_sample`` and ``main``, the command
datasets/README.md regenerates the file with (``python -m drbench.workloads.mooncake_sample``).
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from drbench.argparser import OneLineParser
from drbench.convert.cli import run
from drbench.errors import UsageError

__all__ = ["SAMPLE_SEED", "main", "make_sample", "sample_text", "write_sample"]

_DEFAULT_OUTPUT = "datasets/mooncake_sample.jsonl"

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
    earlier: list[list[list[int]]] = [
        [] for _ in roots
    ]  # each tree's earlier prompts (full blocks)
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
    try:
        Path(path).write_text(sample_text(seed), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--output {path}: cannot write: {exc.strerror or exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m drbench.workloads.mooncake_sample``; the exit status."""
    return run("mooncake_sample", lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    parser = OneLineParser(
        prog="python -m drbench.workloads.mooncake_sample",
        description="Write the small Mooncake-format sample trace (docs/workloads.md).",
    )
    parser.add_argument("--output", default=_DEFAULT_OUTPUT, metavar="FILE",
                        help=f"output JSONL (default {_DEFAULT_OUTPUT})")  # fmt: skip
    parser.add_argument("--seed", type=int, default=SAMPLE_SEED, help="seed (default 0)")
    args = parser.parse_args(argv)
    write_sample(args.output, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
