"""What ``--compare`` shows and writes: the console table, compare.json and compare.html.

The math is compare.py's; this module only lays it out.  The console shows the headline figures
(and every gated one); compare.json and compare.html hold every figure of every round.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drbench.compare import GATEABLE, Comparison
from drbench.records import Lang
from drbench.report.charts import compare_figure, round_name
from drbench.report.files import write_json
from drbench.report.html import cell, esc, page, write_page
from drbench.rundir import RunDir

__all__ = [
    "COMPARE_HTML",
    "COMPARE_JSON",
    "COMPARE_SCHEMA",
    "HEADLINE",
    "compare_dict",
    "compare_header",
    "format_compare",
    "render_compare",
    "write_compare",
]

COMPARE_JSON = "compare.json"
COMPARE_HTML = "compare.html"
COMPARE_SCHEMA = 1
HEADLINE = (
    "ttft_p50",
    "ttft_p99",
    "itl_p50",
    "tpot_p50",
    "latency_p50",
    "output_tokens_per_s",
    "server_hit_rate",
)
_KIND = {"server_hit_rate": "share", "client_cached_share": "share", "goodput_percent": "percent"}


def _side(run: RunDir) -> dict[str, Any]:
    s = run.summary
    return {
        "path": str(run.path),
        "model": (s.get("config") or {}).get("model"),
        "started_at": (s.get("run") or {}).get("started_at"),
        "drbench": (s.get("tool") or {}).get("version"),
        "schema_version": run.schema_version,
    }


def compare_dict(a: RunDir, b: RunDir, comp: Comparison) -> dict[str, Any]:
    """compare.json (docs/benchmarker_guide.md, "Comparing two runs")."""
    return {
        "compare_schema": COMPARE_SCHEMA,
        "a": _side(a),
        "b": _side(b),
        "rounds": [rc.to_dict() for rc in comp.rounds],
        "only_in_a": comp.only_a,
        "only_in_b": comp.only_b,
        "gates": [g.to_dict() for g in comp.gates],
        "failed": bool(comp.failed_gates),
    }


#: The console table's words, by --lang (the figure names stay: they are --fail-on-regression's).
_WORDS: dict[Lang, dict[str, str]] = {
    "en": {
        "head": "level|round|figure|A|B|change|95% CI|requests",
        "paired": "paired, n={n}",
        "unpaired": "unpaired, n={a}/{b}",
        "only_a": "only in A: {levels}",
        "only_b": "only in B: {levels}",
        "round": "round {n}",
        "cold": "round 1 (cold)",
        "warm": "round 2 (warm)",
        "header": "B = {b} against A = {a}",
    },
    "zh": {
        "head": "级别|轮次|指标|A|B|变化|95% 置信区间|请求",
        "paired": "配对, n={n}",
        "unpaired": "未配对, n={a}/{b}",
        "only_a": "仅 A 有: {levels}",
        "only_b": "仅 B 有: {levels}",
        "round": "第 {n} 轮",
        "cold": "第 1 轮 (冷)",
        "warm": "第 2 轮 (热)",
        "header": "B = {b} 对比 A = {a}",
    },
}


def compare_header(a: Path | str, b: Path | str, lang: Lang = "en") -> str:
    """The line above the table: which run is A and which is B."""
    return _WORDS[lang]["header"].format(a=a, b=b)


def format_compare(comp: Comparison, lang: Lang = "en") -> str:
    """The console table: a row per level, round and headline (or gated) figure."""
    from tabulate import tabulate  # noqa: PLC0415 - only --compare needs it

    w = _WORDS[lang]
    shown = list(HEADLINE) + [g.gate.metric for g in comp.gates if g.gate.metric not in HEADLINE]
    rows = []
    for rc in comp.rounds:
        for name in shown:
            c = rc.change(name)
            ci = c.ci95_percent
            kind = _KIND.get(name, "ms" if name in GATEABLE else "rate")
            rows.append(
                [
                    rc.level,
                    _round_words(rc.round, lang),
                    name,
                    _txt(c.a, kind),
                    _txt(c.b, kind),
                    "-" if c.change_percent is None else f"{c.change_percent:+.1f}%",
                    "-" if ci is None else f"{ci[0]:+.1f}% .. {ci[1]:+.1f}%",
                    w["paired"].format(n=rc.n_a)
                    if rc.paired
                    else w["unpaired"].format(a=rc.n_a, b=rc.n_b),
                ]
            )
    head = w["head"].split("|")
    text = tabulate(rows, head, tablefmt="simple", disable_numparse=True)
    notes = [w["only_a"].format(levels=", ".join(comp.only_a))] if comp.only_a else []
    notes += [w["only_b"].format(levels=", ".join(comp.only_b))] if comp.only_b else []
    return "\n".join([text, *notes])


def _round_words(n: int, lang: Lang) -> str:
    """As ``charts.round_name`` (the English is the same), in ``lang``."""
    w = _WORDS[lang]
    return {1: w["cold"], 2: w["warm"]}.get(n) or w["round"].format(n=n)


def _txt(v: float | None, kind: str) -> str:
    from drbench.report.html import fmt  # noqa: PLC0415

    return fmt(v, kind)


def render_compare(a: RunDir, b: RunDir, data: dict[str, Any], js: str | None) -> str:
    """compare.html: who is A and B, the chart of changes with CIs, a table per round."""
    sa, sb = data["a"], data["b"]
    parts = [
        "<h1>drbench comparison: B against A</h1>",
        f"<p>A: <code>{esc(sa['path'])}</code> ({esc(sa['model'])}, {esc(sa['started_at'])})<br>"
        f"B: <code>{esc(sb['path'])}</code> ({esc(sb['model'])}, {esc(sb['started_at'])})</p>",
        "<p class='muted'>Change = (B - A) / A. The 95% interval is a bootstrap over requests "
        "(paired: over prompts both runs sent, so each prompt is compared with itself); an "
        "interval that holds 0 means the change may be noise. Throughput, goodput and hit rates "
        "are one figure per round: no interval.</p>",
    ]
    figures: dict[str, dict[str, Any]] = {}
    if js is not None:
        figures["compare-chart"] = compare_figure(data["rounds"], GATEABLE)
        parts.append("<div class='chart' id='compare-chart'></div>")
    else:
        parts.append("<p class='note'>Charts are left out: pip install plotly to get them.</p>")
    if data["gates"]:
        gate_rows = "".join(
            f"<tr><td class='l'>{esc(g['metric'])}={g['threshold_percent']:g}</td>"
            f"<td class='l'>{esc(g['level'])}</td><td>{g['round']}</td>"
            + cell(g["worse_percent"], "signed", f"gates.{i}.worse_percent")
            + cell((g["worse_ci95"] or [None, None])[0], "signed", f"gates.{i}.worse_ci95.0")
            + cell((g["worse_ci95"] or [None, None])[1], "signed", f"gates.{i}.worse_ci95.1")
            + f"<td class='l{' bad' if g['failed'] else ''}'>{'FAILED' if g['failed'] else 'ok'}</td></tr>"
            for i, g in enumerate(data["gates"])
        )
        parts.append(
            "<h2>Regression gates</h2><table><tr><th class='l'>gate</th><th class='l'>level</th>"
            f"<th>round</th><th>B worse by</th><th>CI low</th><th>CI high</th>"
            f"<th class='l'>verdict</th></tr>{gate_rows}</table>"
            "<p class='muted'>A gate fails when B is worse by more than its threshold and the "
            "whole 95% interval is above zero.</p>"
        )
    for i, rc in enumerate(data["rounds"]):
        how = "paired by prompt id" if rc["paired"] else "unpaired (different prompts)"
        parts.append(
            f"<h2>{esc(rc['level'])}, {esc(round_name(rc['round']))}</h2>"
            f"<p class='muted'>{how}; requests used: A {rc['n_a']}, B {rc['n_b']}</p>"
        )
        rows = []
        for j, f in enumerate(rc["figures"]):
            key = f"rounds.{i}.figures.{j}"
            kind = _KIND.get(f["metric"], "ms" if f["metric"] in GATEABLE else "rate")
            ci = f["ci95_percent"] or [None, None]
            rows.append(
                f"<tr><td class='l'>{esc(f['metric'])}</td>"
                + cell(f["a"], kind, f"{key}.a")
                + cell(f["b"], kind, f"{key}.b")
                + cell(f["change_percent"], "signed", f"{key}.change_percent")
                + cell(ci[0], "signed", f"{key}.ci95_percent.0")
                + cell(ci[1], "signed", f"{key}.ci95_percent.1")
                + f"<td class='l'>{esc(f['worse_when'])}</td></tr>"
            )
        parts.append(
            "<table><tr><th class='l'>figure (ms; tokens/s, req/s)</th><th>A</th><th>B</th>"
            "<th>change</th>"
            "<th>CI low</th><th>CI high</th><th class='l'>worse when</th></tr>"
            + "".join(rows)
            + "</table>"
        )
    for label, items in (("only in A", data["only_in_a"]), ("only in B", data["only_in_b"])):
        if items:
            parts.append(f"<p class='warn'>{label} (not compared): {esc(', '.join(items))}</p>")
    return page("drbench comparison", "\n".join(parts), figures, js)


def write_compare(
    out_dir: Path, a: RunDir, b: RunDir, comp: Comparison, js: str | None
) -> list[Path]:
    data = compare_dict(a, b, comp)
    json_path = out_dir / COMPARE_JSON
    write_json(json_path, data)
    return [json_path, write_page(out_dir / COMPARE_HTML, render_compare(a, b, data, js))]
