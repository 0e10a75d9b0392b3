"""The capacity sweep's voice and files: a line per value as it starts, then sweep.json,
sweep.csv, sweep.png and the closing table with the working set where the hit rate falls below
the threshold.

Every file is written atomically (``replacing_file``), also after Ctrl-C, from the values that
finished; each value's own run directory holds its ordinary files.  The figures come from
drbench/sweep.py; nothing is computed here but formatting.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from drbench import __version__
from drbench.config import BenchConfig
from drbench.messages import Message, render
from drbench.records import Lang
from drbench.report.files import replacing_file, write_json
from drbench.slo_search import Probe, SearchSpec, answer
from drbench.sweep import Crossing, SweepPoint, SweepSpec, crossing, measured_round

__all__ = [
    "SEARCH_JSON",
    "SWEEP_CSV",
    "SWEEP_JSON",
    "SWEEP_PLOT",
    "SWEEP_SCHEMA_VERSION",
    "SearchReport",
    "SweepReport",
    "answer_sentence",
    "crossing_sentence",
    "probe_sentence",
    "sweep_rows",
]

SWEEP_JSON = "sweep.json"
SWEEP_CSV = "sweep.csv"
SWEEP_PLOT = "sweep.png"
SWEEP_SCHEMA_VERSION = 1
SEARCH_JSON = "slo_search.json"

_CSV_COLUMNS = (
    "key",
    "value",
    "level",
    "round",
    "working_set_units",
    "unit",
    "server_hit_rate",
    "cached_share",
    "offered_share",
    "expected_hit_rate",
    "ttft_p50_ms",
    "ttft_p90_ms",
    "ttft_p99_ms",
    "succeeded",
    "failed",
    "interrupted",
    "dir",
)
_METRIC_WORDS = {"server_hit_rate": "metric_server_hit_rate", "cached_share": "metric_cached_share"}


class SweepReport:
    """Prints the sweep's lines and writes its files (see the module docstring)."""

    def __init__(
        self, out_dir: Path, spec: SweepSpec, cfg: BenchConfig, stream: TextIO | None = None
    ) -> None:
        self.out_dir = out_dir
        self.spec = spec
        self.cfg = cfg
        self._out = stream or sys.stdout

    def value_started(self, value: int, index: int, total: int, run_dir: Path) -> None:
        self._line(
            Message(
                "sweep_value",
                name=self.spec.key,
                value=value,
                index=index,
                total=total,
                dir=str(run_dir),
            )
        )

    def finish(self, points: Sequence[SweepPoint], *, stopped: str | None) -> None:
        """Write sweep.json, sweep.csv and sweep.png (unless --no-plots), print the table and
        the crossing of every level; with nothing measured, say so and write nothing."""
        if not any(p.levels for p in points):
            self._line(Message("sweep_nothing"))
            return
        rnd = measured_round(self.cfg.rounds)
        levels = list(dict.fromkeys(lp.level for p in points for lp in p.levels))
        found = [
            crossing(points, lv, round=rnd, threshold=self.cfg.sweep_threshold) for lv in levels
        ]
        done = {p.value for p in points}
        write_json(
            self.out_dir / SWEEP_JSON,
            {
                "schema_version": SWEEP_SCHEMA_VERSION,
                "tool": {"name": "drbench", "version": __version__},
                "sweep": {
                    **self.spec.to_dict(),
                    "threshold": self.cfg.sweep_threshold,
                    "measured_round": rnd,
                },
                "stopped": stopped,
                "not_run": [v for v in self.spec.values if v not in done],
                "points": [p.to_dict() for p in points],
                "below_threshold": [c.to_dict() for c in found],
            },
        )
        with replacing_file(self.out_dir / SWEEP_CSV) as tmp:
            tmp.write_text(_csv_text(self.spec.key, points), encoding="utf-8")
        self._print(_table(self.spec, points, levels, rnd))
        for c in found:
            self._line(crossing_sentence(c, self.spec, several=len(levels) > 1))
        self._plot(points, found, rnd)
        if stopped:
            self._line(Message("sweep_stopped", why=_why(stopped), out=str(self.out_dir)))
        else:
            self._line(Message("sweep_written", path=str(self.out_dir / SWEEP_JSON)))

    def _plot(self, points: Sequence[SweepPoint], found: list[Crossing], rnd: int) -> None:
        if self.cfg.no_plots:
            return
        from drbench.report.plots import plots_available, write_sweep_plot  # noqa: PLC0415

        if not plots_available():
            self._line(Message("sweep_plot_skipped", file=SWEEP_PLOT))
            return
        write_sweep_plot(self.out_dir / SWEEP_PLOT, self.spec, points, found, rnd)

    def _print(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    def _line(self, message: str) -> None:
        _line(message, self.cfg.lang)


class SearchReport:
    """The --slo-search's voice and its slo_search.json."""

    def __init__(self, out_dir: Path, spec: SearchSpec, cfg: BenchConfig) -> None:
        self.out_dir = out_dir
        self.spec = spec
        self.cfg = cfg

    def probe_done(self, probe: Probe) -> None:
        _line(probe_sentence(self.spec, probe), self.cfg.lang)

    def finish(self, probes: Sequence[Probe], *, stopped: str | None) -> None:
        """slo_search.json and the answer line (also after Ctrl-C, from the probes that ran)."""
        if not probes:
            _line(Message("search_nothing"), self.cfg.lang)
            return
        passed = {p.users: p.passed for p in probes}
        best = answer(passed, self.spec.max_users) if stopped is None else None
        write_json(
            self.out_dir / SEARCH_JSON,
            {
                "schema_version": SWEEP_SCHEMA_VERSION,
                "tool": {"name": "drbench", "version": __version__},
                "search": {**self.spec.to_dict(), "workload": list(self.cfg.workload)},
                "stopped": stopped,
                "probes": [p.to_dict() for p in probes],
                "answer": best,
            },
        )
        if stopped:
            why = _why(stopped)
            _line(Message("search_stopped", why=why, out=str(self.out_dir)), self.cfg.lang)
        else:
            _line(answer_sentence(self.spec, passed), self.cfg.lang)


def probe_sentence(spec: SearchSpec, p: Probe) -> Message:
    """One probe: its figure against the bound, and the verdict."""
    return Message(
        "search_probe",
        users=p.users,
        what=Message("search_what", round=spec.round, p=spec.percentile),
        figure="-" if p.ttft_ms is None else f"{p.ttft_ms:.1f} ms",
        failed=Message("search_failed", n=p.failed) if p.failed else "",
        bound=f"{spec.bound_ms:g}",
        verdict=Message("search_within" if p.passed else "search_over"),
    )


def answer_sentence(spec: SearchSpec, passed: dict[int, bool]) -> Message:
    """The search's answer, and the probe that bounds it."""
    what = Message("search_bound", round=spec.round, p=spec.percentile, bound=f"{spec.bound_ms:g}")
    best = answer(passed, spec.max_users)
    if best is None:
        return Message("search_none", what=what)
    if best >= spec.max_users:
        return Message("search_most", best=best, what=what)
    return Message("search_answer", best=best, what=what, next=best + 1)


def crossing_sentence(c: Crossing, spec: SweepSpec, *, several: bool = False) -> Message:
    """The one line that answers the sweep: where the measured hit rate falls below the
    threshold, that it never does, that it is below from the start, or that none was read."""
    at = Message("sweep_at", level=c.level) if several else ""
    threshold = f"{c.threshold:g}"
    if c.metric is None:
        return Message("sweep_no_rate", at=at, threshold=threshold)
    what = Message("sweep_what", round=c.round, metric=Message(_METRIC_WORDS[c.metric]))
    if c.status == "crossed" and c.value is not None and c.between:
        units = (
            Message("sweep_units", n=f"{c.working_set_units:,.0f}", unit=c.unit)
            if c.working_set_units is not None
            else ""
        )
        return Message(
            "sweep_crossed",
            at=at,
            what=what,
            threshold=threshold,
            name=spec.key,
            value=f"{c.value:.2f}",
            lo=c.between[0],
            hi=c.between[1],
            units=units,
        )
    if c.status == "below from the first value":
        return Message(
            "sweep_below_first",
            at=at,
            what=what,
            threshold=threshold,
            name=spec.key,
            value=f"{c.value:g}",
        )
    return Message(
        "sweep_not_reached",
        at=at,
        what=what,
        threshold=threshold,
        name=spec.key,
        top=max(spec.values),
    )


def sweep_rows(key: str, points: Sequence[SweepPoint]) -> list[dict[str, Any]]:
    """sweep.csv's rows: one per value, level and round."""
    rows = []
    for p in points:
        for lp in p.levels:
            for r in lp.rounds:
                rows.append(
                    {
                        "key": key,
                        "value": p.value,
                        "level": lp.level,
                        "working_set_units": lp.working_set_units,
                        "unit": lp.unit,
                        **r.to_dict(),
                        "interrupted": p.interrupted,
                        "dir": p.dir,
                    }
                )
    return rows


def _csv_text(key: str, points: Sequence[SweepPoint]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in sweep_rows(key, points):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


def _table(spec: SweepSpec, points: Sequence[SweepPoint], levels: list[str], rnd: int) -> str:
    from tabulate import tabulate  # noqa: PLC0415

    rows = []
    for p in points:
        for lp in p.levels:
            one, r = lp.round(1), lp.round(rnd)
            rows.append(
                [
                    p.value,
                    *([lp.level] if len(levels) > 1 else []),
                    "-" if lp.working_set_units is None else f"{lp.working_set_units:,}",
                    _pct(one.server_hit_rate if one else None),
                    _pct(r.server_hit_rate if r else None),
                    _pct(r.cached_share if r else None),
                    _pct(r.expected_hit_rate if r else None),
                    _ms(r.ttft_p50_ms if r else None),
                    _ms(r.ttft_p90_ms if r else None),
                ]
            )
    tag = f"r{rnd}"
    head = [
        spec.key,
        *(["level"] if len(levels) > 1 else []),
        "working set",
        "hit r1",
        f"hit {tag}",
        f"cached {tag}",
        f"expected {tag}",
        f"TTFT p50 {tag}",
        f"TTFT p90 {tag}",
    ]
    title = f"Capacity sweep over {spec.key} ({spec.workload[0]}), round {rnd}"
    return f"\n{title}\n" + tabulate(rows, headers=head, tablefmt="simple", disable_numparse=True)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f} ms"


def _line(message: str, lang: Lang) -> None:
    print(f"drbench: {render(message, lang)}", file=sys.stderr, flush=True)


def _why(stopped: str) -> str:
    """Why a sweep or search stopped, in the line's language when it is Ctrl-C (an error's
    text stays as it was raised)."""
    return Message("stopped_interrupted") if stopped == "interrupted" else stopped
