"""report.html and compare.html: one self-contained page each, readable offline.

A page is tables (always) and interactive charts (when the optional ``plotly`` package is
installed: its plotly.js bundle is inlined once per page, so the file needs no network and no
CDN; without it the page says how to get charts).  Why plotly.js: it is a maintained library
with hover values, legend toggling and zoom built in, and the Python package ships the offline
bundle, so nothing is fetched at run time; the price is ~4.8 MB of script per page (docs/
benchmarker_guide.md, "report.html").  Every figure in a table cell carries ``data-key`` (its
path in summary.json or compare.json) and ``data-value`` (the raw number), so a test can check
that what is shown is what the file holds.  Built from result-file dicts only; pure apart from
the write helpers.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from drbench.levels import Level
from drbench.report.charts import level_figures, round_name, run_figures
from drbench.report.files import replacing_file, strict_json
from drbench.rundir import RunDir

__all__ = [
    "REPORT_NAME",
    "fmt",
    "page",
    "plotly_js",
    "render_report",
    "write_page",
    "write_report",
]

REPORT_NAME = "report.html"
_NO_CHARTS = (
    "Charts are left out: the run had --no-plots, or the plotly package is not installed "
    "(pip install plotly, then re-render with --report DIR)."
)
# The round table: (header, path in the round's dict, format kind)
ROUND_COLUMNS: list[tuple[str, tuple[str, ...], str]] = [
    ("ok", ("requests", "succeeded"), "int"),
    ("sent", ("requests", "total"), "int"),
    ("TTFT p50 ms", ("metrics", "ttft_ms", "p50"), "ms"),
    ("TTFT p90 ms", ("metrics", "ttft_ms", "p90"), "ms"),
    ("TTFT p99 ms", ("metrics", "ttft_ms", "p99"), "ms"),
    ("ITL p50 ms", ("metrics", "itl_ms", "p50"), "ms"),
    ("TPOT p50 ms", ("metrics", "tpot_ms", "p50"), "ms"),
    ("latency p50 ms", ("metrics", "latency_ms", "p50"), "ms"),
    ("output tok/s", ("throughput", "output_tokens_per_s"), "rate"),
    ("req/s", ("throughput", "requests_per_s"), "rate"),
    ("goodput %", ("goodput", "percent"), "percent"),
    ("cached share", ("cache", "client_cached_share"), "share"),
    ("server hit rate", ("cache", "server_hit_rate"), "share"),
    ("offered share", ("cache", "offered_share"), "share"),
]
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1200px;
padding:0 16px;color:#1d1d1f}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f6}
td.l,th.l{text-align:left}.muted{color:#666}.warn{color:#a15c00}.bad{color:#b00020;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:12px}
.chart{border:1px solid #eee}.note{background:#fff8e1;padding:6px 10px}
details{margin:8px 0}code{background:#f4f4f6;padding:0 3px}
"""
_SCRIPT = """
(function(){
  var errors = [];
  window.addEventListener('error', function(e){ errors.push(String(e.message)); });
  var figs = JSON.parse(document.getElementById('figures').textContent);
  var drawn = 0;
  if (typeof Plotly !== 'undefined') {
    Object.keys(figs).forEach(function(id){
      var el = document.getElementById(id);
      if (!el) { errors.push('no element for chart ' + id); return; }
      try {
        Plotly.newPlot(el, figs[id].data, figs[id].layout,
                       {displaylogo: false, responsive: true});
        drawn += 1;
      } catch (e) { errors.push(id + ': ' + e); }
    });
  }
  document.body.setAttribute('data-charts-drawn', String(drawn));
  document.body.setAttribute('data-chart-errors', errors.join(' | '));
})();
"""


def plotly_js() -> str | None:
    """The offline plotly.js bundle of the installed plotly package, or None without it.

    Read straight from the package's data (one file opened, plotly itself not imported: at the
    end of a run the connection pool may still hold many descriptors); the import is the
    fallback should a plotly release move the file."""
    import importlib.util  # noqa: PLC0415

    try:
        spec = importlib.util.find_spec("plotly")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    bundle = Path(spec.origin).parent / "package_data" / "plotly.min.js"
    try:
        return bundle.read_text(encoding="utf-8")
    except OSError:
        pass
    try:
        from plotly.offline import get_plotlyjs  # noqa: PLC0415
    except ImportError:
        return None
    return str(get_plotlyjs())


def fmt(value: Any, kind: str) -> str:
    """How a table shows a figure: ms and rates with 2 and 1 decimals, shares as percent."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–"
    if kind == "int":
        return str(int(value))
    if kind == "share":
        return f"{value * 100:.1f}%"
    if kind == "percent":
        return f"{value:.1f}%"
    if kind == "signed":
        return f"{value:+.1f}%"
    if kind == "ratio":
        return f"{value:.3f}"
    if kind == "rate":
        return f"{value:.1f}"
    return f"{value:.2f}"


def cell(value: Any, kind: str, key: str) -> str:
    """A number's table cell, with its source path, format and raw value for checking."""
    raw = "" if value is None else json.dumps(value)
    return (
        f'<td data-key="{html.escape(key)}" data-kind="{kind}" data-value="{html.escape(raw)}">'
        f"{fmt(value, kind)}</td>"
    )


