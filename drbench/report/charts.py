"""The charts of report.html and compare.html, as plotly.js figure specs (plain dicts).

Built from the result files' dicts (``rundir.RunDir``), so a re-rendered old run gets the same
charts as a fresh one.  Each figure is ``{"data": [...], "layout": {...}}`` exactly as
``Plotly.newPlot`` takes it: no plotly Python API is needed to build them, only its bundled
plotly.js to draw them (html.py inlines it).  Axes a reader compares heights on start at 0;
concurrency is on a log axis (1, 2, 4, 8 evenly spaced); a rate level's x is its request rate,
a trace level's its speed-up.  Pure functions, no I/O.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from drbench.levels import Level
from drbench.rundir import RunDir, level_key

__all__ = [
    "CDF_POINTS",
    "HIT_RATE_KEYS",
    "compare_figure",
    "level_figures",
    "round_name",
    "run_figures",
]

CDF_POINTS = 300  # points per CDF line: enough to read any percentile, small in the file
# cache keys of a round drawn on the hit-rate chart, when present (fractions 0..1)
HIT_RATE_KEYS = {
    "client_cached_share": "cached share (usage)",
    "server_hit_rate": "server hit rate",
    "offered_share": "offered prefix share (attainable)",
    "expected": "expected (an LRU of the server's capacity)",
}
_X_TITLE = {
    "concurrency": "concurrency (requests in flight, log scale)",
    "rate": "request rate (req/s)",
    "trace": "trace speed-up (x)",
}


def round_name(n: int) -> str:
    """``round 1 (cold)``, ``round 2 (warm)``, ``round 3``: what each line is."""
    return {1: "round 1 (cold)", 2: "round 2 (warm)"}.get(n, f"round {n}")


def run_figures(run: RunDir) -> dict[str, dict[str, Any]]:
    """The across-levels charts: TTFT, throughput/goodput and hit rates per level and round,
    and the server's figures round by round; keyed by the id of the element they go in."""
    levels = [lv for lv in run.levels if lv.get("rounds")]
    if not levels:
        return {}
    figs = {
        "ttft-p50-vs-level": _per_level(
            levels,
            "TTFT p50 by level (ms, lower is better)",
            "TTFT p50 (ms)",
            [("p50", ("metrics", "ttft_ms", "p50"), "solid")],
        ),
        "ttft-p99-vs-level": _per_level(
            levels,
            "TTFT p99 by level (ms, lower is better)",
            "TTFT p99 (ms)",
            [("p99", ("metrics", "ttft_ms", "p99"), "solid")],
        ),
        "throughput-vs-level": _per_level(
            levels,
            "Output throughput by level (tokens/s, higher is better)",
            "output tokens/s",
            [
                ("all", ("throughput", "output_tokens_per_s"), "solid"),
                ("goodput", ("goodput", "output_tokens_per_s"), "dash"),
            ],
        ),
        "hit-rate-vs-level": _hit_rates(levels),
    }
    server = _server_rounds(levels)
    if server is not None:
        figs["server-by-round"] = server
    return {k: _fit_legend(v) for k, v in figs.items() if v["data"]}


def level_figures(run: RunDir, index: int) -> dict[str, dict[str, Any]]:
    """One level's charts: TTFT and ITL CDFs by round, the per-prompt TTFT ratio to round 1,
    and TTFT over each round's time when there is more than one window."""
    lv = run.levels[index]
    key = level_key(lv)
    rounds = [int(r["round"]) for r in lv["rounds"]]
    ok = {n: [r for r in run.round_records(key, n) if r.get("ok")] for n in rounds}
    figs: dict[str, dict[str, Any]] = {}
    ttft = {
        n: [r["ttft_ms"] for r in recs if r.get("ttft_ms") is not None] for n, recs in ok.items()
    }
    itl = {n: [g for r in recs for g in r.get("itl_ms") or []] for n, recs in ok.items()}
    figs[f"ttft-cdf-{index}"] = _cdf(ttft, "TTFT distribution by round (CDF)", "TTFT (ms)")
    figs[f"itl-cdf-{index}"] = _cdf(
        itl, "Inter-token latency distribution by round (CDF)", "ITL (ms)"
    )
    figs[f"ratio-{index}"] = _ratios(ok)
    figs[f"over-time-{index}"] = _over_time(lv)
    return {k: _fit_legend(v) for k, v in figs.items() if v["data"]}


def compare_figure(rounds: list[dict[str, Any]], metrics: tuple[str, ...]) -> dict[str, Any]:
    """compare.html's chart: B's change in percent of each per-request figure, a bar per level
    and round, its 95% CI as the error bar (a bar whose bar crosses 0 may be noise)."""
    data = []
    for rc in rounds:
        figs = {f["metric"]: f for f in rc["figures"]}
        xs, ys, plus, minus = [], [], [], []
        for m in metrics:
            f = figs.get(m) or {}
            c, ci = f.get("change_percent"), f.get("ci95_percent")
            xs.append(m)
            ys.append(c)
            plus.append(None if c is None or not ci else ci[1] - c)
            minus.append(None if c is None or not ci else c - ci[0])
        data.append(
            {
                "type": "bar",
                "name": f"{rc['level']} {round_name(rc['round'])}",
                "x": xs,
                "y": ys,
                "error_y": {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus},
                "hovertemplate": "%{x}: %{y:+.1f}%<extra>%{fullData.name}</extra>",
            }
        )
    return _fit_legend(
        {
            "data": data,
            "layout": _layout(
                "Change of B against A (percent; bars: 95% bootstrap CI)",
                "figure",
                "change B vs A (%)",
                barmode="group",
                zero_line=True,
            ),
        }
    )


