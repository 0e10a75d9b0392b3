"""A small deterministic toy tokenizer, the chat template, and the filler the mock "model" says.

The tokenizer is lossless (``"".join(tokenize(t)) == t``) and prefix-stable at the template's
boundaries, so a conversation that extends an earlier one shares its leading tokens and hence its
prefix-cache blocks. It gives roughly 4 characters per token on English text, close enough to a
real BPE for benchmark sizing; it has no vocabulary ids because the prefix cache hashes the token
strings. It is not any real model's tokenizer and never loads one.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "FILLER_TEXT",
    "filler_tokens",
    "render_chat",
    "tokenize",
    "tokenize_capped",
]

# Special tokens, then Latin words in pieces of at most 5 letters (with an optional leading
# space, as GPT-style BPEs do), digits in threes, single punctuation, whitespace runs, and one
# token per character of any other script (CJK and the like, where real tokenizers are dense).
_TOKEN_RE = re.compile(
    r"<\|[a-z_]+\|>| ?[A-Za-z\u00c0-\u024f]{1,5}| ?\d{1,3}| ?[^\w\s]|\s+|.",
    re.DOTALL,
)

_IM_START = "<|im_start|>"
_IM_END = "<|im_end|>"

FILLER_TEXT = (
    "The cache keeps the blocks of every prompt it has seen, so a second visit skips the long "
    "prefill and the first token arrives early. Each block holds sixteen tokens and is named by "
    "a hash that also covers the blocks before it, which makes a shared prefix cheap to find. "
    "When the pool is full the least recently used blocks leave first, tail before head. This "
    "answer is filler text from a mock server: it is readable, it is deterministic under the "
    "seed, and it says nothing at all about the question that was asked."
)


def tokenize(text: str) -> list[str]:
    """Split text into toy tokens (strings); the concatenation gives the text back."""
    return _TOKEN_RE.findall(text)


def tokenize_capped(text: str, cap: int | None) -> tuple[list[str], int]:
    """The first ``cap`` tokens of ``text`` (all if ``cap`` is None) and how many it has in all.

    Tokens past the cap are counted, never kept: a 32 MiB prompt that a context limit rejects
    anyway then costs the server its count, not half a gigabyte of token strings.
    """
    if cap is None:
        tokens = tokenize(text)
        return tokens, len(tokens)
    found = _TOKEN_RE.finditer(text)
    kept = [m.group() for m in itertools.islice(found, max(cap, 0))]
    return kept, len(kept) + sum(1 for _ in found)


def render_chat(messages: Iterable[Mapping[str, Any]]) -> str:
    """ChatML-style template over every message, ending with the assistant's generation prompt.

    Each turn renders as ``<|im_start|>{role}\\n{content}<|im_end|>\\n``; a conversation that
    appends turns therefore renders to a string that starts with the earlier one's turns.
    """
    parts = [f"{_IM_START}{m.get('role', 'user')}\n{_content_text(m)}{_IM_END}\n" for m in messages]
    parts.append(f"{_IM_START}assistant\n")
    return "".join(parts)


def filler_tokens() -> tuple[str, ...]:
    """The cycle of tokens generated text is drawn from (a request starts at a seeded offset).

    The text is tokenized with a space before it, so the cycle wraps from ``"."`` to
    ``" The"``: any run of the cycle (the first token's space stripped, as answers start)
    re-tokenizes to the same tokens, also across the wrap, and a conversation that sends an
    answer back as its assistant turn finds all of it cached.  (Tokenized with a space after
    it, the wrap was ``" "`` then ``"The"``, which come back as one ``" The"``.)
    """
    return tuple(tokenize(" " + FILLER_TEXT))


def _content_text(message: Mapping[str, Any]) -> str:
    """A message's text: a string, OpenAI's list of content parts, or nothing."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)
