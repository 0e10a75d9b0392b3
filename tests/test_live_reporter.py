"""The reporter is a run's one voice on the terminal: what --quiet silences and what it keeps."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from drbench.config import BenchConfig
from drbench.levels import Level
from drbench.messages import round_where
from drbench.records import ErrorKind, RequestRecord
from drbench.report.live import LiveReporter
from drbench.results import RunResult
from tests.test_report import run_result

CFG = BenchConfig(
    endpoint="http://u:pw@127.0.0.1:9/v1/chat/completions", concurrency=(1, 4), rounds=2
)


def _speak(reporter: LiveReporter) -> None:
    reporter.run_started(CFG, prompts=3, model="m")
    reporter.note("plots.png skipped: pip install matplotlib to get it")
    reporter.gate_failed("--fail-on-errors 5% failed: exit 5")
    reporter.overview(RunResult(config=CFG, started_at="t0", model="m"))
    reporter.results_written()
    reporter.close()


def test_every_line_when_not_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _speak(LiveReporter(tmp_path, lang="en", quiet=False))
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "drbench: 3 prompts x 2 rounds at concurrency 1 4 against "
        f"http://***@127.0.0.1:9/v1/chat/completions (model m, cold start: nonce); "
        f"results in {tmp_path}",
        "drbench: plots.png skipped: pip install matplotlib to get it",
        "drbench: --fail-on-errors 5% failed: exit 5",
        f"drbench: results written to {tmp_path}",
    ]
    assert out.strip()  # the overview tables
    assert "pw" not in out + err


def test_quiet_keeps_gates_overview_and_where_results_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _speak(LiveReporter(tmp_path, lang="en", quiet=True))
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "drbench: --fail-on-errors 5% failed: exit 5",
        f"drbench: results written to {tmp_path}",
    ]
    assert out.strip()


def _record(pid: str, ok: bool = True) -> RequestRecord:
    rec = RequestRecord(
        pid, "concurrency=1", 1, 0.0, end_ms=5.0, ttft_ms=1.0, latency_ms=5.0, completion_tokens=4
    )
    if not ok:
        rec.error_kind, rec.error = ErrorKind.HTTP, "HTTP 500"
    return rec


def test_without_a_terminal_progress_is_plain_lines_with_a_heartbeat(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No tqdm frame (no \\r) in a log: a heartbeat while the round runs, a line when it ends."""
    reporter = LiveReporter(tmp_path, lang="en", quiet=False, progress="lines", heartbeat_s=0.05)

    async def a_round() -> None:
        progress = reporter.round_started(Level.closed(1), 1, 3)
        progress.update(_record("a"))
        await asyncio.sleep(0.3)  # several heartbeats (wide margin: at least one)
        progress.update(_record("b", ok=False))
        progress.update(_record("c"))
        progress.close()
        await asyncio.sleep(0.15)  # no heartbeat after the round ended

    asyncio.run(a_round())
    reporter.close()
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    beats = [x for x in lines if x.endswith("s so far")]
    assert beats and all(
        re.fullmatch(
            r"drbench: round 1 at concurrency 1: 1/3 requests done, 0 failed, \d+ s so far", b
        )
        for b in beats
    )
    assert re.fullmatch(
        r"drbench: round 1 at concurrency 1 done: 2/3 ok, 1 failed, [\d.]+ s, \d+ output tokens/s",
        lines[-1],
    )
    assert len(beats) == len(lines) - 1


def test_zh_progress_and_warnings_and_what_ctrl_c_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reporter = LiveReporter(tmp_path, lang="zh", quiet=False, progress="lines", heartbeat_s=0)
    progress = reporter.round_started(Level.closed(2), 1, 1)
    progress.update(_record("a"))
    progress.close()
    reporter.warning(round_where(1, Level.closed(2)))
    reporter.run_started(CFG, prompts=3, model="m")
    reporter.nothing_kept()
    reporter.request_done(_record("a"))
    reporter.nothing_kept()
    reporter.results_written()
    reporter.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("drbench: 并发 2 的第 1 轮 完成: 成功 1/1, 失败 0, 用时 ")
    assert lines[1] == "drbench: 警告: 并发 2 的第 1 轮"
    assert lines[2].startswith("drbench: 3 个提示 x 2 轮, 并发 1 4, 目标 http://***@127.0.0.1:9")
    assert lines[3] == (
        "drbench: 在第一轮结束前被中断: 还没有请求完成, 因此没有保留任何结果 "
        f"({tmp_path} 中的空文件已删除)"
    )
    assert lines[4].startswith("drbench: 在第一轮结束前被中断: 已完成的 1 个请求保留在 ")
    assert lines[5] == f"drbench: 结果已写入 {tmp_path}"


class _Server:
    """A round's server figures, as the Prometheus watcher hands them over."""

    hit_rate = 0.5

    def to_dict(self) -> dict[str, Any]:
        row = {"metric": "vllm:prefix_cache_hits", "kind": "counter", "before": 0, "after": 5}
        return {"metrics": [{**row, "delta": 5}], "derived": {}, "missing": []}


def test_default_prints_each_level_compact_and_verbose_every_round_in_full(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_result()
    level = run.levels[0]
    for r in level.rounds:
        r.server = _Server()
    outs = {}
    for verbose in (False, True):
        out = tmp_path / str(verbose)
        out.mkdir()
        reporter = LiveReporter(out, lang="en", quiet=False, verbose=verbose, progress="lines")
        for r in level.rounds:
            reporter.round_done(level, r)
        reporter.level_done(level)
        reporter.close()
        outs[verbose] = capsys.readouterr().out
        assert (out / "concurrency_5_round_1.json").exists()  # the files, either way
    default, verbose_text = outs[False], outs[True]
    assert "Concurrency: 5 | cold start: nonce | round 2: repeat | 4 prompts" in default
    assert "R2 vs R1" in default and "Hit rate" in default
    for full in ("Round 1 metrics", "Server metrics (Prometheus):", "Round 2 vs round 1 |"):
        assert full not in default and full in verbose_text
    assert "vllm:prefix_cache_hits" in verbose_text and "vllm:prefix_cache_hits" not in default
    assert len(default.splitlines()) < len(verbose_text.splitlines()) / 3
