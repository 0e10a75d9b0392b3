"""report.html, --report DIR (schema 1 and 2 result directories), --compare and its exit codes.

The pages are read back with html.parser: every number cell names its path in summary.json or
compare.json (``data-key``), and must hold that file's value, shown as ``fmt`` formats it.
tests/test_report_browser.py opens the same pages in headless Chromium.
"""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from drbench.cli import main
from drbench.errors import DatasetError
from drbench.report.html import fmt, plotly_js, render_report
from drbench.rundir import load_run_dir

FIXTURES = Path(__file__).resolve().parent / "fixtures"
V1, V2 = FIXTURES / "run_schema1", FIXTURES / "run_schema2"


class Page(HTMLParser):
    """The number cells, the chart divs (and what each holds once drawn) and the figures JSON."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, str]] = []
        self.charts: dict[str, dict[str, int]] = {}
        self.body: dict[str, str] = {}
        self.figures: dict[str, Any] = {}
        self._cell: dict[str, str] | None = None
        self._chart: str | None = None
        self._depth = 0
        self._json = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "body":
            self.body = a
        if tag == "td" and "data-key" in a:
            self._cell = {**a, "text": ""}
        if tag == "script" and a.get("id") == "figures":
            self._json = True
        if self._chart is not None:
            if tag == "div":
                self._depth += 1
            counts = self.charts[self._chart]
            counts["svg"] += tag == "svg" and "main-svg" in a.get("class", "")
            counts["traces"] += tag == "g" and "trace" in a.get("class", "").split()
            counts["marks"] += tag == "path" and bool(a.get("d"))
        elif tag == "div" and "chart" in a.get("class", "").split():  # Plotly adds classes
            self._chart, self._depth = a["id"], 0
            self.charts[a["id"]] = {"svg": 0, "traces": 0, "marks": 0}

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.cells.append(self._cell)
            self._cell = None
        if tag == "div" and self._chart is not None:
            if self._depth == 0:
                self._chart = None
            else:
                self._depth -= 1
        if tag == "script":
            self._json = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data
        if self._json:
            self.figures = json.loads(data.replace("<\\/", "</"))


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    return page


def dig(data: Any, key: str) -> Any:
    for part in key.split("."):
        if data is None:
            return None
        data = data[int(part)] if isinstance(data, list) else data.get(part)
    return data


def check_cells(page: Page, source: dict[str, Any]) -> int:
    """Every number shown is its file's value, formatted; returns how many were checked."""
    for c in page.cells:
        value = dig(source, c["data-key"])
        assert c["data-value"] == ("" if value is None else json.dumps(value)), c
        assert c["text"] == fmt(value, c["data-kind"]), c
    return len(page.cells)


def copy_run(src: Path, tmp_path: Path) -> Path:
    out = tmp_path / src.name
    shutil.copytree(src, out)
    return out


@pytest.mark.parametrize("src", [V1, V2], ids=["schema1", "schema2"])
def test_report_renders_every_figure_from_the_files(src: Path) -> None:
    run = load_run_dir(src)
    page = parse(render_report(run, plotly_js()))
    summary = json.loads((src / "summary.json").read_text())  # as written, not as normalised
    n_rounds = sum(len(lv["rounds"]) for lv in summary["levels"])
    assert n_rounds == 4 and check_cells(page, summary) > 14 * n_rounds
    overview = [c for c in page.cells if c["data-key"].endswith("metrics.ttft_ms.p50")]
    raw = summary["levels"][1]["rounds"][1]["metrics"]["ttft_ms"]["p50"]
    assert float(overview[3]["text"]) == pytest.approx(raw, abs=0.005)  # C=2, round 2
    # a chart div for every figure and a figure for every chart div
    assert set(page.figures) == set(page.charts)
    for i in (0, 1):
        assert {f"ttft-cdf-{i}", f"itl-cdf-{i}", f"ratio-{i}"} <= set(page.figures)
    assert {"ttft-p50-vs-level", "hit-rate-vs-level", "server-by-round"} <= set(page.figures)
    cdf = page.figures["ttft-cdf-1"]["data"]
    assert [t["name"] for t in cdf] == ["round 1 (cold), n=5", "round 2 (warm), n=4"]
    assert cdf[0]["y"][-1] == 100.0  # a CDF ends at every value
    axis = page.figures["ttft-p50-vs-level"]["layout"]["xaxis"]
    assert axis["type"] == "log" and axis["tickvals"] == [1.0, 2.0]
    assert page.figures["ttft-p50-vs-level"]["layout"]["yaxis"]["rangemode"] == "tozero"
    text = render_report(run, None)
    assert "pip install plotly" in text and len(text) < 200_000  # tables only, no bundle
    assert parse(text).figures == {} and parse(text).charts == {}
    assert "HTTP 500" in text  # the failure breakdown: one request of C=2 round 2 failed


