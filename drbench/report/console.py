"""Console report text: the original README's per-round table, the round comparison, a run overview.

Pure: each function returns a string (the CLI prints it).  ``lang="zh"`` reproduces the Chinese
labels of the original README; numbers and column names are the same in both languages.
"""

from __future__ import annotations

import math
from typing import Any

from tabulate import tabulate
from wcwidth import wcswidth

from drbench.levels import Level, format_rate
from drbench.messages import Message, render
from drbench.oracle import NO_CAPACITY
from drbench.records import Lang
from drbench.redact import redact_text
from drbench.results import LevelResult, RoundResult, RunResult
from drbench.stats import METRICS, Change, Comparison, RoundComparison, RoundSummary

__all__ = [
    "LABELS",
    "display_width",
    "format_comparison",
    "format_level",
    "format_overview",
    "format_round",
    "format_server",
    "format_turns",
]

RULE = 120
_ROW_NAMES = {
    "ttft_ms": "TTFT (ms)",
    "itl_ms": "ITL (ms)",
    "tpot_ms": "TPOT (ms)",
    "latency_ms": "Latency (ms)",
}

LABELS: dict[Lang, dict[str, str]] = {
    "en": {
        "title": "{level} | Round {r} metrics",
        "counts": "Total requests: {n} | Succeeded: {ok} | Failed: {failed} | Duration: {dur} s",
        "tokens": "Avg input tokens: {inp} | Avg output tokens: {out}",
        "throughput": "Throughput:",
        "token_tp": "  Token throughput: {v} tokens/sec (output)",
        "total_tp": "  Total token throughput: {v} tokens/sec (input + output)",
        "request_tp": "  Request throughput: {v} requests/sec",
        "goodput": "Goodput (SLO):",
        "good": "  Requests meeting the SLO: {good} / {total} ({pct}%)",
        "good_rates": "  Good requests/sec: {rps} | Good output tokens/sec: {tps}",
        "slo_bound": "  SLO {metric} {pct} <= {bound} ms: {value} ms ({verdict})",
        "met": "met",
        "missed": "missed",
        "no_value": "no value",
        "cache": "Cache:",
        "offered": "  Offered prefix share (an unlimited cache; {unit}, blocks of {block} from {source}): {v}",
        "source_server": "the server's metrics",
        "source_flag": "the flag",
        "source_default": "vLLM's GPU default",
        "expected": "  Expected hit rate (an LRU of {cap} tokens from {source}, replayed on the round): {v}",
        "expected_missing": "  Expected hit rate: {why}",
        "efficiency": "  Cache efficiency ({measured} / offered share): {v}",
        "measured_usage": "usage cached share",
        "measured_server": "server hit rate",
        "unit_tokens": "tokens",
        "unit_estimated tokens": "estimated tokens",
        "client_share": "  Cached prompt tokens (usage): {v}",
        "server_rate": "  Server prefix-cache hit rate (counter deltas): {v}",
        "errors": "Failed requests (most common errors):",
        "compare": "Round 2 vs round 1 | {level} | cold start: {cold} | round 2: {mode} | n={n} prompts",
        "ratio": "Per-prompt TTFT ratio r2/r1: median {median} | geomean {geomean}{ci} | faster in round 2: {faster} of {n} prompts",
        "cmp_tokens": "Output tokens/s",
        "cmp_requests": "Requests/s",
        "cmp_goodput": "Goodput %",
        "cmp_offered": "Offered share",
        "cmp_expected": "Expected hit",
        "cmp_efficiency": "Efficiency",
        "cmp_cached": "Cached share",
        "cmp_hit": "Server hit rate",
        "overview": "Summary",
        "interrupted": " (interrupted)",
        "change": "R{k} vs R1",
        "level_block": "{level} | cold start: {cold} | round 2: {mode} | {n} prompts",
        "server": "Server metrics (Prometheus):",
        "load": "Load:",
        "in_flight": "  Requests in flight: mean {mean} | peak {peak}",
        "lag": "  Send lag behind the schedule (ms): p50 {p50} | p99 {p99} | max {max}",
        "truncated": "  Truncated by --max-round-duration: {unsent} requests not sent",
        "client": "  Client: {procs}",
        "over_time": "TTFT over time (requests by when each was due, {w} s windows):",
        "rounds_table": "Every round against round 1 and against the round before:",
        "vs_first": "Round {k} vs round 1 | {level}: {figures}",
        "vs_first_figures": "TTFT p50 {p50} | TTFT p90 {p90} | TTFT ratio geomean {ratio} | "
        "Cached {cached} | Hit rate {hit}",
        "turns": "TTFT by turn | {level} | round k = turn k of every conversation",
        "contexts": "TTFT by context length | {level} | prompt tokens, every round",
    },
    "zh": {
        "title": "{level} | 第 {r} 轮性能指标",
        "counts": "总请求数: {n} | 成功: {ok} | 失败: {failed} | 测试时长: {dur} 秒",
        "tokens": "平均输入 tokens: {inp} | 平均输出 tokens: {out}",
        "throughput": "吞吐量:",
        "token_tp": "  Token 吞吐量: {v} tokens/sec",
        "total_tp": "  总 Token 吞吐量 (输入+输出): {v} tokens/sec",
        "request_tp": "  Request 吞吐量: {v} requests/sec",
        "goodput": "有效吞吐 (SLO):",
        "good": "  满足 SLO 的请求数: {good} / {total} ({pct}%)",
        "good_rates": "  有效请求吞吐量: {rps} requests/sec | 有效输出 tokens: {tps} tokens/sec",
        "slo_bound": "  SLO {metric} {pct} <= {bound} ms: {value} ms ({verdict})",
        "met": "达标",
        "missed": "未达标",
        "no_value": "无数据",
        "cache": "缓存:",
        "offered": "  可复用的前缀占比 (无限容量缓存; {unit}, 块大小 {block}, 来自 {source}): {v}",
        "source_server": "服务端指标",
        "source_flag": "命令行参数",
        "source_default": "vLLM GPU 默认值",
        "expected": "  预期命中率 (容量 {cap} tokens 的 LRU, 来自 {source}, 按本轮重放): {v}",
        "expected_missing": "  预期命中率: {why}",
        "efficiency": "  缓存效率 ({measured} / 可复用前缀): {v}",
        "measured_usage": "usage 缓存占比",
        "measured_server": "服务端命中率",
        "unit_tokens": "tokens",
        "unit_estimated tokens": "估算 tokens",
        "client_share": "  缓存命中的输入 tokens (usage): {v}",
        "server_rate": "  服务端前缀缓存命中率 (计数器差值): {v}",
        "errors": "失败请求 (最常见的错误):",
        "compare": "第 2 轮 vs 第 1 轮 | {level} | 冷启动方式: {cold} | 第 2 轮模式: {mode} | n={n} 个提示",
        "ratio": "逐条 TTFT 比值 (第 2 轮/第 1 轮): 中位数 {median} | 几何平均 {geomean}{ci} | 第 2 轮更快的比例: {faster} (共 {n} 条)",
        "cmp_tokens": "输出 tokens/s",
        "cmp_requests": "请求/s",
        "cmp_goodput": "有效吞吐 %",
        "cmp_offered": "可复用前缀",
        "cmp_expected": "预期命中率",
        "cmp_efficiency": "缓存效率",
        "cmp_cached": "缓存命中 tokens",
        "cmp_hit": "服务端命中率",
        "overview": "汇总",
        "interrupted": " (已中断)",
        "change": "R{k} 较 R1",
        "level_block": "{level} | 冷启动方式: {cold} | 第 2 轮模式: {mode} | {n} 个提示",
        "server": "服务端指标 (Prometheus):",
        "load": "负载:",
        "in_flight": "  在途请求数: 平均 {mean} | 峰值 {peak}",
        "lag": "  相对计划的发送延迟 (ms): p50 {p50} | p99 {p99} | 最大 {max}",
        "truncated": "  被 --max-round-duration 截断: {unsent} 个请求未发送",
        "client": "  客户端: {procs}",
        "over_time": "TTFT 随时间变化 (按每个请求的计划发送时间, 窗口 {w} 秒):",
        "rounds_table": "各轮与第 1 轮及与前一轮的对比:",
        "vs_first": "第 {k} 轮 vs 第 1 轮 | {level}: {figures}",
        "vs_first_figures": "TTFT p50 {p50} | TTFT p90 {p90} | TTFT 比值几何平均 {ratio} | "
        "缓存命中 {cached} | 命中率 {hit}",
        "turns": "按轮次的 TTFT | {level} | 第 k 轮 = 每个对话的第 k 轮",
        "contexts": "按上下文长度的 TTFT | {level} | 输入 tokens, 所有轮次",
    },
}


