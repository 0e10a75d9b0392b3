"""Bad flags are one line in each tool's voice, exit 2, with "did you mean" for a typo."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from drbench import __version__, cli
from drbench.convert import longbench, mix, sharegpt
from drbench.mocker import server
from drbench.mocker.config import build_parser as mocker_parser

ROOT = Path(__file__).resolve().parent.parent

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
        # a typo is named even where argparse would first miss a required flag
        ("process_sharegpt", ["--inptu", "x.json"], "unknown flag --inptu; did you mean --input?"),
        ("mix", ["--mx", "a:1", "--total", "3"], "unknown flag --mx; did you mean --mix?"),
        ("mix", ["--totl=3", "--mix", "a:1"], "unknown flag --totl; did you mean --total?"),
        ("drbench", ["--ignore-eso"], "unknown flag --ignore-eso; did you mean --ignore-eos?"),
        ("drbench", ["--extra-bdy", "{}"], "did you mean --extra-body?"),
        ("drbench", ["--headers", "X: 1"], "unknown flag --headers; did you mean --header?"),
        (
            "drbench",
            ["--concurrency", "2", "--rond", "3"],
            "unknown flag --rond; did you mean --rounds?",
        ),
        ("convert_longbench", ["--verison"], "unknown flag --verison; did you mean --version?"),
        # a peer tool's flag says what to write here instead
        (
            "drbench",
            ["--base-url", "http://h:8000"],
            "unknown flag --base-url; give the server as --endpoint URL",
        ),
        ("drbench", ["--url", "h:8000"], "unknown flag --url; give the server as --endpoint URL"),
        ("drbench", ["-H", "X: 1"], "unknown flag -H; use --header 'NAME: VALUE'"),
        (
            "drbench",
            ["--extra-inputs", "a:1"],
            "unknown flag --extra-inputs; use --extra-body JSON",
        ),
        ("drbench", ["--num-prompts", "5"], "unknown flag --num-prompts; use --num-samples N"),
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


def test_after_a_bare_double_dash_nothing_is_a_flag(capsys) -> None:
    assert cli.main(["--dry-run", "--", "--concurency"]) == 2
    assert "unexpected argument '--concurency'" in capsys.readouterr().err


def test_an_abbreviation_is_still_argparses(capsys) -> None:
    assert (
        cli.main(["--endpoint", "http://h:8000", "--dataset", "x", "--conc", "3", "--dry-run"]) == 0
    )
    assert '"concurrency": [\n      3\n    ]' in capsys.readouterr().out


SCRIPTS = (
    "dual_round_benchmarker.py",
    "llm_mocker.py",
    "convert_longbench.py",
    "process_sharegpt.py",
)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_top_level_script_has_version(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / script), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.strip() in (f"drbench {__version__}", f"{script} (drbench {__version__})")


@pytest.mark.parametrize(
    "parser",
    [
        cli.build_parser,
        longbench.build_parser,
        sharegpt.build_parser,
        mix.build_parser,
        mocker_parser,
    ],
)
def test_every_help_words_its_defaults_one_way(parser, monkeypatch) -> None:
    """'(default: X)' at the end of a flag's help; never '(default X)' nor a bare '(default)'."""
    monkeypatch.setenv("COLUMNS", "10000")  # one line a flag
    text = parser().format_help()
    assert "(default:" in text
    assert not re.search(r"\(default[^:]", text), re.findall(r".*\(default[^:].*", text)
    for line in text.splitlines():
        if "(default: " in line:  # the last thing it says, so the eye finds it
            assert line.rstrip().endswith(")"), line
            assert line.count("(default: ") == 1, line
