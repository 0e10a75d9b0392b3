"""One benchmark run from a checked BenchConfig: validate every input, run, report, gate.

``Benchmark.prepare`` reads and checks everything the user gave (dataset, SLO, metric selectors,
output directory, file descriptors) before a single request is sent; ``execute`` resolves the
model, sends the preflight request, runs every level and writes the reports, also when interrupted
or crashing.  Every message it lets out has its URLs redacted (``drbench.redact``).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from drbench.chat_template import load_chat_template
from drbench.client import Endpoint, ModelInfo, check_reset, list_models, make_session, preflight
from drbench.config import BenchConfig
from drbench.dataset import in_schedule_order, load_prompts, select_prompts
from drbench.errors import (
    DrbenchError,
    ExitStatus,
    LostWorkerError,
    OutputDirError,
    PreflightError,
    UsageError,
)
from drbench.extras import load_extra_body, parse_headers
from drbench.fdlimit import ensure_fd_limit
from drbench.gates import evaluate_gates, exit_status
from drbench.messages import Message
from drbench.plan import RunPlan, WatcherFactory, max_tokens_for
from drbench.records import Prompt, RequestRecord
from drbench.redact import redact_text
from drbench.report.files import (
    default_output_dir,
    prepare_output_dir,
    remove_output_files,
    strict_json,
    write_csv,
    write_summary,
    write_tables,
)
from drbench.report.live import LiveReporter
from drbench.results import RunResult
from drbench.reuse import Tokenization, tokenization_for
from drbench.runner import run
from drbench.slo import SLO, load_slo_file, merge, parse_slo_flags
from drbench.tokens import EstimateCounter, TokenCounter, load_counter
from drbench.workload_run import WORKLOAD_FILE, workload_prompts, workload_summary, write_workload
from drbench.workloads import Workload

if TYPE_CHECKING:  # imported when metrics are asked for (prometheus_client): --help stays fast
    from drbench.prometheus import MetricSelector, ServerProfile

__all__ = ["Benchmark"]


@dataclass
class Benchmark:
    """A run whose every input has been read and checked; ``execute`` sends the requests."""

    config: BenchConfig
    endpoint: Endpoint
    prompts: list[Prompt]
    slo: SLO | None
    selectors: list[MetricSelector] | None  # None: the preset (--prometheus-metrics not given)
    out_dir: Path
    tokenizer: TokenCounter | None = None
    created_out_dir: bool = False  # only a directory the tool created is ever removed
    workload: Workload | None = None  # --workload: what was generated
    tokenization: Tokenization | None = None  # the oracle's units: --tokenizer + chat template
    result: RunResult | None = None  # once execute() ran: what it measured (--sweep reads it)

    @classmethod
    def prepare(cls, cfg: BenchConfig) -> Benchmark:
        with _redacted_errors():
            return cls._prepare(cfg)

    @classmethod
    def _prepare(cls, cfg: BenchConfig) -> Benchmark:
        endpoint = Endpoint.parse(
            cfg.endpoint or "",
            cfg.api_key,
            cfg.endpoint_type,
            headers=parse_headers(cfg.header, api_key=bool(cfg.api_key)),
            extra_body=load_extra_body(cfg.extra_body) if cfg.extra_body is not None else None,
            ignore_eos=cfg.ignore_eos,
        )
        tokenizer = load_counter(cfg.tokenizer) if cfg.tokenizer else None
        workload = None
        if cfg.workload:
            workload, records = workload_prompts(cfg, tokenizer)
            source = f"--workload {cfg.workload[0]}"
        else:
            records, source = load_prompts(cfg.dataset or ""), cfg.dataset or ""
        prompts = select_prompts(
            records, cfg.num_samples, shuffle=cfg.shuffle, seed=cfg.seed, source=source
        )
        if cfg.fixed_schedule:
            prompts = in_schedule_order(prompts, source)
        slo = _load_slo(cfg)
        if (cfg.fail_on_slo is not None) and slo is None:
            raise UsageError("--fail-on-slo needs SLO bounds: give --slo-file or --slo")
        selectors = _selectors(cfg)
        in_flight = max((lv.in_flight_cap or len(prompts)) for lv in cfg.levels)
        ensure_fd_limit(in_flight, len(cfg.prometheus_url), len(prompts))
        if cfg.executor == "ray":
            from drbench.ray_executor import check_address, import_ray  # noqa: PLC0415

            import_ray()  # one line saying how to install it, before anything is sent
            check_address(cfg.ray_address)
        out_dir = Path(cfg.output_dir) if cfg.output_dir else default_output_dir()
        created = not out_dir.exists()
        prepare_output_dir(out_dir, overwrite=cfg.overwrite)
        if workload is not None:  # the exact prompts, to rerun or inspect (--dataset FILE)
            write_workload(str(out_dir / WORKLOAD_FILE), workload)
        tokenization = None
        if tokenizer is not None and cfg.tokenizer:
            tokenization = tokenization_for(tokenizer, load_chat_template(cfg.tokenizer))
        return cls(
            cfg, endpoint, prompts, slo, selectors, out_dir, tokenizer, created, workload,
            tokenization,
        )  # fmt: skip

    def execute(self) -> ExitStatus:
        with _redacted_errors():
            return self._execute()

    def _execute(self) -> ExitStatus:
        cfg = self.config
        result = RunResult(config=cfg, started_at=_now(), run_token=secrets.token_hex(4))
        self.result = result
        if self.workload is not None:
            result.workload = workload_summary(self.workload, cfg.workload, len(self.prompts))
        result.max_tokens_sources = dict(
            Counter(max_tokens_for(p, cfg.max_tokens)[1] for p in self.prompts)
        )
        result.timing = {"aiohttp": aiohttp.__version__}
        reporter = LiveReporter(self.out_dir, lang=cfg.lang, quiet=cfg.quiet, verbose=cfg.verbose)
        status, failed = ExitStatus.OK, True
        try:
            run_loop(lambda: self._run(result, reporter))
            failed = False
        except KeyboardInterrupt:
            result.interrupted, status, failed = True, ExitStatus.INTERRUPTED, False
        except LostWorkerError:  # --on-lost-worker stop: reported as a stop, then exit 8
            result.interrupted, failed = True, False
            raise
        except BaseException:
            result.interrupted = True
            raise
        finally:
            result.finished_at = _now()
            self._finish(result, reporter, failed=failed)
        return status if status != ExitStatus.OK else exit_status(result.gates)

    def _finish(self, result: RunResult, reporter: LiveReporter, *, failed: bool) -> None:
        """Close the log and write every report; a write that fails does not stop the others."""
        problems: list[OutputDirError] = []
        try:
            reporter.close()
        except OutputDirError as exc:
            problems.append(exc)
        if any(lv.rounds for lv in result.levels):
            result.gates = evaluate_gates(result, self.config)
            problems += self._write_reports(result, reporter, failed=failed)
            for gate in result.gates:
                if not gate.passed:
                    reporter.gate_failed(gate.message())
        else:  # nothing measured (preflight failed, or stopped before a round ended)
            self._remove_empty_output()
            if result.interrupted and not failed:  # Ctrl-C: say what is left, and where
                reporter.nothing_kept()
        if problems:
            raise problems[0]

    async def _run(self, result: RunResult, reporter: LiveReporter) -> None:
        cfg = self.config
        limits = [max_tokens_for(p, cfg.max_tokens)[0] for p in self.prompts]
        async with make_session(min(cfg.timeout, 60.0)) as session:
            models = [] if cfg.model else await list_models(session, self.endpoint)
            model = cfg.model or _first_model(models, self.endpoint)
            notes = await preflight(
                session, self.endpoint, model, min(cfg.timeout, 60.0), max_tokens=max(limits)
            )
            if cfg.cold_start == "reset" and cfg.cache_reset_url:
                await check_reset(session, cfg.cache_reset_url)
            if cfg.model and not models:
                models = await _models_if_listed(session, self.endpoint)
            server = None
            if cfg.prometheus_url:
                from drbench.prometheus import probe_server  # noqa: PLC0415 - prometheus_client

                server = await probe_server(session, cfg.prometheus_url, cfg.server_profile)
                result.server_profile = server.to_dict()
                notes += server.warnings
        notes += _too_long(self.prompts, limits, models, model, self.tokenizer)
        for line in notes:
            result.warnings.append(line)
            reporter.warning(line)
        result.model = model
        _import_report_modules(cfg)  # after the preflight (fast start), before round 1 (fds)
        plan = RunPlan(
            config=cfg,
            endpoint=self.endpoint,
            model=model,
            prompts=self.prompts,
            slo=self.slo,
            run_token=result.run_token,
            watcher_factory=self._watcher_factory(server.profile if server else None),
            tokenizer=self.tokenizer,
            tokenization=self.tokenization,
            block_size=server.block_size if server else None,
            capacity_tokens=server.capacity_tokens if server else None,
            cache_off_cause=server.profile.cache_off if server else None,
        )
        reporter.run_started(
            cfg,
            prompts=len(self.prompts),
            model=model,
            workload=self.workload.describe() if self.workload else None,
        )
        try:
            await run(plan, result, reporter)
        finally:
            result.timing["chunk_stamps"] = dict(plan.timing)

    def _watcher_factory(self, profile: ServerProfile | None) -> WatcherFactory | None:
        cfg = self.config
        if not cfg.prometheus_url or profile is None:
            return None
        from drbench.prometheus import ServerMetricsWatcher  # noqa: PLC0415

        return lambda session: ServerMetricsWatcher(
            session,
            cfg.prometheus_url,
            self.selectors,
            interval_s=cfg.prometheus_interval,
            profile=profile,
            round_pause_s=cfg.round_pause,
        )

    def _write_reports(
        self, result: RunResult, reporter: LiveReporter, *, failed: bool
    ) -> list[OutputDirError]:
        """Write the CSVs, summary.json and plots, print the overview; returns the writes that failed."""
        problems: list[OutputDirError] = []
        for write in (write_csv, write_tables, write_summary):
            try:
                write(self.out_dir, result)
            except OutputDirError as exc:
                problems.append(exc)
        if not self.config.no_plots and not problems:
            from drbench.report.plots import plots_available, write_plots  # noqa: PLC0415

            if plots_available():
                try:
                    write_plots(self.out_dir, result)
                except OutputDirError as exc:
                    problems.append(exc)
            else:
                reporter.note(Message("plots_skipped"))
        if not problems:
            problems += _write_html(self.out_dir, reporter, charts=not self.config.no_plots)
        reporter.overview(result)  # the figures, even if a file failed
        if not problems and not failed:  # a failed run says why instead
            reporter.results_written()
        return problems

    def _remove_empty_output(self) -> None:
        """Nothing was measured: remove the empty files this run wrote, and the directory only
        if this run created it and nothing else is in it."""
        with contextlib.suppress(OSError):
            remove_output_files(self.out_dir, only_empty=True)
            if self.created_out_dir:
                self.out_dir.rmdir()  # refuses a directory that is not empty


def _load_slo(cfg: BenchConfig) -> SLO | None:
    file_slo = load_slo_file(cfg.slo_file) if cfg.slo_file else None
    flag_slo = parse_slo_flags(list(cfg.slo)) if cfg.slo else None
    slo = merge(file_slo, flag_slo)
    if slo is not None and cfg.slo_itl_mode is not None:
        slo = replace(slo, itl_mode=cfg.slo_itl_mode)
    return slo


def _selectors(cfg: BenchConfig) -> list[MetricSelector] | None:
    if not cfg.prometheus_metrics:
        return None
    from drbench.prometheus import parse_selectors  # noqa: PLC0415

    return parse_selectors(cfg.prometheus_metrics)


def _first_model(models: list[ModelInfo], endpoint: Endpoint) -> str:
    if not models:
        raise PreflightError(f"{endpoint.models_url} lists no models; pass --model NAME")
    return models[0].id


async def _models_if_listed(session: aiohttp.ClientSession, endpoint: Endpoint) -> list[ModelInfo]:
    """The model list for its context lengths; a server without one is fine when --model is set."""
    try:
        return await list_models(session, endpoint)
    except PreflightError:
        return []


def _too_long(
    prompts: list[Prompt],
    limits: list[int],
    models: list[ModelInfo],
    model: str,
    tokenizer: TokenCounter | None,
) -> list[str]:
    """A warning naming the prompts that cannot fit the model's context (prompt + max_tokens)."""
    max_len = next((m.max_model_len for m in models if m.id == model), None)
    if not max_len:
        return []
    counter = tokenizer or EstimateCounter()
    over = [
        p.id
        for p, limit in zip(prompts, limits, strict=True)
        if counter.count(p.as_text()) + limit > max_len
    ]
    if not over:
        return []
    shown = ", ".join(over[:5]) + (", ..." if len(over) > 5 else "")
    how = Message("counted_tokenizer" if tokenizer else "counted_estimated")
    return [
        Message("too_long", over=len(over), n=len(prompts), max_len=max_len, how=how, shown=shown)
    ]


