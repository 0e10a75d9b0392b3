"""``--sweep``: one measured run of the workload per value, then sweep.json, sweep.csv, sweep.png.

Each value is an ordinary run (``Benchmark``) with the same levels, rounds and cold start, in its
own subdirectory of the sweep's ``--output-dir`` (``docs_4/``: a normal run directory), and with
a run token of its own, so its nonces differ from every other value's and no value warms the
next.  Every value's settings are checked before the first one sends anything.  A value that is
interrupted (Ctrl-C) keeps what its run measured, the values after it are listed as not run, and
the sweep files are written from what finished, as a run keeps its finished rounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from drbench.config import BenchConfig
from drbench.errors import DrbenchError, ExitStatus, severity
from drbench.report.files import default_output_dir, prepare_output_dir
from drbench.results import RunResult
from drbench.slo_search import Probe, SearchSpec, next_probe, parse_search, probe_of
from drbench.sweep import SweepPoint, SweepSpec, parse_sweep, point_of, value_workload

__all__ = ["RunOne", "check_search", "check_sweep", "run_slo_search", "run_sweep", "value_configs"]

#: Runs one value's config: its exit status and what it measured (None: nothing).
RunOne = Callable[[BenchConfig], tuple[int, RunResult | None]]


def check_sweep(cfg: BenchConfig) -> SweepSpec:
    """The sweep ``cfg`` asks for, every value checked (one line naming --sweep otherwise)."""
    return parse_sweep(cfg.sweep or "", cfg.workload)


def value_configs(cfg: BenchConfig, spec: SweepSpec, top: Path) -> list[tuple[int, BenchConfig]]:
    """Each value's run: the workload with the value, its own subdirectory, no sweep."""
    out = []
    for v in spec.values:
        run = replace(
            cfg,
            workload=value_workload(spec.workload, spec.key, v),
            output_dir=str(top / f"{spec.key}_{v}"),
            sweep=None,
        )
        out.append((v, run.check()))
    return out


def run_sweep(cfg: BenchConfig, run_one: RunOne | None = None) -> int:
    """Run every value in ascending order, write the sweep files; the worst exit status."""
    from drbench.report.sweep_files import SweepReport  # noqa: PLC0415 - numpy via results

    spec = check_sweep(cfg)
    top = Path(cfg.output_dir) if cfg.output_dir else default_output_dir()
    runs = value_configs(cfg, spec, top)
    prepare_output_dir(top, overwrite=cfg.overwrite)
    report = SweepReport(top, spec, cfg)
    run_one = run_one or _benchmark
    points: list[SweepPoint] = []
    statuses = [int(ExitStatus.OK)]
    try:
        for i, (value, run) in enumerate(runs, 1):
            report.value_started(value, i, len(runs), Path(run.output_dir or ""))
            status, result = run_one(run)
            points.append(point_of(value, f"{spec.key}_{value}", status, result))
            statuses.append(status)
            if status == ExitStatus.INTERRUPTED:
                break
    except KeyboardInterrupt:
        statuses.append(int(ExitStatus.INTERRUPTED))
    except DrbenchError as exc:  # the run said why in one line; the sweep keeps what finished
        report.finish(points, stopped=f"error: {exc}")
        raise
    interrupted = ExitStatus.INTERRUPTED in statuses
    report.finish(points, stopped="interrupted" if interrupted else None)
    return max(statuses, key=severity)


def check_search(cfg: BenchConfig) -> SearchSpec:
    """The --slo-search ``cfg`` asks for (one line naming --slo-search otherwise)."""
    return parse_search(cfg.slo_search, cfg.workload, cfg.rounds)


def run_slo_search(cfg: BenchConfig, run_one: RunOne | None = None) -> int:
    """Probe users=U at concurrency U, doubling then bisecting; slo_search.json at the top.
    The exit status is that of a failed run (a probe over the bound is an answer, not an
    error), 130 after Ctrl-C."""
    from drbench.report.sweep_files import SearchReport  # noqa: PLC0415

    spec = check_search(cfg)
    top = Path(cfg.output_dir) if cfg.output_dir else default_output_dir()
    prepare_output_dir(top, overwrite=cfg.overwrite)
    report = SearchReport(top, spec, cfg)
    run_one = run_one or _benchmark
    probes: list[Probe] = []
    statuses = [int(ExitStatus.OK)]
    stopped: str | None = None
    try:
        while (
            users := next_probe({p.users: p.passed for p in probes}, spec.max_users)
        ) is not None:
            probe = replace(
                cfg,
                workload=value_workload(cfg.workload, "users", users),
                concurrency=(users,),
                output_dir=str(top / f"users_{users}"),
                slo_search=(),
            ).check()
            status, result = run_one(probe)
            if status == ExitStatus.INTERRUPTED:
                raise KeyboardInterrupt
            probes.append(probe_of(spec, users, f"users_{users}", status, result))
            report.probe_done(probes[-1])
            if status not in (ExitStatus.OK, ExitStatus.SLO_FAILED, ExitStatus.ERRORS_FAILED):
                statuses.append(status)
    except KeyboardInterrupt:
        statuses.append(int(ExitStatus.INTERRUPTED))
        stopped = "interrupted"
    except DrbenchError as exc:
        report.finish(probes, stopped=f"error: {exc}")
        raise
    report.finish(probes, stopped=stopped)
    return max(statuses, key=severity)


def _benchmark(cfg: BenchConfig) -> tuple[int, RunResult | None]:
    from drbench.benchmark import Benchmark  # noqa: PLC0415 - aiohttp, numpy

    bench = Benchmark.prepare(cfg)
    status = int(bench.execute())
    return status, bench.result
