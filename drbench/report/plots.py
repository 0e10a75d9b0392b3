"""plots.png: round 1 against round 2 across concurrency levels, drawn with matplotlib; with a
level that is not a closed loop (its load varies over a round), TTFT over time too.  sweep.png:
a capacity sweep's hit rates and TTFT against the working set.

matplotlib is optional (``pip install matplotlib``): without it no plot is drawn and the caller
says so once.  Pure apart from writing the one file (atomically, like every report).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from drbench.levels import Level, format_rate
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
    """Four panels: TTFT p50, TTFT p99, output tokens/s per level and round; r2/r1 TTFT ratios;
    and two more, TTFT p50 and p90 over each round's time, when a level is not a closed loop."""
    levels = [lv for lv in run.levels if lv.rounds]
    if not levels:
        return None
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    timed = [lv for lv in levels if lv.level.kind != "concurrency"]
    rows = 3 if timed else 2
    fig, axes = plt.subplots(rows, 2, figsize=(12, 4 * rows), layout="constrained")
    conc = [_tick(lv.level) for lv in levels]
    xlabel = {
        "concurrency": "concurrency",
        "rate": "request rate (req/s)",
        "trace": "trace speed-up",
    }[levels[0].level.kind]
    n_rounds = max(len(lv.rounds) for lv in levels)
    panels = [
        (axes[0][0], "TTFT p50 (ms)", lambda s: s.metrics["ttft_ms"].p50),
        (axes[0][1], "TTFT p99 (ms)", lambda s: s.metrics["ttft_ms"].p99),
        (axes[1][0], "Output tokens/s", lambda s: s.throughput.output_tokens_per_s),
    ]
    for ax, title, figure in panels:
        for r in range(n_rounds):
            ys = [figure(lv.rounds[r].summary) if r < len(lv.rounds) else None for lv in levels]
            ys = [float("nan") if y is None else y for y in ys]
            ax.plot(
                range(len(conc)),
                ys,
                marker="o",
                label=f"round {r + 1}" + (" (cold)" if r == 0 else ""),
            )
        _axis(ax, title, conc, xlabel)
    _ratio_panel(axes[1][1], levels, conc, xlabel)
    if timed:
        _over_time_panel(axes[2][0], timed, "p50")
        _over_time_panel(axes[2][1], timed, "p90")
    n = len(run.levels[0].rounds[0].records) if run.levels and run.levels[0].rounds else 0
    fig.suptitle(
        f"drbench: {run.model or ''}  cold start: {run.config.cold_start}  "
        f"round 2: {run.config.round2_mode}  n={n} prompts"
    )
    path = out_dir / PLOT_NAME
    try:
        with replacing_file(path) as tmp:  # a full disk leaves no half-drawn plots.png
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
    return path


def _tick(level: Level) -> str:
    if level.kind == "concurrency":
        return str(level.concurrency)
    if level.kind == "trace":
        return f"{format_rate(level.speedup)}x"
    return format_rate(level.rate)


def _axis(ax, title: str, conc: list[str], xlabel: str) -> None:
    ax.set_title(title)
    ax.set_xticks(range(len(conc)), conc)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)
    ax.legend()


def _ratio_panel(ax, levels, conc: list[str], xlabel: str) -> None:
    """Per-prompt TTFT(round 2) / TTFT(round 1): below the line at 1 the cache helped."""
    data = [
        list(paired_ttft_ratios(lv.rounds[0].records, lv.rounds[1].records))
        if len(lv.rounds) > 1
        else []
        for lv in levels
    ]
    ax.boxplot([d or [float("nan")] for d in data], positions=range(len(conc)))
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_title("Per-prompt TTFT ratio, round 2 / round 1")
    ax.set_xticks(range(len(conc)), conc)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)


def _over_time_panel(ax, levels, key: str) -> None:
    """TTFT p50 or p90 of each time window (at its middle), a line per level and round."""
    for lv in levels:
        for r in lv.rounds:
            windows = r.summary.ttft_over_time
            xs = [(w.start_s + w.end_s) / 2 for w in windows]
            ys = [getattr(w, f"ttft_{key}_ms") for w in windows]
            ys = [float("nan") if y is None else y for y in ys]
            ax.plot(xs, ys, marker=".", label=f"{lv.level.short} round {r.summary.round}")
    ax.set_title(f"TTFT {key} (ms) over the round, by when requests were due")
    ax.set_xlabel("time from the round's start (s)")
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
