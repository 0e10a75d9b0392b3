"""Startup weight: what the CLI has imported by the time it opens its first connection.

The heavy libraries (numpy, tabulate, yaml, datasets, prometheus_client) are only needed once a
round has something to summarise, a file to parse or a report to print; importing them earlier
costs CPU-seconds before the first request (bench/client_overhead.py measures it).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {
    "numpy",
    "tabulate",
    "yaml",
    "datasets",
    "prometheus_client",
    "drbench.stats",
    "drbench.report.console",
}

# Runs the CLI unchanged; at the first socket.connect it writes the loaded module names and exits.
_LAUNCHER = r"""
import json, os, runpy, sys
def _hook(event, args):
    if event == "socket.connect":
        with open(os.environ["STARTUP_MODULES_OUT"], "w") as f:
            json.dump(sorted(sys.modules), f)
        os._exit(0)
sys.addaudithook(_hook)
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))  # as when run as a script
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_heavy_import_before_the_first_connection(tmp_path: Path) -> None:
    out = tmp_path / "modules.json"
    cmd = [
        sys.executable,
        "-c",
        _LAUNCHER,
        str(ROOT / "dual_round_benchmarker.py"),
        "--endpoint",
        f"http://127.0.0.1:{_closed_port()}/v1/chat/completions",
        "--dataset",
        str(ROOT / "examples" / "example_dataset.json"),
        "--output-dir",
        str(tmp_path / "results"),
        "--quiet",
    ]
    proc = subprocess.run(
        cmd,
        env=dict(os.environ, STARTUP_MODULES_OUT=str(out)),
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    loaded = set(json.loads(out.read_text()))
    assert "aiohttp" in loaded  # the hook really fired at the first request
    assert {m.split(".")[0] for m in loaded} & HEAVY == set()
    assert loaded & HEAVY == set()


def test_help_imports_neither_aiohttp_nor_numpy() -> None:
    code = (
        "import sys, drbench.cli; drbench.cli.build_parser().format_help(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'numpy')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
