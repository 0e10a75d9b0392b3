"""Recipes end to end against the mock server: the CI shell script and the multi-run layout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from drbench.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "test_recipe_env_integration.sh"
FAST = ("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "8")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_env_recipe_script_passes():
    """tests/test_recipe_env_integration.sh: env-driven run, missing required var, bad value."""
    proc = subprocess.run(
        ["bash", str(SCRIPT)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("PASS"), proc.stdout


def test_multi_run_recipe_writes_each_run_into_its_own_subdirectory(
    tmp_path, mocker_factory, monkeypatch, capsys
):
    mock = mocker_factory(*FAST)
    monkeypatch.setenv("DRB_TEST_ENDPOINT", mock.url("/v1/chat/completions"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    recipe = tmp_path / "multi.yaml"
    recipe.write_text(
        "endpoint: ${DRB_TEST_ENDPOINT}\n"
        f"dataset: {ROOT / 'examples' / 'example_dataset.json'}\n"
        "num_samples: 2\nmax_tokens: 8\nquiet: true\n"
        "output_dir: ignored-because-the-flag-wins\n"
        "runs:\n"
        "  - name: single\n    concurrency: 1\n"
        "  - name: pair\n    concurrency: [1, 2]\n    round2_mode: continue\n",
        encoding="utf-8",
    )
    out = tmp_path / "results"

    status = main(["--recipe", str(recipe), "--output-dir", str(out), "--no-plots"])

    assert status == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["pair", "single"]
    expected = {"single": ([1], "repeat"), "pair": ([1, 2], "continue")}
    for name, (levels, mode) in expected.items():
        run_dir = out / name
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        assert summary["config"]["output_dir"] == str(run_dir)
        assert summary["config"]["concurrency"] == levels
        assert summary["config"]["round2_mode"] == mode
        assert [lv["concurrency"] for lv in summary["levels"]] == levels
        names = {p.name for p in run_dir.iterdir()}
        assert {"summary.json", "metrics_summary.csv", "requests.jsonl"} <= names
        assert {f"concurrency_{c}_round_{r}.json" for c in levels for r in (1, 2)} <= names
        lines = (run_dir / "requests.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 2 * 2 * len(levels)  # prompts x rounds x levels
