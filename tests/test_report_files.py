"""Result files that are strict JSON, whole or absent, and a full disk that is one line (exit 2);
--overwrite removes only the files a run writes; a failed run removes only what it created."""

from __future__ import annotations

import errno
import json
import math
from pathlib import Path

import pytest

import drbench.report.files as files
from drbench.cli import main
from drbench.config import BenchConfig
from drbench.errors import OutputDirError
from drbench.levels import Level
from drbench.records import RequestRecord, TokenSource
from drbench.report.files import (
    RecordLog,
    prepare_output_dir,
    write_csv,
    write_round,
    write_summary,
)
from drbench.results import LevelResult, RoundResult, RunResult
from drbench.stats import summarize_round

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "examples" / "example_dataset.json"
FAST = ("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "8")
FULL = "No space left on device; free space or pick --output-dir"


def strict_load(text: str):
    """json.loads that refuses NaN, Infinity and -Infinity, as strict readers (jq, Go, JS) do."""

    def refuse(name: str):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def nan_record(pid: str = "p0") -> RequestRecord:
    return RequestRecord(
        pid,
        "concurrency=1",
        1,
        0.0,
        end_ms=50.0,
        ttft_ms=math.nan,
        latency_ms=math.inf,
        itl_ms=[1.0, math.nan, -math.inf],
        prompt_tokens=10,
        completion_tokens=3,
        token_source=TokenSource.USAGE,
    )


def nan_run() -> tuple[RunResult, RoundResult]:
    recs = [nan_record("p0"), nan_record("p1")]
    result = RoundResult(summarize_round(recs, level=Level.closed(1), round=1), recs)
    level = LevelResult(level=Level.closed(1), cold_start="nonce", rounds=[result])
    return RunResult(config=BenchConfig(), started_at="t0", levels=[level]), result


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on the NaN figures
def test_every_json_file_is_strict_with_null_for_non_finite_numbers(tmp_path: Path) -> None:
    run, result = nan_run()
    log = RecordLog(tmp_path / "requests.jsonl")
    log.write(result.records[0])
    log.close()
    line = strict_load((tmp_path / "requests.jsonl").read_text())
    assert line["ttft_ms"] is None and line["latency_ms"] is None
    assert line["itl_ms"] == [1.0, None, None]
    per_round = strict_load(write_round(tmp_path, result).read_text())
    assert per_round["records"][1]["ttft_ms"] is None
    summary = strict_load(write_summary(tmp_path, run).read_text())
    assert summary["levels"][0]["rounds"][0]["requests"]["total"] == 2
    assert "nan" not in write_csv(tmp_path, run).read_text().lower()


def full_disk(calls: list[Path]):
    """Path.write_text on a disk that fills up halfway through the text."""
    real = Path.write_text

    def write_text(path: Path, text: str, *args, **kw) -> int:
        calls.append(path)
        real(path, text[: len(text) // 2], *args, **kw)
        raise OSError(errno.ENOSPC, "No space left on device")

    return write_text


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_full_disk_is_one_line_naming_the_directory_and_leaves_no_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, _ = nan_run()
    (tmp_path / "summary.json").write_text('{"previous": true}\n')
    calls: list[Path] = []
    monkeypatch.setattr(Path, "write_text", full_disk(calls))
    with pytest.raises(OutputDirError) as err:
        write_summary(tmp_path, run)
    assert str(err.value) == f"cannot write results to {tmp_path}: {FULL}"
    assert calls == [tmp_path / "summary.json.tmp"]  # the half-written file was there
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
    assert json.loads((tmp_path / "summary.json").read_text()) == {"previous": True}


class FullFile:
    """A file object whose disk is full: every write fails, as does the flush at close."""

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    flush = close = lambda self: self.write("")  # noqa: E731


def test_the_request_log_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "open", lambda *a, **kw: FullFile(), raising=False)
    log = RecordLog(tmp_path / "requests.jsonl")
    with pytest.raises(OutputDirError) as err:
        log.write(nan_record())
    assert str(err.value) == f"cannot write results to {tmp_path}: {FULL}"
    log.close()  # the failure was reported once; closing does not raise it again

    quota = OSError(errno.EMFILE, "Too many open files")
    assert "raise ulimit -n or lower --concurrency" in str(files.write_error(tmp_path, quota))


def run_cli(mock, out: Path, *extra: str) -> int:
    argv = ["--endpoint", mock.base_url + "/v1/chat/completions", "--dataset", str(DATASET)]
    return main([*argv, "--output-dir", str(out), "--quiet", "--no-plots", *extra])


def test_a_run_on_a_full_disk_exits_2_with_one_line(
    fast_mocker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    mock = fast_mocker
    out = tmp_path / "full"
    monkeypatch.setattr(Path, "write_text", full_disk([]))  # round files, CSV and summary fail
    assert run_cli(mock, out, "--concurrency", "2", "--num-samples", "4") == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1] == (
        f"drbench: cannot write results to {out}: {FULL}"
    )
    assert "Traceback" not in captured.err and "internal error" not in captured.err
    assert not list(out.glob("*.tmp"))
    assert len((out / "requests.jsonl").read_text().splitlines()) == 4  # the log still got them


def test_overwrite_removes_the_previous_runs_files_and_nothing_else(
    fast_mocker, tmp_path: Path
) -> None:
    out = tmp_path / "o"
    (out / "notes").mkdir(parents=True)
    old = [
        "concurrency_9_round_1.json",
        "concurrency_9_round_2.json",
        "rate_2.5_round_1.json",
        "rate_inf_round_2.json",
        "summary.json",
        "metrics_summary.csv",
        "requests.jsonl",
        "plots.png",
        "summary.json.tmp",
        "ttft_by_turn.csv",
        "ttft_by_context.csv",
        "ttft_over_time.csv.tmp",
    ]
    mine = [
        "README.md",
        "concurrency_9_round_1.json.bak",
        "summary.json.old",
        ".gitkeep",
        "ttft_by_day.csv",
    ]
    for name in old + mine:
        (out / name).write_text("old\n")
    (out / "notes" / "summary.json").write_text("mine\n")  # a subdirectory is never touched
    mock = fast_mocker
    assert run_cli(mock, out, "--overwrite", "--concurrency", "2", "--num-samples", "2") == 0
    names = {p.name for p in out.iterdir()}
    assert not names & {"concurrency_9_round_1.json", "concurrency_9_round_2.json", "plots.png"}
    assert not names & {"rate_2.5_round_1.json", "rate_inf_round_2.json"}
    assert {"concurrency_2_round_1.json", "concurrency_2_round_2.json", "summary.json"} <= names
    assert set(mine) <= names and (out / "notes" / "summary.json").read_text() == "mine\n"
    assert "summary.json.tmp" not in names
    assert not names & {"ttft_by_turn.csv", "ttft_by_context.csv", "ttft_over_time.csv.tmp"}
    records = (out / "requests.jsonl").read_text().splitlines()
    assert len(records) == 4 and all(json.loads(r)["level"] == "concurrency=2" for r in records)


def _dead_endpoint(tmp_path: Path, out: Path, *extra: str) -> int:
    argv = ["--endpoint", "http://127.0.0.1:9/v1/chat/completions", "--model", "m"]
    return main([*argv, "--dataset", str(DATASET), "--output-dir", str(out), "--quiet", *extra])


def test_a_failed_preflight_removes_only_what_the_run_created(tmp_path: Path, capsys) -> None:
    created = tmp_path / "new" / "run"
    assert _dead_endpoint(tmp_path, created) == 3
    assert not created.exists() and (tmp_path / "new").is_dir()

    users = tmp_path / "users"  # an empty directory the user made: it stays
    users.mkdir()
    assert _dead_endpoint(tmp_path, users) == 3
    assert users.is_dir() and not any(users.iterdir())

    kept = tmp_path / "kept"  # empty files of the user's own: they stay, and so does the directory
    kept.mkdir()
    (kept / ".gitkeep").touch()
    (kept / "summary.json").write_text("{}\n")
    assert _dead_endpoint(tmp_path, kept, "--overwrite") == 3
    assert sorted(p.name for p in kept.iterdir()) == [".gitkeep"]
    assert "preflight request" in capsys.readouterr().err


def test_prepare_output_dir_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputDirError, match="exists and is not a directory"):
        prepare_output_dir(tmp_path / "f", overwrite=True)
