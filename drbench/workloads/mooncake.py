"""The mooncake workload: replay a Mooncake FAST'25 trace with synthesized prompts.

A trace line is ``{"timestamp": ms, "input_length": tokens, "output_length": tokens,
"hash_ids": [...]}``, one id per ``block`` tokens of the prompt.  Each id's block is a
deterministic text of ``block`` tokens, byte-identical in every request that has the id; a
prompt is its blocks in order, the block that crosses ``input_length`` cut so the prompt has
exactly ``input_length`` tokens (ids past that are unused).  A line whose ids cover fewer tokens
than ``input_length`` gets unique padding words after its blocks.  The trace is read streamed
(jsonfile.py); reading stops at the window's end or at ``limit``, so lines past it are never
checked.  Files only, no network, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drbench.errors import DatasetError, UsageError
from drbench.jsonfile import Item, iter_items
from drbench.tokens import TokenCounter
from drbench.workloads.synth import MAX_TEXT_BYTES, Synth
from drbench.workloads.workload import FLAG, Workload, check_ranges, param

__all__ = ["NAME", "MooncakeParams", "TraceRequest", "generate", "offered_share", "read_trace"]

NAME = "mooncake"
_FIELDS = ("timestamp", "input_length", "output_length", "hash_ids")


@dataclass(frozen=True)
class MooncakeParams:
    """A trace file and which part of it to replay; block=512 is the FAST'25 traces' block."""

    trace: Path = param(doc="the trace JSONL (e.g. datasets/mooncake_sample.jsonl)")
    block: int = param(512, "tokens per hash id", lo=1, hi=1_000_000)
    limit: int | None = param(None, "replay only the first N requests (of the window)", lo=1)
    start: float = param(0.0, "window start, in seconds of the trace", lo=0)
    end: float | None = param(None, "window end, in seconds of the trace (exclusive)", lo=0)

    def __post_init__(self) -> None:
        check_ranges(self, NAME)
        if self.end is not None and self.end <= self.start:
            raise UsageError(
                f"{FLAG} {NAME}: end={self.end} is not after start={self.start}; "
                "give an end later than the start"
            )

    @property
    def implied(self) -> dict[str, Any]:
        """The run settings this workload needs (applied unless the user set them)."""
        return {"fixed_schedule": True}


@dataclass(frozen=True, slots=True)
class TraceRequest:
    """One checked trace line; ``timestamp`` in ms of the trace."""

    timestamp: float
    input_length: int
    output_length: int
    hash_ids: tuple[int, ...]


def generate(p: MooncakeParams, *, counter: TokenCounter, seed: int) -> Workload:
    """The window's requests as records with window-relative ``timestamp`` (ms)."""
    synth = Synth.create(counter, workload=NAME, seed=seed, blocks=1)
    requests = read_trace(p, chars_per_token=synth.chars_per_token)
    top = max((i for r in requests for i in r.hash_ids), default=-1)
    synth = synth.sized(top + 1 + len(requests))  # padding numbers follow the largest id
    blocks: dict[int, str] = {}
    t0 = requests[0].timestamp
    records = []
    for n, req in enumerate(requests):
        rid = f"t-{n:06d}"
        record: dict[str, Any] = {
            "id": rid,
            "text": _prompt(synth, req, p.block, blocks, pad=(f"pad-{rid}", top + 1 + n)),
            "max_tokens": req.output_length,
            "prefix_group": f"h{req.hash_ids[0]}" if req.hash_ids else rid,
            "timestamp": req.timestamp - t0,
        }
        records.append(record)
    span_s = (requests[-1].timestamp - t0) / 1000
    return Workload(
        name=NAME,
        records=records,
        implied=p.implied,
        offered_round1=offered_share(requests, p.block),
        detail=f"trace {p.trace}, {len(requests)} requests over {span_s:.1f} s, block {p.block}",
    )


