"""What an install pulls in: `datasets` (~260 MB with pyarrow and pandas) only with the hub extra,
and a one-line hint when the LongBench hub download is asked for without it."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from drbench.convert import longbench, longbench_source

ROOT = Path(__file__).resolve().parent.parent


def requirement_lines(name: str) -> list[str]:
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def test_datasets_is_the_hub_extra_and_not_a_runtime_dependency() -> None:
    assert not any(line.startswith("datasets") for line in requirement_lines("requirements.txt"))
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # no tomllib on 3.10
    hub = re.search(r"^hub = (\[.*\])$", pyproject, re.M)
    assert hub and ast.literal_eval(hub.group(1)) == requirement_lines("requirements-hub.txt")
    assert "-r requirements-hub.txt" in requirement_lines("requirements-dev.txt")
    assert "include requirements-hub.txt" in (ROOT / "MANIFEST.in").read_text(encoding="utf-8")


def test_ray_is_the_ray_extra_and_not_a_runtime_dependency() -> None:
    assert not any(line.startswith("ray") for line in requirement_lines("requirements.txt"))
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    extra = re.search(r"^ray = (\[.*\])$", pyproject, re.M)
    assert extra and ast.literal_eval(extra.group(1)) == requirement_lines("requirements-ray.txt")
    assert "-r requirements-ray.txt" in requirement_lines("requirements-dev.txt")
    assert "include requirements-ray.txt" in (ROOT / "MANIFEST.in").read_text(encoding="utf-8")


def test_the_hub_without_datasets_is_one_line_before_any_network(
    monkeypatch, capsys, tmp_path
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if not installed

    def no_network(*_args: object, **_kw: object) -> None:
        raise AssertionError("the hub was probed before the missing package was said")

    monkeypatch.setattr(longbench, "check_hub_reachable", no_network)
    assert longbench.main(["--dataset", "hotpotqa", "--output", str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err == f"convert_longbench: {longbench_source.NO_DATASETS}\n"
    assert "pip install -r requirements-hub.txt" in err and "'.[hub]'" in err
    assert not (tmp_path / "o.jsonl").exists()


def test_local_files_need_no_datasets(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    out = tmp_path / "o.jsonl"
    argv = ["--input", str(ROOT / "datasets/LongBench/trec.jsonl"), "--output", str(out)]
    assert longbench.main(argv) == 0 and out.read_text().strip()


@pytest.mark.parametrize("readme", ["README.md", "CONTRIBUTING.md"])
def test_the_docs_say_how_to_get_the_hub_extra(readme: str) -> None:
    assert "requirements-hub.txt" in (ROOT / readme).read_text(encoding="utf-8")
