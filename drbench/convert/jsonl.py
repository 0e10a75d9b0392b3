"""Read converter inputs and write the benchmarker's JSONL, checking every record on the way out.

Reading accepts a JSON array or JSONL and gives every item its location (``file:line``, for arrays
too), so a converter can name the exact place of a problem.  Writing checks each record with
``drbench.dataset.validate_record`` (the benchmarker's own check, so converter and benchmarker can
never disagree on the format), insists on unique ids, and replaces the output file atomically.
``check_file`` is the validator behind ``tests/test_jsonl_output.py FILE``.
No cleaning, dedupe or sampling here (see sharegpt_clean.py and sampling.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from drbench.dataset import validate_record
from drbench.errors import DatasetError

__all__ = [
    "Located",
    "OutputRecord",
    "check_file",
    "read_items",
    "unique_ids",
    "write_jsonl",
]


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """One record of a converter's output: ``text`` or ``messages``, the rest where known."""

    id: str
    source: str
    text: str | None = None
    messages: tuple[dict[str, str], ...] | None = None
    max_tokens: int | None = None
    followup: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, in a fixed key order, without the unknown (None) fields."""
        d: dict[str, Any] = {"id": self.id, "source": self.source}
        if self.messages is not None:
            d["messages"] = [dict(m) for m in self.messages]
        else:
            d["text"] = self.text
        if self.max_tokens is not None:
            d["max_tokens"] = self.max_tokens
        if self.followup is not None:
            d["followup"] = self.followup
        return d

    def prompt_key(self) -> str:
        """What dedupe compares: the final prompt text, or the messages as canonical JSON."""
        if self.messages is not None:
            return json.dumps(self.messages, ensure_ascii=False, sort_keys=True)
        return self.text or ""


@dataclass(frozen=True, slots=True)
class Located:
    """An item read from a file and where it was (``file:line``), for error messages."""

    where: str
    obj: Any


def read_items(path: str | Path, *, flag: str = "--input") -> list[Located]:
    """Every item of a JSON array or a JSONL file; a DatasetError names the file and line."""
    path = Path(path)
    raw = _read_text(path, flag)
    if raw.lstrip().startswith("["):
        return _array_items(path, raw)
    items = []
    for lineno, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(Located(f"{path}:{lineno}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno}); "
                "expected one JSON object per line, or one JSON array"
            ) from None
    return items


def write_jsonl(path: str | Path, records: Iterable[OutputRecord]) -> int:
    """Write the records one a line, each checked first; returns how many were written.

    The file is written beside the target and renamed over it, so a failed run never leaves
    a half-written dataset behind; an empty dataset is refused (the benchmarker rejects it).
    """
    path = Path(path)
    lines, seen = [], set()
    for rec in records:
        obj = rec.to_dict()
        problems = validate_record(obj)
        if problems:
            raise DatasetError(f"{path}: refusing to write record {rec.id!r}: {problems[0]}")
        if rec.id in seen:
            raise DatasetError(f"{path}: refusing to write a second record with id {rec.id!r}")
        seen.add(rec.id)
        lines.append(json.dumps(obj, ensure_ascii=False) + "\n")
    if not lines:
        raise DatasetError(f"{path}: no records left to write (all were skipped, see above)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(lines), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot write the output: {exc.strerror or exc}") from None
    return len(lines)


def unique_ids(records: Sequence[OutputRecord]) -> list[OutputRecord]:
    """The records with repeated ids made unique by a ``#k`` suffix (the benchmarker's rule)."""
    out, seen = [], set()
    for rec in records:
        rid, k = rec.id, 1
        while rid in seen:
            k += 1
            rid = f"{rec.id}#{k}"
        seen.add(rid)
        out.append(rec if rid == rec.id else replace(rec, id=rid))
    return out


def check_file(path: str | Path) -> list[str]:
    """Every problem of a dataset file as ``file:line: problem``; empty when the file is valid.

    Unlike ``read_items`` it does not stop at the first problem.  A file that cannot be read
    at all raises DatasetError.
    """
    path = Path(path)
    raw = _read_text(path, "FILE")
    if raw.lstrip().startswith("["):
        try:
            items = [(loc.where, loc.obj) for loc in _array_items(path, raw)]
        except DatasetError as exc:
            return [str(exc)]
        problems = []
    else:
        items, problems = _jsonl_lenient(path, raw)
    if not items and not problems:
        return [f"{path}: holds no records"]
    seen: dict[str, str] = {}
    for where, obj in items:
        problems.extend(f"{where}: {p}" for p in validate_record(obj))
        rid = obj.get("id") if isinstance(obj, dict) else None
        if rid is not None:
            if str(rid) in seen:
                problems.append(f"{where}: duplicate id {rid!r} (first at {seen[str(rid)]})")
            seen.setdefault(str(rid), where)
    return problems


def _read_text(path: Path, flag: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file (check {flag})") from None
    except IsADirectoryError:
        raise DatasetError(f"{path}: is a directory, expected a file (check {flag})") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{path}: not UTF-8 text (byte {exc.start}); is this a JSON/JSONL file?"
        ) from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _array_items(path: Path, raw: str) -> list[Located]:
    """Decode a JSON array item by item, so each item keeps the line it starts on."""
    decoder = json.JSONDecoder()
    pos, line, items = raw.index("[") + 1, raw.count("\n", 0, raw.index("[")) + 1, []
    while True:
        pos, line = _skip_ws(raw, pos, line)
        if pos < len(raw) and raw[pos] == "]" and not items:
            return items
        try:
            obj, end = decoder.raw_decode(raw, pos)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        items.append(Located(f"{path}:{line}", obj))
        line += raw.count("\n", pos, end)
        pos, line = _skip_ws(raw, end, line)
        if pos < len(raw) and raw[pos] == ",":
            pos += 1
        elif pos < len(raw) and raw[pos] == "]":
            return items
        else:
            raise DatasetError(f"{path}:{line}: not valid JSON (expected ',' or ']')")


def _skip_ws(raw: str, pos: int, line: int) -> tuple[int, int]:
    while pos < len(raw) and raw[pos] in " \t\r\n":
        line += raw[pos] == "\n"
        pos += 1
    return pos, line


def _jsonl_lenient(path: Path, raw: str) -> tuple[list[tuple[str, Any]], list[str]]:
    items, problems = [], []
    for lineno, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append((f"{path}:{lineno}", json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})")
    return items, problems