def read_trace(p: MooncakeParams, *, chars_per_token: float = 4.0) -> list[TraceRequest]:
    """The checked requests of the window, in trace order; one DatasetError per bad line."""
    flag = f"{FLAG} {NAME} trace="
    start_ms, end_ms = p.start * 1000, None if p.end is None else p.end * 1000
    out: list[TraceRequest] = []
    previous: float | None = None
    tokens = 0
    for item in iter_items(p.trace, flag=flag):
        req = _parse(item)
        if previous is not None and req.timestamp < previous:
            raise DatasetError(
                f"{item.where}: timestamp {req.timestamp} is before the previous line's "
                f"{previous}; a trace must be sorted by timestamp"
            )
        previous = req.timestamp
        if end_ms is not None and req.timestamp >= end_ms:
            break
        if req.timestamp < start_ms:
            continue
        out.append(req)
        tokens += req.input_length
        if tokens * chars_per_token > MAX_TEXT_BYTES:
            raise UsageError(
                f"{FLAG} {NAME}: {item.where}: the prompts up to this line would be over 1 GiB "
                "of text; replay less of the trace with limit=N or end=SECONDS"
            )
        if p.limit is not None and len(out) >= p.limit:
            break
    if not out:
        raise DatasetError(f"{p.trace}: no request in the window (check start= and end=)")
    return out


def offered_share(requests: list[TraceRequest], block: int) -> float:
    """Prompt tokens an unlimited token-level cache could reuse, over all prompt tokens.

    A request reuses, block by block along its ids, what earlier requests put in the cache on
    the same id path (a cut block only as far as it went); padding is never reused.
    """
    root: dict[int, list[Any]] = {}  # id -> [tokens cached of this block, children]
    reused = total = 0
    for req in requests:
        node, matching = root, True
        for j, hid in enumerate(req.hash_ids):
            length = min(block, req.input_length - j * block)
            if length <= 0:
                break
            entry = node.get(hid)
            if matching:
                cached = entry[0] if entry is not None else 0
                reused += min(cached, length)
                matching = cached >= length
            if entry is None:
                entry = node[hid] = [0, {}]
            entry[0] = max(entry[0], length)
            node = entry[1]
        total += req.input_length
    return reused / total


def _prompt(
    synth: Synth, req: TraceRequest, block: int, blocks: dict[int, str], pad: tuple[str, int]
) -> str:
    """The request's blocks in order, the one crossing ``input_length`` cut, else padding."""
    full, _ = divmod(req.input_length, block)
    head = "".join(_block(synth, hid, block, blocks) for hid in req.hash_ids[:full])
    if full >= len(req.hash_ids):  # the ids end before input_length: unique padding words
        return synth.extend(head, pad[0], pad[1], req.input_length)
    last = req.hash_ids[full]
    cap = _block(synth, last, block, blocks).count(" ")  # a cut block stays a prefix of it
    words = synth.words(f"block-{last}", last)
    return synth.fit(head, words, req.input_length, part=f"block {last}", cap=cap)


def _block(synth: Synth, hid: int, block: int, blocks: dict[int, str]) -> str:
    text = blocks.get(hid)
    if text is None:
        text = blocks[hid] = synth.block(f"block-{hid}", hid, block)
    return text


def _parse(item: Item) -> TraceRequest:
    obj = item.obj
    if not isinstance(obj, dict):
        raise DatasetError(f"{item.where}: expected a JSON object, got {type(obj).__name__}")
    for key in _FIELDS:
        if key not in obj:
            raise DatasetError(
                f"{item.where}: missing '{key}' (a Mooncake trace line has "
                "timestamp, input_length, output_length and hash_ids)"
            )
    ts = obj["timestamp"]
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or ts < 0:
        raise DatasetError(f"{item.where}: 'timestamp' must be a number of ms >= 0, got {ts!r}")
    for key in ("input_length", "output_length"):
        if not _positive_int(obj[key]):
            raise DatasetError(
                f"{item.where}: '{key}' must be a positive integer, got {obj[key]!r}"
            )
    ids = obj["hash_ids"]
    if not isinstance(ids, list):
        raise DatasetError(f"{item.where}: 'hash_ids' must be a list of integers, got {ids!r}")
    for i, hid in enumerate(ids):
        if isinstance(hid, bool) or not isinstance(hid, int) or hid < 0:
            raise DatasetError(
                f"{item.where}: 'hash_ids[{i}]' must be an integer >= 0, got {hid!r}"
            )
    return TraceRequest(ts, obj["input_length"], obj["output_length"], tuple(ids))


def _positive_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 1