#: Table headers and cell words, per language; units in every header.
H: dict[Lang, dict[str, str]] = {
    "en": {
        "metric": "Metric",
        "avg": "Avg",
        "min": "Min",
        "max": "Max",
        "stddev": "Stddev",
        "p50": "P50",
        "p90": "P90",
        "p99": "P99",
        "rows": "TTFT (ms)|ITL (ms)|TPOT (ms)|Latency (ms)",
        "kind": "Kind",
        "before": "Before",
        "after": "After",
        "delta": "Delta",
        "mean": "Mean",
        "level": "Level",
        "round": "Round",
        "ok": "OK",
        "vs_r1": "vs R1",
        "latency": "Lat",
        "out_tps": "Out (tok/s)",
        "goodput_pct": "Goodput (%)",
        "offered_pct": "Offered (%)",
        "expected_pct": "Expected (%)",
        "efficiency_pct": "Eff. (%)",
        "cached_pct": "Cached (%)",
        "hit_pct": "Hit rate (%)",
        "turn": "Turn",
        "context": "Context (tokens)",
        "context_mean": "Mean (tokens)",
        "cached": "Cached",
        "hit": "Hit rate",
        "vs": "vs",
        "ratio_ci": "TTFT ratio geomean [95% CI]",
        "window": "Window (s)",
        "started": "Started",
        "failed": "Failed",
    },
    "zh": {
        "metric": "指标",
        "avg": "平均",
        "min": "最小",
        "max": "最大",
        "stddev": "标准差",
        "p50": "P50",
        "p90": "P90",
        "p99": "P99",
        "rows": "TTFT (ms)|ITL (ms)|TPOT (ms)|延迟 (ms)",
        "kind": "类型",
        "before": "之前",
        "after": "之后",
        "delta": "差值",
        "mean": "均值",
        "level": "级别",
        "round": "轮次",
        "ok": "成功",
        "vs_r1": "较第1轮",
        "latency": "延迟",
        "out_tps": "输出 (tok/s)",
        "goodput_pct": "有效吞吐 (%)",
        "offered_pct": "可复用 (%)",
        "expected_pct": "预期命中 (%)",
        "efficiency_pct": "效率 (%)",
        "cached_pct": "缓存 (%)",
        "hit_pct": "命中率 (%)",
        "turn": "对话轮次",
        "context": "上下文 (tokens)",
        "context_mean": "均值 (tokens)",
        "cached": "缓存命中",
        "hit": "命中率",
        "vs": "对比",
        "ratio_ci": "TTFT 比值几何平均 [95% CI]",
        "window": "窗口 (秒)",
        "started": "发出",
        "failed": "失败",
    },
}


