#!/usr/bin/env python3
"""The least a streaming client can do: the yardstick for the benchmarker's CPU per chunk.

A closed loop of ``--concurrency`` workers over ``--num-samples`` chat requests on one aiohttp
session.  Per request: stamp ``perf_counter_ns()``, post, then for every ``resp.content.readany()``
stamp it, decode it, split the SSE lines and ``json.loads`` each ``data:`` line; a delta with content is a
token event with that read's stamp.  No framing checks, no usage, no error kinds, no progress:
what any client must pay per chunk, and nothing more.  Writes one JSON line per request to
``--out`` in the shape bench/client_overhead.py reads from the benchmarker's requests.jsonl
(``send_ns``, ``ttft_ms``, ``itl_ms``, ``ok``, ``response_id``), plus ``reads``.

    python bench/raw_reader.py --endpoint http://127.0.0.1:8000/v1/chat/completions \\
        --dataset prompts.jsonl --num-samples 96 --concurrency 16 --max-tokens 500 --out r.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import json
from itertools import pairwise
from pathlib import Path
from time import perf_counter_ns

import aiohttp


async def one(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> dict:
    """One streamed request: its token stamps (read stamps), reads and response id."""
    send_ns = perf_counter_ns()
    stamps: list[int] = []
    reads = 0
    rid = None
    tail = ""
    loads = json.loads
    decode = codecs.getincrementaldecoder("utf-8")().decode  # a character cut between reads
    async with session.post(url, data=body, headers=headers) as resp:
        ok = resp.status == 200
        while data := await resp.content.readany():
            t = perf_counter_ns()
            reads += 1
            # one decode per read (json.loads of bytes would detect the encoding per line)
            lines = (tail + decode(data)).split("\n")
            tail = lines.pop()
            for line in lines:
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                obj = loads(line[6:])
                rid = rid or obj.get("id")
                for choice in obj.get("choices") or ():
                    if (choice.get("delta") or {}).get("content"):
                        stamps.append(t)
    itl = [(b - a) / 1e6 for a, b in pairwise(stamps)]
    return {
        "send_ns": send_ns,
        "ttft_ms": (stamps[0] - send_ns) / 1e6 if stamps else None,
        "itl_ms": itl,
        "ok": ok and bool(stamps),
        "response_id": rid,
        "reads": reads,
    }


async def run(args: argparse.Namespace) -> list[dict]:
    texts = [json.loads(line)["text"] for line in Path(args.dataset).read_text().splitlines()]
    bodies = [
        json.dumps(
            {
                "model": args.model,
                "messages": [{"role": "user", "content": texts[i % len(texts)]}],
                "max_tokens": args.max_tokens,
                "stream": True,
            }
        ).encode()
        for i in range(args.num_samples)
    ]
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    queue = list(reversed(bodies))
    out: list[dict] = []
    connector = aiohttp.TCPConnector(limit=args.concurrency + 4)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while queue:
                out.append(await one(session, args.endpoint, queue.pop(), headers))

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoint", required=True)
    p.add_argument("--dataset", required=True, help="JSONL with a 'text' per line")
    p.add_argument("--num-samples", type=int, required=True)
    p.add_argument("--concurrency", type=int, required=True)
    p.add_argument("--max-tokens", type=int, required=True)
    p.add_argument("--model", default="mock-llm")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    records = asyncio.run(run(args))
    Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
