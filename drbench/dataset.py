"""Read benchmark prompts from a JSONL file or a JSON array, choose N of them, make round 1 cold.

A record is a JSON object with ``text``, ``messages`` (chat format) or ``prompt``, and optionally
``max_tokens``, ``followup``, ``followups``, ``prefix_group``, ``timestamp``, ``source`` and ``id``
(docs/benchmarker_guide.md); other keys (answers, metadata) are ignored.
Every problem is a ``DatasetError`` naming the file and the line (jsonfile.py reads the file).
No network and no clock here; the nonce's randomness is passed in by the caller.
"""

from __future__ import annotations

import hashlib
import math
import random
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from drbench.errors import DatasetError
from drbench.jsonfile import iter_items
from drbench.records import Prompt

__all__ = [
    "cold_prefix",
    "in_schedule_order",
    "load_prompts",
    "parse_record",
    "select_prompts",
    "validate_record",
    "with_prefix",
]

_TEXT_KEYS = ("text", "messages", "prompt")
_ROLES = {"system", "user", "assistant", "tool", "developer"}


def load_prompts(path: str | Path) -> list[Prompt]:
    """Every record of a JSONL file or JSON array, validated, with unique ids.

    The file is streamed (jsonfile.py): the first bad line stops reading there.
    """
    prompts: list[Prompt] = []
    seen: set[str] = set()
    for item in iter_items(path, flag="--dataset"):
        prompt = parse_record(item.obj, where=item.where, default_id=str(item.number))
        prompts.append(_unique_id(prompt, seen))
    if not prompts:
        raise DatasetError(f"{path}: holds no records")
    return prompts