def test_schema1_reads_back_in_schema2s_shape() -> None:
    v1, v2 = load_run_dir(V1), load_run_dir(V2)
    assert (v1.schema_version, v2.schema_version) == (1, 2)
    assert [lv["level"] for lv in v1.levels] == [lv["level"] for lv in v2.levels]
    assert v1.levels[0]["comparisons"] == [] and v1.levels[0]["rounds"][0]["load"] is None
    assert len(v1.round_records("concurrency=2", 2)) == 5
    assert [r["prompt_id"] for r in v1.records] == [r["prompt_id"] for r in v2.records]


def test_warmup_records_and_a_cut_last_line_are_left_out(tmp_path: Path) -> None:
    out = copy_run(V2, tmp_path)
    log = out / "requests.jsonl"
    first = json.loads(log.read_text().splitlines()[0])
    log.write_text(json.dumps({**first, "round": 0}) + "\n" + log.read_text() + '{"prompt_id": "x')
    assert len(load_run_dir(out).records) == 20  # no warm-up, no half record


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "summary.json").unlink(), "no summary.json there"),
        (lambda d: (d / "summary.json").write_text("{"), "summary.json: not valid JSON"),
        (
            lambda d: (d / "summary.json").write_text('{"schema_version": 3, "levels": []}'),
            "schema_version 3 is not one this drbench reads",
        ),
        (
            lambda d: (d / "requests.jsonl").write_text("{}\nnot json\n{}\n"),
            "requests.jsonl:2: not a JSON record",
        ),
    ],
)
def test_unreadable_result_dirs_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: Any, message: str
) -> None:
    out = copy_run(V2, tmp_path)
    damage(out)
    with pytest.raises(DatasetError, match=message):
        load_run_dir(out)
    assert main(["--report", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_report_flag_rerenders_a_schema1_run(tmp_path: Path, capsys) -> None:
    out = copy_run(V1, tmp_path)
    assert main(["--report", str(out)]) == 0
    assert (
        f"wrote {out / 'report.html'} (summary.json schema 1, 20 requests)"
        in capsys.readouterr().err
    )
    page = parse((out / "report.html").read_text())
    check_cells(page, json.loads((out / "summary.json").read_text()))
    assert main(["--report", str(tmp_path / "nowhere")]) == 2
    assert "not a directory; give the --output-dir of a run" in capsys.readouterr().err


def slower(src: Path, tmp_path: Path, factor: float) -> Path:
    """A copy of a run whose every TTFT is ``factor`` times as long (same prompts)."""
    out = copy_run(src, tmp_path / "b")
    log = out / "requests.jsonl"
    recs = [json.loads(line) for line in log.read_text().splitlines()]
    for r in recs:
        if r.get("ttft_ms") is not None:
            r["ttft_ms"] *= factor
    log.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return out


def test_compare_writes_json_and_html_and_gates_exit_7(tmp_path: Path, capsys) -> None:
    b = slower(V2, tmp_path, 1.5)
    out = tmp_path / "cmp"
    argv = ["--compare", str(V1), str(b), "--output-dir", str(out)]
    assert main([*argv, "--fail-on-regression", "ttft_p50=20", "itl_p99=5"]) == 7
    std = capsys.readouterr()
    assert "B = " in std.out and "ttft_p50" in std.out and "paired, n=5" in std.out
    assert (
        "round 1 at concurrency=1: B worse by +50.0% (95% CI +50.0% .. +50.0%): FAILED" in std.err
    )
    assert "regression gate(s) failed: exit 7" in std.err
    data = json.loads((out / "compare.json").read_text())
    assert data["failed"] and data["a"]["schema_version"] == 1 and data["b"]["schema_version"] == 2
    assert {(g["metric"], g["failed"]) for g in data["gates"]} == {
        ("ttft_p50", True),
        ("itl_p99", False),
    }
    rc = data["rounds"][0]
    assert rc["paired"] and rc["ttft_ratio"]["geomean"] == pytest.approx(1.5)
    page = parse((out / "compare.html").read_text())
    assert check_cells(page, data) > 16 * 4 and set(page.figures) == {"compare-chart"}
    # within the threshold: exit 0; the same directory again needs --overwrite
    assert main([*argv, "--overwrite", "--fail-on-regression", "ttft_p50=60"]) == 0
    assert "every regression gate passed (4 checks)" in capsys.readouterr().err
    assert main(argv) == 2
    assert "already holds results" in capsys.readouterr().err


def test_compare_table_in_chinese_is_aligned_by_display_width(tmp_path: Path, capsys) -> None:
    from wcwidth import wcswidth  # noqa: PLC0415

    b = slower(V2, tmp_path, 1.5)
    argv = ["--compare", str(V1), str(b), "--output-dir", str(tmp_path / "zh"), "--lang", "zh"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("B = ") and " 对比 A = " in lines[0]
    head, dashes, *rows = lines[1:]
    assert head.split()[:3] == ["级别", "轮次", "指标"] and "配对, n=5" in rows[0]
    # every cell of the round column starts where its dashes start, in display columns
    starts = [i for i, ch in enumerate(dashes) if ch == "-" and (i == 0 or dashes[i - 1] == " ")]
    col = starts[1]
    for row in [head, *rows[:3]]:
        cut = next(i for i in range(len(row)) if wcswidth(row[:i]) == col)
        assert row[cut] != " " and row[cut - 1] == " ", row


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fail-on-regression", "ttft_p99=10"], "--fail-on-regression needs --compare"),
        (["--compare", str(V1), str(V2), "--fail-on-regression", "ttft=1"], "give METRIC=PCT"),
        (["--compare", str(V1)], "expected 2 arguments"),
        (["--report", str(V1), "--compare", str(V1), str(V2)], "two commands"),
    ],
)
def test_compare_usage_errors_exit_2(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_text_from_the_files_is_escaped(tmp_path: Path) -> None:
    out = copy_run(V2, tmp_path)
    s = json.loads((out / "summary.json").read_text())
    s["run"]["warnings"] = ["<script>alert(1)</script>"]
    s["config"]["model"] = "</script><b>m</b>"
    (out / "summary.json").write_text(json.dumps(s))
    text = render_report(load_run_dir(out), plotly_js())
    assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<b>m</b>" not in text


def test_a_run_without_plotly_says_so_once(tmp_path: Path, monkeypatch) -> None:
    from drbench import benchmark  # noqa: PLC0415
    from drbench.report import html  # noqa: PLC0415

    notes: list[str] = []

    class Reporter:
        def note(self, message: str) -> None:
            notes.append(message)

    out = copy_run(V2, tmp_path)
    monkeypatch.setattr(html, "plotly_js", lambda: None)
    assert benchmark._write_html(out, Reporter(), charts=True) == []
    assert notes == ["report.html has no charts: pip install plotly to get them"]
    assert "Charts are left out" in (out / "report.html").read_text()
    assert benchmark._write_html(out, Reporter(), charts=False) == []  # --no-plots: no note
    assert len(notes) == 1
