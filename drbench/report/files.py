"""Result files: the crash-safe request log, per-round JSON, metrics_summary.csv and summary.json.

Every file except the append-only log is written atomically (temporary file, then rename), so a
crash or Ctrl-C never leaves a half-written report; the log is flushed after every record.  A
write that fails (disk full, out of file descriptors, read-only) removes its temporary file and
is one ``OutputDirError`` naming the directory, never a traceback.  Every JSON file is strict:
a NaN or infinite figure is written as null, which every JSON reader accepts.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from drbench.errors import OutputDirError
from drbench.oracle import Expected
from drbench.records import RequestRecord
from drbench.redact import redact_text
from drbench.results import SCHEMA_VERSION, LevelResult, RoundResult, RunResult
from drbench.reuse import Reuse

__all__ = [
    "OUTPUT_FILE",
    "PLOT_NAME",
    "REQUESTS_LOG",
    "RecordLog",
    "csv_rows",
    "default_output_dir",
    "finite",
    "is_output_file",
    "prepare_output_dir",
    "remove_output_files",
    "replacing_file",
    "strict_json",
    "write_csv",
    "write_error",
    "write_json",
    "write_round",
    "write_summary",
    "write_tables",
]

REQUESTS_LOG = "requests.jsonl"
CSV_NAME = "metrics_summary.csv"
BY_TURN_NAME = "ttft_by_turn.csv"
BY_CONTEXT_NAME = "ttft_by_context.csv"
OVER_TIME_NAME = "ttft_over_time.csv"
SUMMARY_NAME = "summary.json"
PLOT_NAME = "plots.png"
GOODPUT_KEYS = ("good", "total", "percent", "requests_per_s", "output_tokens_per_s")
_DISTRIBUTION_KEYS = ("avg", "p50", "p90", "p99", "min", "max", "stddev")
_OFFERED_KEYS = tuple(Reuse(0, 0).to_dict())  # the columns of cache.offered
_EXPECTED_KEYS = tuple(Expected(0, 0, 16, "server", 16, "tokens").to_dict())  # cache.oracle's
# Every file name a run writes (and its temporary twin): what --overwrite removes, and only that.
OUTPUT_FILE = re.compile(
    r"(?:requests\.jsonl|(?:concurrency_\d+|rate_(?:[\d.e+-]+|inf)|trace_[\d.e+-]+x)_round_\d+\.json"
    r"|metrics_summary\.csv|summary\.json|workload\.jsonl"
    r"|plots\.png|report\.html|compare\.(?:json|html)"
    r"|ttft_by_(?:turn|context)\.csv|ttft_over_time\.csv)(?:\.tmp)?"
)
_HINTS = {
    errno.ENOSPC: "free space or pick --output-dir",
    errno.EDQUOT: "free space or pick --output-dir",
    errno.EFBIG: "free space or pick --output-dir",
    errno.EMFILE: "raise ulimit -n or lower --concurrency",
    errno.ENFILE: "raise ulimit -n or lower --concurrency",
    errno.EACCES: "make it writable or pick --output-dir",
    errno.EPERM: "make it writable or pick --output-dir",
    errno.EROFS: "make it writable or pick --output-dir",
}


def default_output_dir() -> Path:
    """results/<local timestamp>: a new directory per run unless --output-dir says otherwise."""
    return Path("results") / f"{datetime.now():%Y%m%d-%H%M%S}"


def prepare_output_dir(path: str | Path, *, overwrite: bool) -> Path:
    """Create the directory; refuse an existing non-empty one unless told to overwrite.

    With ``overwrite`` the files a previous run wrote there are removed first (and nothing
    else), so a glob over the directory never mixes two runs.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputDirError(f"--output-dir {path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputDirError(
            f"--output-dir {path} already holds results; choose another directory "
            "or pass --overwrite to write into it"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        if overwrite:
            remove_output_files(path)
    except OSError as exc:
        raise OutputDirError(f"--output-dir {path}: cannot create it ({exc.strerror})") from None
    return path


def is_output_file(path: Path) -> bool:
    """True for a regular file whose name is one a run writes (see ``OUTPUT_FILE``)."""
    return OUTPUT_FILE.fullmatch(path.name) is not None and path.is_file() and not path.is_symlink()


def remove_output_files(out_dir: Path, *, only_empty: bool = False) -> None:
    """Delete the files a run writes in ``out_dir`` (with ``only_empty``: those holding nothing)."""
    for p in out_dir.iterdir():
        if is_output_file(p) and not (only_empty and p.stat().st_size):
            p.unlink()


def write_error(out_dir: Path, exc: OSError) -> OutputDirError:
    """The one line for a result file that cannot be written."""
    hint = _HINTS.get(exc.errno or 0, "check it or pick --output-dir")
    return OutputDirError(f"cannot write results to {out_dir}: {exc.strerror or exc}; {hint}")


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float (in dicts and lists too) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def strict_json(data: Any, **kw: Any) -> str:
    """JSON that every reader accepts: non-finite floats become null, never NaN/Infinity."""
    try:
        return json.dumps(data, ensure_ascii=False, allow_nan=False, **kw)
    except ValueError:  # a NaN somewhere: rare, so the walk is only paid then
        return json.dumps(finite(data), ensure_ascii=False, allow_nan=False, **kw)


@contextlib.contextmanager
def replacing_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on failure it is removed.

    An OSError (disk full...) becomes the one-line ``OutputDirError`` of ``write_error``.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_error(path.parent, exc) from None
        raise


class RecordLog:
    """requests.jsonl: one line per finished request, flushed at once, so nothing is lost."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._failed = False
        try:
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the run
        except OSError as exc:
            raise write_error(path.parent, exc) from None

    def write(self, record: RequestRecord) -> None:
        try:
            self._file.write(strict_json(_record_dict(record)) + "\n")
            self._file.flush()
        except OSError as exc:
            self._failed = True
            raise write_error(self._path.parent, exc) from None

    def close(self) -> None:
        try:
            self._file.close()
        except OSError as exc:
            if not self._failed:  # after a failed write, closing re-fails on the same bytes
                raise write_error(self._path.parent, exc) from None


def write_json(path: Path, data: Any) -> None:
    _atomic_write(path, strict_json(data, indent=2) + "\n")


def write_round(out_dir: Path, result: RoundResult) -> Path:
    """concurrency_{C}_round_{R}.json (rate_{R}_round_{R}.json for a rate level,
    trace_{X}x_round_{R}.json for a trace): the round's summary and every request record."""
    s = result.summary
    path = out_dir / f"{s.level.slug}_round_{s.round}.json"
    write_json(
        path,
        {
            "schema_version": SCHEMA_VERSION,
            "level": s.level.to_dict(),
            "concurrency": s.level.concurrency,
            "round": s.round,
            "summary": result.to_dict(),
            "records": [_record_dict(r) for r in result.records],
        },
    )
    return path


def write_summary(out_dir: Path, run: RunResult) -> Path:
    path = out_dir / SUMMARY_NAME
    write_json(path, run.to_dict())
    return path


def csv_rows(levels: Iterable[LevelResult]) -> list[dict[str, Any]]:
    """One flat row per (level, round): every figure of the console table and more."""
    rows = []
    for level in levels:
        for result in level.rounds:
            d = result.to_dict()
            d.pop("errors", None)
            d.pop("server_metrics", None)
            d.pop("ttft_over_time", None)  # a table of its own: ttft_over_time.csv
            bounds = d.pop("slo_percentiles", None) or []
            d["client"] = _client_columns(d.get("client") or [])
            if d.get("goodput") is None:  # keep the columns stable whether or not an SLO is set
                d["goodput"] = dict.fromkeys(GOODPUT_KEYS)
            load = d.get("load") or {}
            if load.get("send_lag_ms") is None:  # a closed loop has no schedule to lag behind
                d["load"] = {**load, "send_lag_ms": dict.fromkeys(_DISTRIBUTION_KEYS)}
            cache = d.get("cache") or {}
            if cache.get("offered") is None:  # stable columns whether or not it was computed
                cache["offered"] = dict.fromkeys(_OFFERED_KEYS)
            oracle = cache.get("oracle") or {}
            if oracle.get("expected") is None:
                cache["oracle"] = {**oracle, "expected": dict.fromkeys(_EXPECTED_KEYS)}
            row: dict[str, Any] = {"cold_start": level.cold_start}
            row.update(finite(_flatten(d)))
            # the prefix share the round offered, beside cache_client_cached_share
            row["offered_prefix_share"] = row.pop("cache_offered_share", None)
            for b in bounds:  # an SLO's percentile bound: the round's value and its verdict
                row[f"slo_{b['key']}_value_ms"] = finite(b["value_ms"])
                row[f"slo_{b['key']}_met"] = b["met"]
            rows.append(row)
    return rows


def write_tables(out_dir: Path, run: RunResult) -> list[Path]:
    """The breakdown tables the console shows, as CSV (summary.json has them all, always):
    ttft_by_turn.csv and ttft_by_context.csv when a level ran conversations (``--round2-mode
    continue``, 2+ rounds), ttft_over_time.csv when a level is not a closed loop."""
    sessions = [lv for lv in run.levels if lv.round2_mode == "continue" and len(lv.rounds) >= 2]
    timed = [lv for lv in run.levels if lv.level.kind != "concurrency" and lv.rounds]
    tables = [
        (BY_TURN_NAME, [_level_row(lv, t.to_dict()) for lv in sessions for t in lv.by_turn]),
        (BY_CONTEXT_NAME, [_level_row(lv, b.to_dict()) for lv in sessions for b in lv.by_context]),
        (
            OVER_TIME_NAME,
            [
                _level_row(lv, {"round": r.summary.round, **w.to_dict()})
                for lv in timed
                for r in lv.rounds
                for w in r.summary.ttft_over_time
            ],
        ),
    ]
    return [_write_rows(out_dir / name, rows) for name, rows in tables if rows]


def _level_row(level: LevelResult, row: dict[str, Any]) -> dict[str, Any]:
    """A table row led by its level's columns (as metrics_summary.csv names them)."""
    return finite(_flatten({"level": level.level.to_dict(), **row}))


def _client_columns(processes: list[dict[str, Any]]) -> dict[str, Any]:
    """The self-check as flat columns: the number of processes and the worst of each figure."""

    def worst(key: str) -> float | None:
        values = [p[key] for p in processes if p.get(key) is not None]
        return max(values) if values else None

    return {
        "processes": len(processes),
        "loop_lag_p99_ms_max": worst("loop_lag_p99_ms"),
        "cpu_percent_max": worst("cpu_percent"),
    }


def write_csv(out_dir: Path, run: RunResult) -> Path:
    return _write_rows(out_dir / CSV_NAME, csv_rows(run.levels))


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """A CSV of dict rows; the columns are every key in order of first appearance."""
    buf = io.StringIO()
    fieldnames: list[str] = []
    for row in rows:
        fieldnames += [k for k in row if k not in fieldnames]
    writer = csv.DictWriter(buf, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _atomic_write(path, buf.getvalue())
    return path


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "_"))
        else:
            out[name] = value
    return out


def _atomic_write(path: Path, text: str) -> None:
    with replacing_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _record_dict(record: RequestRecord) -> dict[str, Any]:
    """The record as written: an error message that quotes a URL does not leak its password."""
    d = record.to_dict()
    if d.get("error"):
        d["error"] = redact_text(d["error"])
    return d
