"""The run's live side: progress bars, per-round tables and files written as rounds finish.

``LiveReporter`` is the RunObserver the CLI hands to the runner.  It appends every finished request
to requests.jsonl, writes each round's JSON as soon as the round ends, and prints the round table,
the level comparison and its TTFT by turn (unless quiet), so an interrupted run keeps everything
it measured.
It is also the one voice of a run on the terminal: the start line, notes, warnings, failed gates
and the overview all go through it (benchmark.py prints nothing itself), so ``--quiet`` and the
progress bars are handled in one place.  Tables go to stdout, every ``drbench:`` line to stderr.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from drbench.config import BenchConfig
from drbench.levels import Level, format_rate
from drbench.records import Lang, RequestRecord
from drbench.redact import redact_text, redact_url
from drbench.report.files import REQUESTS_LOG, RecordLog, write_round
from drbench.results import LevelResult, RoundResult, RunResult

__all__ = ["LiveReporter", "RoundBar"]


class RoundBar:
    """A tqdm bar for one round: requests done, failures, output tokens/s so far."""

    def __init__(self, level: Level, round: int, total: int, *, enabled: bool) -> None:
        self._bar = tqdm(
            total=total,
            desc=f"{level.short} round {round}",
            unit="req",
            disable=not enabled,
            file=sys.stderr,
            mininterval=0.5,
            leave=False,
            dynamic_ncols=True,
        )
        self._failed = 0
        self._tokens = 0
        self._t0 = time.perf_counter()

    def update(self, record: RequestRecord) -> None:
        if not record.ok:
            self._failed += 1
        self._tokens += record.completion_tokens or 0
        elapsed = time.perf_counter() - self._t0
        self._bar.set_postfix(
            failed=self._failed,
            tok_s=f"{self._tokens / elapsed:.0f}" if elapsed else "-",
            refresh=False,
        )
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


class LiveReporter:
    """Logs, prints and writes as the run goes (see module docstring)."""

    def __init__(
        self, out_dir: Path, *, lang: Lang, quiet: bool, stream: TextIO | None = None
    ) -> None:
        self.out_dir = out_dir
        self._lang = lang
        self._quiet = quiet
        self._out = stream or sys.stdout
        self._log = RecordLog(out_dir / REQUESTS_LOG)

    def round_started(self, level: Level, round: int, total: int) -> RoundBar:
        return RoundBar(level, round, total, enabled=not self._quiet)

    def request_done(self, record: RequestRecord) -> None:
        self._log.write(record)

    def round_done(self, level: LevelResult, result: RoundResult) -> None:
        write_round(self.out_dir, result)
        s = result.summary
        if self._quiet and s.failed:  # the table says why; quiet, this line is all there is
            kind, message, n = s.errors[0]
            tqdm.write(
                f"drbench: round {s.round} at {s.level.label}: {s.failed} of "
                f"{s.requests_total} requests failed; most often ({n}x) {kind}: {message}",
                file=sys.stderr,
            )
        if not self._quiet:
            from drbench.report.console import format_round  # noqa: PLC0415 - tabulate, numpy

            self._print(format_round(result, self._lang))

    def level_done(self, level: LevelResult) -> None:
        """The level's comparison (with 3+ rounds, its table of every round) and, for
        conversations, TTFT by turn and by context length."""
        if self._quiet:
            return
        from drbench.report.console import format_comparison, format_turns  # noqa: PLC0415

        for text in (format_comparison(level, self._lang), format_turns(level, self._lang)):
            if text:
                self._print(text)

    def warning(self, message: str) -> None:
        self._line(f"warning: {message}")

    def run_started(
        self, cfg: BenchConfig, *, prompts: int, model: str, workload: str | None = None
    ) -> None:
        """What is about to be measured, against what, and where the results go (unless quiet)."""
        if self._quiet:
            return
        if workload:
            self._line(f"workload {workload}")
        self._line(
            f"{prompts} prompts x {cfg.rounds} rounds at {_levels_words(cfg)} against {redact_url(cfg.endpoint or '')} "
            f"(model {model}, cold start: {cfg.cold_start}); results in {self.out_dir}"
        )

    def note(self, message: str) -> None:
        """A remark the run can do without (unless quiet), e.g. a skipped optional file."""
        if not self._quiet:
            self._line(message)

    def gate_failed(self, message: str) -> None:
        """A failed exit-code gate: always printed, it explains the exit code."""
        self._line(message)

    def overview(self, result: RunResult) -> None:
        """The closing tables, always printed (also quiet): they are the run's figures."""
        from drbench.report.console import format_overview  # noqa: PLC0415 - tabulate, numpy

        self._print(format_overview(result, self._lang))

    def results_written(self) -> None:
        self._line(f"results written to {self.out_dir}")

    def close(self) -> None:
        self._log.close()

    def _print(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    def _line(self, message: str) -> None:
        """One ``drbench:`` line on stderr, URLs redacted, written around any progress bar."""
        tqdm.write(f"drbench: {redact_text(message)}", file=sys.stderr)


def _levels_words(cfg: BenchConfig) -> str:
    """``concurrency 1 5``, ``request rate 2 4 inf req/s (burstiness 1, at most 32 in flight)``
    or ``the trace's timestamps at 1x 2x speed``."""
    cap = f", at most {cfg.max_concurrency} in flight" if cfg.max_concurrency else ""
    if cfg.fixed_schedule:
        speeds = " ".join(f"{format_rate(s)}x" for s in cfg.speedups)
        return f"the records' timestamps at {speeds} speed{cap}"
    if not cfg.request_rate:
        return "concurrency " + " ".join(map(str, cfg.concurrency))
    rates = " ".join(format_rate(r) for r in cfg.request_rate)
    return f"request rate {rates} req/s (burstiness {cfg.burstiness:g}{cap})"
