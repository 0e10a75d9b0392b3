"""One benchmark run from a checked BenchConfig: validate every input, run, report, gate.

``Benchmark.prepare`` reads and checks everything the user gave (dataset, SLO, metric selectors,
output directory) before a single request is sent; ``execute`` resolves the model, sends the
preflight request, runs every level and writes the reports, also when interrupted or crashing.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import aiohttp

from drbench.cache_config import fetch_block_size
from drbench.client import Endpoint, ModelInfo, check_reset, list_models, make_session, preflight
from drbench.config import BenchConfig
from drbench.dataset import load_prompts, select_prompts
from drbench.errors import ExitStatus, PreflightError, UsageError
from drbench.gates import evaluate_gates, exit_status
from drbench.records import Prompt
from drbench.report.files import default_output_dir, prepare_output_dir, write_csv, write_summary
from drbench.report.live import LiveReporter
from drbench.results import RunResult
from drbench.runner import RunPlan, max_tokens_for, run
from drbench.slo import SLO, load_slo_file, merge, parse_slo_flags
from drbench.tokens import EstimateCounter, TokenCounter, load_counter

__all__ = ["Benchmark", "gate_status"]


@dataclass
class Benchmark:
    """A run whose every input has been read and checked; ``execute`` sends the requests."""

    config: BenchConfig
    endpoint: Endpoint
    prompts: list[Prompt]
    slo: SLO | None
    selectors: list | None
    out_dir: Path
    tokenizer: TokenCounter | None = None

    @classmethod
    def prepare(cls, cfg: BenchConfig) -> Benchmark:
        endpoint = Endpoint.parse(cfg.endpoint or "", cfg.api_key)
        prompts = select_prompts(
            load_prompts(cfg.dataset or ""),
            cfg.num_samples,
            shuffle=cfg.shuffle,
            seed=cfg.seed,
            source=cfg.dataset or "",
        )
        slo = _load_slo(cfg)
        if (cfg.fail_on_slo is not None) and slo is None:
            raise UsageError("--fail-on-slo needs SLO bounds: give --slo-file or --slo")
        selectors = _selectors(cfg)
        tokenizer = load_counter(cfg.tokenizer) if cfg.tokenizer else None
        out_dir = Path(cfg.output_dir) if cfg.output_dir else default_output_dir()
        prepare_output_dir(out_dir, overwrite=cfg.overwrite)
        return cls(cfg, endpoint, prompts, slo, selectors, out_dir, tokenizer)

    def execute(self) -> ExitStatus:
        cfg = self.config
        result = RunResult(config=cfg, started_at=_now(), run_token=secrets.token_hex(4))
        result.max_tokens_sources = dict(
            Counter(max_tokens_for(p, cfg.max_tokens)[1] for p in self.prompts)
        )
        result.timing = {"aiohttp": aiohttp.__version__}
        reporter = LiveReporter(self.out_dir, lang=cfg.lang, quiet=cfg.quiet)
        status = ExitStatus.OK
        try:
            asyncio.run(self._run(result, reporter))
        except KeyboardInterrupt:
            result.interrupted, status = True, ExitStatus.INTERRUPTED
        except BaseException:
            result.interrupted = True
            raise
        finally:
            reporter.close()
            result.finished_at = _now()
            if any(lv.rounds for lv in result.levels):
                result.gates = evaluate_gates(result, cfg)
                self._write_reports(result)
                for gate in result.gates:
                    if not gate.passed:
                        print(f"drbench: {gate.message()}", file=sys.stderr)
            else:  # nothing measured (preflight failed, or stopped before a round ended)
                _remove_if_empty(self.out_dir)
        return status if status != ExitStatus.OK else exit_status(result.gates)

    async def _run(self, result: RunResult, reporter: LiveReporter) -> None:
        cfg = self.config
        limits = [max_tokens_for(p, cfg.max_tokens)[0] for p in self.prompts]
        async with make_session(1, min(cfg.timeout, 60.0)) as session:
            models = [] if cfg.model else await list_models(session, self.endpoint)
            model = cfg.model or _first_model(models, self.endpoint)
            notes = await preflight(
                session, self.endpoint, model, min(cfg.timeout, 60.0), max_tokens=max(limits)
            )
            if cfg.cold_start == "reset" and cfg.cache_reset_url:
                await check_reset(session, cfg.cache_reset_url)
            if cfg.model and not models:
                models = await _models_if_listed(session, self.endpoint)
            block_size = None
            if cfg.prometheus_url:
                block_size = await fetch_block_size(session, cfg.prometheus_url[0])
        notes += _too_long(self.prompts, limits, models, model, self.tokenizer)
        for line in notes:
            result.warnings.append(line)
            reporter.warning(line)
        result.model = model
        plan = RunPlan(
            config=cfg,
            endpoint=self.endpoint,
            model=model,
            prompts=self.prompts,
            slo=self.slo,
            run_token=result.run_token,
            watcher_factory=self._watcher_factory(),
            tokenizer=self.tokenizer,
            block_size=block_size,
        )
        if not cfg.quiet:
            print(
                f"drbench: {len(self.prompts)} prompts x {cfg.rounds} rounds at concurrency "
                f"{' '.join(map(str, cfg.concurrency))} against {cfg.endpoint} (model {model}, "
                f"cold start: {cfg.cold_start}); results in {self.out_dir}",
                file=sys.stderr,
            )
        try:
            await run(plan, result, reporter)
        finally:
            result.timing["chunk_stamps"] = dict(plan.timing)

    def _watcher_factory(self):
        cfg = self.config
        if not cfg.prometheus_url:
            return None
        from drbench.prometheus_watch import ServerMetricsWatcher  # noqa: PLC0415

        return lambda session: ServerMetricsWatcher(
            session, cfg.prometheus_url, self.selectors, interval_s=cfg.prometheus_interval
        )

    def _write_reports(self, result: RunResult) -> None:
        write_csv(self.out_dir, result)
        write_summary(self.out_dir, result)
        if not self.config.no_plots:
            from drbench.report.plots import plots_available, write_plots  # noqa: PLC0415

            if plots_available():
                write_plots(self.out_dir, result)
            elif not self.config.quiet:
                print(
                    "drbench: plots.png skipped: pip install matplotlib to get it", file=sys.stderr
                )
        from drbench.report.console import format_overview  # noqa: PLC0415 - tabulate, numpy

        print(format_overview(result, self.config.lang))
        print(f"drbench: results written to {self.out_dir}", file=sys.stderr)


def gate_status(result: RunResult, cfg: BenchConfig) -> ExitStatus:
    """The exit code the run's gates give (see drbench/gates.py)."""
    return exit_status(evaluate_gates(result, cfg))


