"""Mixing datasets by ratio: exact shares, seeded, no repeated prompt, sources kept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drbench.convert import mix

ROOT = Path(__file__).resolve().parents[1]
LB = ROOT / "datasets" / "longbench_sample.jsonl"
SG = ROOT / "datasets" / "sharegpt_clean.jsonl"


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    code = mix.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_mix_takes_exact_shares_seeded(tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.jsonl"
    args = ["--mix", f"{LB}:0.3", f"{SG}:0.7", "--total", "10", "--output", str(out)]
    code, stdout, _ = _run([*args, "--seed", "1"], capsys)
    assert code == 0
    first = _lines(out)
    assert len(first) == 10
    assert sum(r["source"].startswith("longbench/") for r in first) == 3
    assert sum(r["source"] == "sharegpt" for r in first) == 7
    assert f"{LB}: took 3 of 21" in stdout and f"{SG}: took 7 of 29" in stdout
    assert len({r["id"] for r in first}) == 10
    assert len({r.get("text") or json.dumps(r.get("messages")) for r in first}) == 10
    assert _run([*args, "--seed", "1"], capsys)[0] == 0 and _lines(out) == first
    assert _run([*args, "--seed", "2"], capsys)[0] == 0 and _lines(out) != first
    # records keep their fields: LongBench max_tokens, ShareGPT followups
    shipped = {r["id"]: r for r in _lines(LB) + _lines(SG)}
    assert all(shipped[r["id"]] == r for r in first)


def test_repeated_prompts_are_removed_across_files(tmp_path: Path, capsys) -> None:
    a = _write(tmp_path / "a.jsonl", [{"id": "1", "text": "same"}, {"id": "2", "text": "a2"}])
    b = _write(tmp_path / "b.jsonl", [{"id": "1", "text": "same"}, {"id": "3", "text": "b3"}])
    out = tmp_path / "m.jsonl"
    code, stdout, _ = _run(
        ["--mix", f"{a}:0.5", f"{b}:0.5", "--total", "2", "--output", str(out)], capsys
    )
    assert code == 0
    assert "skipped 1 repeated prompts" in stdout
    records = _lines(out)
    assert len({r["text"] for r in records}) == 2
    assert {r["source"] for r in records} == {"a", "b"}  # file names stand in for a source
    code, _, err = _run(
        ["--mix", f"{a}:0.5", f"{b}:0.5", "--total", "4", "--output", str(out)], capsys
    )
    assert code == 2
    assert f"--mix {b}:0.5: needs 2 of --total 4 but the file has 1 distinct prompts" in err
    assert "the largest --total these ratios allow is 3" in err  # a gives 2, b gives 1


def test_ids_clashing_across_files_are_made_unique(tmp_path: Path, capsys) -> None:
    a = _write(tmp_path / "a.jsonl", [{"id": "x", "text": "from a"}])
    b = _write(tmp_path / "b.jsonl", [{"id": "x", "text": "from b"}])
    out = tmp_path / "m.jsonl"
    assert (
        _run(["--mix", f"{a}:0.5", f"{b}:0.5", "--total", "2", "--output", str(out)], capsys)[0]
        == 0
    )
    assert sorted(r["id"] for r in _lines(out)) == ["x", "x#2"]


@pytest.mark.parametrize(
    ("mix_args", "message"),
    [
        ([f"{LB}:0.5", f"{SG}:0.4"], f"--mix: the ratios sum to 0.9, not 1 ({LB}:0.5 {SG}:0.4)"),
        ([f"{LB}"], f"--mix {LB}: expected FILE:RATIO"),
        ([f"{LB}:half"], "the ratio 'half' is not a number"),
        ([f"{LB}:0", f"{SG}:1"], "the ratio must be above 0 and at most 1"),
        ([f"{LB}:0.5", f"{LB}:0.5"], "a file is named twice"),
        (["nope.jsonl:1"], "--mix nope.jsonl: no such file"),
    ],
)
def test_bad_mix_arguments(tmp_path: Path, capsys, mix_args: list[str], message: str) -> None:
    out = tmp_path / "m.jsonl"
    code, _, err = _run(["--mix", *mix_args, "--total", "4", "--output", str(out)], capsys)
    assert code == 2 and message in err and err.count("\n") == 1
    assert not out.exists()


def test_bad_record_names_file_and_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "text": "ok"}\n{"id": "2", "answer": "x"}\n', encoding="utf-8")
    code, _, err = _run(["--mix", f"{bad}:1", "--total", "1"], capsys)
    assert code == 2 and f"{bad}:2: missing the prompt" in err


def test_default_output_path(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert _run(["--mix", f"{SG}:1", "--total", "2"], capsys)[0] == 0
    assert len(_lines(tmp_path / "datasets" / "MixedBench.jsonl")) == 2


def test_runs_as_a_module(tmp_path: Path) -> None:
    out = tmp_path / "m.jsonl"
    cmd = [sys.executable, "-m", "drbench.convert.mix", "--mix", f"{SG}:1", "--total", "3"]
    res = subprocess.run([*cmd, "--output", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert len(_lines(out)) == 3
