"""Turn a raw, time-stamped streamed exchange into a RequestRecord.

client.py only stamps the arrival of each network chunk and keeps the bytes; everything here runs
after the stream has ended, off the timing path: SSE decoding, JSON parsing of each event, finding
the token events (TTFT/ITL), usage, finish reason and in-stream errors.  Tolerant of what real
servers send: tokens whose text is empty (vLLM sends ``content: ""`` for a token that decodes to no
text yet), usage on a non-empty chunk, on the finish chunk or missing, ``content: null``,
``choices`` null or empty, several tokens in one chunk, keep-alive comments, reasoning fields,
tool calls.  Whatever a server sends, the result is a record: odd usage fields are ignored with a
note, undecodable JSON (also 100k levels deep) is ``malformed``, never an exception.

The parse is a generator (``parse_steps``) that yields every ``STEP_BYTES`` of input, so the
runner can parse a long response in slices and keep stamping other streams' reads meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

from drbench.gaps import Gaps
from drbench.records import ErrorKind, RequestRecord, TokenSource
from drbench.sse import DEFAULT_MAX_LINE_BYTES, SSEDecoder, SSELineTooLong
from drbench.tokens import EstimateCounter, TokenCounter

__all__ = [
    "STEP_BYTES",
    "RawExchange",
    "error_message",
    "finish_steps",
    "parse_exchange",
    "parse_steps",
]

_TEXT_FIELDS = ("content", "reasoning_content", "reasoning")
_COUNT_FIELDS = ("prompt_tokens", "completion_tokens")
STEP_BYTES = 256 * 1024  # parse_steps yields after about this much input
_ESTIMATE = EstimateCounter()


class _Scanner(Protocol):
    """json's scanner: the value starting at ``index`` and where it ends."""

    def __call__(self, string: str, index: int, /) -> tuple[Any, int]: ...


# json.loads is three Python calls and a whitespace regex around this C scanner; an event is one
# JSON object with nothing around it, so take() calls the scanner itself (json.loads decides
# whatever the scanner does not take whole: the result is the same).
_SCAN: _Scanner = vars(json.JSONDecoder())["scan_once"]  # set per instance by JSONDecoder()
_SKIP = object()  # _loads: nothing to take from this event


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
    content_type: str | None = None  # of a 2xx answer, to say what came instead of a stream
    socket_stamps: bool = False  # stamped by socket_stamps.py's protocol, not at task wake-up