def esc(text: Any) -> str:
    return html.escape("" if text is None else str(text))


def page(title: str, body: str, figures: dict[str, dict[str, Any]], js: str | None) -> str:
    """A whole page: CSS, the body, the figures as JSON and (with plotly) the bundle inline."""
    data = strict_json(figures).replace("</", "<\\/")  # never closes its <script> early
    bundle = f"<script>{js}</script>" if js is not None else ""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width,initial-scale=1'><title>{esc(title)}</title>"
        f"<style>{_CSS}</style></head><body>{body}"
        f"<script type='application/json' id='figures'>{data}</script>{bundle}"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


def write_page(path: Path, text: str) -> Path:
    """Atomically, like every result file: a full disk leaves no half page."""
    with replacing_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_report(out_dir: Path, run: RunDir, js: str | None) -> Path:
    return write_page(out_dir / REPORT_NAME, render_report(run, js))


def _charts(ids: Iterable[str], figures: dict[str, Any]) -> str:
    divs = "".join(f"<div class='chart' id='{i}'></div>" for i in ids if i in figures)
    return f"<div class='grid'>{divs}</div>" if divs else ""


def render_report(run: RunDir, js: str | None) -> str:
    """report.html of one run."""
    s = run.summary
    cfg = s.get("config") or {}
    info = s.get("run") or {}
    tool = s.get("tool") or {}
    figures = run_figures(run) if js is not None else {}
    parts = [
        f"<h1>drbench report: {esc(cfg.get('model') or 'model ?')}</h1>",
        "<p class='muted'>"
        f"started {esc(info.get('started_at'))}, finished {esc(info.get('finished_at') or '–')}"
        f"{' (interrupted)' if info.get('interrupted') else ''}; drbench {esc(tool.get('version'))}, "
        f"summary.json schema {run.schema_version}; endpoint {esc(cfg.get('endpoint'))}; "
        f"cold start: {esc(cfg.get('cold_start'))}; round 2: {esc(cfg.get('round2_mode'))}</p>",
    ]
    if js is None:
        parts.append(f"<p class='note'>{esc(_NO_CHARTS)}</p>")
    if not run.records:
        parts.append(
            "<p class='note'>No requests.jsonl beside summary.json: the distributions and "
            "per-prompt ratios need it and are left out.</p>"
        )
    links = [("all", "All levels")] + [
        (f"level-{i}", Level.from_dict(lv["level"]).label) for i, lv in enumerate(run.levels)
    ]
    links += [("failures", "Failures"), ("config", "Configuration")]
    parts.append("<p>" + " · ".join(f"<a href='#{a}'>{esc(t)}</a>" for a, t in links) + "</p>")
    parts.append("<h2 id='all'>All levels</h2>")
    parts.append(
        "<p class='muted'>Round 1 is cold (its prompts were never seen), round 2 warm (the same "
        "prompts again). Hover a point for its value and n; click a legend entry to hide a "
        "line.</p>"
    )
    parts.append(
        _charts(
            [
                "ttft-p50-vs-level",
                "ttft-p99-vs-level",
                "throughput-vs-level",
                "hit-rate-vs-level",
                "server-by-round",
            ],
            figures,
        )
    )
    parts.append(_overview_table(run))
    parts.append(_gates(s))
    parts.append(_warnings(s))
    for i, lv in enumerate(run.levels):
        parts.append(_level_section(run, i, lv, figures, js is not None))
    parts.append(_failures(run))
    parts.append(_config(cfg))
    title = f"drbench report {cfg.get('model') or ''} {info.get('started_at') or ''}".strip()
    return page(title, "\n".join(parts), figures, js)


def _overview_table(run: RunDir) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h, _, _ in ROUND_COLUMNS)
    rows = []
    for i, lv in enumerate(run.levels):
        label = Level.from_dict(lv["level"]).label
        for j, r in enumerate(lv["rounds"]):
            cells = "".join(
                cell(_dig(r, path), kind, f"levels.{i}.rounds.{j}." + ".".join(path))
                for _, path, kind in ROUND_COLUMNS
            )
            rows.append(
                f"<tr><td class='l'>{esc(label)}</td><td class='l'>{esc(round_name(int(r['round'])))}"
                f"</td>{cells}</tr>"
            )
    return (
        "<table id='overview'><tr><th class='l'>level</th><th class='l'>round</th>"
        f"{head}</tr>{''.join(rows)}</table>"
    )


