"""Validate dataset files in the benchmarker's record format; also the tests of that check.

As a command: ``python tests/test_jsonl_output.py FILE [FILE ...]`` prints one
``FILE:LINE: problem`` line per problem (JSON syntax, missing or malformed fields, duplicate
ids) and exits 1 if there is any, 0 if every file is valid, 2 if a file cannot be read.
The check is ``drbench.convert.jsonl.check_file``, which uses the benchmarker's own
``validate_record``.  As a pytest module it checks the shipped datasets/ outputs and the
validator itself on good and broken files.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

if __name__ == "__main__":  # run as a script from anywhere: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drbench.convert.jsonl import check_file  # noqa: E402
from drbench.errors import DrbenchError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main(argv: Sequence[str] | None = None) -> int:
    """Check every FILE given; returns the exit status described in the module docstring."""
    files = list(sys.argv[1:] if argv is None else argv)
    if not files or files[0] in ("-h", "--help"):
        print("usage: python tests/test_jsonl_output.py FILE [FILE ...]", file=sys.stderr)
        return 0 if files else 2
    status = 0
    for name in files:
        try:
            problems = check_file(name)
        except DrbenchError as exc:
            print(f"test_jsonl_output: {exc}", file=sys.stderr)
            return 2
        for line in problems:
            print(line)
        if problems:
            status = 1
        else:
            print(f"{name}: OK")
    return status


# --- tests -----------------------------------------------------------------------------


def _write(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_shipped_outputs_are_valid() -> None:
    # mooncake_sample.jsonl is a trace (the mooncake workload's input), not a dataset:
    # tests/test_workloads.py checks it
    shipped = sorted(
        p for p in (ROOT / "datasets").glob("*.jsonl") if p.name != "mooncake_sample.jsonl"
    )
    names = {p.name for p in shipped}
    assert {"sharegpt_clean.jsonl", "longbench_sample.jsonl", "MixedBench.jsonl"} <= names
    for path in shipped:
        assert check_file(path) == [], path


def test_good_file_has_no_problems(tmp_path: Path) -> None:
    good = _write(
        tmp_path / "good.jsonl",
        [
            json.dumps({"id": "a", "text": "hello", "max_tokens": 8, "source": "x"}),
            "",
            json.dumps({"id": "b", "messages": [{"role": "user", "content": "hi"}]}),
            json.dumps({"prompt": "old style", "followup": "and then?"}),
        ],
    )
    assert check_file(good) == []


def test_broken_file_names_every_problem_by_line(tmp_path: Path) -> None:
    bad = _write(
        tmp_path / "bad.jsonl",
        [
            json.dumps({"id": "a", "text": "fine"}),
            '{"id": "b", "text": "unterminated',
            json.dumps({"id": "c", "answer": "no prompt"}),
            json.dumps({"id": "d", "text": "x", "max_tokens": 0}),
            json.dumps({"id": "a", "text": "same id"}),
            json.dumps({"id": "e", "messages": [{"role": "robot", "content": "x"}]}),
            json.dumps(["not", "an", "object"]),
        ],
    )
    problems = check_file(bad)
    assert [p.split(":")[1] for p in problems] == ["2", "3", "4", "5", "6", "7"]
    assert "not valid JSON" in problems[0]
    assert "missing the prompt" in problems[1]
    assert "'max_tokens' must be a positive integer" in problems[2]
    assert "duplicate id 'a'" in problems[3] and f"{bad}:1" in problems[3]
    assert "messages[0].role" in problems[4]
    assert "expected a JSON object" in problems[5]


def test_json_array_items_get_their_line(tmp_path: Path) -> None:
    path = tmp_path / "arr.json"
    path.write_text('[\n  {"id": "a", "text": "x"},\n  {"id": "b"}\n]\n', encoding="utf-8")
    assert check_file(path) == [
        f"{path}:3: missing the prompt: give 'text', 'messages' or 'prompt'"
    ]


def test_empty_file_is_a_problem(tmp_path: Path) -> None:
    path = _write(tmp_path / "empty.jsonl", [""])
    assert check_file(path) == [f"{path}: holds no records"]


def test_main_exit_codes(tmp_path: Path, capsys) -> None:
    good = _write(tmp_path / "good.jsonl", [json.dumps({"id": "a", "text": "x"})])
    bad = _write(tmp_path / "bad.jsonl", [json.dumps({"id": "a"})])
    assert main([str(good)]) == 0
    assert main([str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:1: missing the prompt" in out
    assert main([str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl: no such file" in capsys.readouterr().err


def test_runs_as_a_command(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.jsonl", ['{"id": 1, "text": ""}'])
    script = Path(__file__).resolve()
    ok = subprocess.run(
        [sys.executable, str(script), str(ROOT / "datasets" / "MixedBench.jsonl")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    fail = subprocess.run(
        [sys.executable, str(script), str(bad)], capture_output=True, text=True, cwd=tmp_path
    )
    assert fail.returncode == 1
    assert fail.stdout.strip() == f"{bad}:1: 'text' is empty"


if __name__ == "__main__":
    raise SystemExit(main())