def _write_html(out_dir: Path, reporter: LiveReporter, *, charts: bool) -> list[OutputDirError]:
    """report.html, built from the files just written (as --report DIR would build it)."""
    from drbench.errors import DrbenchError  # noqa: PLC0415
    from drbench.report.html import plotly_js, write_report  # noqa: PLC0415
    from drbench.rundir import load_run_dir  # noqa: PLC0415

    js = plotly_js() if charts else None
    if charts and js is None:
        reporter.note(Message("no_plotly_html"))
    try:
        write_report(out_dir, load_run_dir(out_dir), js)
    except OutputDirError as exc:
        return [exc]
    except DrbenchError as exc:  # a result file it reads back is unreadable
        return [OutputDirError(f"report.html not written: {exc}")]
    return []


def _import_report_modules(cfg: BenchConfig) -> None:
    """Import what the reports need before the first round (after the preflight), not later.

    Between rounds the connection pool holds up to the highest concurrency of sockets; an
    import then (numpy opens dozens of files, some lazily on first use, like ``numpy.ma`` in
    ``np.percentile``) could fail on EMFILE and lose the round.  Summarising, comparing and
    formatting two made-up rounds once runs every import the real ones will need.
    """
    from drbench.levels import Level  # noqa: PLC0415
    from drbench.records import TokenSource  # noqa: PLC0415
    from drbench.report.console import format_comparison, format_round  # noqa: PLC0415
    from drbench.results import LevelResult, RoundResult  # noqa: PLC0415
    from drbench.stats import compare_rounds, summarize_round  # noqa: PLC0415

    one = Level.closed(1)
    level = LevelResult(level=one, cold_start=cfg.cold_start)
    for rnd in (1, 2):
        recs = [
            RequestRecord(
                prompt_id=f"p{i}",
                level=one.key,
                round=rnd,
                start_ms=0.0,
                end_ms=9.0,
                ttft_ms=2.0 + i,
                latency_ms=9.0,
                itl_ms=[1.0, 2.0],
                token_events=3,
                prompt_tokens=5,
                completion_tokens=3,
                cached_tokens=0,
                token_source=TokenSource.USAGE,
            )
            for i in range(3)
        ]
        level.rounds.append(RoundResult(summarize_round(recs, level=one, round=rnd), recs))
    r1, r2 = level.rounds
    level.comparison = compare_rounds(r1.records, r2.records, r1.summary, r2.summary, n_boot=8)
    format_round(r1, cfg.lang), format_comparison(level, cfg.lang), strict_json(r1.to_dict())
    if not cfg.no_plots:
        from drbench.report.plots import plots_available  # noqa: PLC0415

        plots_available()  # imports matplotlib itself when it is installed
    from drbench import rundir  # noqa: F401, PLC0415
    from drbench.report import charts, html  # noqa: F401, PLC0415 - report.html at the end


def run_loop(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``asyncio.run(main())``, with Ctrl-C held back while the event loop is being built.

    A SIGINT that lands inside the loop's construction leaves a half-built loop whose
    destructor prints a traceback; blocked until the loop exists, it is raised just before the
    run starts instead (or, once it runs, cancels it as asyncio.run does)."""
    if not hasattr(asyncio, "Runner"):  # Python 3.10
        asyncio.run(main())
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        with asyncio.Runner() as runner:
            runner.get_loop()
            signal.pthread_sigmask(signal.SIG_SETMASK, before)
            runner.run(main())
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


@contextlib.contextmanager
def _redacted_errors() -> Iterator[None]:
    """A user-facing error quoting a URL (preflight, --endpoint) never shows its credentials."""
    try:
        yield
    except DrbenchError as exc:
        exc.args = (redact_text(str(exc)),)
        raise


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