def _level_axis(levels: list[dict[str, Any]]) -> tuple[list[Any], dict[str, Any]]:
    """x values and x-axis of the across-levels charts: numbers on a log axis for concurrency,
    the rate or speed-up on a linear one; category labels if kinds are mixed or a rate is inf."""
    parsed = [Level.from_dict(lv["level"]) for lv in levels]
    kinds = {p.kind for p in parsed}
    xs = [p.x for p in parsed]
    if len(kinds) == 1 and all(math.isfinite(x) and x > 0 for x in xs):
        kind = parsed[0].kind
        axis: dict[str, Any] = {"title": {"text": _X_TITLE[kind]}}
        if kind == "concurrency":
            axis["type"] = "log"
            axis["tickvals"] = sorted(set(xs))
        else:
            axis["rangemode"] = "tozero"
        return xs, axis
    return [p.short for p in parsed], {"title": {"text": "level"}, "type": "category"}


def _dig(d: Any, path: tuple[str, ...]) -> float | None:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return float(d) if isinstance(d, (int, float)) and not isinstance(d, bool) else None


def _n_rounds(levels: list[dict[str, Any]]) -> list[int]:
    return sorted({int(r["round"]) for lv in levels for r in lv["rounds"]})


def _round_of(lv: dict[str, Any], n: int) -> dict[str, Any] | None:
    return next((r for r in lv["rounds"] if int(r["round"]) == n), None)


def _per_level(
    levels: list[dict[str, Any]],
    title: str,
    ytitle: str,
    series: list[tuple[str, tuple[str, ...], str]],
) -> dict[str, Any]:
    xs, xaxis = _level_axis(levels)
    data = []
    for label, path, dash in series:
        for n in _n_rounds(levels):
            ys = [_dig(_round_of(lv, n), path) for lv in levels]
            if all(y is None for y in ys):
                continue
            counts = [_dig(_round_of(lv, n), ("requests", "succeeded")) for lv in levels]
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"{label}, {round_name(n)}",
                    "legendgroup": label,
                    "x": xs,
                    "y": ys,
                    "customdata": counts,
                    "line": {"dash": dash},
                    "hovertemplate": f"{label}: %{{y:.2f}}<br>n=%{{customdata}} requests"
                    f"<extra>{round_name(n)}</extra>",
                }
            )
    layout = _layout(title, "", ytitle)
    layout["xaxis"] = {**layout["xaxis"], **xaxis}
    return {"data": data, "layout": layout}


def _hit_rates(levels: list[dict[str, Any]]) -> dict[str, Any]:
    xs, xaxis = _level_axis(levels)
    data = []
    dashes = ["solid", "dot", "dash", "dashdot", "longdash"]
    for i, (key, label) in enumerate(HIT_RATE_KEYS.items()):
        for n in _n_rounds(levels):
            ys = [_dig(_round_of(lv, n), ("cache", key)) for lv in levels]
            if all(y is None for y in ys):
                continue
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"{label}, {round_name(n)}",
                    "legendgroup": key,
                    "x": xs,
                    "y": [None if y is None else y * 100 for y in ys],
                    "line": {"dash": dashes[i % len(dashes)]},
                    "hovertemplate": f"{label}: %{{y:.1f}}%<extra>{round_name(n)}</extra>",
                }
            )
    layout = _layout(
        "Prefix cache: hit rates and shares by level (%)", "", "percent of prompt tokens"
    )
    layout["xaxis"] = {**layout["xaxis"], **xaxis}
    layout["yaxis"]["range"] = [0, 105]
    return {"data": data, "layout": layout}


