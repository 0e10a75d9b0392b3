"""OpenAI's wire format as bytes: pre-encoded SSE chunk templates, full responses, error bodies.

A streamed content chunk is built by concatenating a per-request prefix (id, created, model)
with a pre-encoded per-token tail, never by ``json.dumps`` per chunk: that is what lets one core
serve tens of thousands of chunks a second. The shapes follow openai-python's types and vLLM's
output (``delta`` with the role first, ``finish_reason`` in its own chunk, an optional usage
chunk with empty ``choices``, then ``data: [DONE]``). The stream quirks of shape.py use the
general ``content_event`` / ``tool_event`` / ``finish_chunk`` builders instead, which do encode
per chunk. No I/O happens here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = [
    "DONE_EVENT",
    "TOOL_NAME",
    "Kind",
    "StreamFormat",
    "TokenBytes",
    "completion_body",
    "error_body",
    "frame",
    "sse_event",
    "tool_call_id",
    "usage_dict",
]

DONE_EVENT = b"data: [DONE]\n\n"
TOOL_NAME = "mock_answer"  # the function a --tool-calls answer "calls"
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


def tool_call_id(response_id: str) -> str:
    """The id of a ``--tool-calls`` answer's one call, derived from the response's id."""
    return "call_" + response_id.split("-", 1)[-1][:24]


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

    __slots__ = ("_header", "kind", "prefix", "response_id")

    def __init__(self, kind: Kind, response_id: str, model: str, created: int) -> None:
        self.kind = kind
        self.response_id = response_id
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

    def content_event(
        self,
        text: str,
        finish_reason: str | None = None,
        usage: dict[str, Any] | None = None,
        response_id: str | None = None,
        role: bool = False,
    ) -> bytes:
        """A chunk carrying ``text`` (a chat ``delta.content`` or a completion ``text``),
        optionally with the role, ``finish_reason``, ``usage`` or another ``id``: the slow,
        general path of the stream quirks (shape.py)."""
        delta: Any = text
        if self.kind is Kind.CHAT:
            delta = {"role": "assistant", "content": text} if role else {"content": text}
        return self._choice_event(delta, finish_reason, usage, response_id)

    def tool_event(
        self,
        arguments: str,
        call_id: str | None,
        finish_reason: str | None = None,
        usage: dict[str, Any] | None = None,
        response_id: str | None = None,
    ) -> bytes:
        """A chat chunk carrying a piece of the function call's ``arguments``. The first one
        (``call_id`` given) also carries the role, ``content: null``, the call's id, type and
        name, as OpenAI streams a tool call."""
        call: dict[str, Any] = {"index": 0}
        if call_id is None:
            call["function"] = {"arguments": arguments}
            delta: dict[str, Any] = {"tool_calls": [call]}
        else:
            call.update(id=call_id, type="function")
            call["function"] = {"name": TOOL_NAME, "arguments": arguments}
            delta = {"role": "assistant", "content": None, "tool_calls": [call]}
        return self._choice_event(delta, finish_reason, usage, response_id)

    def finish_chunk(
        self,
        finish_reason: str,
        usage: dict[str, Any] | None = None,
        response_id: str | None = None,
    ) -> bytes:
        """The chunk that carries ``finish_reason`` and no text, with ``usage`` if given."""
        empty: Any = {} if self.kind is Kind.CHAT else ""
        return self._choice_event(empty, finish_reason, usage, response_id)

    def usage_chunk(self, usage: dict[str, Any], response_id: str | None = None) -> bytes:
        """``usage_event`` under another ``id`` if given (``--new-id-per-chunk``)."""
        header = {**self._header, "id": response_id or self.response_id}
        return sse_event({**header, "choices": [], "usage": usage})

    def _choice_event(
        self,
        delta: Any,
        finish_reason: str | None,
        usage: dict[str, Any] | None = None,
        response_id: str | None = None,
    ) -> bytes:
        choice: dict[str, Any] = {"index": 0}
        if self.kind is Kind.CHAT:
            choice["delta"] = delta
        else:
            choice["text"] = delta
        choice["logprobs"] = None
        choice["finish_reason"] = finish_reason
        if self.kind is Kind.COMPLETION:
            choice["stop_reason"] = None
        header = self._header if response_id is None else {**self._header, "id": response_id}
        event: dict[str, Any] = {**header, "choices": [choice]}
        if usage is not None:
            event["usage"] = usage
        return sse_event(event)


def completion_body(
    kind: Kind,
    response_id: str,
    model: str,
    created: int,
    text: str,
    finish_reason: str,
    usage: dict[str, Any] | None,
    tool_call_id: str | None = None,
) -> dict[str, Any]:
    """A whole non-streamed response (``chat.completion`` or ``text_completion``); ``usage``
    None leaves it out (``--usage-mode none``); ``tool_call_id`` makes a chat answer one
    function call whose ``arguments`` are ``text`` (``--tool-calls``)."""
    if kind is Kind.CHAT:
        message: dict[str, Any] = {"role": "assistant", "content": text, "tool_calls": []}
        if tool_call_id is not None:
            call = {"name": TOOL_NAME, "arguments": text}
            message["content"] = None
            message["tool_calls"] = [{"id": tool_call_id, "type": "function", "function": call}]
        choice: dict[str, Any] = {
            "index": 0,
            "message": message,
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
    body: dict[str, Any] = {"id": response_id, "object": obj, "created": created, "model": model}
    body["choices"] = [choice]
    if usage is not None:
        body["usage"] = usage
    return body
