"""plots.png: round 1 against round 2 across concurrency levels, drawn with matplotlib; with a
level that is not a closed loop (its load varies over a round), TTFT over time too.  sweep.png:
a capacity sweep's hit rates and TTFT against the working set.

matplotlib is optional (``pip install matplotlib``): without it no plot is drawn and the caller
says so once.  Pure apart from writing the one file (atomically, like every report).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from drbench.levels import Level, format_rate
from drbench.report.charts import round_name
from drbench.report.files import PLOT_NAME, replacing_file
from drbench.results import RunResult
from drbench.stats import paired_ttft_ratios
from drbench.sweep import Crossing, RoundFigures, SweepPoint, SweepSpec

__all__ = ["PLOT_NAME", "plots_available", "write_plots", "write_sweep_plot"]


def plots_available() -> bool:
    try:
        import matplotlib  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def write_plots(out_dir: Path, run: RunResult) -> Path | None:
    """TTFT p50 and p99, output tokens/s and the prefix-cache hit rates per level and round;
    the per-prompt TTFT ratio to round 1 per level; and, when a level is not a closed loop,
    TTFT p50 and p90 over each round's time.  Every y axis starts at 0 (heights compare
    honestly); concurrency is on a log axis, a rate level's x is its rate, a trace's its
    speed-up."""
    levels = [lv for lv in run.levels if lv.rounds]
    if not levels:
        return None
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    timed = [lv for lv in levels if lv.level.kind != "concurrency"]
    mosaic: list[Any] = [["p50", "p99"], ["tput", "hit"], ["ratio", "ratio"]]
    if timed:
        mosaic.append(["t50", "t90"])
    fig, axes = plt.subplot_mosaic(mosaic, figsize=(12, 4 * len(mosaic)), layout="constrained")
    xs, ticks, xlabel, log = _x_axis([lv.level for lv in levels])
    n_rounds = max(len(lv.rounds) for lv in levels)
    panels = [
        ("p50", "TTFT p50 (lower is better)", "TTFT (ms)", lambda s: s.metrics["ttft_ms"].p50),
        ("p99", "TTFT p99 (lower is better)", "TTFT (ms)", lambda s: s.metrics["ttft_ms"].p99),
        (
            "tput",
            "Output throughput (higher is better)",
            "output tokens/s",
            lambda s: s.throughput.output_tokens_per_s,
        ),
    ]
    for key, title, ylabel, figure in panels:
        ax = axes[key]
        for r in range(n_rounds):
            ys = [figure(lv.rounds[r].summary) if r < len(lv.rounds) else None for lv in levels]
            ax.plot(xs, _nan(ys), marker="o", label=round_name(r + 1))
        _axis(ax, title, ylabel, xs, ticks, xlabel, log)
    _hit_rate_panel(axes["hit"], levels, n_rounds, xs, ticks, xlabel, log)
    _ratio_panel(axes["ratio"], levels, ticks, xlabel.replace(", log scale", ""))
    if timed:
        _over_time_panel(axes["t50"], timed, "p50")
        _over_time_panel(axes["t90"], timed, "p90")
    n = len(levels[0].rounds[0].records)
    fig.suptitle(
        " · ".join(
            [
                f"drbench: {run.model or 'model ?'}",
                f"cold start: {run.config.cold_start}",
                f"round 2: {run.config.round2_mode}",
                f"n={n} prompts per round",
            ]
        )
    )
    path = out_dir / PLOT_NAME
    try:
        with replacing_file(path) as tmp:  # a full disk leaves no half-drawn plots.png
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
    return path


def _nan(ys: list[float | None]) -> list[float]:
    return [float("nan") if y is None else y for y in ys]


def _x_axis(levels: list[Level]) -> tuple[list[float], list[str], str, bool]:
    """x positions, tick labels, axis label, log scale: numbers when every level is one kind
    with a finite x (log for concurrency), else one slot per level."""
    kinds = {lv.kind for lv in levels}
    ticks = [_tick(lv) for lv in levels]
    if len(kinds) == 1 and all(math.isfinite(lv.x) and lv.x > 0 for lv in levels):
        kind = levels[0].kind
        label = {
            "concurrency": "concurrency (requests in flight, log scale)",
            "rate": "request rate (req/s)",
            "trace": "trace speed-up (x)",
        }[kind]
        return [lv.x for lv in levels], ticks, label, kind == "concurrency" and len(levels) > 1
    return [float(i) for i in range(len(levels))], ticks, "level", False


def _tick(level: Level) -> str:
    if level.kind == "concurrency":
        return str(level.concurrency)
    if level.kind == "trace":
        return f"{format_rate(level.speedup)}x"
    return format_rate(level.rate)


def _axis(
    ax, title: str, ylabel: str, xs, ticks, xlabel: str, log: bool, *, legend: bool = True
) -> None:
    ax.set_title(title)
    if log:
        ax.set_xscale("log")
        ax.minorticks_off()
    ax.set_xticks(xs, ticks)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend()


def _hit_rate_panel(ax, levels, n_rounds: int, xs, ticks, xlabel: str, log: bool) -> None:
    """What the cache reused per round: the server's hit rate, the usage's cached share and the
    prefix share the round offered (dotted), in percent."""
    series: list[tuple[str, Literal["-", "--", ":"], Callable[[Any], float | None]]] = [
        ("server hit rate", "-", lambda r: r.server_hit_rate),
        ("cached share (usage)", "--", lambda r: r.summary.cache.client_cached_share),
        ("offered share", ":", lambda r: r.offered_share),
    ]
    from matplotlib.lines import Line2D  # noqa: PLC0415

    colors = plt_colors()  # a colour per round (as the other panels), a line style per figure
    shown = []
    for name, style, value in series:
        for r in range(n_rounds):
            ys = [value(lv.rounds[r]) if r < len(lv.rounds) else None for lv in levels]
            if all(y is None for y in ys):
                continue
            pct = [None if y is None else y * 100 for y in ys]
            ax.plot(xs, _nan(pct), style, marker="o", color=colors[r % len(colors)])
            if name not in shown:
                shown.append(name)
    _axis(
        ax,
        "Prefix cache hit rate",
        "percent of prompt tokens",
        xs,
        ticks,
        xlabel,
        log,
        legend=False,
    )
    ax.set_ylim(0, 105)
    if not shown:
        ax.text(0.5, 0.5, "no cache figures in this run", ha="center", transform=ax.transAxes)
        return
    rounds = ax.legend(
        handles=[
            Line2D([], [], color=colors[r % len(colors)], marker="o", label=round_name(r + 1))
            for r in range(n_rounds)
        ],
        loc="center left",
        fontsize="small",
    )
    ax.add_artist(rounds)
    ax.legend(
        handles=[
            Line2D([], [], color="black", linestyle=style, label=name)
            for name, style, _ in series
            if name in shown
        ],
        loc="center right",
        fontsize="small",
    )


def plt_colors() -> list[str]:
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return list(plt.rcParams["axes.prop_cycle"].by_key()["color"])


def _ratio_panel(ax, levels, ticks: list[str], xlabel: str) -> None:
    """Per-prompt TTFT(round 2) / TTFT(round 1): below the line at 1 the cache helped."""
    from matplotlib.lines import Line2D  # noqa: PLC0415

    data = [
        list(paired_ttft_ratios(lv.rounds[0].records, lv.rounds[1].records))
        if len(lv.rounds) > 1
        else []
        for lv in levels
    ]
    pos = list(range(len(ticks)))
    ax.boxplot([d or [float("nan")] for d in data], positions=pos, medianprops={"color": "C1"})
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_title("Per-prompt TTFT ratio, round 2 (warm) / round 1 (cold): below 1 the cache helped")
    ax.set_xticks(pos, [f"{t}\nn={len(d)} prompts" for t, d in zip(ticks, data, strict=True)])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("TTFT ratio")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(
        handles=[
            Line2D([], [], color="C1", label="median prompt (box: middle half, whiskers: 1.5 IQR)"),
            Line2D([], [], color="grey", linestyle="--", label="no change (1.0)"),
        ],
        loc="best",
    )


def _over_time_panel(ax, levels, key: str) -> None:
    """TTFT p50 or p90 of each time window (at its middle), a line per level and round."""
    for lv in levels:
        for r in lv.rounds:
            windows = r.summary.ttft_over_time
            xs = [(w.start_s + w.end_s) / 2 for w in windows]
            ys = _nan([getattr(w, f"ttft_{key}_ms") for w in windows])
            ax.plot(xs, ys, marker=".", label=f"{lv.level.short} {round_name(r.summary.round)}")
    ax.set_title(f"TTFT {key} over the round, by when requests were due")
    ax.set_xlabel("time from the round's start (s)")
    ax.set_ylabel("TTFT (ms)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()


def write_sweep_plot(
    path: Path,
    spec: SweepSpec,
    points: Sequence[SweepPoint],
    found: Sequence[Crossing],
    rnd: int,
) -> Path | None:
    """Two panels against the swept key: the hit rates (the server's and usage's cached share
    of the measured round, round 1's when its prompts reuse each other, the oracle's expected
    rate when there is one), the threshold and where it is crossed; TTFT p50 and p90."""
    levels = list(dict.fromkeys(lp.level for p in points for lp in p.levels))
    if not levels:
        return None
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, (hit_ax, ttft_ax) = plt.subplots(1, 2, figsize=(13, 4.5), layout="constrained")
    rounds = [rnd] + ([1] if rnd != 1 and _round1_reuses(points) else [])
    hit_lines: list[tuple[str, Callable[[RoundFigures], float | None]]] = [
        ("server hit rate", lambda f: f.server_hit_rate),
        ("cached share", lambda f: f.cached_share),
        ("expected (oracle)", lambda f: f.expected_hit_rate),
    ]
    for level in levels:
        tag = f"{level} " if len(levels) > 1 else ""
        for r in rounds:
            for name, figure in hit_lines:
                xs, ys = _series(points, level, r, figure)
                if ys:
                    style = "--" if name.startswith("expected") else "-"
                    hit_ax.plot(xs, ys, style, marker="o", label=f"{tag}{name} r{r}")
            for q, figure in (("p50", _p50), ("p90", _p90)):
                xs, ys = _series(points, level, r, figure)
                if ys:
                    ttft_ax.plot(xs, ys, marker="o", label=f"{tag}TTFT {q} r{r}")
    threshold = found[0].threshold if found else None
    if threshold is not None:
        hit_ax.axhline(threshold, color="grey", linestyle=":", linewidth=1, label="threshold")
    for c in found:
        if c.status == "crossed" and c.value is not None:
            hit_ax.axvline(c.value, color="red", linestyle=":", linewidth=1)
    where = f"{spec.key} ({spec.workload[0]})"
    hit_ax.set_title(f"Hit rate against the working set (measured round {rnd})")
    hit_ax.set_ylim(-0.02, 1.02)
    ttft_ax.set_title("TTFT (ms) against the working set")
    for ax in (hit_ax, ttft_ax):
        ax.set_xlabel(where)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    fig.suptitle(f"drbench capacity sweep: {' '.join(spec.workload)}")
    try:
        with replacing_file(path) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
    return path


def _round1_reuses(points: Sequence[SweepPoint]) -> bool:
    """Round 1 is worth a line when its prompts could reuse each other (shared prefixes,
    several questions per document): then it shows the knee within one pass."""
    return any(
        (f := lp.round(1)) is not None and (f.offered_share or 0) > 0.01
        for p in points
        for lp in p.levels
    )


def _series(
    points: Sequence[SweepPoint],
    level: str,
    rnd: int,
    figure: Callable[[RoundFigures], float | None],
) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for p in points:
        for lp in p.levels:
            f = lp.round(rnd) if lp.level == level else None
            y = figure(f) if f is not None else None
            if y is not None:
                xs.append(p.value)
                ys.append(y)
    return xs, ys


def _p50(f: RoundFigures) -> float | None:
    return f.ttft_p50_ms


def _p90(f: RoundFigures) -> float | None:
    return f.ttft_p90_ms