def format_round(result: RoundResult, lang: Lang = "en") -> str:
    """The per-round block of the original README: header lines, metric table, throughput, goodput."""
    L, s = LABELS[lang], result.summary
    lines = ["=" * RULE, L["title"].format(level=level_title(s.level, lang), r=s.round), "=" * RULE]
    lines.append(
        L["counts"].format(
            n=s.requests_total, ok=s.succeeded, failed=s.failed, dur=_num(s.duration_s)
        )
    )
    lines.append(
        L["tokens"].format(inp=_num(s.input_tokens_avg, 1), out=_num(s.output_tokens_avg, 1))
    )
    lines.append("-" * RULE)
    keys = ("avg", *s.metrics["ttft_ms"].keys, "min", "max", "stddev")
    rows = [[_row_name(m, lang), *(_num(s.metrics[m].get(k)) for k in keys)] for m in METRICS]
    headers = (H[lang]["metric"], *(H[lang].get(k, k.upper()) for k in keys))
    lines.append(_table(rows, tuple(headers)))
    tp = s.throughput
    lines += ["", L["throughput"], L["token_tp"].format(v=_num(tp.output_tokens_per_s))]
    lines += [L["total_tp"].format(v=_num(tp.total_tokens_per_s))]
    lines += [L["request_tp"].format(v=_num(tp.requests_per_s))]
    if s.goodput is not None:
        g = s.goodput
        lines += [
            "",
            L["goodput"],
            L["good"].format(good=g.good, total=g.total, pct=_num(g.percent)),
        ]
        lines.append(
            L["good_rates"].format(rps=_num(g.requests_per_s), tps=_num(g.output_tokens_per_s))
        )
    if s.goodput is None and s.slo_bounds:  # percentile bounds only: no goodput to show
        lines += ["", L["goodput"]]
    lines += _bound_lines(s, lang)
    lines += ["", *_load_lines(result, lang)]
    if s.level.kind != "concurrency" and s.ttft_over_time:  # open loop, trace: load varies
        lines += ["", *_over_time_lines(result, lang)]
    lines += ["", L["cache"], *_offered_lines(result, lang)]
    lines.append(L["client_share"].format(v=_pct(s.cache.client_cached_share)))
    lines.append(L["server_rate"].format(v=_pct(result.server_hit_rate)))
    lines += _efficiency_lines(result, lang)
    if s.errors:
        lines += ["", L["errors"]]
        lines += [f"  {n} x [{kind}] {redact_text(msg)}" for kind, msg, n in s.errors]
    if result.server is not None:
        lines += ["", L["server"], format_server(result.server.to_dict(), lang)]
    return "\n".join(lines)


