"""Read an earlier run's result directory back: summary.json and requests.jsonl, any schema.

``--report DIR`` and ``--compare DIR_A DIR_B`` work from the files a run wrote, never from a live
run, so a run of an older drbench can be re-rendered and compared.  Schema 1 (closed-loop levels
only, records carrying ``concurrency`` instead of ``level``) is normalised to schema 2's shape
here, once, so the HTML report and the comparison read one shape.  A file that cannot be read is
one ``DatasetError`` naming the file (and line), never a traceback.  No network, no numpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drbench.errors import DatasetError
from drbench.levels import Level

__all__ = ["READABLE_SCHEMAS", "RunDir", "level_key", "load_run_dir"]

READABLE_SCHEMAS = (1, 2)
_SUMMARY = "summary.json"
_REQUESTS = "requests.jsonl"


@dataclass(frozen=True)
class RunDir:
    """One result directory, in schema 2's shape whatever schema wrote it."""

    path: Path
    schema_version: int  # as the file says: 1 or 2
    summary: dict[str, Any]
    records: list[dict[str, Any]]  # requests.jsonl's measured requests (warm-up left out)

    def round_records(self, key: str, round_: int) -> list[dict[str, Any]]:
        """The records of one level (by its key, ``concurrency=5``) and round, in log order."""
        return [r for r in self.records if r.get("level") == key and r.get("round") == round_]

    @property
    def levels(self) -> list[dict[str, Any]]:
        return list(self.summary.get("levels") or [])


def level_key(level: dict[str, Any]) -> str:
    """The key records carry (``concurrency=5``, ``rate=10``, ``trace=2x``) of a level object."""
    return Level.from_dict(level["level"]).key


def load_run_dir(path: str | Path, *, flag: str = "--report") -> RunDir:
    """Read ``path``/summary.json and ``path``/requests.jsonl (optional: without it the report has
    no per-request charts); ``flag`` names the option in error messages."""
    path = Path(path)
    summary_path = path / _SUMMARY
    if not path.is_dir():
        raise DatasetError(f"{flag} {path}: not a directory; give the --output-dir of a run")
    if not summary_path.is_file():
        raise DatasetError(
            f"{flag} {path}: no {_SUMMARY} there; give the --output-dir of a finished run"
        )
    summary = _read_json(summary_path)
    version = summary.get("schema_version")
    if version not in READABLE_SCHEMAS:
        raise DatasetError(
            f"{summary_path}: schema_version {version!r} is not one this drbench reads "
            f"({', '.join(map(str, READABLE_SCHEMAS))}); use the drbench that wrote it"
        )
    if not isinstance(summary.get("levels"), list):
        raise DatasetError(f"{summary_path}: no 'levels' list; not a drbench summary.json")
    records = _read_records(path / _REQUESTS)
    if version == 1:
        summary = _upgrade_summary(summary)
    return RunDir(path, int(version), summary, records)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read it ({exc.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc}); was the run cut short?") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: not a JSON object; not a drbench summary.json")
    return data


def _read_records(path: Path) -> list[dict[str, Any]]:
    """Every measured request; a line cut by a crash at the very end is the one line forgiven."""
    if not path.is_file():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read it ({exc})") from None
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):  # the log is flushed per record: only a crash cuts the last one
                break
            raise DatasetError(
                f"{path}:{n}: not a JSON record; the log was edited or damaged"
            ) from None
        if not isinstance(rec, dict):
            raise DatasetError(f"{path}:{n}: not a JSON object")
        if "level" not in rec and rec.get("concurrency") is not None:  # schema 1's records
            rec["level"] = f"concurrency={rec['concurrency']}"
        if isinstance(rec.get("round"), int) and rec["round"] >= 1:  # round 0: the warm-up
            out.append(rec)
    return out


def _upgrade_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 -> schema 2's shape: every level a closed loop; keys schema 2 added are empty."""
    out = dict(summary)
    levels = []
    for lv in summary["levels"]:
        c = lv.get("concurrency")
        level = Level.closed(int(c)).to_dict()
        rounds = [
            {"level": level, "load": None, "truncated": False, "unsent": 0, "client": [], **r}
            for r in lv.get("rounds") or []
        ]
        levels.append(
            {
                "level": level,
                "warmup": None,
                "comparisons": [],
                "by_turn": [],
                "by_context": [],
                **lv,
                "rounds": rounds,
            }
        )
    out["levels"] = levels
    out["gates"] = [
        {"level": f"concurrency={g.get('concurrency')}", **g} for g in summary.get("gates") or []
    ]
    return out