def parse_exchange(
    raw: RawExchange,
    *,
    prompt_id: str,
    level: str,
    round: int,
    round_start_ns: int,
    prompt_tokens: int,
    tokenizer: TokenCounter | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> RequestRecord:
    """The record of one request; failures become ``error_kind``/``error``, never exceptions."""
    return finish_steps(
        parse_steps(
            raw,
            prompt_id=prompt_id,
            level=level,
            round=round,
            round_start_ns=round_start_ns,
            prompt_tokens=prompt_tokens,
            tokenizer=tokenizer,
            max_line_bytes=max_line_bytes,
        )
    )


def finish_steps(steps: Generator[None, None, RequestRecord]) -> RequestRecord:
    """Run a ``parse_steps`` generator to its end, in one go."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


def parse_steps(
    raw: RawExchange,
    *,
    prompt_id: str,
    level: str,
    round: int,
    round_start_ns: int,
    prompt_tokens: int,
    tokenizer: TokenCounter | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Generator[None, None, RequestRecord]:
    """``parse_exchange`` in slices: yields after every ``STEP_BYTES`` of input, returns the record."""
    rec = RequestRecord(
        prompt_id=prompt_id,
        level=level,
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
    if raw.error_kind is ErrorKind.OVERSIZE:  # failed: its bytes are not worth the parse
        rec.error_kind, rec.error = raw.error_kind, raw.error
        return rec
    state = _StreamState()
    decoder = SSEDecoder(max_line_bytes)
    budget = STEP_BYTES
    try:
        for t_ns, chunk in raw.chunks:
            for ev in decoder.feed(chunk):
                state.take(t_ns, ev.data, ev.event)
            budget -= len(chunk)
            if budget <= 0:
                budget = STEP_BYTES
                yield
        if raw.error_kind is None:  # a cut-off transfer's half event is not the server's fault
            for ev in decoder.flush():
                state.take(raw.end_ns or raw.send_ns, ev.data, ev.event)
    except SSELineTooLong as exc:
        rec.error_kind, rec.error = ErrorKind.OVERSIZE, f"{exc}: not a stream to keep reading"
        return rec
    state.fill(rec, raw)
    if rec.error_kind is None and raw.error_kind is not None:
        rec.error_kind, rec.error = raw.error_kind, raw.error
    _count_tokens(rec, state, prompt_tokens, tokenizer)
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
        "token_ns",
        "usage",
    )

    def __init__(self) -> None:
        self.token_ns: list[int] = []  # the stamp of every token event
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
        try:  # the usual event: one JSON value and nothing else, read by json's C scanner
            obj, end = _SCAN(data, 0)
        except (StopIteration, ValueError, RecursionError):
            end = -1
        if end != len(data):  # [DONE], whitespace around the value, or not JSON: the slow path
            obj = self._loads(data)
            if obj is _SKIP:
                return
        if not isinstance(obj, dict):
            self.malformed = self.malformed or f"event {self.events} is not a JSON object"
            return
        err = _error_of(obj) if ("error" in obj or event == "error") else None
        if err is not None:
            self.error = self.error or err
            return
        if not self.rid and isinstance(obj.get("id"), str):
            self.rid = obj["id"]
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        choices = obj.get("choices")
        if not isinstance(choices, list):
            return
        for choice in choices:
            if not isinstance(choice, dict):
                continue  # carries nothing we can read
            finish = choice.get("finish_reason")
            delta = choice.get("delta")
            if (
                finish is None
                and type(delta) is dict
                and len(delta) == 1
                and type(content := delta.get("content")) is str
            ):  # the usual token chunk, inline: the same result as _token_of, computed faster
                self.token_ns.append(t_ns)
                if content:
                    self.text.append(content)
                continue
            piece = _token_of(choice, bool(finish))
            if piece is not None:
                self.token_ns.append(t_ns)
                if piece:
                    self.text.append(piece)
            if finish and isinstance(finish, str):
                self.finish = finish

    def _loads(self, data: str) -> Any:
        """What ``json.loads`` makes of an event the scanner did not take whole; ``_SKIP`` for
        ``[DONE]`` (noted) and for undecodable JSON (noted as malformed)."""
        if data.strip() == "[DONE]":
            self.done = True
            return _SKIP
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested too deep
            if self.malformed is None:
                why = "nested too deep" if isinstance(exc, RecursionError) else "not JSON"
                self.malformed = f"event {self.events} is {why}: {data[:80]!r}"
            return _SKIP

    def fill(self, rec: RequestRecord, raw: RawExchange) -> None:
        rec.response_id = self.rid
        rec.finish_reason = self.finish
        rec.output_text = "".join(self.text)
        rec.token_events = len(self.token_ns)
        if self.token_ns:
            rec.ttft_ms = (self.token_ns[0] - raw.send_ns) / 1e6
            rec.itl_ms = Gaps.from_stamps(self.token_ns)  # 4 bytes a gap, not a float object
        if self.error is not None:
            rec.error_kind, rec.error = ErrorKind.STREAM, f"error event: {self.error}"
        elif self.malformed is not None:
            rec.error_kind, rec.error = ErrorKind.MALFORMED, self.malformed
        elif raw.error_kind is None and self.events == 0 and not _is_event_stream(raw):
            rec.error_kind = ErrorKind.MALFORMED
            rec.error = (
                f"the 200 answer is {raw.content_type or 'of no Content-Type'}, not an event "
                "stream (text/event-stream): is this an OpenAI-compatible streaming endpoint?"
            )
        elif raw.error_kind is None and not (self.done or self.finish):
            rec.error_kind = ErrorKind.STREAM
            rec.error = f"stream ended without [DONE] or finish_reason after {self.events} events"


def _is_event_stream(raw: RawExchange) -> bool:
    return raw.content_type is None or "event-stream" in raw.content_type


def _count_tokens(
    rec: RequestRecord, state: _StreamState, prompt_tokens: int, tokenizer: TokenCounter | None
) -> None:
    """usage first; else the user's tokenizer; else the estimate (documented in the guide).

    A usage field that is not a count (a string, an object, a negative number) is ignored with a
    note, and the count falls back to the next source.  The output estimate is the prompt's: from
    the text (one token per event only when there is no text), never one per event, because a
    server may stream one character or several tokens per event.
    """
    text = rec.output_text or ""  # just set by fill(); None only once a run is done with it
    usage = state.usage or {}
    counts = {k: usage.get(k) for k in _COUNT_FIELDS if k in usage}
    bad = [f"{k}={v!r}"[:60] for k, v in counts.items() if not _is_count(v)]
    notes = [f"ignored usage {', '.join(bad)} (not a token count)"] if bad else []
    completion = counts.get("completion_tokens")
    if _is_count(completion):
        rec.token_source = TokenSource.USAGE
        rec.completion_tokens = completion
        prompt = counts.get("prompt_tokens")
        rec.prompt_tokens = prompt if _is_count(prompt) else prompt_tokens
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        if _is_count(cached):
            rec.cached_tokens = cached
    else:
        rec.prompt_tokens = prompt_tokens
        if tokenizer is not None:
            rec.token_source = TokenSource.TOKENIZER
            rec.completion_tokens = tokenizer.count(text) if state.token_ns else None
        else:
            rec.token_source = TokenSource.ESTIMATE
            rec.completion_tokens = _estimate_output(text, len(state.token_ns))
    if rec.error_kind is None:
        if not rec.token_events and not rec.completion_tokens:
            rec.error_kind = ErrorKind.EMPTY
            rec.error = f"no token event and no completion tokens in {state.events} events"
        elif not text:
            notes.append(f"{rec.completion_tokens or rec.token_events} tokens but no text")
    rec.note = "; ".join(notes) or None


def _estimate_output(text: str, events: int) -> int | None:
    if text:
        return _ESTIMATE.count(text)
    return events or None


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _token_of(choice: dict[str, Any], finishing: bool) -> str | None:
    """The text of the token event this choice carries ("" for a token with no text yet), or
    None when it carries no token: the role-only opening chunk, a bare finish chunk, usage.

    A chunk that carries ``finish_reason`` counts only with text (or tool calls): OpenAI's and
    most servers' finish chunk repeats an empty delta or ``text: ""`` after the last token.
    """
    delta = choice.get("delta")
    if isinstance(delta, dict):
        pieces = [v for k in _TEXT_FIELDS if isinstance(v := delta.get(k), str)]
        calls = delta.get("tool_calls")
        text = "".join(pieces) + _tool_call_text(calls) if calls else "".join(pieces)
        if text:
            return text
        if not (pieces or calls) or finishing or "role" in delta:
            return None  # no token field, or the opening role chunk, or the finish chunk
        return ""
    completion = choice.get("text")
    if not isinstance(completion, str) or (finishing and not completion):
        return None
    return completion


def _tool_call_text(calls: Any) -> str:
    """The argument text a tool-call delta adds (its name counts as text too)."""
    if not isinstance(calls, list):
        return ""
    out: list[str] = []
    for call in calls:
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            out.extend(v for k in ("name", "arguments") if isinstance(v := fn.get(k), str))
    return "".join(out)


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
