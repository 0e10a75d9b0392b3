"""Read converter inputs and write the benchmarker's JSONL, checking every record on the way out.

Reading (drbench.jsonfile, shared with the benchmarker) streams JSONL, accepts a JSON array and
gives every item its location (``file:line``, for arrays too), so a converter can name the exact
place of a problem.  Writing checks each record with
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
from drbench.jsonfile import iter_items

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
    """Every item of a JSON array or a JSONL file; a DatasetError names the file and line.

    JSONL is streamed (drbench.jsonfile): the first bad line stops the reading there.
    """
    return [Located(item.where, item.obj) for item in iter_items(path, flag=flag)]


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
    _replace_file(path, lines)
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

    Unlike ``read_items`` it does not stop at the first bad JSONL line.  A file that cannot be
    read at all raises DatasetError; a broken JSON array is one problem.
    """
    items: list[tuple[str, Any]] = []
    problems: list[str] = []
    reader = iter_items(path, flag="FILE", lenient=True)  # raises if the file is unreadable
    try:
        for item in reader:
            if item.problem is not None:
                problems.append(item.problem)
            else:
                items.append((item.where, item.obj))
    except DatasetError as exc:  # a broken JSON array: nothing after it can be read
        return [*problems, str(exc)]
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


def _replace_file(path: Path, lines: list[str]) -> None:
    """Write ``lines`` to a temporary file beside ``path`` and rename it over ``path``.

    Whatever fails (a full disk, a text that cannot be encoded), the temporary file is removed:
    a failed run leaves neither a half-written dataset nor a stray ``.tmp`` behind.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8") as out:
            out.writelines(lines)
        os.replace(tmp, path)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot write the output: {exc.strerror or exc}") from None
    except UnicodeEncodeError as exc:
        raise DatasetError(
            f"{path}: cannot write the output: a record holds text that is not valid Unicode "
            f"({exc.reason})"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
