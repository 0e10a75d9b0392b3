"""report.html and compare.html in a real browser: headless Chromium (Debian's ``chromium``,
which .ci/run installs).  The page must log nothing to the console, draw every chart (an SVG
with traces in each chart div) and show summary.json's numbers.  Offline by construction: the
browser starts with its background networking off and the page is a local file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from drbench.cli import main
from tests.test_html_report import V1, V2, check_cells, copy_run, parse, slower

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (apt-get install -y chromium; .ci/run does)",
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=10000",
)


def open_page(page: Path, profile: Path) -> tuple[str, list[str]]:
    """The DOM after the page's scripts ran, and every console line the page logged."""
    profile.mkdir()
    done = subprocess.run(
        [CHROMIUM or "chromium", *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


@pytest.mark.slow
@pytest.mark.parametrize("src", [V1, V2], ids=["schema1", "schema2"])
def test_report_draws_every_chart_without_console_errors(src: Path, tmp_path: Path) -> None:
    out = copy_run(src, tmp_path)
    assert main(["--report", str(out)]) == 0
    dom, console = open_page(out / "report.html", tmp_path / "profile")
    assert console == []
    page = parse(dom)
    assert page.body["data-chart-errors"] == ""
    assert int(page.body["data-charts-drawn"]) == len(page.figures) >= 11
    assert set(page.charts) == set(page.figures)
    for chart, counts in page.charts.items():
        assert counts["svg"] >= 1 and counts["traces"] >= 1 and counts["marks"] > 0, chart
    assert check_cells(page, json.loads((out / "summary.json").read_text())) > 60


@pytest.mark.slow
def test_compare_page_draws_its_chart(tmp_path: Path) -> None:
    b = slower(V2, tmp_path, 1.2)
    out = tmp_path / "cmp"
    assert main(["--compare", str(V2), str(b), "--output-dir", str(out)]) == 0
    dom, console = open_page(out / "compare.html", tmp_path / "profile")
    assert console == []
    page = parse(dom)
    assert page.body["data-charts-drawn"] == "1" and page.charts["compare-chart"]["traces"] == 4
    check_cells(page, json.loads((out / "compare.json").read_text()))
