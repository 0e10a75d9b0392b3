"""``--workload``: from the flag to a run's settings and prompts, and ``--write-workload``.

The generators (drbench/workloads/) are pure and know nothing of the config; this module is
the bridge.  A workload can need settings of its own (sessions run ``--rounds R
--round2-mode continue``, the Mooncake trace runs ``--fixed-schedule``): they are applied
unless the user set them, and a setting the user set that contradicts the workload is one
line, because a session run with fewer rounds than turns would silently not be that workload.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from drbench.config import BenchConfig, flag_label
from drbench.dataset import parse_record
from drbench.errors import UsageError
from drbench.records import Prompt
from drbench.tokens import EstimateCounter, TokenCounter
from drbench.workloads import Workload, generate, parse_workload

__all__ = [
    "WORKLOAD_FILE",
    "with_workload_settings",
    "workload_prompts",
    "workload_summary",
    "write_workload",
]

#: The generated records, in the output directory: ``--dataset`` reruns them exactly.
WORKLOAD_FILE = "workload.jsonl"

#: Settings that decide when requests go: giving one replaces a workload's --fixed-schedule.
_PACE = ("concurrency", "request_rate")


def with_workload_settings(cfg: BenchConfig, given: Collection[str]) -> BenchConfig:
    """``cfg`` with the settings its ``--workload`` implies (``given``: the settings the user
    set, by flag or recipe key, which the workload never overrides)."""
    if not cfg.workload:
        return cfg
    name, *items = cfg.workload
    implied = dict(parse_workload(name, items).implied)
    if implied.get("fixed_schedule") and any(k in given for k in _PACE):
        del implied["fixed_schedule"]  # the trace's requests, in a closed loop or at a rate
    changes: dict[str, Any] = {}
    for key, value in implied.items():
        if key in given and getattr(cfg, key) != value:
            raise UsageError(
                f"--workload {name} runs with {flag_label(key)} {_show(value)}, but "
                f"{flag_label(key)} {_show(getattr(cfg, key))} is given: drop "
                f"{flag_label(key)}{_fix(name, key)}"
            )
        changes[key] = value
    if changes.get("fixed_schedule") and "concurrency" not in given:
        changes["concurrency"] = ()  # the default closed loop gives way to the trace
    return replace(cfg, **changes)


def workload_prompts(
    cfg: BenchConfig, counter: TokenCounter | None
) -> tuple[Workload, list[Prompt]]:
    """The workload ``cfg`` names, generated (``--tokenizer`` for exact lengths, else the
    estimate), and its records as prompts, validated as a dataset's would be."""
    name, *items = cfg.workload
    workload = generate(
        parse_workload(name, items), counter=counter or EstimateCounter(), seed=cfg.seed
    )
    prompts = [
        parse_record(r, where=f"--workload {name}: record {i}", default_id=str(i))
        for i, r in enumerate(workload.records, 1)
    ]
    return workload, prompts


def workload_summary(workload: Workload, spec: Sequence[str], sent: int) -> dict[str, Any]:
    """summary.json's ``workload`` object: what was generated, from which settings."""
    return {
        "name": workload.name,
        "settings": list(spec[1:]),
        "description": workload.describe(),
        "records": len(workload.records),
        "sent": sent,
        "offered_round1": workload.offered_round1,
        "file": WORKLOAD_FILE,
    }


def write_workload(path: str, workload: Workload) -> None:
    """The records as benchmark JSONL (a dataset for ``--dataset``), written whole or not at
    all: a full disk leaves no half file behind."""
    from drbench.report.files import replacing_file  # noqa: PLC0415 - the one atomic writer

    target = Path(path)
    if target.is_dir():
        raise UsageError(f"--write-workload {path}: is a directory; give a file name")
    if not target.parent.is_dir():
        raise UsageError(f"--write-workload {path}: no folder {target.parent}; create it first")
    with replacing_file(target) as tmp, tmp.open("w", encoding="utf-8") as out:
        for record in workload.records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _fix(name: str, key: str) -> str:
    """How to get what the user asked for within the workload, where there is a way."""
    if name == "sessions" and key == "rounds":
        return ", or set rounds=N on the workload"
    return ""
