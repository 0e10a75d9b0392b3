"""The shipped datasets/ files are what the commands in datasets/README.md produce."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from drbench.convert import longbench, mix, sharegpt
from drbench.workloads import mooncake_sample

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- regenerate:"
ENTRY_POINTS = {
    ("python", "process_sharegpt.py"): sharegpt.main,
    ("python", "convert_longbench.py"): longbench.main,
    ("python", "-m", "drbench.convert.mix"): mix.main,
    ("python", "-m", "drbench.workloads.mooncake_sample"): mooncake_sample.main,
}


def _commands() -> list[list[str]]:
    """The lines of the first bash block after the README's regenerate marker."""
    text = (ROOT / "datasets" / "README.md").read_text(encoding="utf-8")
    block = text[text.index(MARKER) :].split("```bash\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


def _output(argv: list[str]) -> str:
    return argv[argv.index("--output") + 1]


def test_readme_commands_reproduce_the_shipped_files(tmp_path, monkeypatch, capsys) -> None:
    commands = _commands()
    assert len(commands) == 4
    for folder in ("LongBench", "ShareGPT"):
        shutil.copytree(ROOT / "datasets" / folder, tmp_path / "datasets" / folder)
    monkeypatch.chdir(tmp_path)
    for argv in commands:
        prefix = next(p for p in ENTRY_POINTS if tuple(argv[: len(p)]) == p)
        assert ENTRY_POINTS[prefix](argv[len(prefix) :]) == 0, capsys.readouterr().err
        out = _output(argv)
        assert (tmp_path / out).read_bytes() == (ROOT / out).read_bytes(), out
    shipped = {p.name for p in (ROOT / "datasets").glob("*.jsonl")}
    assert shipped == {Path(_output(a)).name for a in commands}


def test_shipped_data_stays_small() -> None:
    total = sum(p.stat().st_size for p in (ROOT / "datasets").rglob("*") if p.is_file())
    assert total < 500_000
