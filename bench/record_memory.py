#!/usr/bin/env python3
"""Memory that each finished request keeps: bytes per RequestRecord, and per token.

A run keeps every record of every round until its reports are written, so a long run's memory
is this figure times requests (issue 11: target under 2 KB plus 8 bytes per token).  Two views:

1. The real parse path: ``response.parse_exchange`` on RawExchanges made of the mocker's own
   wire bytes (``mocker/wire.py``: role chunk, one content chunk per token, finish, usage,
   [DONE]) with jittered stamps, for 16, 128 and 1,024 tokens.  tracemalloc counts what stays
   allocated once the exchange is dropped and only the records are kept, as parsed and once
   their text is dropped (as the runner does when the round is written); a least-squares line
   through the three sizes gives the fixed bytes per record and the bytes per token.
2. A real run (``runner.run``, two rounds) against the mocker: the bytes the RunResult frees
   when it is dropped, per record, and after each round how many RawExchange and
   PreparedRequest objects are still alive (the runner keeps the level's PreparedRequests for
   round 2 and no RawExchange; the records are what grows with the run).

    python bench/record_memory.py                 # ~10 s of CPU
    python bench/record_memory.py --records 300 --skip-run

Measures memory, never time: the figures are the same on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sys
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drbench.client import Endpoint, PreparedRequest  # noqa: E402
from drbench.config import BenchConfig  # noqa: E402
from drbench.mocker.process import MockerProcess  # noqa: E402
from drbench.mocker.tokenizer import filler_tokens  # noqa: E402
from drbench.mocker.wire import DONE_EVENT, Kind, StreamFormat, usage_dict  # noqa: E402
from drbench.records import Prompt, RequestRecord  # noqa: E402
from drbench.response import RawExchange, parse_exchange  # noqa: E402
from drbench.results import LevelResult, RoundResult, RunResult  # noqa: E402
from drbench.runner import RunPlan, run  # noqa: E402

SIZES = (16, 128, 1024)
TARGET_FIXED, TARGET_PER_TOKEN = 2048, 8


def stream_chunks(tokens: int) -> list[bytes]:
    """The mocker's bytes for one chat answer of ``tokens`` tokens, one event per chunk."""
    fmt = StreamFormat(Kind.CHAT, "chatcmpl-0123456789abcdef01234567", "mock-model", 1_700_000_000)
    filler = filler_tokens()
    words = [filler[i % len(filler)] for i in range(tokens)]
    words[0] = words[0].lstrip()
    return [
        fmt.role_event(),
        *(fmt.content_event(w) for w in words),
        fmt.finish_event("length"),
        fmt.usage_event(usage_dict(100, tokens, 0)),
        DONE_EVENT,
    ]


def exchange(chunks: Sequence[bytes], rng: random.Random) -> RawExchange:
    """``chunks`` stamped as a real stream would be: a TTFT, then jittered gaps (ns)."""
    send = 1_000_000_000 + rng.randrange(10**9)
    t = send + rng.randrange(20_000_000, 200_000_000)
    raw = RawExchange(send_ns=send, status=200, content_type="text/event-stream")
    for chunk in chunks:
        raw.chunks.append((t, chunk))
        t += rng.randrange(5_000_000, 40_000_000)
    raw.end_ns = t
    return raw


Row = tuple[int, int, float, float, int, int]


