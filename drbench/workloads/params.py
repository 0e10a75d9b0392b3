"""``--workload NAME key=value ...``: parse a workload's parameters, list them, generate it.

Every mistake is one UsageError line naming ``--workload``, the key and the fix, with "did you
mean" for a mistyped workload name or key; a value is checked for its type (integer, number,
choice, path) here and for its range by the parameter dataclass itself.  No I/O here (the
mooncake generator reads its trace when it runs).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from drbench.errors import UsageError
from drbench.tokens import TokenCounter
from drbench.workloads import long_doc, mooncake, sessions, shared_prefix
from drbench.workloads.workload import FLAG, Workload, key_kind

__all__ = ["WORKLOADS", "WorkloadParams", "generate", "parse_workload", "workload_help"]

WorkloadParams = (
    shared_prefix.SharedPrefixParams
    | sessions.SessionsParams
    | long_doc.LongDocParams
    | mooncake.MooncakeParams
)

# name -> (parameters dataclass, generator, one line of what it is and which peer it mirrors)
WORKLOADS: dict[str, tuple[type, Callable[..., Workload], str]] = {
    shared_prefix.NAME: (
        shared_prefix.SharedPrefixParams,
        shared_prefix.generate,
        "groups of prompts sharing a prefix (SGLang generated-shared-prefix)",
    ),
    sessions.NAME: (
        sessions.SessionsParams,
        sessions.generate,
        "multi-round chat sessions over a shared system prompt (LMCache multi-round-qa)",
    ),
    long_doc.NAME: (
        long_doc.LongDocParams,
        long_doc.generate,
        "questions about long documents (LMCache long_doc_qa)",
    ),
    mooncake.NAME: (
        mooncake.MooncakeParams,
        mooncake.generate,
        "Mooncake FAST'25 trace replay on its timestamps",
    ),
}


def parse_workload(name: str, items: Sequence[str]) -> WorkloadParams:
    """The workload's parameters dataclass from ``["groups=8", "prefix=2000", ...]``."""
    if name not in WORKLOADS:
        raise UsageError(f"{FLAG} {name}: unknown workload; {_hint(name, list(WORKLOADS))}")
    cls = WORKLOADS[name][0]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(
                f"{FLAG} {name}: {item!r} is not key=value; write e.g. {_example(cls)}"
            )
        if key not in fields:
            raise UsageError(f"{FLAG} {name}: unknown key {key!r}; {_hint(key, list(fields))}")
        if key in values:
            raise UsageError(f"{FLAG} {name}: {key}= given twice; give each key once")
        values[key] = _value(cls, name, key, raw)
    missing = [k for k, f in fields.items() if _required(f) and k not in values]
    if missing:
        doc = fields[missing[0]].metadata["doc"]
        raise UsageError(f"{FLAG} {name}: needs {missing[0]}=... ({doc})")
    params: WorkloadParams = cls(**values)  # __post_init__ checks the ranges
    return params


def generate(params: WorkloadParams, *, counter: TokenCounter, seed: int) -> Workload:
    """The workload's records; the same params, counter and seed give byte-identical text."""
    for cls, make, _ in WORKLOADS.values():
        if isinstance(params, cls):
            return make(params, counter=counter, seed=seed)
    raise TypeError(f"not a workload's parameters: {type(params).__name__}")


def workload_help() -> str:
    """Each workload, its keys, their defaults and docs: the text ``--help`` shows."""
    lines = ["workloads (--workload NAME key=value ...; see docs/workloads.md):"]
    for name, (cls, _, about) in WORKLOADS.items():
        lines.append(f"  {name}: {about}")
        for f in dataclasses.fields(cls):
            shown = f"{f.name}={'PATH' if _required(f) else _shown(f.default)}"
            lines.append(f"    {shown:<20} {f.metadata['doc']}")
    return "\n".join(lines)


def _value(cls: type, name: str, key: str, raw: str) -> Any:
    kind, choices = key_kind(cls, key)
    where = f"{FLAG} {name}: {key}={raw}"
    if kind == "choice":
        if raw in choices:
            return raw
        translated = long_doc.LMCACHE_ORDERS.get(raw) if key == "order" else None
        if translated:
            raise UsageError(
                f"{where}: that is LMCache's --repeat-mode name; drbench calls that order "
                f"{translated} (choices: {', '.join(choices)})"
            )
        raise UsageError(f"{where}: expected one of {', '.join(choices)}")
    if kind == "path":
        if not raw:
            raise UsageError(f"{where}: expected a file path")
        return Path(raw)
    try:
        return int(raw) if kind == "int" else float(raw)
    except ValueError:
        expected = "an integer" if kind == "int" else "a number"
        raise UsageError(f"{where}: expected {expected}") from None


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING


def _shown(value: Any) -> str:
    return "none" if value is None else str(value)


def _hint(word: str, known: list[str]) -> str:
    near = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    listed = ", ".join(known)
    return f"did you mean {near[0]}? ({listed})" if near else f"choose from {listed}"


def _example(cls: type) -> str:
    first = dataclasses.fields(cls)[0]
    return f"{first.name}={_shown(first.default) if not _required(first) else 'PATH'}"
