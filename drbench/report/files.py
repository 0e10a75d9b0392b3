"""Result files: the crash-safe request log, per-round JSON, metrics_summary.csv and summary.json.

Every file except the append-only log is written atomically (temporary file, then rename), so a
crash or Ctrl-C never leaves a half-written report; the log is flushed after every record.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from drbench.errors import OutputDirError
from drbench.records import RequestRecord
from drbench.results import SCHEMA_VERSION, LevelResult, RoundResult, RunResult

__all__ = [
    "RecordLog",
    "csv_rows",
    "default_output_dir",
    "prepare_output_dir",
    "write_csv",
    "write_json",
    "write_round",
    "write_summary",
]

REQUESTS_LOG = "requests.jsonl"
CSV_NAME = "metrics_summary.csv"
SUMMARY_NAME = "summary.json"
GOODPUT_KEYS = ("good", "total", "percent", "requests_per_s", "output_tokens_per_s")


def default_output_dir() -> Path:
    """results/<local timestamp>: a new directory per run unless --output-dir says otherwise."""
    return Path("results") / f"{datetime.now():%Y%m%d-%H%M%S}"


def prepare_output_dir(path: str | Path, *, overwrite: bool) -> Path:
    """Create the directory; refuse an existing non-empty one unless told to overwrite."""
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
            (path / REQUESTS_LOG).unlink(missing_ok=True)
    except OSError as exc:
        raise OutputDirError(f"--output-dir {path}: cannot create it ({exc.strerror})") from None
    return path


class RecordLog:
    """requests.jsonl: one line per finished request, flushed at once, so nothing is lost."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the run

    def write(self, record: RequestRecord) -> None:
        self._file.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def write_json(path: Path, data: Any) -> None:
    _atomic_write(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def write_round(out_dir: Path, result: RoundResult) -> Path:
    """concurrency_{C}_round_{R}.json: the round's summary and every request record."""
    s = result.summary
    path = out_dir / f"concurrency_{s.concurrency}_round_{s.round}.json"
    write_json(
        path,
        {
            "schema_version": SCHEMA_VERSION,
            "concurrency": s.concurrency,
            "round": s.round,
            "summary": result.to_dict(),
            "records": [r.to_dict() for r in result.records],
        },
    )
    return path


def write_summary(out_dir: Path, run: RunResult) -> Path:
    path = out_dir / SUMMARY_NAME
    write_json(path, run.to_dict())
    return path


def csv_rows(levels: Iterable[LevelResult]) -> list[dict[str, Any]]:
    """One flat row per (concurrency, round): every figure of the console table and more."""
    rows = []
    for level in levels:
        for result in level.rounds:
            d = result.to_dict()
            d.pop("errors", None)
            d.pop("server_metrics", None)
            if d.get("goodput") is None:  # keep the columns stable whether or not an SLO is set
                d["goodput"] = dict.fromkeys(GOODPUT_KEYS)
            row: dict[str, Any] = {"cold_start": level.cold_start}
            row.update(_flatten(d))
            rows.append(row)
    return rows


def write_csv(out_dir: Path, run: RunResult) -> Path:
    rows = csv_rows(run.levels)
    buf = io.StringIO()
    fieldnames: list[str] = []
    for row in rows:
        fieldnames += [k for k in row if k not in fieldnames]
    writer = csv.DictWriter(buf, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = out_dir / CSV_NAME
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
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
