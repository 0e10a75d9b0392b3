"""Turn a raw, time-stamped streamed exchange into a RequestRecord.

client.py only stamps the arrival of each network chunk and keeps the bytes; everything here runs
after the stream has ended, off the timing path: SSE decoding, JSON parsing of each event, finding
the text-bearing events (TTFT/ITL), usage, finish reason and in-stream errors.  Tolerant of what
real servers send: usage on a non-empty chunk or missing entirely, ``content: null``, ``choices``
null or empty, several tokens in one chunk, keep-alive comments, reasoning fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from drbench.records import ErrorKind, RequestRecord, TokenSource
from drbench.sse import SSEDecoder
from drbench.tokens import TokenCounter

__all__ = ["RawExchange", "error_message", "parse_exchange"]

_TEXT_FIELDS = ("content", "reasoning_content", "reasoning")


@dataclass(slots=True)
class RawExchange:
    """What the wire gave us, untouched: stamps are perf_counter_ns at chunk arrival."""

    send_ns: int
    status: int | None = None
    chunks: list[tuple[int, bytes]] = field(default_factory=list)
    end_ns: int | None = None
    error_kind: ErrorKind | None = None  # transport-level failure found by the client
    error: str | None = None
    body: str | None = None  # the body of a non-2xx answer (bounded)


def parse_exchange(
    raw: RawExchange,
    *,
    prompt_id: str,
    concurrency: int,
    round: int,
    round_start_ns: int,
    prompt_tokens: int,
    tokenizer: TokenCounter | None = None,
) -> RequestRecord:
    """The record of one request; failures become ``error_kind``/``error``, never exceptions."""
    rec = RequestRecord(
        prompt_id=prompt_id,
        concurrency=concurrency,
        round=round,
        start_ms=(raw.send_ns - round_start_ns) / 1e6,
        status=raw.status,
        send_ns=raw.send_ns,
    )
    if raw.end_ns is not None:
        rec.end_ms = (raw.end_ns - round_start_ns) / 1e6
        rec.latency_ms = (raw.end_ns - raw.send_ns) / 1e6
    if raw.status is not None and not 200 <= raw.status < 300:
        rec.error_kind, rec.error = ErrorKind.HTTP, f"HTTP {raw.status}: {error_message(raw.body)}"
        return rec
    state = _StreamState()
    decoder = SSEDecoder()
    for t_ns, chunk in raw.chunks:
        for ev in decoder.feed(chunk):
            state.take(t_ns, ev.data, ev.event)
    for ev in decoder.flush():
        state.take(raw.end_ns or raw.send_ns, ev.data, ev.event)
    state.fill(rec, raw)
    _count_tokens(rec, state, prompt_tokens, tokenizer)
    if rec.error_kind is None and raw.error_kind is not None:
        rec.error_kind, rec.error = raw.error_kind, raw.error
    return rec


def error_message(body: str | None) -> str:
    """The human message of an OpenAI-style (or older vLLM-style) error body, else the raw text."""
    if not body:
        return "(empty body)"
    try:
        obj = json.loads(body)
    except ValueError:
        return body.strip()[:300]
    return _error_of(obj) or body.strip()[:300]


class _StreamState:
    """Accumulates what the events of one stream say, in arrival order."""

    __slots__ = (
        "done",
        "error",
        "events",
        "finish",
        "malformed",
        "rid",
        "text",
        "text_ns",
        "usage",
    )

    def __init__(self) -> None:
        self.text_ns: list[int] = []
        self.text: list[str] = []
        self.usage: dict[str, Any] | None = None
        self.finish: str | None = None
        self.rid: str | None = None
        self.error: str | None = None
        self.malformed: str | None = None
        self.done = False
        self.events = 0

    def take(self, t_ns: int, data: str, event: str) -> None:
        self.events += 1
        if data.strip() == "[DONE]":
            self.done = True
            return
        try:
            obj = json.loads(data)
        except ValueError:
            if self.malformed is None:
                self.malformed = f"event {self.events} is not JSON: {data[:80]!r}"
            return
        if not isinstance(obj, dict):
            self.malformed = self.malformed or f"event {self.events} is not a JSON object"
            return
        err = _error_of(obj) if ("error" in obj or event == "error") else None
        if err is not None:
            self.error = self.error or err
            return
        if not self.rid:
            self.rid = obj.get("id")
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        for choice in obj.get("choices") or ():
            if not isinstance(choice, dict):
                continue  # carries nothing we can read
            piece = _choice_text(choice)
            if piece:
                self.text_ns.append(t_ns)
                self.text.append(piece)
            finish = choice.get("finish_reason")
            if finish:
                self.finish = finish

    def fill(self, rec: RequestRecord, raw: RawExchange) -> None:
        rec.response_id = self.rid
        rec.finish_reason = self.finish
        rec.output_text = "".join(self.text)
        if self.text_ns:
            rec.ttft_ms = (self.text_ns[0] - raw.send_ns) / 1e6
            rec.itl_ms = [(b - a) / 1e6 for a, b in pairwise(self.text_ns)]
        if self.error is not None:
            rec.error_kind, rec.error = ErrorKind.STREAM, f"error event: {self.error}"
        elif self.malformed is not None:
            rec.error_kind, rec.error = ErrorKind.MALFORMED, self.malformed
        elif raw.error_kind is None and not (self.done or self.finish):
            rec.error_kind = ErrorKind.STREAM
            rec.error = f"stream ended without [DONE] or finish_reason after {self.events} events"
        elif raw.error_kind is None and not self.text_ns:
            rec.error_kind = ErrorKind.EMPTY
            rec.error = f"no generated text in {self.events} events"


def _count_tokens(
    rec: RequestRecord, state: _StreamState, prompt_tokens: int, tokenizer: TokenCounter | None
) -> None:
    """usage first; else the user's tokenizer; else the estimate (documented in the guide):
    the prompt's estimate counted before the round, and one token per text-bearing event."""
    usage = state.usage
    if usage and isinstance(usage.get("completion_tokens"), int):
        rec.token_source = TokenSource.USAGE
        rec.prompt_tokens = usage.get("prompt_tokens")
        rec.completion_tokens = usage["completion_tokens"]
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
            rec.cached_tokens = details["cached_tokens"]
        return
    rec.prompt_tokens = prompt_tokens
    if tokenizer is not None:
        rec.token_source = TokenSource.TOKENIZER
        rec.completion_tokens = tokenizer.count(rec.output_text) if state.text_ns else None
    else:
        rec.token_source = TokenSource.ESTIMATE
        rec.completion_tokens = len(state.text_ns) if state.text_ns else None


def _choice_text(choice: dict[str, Any]) -> str:
    delta = choice.get("delta")
    if isinstance(delta, dict):
        if "reasoning_content" in delta or "reasoning" in delta:
            return "".join(v for k in _TEXT_FIELDS if isinstance(v := delta.get(k), str))
        content = delta.get("content")  # the usual delta: the same result, computed faster
        return content if isinstance(content, str) else ""
    text = choice.get("text")
    return text if isinstance(text, str) else ""


def _error_of(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    err = obj.get("error")
    if isinstance(err, dict):
        return str(err.get("message") or err)
    if isinstance(err, str):
        return err
    if obj.get("object") == "error" and "message" in obj:
        return str(obj["message"])
    return None