def _level_section(
    run: RunDir, i: int, lv: dict[str, Any], figures: dict[str, Any], charts: bool
) -> str:
    level = Level.from_dict(lv["level"])
    figs = level_figures(run, i) if charts else {}
    figures.update(figs)
    parts = [f"<h2 id='level-{i}'>{esc(level.label)}</h2>"]
    comps = lv.get("comparisons") or []
    if not comps and lv.get("comparison"):  # schema 1, or a reader of comparison only
        comps = [{"round": 2, "against": 1, **lv["comparison"]}]
    if comps:
        rows = []
        for j, c in enumerate(comps):
            key = (
                f"levels.{i}.comparisons.{j}" if lv.get("comparisons") else f"levels.{i}.comparison"
            )
            ratio = c.get("ttft_ratio") or {}
            ci = ratio.get("geomean_ci95") or [None, None]
            p50 = (c.get("ttft_ms") or {}).get("p50") or {}
            rows.append(
                f"<tr><td class='l'>{esc(round_name(int(c['round'])))} vs "
                f"{esc(round_name(int(c['against'])))}</td>"
                + cell(c.get("n_pairs"), "int", f"{key}.n_pairs")
                + cell(ratio.get("median"), "ratio", f"{key}.ttft_ratio.median")
                + cell(ratio.get("geomean"), "ratio", f"{key}.ttft_ratio.geomean")
                + cell(ci[0], "ratio", f"{key}.ttft_ratio.geomean_ci95.0")
                + cell(ci[1], "ratio", f"{key}.ttft_ratio.geomean_ci95.1")
                + cell(ratio.get("share_faster"), "share", f"{key}.ttft_ratio.share_faster")
                + cell(p50.get("change_percent"), "signed", f"{key}.ttft_ms.p50.change_percent")
                + "</tr>"
            )
        parts.append(
            "<p class='muted'>Paired by prompt: each prompt's TTFT in the later round divided by "
            "its TTFT in the earlier one; below 1 the cache helped.</p>"
            "<table class='comparison'><tr><th class='l'>rounds</th><th>pairs</th>"
            "<th>median ratio</th><th>geomean ratio</th><th>95% CI low</th><th>95% CI high</th>"
            "<th>share faster</th><th>TTFT p50 change</th></tr>" + "".join(rows) + "</table>"
        )
    parts.append(_charts([f"ttft-cdf-{i}", f"itl-cdf-{i}", f"ratio-{i}", f"over-time-{i}"], figs))
    if figs.get(f"ratio-{i}"):
        parts.append(
            "<p class='muted'>In the ratio box plot each dot is one prompt; the box spans the "
            "middle half of the prompts, its inner line is the median prompt, the dashed line "
            "at 1 is no change.</p>"
        )
    return "\n".join(parts)


def _gates(s: dict[str, Any]) -> str:
    gates = s.get("gates") or []
    if not gates:
        return ""
    rows = "".join(
        f"<tr><td class='l'>{esc(g.get('gate'))}</td><td class='l'>{esc(g.get('level'))}</td>"
        f"<td>{esc(g.get('round'))}</td>"
        + cell(g.get("value"), "ratio", f"gates.{i}.value")
        + f"<td>{esc(g.get('threshold'))}</td>"
        f"<td class='{'l' if g.get('passed') else 'l bad'}'>{'passed' if g.get('passed') else 'FAILED'}"
        "</td></tr>"
        for i, g in enumerate(gates)
    )
    return (
        "<h3>Gates</h3><table><tr><th class='l'>gate</th><th class='l'>level</th><th>round</th>"
        f"<th>value</th><th>threshold</th><th class='l'>verdict</th></tr>{rows}</table>"
    )


def _warnings(s: dict[str, Any]) -> str:
    items = list((s.get("run") or {}).get("warnings") or [])
    for lv in s.get("levels") or []:
        items += lv.get("warnings") or []
    if not items:
        return "<h3>Warnings</h3><p class='muted'>none</p>"
    return (
        "<h3>Warnings</h3><ul>"
        + "".join(f"<li class='warn'>{esc(w)}</li>" for w in items)
        + "</ul>"
    )


def _failures(run: RunDir) -> str:
    rows = []
    for lv in run.levels:
        label = Level.from_dict(lv["level"]).label
        for r in lv["rounds"]:
            for e in r.get("errors") or []:
                rows.append(
                    f"<tr><td class='l'>{esc(label)}</td><td>{esc(r['round'])}</td>"
                    f"<td class='l'>{esc(e.get('kind'))}</td><td>{esc(e.get('count'))}</td>"
                    f"<td class='l'>{esc(e.get('message'))}</td></tr>"
                )
    if not rows:
        return "<h2 id='failures'>Failures</h2><p class='muted'>no request failed</p>"
    return (
        "<h2 id='failures'>Failures</h2><table id='failures'><tr><th class='l'>level</th><th>round</th>"
        "<th class='l'>kind</th><th>count</th><th class='l'>message (most common first)</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _config(cfg: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td class='l'><code>{esc(k)}</code></td><td class='l'>{esc(json.dumps(v, ensure_ascii=False))}</td></tr>"
        for k, v in cfg.items()
    )
    return (
        "<h2 id='config'>Configuration</h2><details><summary>every option of the run (secrets shown as "
        f"***)</summary><table>{rows}</table></details>"
    )


def _dig(d: Any, path: tuple[str, ...]) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d