def _bound_lines(s: RoundSummary, lang: Lang) -> list[str]:
    """An SLO's percentile bounds: ``SLO TTFT P95 <= 500 ms: 412.30 ms (met)``."""
    L = LABELS[lang]
    verdict = {True: L["met"], False: L["missed"], None: L["no_value"]}
    lines = []
    for b in s.slo_bounds:
        metric, _, pct = b.key.removesuffix("_ms").rpartition("_")
        lines.append(
            L["slo_bound"].format(
                metric=_ROW_NAMES[f"{metric}_ms"].split(" (")[0],
                pct=pct.upper(),
                bound=_num(b.bound_ms),
                value=_num(b.value_ms),
                verdict=verdict[b.met],
            )
        )
    return lines


def _offered_lines(result: RoundResult, lang: Lang) -> list[str]:
    """The reuse the round's prompts offered, first: the yardstick for the measured lines."""
    L, offer = LABELS[lang], result.offered
    if offer is None:
        return []
    return [
        L["offered"].format(
            unit=L[f"unit_{offer.unit}"],
            block=offer.block_size,
            source=L[f"source_{offer.block_source}"],
            v=_pct(offer.share),
        ),
        *_expected_lines(result, lang),
    ]


def _expected_lines(result: RoundResult, lang: Lang) -> list[str]:
    """The oracle's expected hit rate beside the offered share, or how to get it."""
    L, exp = LABELS[lang], result.expected
    if result.offered is None:
        return []
    if exp is None:
        return [L["expected_missing"].format(why=render(NO_CAPACITY, lang))]
    source = L[f"source_{exp.capacity_source}"]
    return [L["expected"].format(cap=exp.capacity_tokens, source=source, v=_pct(exp.share))]


def _efficiency_lines(result: RoundResult, lang: Lang) -> list[str]:
    """Measured / attainable, after the measured lines it is made of."""
    L, eff = LABELS[lang], result.efficiency
    measured = result.measured_share[1]
    if eff is None or measured is None:
        return []
    return [L["efficiency"].format(measured=L[f"measured_{measured}"], v=_pct(eff))]


def _load_lines(result: RoundResult, lang: Lang) -> list[str]:
    """What the server really got: requests in flight, the lag behind an open loop's schedule,
    a truncation, and the client's own load (loop lag p99, CPU) per process."""
    L, load = LABELS[lang], result.summary.load
    lines = [L["load"]]
    if load is not None:
        lines.append(
            L["in_flight"].format(mean=_num(load.concurrency_mean), peak=load.concurrency_peak)
        )
        lag = load.send_lag_ms
        if lag.count:
            lines.append(
                L["lag"].format(p50=_num(lag.p50, 3), p99=_num(lag.p99, 3), max=_num(lag.max, 3))
            )
    if result.truncated:
        lines.append(L["truncated"].format(unsent=result.unsent))
    if result.client:
        main, worker, loop_lag = (
            ("主进程", "工作进程", "事件循环延迟")
            if lang == "zh"
            else ("main", "worker", "loop lag")
        )
        procs = " | ".join(
            f"{main if p.worker is None else f'{worker} {p.worker}'}"
            f"{'' if p.host is None else f'@{p.host}'} {loop_lag} p99 "
            f"{_num(p.loop_lag_p99_ms)} ms, CPU {_num(p.cpu_percent, 0)}%"
            for p in result.client
        )
        lines.append(L["client"].format(procs=procs))
    return lines


def format_server(report: dict[str, Any], lang: Lang = "en") -> str:
    """The Prometheus figures of one round: kind, before, after, delta (counters, histogram
    counts), mean and max (gauges over the round's samples; histogram mean from sum/count)."""
    metrics = report.get("metrics", [])
    several = len({m.get("url") for m in metrics if m.get("url")}) > 1
    rows = []
    for m in metrics:
        where = [m.get("url") or "(all)"] if several else []
        values = [m.get(k) for k in ("before", "after", "delta", "mean", "max")]
        rows.append([m.get("metric"), *where, m.get("kind"), *map(_val, values)])
    h = H[lang]
    headers = (
        h["metric"],
        *(["URL"] if several else []),
        *(h[k] for k in ("kind", "before", "after", "delta", "mean", "max")),
    )
    table = _table(rows, headers)
    lines = [table if rows else "  (no matching metrics found)"]
    for name, value in (report.get("derived") or {}).items():
        lines.append(f"  {name}: {_pct(value)}")
    for miss in report.get("missing") or []:
        lines.append(
            f"  missing: {miss.get('metric') or '(all metrics)'} at {miss.get('url')}: {miss.get('reason')}"
        )
    return "\n".join(lines)


