"""Mix benchmark datasets by ratio: ``python -m drbench.convert.mix --mix A:0.5 B:0.5 --total N``.

Each input is a file in the benchmarker's record format (read with drbench.dataset, so the
same checks apply).  Prompts repeated within or across files are dropped first; then each
file gives exactly its share of ``--total`` (largest-remainder rounding), sampled without
replacement with ``--seed``, and the result is shuffled.  A file too small for its share is an
error that says the largest ``--total`` the ratios allow: the ratios are never bent silently.
Every record keeps its ``source`` (the file's name when the record has none).
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drbench.convert.cli import Parser, add_output_and_seed, positive_int, run
from drbench.convert.jsonl import OutputRecord, unique_ids, write_jsonl
from drbench.convert.sampling import apportion, dedupe
from drbench.dataset import load_prompts
from drbench.errors import UsageError
from drbench.records import Prompt

__all__ = ["MixPart", "MixResult", "build_parser", "main", "mix", "parse_part"]

DEFAULT_OUTPUT = "datasets/MixedBench.jsonl"
_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class MixPart:
    """One ``--mix FILE:RATIO`` argument."""

    path: Path
    ratio: float


@dataclass(frozen=True)
class MixResult:
    """The mixed records and, per file, how many were usable and how many were taken."""

    records: list[OutputRecord]
    available: dict[str, int]
    taken: dict[str, int]
    duplicates: int


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m drbench.convert.mix``; returns the exit status."""
    return run("mix", lambda: _main(argv))


def build_parser() -> Parser:
    p = Parser(
        prog="python -m drbench.convert.mix",
        description="Mix benchmark JSONL files by ratio into one stratified, seeded dataset.",
        epilog="Docs: docs/converter_guide.md",
    )
    p.add_argument(
        "--mix",
        nargs="+",
        required=True,
        metavar="FILE:RATIO",
        help="input files and their shares, which must sum to 1",
    )
    p.add_argument(
        "--total",
        type=positive_int,
        required=True,
        metavar="N",
        help="number of records in the mix",
    )
    add_output_and_seed(p, DEFAULT_OUTPUT)
    return p  # fmt: skip


def parse_part(text: str) -> MixPart:
    """``FILE:RATIO`` -> MixPart; a bad value is a UsageError naming the argument."""
    path, sep, ratio = text.rpartition(":")
    if not sep or not path:
        raise UsageError(f"--mix {text}: expected FILE:RATIO, e.g. datasets/a.jsonl:0.5")
    try:
        value = float(ratio)
    except ValueError:
        raise UsageError(f"--mix {text}: the ratio {ratio!r} is not a number") from None
    if not 0 < value <= 1:
        raise UsageError(f"--mix {text}: the ratio must be above 0 and at most 1")
    return MixPart(Path(path), value)


def mix(parts: Sequence[MixPart], total: int, seed: int = 0) -> MixResult:
    """The mixed dataset described in the module docstring."""
    _check_ratios(parts)
    pools, duplicates = _pools(parts)
    quotas = apportion(total, {str(p.path): p.ratio for p in parts})
    short = [p for p in parts if quotas[str(p.path)] > len(pools[str(p.path)])]
    if short:
        p = short[0]
        raise UsageError(
            f"--mix {p.path}:{p.ratio:g}: needs {quotas[str(p.path)]} of --total {total} but the "
            f"file has {len(pools[str(p.path)])} distinct prompts; the largest --total these "
            f"ratios allow is {_max_total(parts, pools, total)}"
        )
    rng = random.Random(seed)
    picked: list[OutputRecord] = []
    for p in parts:
        picked.extend(rng.sample(pools[str(p.path)], quotas[str(p.path)]))
    rng.shuffle(picked)
    return MixResult(
        records=unique_ids(picked),
        available={k: len(v) for k, v in pools.items()},
        taken=quotas,
        duplicates=duplicates,
    )


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    result = mix([parse_part(t) for t in args.mix], args.total, args.seed)
    if result.duplicates:
        print(f"skipped {result.duplicates} repeated prompts (within or across files)")
    for name, n in result.taken.items():
        print(f"{name}: took {n} of {result.available[name]}")
    n = write_jsonl(args.output, result.records)
    print(f"wrote {n} records to {args.output} (seed {args.seed})")
    return 0


def _check_ratios(parts: Sequence[MixPart]) -> None:
    names = [str(p.path) for p in parts]
    if len(set(names)) != len(names):
        raise UsageError("--mix: a file is named twice; give each file once with its share")
    total = sum(p.ratio for p in parts)
    if abs(total - 1) > _TOLERANCE:
        listed = " ".join(f"{p.path}:{p.ratio:g}" for p in parts)
        raise UsageError(f"--mix: the ratios sum to {total:g}, not 1 ({listed})")


def _pools(parts: Sequence[MixPart]) -> tuple[dict[str, list[OutputRecord]], int]:
    """Each file's distinct prompts, none repeating a prompt of an earlier file."""
    pools: dict[str, list[OutputRecord]] = {}
    seen: set[str] = set()
    removed = 0
    for p in parts:
        if not p.path.is_file():
            raise UsageError(f"--mix {p.path}: no such file")
        records = [_record(pr, p.path) for pr in load_prompts(p.path)]
        unique, n = dedupe(records, key=lambda r: r.prompt_key())
        fresh = [r for r in unique if r.prompt_key() not in seen]
        seen.update(r.prompt_key() for r in fresh)
        removed += n + len(unique) - len(fresh)
        pools[str(p.path)] = fresh
    return pools, removed


def _max_total(parts: Sequence[MixPart], pools: dict[str, Any], total: int) -> int:
    """The largest total, below the one asked, whose quotas every file can supply."""
    for n in range(total - 1, 0, -1):
        quotas = apportion(n, {str(p.path): p.ratio for p in parts})
        if all(quotas[k] <= len(pools[k]) for k in quotas):
            return n
    return 0


def _record(prompt: Prompt, path: Path) -> OutputRecord:
    return OutputRecord(
        id=prompt.id,
        source=prompt.source or path.stem,
        text=prompt.text,
        messages=prompt.messages,
        max_tokens=prompt.max_tokens,
        followup=prompt.followup,
    )


if __name__ == "__main__":
    sys.exit(main())
