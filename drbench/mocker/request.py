"""Validate a completion request body and turn it into prompt tokens plus generation options.

Bad input raises ``Rejected`` carrying the HTTP status and an OpenAI-style error body: vLLM's
400 (``BadRequestError``) for a body that is not JSON and for a context too long; OpenAI's
``invalid_request_error`` 400 naming the field for a missing, mistyped or out-of-range field;
vLLM's 404 for a model not served. A client always gets a clear error, never a 500 or a hang.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from drbench.mocker.tokenizer import render_chat, tokenize, tokenize_capped
from drbench.mocker.wire import Kind, error_body

__all__ = [
    "ParsedRequest",
    "Rejected",
    "bad_request",
    "check_context",
    "decode_body",
    "parse_request",
]

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
    """The JSON object of a request body, or vLLM's 400 (``BadRequestError``, code 400).

    Every way decoding can fail is a 400, never a 500: bad syntax or encoding (ValueError,
    which includes UnicodeDecodeError) and nesting too deep for the parser (RecursionError).
    """
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise bad_request(f"Invalid JSON body: {exc}. Send a JSON object.") from None
    except RecursionError:
        raise bad_request(
            "Invalid JSON body: nested too deeply to parse. Send a JSON object."
        ) from None
    if not isinstance(body, dict):
        raise bad_request("Invalid request body: expected a JSON object.")
    return body


def bad_request(message: str, param: str | None = None) -> Rejected:
    """A 400 in vLLM's shape: ``{"error": {"message", "type": "BadRequestError", "param",
    "code": 400}}``."""
    return Rejected(400, error_body(message, "BadRequestError", param, 400))


def parse_request(
    body: dict[str, Any],
    kind: Kind,
    served: Sequence[str],
    chat_header: str = "",
    max_model_len: int | None = None,
) -> ParsedRequest:
    """Check every field the server uses; raise ``Rejected`` for the first problem.

    ``chat_header`` (``--chat-template-header``) is tokenized before a chat request's first
    message, as a chat template's header would be; completions get none. With
    ``max_model_len``, the context is checked too (``check_context``), and a prompt's tokens
    past that length are counted without being kept.
    """
    model = body.get("model")
    if model is None:
        model = served[0]
    elif not isinstance(model, str):
        raise _type_error("model", "a string", model)
    elif model not in served:
        raise Rejected(
            404, error_body(f"The model `{model}` does not exist.", "NotFoundError", "model", 404)
        )
    if kind is Kind.CHAT:
        header = tokenize(chat_header)
        cap = None if max_model_len is None else max_model_len - len(header)
        tokens, count = _chat_tokens(body, cap)
        tokens, count = header + tokens, len(header) + count
    else:
        tokens, count = _completion_tokens(body, max_model_len)
    stream = _optional(body, "stream", bool, "a boolean", False)
    options = _optional(body, "stream_options", dict, "an object", {})
    include_usage = _optional(options, "include_usage", bool, "a boolean", False)
    max_tokens = _positive_int(body, "max_completion_tokens") or _positive_int(body, "max_tokens")
    min_tokens = _optional(body, "min_tokens", int, "an integer", 0)
    if min_tokens < 0:
        raise _bad(
            f"Invalid 'min_tokens': must be >= 0 (got {min_tokens}).", "min_tokens", "invalid_value"
        )
    n = _optional(body, "n", int, "an integer", 1)
    if n != 1:
        raise _bad(
            f"Invalid value for 'n': this server supports n=1 only (got {n}).", "n", "invalid_value"
        )
    for name in _NUMBER_FIELDS:
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise _type_error(name, "a number", value)
        if isinstance(value, float) and not math.isfinite(value):
            # Python's json reads NaN, Infinity and 1e999 as floats; JSON has no such numbers.
            raise _bad(
                f"Invalid value for '{name}': expected a finite number, got {value}.",
                name,
                "invalid_value",
            )
    if max_model_len is not None:
        check_context(count, max_tokens, max_model_len, min_tokens)
    return ParsedRequest(
        kind,
        model,
        tokens,
        stream,
        include_usage,
        max_tokens,
        min_tokens,
        _optional(body, "ignore_eos", bool, "a boolean", False),
        _stops(body),
    )


def check_context(
    prompt_tokens: int, max_tokens: int | None, max_model_len: int, min_tokens: int = 0
) -> None:
    """vLLM's 400s (serving_engine ``_validate_input``, wording of vLLM >= 0.10) for a request
    that cannot fit the model's context: a prompt of ``max_model_len`` tokens or more, or a
    prompt plus ``max_tokens`` beyond it; and for a ``min_tokens`` above ``max_tokens``, or
    above the room the context leaves when no ``max_tokens`` is given (vLLM's default
    ``max_tokens``), so no request can ask for an endless answer."""
    if prompt_tokens >= max_model_len:
        raise bad_request(
            f"This model's maximum context length is {max_model_len} tokens. However, your "
            f"request has {prompt_tokens} input tokens. Please reduce the length of the input "
            "messages.",
            "input_tokens",
        )
    if max_tokens is not None and prompt_tokens + max_tokens > max_model_len:
        raise bad_request(
            f"'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This model's "
            f"maximum context length is {max_model_len} tokens and your request has "
            f"{prompt_tokens} input tokens ({max_tokens} > {max_model_len} - {prompt_tokens}).",
            "max_tokens",
        )
    room = max_tokens if max_tokens is not None else max_model_len - prompt_tokens
    if min_tokens > room:
        raise _bad(
            f"Invalid 'min_tokens': must be <= max_tokens={room} (got {min_tokens}).",
            "min_tokens",
            "invalid_value",
        )


def _chat_tokens(body: dict[str, Any], cap: int | None) -> tuple[list[str], int]:
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
        if isinstance(content, list):
            _check_parts(content, f"messages[{i}].content")
    return tokenize_capped(render_chat(messages), cap)


def _check_parts(parts: list[Any], where: str) -> None:
    """OpenAI content parts are objects; a text part's ``text`` is a string."""
    for j, part in enumerate(parts):
        if not isinstance(part, dict):
            raise _type_error(f"{where}[{j}]", "a content part object", part)
        text = part.get("text")
        if text is not None and not isinstance(text, str):
            raise _type_error(f"{where}[{j}].text", "a string", text)


def _completion_tokens(body: dict[str, Any], cap: int | None) -> tuple[list[str], int]:
    prompt = body.get("prompt")
    if prompt is None:
        raise _bad("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
        prompt = prompt[0]  # a batch of one
    if isinstance(prompt, str):
        tokens, count = tokenize_capped(prompt, cap)
    elif isinstance(prompt, list) and all(
        isinstance(t, int) and not isinstance(t, bool) for t in prompt
    ):
        negative = next((j for j, t in enumerate(prompt) if t < 0), None)
        if negative is not None:
            raise _bad(
                f"Invalid 'prompt[{negative}]': token ids must be >= 0 (got {prompt[negative]}).",
                "prompt",
                "invalid_value",
            )
        ids = prompt if cap is None else prompt[: max(cap, 0)]
        tokens, count = [f"<{t}>" for t in ids], len(prompt)  # token ids: one toy token each
    else:
        raise _bad(
            "Invalid 'prompt': expected a string, an array of token ids, or a batch of "
            "one of those (this server takes one prompt per request).",
            "prompt",
            "invalid_type",
        )
    if not count:
        raise _bad("Invalid 'prompt': the prompt is empty.", "prompt", "invalid_value")
    return tokens, count


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
