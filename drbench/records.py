"""The records every layer shares: a dataset prompt and the measured result of one request.

A ``RequestRecord`` is what ``client.py`` produces, ``runner.py`` logs to ``requests.jsonl`` as
soon as the request ends, ``stats.py`` summarises and ``report/`` writes.  It holds measured
numbers only; missing data is ``None`` (never 0), and a failed request is a record with
``error`` set, not an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from drbench.gaps import Gaps

__all__ = [
    "ColdStart",
    "EndpointKind",
    "ErrorKind",
    "ExecutorKind",
    "ItlMode",
    "Lang",
    "OnLostWorker",
    "Prompt",
    "RequestRecord",
    "Round2Mode",
    "TokenSource",
]

# Closed sets of settings as Literals: they stay plain strings in JSON, YAML and messages, and
# mypy checks every comparison and assignment against the set.  config.py lists their values
# (get_args) as the flags' choices.
ColdStart = Literal["nonce", "reset", "none"]  # how round 1 is made cold (--cold-start)
Round2Mode = Literal["repeat", "continue"]  # what round 2 sends (--round2-mode)
Lang = Literal["en", "zh"]  # console report language (--lang)
ItlMode = Literal["mean", "max"]  # which gap an itl_ms SLO bound applies to (--slo-itl-mode)
EndpointKind = Literal["chat", "completions"]  # the request body an --endpoint path asks for
ExecutorKind = Literal["local", "ray"]  # where the load is sent from (--executor)
OnLostWorker = Literal["continue", "stop"]  # what a lost worker or actor does (--on-lost-worker)


class TokenSource(str, Enum):
    """Where a record's token counts came from, best first (see docs/benchmarker_guide.md)."""

    USAGE = "usage"  # the server's own `usage` object
    TOKENIZER = "tokenizer"  # a local tokenizer the user named
    ESTIMATE = "estimate"  # text length / 4 for prompts, text-bearing events for output


class ErrorKind(str, Enum):
    """Why a request failed; the closed set keeps error tables groupable."""

    HTTP = "http"  # non-2xx status
    TIMEOUT = "timeout"  # --timeout elapsed
    CONNECTION = "connection"  # could not connect, or the connection dropped
    STREAM = "stream"  # stream ended without [DONE] / finish, or an in-stream error event
    MALFORMED = "malformed"  # an event whose data is not the JSON it should be, or not a stream
    EMPTY = "empty"  # the stream finished without any token event and no completion tokens
    OVERSIZE = "oversize"  # the response passed --max-response-bytes (or a line, the line cap)


@dataclass(frozen=True, slots=True)
class Prompt:
    """One dataset record, validated: exactly one of ``text`` / ``messages`` is set.

    ``group`` (the record's ``prefix_group``) names the prompts that share a prefix on purpose
    (a workload's system prompt or document): they share their cold-start nonce, so the nonce
    keeps round 1 cold without cutting the sharing inside it.  ``followups`` are the user turns
    of rounds 2, 3, ... under ``--round2-mode continue``; ``timestamp_ms`` the send time under
    ``--fixed-schedule``.
    """

    id: str
    text: str | None = None
    messages: tuple[dict[str, Any], ...] | None = None
    max_tokens: int | None = None
    followup: str | None = None
    source: str | None = None
    group: str | None = None
    followups: tuple[str, ...] = ()
    timestamp_ms: float | None = None

    def followup_for(self, round: int, default: str) -> str:
        """The user turn that continues the conversation in ``round`` (2 or later)."""
        if 0 <= round - 2 < len(self.followups):
            return self.followups[round - 2]
        return self.followup or default

    def as_messages(self) -> list[dict[str, Any]]:
        """The prompt as chat messages (a plain text becomes one user turn)."""
        if self.messages is not None:
            return [dict(m) for m in self.messages]
        return [{"role": "user", "content": self.text}]

    def as_text(self) -> str:
        """The prompt as one string, for the completions API (messages are joined by role)."""
        if self.text is not None:
            return self.text
        return "\n\n".join(
            f"{m.get('role', 'user')}: {_content_text(m)}" for m in self.messages or ()
        )


