#!/usr/bin/env python3
"""What the offered prefix share costs the runner: µs per 1,000 prompt units.

The runner computes each round's offered share (drbench/reuse.py) in the main process just
before the round starts, so its cost delays round 1's first request by that much; it must stay
in milliseconds for a 100k-token prompt.  Each case simulates a round of prompts through one
level's unlimited cache (the full path: request text, units, block hashes, lookup, insert),
twice (round 1 cold, round 2 warm), and prints the best of ``--repeat`` runs per 1,000 units:

- English text (estimated units: one run, blocks are fixed slices of the text);
- Chinese text with some ASCII (estimated units: runs of CJK and of other characters);
- a worst case for the estimate, a change of script every few characters;
- token ids as ``--tokenizer`` gives them (the tokenizer's own encode is not counted: the
  request already paid it once to count its prompt tokens).

    python bench/reuse_cost.py                  # ~2 s of CPU
    python bench/reuse_cost.py --units 100000 --prompts 1 --repeat 5
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drbench.reuse import (  # noqa: E402
    LevelReuse,
    TokenUnits,
    UnlimitedCache,
    offered,
)
from drbench.tokens import EstimateCounter  # noqa: E402

_ENGLISH = "The prefix cache keeps every block of the prompts it has seen, tail before head. "
_CHINESE = (
    "在2023年的报告中，研究人员发现前缀缓存的命中率提高了百分之三十，这对推理非常重要。GPU 1024 "
)
_WORST = "这是 a test 中文，words here. "


def _text(piece: str, units: int) -> str:
    """``piece`` repeated to about ``units`` estimated tokens."""
    per = EstimateCounter().count(piece)
    return piece * max(units // per, 1)


def _best(run: Callable[[], int], repeat: int) -> tuple[float, int]:
    """The fastest of ``repeat`` runs in seconds, and the units it simulated."""
    best, units = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        units = run()
        best = min(best, time.perf_counter() - t0)
    return best, units


def _text_case(piece: str, units: int, prompts: int) -> Callable[[], int]:
    texts = [f"{i} " + _text(piece, units) for i in range(prompts)]  # unique, shared after "i "

    def run() -> int:
        level = LevelReuse.for_server(None, None)
        total = 0
        for _ in range(2):  # round 1, then round 2 through the same cache
            total += level.round({"prompt": t} for t in texts).total
        return total

    return run


def _ids_case(units: int, prompts: int) -> Callable[[], int]:
    seqs = [TokenUnits([i, *range(units)]) for i in range(prompts)]

    def run() -> int:
        cache = UnlimitedCache()
        return sum(offered(seqs, cache, 16).total for _ in range(2))

    return run


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=100_000, help="units a prompt (default 100000)")
    ap.add_argument("--prompts", type=int, default=4, help="prompts a round (default 4)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per case, best kept (default 5)")
    args = ap.parse_args(list(argv) if argv is not None else None)
    cases = {
        "English text, estimated": _text_case(_ENGLISH, args.units, args.prompts),
        "Chinese + ASCII, estimated": _text_case(_CHINESE, args.units, args.prompts),
        "script change every ~4 chars": _text_case(_WORST, args.units, args.prompts),
        "token ids (--tokenizer)": _ids_case(args.units, args.prompts),
    }
    print(
        f"{args.prompts} prompts of ~{args.units:,} units, 2 rounds, block 16, best of {args.repeat}"
    )
    print(f"{'case':<30} {'units':>10} {'ms':>8} {'µs/1k units':>12} {'ms/100k units':>14}")
    for name, run in cases.items():
        seconds, units = _best(run, args.repeat)
        per_k = seconds * 1e6 / (units / 1000)
        print(f"{name:<30} {units:>10,} {seconds * 1e3:>8.1f} {per_k:>12.1f} {per_k / 10:>14.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