def parse_path(records: int, events: int) -> list[Row]:
    """Per size: (tokens, records, bytes per record as parsed, the same once its text is
    dropped, itl container bytes, text bytes).

    tracemalloc makes the parse about 7x slower, so a size parses at most ``events`` token
    events' worth of records: the figure per record is the same for 40 records as for 1,000.
    """
    out = []
    rng = random.Random(11)
    for tokens in SIZES:
        records = max(10, min(records, events // tokens))
        chunks = stream_chunks(tokens)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        kept = []
        for i in range(records):
            raw = exchange(chunks, rng)
            kept.append(
                parse_exchange(
                    raw,
                    prompt_id=f"sample-{i:06d}",
                    level="concurrency=32",
                    round=1,
                    round_start_ns=1_000_000_000,
                    prompt_tokens=100,
                )
            )
            del raw
        gc.collect()
        parsed = tracemalloc.get_traced_memory()[0] - before - sys.getsizeof(kept)
        rec = kept[0]
        assert rec.ok and rec.completion_tokens == tokens, rec
        itl, text = sys.getsizeof(rec.itl_ms), sys.getsizeof(rec.output_text)
        for r in kept:  # what runner._drop_texts does once the round is written
            r.output_text = None
        gc.collect()
        after = tracemalloc.get_traced_memory()[0] - before - sys.getsizeof(kept)
        tracemalloc.stop()
        out.append((tokens, records, parsed / records, after / records, itl, text))
    return out


def fit(points: Sequence[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares (fixed bytes, bytes per token) through (tokens, bytes) points."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return my - slope * mx, slope


class CountingObserver:
    """Counts what is still alive after each round; keeps nothing itself."""

    def __init__(self) -> None:
        self.alive: list[tuple[int, int, int]] = []  # (round, RawExchange, PreparedRequest)

    def round_started(self, level: object, round: int, total: int) -> CountingObserver:
        return self

    def update(self, record: RequestRecord) -> None:
        pass

    def close(self) -> None:
        pass

    def request_done(self, record: RequestRecord) -> None:
        pass

    def round_done(self, level: LevelResult, result: RoundResult) -> None:
        gc.collect()
        objects = gc.get_objects()
        raws = sum(1 for o in objects if type(o) is RawExchange)
        reqs = sum(1 for o in objects if type(o) is PreparedRequest)
        self.alive.append((result.summary.round, raws, reqs))

    def level_done(self, level: LevelResult) -> None:
        pass

    def warning(self, message: str) -> None:
        pass


def real_run(prompts: int, tokens: int) -> tuple[float, int, list[tuple[int, int, int]]]:
    """(bytes per record the RunResult frees, records, objects alive after each round)."""
    args = [
        "--model",
        "mock-model",
        "--ttft-ms",
        "1",
        "--itl-ms",
        "0.001",
        "--output-tokens",
        str(tokens),
    ]
    with MockerProcess(args) as mocker:
        cfg = BenchConfig(concurrency=(16,), rounds=2, max_tokens=tokens)
        endpoint = Endpoint.parse(mocker.url("/v1/chat/completions"))
        items = [Prompt(id=f"sample-{i:06d}", text=f"question {i} " * 20) for i in range(prompts)]
        plan = RunPlan(cfg, endpoint, "mock-model", items)
        result = RunResult(config=cfg, started_at="now")
        observer = CountingObserver()
        asyncio.run(run(plan, result, observer))  # once unmeasured: imports, caches, pools
        result = RunResult(config=cfg, started_at="now")
        observer = CountingObserver()
        tracemalloc.start()
        asyncio.run(run(plan, result, observer))
        gc.collect()
        with_result = tracemalloc.get_traced_memory()[0]
        kept = [r for lv in result.levels for rr in lv.rounds for r in rr.records]
        assert kept and all(r.ok and r.token_events == tokens for r in kept), kept[:1]
        records = len(kept)
        del kept
        del result
        gc.collect()
        freed = with_result - tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    return freed / records, records, observer.alive


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1000, help="records per size at most")
    ap.add_argument(
        "--events", type=int, default=40_000, help="token events per size at most (parse path)"
    )
    ap.add_argument("--run-prompts", type=int, default=100, help="prompts of the real run")
    ap.add_argument("--run-tokens", type=int, default=64, help="tokens per answer in the run")
    ap.add_argument("--skip-run", action="store_true", help="only the parse path (no mocker)")
    args = ap.parse_args(argv)

    rows = parse_path(args.records, args.events)
    print("parse path: records parsed from the mocker's wire bytes (the exchanges dropped)")
    print(
        f"{'tokens':>7} {'records':>8} {'as parsed':>10} {'after round':>12} "
        f"{'itl container':>14} {'output_text':>12}   (bytes per record)"
    )
    for tokens, records, parsed, after, itl, text in rows:
        print(f"{tokens:>7} {records:>8} {parsed:>10.0f} {after:>12.0f} {itl:>14} {text:>12}")
    for label, column in (("as parsed (text kept)", 2), ("after its round (text dropped)", 3)):
        fixed, per_token = fit([(row[0], row[column]) for row in rows])
        verdict = "meets" if fixed < TARGET_FIXED and per_token < TARGET_PER_TOKEN else "misses"
        print(
            f"fit {label}: {fixed:.0f} bytes + {per_token:.2f} bytes/token per record "
            f"({verdict} the target of {TARGET_FIXED} + {TARGET_PER_TOKEN}/token)"
        )
    if not args.skip_run:
        per_record, records, alive = real_run(args.run_prompts, args.run_tokens)
        print(
            f"real run: 2 rounds x {args.run_prompts} requests x {args.run_tokens} tokens "
            f"(mocker, concurrency 16): the RunResult holds {per_record:.0f} bytes per record "
            f"({records} records, summaries included)"
        )
        for rnd, raws, reqs in alive:
            print(f"  after round {rnd}: {raws} RawExchange, {reqs} PreparedRequest alive")
    return 0


if __name__ == "__main__":
    sys.exit(main())
