"""Validate a completion request body and turn it into prompt tokens plus generation options.

Bad input raises ``Rejected`` carrying the HTTP status and an OpenAI-style error body (400 for
malformed JSON, missing or mistyped fields; vLLM's 404 for a model not served), so a client
always gets a clear error and never a 500 or a hang. Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from drbench.mocker.tokenizer import render_chat, tokenize
from drbench.mocker.wire import Kind, error_body

__all__ = ["ParsedRequest", "Rejected", "check_context", "decode_body", "parse_request"]

_NUMBER_FIELDS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")


class Rejected(Exception):
    """A request answered with an error status instead of a completion."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body["error"]["message"])
        self.status = status
        self.body = body


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """What the engine needs from a valid request."""

    kind: Kind
    model: str
    prompt_tokens: list[str]
    stream: bool
    include_usage: bool
    max_tokens: int | None
    min_tokens: int
    ignore_eos: bool
    stop: tuple[str, ...]


def decode_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of a request body, or a 400."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(f"Invalid JSON body: {exc}. Send a JSON object.", None, None) from None
    if not isinstance(body, dict):
        raise _bad("Invalid request body: expected a JSON object.", None, "invalid_type")
    return body


def parse_request(body: dict[str, Any], kind: Kind, served: Sequence[str]) -> ParsedRequest:
    """Check every field the server uses; raise ``Rejected`` for the first problem."""
    model = body.get("model")
    if model is None:
        model = served[0]
    elif not isinstance(model, str):
        raise _type_error("model", "a string", model)
    elif model not in served:
        raise Rejected(
            404, error_body(f"The model `{model}` does not exist.", "NotFoundError", "model", 404)
        )
    tokens = _chat_tokens(body) if kind is Kind.CHAT else _completion_tokens(body)
    stream = _optional(body, "stream", bool, "a boolean", False)
    options = _optional(body, "stream_options", dict, "an object", {})
    include_usage = _optional(options, "include_usage", bool, "a boolean", False)
    max_tokens = _positive_int(body, "max_completion_tokens") or _positive_int(body, "max_tokens")
    min_tokens = _optional(body, "min_tokens", int, "an integer", 0)
    n = _optional(body, "n", int, "an integer", 1)
    if n != 1:
        raise _bad(
            f"Invalid value for 'n': this server supports n=1 only (got {n}).", "n", "invalid_value"
        )
    for name in _NUMBER_FIELDS:
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise _type_error(name, "a number", value)
    return ParsedRequest(
        kind,
        model,
        tokens,
        stream,
        include_usage,
        max_tokens,
        max(min_tokens, 0),
        _optional(body, "ignore_eos", bool, "a boolean", False),
        _stops(body),
    )


def check_context(prompt_tokens: int, max_tokens: int | None, max_model_len: int) -> None:
    """vLLM's 400 for a request that cannot fit the model's context."""
    wanted = prompt_tokens + (max_tokens or 0)
    if wanted > max_model_len:
        raise _bad(
            f"This model's maximum context length is {max_model_len} tokens. However, you "
            f"requested {wanted} tokens ({prompt_tokens} in the messages, {max_tokens or 0} in "
            "the completion). Please reduce the length of the messages or completion.",
            "messages",
            "context_length_exceeded",
        )


def _chat_tokens(body: dict[str, Any]) -> list[str]:
    messages = body.get("messages")
    if messages is None:
        raise _bad(
            "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
        )
    if not isinstance(messages, list):
        raise _type_error("messages", "an array", messages)
    if not messages:
        raise _bad(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            "messages",
            "empty_array",
        )
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise _type_error(f"messages[{i}]", "an object", m)
        if not isinstance(m.get("role"), str):
            raise _bad(
                f"Missing or invalid 'messages[{i}].role': expected a string.",
                f"messages[{i}].role",
                "invalid_type",
            )
        content = m.get("content")
        if content is not None and not isinstance(content, str | list):
            raise _type_error(f"messages[{i}].content", "a string or an array", content)
    return tokenize(render_chat(messages))


def _completion_tokens(body: dict[str, Any]) -> list[str]:
    prompt = body.get("prompt")
    if prompt is None:
        raise _bad("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
        prompt = prompt[0]  # a batch of one
    if isinstance(prompt, str):
        tokens = tokenize(prompt)
    elif isinstance(prompt, list) and all(
        isinstance(t, int) and not isinstance(t, bool) for t in prompt
    ):
        tokens = [f"<{t}>" for t in prompt]  # token ids: one toy token each
    else:
        raise _bad(
            "Invalid 'prompt': expected a string, an array of token ids, or a batch of "
            "one of those (this server takes one prompt per request).",
            "prompt",
            "invalid_type",
        )
    if not tokens:
        raise _bad("Invalid 'prompt': the prompt is empty.", "prompt", "invalid_value")
    return tokens


def _stops(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,)
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return tuple(stop)
    raise _type_error("stop", "a string or an array of strings", stop)


def _optional(obj: dict[str, Any], name: str, typ: type, what: str, default: Any) -> Any:
    value = obj.get(name)
    if value is None:
        return default
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise _type_error(name, what, value)
    return value


def _positive_int(body: dict[str, Any], name: str) -> int | None:
    value = _optional(body, name, int, "an integer", None)
    if value is not None and value < 1:
        raise _bad(f"Invalid '{name}': must be >= 1 (got {value}).", name, "invalid_value")
    return value


def _type_error(name: str, what: str, value: Any) -> Rejected:
    got = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)
    return _bad(
        f"Invalid type for '{name}': expected {what}, but got {got} instead.", name, "invalid_type"
    )


def _bad(message: str, param: str | None, code: str | None) -> Rejected:
    return Rejected(400, error_body(message, "invalid_request_error", param, code))
