"""``--report DIR`` and ``--compare DIR_A DIR_B``: work on result files, send nothing.

``--report`` re-renders report.html of an earlier run (schema 1 or 2) into its directory.
``--compare`` prints the comparison table, writes compare.json and compare.html into
``--output-dir`` (default ``results/compare-<timestamp>``) and, with ``--fail-on-regression``,
returns exit 7 when a gate fails.  Entry-point code: it prints; the work is in rundir.py,
compare.py and report/.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from drbench.errors import ExitStatus, UsageError
from drbench.messages import Message, render
from drbench.records import Lang

__all__ = ["compare_main", "report_main"]


def report_main(directory: str, lang: Lang = "en") -> int:
    """Re-render DIR/report.html from DIR/summary.json and DIR/requests.jsonl."""
    from drbench.report.html import plotly_js, write_report  # noqa: PLC0415
    from drbench.rundir import load_run_dir  # noqa: PLC0415

    run = load_run_dir(directory, flag="--report")
    js = plotly_js()
    path = write_report(run.path, run, js)
    if js is None:
        _say(Message("no_charts_in", path=str(path)), lang)
    n = len(run.records)
    _say(Message("report_wrote", path=str(path), schema=run.schema_version, n=n), lang)
    return int(ExitStatus.OK)


def compare_main(
    dirs: Sequence[str],
    regressions: Sequence[str],
    output_dir: str | None,
    *,
    overwrite: bool,
    lang: Lang = "en",
) -> int:
    """Compare run B (second) against run A (first); exit 7 when a regression gate fails."""
    from drbench.compare import compare_runs, parse_regressions  # noqa: PLC0415
    from drbench.report.compare_view import (  # noqa: PLC0415
        compare_header,
        format_compare,
        write_compare,
    )
    from drbench.report.files import prepare_output_dir  # noqa: PLC0415
    from drbench.report.html import plotly_js  # noqa: PLC0415
    from drbench.rundir import load_run_dir  # noqa: PLC0415

    gates = parse_regressions(regressions)
    if len(dirs) != 2:
        raise UsageError(f"--compare takes two result directories (A B), not {len(dirs)}")
    a = load_run_dir(dirs[0], flag="--compare")
    b = load_run_dir(dirs[1], flag="--compare")
    comp = compare_runs(a, b, gates)
    out = prepare_output_dir(
        output_dir or Path("results") / f"compare-{datetime.now():%Y%m%d-%H%M%S}",
        overwrite=overwrite,
    )
    js = plotly_js()
    paths = write_compare(out, a, b, comp, js)
    print(compare_header(a.path, b.path, lang))
    print(format_compare(comp, lang))
    for check in comp.gates:
        if check.failed:
            _say(check.message(), lang)
    if js is None:
        _say(Message("no_charts_in", path=str(paths[-1])), lang)
    _say(Message("wrote", paths=", ".join(map(str, paths))), lang)
    if comp.failed_gates:
        status = int(ExitStatus.REGRESSION)
        _say(Message("regressions_failed", n=len(comp.failed_gates), status=status), lang)
        return status
    if gates:
        _say(Message("regressions_passed", n=len(comp.gates)), lang)
    return int(ExitStatus.OK)


def _say(message: str, lang: Lang) -> None:
    print(f"drbench: {render(message, lang)}", file=sys.stderr)
