"""What every workload generator returns, and how its parameters declare their doc and range.

A workload's parameters are a frozen dataclass whose fields are its ``key=value`` keys; each
field is made with ``param(...)`` so that the one-line doc and the allowed range live beside the
default, in one place, for ``--help`` (params.py) and for the range check (``check_ranges``, which
each dataclass calls from ``__post_init__``, so a bad value never reaches a generator).
No I/O here.
"""

from __future__ import annotations

import dataclasses
import random
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drbench.errors import UsageError

__all__ = ["FLAG", "Workload", "check_ranges", "key_kind", "order_records", "param"]

FLAG = "--workload"


@dataclass(frozen=True)
class Workload:
    """The generated benchmark records (JSONL-ready dicts, in send order) and what they imply.

    ``implied`` holds the config settings the workload needs to run as designed (sessions need
    ``rounds`` and ``round2_mode``; the trace needs ``fixed_schedule``).  ``offered_round1`` is
    the fraction of round 1's prompt tokens an unlimited token-level prefix cache could reuse,
    computed from the workload's own structure (the chat template's tokens are not counted).
    """

    name: str
    records: list[dict[str, Any]]
    implied: dict[str, Any]
    offered_round1: float
    detail: str  # the workload-specific part of describe(): "8 groups x 4 prompts, ..."

    def describe(self) -> str:
        """One line for the run's header: what was generated and the share a cache could reuse."""
        return (
            f"{self.name}: {self.detail}, {len(self.records)} prompts, "
            f"offered prefix share in round 1 {100 * self.offered_round1:.1f}%"
        )


def param(
    default: Any = dataclasses.MISSING,
    doc: str = "",
    *,
    lo: float | None = None,
    hi: float | None = None,
) -> Any:
    """A parameter field: its default, a one-line doc, and the inclusive range of a number."""
    return field(default=default, metadata={"doc": doc, "lo": lo, "hi": hi})


def key_kind(cls: type, key: str) -> tuple[str, tuple[str, ...]]:
    """How a key's value is read: ``("int"|"float"|"choice"|"path", choices)``; None allowed
    where the field's type says ``| None`` (only as a default, never typed by a user)."""
    hint = typing.get_type_hints(cls)[key]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is typing.Literal:
        return "choice", tuple(str(a) for a in typing.get_args(hint))
    base = args[0] if args else hint
    if base is Path:
        return "path", ()
    if base is float:
        return "float", ()
    return "int", ()


def check_ranges(params: Any, name: str) -> None:
    """Raise one UsageError line for the first field outside its declared range."""
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
        if value is None or isinstance(value, (str, Path)):
            continue
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            kind = "an integer" if isinstance(value, int) else "a number"
            raise UsageError(
                f"{FLAG} {name}: {f.name}={value} is out of range; give {kind} {_span(lo, hi)}"
            )


def order_records(
    records: list[dict[str, Any]], groups: int, members: int, order: str, seed: str
) -> list[dict[str, Any]]:
    """Records made group by group, in send order: ``grouped`` as made, ``interleaved`` member
    k of every group before member k + 1, ``random`` shuffled by ``random.Random(seed)``."""
    if order == "interleaved":
        return [records[g * members + k] for k in range(members) for g in range(groups)]
    if order == "random":
        shuffled = list(records)
        random.Random(seed).shuffle(shuffled)
        return shuffled
    return records


def _span(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"from {_num(lo)} to {_num(hi)}"
    return f">= {_num(lo)}" if lo is not None else f"<= {_num(hi)}"


def _num(value: float | None) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)
