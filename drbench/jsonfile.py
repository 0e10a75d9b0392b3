"""Read a JSONL file or a JSON array item by item, each item with the line it starts on.

The benchmarker's dataset reader and every converter read through here, so all of them accept
and refuse the same files with the same one-line messages.  JSONL is streamed one line at a
time: a 1 GB file with a bad first line is refused after reading that line, and a good one is
never held in memory as text.  A JSON array is read once as bytes, decoded once and decoded
item by item in place (no second copy), since an array cannot be checked before its end anyway.

Refused, each as one ``DatasetError`` naming ``file:line`` (``flag`` says which option named
the file): a missing file or a directory, bytes that are not UTF-8, invalid JSON, JSON nested
deeper than Python's parser can go (``RecursionError``), and strings holding a lone UTF-16
surrogate (``"\\ud800"``), which no UTF-8 file and no request body can carry.  A UTF-8 byte
order mark at the start of the file is skipped.  No validation of the records themselves here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from drbench.errors import DatasetError

__all__ = ["Item", "iter_items", "text_problem"]

_BOM = b"\xef\xbb\xbf"
_WS = b" \t\r\n"


@dataclass(frozen=True, slots=True)
class Item:
    """One item of the file: where it starts (``file:line``), its 1-based line, its value.

    ``number`` is what default ids are built from: the line in a JSONL file, the 1-based
    position in a JSON array (so ids stay what they were when the array was read whole).

    ``problem`` is set (and ``obj`` is None) for a JSONL line that could not be decoded, when
    the caller asked for such lines instead of an exception (``lenient=True``).
    """

    where: str
    line: int
    number: int
    obj: Any
    problem: str | None = None


def iter_items(path: str | Path, *, flag: str, lenient: bool = False) -> Iterator[Item]:
    """Every item of the JSONL file or JSON array at ``path``, in file order.

    The file is opened here, so a missing or unreadable file raises at the call, before any
    item; problems of the content raise while iterating.  With ``lenient``, a bad JSONL line
    is yielded as an ``Item`` with its ``problem`` so that a validator can list every bad
    line; a bad JSON array still raises (there is no next item to resync on).
    """
    path = Path(path)
    try:
        f = path.open("rb")
        first, skipped_lines = _skip_leading(f)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file (check {flag})") from None
    except IsADirectoryError:
        raise DatasetError(f"{path}: is a directory, expected a file (check {flag})") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return _items(path, f, first, 1 + skipped_lines, lenient)


def _items(path: Path, f: IO[bytes], first: bytes, line: int, lenient: bool) -> Iterator[Item]:
    with f:
        try:
            if first == b"[":
                yield from _array_items(path, f.read(), line)
            else:
                yield from _jsonl_items(path, f, line, lenient)
        except OSError as exc:
            raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from None


def text_problem(obj: Any) -> str | None:
    """Why a decoded JSON value cannot be sent or written as UTF-8, or None when it can.

    Walks the value without recursion (values may be deep) and checks every string and key.
    """
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if not value.isascii() and _has_surrogate(value):
                return "holds a lone UTF-16 surrogate (an escape like \\ud800 without its pair)"
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _skip_leading(f: Any) -> tuple[bytes, int]:
    """Consume a BOM and leading whitespace; the first byte left (b"" when none) and the
    newlines consumed.  Only ``peek`` and ``read`` are used, never ``seek``, so a pipe works
    (``--dataset <(zcat data.jsonl.gz)``)."""
    if f.peek(3)[:3] == _BOM:
        f.read(3)
    newlines = 0
    while chunk := f.peek(1):
        stripped = chunk.lstrip(_WS)
        skipped = len(chunk) - len(stripped)
        newlines += chunk.count(b"\n", 0, skipped)
        f.read(skipped)
        if stripped:
            return stripped[:1], newlines
    return b"", newlines


def _decode(path: Path, raw: bytes, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line += raw.count(b"\n", 0, exc.start)
        column = exc.start - raw.rfind(b"\n", 0, exc.start)
        raise DatasetError(
            f"{path}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x} at column {column}); "
            "save the file as UTF-8"
        ) from None


def _jsonl_items(path: Path, f: IO[bytes], first_line: int, lenient: bool) -> Iterator[Item]:
    for lineno, raw in enumerate(f, start=first_line):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = _loads(_decode(path, raw, lineno), where)
        except DatasetError as exc:
            if not lenient:
                raise
            yield Item(where, lineno, lineno, None, str(exc))
            continue
        yield Item(where, lineno, lineno, obj)


def _loads(text: str, where: str) -> Any:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); "
            "the file must hold one JSON object per line, or be one JSON array"
        ) from None
    except RecursionError:
        raise DatasetError(f"{where}: {_TOO_DEEP}") from None
    problem = text_problem(obj)
    if problem:
        raise DatasetError(f"{where}: {problem}")
    return obj


_TOO_DEEP = "JSON nested too deeply to read (over ~1000 levels of [ or {); not a dataset record"


def _array_items(path: Path, data: bytes, line: int) -> Iterator[Item]:
    """Decode a JSON array (``data`` starts at its ``[``, on ``line``) item by item, in place,
    so each item keeps the line it starts on."""
    raw = _decode(path, data, line)
    del data  # the decoded text is the one copy kept
    decoder = json.JSONDecoder()
    pos, count, base = 1, 0, line - 1
    while True:
        pos, line = _skip_ws(raw, pos, line)
        if pos < len(raw) and raw[pos] == "]" and not count:
            return
        try:
            obj, end = decoder.raw_decode(raw, pos)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{base + exc.lineno}: not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise DatasetError(f"{path}:{line}: {_TOO_DEEP}") from None
        problem = text_problem(obj)
        if problem:
            raise DatasetError(f"{path}:{line}: {problem}")
        count += 1
        yield Item(f"{path}:{line}", line, count, obj)
        line += raw.count("\n", pos, end)
        pos, line = _skip_ws(raw, end, line)
        if pos < len(raw) and raw[pos] == ",":
            pos += 1
        elif pos < len(raw) and raw[pos] == "]":
            pos, line = _skip_ws(raw, pos + 1, line)
            if pos < len(raw):
                raise DatasetError(f"{path}:{line}: not valid JSON (extra data after the array)")
            return
        else:
            raise DatasetError(f"{path}:{line}: not valid JSON (expected ',' or ']')")


def _skip_ws(raw: str, pos: int, line: int) -> tuple[int, int]:
    while pos < len(raw) and raw[pos] in " \t\r\n":
        line += raw[pos] == "\n"
        pos += 1
    return pos, line
