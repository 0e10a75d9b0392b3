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

import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

from tqdm import tqdm

from drbench.config import BenchConfig
from drbench.levels import Level, format_rate
from drbench.messages import Message, render, round_where
from drbench.records import Lang, RequestRecord
from drbench.redact import redact_text, redact_url
from drbench.report.files import REQUESTS_LOG, RecordLog, write_round
from drbench.results import LevelResult, RoundResult, RunResult

if TYPE_CHECKING:  # the runner's Protocol, which these classes implement
    from drbench.runner import RoundProgress

__all__ = ["HEARTBEAT_S", "LiveReporter", "RoundBar", "RoundLines"]

HEARTBEAT_S = 10.0  # a progress line this often while a round runs, when stderr is not a terminal


class RoundBar:
    """A tqdm bar for one round: requests done, failures, output tokens/s so far (a terminal)."""

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


class RoundLines:
    """Progress for a log file or a CI pipe (stderr is not a terminal), where tqdm's ``\\r``
    redraws would each become a line: one plain line when the round ends, and a heartbeat line
    every ``heartbeat_s`` seconds while a long round runs (from the event loop, so a round with
    no request finishing still says it is alive)."""

    def __init__(
        self, level: Level, round: int, total: int, *, lang: Lang, heartbeat_s: float
    ) -> None:
        self._where = round_where(round, level)
        self._lang = lang
        self._total = total
        self._done = self._failed = self._tokens = 0
        self._t0 = time.perf_counter()
        self._interval = heartbeat_s
        self._timer: asyncio.TimerHandle | None = None
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test, a caller outside asyncio): no heartbeat
            self._loop = None
        self._arm()

    def update(self, record: RequestRecord) -> None:
        self._done += 1
        self._failed += 0 if record.ok else 1
        self._tokens += record.completion_tokens or 0

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        elapsed = time.perf_counter() - self._t0
        if self._done < self._total:  # stopped early (Ctrl-C): where it got to
            self._say(self._heartbeat(elapsed))
            return
        tps = f"{self._tokens / elapsed:.0f}" if elapsed > 0 else "-"
        self._say(
            Message(
                "round_done",
                where=self._where,
                ok=self._done - self._failed,
                total=self._total,
                failed=self._failed,
                elapsed=f"{elapsed:.1f}",
                tps=tps,
            )
        )

    def _arm(self) -> None:
        if self._loop is not None and self._interval > 0:
            self._timer = self._loop.call_later(self._interval, self._beat)

    def _beat(self) -> None:
        self._say(self._heartbeat(time.perf_counter() - self._t0))
        self._arm()

    def _heartbeat(self, elapsed: float) -> Message:
        return Message(
            "round_heartbeat",
            where=self._where,
            done=self._done,
            total=self._total,
            failed=self._failed,
            elapsed=f"{elapsed:.0f}",
        )

    def _say(self, message: Message) -> None:
        print(f"drbench: {message.render(self._lang)}", file=sys.stderr, flush=True)


class _Silent:
    """No progress at all (--quiet)."""

    def update(self, record: RequestRecord) -> None:
        pass

    def close(self) -> None:
        pass


