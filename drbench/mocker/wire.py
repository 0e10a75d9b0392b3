"""OpenAI's wire format as bytes: pre-encoded SSE chunk templates, full responses, error bodies.

A streamed content chunk is built by concatenating a per-request prefix (id, created, model)
with a pre-encoded per-token tail, never by ``json.dumps`` per chunk: that is what lets one core
serve tens of thousands of chunks a second. The shapes follow openai-python's types and vLLM's
output (``delta`` with the role first, ``finish_reason`` in its own chunk, an optional usage
chunk with empty ``choices``, then ``data: [DONE]``). No I/O happens here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = [
    "DONE_EVENT",
    "Kind",
    "StreamFormat",
    "TokenBytes",
    "completion_body",
    "error_body",
    "frame",
    "sse_event",
    "usage_dict",
]

DONE_EVENT = b"data: [DONE]\n\n"
_TOKEN_TAIL = {
    "chat": b'},"logprobs":null,"finish_reason":null}]}\n\n',
    "completion": b',"logprobs":null,"finish_reason":null,"stop_reason":null}]}\n\n',
}


class Kind(str, Enum):
    """Which OpenAI endpoint a request came in on."""

    CHAT = "chat"
    COMPLETION = "completion"

    @property
    def id_prefix(self) -> str:
        return "chatcmpl" if self is Kind.CHAT else "cmpl"


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def sse_event(obj: Any) -> bytes:
    """One ``data: {json}\\n\\n`` event."""
    return b"data: " + _dumps(obj).encode() + b"\n\n"


def frame(data: bytes, chunked: bool) -> bytes:
    """Wrap bytes as one HTTP/1.1 chunk (or pass them through for an unchunked response)."""
    return b"%x\r\n%b\r\n" % (len(data), data) if chunked else data


def usage_dict(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict[str, Any]:
    """The ``usage`` object, with ``prompt_tokens_details.cached_tokens``."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
    }


def error_body(
    message: str, type_: str, param: str | None = None, code: str | int | None = None
) -> dict[str, Any]:
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@dataclass(frozen=True, slots=True)
class TokenBytes:
    """Every filler token pre-encoded as the tail of a content chunk, for one endpoint kind."""

    first: tuple[bytes, ...]  # the token as a response's first (leading space stripped)
    rest: tuple[bytes, ...]

    @classmethod
    def build(cls, kind: Kind, filler: Sequence[str]) -> TokenBytes:
        tail = _TOKEN_TAIL[kind.value]
        first = tuple(_dumps(t.lstrip()).encode() + tail for t in filler)
        rest = tuple(_dumps(t).encode() + tail for t in filler)
        return cls(first, rest)


class StreamFormat:
    """The byte templates of one streamed response (its id, created time and model are fixed)."""

    __slots__ = ("_header", "kind", "prefix")

    def __init__(self, kind: Kind, response_id: str, model: str, created: int) -> None:
        self.kind = kind
        obj = "chat.completion.chunk" if kind is Kind.CHAT else "text_completion"
        self._header = {"id": response_id, "object": obj, "created": created, "model": model}
        field = b'"delta":{"content":' if kind is Kind.CHAT else b'"text":'
        head = _dumps(self._header)[:-1].encode()
        self.prefix = b"data: " + head + b',"choices":[{"index":0,' + field

    def role_event(self) -> bytes:
        """The chat stream's first chunk (role, empty content); completions have none."""
        if self.kind is not Kind.CHAT:
            return b""
        return self._choice_event({"role": "assistant", "content": ""}, None)

    def finish_event(self, finish_reason: str) -> bytes:
        """The chunk that carries ``finish_reason`` (and no text)."""
        return self._choice_event({} if self.kind is Kind.CHAT else "", finish_reason)

    def usage_event(self, usage: dict[str, Any]) -> bytes:
        """The ``include_usage`` chunk: empty ``choices`` and the whole request's usage."""
        return sse_event({**self._header, "choices": [], "usage": usage})

    def garbage_event(self) -> bytes:
        """One SSE event whose data is not JSON (the ``--malformed-rate`` fault)."""
        return b"data: " + _dumps(self._header)[:-1].encode() + b',"choices":[{"index":0 ###\n\n'

    def _choice_event(self, delta: Any, finish_reason: str | None) -> bytes:
        choice: dict[str, Any] = {"index": 0}
        if self.kind is Kind.CHAT:
            choice["delta"] = delta
        else:
            choice["text"] = delta
        choice["logprobs"] = None
        choice["finish_reason"] = finish_reason
        if self.kind is Kind.COMPLETION:
            choice["stop_reason"] = None
        return sse_event({**self._header, "choices": [choice]})


def completion_body(
    kind: Kind,
    response_id: str,
    model: str,
    created: int,
    text: str,
    finish_reason: str,
    usage: dict[str, Any],
) -> dict[str, Any]:
    """A whole non-streamed response (``chat.completion`` or ``text_completion``)."""
    if kind is Kind.CHAT:
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text, "tool_calls": []},
            "logprobs": None,
            "finish_reason": finish_reason,
        }
        obj = "chat.completion"
    else:
        choice = {
            "index": 0,
            "text": text,
            "logprobs": None,
            "finish_reason": finish_reason,
            "stop_reason": None,
        }
        obj = "text_completion"
    return {
        "id": response_id,
        "object": obj,
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": usage,
    }
