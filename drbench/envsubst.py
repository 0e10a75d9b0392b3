"""``${VAR}`` expansion for recipe values: ``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}``, ``$$``.

Pure string work on values that YAML has already parsed, so a variable can never inject YAML
structure.  No type conversion here (config.coerce does that) and no access to os.environ: the
caller passes the environment in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from drbench.errors import ConfigError

__all__ = ["expand", "expand_tree"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FORMS = "${NAME}, ${NAME:-default} or ${NAME:?message}"


def expand_tree(
    value: Any, environ: Mapping[str, str], where: str, used: list[str] | None = None
) -> Any:
    """``value`` with every string inside it (lists, mapping values) expanded; keys untouched."""
    used = [] if used is None else used
    if isinstance(value, str):
        return expand(value, environ, where, used)
    if isinstance(value, list):
        return [expand_tree(v, environ, f"{where}[{i}]", used) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: expand_tree(v, environ, f"{where}.{k}", used) for k, v in value.items()}
    return value


def expand(text: str, environ: Mapping[str, str], where: str, used: list[str] | None = None) -> str:
    """``text`` with every ``${VAR}`` form replaced; ``where`` prefixes error messages.

    ``${VAR}`` is VAR's value (an error when VAR is unset), ``${VAR:-default}`` the default when
    VAR is unset or empty, ``${VAR:?message}`` stops with the message when VAR is unset or empty,
    and ``$$`` is one literal dollar.  A default or message may itself hold ``${...}``; a
    variable's *value* is never expanded again.  A bare ``$NAME`` is an error (it is almost
    always a forgotten pair of braces); any other lone ``$`` is kept.  The names of the
    variables read are appended to ``used`` (for error messages that name them).
    """
    used = [] if used is None else used
    out: list[str] = []
    i = 0
    while (j := text.find("$", i)) >= 0:
        out.append(text[i:j])
        after = text[j + 1 : j + 2]
        if after == "$":
            out.append("$")
            i = j + 2
        elif after == "{":
            end = _closing_brace(text, j + 2, where)
            out.append(_substitute(text[j + 2 : end], environ, where, used))
            i = end + 1
        elif (bare := _NAME.match(text, j + 1)) is not None:
            name = bare.group()
            raise ConfigError(
                f"{where}: ${name} is not expanded; write ${{{name}}} for the variable "
                f"or $${name} for a literal '${name}'"
            )
        else:
            out.append("$")
            i = j + 1
    out.append(text[i:])
    return "".join(out)


def _closing_brace(text: str, start: int, where: str) -> int:
    """Index of the ``}`` closing the ``${`` before ``start``, skipping nested ``${...}``."""
    depth, i = 0, start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth, i = depth + 1, i + 2
            continue
        if text[i] == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    raise ConfigError(f"{where}: unterminated '${{' in {text!r}; close it with '}}'")


def _substitute(body: str, environ: Mapping[str, str], where: str, used: list[str]) -> str:
    match = _NAME.match(body)
    if match is None:
        raise ConfigError(f"{where}: bad substitution {_shown(body)}; use {_FORMS}")
    name, rest = match.group(), body[match.end() :]
    used.append(name)
    value = environ.get(name)
    if rest == "":
        if value is None:
            raise ConfigError(
                f"{where}: ${{{name}}} is not set; set it, or write ${{{name}:-default}} "
                f"(${{{name}:-}} leaves the option unset)"
            )
        return value
    op, arg = rest[:2], rest[2:]
    if op == ":-":
        return value if value else expand(arg, environ, where, used)
    if op == ":?":
        if value:
            return value
        message = " ".join(expand(arg, environ, where, used).split()) or "is not set or empty"
        raise ConfigError(f"{where}: {name}: {message}")
    raise ConfigError(f"{where}: bad substitution {_shown(body)}; use {_FORMS}")


def _shown(body: str) -> str:
    """``'${BODY}'`` as written, or its repr when it holds a newline or a control character,
    so the message stays one line."""
    text = "${" + body + "}"
    return repr(text) if any(ord(ch) < 32 for ch in text) else f"'{text}'"