class LiveReporter:
    """Logs, prints and writes as the run goes (see module docstring).

    ``progress`` is "bar" (tqdm, for a terminal), "lines" (``RoundLines``, for logs and
    pipes) or None: "bar" when stderr is a terminal, else "lines"; --quiet shows none.
    """

    def __init__(
        self,
        out_dir: Path,
        *,
        lang: Lang,
        quiet: bool,
        stream: TextIO | None = None,
        verbose: bool = False,
        progress: Literal["bar", "lines"] | None = None,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.out_dir = out_dir
        self._lang = lang
        self._quiet = quiet
        self._verbose = verbose
        self._progress = progress or ("bar" if _is_terminal(sys.stderr) else "lines")
        self._heartbeat_s = heartbeat_s
        self._out = stream or sys.stdout
        self._log = RecordLog(out_dir / REQUESTS_LOG)
        self.logged = 0  # requests in requests.jsonl: what an early Ctrl-C keeps

    def round_started(self, level: Level, round: int, total: int) -> RoundProgress:
        if self._quiet:
            return _Silent()
        if self._progress == "lines":
            return RoundLines(level, round, total, lang=self._lang, heartbeat_s=self._heartbeat_s)
        return RoundBar(level, round, total, enabled=True)

    def request_done(self, record: RequestRecord) -> None:
        self._log.write(record)
        self.logged += 1

    def round_done(self, level: LevelResult, result: RoundResult) -> None:
        """Write the round's file; with --verbose print its full table (the default prints the
        level's compact block once its rounds are done)."""
        write_round(self.out_dir, result)
        s = result.summary
        if self._quiet and s.failed:  # the table says why; quiet, this line is all there is
            kind, message, n = s.errors[0]
            self._line(
                Message(
                    "round_failed",
                    where=round_where(s.round, s.level),
                    failed=s.failed,
                    total=s.requests_total,
                    n=n,
                    kind=kind,
                    message=message,
                )
            )
        if self._verbose:
            from drbench.report.console import format_round  # noqa: PLC0415 - tabulate, numpy

            self._print(format_round(result, self._lang))

    def level_done(self, level: LevelResult) -> None:
        """The level's answer: by default its compact block (a row per round, the change, the
        TTFT ratio; with 3+ rounds the table of every comparison), with --verbose the full
        comparison block; for conversations, TTFT by turn and by context length (both)."""
        if self._quiet:
            return
        from drbench.report import console  # noqa: PLC0415 - tabulate, numpy

        first = console.format_comparison if self._verbose else console.format_level
        for text in (first(level, self._lang), console.format_turns(level, self._lang)):
            if text:
                self._print(text)

    def warning(self, message: str) -> None:
        self._line(Message("warning", text=message))

    def run_started(
        self, cfg: BenchConfig, *, prompts: int, model: str, workload: str | None = None
    ) -> None:
        """What is about to be measured, against what, and where the results go (unless quiet)."""
        if self._quiet:
            return
        if workload:
            self._line(Message("workload", name=workload))
        self._line(
            Message(
                "run_started",
                prompts=prompts,
                rounds=cfg.rounds,
                levels=_levels_words(cfg),
                url=redact_url(cfg.endpoint or ""),
                model=model,
                cold=cfg.cold_start,
                out=str(self.out_dir),
            )
        )

    def note(self, message: str) -> None:
        """A remark the run can do without (unless quiet), e.g. a skipped optional file."""
        if not self._quiet:
            self._line(message)

    def gate_failed(self, message: str) -> None:
        """A failed exit-code gate: always printed, it explains the exit code."""
        self._line(message)

    def nothing_kept(self) -> None:
        """Ctrl-C before the first round ended: what was kept, and where (always printed)."""
        if self.logged:
            log = str(self.out_dir / REQUESTS_LOG)
            self._line(Message("interrupted_log", n=self.logged, log=log))
        else:
            self._line(Message("interrupted_nothing", out=str(self.out_dir)))

    def overview(self, result: RunResult) -> None:
        """The closing tables, always printed (also quiet): they are the run's figures."""
        from drbench.report.console import format_overview  # noqa: PLC0415 - tabulate, numpy

        self._print(format_overview(result, self._lang))

    def results_written(self) -> None:
        self._line(Message("results_written", out=str(self.out_dir)))

    def close(self) -> None:
        self._log.close()

    def _print(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    def _line(self, message: str) -> None:
        """One ``drbench:`` line on stderr in --lang, URLs redacted, written around any bar."""
        tqdm.write(f"drbench: {redact_text(render(message, self._lang))}", file=sys.stderr)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def _levels_words(cfg: BenchConfig) -> Message:
    """``concurrency 1 5``, ``request rate 2 4 inf req/s (burstiness 1, at most 32 in flight)``
    or ``the records' timestamps at 1x 2x speed``."""
    cap = Message("levels_cap", cap=cfg.max_concurrency) if cfg.max_concurrency else ""
    if cfg.fixed_schedule:
        speeds = " ".join(f"{format_rate(s)}x" for s in cfg.speedups)
        return Message("levels_trace", values=speeds, cap=cap)
    if not cfg.request_rate:
        return Message("levels_concurrency", values=" ".join(map(str, cfg.concurrency)))
    rates = " ".join(format_rate(r) for r in cfg.request_rate)
    return Message("levels_rate", values=rates, b=f"{cfg.burstiness:g}", cap=cap)
