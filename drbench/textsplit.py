"""Split a list written as one string on separators outside ``{...}`` and quoted strings.

One rule for every list a user writes in one string (a flag, a recipe value, an environment
variable): a Prometheus label selector such as ``m{a="1",b="2"}`` stays one item, and inside a
quoted string a backslash escapes the next character (PromQL's string rule, so ``"\\""`` does
not end the string).  Pure; what an item means is the caller's business.
"""

from __future__ import annotations

__all__ = ["split_outside_braces"]


def split_outside_braces(text: str, separators: str) -> list[str]:
    """The pieces of ``text`` between ``separators`` characters that stand outside braces and
    quotes, empty pieces included (callers decide whether ``"a,,b"`` is an error)."""
    pieces: list[str] = []
    depth, quote, start, escaped = 0, "", 0, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif quote:
            escaped = ch == "\\"
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "{}":
            depth += 1 if ch == "{" else -1
        elif ch in separators and depth <= 0:
            pieces.append(text[start:i])
            start = i + 1
    pieces.append(text[start:])
    return pieces