def format_comparison(level: LevelResult, lang: Lang = "en") -> str:
    """Round 2 against round 1 at one level, paired by prompt."""
    c: Comparison | None = level.comparison
    if c is None:
        return ""
    header = LABELS[lang]["compare"].format(
        level=level_name(level.level, lang),
        cold=level.cold_start,
        mode=level.round2_mode,
        n=c.n_pairs,
    )
    lines = ["-" * RULE, header]
    for key in ("p50", "avg", "p90", "p99"):
        lines.append(f"  TTFT {key:<4} {_change(c.ttft_ms[key], ' ms')}")
    L = LABELS[lang]
    lines.append(_ratio_line(c, lang))
    lines.append(f"  {_pad(L['cmp_tokens'], 16)} {_change(c.output_tokens_per_s)}")
    lines.append(f"  {_pad(L['cmp_requests'], 16)} {_change(c.requests_per_s)}")
    if c.goodput_percent.before is not None or c.goodput_percent.after is not None:
        lines.append(f"  {_pad(L['cmp_goodput'], 16)} {_change(c.goodput_percent)}")
    share, hit = c.client_cached_share, c.server_hit_rate
    offers = [r.offered_share for r in level.rounds[:2]]
    if any(v is not None for v in offers):
        lines.append(f"  {_pad(L['cmp_offered'], 16)} {_pct(offers[0])} -> {_pct(offers[-1])}")
    for key, values in (
        ("cmp_expected", [r.expected_share for r in level.rounds[:2]]),
        ("cmp_efficiency", [r.efficiency for r in level.rounds[:2]]),
    ):
        if any(v is not None for v in values):
            lines.append(f"  {_pad(L[key], 16)} {_pct(values[0])} -> {_pct(values[-1])}")
    lines.append(f"  {_pad(L['cmp_cached'], 16)} {_pct(share.before)} -> {_pct(share.after)}")
    lines.append(f"  {_pad(L['cmp_hit'], 16)} {_pct(hit.before)} -> {_pct(hit.after)}")
    if len(level.comparisons) > 1:  # 3+ rounds: every round against round 1 and the one before
        lines += ["", L["rounds_table"], _indent(_comparisons_table(level, lang))]
    lines.extend(f"  ! {redact_text(render(w, lang))}" for w in level.warnings)
    return "\n".join(lines)


def format_overview(run: RunResult, lang: Lang = "en") -> str:
    """The closing table: one row per (level, round) with units in every header, and for each
    later round the change against round 1 beside TTFT and output tokens/s.  Columns nobody
    measured (offered share, hit rate) are left out; without a server hit rate, one line says
    how to get it."""
    h, pcts = H[lang], _overview_percentiles(run)
    rounds = [(lv, r) for lv in run.levels for r in lv.rounds]
    hit = any(r.server_hit_rate is not None for _, r in rounds)
    offered = any(r.offered_share is not None for _, r in rounds)
    expected = any(r.expected_share is not None for _, r in rounds)
    efficiency = any(r.efficiency is not None for _, r in rounds)
    goodput = any(r.summary.goodput is not None for _, r in rounds)
    headers = [h["level"], h["round"], h["ok"]]
    for p in pcts:
        headers += [f"TTFT {h.get(p, p.upper())} (ms)", h["vs_r1"]]
    headers += [f"ITL {h['p50']} (ms)", f"{h['latency']} {h['p50']} (ms)"]
    headers += [h["out_tps"], h["vs_r1"]]
    headers += [h["goodput_pct"]] if goodput else []
    headers += [h["offered_pct"]] if offered else []
    headers += [h["expected_pct"]] if expected else []
    headers += [h["cached_pct"]]
    headers += [h["hit_pct"]] if hit else []
    headers += [h["efficiency_pct"]] if efficiency else []
    rows = []
    for level, r in rounds:
        s, first = r.summary, level.rounds[0].summary
        later = s.round > 1
        row: list[Any] = [s.level.short, s.round, f"{s.succeeded}/{s.requests_total}"]
        for p in pcts:
            now, then = s.metrics["ttft_ms"].get(p), first.metrics["ttft_ms"].get(p)
            row += [_num(now), _pct_change(Change(then, now)) if later else ""]
        row += [_num(s.metrics["itl_ms"].p50), _num(s.metrics["latency_ms"].p50)]
        tps = s.throughput.output_tokens_per_s
        then_tps = first.throughput.output_tokens_per_s
        row += [_num(tps), _pct_change(Change(then_tps, tps)) if later else ""]
        if goodput:
            row.append(_num(s.goodput.percent, 1) if s.goodput else "-")
        if offered:
            row.append(_pct_num(r.offered_share))
        if expected:
            row.append(_pct_num(r.expected_share))
        row.append(_pct_num(s.cache.client_cached_share))
        if hit:
            row.append(_pct_num(r.server_hit_rate))
        if efficiency:
            row.append(_pct_num(r.efficiency))
        rows.append(row)
    title = LABELS[lang]["overview"] + (LABELS[lang]["interrupted"] if run.interrupted else "")
    lines = ["=" * RULE, title, _table(rows, tuple(headers), stacked=True)]
    if rows and not hit:
        lines.append(render(Message("no_prometheus"), lang))
    return "\n".join(lines + _last_vs_first_lines(run, lang))


