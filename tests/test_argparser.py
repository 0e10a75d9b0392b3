"""Bad flags are one line in each tool's voice, exit 2, with "did you mean" for a typo."""

from __future__ import annotations

import pytest

from drbench import cli
from drbench.convert import longbench, mix, sharegpt
from drbench.mocker import server

ENTRY_POINTS = {
    "drbench": cli.main,
    "process_sharegpt": sharegpt.main,
    "convert_longbench": longbench.main,
    "mix": mix.main,
    "llm_mocker": server.main,
}


@pytest.mark.parametrize(
    "prog, argv, expected",
    [
        (
            "drbench",
            ["--concurency", "5"],
            "unknown flag --concurency; did you mean --concurrency?",
        ),
        ("drbench", ["--dry-run", "--timeout"], "--timeout: expected one argument (see --help)"),
        ("drbench", ["--timeout", "abc"], "--timeout: invalid float value: 'abc' (see --help)"),
        ("drbench", ["--rounds=2.5"], "--rounds: invalid int value: '2.5' (see --help)"),
        ("drbench", ["stray"], "unexpected argument 'stray'"),
        ("drbench", ["--xyzzy"], "unknown flag --xyzzy; see --help for the flags"),
        ("process_sharegpt", ["--input", "x", "--num-smaples", "3"], "did you mean --num-samples?"),
        ("process_sharegpt", ["--input", "x", "--mode", "chat"], "--mode: invalid choice: 'chat'"),
        ("convert_longbench", ["--max-tokens", "x"], "--max-tokens: expected a whole number"),
        ("convert_longbench", ["--max-model-len=0"], "--max-model-len: must be >= 1 (got 0)"),
        ("mix", ["--mix", "a:1"], "the following arguments are required: --total"),
        ("llm_mocker", ["--itl-mss", "3"], "unknown flag --itl-mss; did you mean --itl-ms?"),
        ("llm_mocker", ["--port", "x"], "--port: invalid int value: 'x' (see --help)"),
    ],
)
def test_bad_flags_are_one_line_exit_2(prog: str, argv: list[str], expected: str, capsys) -> None:
    assert ENTRY_POINTS[prog](argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"{prog}: ") and captured.err.count("\n") == 1, captured.err
    assert expected in captured.err and "usage:" not in captured.err


def test_help_still_prints_the_usage_and_exits_0(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out
