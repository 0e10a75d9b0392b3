"""What a user adds to every request: ``--extra-body`` fields and ``--header`` lines.

Real deployments need fields the tool does not know (``chat_template_kwargs``, ``top_p``, a
vendor's own keys) and headers (a cache-aware router's session id, a gateway's key). Both are
checked here, before anything is sent, so a typo is one line naming the flag: JSON that does not
parse, a key the tool sets itself (``model``, ``messages``, ``stream``...: each has its own flag
or is the tool's to decide), a header line without ``NAME: VALUE``, a header the tool owns.
Pure functions, except ``load_extra_body`` which reads the ``@file.json`` a user names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from drbench.errors import ConfigError
from drbench.redact import MASK, is_secret_header

__all__ = [
    "OWNED_BODY_KEYS",
    "OWNED_HEADERS",
    "extra_body_problem",
    "load_extra_body",
    "parse_extra_body",
    "parse_header",
    "parse_headers",
    "redact_extra_body",
    "redact_header_lines",
]

#: Body keys the tool writes itself, and what to use instead of setting them by hand.
OWNED_BODY_KEYS: dict[str, str] = {
    "model": "use --model",
    "messages": "the dataset gives the prompt",
    "prompt": "the dataset gives the prompt",
    "stream": "the tool always streams, to time every token",
    "stream_options": "the tool asks for usage itself",
    "max_tokens": "use --max-tokens",
    "temperature": "use --temperature",
    "ignore_eos": "use --ignore-eos",
}
#: Headers the tool sends itself (lowercase); Authorization is refused only with an API key.
OWNED_HEADERS: dict[str, str] = {
    "content-type": "the body is JSON",
    "accept": "the answer is an event stream",
    "content-length": "aiohttp sets it",
    "host": "it comes from --endpoint",
    "transfer-encoding": "aiohttp sets it",
}
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field name
_SECRET_KEY_ENDINGS = ("key", "token", "secret", "password", "passwd")
_FLAG = "--extra-body"


def parse_extra_body(value: Any, where: str = _FLAG) -> dict[str, Any]:
    """The fields to merge into every body: a JSON object as text, or a mapping (a recipe's)."""
    if isinstance(value, Mapping):
        body = dict(value)
    elif isinstance(value, str):
        try:
            body = json.loads(value)
        except ValueError as exc:
            raise ConfigError(
                f"{where}: not valid JSON ({exc}); give an object, e.g. "
                """'{"top_p": 0.9}', or @FILE.json"""
            ) from None
    else:
        raise ConfigError(f"{where}: expected a JSON object, got a {type(value).__name__}")
    if not isinstance(body, dict):
        raise ConfigError(
            f"{where}: expected a JSON object of fields, got a {type(body).__name__}; "
            """e.g. '{"top_p": 0.9}'"""
        )
    owned = sorted(k for k in body if k in OWNED_BODY_KEYS)
    if owned:
        key = owned[0]
        raise ConfigError(
            f"{where}: {key!r} is set by the tool ({OWNED_BODY_KEYS[key]}); remove it"
        )
    return body


def load_extra_body(value: Any, where: str = _FLAG) -> dict[str, Any]:
    """``parse_extra_body``, reading ``@path.json`` first when the value names a file."""
    if isinstance(value, str) and value.startswith("@"):
        path = Path(value[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(f"{where}: cannot read {path}: {reason}") from None
        return parse_extra_body(text, f"{where} {path}")
    return parse_extra_body(value, where)


def extra_body_problem(value: Any) -> str | None:
    """Why an ``--extra-body`` value given inline cannot be used (a file is read at run time)."""
    if value is None or (isinstance(value, str) and value.startswith("@")):
        return None
    try:
        parse_extra_body(value, "")
    except ConfigError as exc:
        return str(exc).removeprefix(": ")
    return None


def parse_header(line: str) -> tuple[str, str]:
    """``"NAME: VALUE"`` (curl's, AIPerf's) or ``"NAME=VALUE"`` (vLLM bench's) as a pair.

    A field name holds neither ':' nor '=', so whichever comes first separates the two.
    """
    cut = min((i for i in (line.find(":"), line.find("=")) if i >= 0), default=-1)
    name, value = (line[:cut].strip(), line[cut + 1 :].strip()) if cut >= 0 else (line, "")
    shown = name[:60] if cut >= 0 else line[:60]
    if cut < 0 or not _TOKEN.fullmatch(name):
        raise ConfigError(
            f"--header {shown!r}: expected 'NAME: VALUE', e.g. --header 'X-Session-Id: 42'"
        )
    if any(ord(ch) < 32 and ch != "\t" or ord(ch) == 127 for ch in value):
        raise ConfigError(f"--header {name}: the value holds a control character (a newline?)")
    low = name.lower()
    if low in OWNED_HEADERS:
        raise ConfigError(f"--header {name}: set by the tool ({OWNED_HEADERS[low]}); remove it")
    return name, value


def parse_headers(lines: Iterable[str], *, api_key: bool = False) -> tuple[tuple[str, str], ...]:
    """Every ``--header`` as (name, value); a name given twice or Authorization beside a key is
    refused (which one would the server see?)."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for line in lines:
        name, value = parse_header(line)
        low = name.lower()
        if low in seen:
            raise ConfigError(f"--header {name} is given twice; give each header once")
        if low == "authorization" and api_key:
            raise ConfigError(
                "--header Authorization and an API key (--api-key or $OPENAI_API_KEY) are both "
                "the Authorization header; drop one of them"
            )
        seen.add(low)
        out.append((name, value))
    return tuple(out)


def redact_header_lines(lines: Iterable[str]) -> list[str]:
    """``--header`` lines as a file or the console may show them: secret-looking values masked."""
    out = []
    for line in lines:
        cut = min((i for i in (line.find(":"), line.find("=")) if i >= 0), default=-1)
        name = line[:cut].strip() if cut >= 0 else ""
        if name and is_secret_header(name):
            out.append(f"{line[: cut + 1]} {MASK}" if line[cut] == ":" else f"{name}={MASK}")
        else:
            out.append(line)
    return out


def redact_extra_body(body: Any) -> Any:
    """An ``--extra-body`` object with the values of credential-named keys (``api_key``,
    ``access_token``) masked, at any depth; a string (inline JSON or @file) is kept."""
    if isinstance(body, Mapping):
        return {
            k: MASK
            if isinstance(k, str) and k.lower().endswith(_SECRET_KEY_ENDINGS)
            else redact_extra_body(v)
            for k, v in body.items()
        }
    if isinstance(body, list):
        return [redact_extra_body(v) for v in body]
    return body