def _load_slo(cfg: BenchConfig) -> SLO | None:
    file_slo = load_slo_file(cfg.slo_file) if cfg.slo_file else None
    flag_slo = parse_slo_flags(list(cfg.slo)) if cfg.slo else None
    slo = merge(file_slo, flag_slo)
    if slo is not None and cfg.slo_itl_mode is not None:
        slo = replace(slo, itl_mode=cfg.slo_itl_mode)
    return slo


def _selectors(cfg: BenchConfig) -> list | None:
    if not cfg.prometheus_metrics:
        return None
    from drbench.prometheus import parse_selectors  # noqa: PLC0415

    return parse_selectors(cfg.prometheus_metrics)


def _first_model(models: list[ModelInfo], endpoint: Endpoint) -> str:
    if not models:
        raise PreflightError(f"{endpoint.models_url} lists no models; pass --model NAME")
    return models[0].id


async def _models_if_listed(session, endpoint: Endpoint) -> list[ModelInfo]:
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
    how = "counted by --tokenizer" if tokenizer else "estimated"
    return [
        f"{len(over)} of {len(prompts)} prompts need more than the model's max_model_len "
        f"{max_len} (prompt tokens {how} + max_tokens): {shown}; they will likely fail with "
        "HTTP 400: lower --max-tokens or leave them out"
    ]


def _remove_if_empty(path: Path) -> None:
    if path.is_dir() and not any(p for p in path.iterdir() if p.stat().st_size):
        shutil.rmtree(path, ignore_errors=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
