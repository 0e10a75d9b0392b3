"""Count and middle-truncate prompt tokens: a documented estimate, or exact with a local tokenizer.

The estimate (no dependency, no download): every CJK ideograph, kana or Hangul character counts
as one token, and every other character as a quarter of one, rounded up (about 4 characters per
token of English).  It is within some tens of percent for English with common BPE tokenizers,
which is enough to size ``--max-tokens`` and concurrency, not to sit exactly at a context limit.

``--tokenizer PATH`` gives exact counts from a local ``tokenizer.json`` (package ``tokenizers``)
or a local model folder (package ``transformers``); both are imported only then, and neither is
a requirement of drbench.  Nothing here downloads anything.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drbench.errors import UsageError

__all__ = [
    "WIDE_CHARS",
    "EstimateCounter",
    "TokenCounter",
    "TokenizerCounter",
    "load_counter",
    "wide_chars",
]

# Characters the estimate counts as one token each: kana, CJK ideographs, Hangul, CJK punctuation
# and full-width forms.  A regex keeps counting at C speed on 100k-character LongBench contexts.
# (The class is public so that reuse.py cuts the same characters into units of their own.)
WIDE_CHARS = (
    "[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]"
)
_WIDE = re.compile(WIDE_CHARS)


def wide_chars(text: str) -> int:
    """How many characters of the text the estimate counts as whole tokens (CJK, kana, Hangul)."""
    return len(text) - len(_WIDE.sub("", text))


@dataclass(frozen=True, slots=True)
class EstimateCounter:
    """The dependency-free estimate described in the module docstring."""

    name: str = "estimate"

    def count(self, text: str) -> int:
        wide = wide_chars(text)
        return wide + -(-(len(text) - wide) // 4)

    def truncate_middle(self, text: str, max_tokens: int) -> str:
        """The first and last halves of the text, cut so its estimate fits ``max_tokens``."""
        if self.count(text) <= max_tokens:
            return text
        lo, hi = 0, len(text)  # characters kept; binary search for the most that fit
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.count(_ends(text, mid)) <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        return _ends(text, lo)


@dataclass(frozen=True, slots=True)
class TokenizerCounter:
    """Exact counts through a real tokenizer's encode/decode (as LongBench's pred.py truncates)."""

    name: str
    encode: Callable[[str], list[int]]
    decode: Callable[[list[int]], str]

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def truncate_middle(self, text: str, max_tokens: int) -> str:
        ids = self.encode(text)
        if len(ids) <= max_tokens:
            return text
        half = max_tokens // 2
        return self.decode(ids[:half]) + self.decode(ids[len(ids) - (max_tokens - half) :])


TokenCounter = EstimateCounter | TokenizerCounter


def load_counter(path: str | None) -> TokenCounter:
    """The estimate when ``path`` is None, else an exact counter from a local tokenizer."""
    if path is None:
        return EstimateCounter()
    p = Path(path)
    if not p.exists():
        raise UsageError(f"--tokenizer {path}: no such file or directory")
    file = p if p.is_file() else p / "tokenizer.json"
    tokenizers = _optional("tokenizers")
    if tokenizers is not None and file.is_file():
        tok = _load(path, lambda: tokenizers.Tokenizer.from_file(str(file)))
        return TokenizerCounter(
            f"tokenizer {path}",
            lambda t: tok.encode(t, add_special_tokens=False).ids,
            tok.decode,
        )
    transformers = _optional("transformers")
    if transformers is not None and p.is_dir():
        load = transformers.AutoTokenizer.from_pretrained
        tok = _load(path, lambda: load(str(p), local_files_only=True))
        return TokenizerCounter(
            f"tokenizer {path}",
            lambda t: tok.encode(t, add_special_tokens=False),
            lambda ids: tok.decode(ids, skip_special_tokens=True),
        )
    if tokenizers is None and transformers is None:
        raise UsageError(
            "--tokenizer needs the 'tokenizers' or 'transformers' package and neither is "
            "installed: pip install tokenizers, or leave out --tokenizer to use the estimate"
        )
    raise UsageError(
        f"--tokenizer {path}: expected a tokenizer.json file or a folder holding one "
        "(a model folder needs the 'transformers' package)"
    )


def _ends(text: str, keep: int) -> str:
    head = keep // 2
    return text[:head] + text[len(text) - (keep - head) :]


def _optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _load(path: str, factory: Callable[[], Any]) -> Any:
    try:
        return factory()
    except Exception as exc:  # third-party loaders raise anything; the user gets one line
        raise UsageError(f"--tokenizer {path}: cannot load it: {exc}") from None