def _ratio_line(c: Comparison, lang: Lang) -> str:
    """The per-prompt TTFT ratio round 2 / round 1: median, geomean with its CI, share faster."""
    ci = c.ratio_geomean_ci95
    ci_text = f" [95% CI {_num(ci[0], 3)}-{_num(ci[1], 3)}]" if ci else ""
    ratio = LABELS[lang]["ratio"].format(
        median=_num(c.ratio_median, 3),
        geomean=_num(c.ratio_geomean, 3),
        ci=ci_text,
        faster=_pct(c.share_faster),
        n=c.n_pairs,
    )
    return "  " + ratio


def format_level(level: LevelResult, lang: Lang = "en") -> str:
    """A level's answer, compact: a row per round (the chosen TTFT percentiles, ITL and latency
    P50, output tokens/s, goodput, offered and cached share, hit rate), a row of changes of the last round
    against round 1, the per-prompt TTFT ratio, and the level's warnings.  The full per-round
    tables are ``format_round`` (--verbose)."""
    if not level.rounds:
        return ""
    h, L = H[lang], LABELS[lang]
    pcts = level.rounds[0].summary.metrics["ttft_ms"].keys
    hit = any(r.server_hit_rate is not None for r in level.rounds)
    offered = any(r.offered_share is not None for r in level.rounds)
    goodput = any(r.summary.goodput is not None for r in level.rounds)
    headers = [h["round"], h["ok"], *(f"TTFT {h.get(p, p.upper())} (ms)" for p in pcts)]
    headers += [f"ITL {h['p50']} (ms)", f"{h['latency']} {h['p50']} (ms)", h["out_tps"]]
    headers += [h["goodput_pct"]] if goodput else []
    headers += [h["offered_pct"]] if offered else []
    headers += [h["cached_pct"]]
    headers += [h["hit_pct"]] if hit else []

    def figures(r: RoundResult) -> list[float | None]:
        s = r.summary
        out = [s.metrics["ttft_ms"].get(p) for p in pcts]
        out += [s.metrics["itl_ms"].p50, s.metrics["latency_ms"].p50]
        out += [s.throughput.output_tokens_per_s]
        return out

    def shares(r: RoundResult) -> list[float | None]:
        g = r.summary.goodput
        out = [g.percent / 100 if g and g.percent is not None else None] if goodput else []
        out += [r.offered_share] if offered else []
        out += [r.summary.cache.client_cached_share]
        out += [r.server_hit_rate] if hit else []
        return out

    rows: list[list[Any]] = []
    for r in level.rounds:
        s = r.summary
        rows.append(
            [
                s.round,
                f"{s.succeeded}/{s.requests_total}",
                *map(_num, figures(r)),
                *(_pct_num(v) for v in shares(r)),
            ]
        )
    first, last = level.rounds[0], level.rounds[-1]
    if len(level.rounds) > 1:
        changes = [
            _pct_change(Change(a, b)) for a, b in zip(figures(first), figures(last), strict=True)
        ]
        points = [_points(a, b) for a, b in zip(shares(first), shares(last), strict=True)]
        rows.append([L["change"].format(k=last.summary.round), "", *changes, *points])
    title = L["level_block"].format(
        level=level_title(level.level, lang),
        cold=level.cold_start,
        mode=level.round2_mode,
        n=first.summary.requests_total,
    )
    lines = ["-" * RULE, title, _indent(_table(rows, tuple(headers), stacked=True))]
    c = level.comparison
    if c is not None:
        lines.append(_ratio_line(c, lang))
    if len(level.comparisons) > 1:  # 3+ rounds: every round against round 1 and the one before
        lines += [L["rounds_table"], _indent(_comparisons_table(level, lang))]
    lines.extend(f"  ! {redact_text(render(w, lang))}" for w in level.warnings)
    return "\n".join(lines)


