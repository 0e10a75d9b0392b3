"""--executor and its settings: what is refused before anything is sent, with Ray or without."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from drbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "examples" / "example_dataset.json"
ENDPOINT = "http://127.0.0.1:9/v1/chat/completions"  # never reached: each run stops before


def test_ray_settings_without_executor_ray_are_one_line(capsys) -> None:
    for flags in (["--ray-hosts", "2"], ["--ray-address", "auto"]):
        code = main(["--endpoint", ENDPOINT, "--dataset", str(DATASET), *flags, "--dry-run"])
        assert code == 2
        name = flags[0]
        assert capsys.readouterr().err.strip() == (
            f"drbench: {name} is a setting of --executor ray, which is not given: add it"
        )


def test_executor_ray_without_ray_installed_says_how_to_install_it(tmp_path: Path) -> None:
    """Ray hidden from the import system (it may be installed here): one line, exit 2, before
    any request and without an output directory left behind."""
    out = tmp_path / "run"
    script = (
        "import sys; sys.modules['ray'] = None\n"
        "from drbench.cli import main\n"
        f"sys.exit(main(['--endpoint', {ENDPOINT!r}, '--dataset', {str(DATASET)!r},"
        f" '--executor', 'ray', '--output-dir', {str(out)!r}]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        'drbench: --executor ray needs Ray, which is not installed: pip install ".[ray]" (or '
        "pip install ray) on this machine and on every host"
    )
    assert not out.exists()


def test_on_lost_worker_takes_its_two_choices(capsys) -> None:
    code = main(["--endpoint", ENDPOINT, "--dataset", str(DATASET), "--on-lost-worker", "halt"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--on-lost-worker" in err and "continue" in err and "stop" in err


def test_workers_auto_under_ray_asks_for_a_number(capsys) -> None:
    argv = ["--endpoint", ENDPOINT, "--dataset", str(DATASET), "--executor", "ray"]
    assert main([*argv, "--workers", "auto", "--dry-run"]) == 2
    assert capsys.readouterr().err.strip() == (
        "drbench: --workers auto counts this machine's cores; under --executor ray it is the "
        "actors per host: give a number (each actor takes one of its host's CPUs)"
    )
