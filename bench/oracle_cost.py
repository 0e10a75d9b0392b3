#!/usr/bin/env python3
"""What the cache oracle costs the runner: µs per 1,000 prompt tokens, before and after a round.

The oracle (drbench/oracle.py) works in two steps at each round, both in the main process:

- **before** the round (this delays its first request): each prompt made units, cut into
  blocks and hashed, and looked up in the unlimited cache: the attainable (offered) share.
  The units and hashes are kept for the replay, not made again.
- **after** the round (this delays the next round's first request, never a request of this
  one): each answer appended to its prompt's units and hashed, and every request replayed
  through the LRU of the server's capacity: the expected hit rate.

Each case sends ``--prompts`` prompts of ``--units`` units that share half their length, for
two rounds (repeat mode) through a capacity of half the working set, with answers of
``--answer`` units, and prints the best of ``--repeat`` runs:

- English text, estimated units (no --tokenizer);
- the bundled mocker's toy tokenizer (a regex over the text: a stand-in for a tokenizer's
  encode, which --tokenizer runs once more here, since a request keeps only its count);
- token ids given as they are (the replay and hashing alone, no encode).

    python bench/oracle_cost.py                 # ~3 s of CPU
    python bench/oracle_cost.py --units 100000 --prompts 1 --repeat 3
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drbench.client import PreparedRequest  # noqa: E402
from drbench.mocker.tokenizer import tokenize  # noqa: E402
from drbench.oracle import LevelOracle  # noqa: E402
from drbench.records import RequestRecord  # noqa: E402
from drbench.reuse import (  # noqa: E402
    EstimateTokenization,
    LevelReuse,
    Tokenization,
    TokenUnits,
    UnitKind,
    Units,
)

_WORDS = " the cache keeps every block of the prompts it has seen tail before head".split()


@dataclass(frozen=True, slots=True)
class ToyTokens:
    """The mocker's regex tokenizer on the text (completions prompts)."""

    @property
    def unit(self) -> UnitKind:
        return "tokens"

    def prompt(self, payload: Mapping[str, Any]) -> Units:
        return TokenUnits(tokenize(str(payload.get("prompt") or "")))

    def held(self, payload: Mapping[str, Any], prompt: Units, answer: str) -> Units:
        assert isinstance(prompt, TokenUnits)
        return TokenUnits([*prompt.ids, *tokenize(answer)])


@dataclass(frozen=True, slots=True)
class GivenIds:
    """Token ids carried in the payload: no encode at all (what hashing and the LRU cost)."""

    @property
    def unit(self) -> UnitKind:
        return "tokens"

    def prompt(self, payload: Mapping[str, Any]) -> Units:
        return TokenUnits(payload["ids"])

    def held(self, payload: Mapping[str, Any], prompt: Units, answer: str) -> Units:
        assert isinstance(prompt, TokenUnits)
        return TokenUnits([*prompt.ids, *range(len(answer) // 4)])


def _text(words: int, seed: int) -> str:
    return "".join(f" {_WORDS[(i * 7 + seed) % len(_WORDS)]}{i % 10}" for i in range(words))


def _round(units: int, prompts: int, ids: bool) -> list[PreparedRequest]:
    shared = _text(units // 4, 0)  # a word and a digit: 2 toy tokens, ~1.5 estimated units
    out = []
    for p in range(prompts):
        text = shared + _text(units // 4, p + 1)
        payload: dict[str, Any] = {"prompt": text}
        if ids:
            payload = {"ids": [*range(units // 2), *range(p * units, p * units + units // 2)]}
        out.append(PreparedRequest(f"p{p}", b"", 0, payload))
    return out


def _case(tokens: Tokenization, units: int, prompts: int, answer: int, ids: bool) -> list[float]:
    """Seconds before and after the two rounds, and the prompt units sent."""
    requests = _round(units, prompts, ids)
    answer_text = _text(answer // 2, 99)
    records = [
        RequestRecord(r.prompt_id, "c", 1, start_ms=2.0 * i, end_ms=2.0 * i + 1, output_text=answer_text)
        for i, r in enumerate(requests)
    ]  # fmt: skip
    working_set = units * prompts
    oracle = LevelOracle.for_level(LevelReuse(16, "server", tokenization=tokens), working_set // 2)
    before = after = 0.0
    sent = 0
    for _ in range(2):
        t0 = time.perf_counter()
        sent += oracle.before(requests).total
        t1 = time.perf_counter()
        oracle.after(records, answers_reused=False)
        after += time.perf_counter() - t1
        before += t1 - t0
    return [before, after, float(sent)]


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=20_000, help="tokens a prompt (default 20000)")
    ap.add_argument("--prompts", type=int, default=8, help="prompts a round (default 8)")
    ap.add_argument("--answer", type=int, default=200, help="tokens an answer (default 200)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case, best kept (default 3)")
    args = ap.parse_args(list(argv) if argv is not None else None)
    cases: dict[str, tuple[Tokenization, bool]] = {
        "English text, estimated": (EstimateTokenization(), False),
        "toy tokenizer (regex encode)": (ToyTokens(), False),
        "token ids, no encode": (GivenIds(), True),
    }
    print(
        f"{args.prompts} prompts of ~{args.units:,} tokens, answers of {args.answer}, 2 rounds, "
        f"block 16, LRU of half the working set, best of {args.repeat}"
    )
    print(
        f"{'case':<30} {'units':>9} {'before ms':>10} {'after ms':>9} "
        f"{'µs/1k before':>13} {'µs/1k after':>12}"
    )
    for name, (tokens, ids) in cases.items():
        runs = [
            _case(tokens, args.units, args.prompts, args.answer, ids) for _ in range(args.repeat)
        ]
        before = min(r[0] for r in runs)
        after = min(r[1] for r in runs)
        units = runs[0][2]
        print(
            f"{name:<30} {units:>9,.0f} {before * 1e3:>10.1f} {after * 1e3:>9.1f} "
            f"{before * 1e6 / (units / 1000):>13.1f} {after * 1e6 / (units / 1000):>12.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