@dataclass(slots=True)
class RequestRecord:
    """The measured outcome of one request of one round (times in ms, relative to round start)."""

    prompt_id: str
    level: str  # the level's key (levels.Level.key): "concurrency=5", "rate=10", "rate=inf"
    round: int
    start_ms: float  # when the request was written, from the round's start
    end_ms: float | None = None  # when the stream ended ([DONE], close or failure)
    ttft_ms: float | None = None  # send -> first token event (docs/benchmarker_guide.md)
    latency_ms: float | None = None  # send -> end of stream
    # Gaps between token events; stored as Gaps (4 bytes a gap), whatever sequence is given.
    itl_ms: Sequence[float] = ()
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None  # usage.prompt_tokens_details.cached_tokens
    token_source: TokenSource = TokenSource.ESTIMATE
    status: int | None = None  # HTTP status, None when no response arrived
    error_kind: ErrorKind | None = None
    error: str | None = None
    finish_reason: str | None = None
    response_id: str | None = None
    send_ns: int | None = None  # absolute perf_counter_ns (CLOCK_MONOTONIC): compare with traces
    output_text: str | None = ""  # None once the run no longer needs it (runner._drop_texts)
    token_events: int = 0  # events that carried a generated token (even with empty text)
    max_tokens: int | None = None  # the max_tokens this request asked for
    note: str | None = None  # what is odd about a successful answer (e.g. tokens but no text)
    scheduled_ms: float | None = None  # open loop: when the schedule released it (round start = 0)
    send_lag_ms: float | None = None  # open loop: start_ms - scheduled_ms (the client was late)
    worker: int | None = None  # the worker process that sent it (None: the main process)

    def __post_init__(self) -> None:
        if not isinstance(self.itl_ms, Gaps):
            self.itl_ms = Gaps(self.itl_ms)

    @property
    def ok(self) -> bool:
        return self.error_kind is None

    @property
    def tpot_ms(self) -> float | None:
        """(latency - TTFT) / (output tokens - 1), for successful multi-token answers that were
        streamed in at least two token events: one event carries no timing between tokens."""
        n = self.completion_tokens
        if not self.ok or n is None or n < 2 or self.latency_ms is None or self.ttft_ms is None:
            return None
        if not self.itl_ms:  # fewer than two token events
            return None
        return (self.latency_ms - self.ttft_ms) / (n - 1)

    @property
    def mean_itl_ms(self) -> float | None:
        return sum(self.itl_ms) / len(self.itl_ms) if self.itl_ms else None

    @property
    def max_itl_ms(self) -> float | None:
        return max(self.itl_ms) if self.itl_ms else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (enums as their values, derived per-request figures included)."""
        # What asdict() gives (every field is a scalar but itl_ms), minus its per-item deepcopy,
        # which cost more than the whole parse of a long stream.
        d = {name: getattr(self, name) for name in self.__dataclass_fields__}
        itl = self.itl_ms
        d["itl_ms"] = itl.tolist() if isinstance(itl, Gaps) else list(itl)
        d["token_source"] = self.token_source.value
        d["error_kind"] = self.error_kind.value if self.error_kind else None
        d["ok"] = self.ok
        d["tpot_ms"] = self.tpot_ms
        d["mean_itl_ms"] = self.mean_itl_ms
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RequestRecord:
        """Inverse of ``to_dict`` (derived keys are ignored), for re-reading requests.jsonl."""
        names = set(cls.__dataclass_fields__)
        kw = {k: v for k, v in d.items() if k in names}
        if "level" not in kw and d.get("concurrency") is not None:  # schema 1's records
            kw["level"] = f"concurrency={d['concurrency']}"
        kw["token_source"] = TokenSource(kw.get("token_source", "estimate"))
        if kw.get("error_kind") is not None:
            kw["error_kind"] = ErrorKind(kw["error_kind"])
        return cls(**kw)


def _content_text(message: dict[str, Any]) -> str:
    """A message's text, whether content is a string or OpenAI's list of parts."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""