def _server_rounds(levels: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Each gauge's mean and the hit rate, round by round in run order (summary.json keeps one
    value per round and metric, so this is the run's timeline at a round's resolution)."""
    xs: list[str] = []
    series: dict[str, list[float | None]] = {}
    for lv in levels:
        short = Level.from_dict(lv["level"]).short
        for r in lv["rounds"]:
            sm = r.get("server_metrics")
            if not sm:
                continue
            i = len(xs)
            xs.append(f"{short} r{r['round']}")
            values = {"hit rate (%)": None if sm.get("hit_rate") is None else sm["hit_rate"] * 100}
            metrics = sm.get("metrics") or []
            totals = [m for m in metrics if m.get("url") is None]  # several endpoints: the sums
            for m in totals or metrics:
                if m.get("kind") == "gauge" and m.get("mean") is not None:
                    values[f"{m['metric']} (mean)"] = m["mean"]
            for name, v in values.items():
                series.setdefault(name, [None] * i).append(v)
            for col in series.values():
                col.extend([None] * (i + 1 - len(col)))
    if not xs:
        return None
    data = [
        {"type": "scatter", "mode": "lines+markers", "name": name, "x": xs, "y": ys}
        for name, ys in series.items()
    ]
    layout = _layout(
        "Server metrics round by round (click a legend entry to hide it)", "level, round", "value"
    )
    layout["xaxis"]["type"] = "category"
    return {"data": data, "layout": layout}


def _cdf(values: dict[int, list[float]], title: str, xtitle: str) -> dict[str, Any]:
    data = []
    for n, vals in values.items():
        if not vals:
            continue
        arr = np.sort(np.asarray(vals, dtype=float))
        q = np.linspace(0, 1, min(CDF_POINTS, arr.size))
        xs = np.quantile(arr, q) if arr.size > CDF_POINTS else arr
        ys = q * 100 if arr.size > CDF_POINTS else np.arange(1, arr.size + 1) / arr.size * 100
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "line": {"shape": "hv"},
                "name": f"{round_name(n)}, n={arr.size}",
                "x": [round(float(x), 4) for x in xs],
                "y": [round(float(y), 3) for y in ys],
                "hovertemplate": "%{y:.1f}% at or below %{x:.2f} ms<extra>%{fullData.name}</extra>",
            }
        )
    layout = _layout(title, xtitle, "share of values at or below (%)")
    layout["xaxis"]["rangemode"] = "tozero"
    layout["yaxis"]["range"] = [0, 101]
    return {"data": data, "layout": layout}


def _ratios(ok: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per-prompt TTFT(round k) / TTFT(round 1): the box's middle line is the median prompt."""
    first = {r["prompt_id"]: r["ttft_ms"] for r in ok.get(1, []) if (r.get("ttft_ms") or 0) > 0}
    data = []
    for n, recs in ok.items():
        if n == 1:
            continue
        ratios = [
            r["ttft_ms"] / first[r["prompt_id"]]
            for r in recs
            if r.get("prompt_id") in first and (r.get("ttft_ms") or 0) > 0
        ]
        if ratios:
            data.append(
                {
                    "type": "box",
                    "name": f"{round_name(n)} / round 1, n={len(ratios)}",
                    "y": [round(x, 5) for x in ratios],
                    "boxpoints": "all",
                    "jitter": 0.4,
                    "pointpos": 0,
                }
            )
    layout = _layout(
        "Per-prompt TTFT ratio to round 1 (below 1: faster; box: quartiles, line: median)",
        "",
        "TTFT ratio (round k / round 1)",
    )
    layout["yaxis"]["rangemode"] = "tozero"
    layout["shapes"] = [
        {
            "type": "line",
            "xref": "paper",
            "x0": 0,
            "x1": 1,
            "y0": 1,
            "y1": 1,
            "line": {"dash": "dash", "color": "grey", "width": 1},
        }
    ]
    return {"data": data, "layout": layout}


def _over_time(lv: dict[str, Any]) -> dict[str, Any]:
    data = []
    for r in lv["rounds"]:
        windows = r.get("ttft_over_time") or []
        if len(windows) < 2:
            continue
        for key, dash in (("p50", "solid"), ("p90", "dot")):
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "connectgaps": True,
                    "name": f"p{key[1:]}, {round_name(int(r['round']))}",
                    "x": [(w["start_s"] + w["end_s"]) / 2 for w in windows],
                    "y": [(w.get("ttft_ms") or {}).get(key) for w in windows],
                    "line": {"dash": dash},
                }
            )
    layout = _layout(
        "TTFT over the round, by when requests were due (ms)",
        "time from the round's start (s)",
        "TTFT (ms)",
    )
    layout["xaxis"]["rangemode"] = "tozero"
    return {"data": data, "layout": layout}


def _fit_legend(fig: dict[str, Any]) -> dict[str, Any]:
    """Room under the plot for the legend's rows (about two entries a row), so that the legend
    never sits on the x axis' title."""
    rows = math.ceil(len(fig["data"]) / 2)
    layout = fig["layout"]
    layout["margin"]["b"] = 70 + 22 * rows
    layout["height"] = 360 + 22 * rows
    layout["legend"]["y"] = -(60 / (layout["height"] - layout["margin"]["b"] - 48))
    return fig


def _layout(
    title: str, xtitle: str, ytitle: str, *, barmode: str | None = None, zero_line: bool = False
) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}},
        "xaxis": {"title": {"text": xtitle}, "automargin": True},
        "yaxis": {
            "title": {"text": ytitle},
            "rangemode": "tozero" if not zero_line else "normal",
            "zeroline": True,
            "automargin": True,
        },
        "margin": {"t": 48, "l": 64, "r": 36, "b": 40},
        "height": 440,
        "legend": {"orientation": "h", "x": 0, "y": -0.18, "yanchor": "top"},
        "modebar": {"orientation": "v"},
        "hovermode": "closest",
    }
    if barmode:
        layout["barmode"] = barmode
    return layout