def _overview_percentiles(run: RunResult) -> tuple[str, ...]:
    """The summary's TTFT columns: the first and last chosen percentile (P50 and P99 by default)."""
    for level in run.levels:
        for r in level.rounds:
            keys = r.summary.metrics["ttft_ms"].keys
            return tuple(dict.fromkeys((keys[0], keys[-1])))
    return ("p50", "p99")


def _points(before: float | None, after: float | None) -> str:
    """A change of shares in percentage points: ``+99.3 pts``."""
    if before is None or after is None:
        return "-"
    return f"{100 * (after - before):+.1f} pts"


def _pct_num(v: float | None) -> str:
    """A share as a number of percent (the header says ``(%)``)."""
    return "-" if v is None else f"{100 * v:.1f}"


def format_turns(level: LevelResult, lang: Lang = "en") -> str:
    """TTFT by turn and by context length, for a level of conversations (``--round2-mode
    continue`` with 2+ rounds); empty otherwise (a repeat is not a later turn)."""
    if level.round2_mode != "continue" or len(level.rounds) < 2 or not level.by_turn:
        return ""
    L, name = LABELS[lang], level_name(level.level, lang)
    turns = [
        [
            row.round,
            row.requests,
            _num(row.context_tokens_mean, 0),
            _num(row.ttft_p50_ms),
            _num(row.ttft_p90_ms),
            _num(row.ttft_p99_ms),
            _pct(row.cached_share),
        ]
        for row in level.by_turn
    ]
    contexts = [
        [
            f"{b.low_tokens}-{b.high_tokens - 1}",
            b.requests,
            _num(b.context_tokens_mean, 0),
            _num(b.ttft_p50_ms),
            _num(b.ttft_p90_ms),
            _num(b.ttft_p99_ms),
            _pct(b.cached_share),
        ]
        for b in level.by_context
    ]
    h = H[lang]
    tail = (*(f"TTFT {h[p]} (ms)" for p in ("p50", "p90", "p99")), h["cached"])
    lines = ["-" * RULE, L["turns"].format(level=name)]
    lines.append(_indent(_table(turns, (h["turn"], h["ok"], h["context"], *tail))))
    if contexts:
        lines += [L["contexts"].format(level=name)]
        lines.append(_indent(_table(contexts, (h["context"], h["ok"], h["context_mean"], *tail))))
    return "\n".join(lines)


def _comparisons_table(level: LevelResult, lang: Lang) -> str:
    """A row per comparison (k vs 1, k vs k-1): TTFT p50/p90 change, ratio, cached, hit rate."""
    h = H[lang]
    headers = (
        h["round"],
        h["vs"],
        f"TTFT {h['p50']} (%)",
        f"TTFT {h['p90']} (%)",
        h["ratio_ci"],
        h["cached"],
        h["hit"],
    )
    rows = [
        [
            rc.round,
            rc.against,
            _pct_change(rc.comparison.ttft_ms["p50"]),
            _pct_change(rc.comparison.ttft_ms["p90"]),
            _ratio(rc.comparison),
            _shares(rc.comparison.client_cached_share),
            _shares(rc.comparison.server_hit_rate),
        ]
        for rc in level.comparisons
    ]
    return _table(rows, headers)


def _last_vs_first_lines(run: RunResult, lang: Lang) -> list[str]:
    """The overview's closing lines when a level ran more than 2 rounds: its last round
    against round 1 (the table above has each round's own figures)."""
    lines = []
    for level in run.levels:
        last = _last_vs_first(level)
        if last is None:
            continue
        c = last.comparison
        figures = LABELS[lang]["vs_first_figures"].format(
            p50=_change(c.ttft_ms["p50"], " ms"),
            p90=_change(c.ttft_ms["p90"], " ms"),
            ratio=_ratio(c),
            cached=_shares(c.client_cached_share),
            hit=_shares(c.server_hit_rate),
        )
        lines.append(
            LABELS[lang]["vs_first"].format(
                k=last.round, level=level_name(level.level, lang), figures=figures
            )
        )
    return lines