def validate_record(obj: Any) -> list[str]:
    """The problems of one record, each a short phrase naming the field; empty when valid."""
    if not isinstance(obj, dict):
        return [f"expected a JSON object, got {type(obj).__name__}"]
    present = [k for k in _TEXT_KEYS if k in obj]
    if not present:
        return ["missing the prompt: give 'text', 'messages' or 'prompt'"]
    if len(present) > 1:
        return [f"give only one of 'text', 'messages', 'prompt' (found {', '.join(present)})"]
    key = present[0]
    problems = _check_messages(obj[key]) if key == "messages" else _check_text(key, obj[key])
    mt = obj.get("max_tokens")
    if mt is not None and (isinstance(mt, bool) or not isinstance(mt, int) or mt < 1):
        problems.append(f"'max_tokens' must be a positive integer, got {mt!r}")
    for key in ("followup", "source", "prefix_group"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            problems.append(f"'{key}' must be a string, got {type(obj[key]).__name__}")
    followups = obj.get("followups")
    if followups is not None and (
        not isinstance(followups, list)
        or not all(isinstance(f, str) and f.strip() for f in followups)
    ):
        problems.append("'followups' must be a list of non-empty strings (round 2's turn first)")
    ts = obj.get("timestamp")
    if ts is not None and (
        isinstance(ts, bool) or not isinstance(ts, (int, float)) or not 0 <= ts < math.inf
    ):
        problems.append(f"'timestamp' must be a number of milliseconds >= 0, got {ts!r}")
    return problems


def parse_record(obj: Any, *, where: str, default_id: str) -> Prompt:
    """One validated Prompt, or a DatasetError naming ``where`` (e.g. ``data.jsonl:12``)."""
    problems = validate_record(obj)
    if problems:
        raise DatasetError(f"{where}: {problems[0]}")
    rid = obj.get("id", obj.get("_id"))
    messages = obj.get("messages")
    return Prompt(
        id=str(rid) if rid is not None and rid != "" else default_id,
        text=obj.get("text", obj.get("prompt")),
        messages=tuple(dict(m) for m in messages) if messages is not None else None,
        max_tokens=obj.get("max_tokens"),
        followup=obj.get("followup"),
        source=obj.get("source"),
        group=obj.get("prefix_group"),
        followups=tuple(obj.get("followups") or ()),
        timestamp_ms=float(obj["timestamp"]) if obj.get("timestamp") is not None else None,
    )


def select_prompts(
    prompts: Sequence[Prompt],
    n: int | None,
    *,
    shuffle: bool = False,
    seed: int = 0,
    source: str = "",
) -> list[Prompt]:
    """The first ``n`` prompts, or a seeded random sample of ``n`` without replacement."""
    if n is None:
        n = len(prompts)
    if n > len(prompts):
        raise DatasetError(
            f"{source or 'the dataset'} holds {len(prompts)} records but --num-samples is {n}; "
            f"use --num-samples {len(prompts)} or less"
        )
    if shuffle:
        return random.Random(seed).sample(list(prompts), n)
    return list(prompts[:n])


def in_schedule_order(prompts: Sequence[Prompt], source: str) -> list[Prompt]:
    """``--fixed-schedule``'s prompts: each needs a timestamp, and they go in timestamp order
    (a stable sort, so records of one instant keep the file's order)."""
    missing = next((p for p in prompts if p.timestamp_ms is None), None)
    if missing is not None:
        raise DatasetError(
            f"{source}: record '{missing.id}' has no 'timestamp'; --fixed-schedule sends each "
            "record at its timestamp (ms from the start): give every record one, or use "
            "--concurrency or --request-rate"
        )
    return sorted(prompts, key=lambda p: p.timestamp_ms or 0.0)


_NONCE_LETTERS = string.ascii_letters
_NONCE_HEAD = 5  # letters that are distinct for every prompt of every level of one run


def cold_prefix(run_token: str, level_index: int, prompt_index: int, prompts_per_level: int) -> str:
    """The nonce put at the very start of one prompt of one level (DESIGN.md, Cold round 1).

    What varies comes first: a cache block can only be shared by prompts whose first tokens are
    identical, so the nonce's first characters must differ between every prompt of every level.
    Its first five letters count the prompt (level by level) from an offset drawn from
    ``run_token``, little-endian, so the first letter changes from one prompt to the next: no two
    prompts of a run share their first four letters (up to 52**4 prompts x levels), hence no
    block of 4 tokens or more that holds them; with token-level caching (SGLang's radix tree)
    two prompts share at most the first letter's token.  Five letters drawn from the run token,
    level and prompt follow, so an earlier run's prompts (another offset) share nothing longer.
    ``run_token`` must differ between runs (the caller draws it from the OS).
    """
    base = len(_NONCE_LETTERS)
    offset = _digest_int(run_token) % base**_NONCE_HEAD
    head = _letters((offset + level_index * prompts_per_level + prompt_index) % base**_NONCE_HEAD)
    tail = _letters(_digest_int(f"{run_token}/{level_index}/{prompt_index}") % base**_NONCE_HEAD)
    return f"{head}{tail} "


def _letters(n: int) -> str:
    """``n`` in base 52, least significant letter first, always ``_NONCE_HEAD`` letters."""
    out = []
    for _ in range(_NONCE_HEAD):
        n, d = divmod(n, len(_NONCE_LETTERS))
        out.append(_NONCE_LETTERS[d])
    return "".join(out)


def _digest_int(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def with_prefix(prompt: Prompt, prefix: str) -> Prompt:
    """The prompt with ``prefix`` at its very start (the first message's text for chats)."""
    if not prefix:
        return prompt
    if prompt.messages is None:
        return _replace(prompt, text=prefix + (prompt.text or ""))
    first, *rest = prompt.messages
    first = dict(first)
    content = first.get("content")
    if isinstance(content, list):
        first["content"] = [{"type": "text", "text": prefix}, *content]
    else:
        first["content"] = prefix + (content or "")
    return _replace(prompt, messages=(first, *rest))


def _replace(prompt: Prompt, **changes: Any) -> Prompt:
    fields = {k: getattr(prompt, k) for k in Prompt.__dataclass_fields__}
    fields.update(changes)
    return Prompt(**fields)


def _check_text(key: str, value: Any) -> list[str]:
    if not isinstance(value, str):
        return [f"'{key}' must be a string, got {type(value).__name__}"]
    if not value.strip():
        return [f"'{key}' is empty"]
    return []


def _check_messages(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        return ["'messages' must be a non-empty list of {role, content} objects"]
    for i, m in enumerate(value):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            return [f"'messages[{i}]' must be an object with 'role' and 'content'"]
        if m["role"] not in _ROLES:
            return [f"'messages[{i}].role' is {m['role']!r}; expected one of {sorted(_ROLES)}"]
        if not isinstance(m["content"], (str, list)):
            return [f"'messages[{i}].content' must be a string or a list of parts"]
    return []


def _unique_id(prompt: Prompt, seen: set[str]) -> Prompt:
    """Pairing rounds by prompt id needs unique ids: a repeated id gets a '#k' suffix."""
    pid, k = prompt.id, 1
    while pid in seen:
        k += 1
        pid = f"{prompt.id}#{k}"
    seen.add(pid)
    return prompt if pid == prompt.id else _replace(prompt, id=pid)