def _last_vs_first(level: LevelResult) -> RoundComparison | None:
    if len(level.rounds) <= 2:
        return None
    last = len(level.rounds)
    return next((c for c in level.comparisons if c.round == last and c.against == 1), None)


def _over_time_lines(result: RoundResult, lang: Lang) -> list[str]:
    """The round's requests in time windows: how many were due, failed, and their TTFT."""
    windows = result.summary.ttft_over_time
    width = windows[0].end_s - windows[0].start_s
    rows = [
        [
            f"{w.start_s:g}-{w.end_s:g}",
            w.started,
            w.failed,
            _num(w.ttft_p50_ms),
            _num(w.ttft_p90_ms),
        ]
        for w in windows
    ]
    h = H[lang]
    headers = (
        h["window"],
        h["started"],
        h["failed"],
        f"TTFT {h['p50']} (ms)",
        f"TTFT {h['p90']} (ms)",
    )
    return [LABELS[lang]["over_time"].format(w=f"{width:g}"), _indent(_table(rows, headers))]


def level_title(level: Level, lang: Lang = "en") -> str:
    """A round block's title: ``Concurrency: 5``, ``Request rate: 10 req/s``, ``Trace: 2x``."""
    if level.kind == "concurrency":
        return f"{'并发' if lang == 'zh' else 'Concurrency'}: {level.concurrency}"
    if level.kind == "trace":
        return f"{'轨迹回放' if lang == 'zh' else 'Trace replay'}: {_trace_words(level, lang)}"
    return f"{'请求速率' if lang == 'zh' else 'Request rate'}: {_rate_words(level, lang)}"


def level_name(level: Level, lang: Lang = "en") -> str:
    """A level inside a sentence: ``concurrency 5``, ``rate 10 req/s`` (``Level.label``)."""
    if lang != "zh":
        return level.label
    if level.kind == "concurrency":
        return f"并发 {level.concurrency}"
    if level.kind == "trace":
        return f"轨迹回放 {_trace_words(level, lang)}"
    return f"请求速率 {_rate_words(level, lang)}"


def _trace_words(level: Level, lang: Lang) -> str:
    speed = format_rate(level.speedup)
    text = f"{speed} 倍速" if lang == "zh" else f"{speed}x speed"
    return text + _cap_words(level, lang)


def _rate_words(level: Level, lang: Lang) -> str:
    rate = level.rate or 0.0
    if math.isinf(rate):
        text = "inf (一次全部发出)" if lang == "zh" else "inf (all at once)"
    else:
        text = f"{format_rate(rate)} req/s"
    return text + _cap_words(level, lang)


def _cap_words(level: Level, lang: Lang) -> str:
    cap = level.max_concurrency
    if cap is None:
        return ""
    return f" (最多 {cap} 个并发)" if lang == "zh" else f" (at most {cap} in flight)"


def _change(ch: Change, unit: str = "") -> str:
    pct = ch.change_percent
    tail = f" ({pct:+.1f}%)" if pct is not None else ""
    return f"{_num(ch.before)}{unit} -> {_num(ch.after)}{unit}{tail}"


def _pct_change(ch: Change) -> str:
    pct = ch.change_percent
    return "-" if pct is None else f"{pct:+.1f}%"


def _ratio(c: Comparison) -> str:
    """The TTFT ratio's geometric mean with its 95% CI: ``0.512 [0.480-0.550]``."""
    ci = c.ratio_geomean_ci95
    tail = f" [{_num(ci[0], 3)}-{_num(ci[1], 3)}]" if ci else ""
    return _num(c.ratio_geomean, 3) + tail


def _shares(ch: Change) -> str:
    return f"{_pct(ch.before)} -> {_pct(ch.after)}"


def _table(rows: list[list[Any]], headers: tuple[str, ...], *, stacked: bool = False) -> str:
    """Every table of the console in one style; tabulate pads by display width (wcwidth), so
    CJK headers and cells line up.  ``stacked`` puts each header's unit on a second line
    (``TTFT P50`` over ``(ms)``): the wide tables stay narrow."""
    if stacked:
        headers = tuple(h.replace(" (", "\n(") for h in headers)
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal: 2 for each CJK character."""
    return max(wcswidth(text), 0)


def _pad(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` terminal columns (``str.ljust`` counts characters)."""
    return text + " " * max(width - display_width(text), 0)


def _row_name(metric: str, lang: Lang) -> str:
    return _ROW_NAMES[metric] if lang == "en" else H[lang]["rows"].split("|")[METRICS.index(metric)]


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _num(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _val(v: float | None) -> str:
    """Server values range from fractions to byte counts: keep both readable."""
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"
