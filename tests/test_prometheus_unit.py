"""Unit tests of server metrics: selectors, parsing, deltas, derived rates, and the watcher.

The exposition fixtures follow what vLLM, SGLang and LMCache really serve through
prometheus_client (HELP/TYPE lines, ``_total`` counters, ``_created`` gauges, one series per
engine, histograms with their real bucket bounds).  Watcher tests run an aiohttp server on
127.0.0.1 port 0; nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from drbench.errors import UsageError
from drbench.prometheus import (
    PRESET_METRICS,
    ExpositionError,
    HistogramValue,
    MetricKind,
    MetricSelector,
    MetricValue,
    ServerMetricsWatcher,
    UrlRound,
    counter_delta,
    histogram_delta,
    histogram_quantile,
    is_idle,
    parse_selectors,
    preset_selectors,
    profile_by_name,
    snapshot_from_text,
    summarize_round,
)

TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5)


@dataclass
class VllmState:
    """Per-engine counter values of a fake two-engine vLLM (engine "1" mirrors engine "0" / 2)."""

    queries: float = 0.0
    hits: float = 0.0
    ext_queries: float = 0.0
    ext_hits: float = 0.0
    prompt_tokens: float = 0.0
    running: float = 0.0
    waiting: float = 0.0
    kv_usage: float = 0.0
    ttft: tuple[float, ...] = ()  # observations of engine "0"


def _counter(name: str, help_: str, values: dict[str, float], extra: str = "") -> str:
    lines = [f"# HELP {name}_total {help_}", f"# TYPE {name}_total counter"]
    for engine, v in values.items():
        lines.append(f'{name}_total{{engine="{engine}",model_name="m"{extra}}} {v!r}')
    lines += [f"# HELP {name}_created {help_}", f"# TYPE {name}_created gauge"]
    for engine in values:
        lines.append(f'{name}_created{{engine="{engine}",model_name="m"{extra}}} 1.7959e+09')
    return "\n".join(lines)


def _gauge(name: str, help_: str, values: dict[str, float]) -> str:
    lines = [f"# HELP {name} {help_}", f"# TYPE {name} gauge"]
    lines += [f'{name}{{engine="{e}",model_name="m"}} {v!r}' for e, v in values.items()]
    return "\n".join(lines)


def _histogram(name: str, observations: dict[str, tuple[float, ...]], bounds=TTFT_BUCKETS) -> str:
    lines = [f"# HELP {name} Histogram of {name}.", f"# TYPE {name} histogram"]
    for engine, obs in observations.items():
        labels = f'engine="{engine}",model_name="m"'
        for le in (*bounds, math.inf):
            n = sum(1 for x in obs if x <= le)
            le_text = "+Inf" if math.isinf(le) else repr(float(le))
            lines.append(f'{name}_bucket{{{labels},le="{le_text}"}} {float(n)!r}')
        lines.append(f"{name}_count{{{labels}}} {float(len(obs))!r}")
        lines.append(f"{name}_sum{{{labels}}} {float(sum(obs))!r}")
    lines += [f"# HELP {name}_created Histogram.", f"# TYPE {name}_created gauge"]
    lines += [f'{name}_created{{engine="{e}",model_name="m"}} 1.7959e+09' for e in observations]
    return "\n".join(lines)


def vllm_text(s: VllmState) -> str:
    """A vLLM V1 /metrics page, two engines; engine "1" holds half of engine "0"'s counts."""

    def two(v: float) -> dict[str, float]:
        return {"0": float(v), "1": float(v) / 2}

    parts = [
        "# HELP python_gc_objects_collected_total Objects collected during gc",
        "# TYPE python_gc_objects_collected_total counter",
        'python_gc_objects_collected_total{generation="0"} 12345.0',
        _gauge(
            "vllm:num_requests_running", "Number of requests in model execution.", two(s.running)
        ),
        _gauge("vllm:num_requests_waiting", "Number of requests waiting.", two(s.waiting)),
        _gauge(
            "vllm:kv_cache_usage_perc",
            "KV-cache usage. 1 means 100 percent usage.",
            two(s.kv_usage),
        ),
        _counter("vllm:prefix_cache_queries", "Prefix cache queries, in tokens.", two(s.queries)),
        _counter("vllm:prefix_cache_hits", "Prefix cache hits, in tokens.", two(s.hits)),
        _counter("vllm:external_prefix_cache_queries", "External queries.", two(s.ext_queries)),
        _counter("vllm:external_prefix_cache_hits", "External hits.", two(s.ext_hits)),
        _counter("vllm:prompt_tokens", "Number of prefill tokens processed.", two(s.prompt_tokens)),
        _counter(
            "vllm:request_success", "Finished requests.", {"0": 3.0}, ',finished_reason="stop"'
        ),
        _histogram("vllm:time_to_first_token_seconds", {"0": s.ttft, "1": ()}),
        _histogram("vllm:iteration_tokens_total", {"0": (1.0, 8.0)}, bounds=(1, 8, 16)),
    ]
    return "\n".join(parts) + "\n"


def sglang_text(cached: float, prompt: float, hit_gauge: float = 0.75) -> str:
    return (
        "# HELP sglang:prompt_tokens_total Number of prefill tokens processed.\n"
        "# TYPE sglang:prompt_tokens_total counter\n"
        f'sglang:prompt_tokens_total{{model_name="m"}} {prompt!r}\n'
        "# HELP sglang:cached_tokens_total Number of cached prompt tokens.\n"
        "# TYPE sglang:cached_tokens_total counter\n"
        f'sglang:cached_tokens_total{{model_name="m"}} {cached!r}\n'
        "# HELP sglang:cache_hit_rate The prefix cache hit rate.\n"
        "# TYPE sglang:cache_hit_rate gauge\n"
        f'sglang:cache_hit_rate{{model_name="m"}} {hit_gauge!r}\n'
        "# HELP sglang:num_running_reqs The number of running requests.\n"
        "# TYPE sglang:num_running_reqs gauge\n"
        'sglang:num_running_reqs{model_name="m"} 0.0\n'
    )


def lmcache_text(hit: float, requested: float, lookup_hits: float, lookups: float) -> str:
    out = []
    for name, v in (
        ("num_hit_tokens", hit),
        ("num_requested_tokens", requested),
        ("num_lookup_hits", lookup_hits),
        ("num_lookup_tokens", lookups),
    ):
        out += [
            f"# HELP lmcache:{name}_total {name}",
            f"# TYPE lmcache:{name}_total counter",
            f'lmcache:{name}_total{{model_name="m",worker_id="0"}} {v!r}',
            f"# HELP lmcache:{name}_created {name}",
            f"# TYPE lmcache:{name}_created gauge",
            f'lmcache:{name}_created{{model_name="m",worker_id="0"}} 1.7959e+09',
        ]
    out += [
        "# HELP lmcache:retrieve_hit_rate Hit rate of retrieve requests.",
        "# TYPE lmcache:retrieve_hit_rate gauge",
        'lmcache:retrieve_hit_rate{model_name="m",worker_id="0"} 1.0',
    ]
    return "\n".join(out) + "\n"


def snap(text: str, *selectors: str):
    return snapshot_from_text(text, [MetricSelector.parse(s) for s in selectors])


def one_round(url: str, before_text, after_text, selectors, samples=()) -> UrlRound:
    """A UrlRound from texts (None: that scrape failed), reporting ``selectors``."""
    sels = [MetricSelector.parse(s) for s in selectors]
    take = lambda t: None if t is None else snapshot_from_text(t, sels)  # noqa: E731
    return UrlRound(
        url,
        take(before_text),
        take(after_text),
        [take(t) for t in samples],
        [str(s) for s in sels],
        None if before_text is not None and after_text is not None else "cannot connect",
    )


# -- selectors ---------------------------------------------------------------------------------


def test_selector_parses_name_and_every_matcher_kind():
    sel = MetricSelector.parse(
        ' vllm:prefix_cache_hits_total{ model_name = "m", engine!="1", a=~"x|y" , b!~\'z.*\', } '
    )
    assert sel.name == "vllm:prefix_cache_hits_total"
    assert [(m.label, m.op, m.value) for m in sel.matchers] == [
        ("model_name", "=", "m"),
        ("engine", "!=", "1"),
        ("a", "=~", "x|y"),
        ("b", "!~", "z.*"),
    ]
    assert sel.matches_labels({"model_name": "m", "engine": "0", "a": "y", "b": "q"})
    assert not sel.matches_labels({"model_name": "m", "engine": "1", "a": "y", "b": "q"})
    # regular expressions are anchored at both ends, as in PromQL
    assert not sel.matches_labels({"model_name": "m", "engine": "0", "a": "xy", "b": "q"})
    assert not sel.matches_labels({"model_name": "m", "engine": "0", "a": "x", "b": "zz"})


def test_selector_text_round_trips_with_escapes():
    sel = MetricSelector.parse(r'x{a="q\"uote\\d"}')
    assert sel.matchers[0].value == 'q"uote\\d'
    assert MetricSelector.parse(str(sel)) == sel
    assert str(MetricSelector.parse("vllm:prompt_tokens")) == "vllm:prompt_tokens"


def test_missing_label_reads_as_empty_string_like_promql():
    assert MetricSelector.parse('x{engine=""}').matches_labels({"model_name": "m"})
    assert not MetricSelector.parse('x{engine="0"}').matches_labels({"model_name": "m"})


@pytest.mark.parametrize(
    "bad",
    ["", '{a="b"}', "1abc", 'x{a="b"', "x{a=b}", 'x{a="b" c="d"}', 'x{="b"}', "x y", 'x{a=~"("}'],
)
def test_bad_selector_is_one_usage_error_naming_flag_and_value(bad):
    with pytest.raises(UsageError) as err:
        MetricSelector.parse(bad)
    msg = str(err.value)
    assert "--prometheus-metrics" in msg and repr(bad) in msg and "\n" not in msg


def test_parse_selectors_splits_top_level_commas_and_dedupes():
    sels = parse_selectors(['a{x="1",y=~"p,q"}, b', "a{x='1',y=~'p,q'}", "c,"])
    assert [str(s) for s in sels] == ['a{x="1",y=~"p,q"}', "b", "c"]


def test_preset_names_the_required_metrics():
    for name in (
        "vllm:prefix_cache_hits",
        "vllm:external_prefix_cache_queries",
        "vllm:prompt_tokens_cached",
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",
        "vllm:e2e_request_latency_seconds",
        "sglang:cached_tokens_total",
        "sglang:token_usage",
        "lmcache:num_lookup_hits",
        "lmcache:retrieve_hit_rate",
        "lmcache_hit_rate",
        "memory_usage_bytes",
    ):
        assert name in PRESET_METRICS
    assert [str(s) for s in preset_selectors()] == list(PRESET_METRICS)


# -- parsing -----------------------------------------------------------------------------------


def test_counter_sums_engines_and_matches_with_or_without_total():
    text = vllm_text(VllmState(queries=1000, hits=600))
    got = snap(text, "vllm:prefix_cache_queries", "vllm:prefix_cache_queries_total")
    for key in ("vllm:prefix_cache_queries", "vllm:prefix_cache_queries_total"):
        assert got[key].kind is MetricKind.COUNTER
        assert got[key].family == "vllm:prefix_cache_queries"
        assert got[key].total == 1500.0  # 1000 + 500; the _created timestamps are not added


def test_label_selector_narrows_the_sum():
    text = vllm_text(VllmState(hits=600))
    got = snap(
        text,
        'vllm:prefix_cache_hits_total{engine="1"}',
        'vllm:prefix_cache_hits{engine=~"0|1",model_name="m"}',
        'vllm:prefix_cache_hits{model_name="other"}',
    )
    assert got['vllm:prefix_cache_hits_total{engine="1"}'].total == 300.0
    assert got['vllm:prefix_cache_hits{engine=~"0|1",model_name="m"}'].total == 900.0
    assert 'vllm:prefix_cache_hits{model_name="other"}' not in got  # missing, not 0


def test_created_samples_are_never_a_metric():
    got = snap(vllm_text(VllmState()), "vllm:prefix_cache_hits_created", "vllm:prompt_tokens")
    assert "vllm:prefix_cache_hits_created" not in got
    assert got["vllm:prompt_tokens"].total == 0.0


def test_gauges_and_a_declared_counter_without_series():
    text = vllm_text(VllmState(running=4, kv_usage=0.25))
    got = snap(
        text, "vllm:num_requests_running", "vllm:kv_cache_usage_perc", "vllm:request_success"
    )
    assert got["vllm:num_requests_running"].kind is MetricKind.GAUGE
    assert got["vllm:num_requests_running"].total == 6.0
    assert got["vllm:kv_cache_usage_perc"].total == pytest.approx(0.375)
    assert got["vllm:request_success"].total == 3.0
    empty = "# HELP c_total c\n# TYPE c_total counter\n"
    assert snap(empty, "c")["c"].total == 0.0  # declared, nothing counted yet
    assert snap("# TYPE g gauge\n", "g") == {}  # a gauge without series has no value


def test_histogram_keeps_count_sum_and_cumulative_buckets_summed_over_engines():
    s = VllmState(ttft=(0.003, 0.03, 0.03, 0.3))
    got = snap(vllm_text(s), "vllm:time_to_first_token_seconds")["vllm:time_to_first_token_seconds"]
    assert got.kind is MetricKind.HISTOGRAM and got.total == 4.0
    h = got.histogram()
    assert h.count == 4.0 and h.sum == pytest.approx(0.363)
    assert dict(h.buckets)[0.005] == 1.0 and dict(h.buckets)[0.04] == 3.0
    assert h.buckets[-1] == (math.inf, 4.0)
    # the trap of the notes: a histogram whose own name ends in _total
    it = snap(vllm_text(s), "vllm:iteration_tokens_total")["vllm:iteration_tokens_total"]
    assert it.kind is MetricKind.HISTOGRAM and it.histogram().sum == 9.0


def test_counter_typed_without_total_and_untyped_total():
    text = (
        "# TYPE tgi_request_count counter\ntgi_request_count 5\n"
        "# TYPE x counter\nx_total 4\nx_created 1.7e9\n"
        "foo_total 3\nbar 2\n"
    )
    got = snap(text, "tgi_request_count_total", "x", "foo", "bar")
    assert got["tgi_request_count_total"].total == 5.0
    assert (got["x"].kind, got["x"].total) == (MetricKind.COUNTER, 4.0)
    assert (got["foo"].kind, got["foo"].total) == (MetricKind.COUNTER, 3.0)
    assert got["bar"].kind is MetricKind.UNTYPED


def test_non_finite_samples_are_dropped():
    got = snap('# TYPE g gauge\ng{a="1"} NaN\ng{a="2"} 2\n# TYPE h gauge\nh NaN\n', "g", "h")
    assert got["g"].total == 2.0 and "h" not in got


@pytest.mark.parametrize(
    "garbage",
    ["<html><body>502 Bad Gateway</body></html>", '{"error": "x"}', '# TYPE g gauge\ng{a="1} 3\n'],
)
def test_garbage_is_an_exposition_error(garbage):
    with pytest.raises(ExpositionError):
        snap(garbage, "g")


def test_unrelated_families_do_not_change_the_result():
    base = vllm_text(VllmState(queries=10, running=1))
    noise = "".join(f'# TYPE other_{i} gauge\nother_{i}{{a="{i}"}} {i}\n' for i in range(200))
    sels = ("vllm:prefix_cache_queries", "vllm:num_requests_running")
    assert snap(noise + base + noise, *sels) == snap(base, *sels)


def test_is_idle_reads_the_load_gauges():
    assert is_idle(snap(vllm_text(VllmState()), "vllm:num_requests_running"))
    busy = snap(vllm_text(VllmState(waiting=1)), "vllm:num_requests_waiting")
    assert not is_idle(busy)


# -- deltas ------------------------------------------------------------------------------------


def _counter_value(**series: float) -> MetricValue:
    return MetricValue("c", MetricKind.COUNTER, {(("s", k),): v for k, v in series.items()})


def test_counter_delta_per_series_with_reset_and_new_series():
    before = _counter_value(a=100.0, b=80.0)
    after = _counter_value(a=150.0, b=10.0, c=7.0)  # b was reset; c appeared
    assert counter_delta(before, after) == (50.0 + 10.0 + 7.0, True)
    assert counter_delta(before, _counter_value(a=100.0, b=81.0)) == (1.0, False)


def _hist(count, total, buckets) -> MetricValue:
    return MetricValue("h", MetricKind.HISTOGRAM, {(): HistogramValue(count, total, buckets)})


def test_histogram_delta_mean_and_quantiles():
    before = _hist(2, 0.5, ((0.1, 1.0), (1.0, 2.0), (math.inf, 2.0)))
    after = _hist(12, 4.5, ((0.1, 3.0), (1.0, 10.0), (math.inf, 12.0)))
    delta, reset = histogram_delta(before, after)
    assert not reset and (delta.count, delta.sum) == (10.0, 4.0)
    assert delta.buckets == ((0.1, 2.0), (1.0, 8.0), (math.inf, 10.0))
    # rank 5 falls in (0.1, 1.0], which holds observations 3..8: 0.1 + 0.9 * (5 - 2) / 6
    assert histogram_quantile(0.5, delta.buckets) == pytest.approx(0.55)
    # rank 1 lies in the first bucket, interpolated from 0
    assert histogram_quantile(0.1, delta.buckets) == pytest.approx(0.05)
    # rank 9.9 lies in +Inf: the highest finite bound
    assert histogram_quantile(0.99, delta.buckets) == 1.0
    assert histogram_quantile(0.5, ((0.1, 0.0), (math.inf, 0.0))) is None
    assert histogram_quantile(0.5, ((0.1, 3.0),)) is None  # no +Inf bucket


def test_histogram_reset_uses_after_series():
    before = _hist(10, 5.0, ((1.0, 10.0), (math.inf, 10.0)))
    after = _hist(3, 0.3, ((1.0, 3.0), (math.inf, 3.0)))
    delta, reset = histogram_delta(before, after)
    assert reset and (delta.count, delta.sum) == (3.0, 0.3)


# -- round summary -----------------------------------------------------------------------------

SEL_VLLM = (
    "vllm:prefix_cache_queries",
    "vllm:prefix_cache_hits",
    "vllm:num_requests_running",
    "vllm:time_to_first_token_seconds",
)


def test_round_summary_single_url():
    s0 = VllmState(queries=1000, hits=0, running=0, ttft=(0.5,))
    mid = [VllmState(queries=1200, running=2), VllmState(queries=1500, running=4)]
    s1 = VllmState(queries=2000, hits=960, running=0, ttft=(0.5, 0.03, 0.07, 0.07, 0.09))
    rep = summarize_round(
        [one_round("u", vllm_text(s0), vllm_text(s1), SEL_VLLM, [vllm_text(m) for m in mid])]
    )
    q = rep.metric("vllm:prefix_cache_queries")
    assert (q.kind, q.before, q.after, q.delta, q.reset) == (
        MetricKind.COUNTER,
        1500.0,
        3000.0,
        1500.0,
        False,
    )
    g = rep.metric("vllm:num_requests_running")
    # readings (x1.5 for the two engines): before 0, samples 3 and 6, after 0
    assert (g.mean, g.max, g.samples, g.delta) == (2.25, 6.0, 4, None)
    h = rep.metric("vllm:time_to_first_token_seconds")
    assert (h.before, h.after, h.delta) == (1.0, 5.0, 4.0)
    assert h.delta_sum == pytest.approx(0.26) and h.mean == pytest.approx(0.065)
    # Δbuckets: 1 in (0.02, 0.04], 2 in (0.06, 0.08], 1 in (0.08, 0.1]
    assert h.p50 == pytest.approx(0.06 + 0.02 * (2 - 1) / 2)  # rank 2
    assert h.p99 == pytest.approx(0.08 + 0.02 * (3.96 - 3) / 1)  # rank 3.96
    assert rep.derived["vllm_prefix_cache_hit_rate"] == pytest.approx(1440 / 1500)
    assert rep.hit_rate == pytest.approx(0.96)
    assert rep.hit_rate_source == "vllm_prefix_cache_hit_rate"
    assert rep.missing == [] and len(rep.metrics) == 4
    json.dumps(rep.to_dict(), allow_nan=False)  # JSON-ready, no NaN/Infinity


def test_counter_reset_during_round_is_flagged():
    before, after = vllm_text(VllmState(queries=5000)), vllm_text(VllmState(queries=300))
    rep = summarize_round([one_round("u", before, after, ["vllm:prefix_cache_queries"])])
    q = rep.metric("vllm:prefix_cache_queries")
    assert q.reset and q.delta == 450.0


def test_hit_rate_is_none_not_zero_when_denominator_delta_is_zero_or_input_missing():
    same = vllm_text(VllmState(queries=100, hits=50))
    rep = summarize_round([one_round("u", same, same, SEL_VLLM[:2])])
    assert rep.derived["vllm_prefix_cache_hit_rate"] is None and rep.hit_rate is None
    no_hits = "\n".join(
        line for line in vllm_text(VllmState(queries=100)).splitlines() if "cache_hits" not in line
    )
    rep = summarize_round(
        [one_round("u", no_hits, no_hits.replace(" 100.0", " 900.0"), SEL_VLLM[:1])]
    )
    assert rep.derived["vllm_prefix_cache_hit_rate"] is None
    assert "sglang_prefix_cache_hit_rate" not in rep.derived  # no input exposed at all


def test_sglang_rate_from_counters_never_from_its_gauge():
    rep = summarize_round(
        [one_round("u", sglang_text(0, 1000), sglang_text(300, 2000, hit_gauge=0.9), ["x"])]
    )
    assert rep.derived == {}  # the watcher always scrapes the inputs; here nobody selected them
    sels = ["sglang:cached_tokens_total", "sglang:prompt_tokens_total", "sglang:cache_hit_rate"]
    rep = summarize_round([one_round("u", sglang_text(0, 1000), sglang_text(300, 2000, 0.9), sels)])
    assert rep.derived == {"sglang_prefix_cache_hit_rate": pytest.approx(0.3)}
    assert rep.hit_rate == pytest.approx(0.3)
    gauge_only = "\n".join(line for line in sglang_text(0, 0).splitlines() if "tokens" not in line)
    rep = summarize_round([one_round("u", gauge_only, gauge_only, sels)])
    assert rep.derived == {} and rep.hit_rate is None  # the 0.75 gauge is no hit rate
    assert rep.metric("sglang:cache_hit_rate").mean == 0.75  # reported, but only as a gauge


def test_lmcache_and_vllm_external_rates():
    sels = [
        "lmcache:num_hit_tokens",
        "lmcache:num_requested_tokens",
        "lmcache:num_lookup_hits",
        "lmcache:num_lookup_tokens",
        "vllm:external_prefix_cache_hits",
        "vllm:external_prefix_cache_queries",
    ]
    lm = one_round("lm", lmcache_text(0, 0, 0, 0), lmcache_text(750, 1000, 20, 80), sels)
    vl = one_round(
        "vl",
        vllm_text(VllmState(ext_queries=100, ext_hits=0)),
        vllm_text(VllmState(ext_queries=500, ext_hits=200)),
        sels,
    )
    rep = summarize_round([lm, vl])
    assert rep.derived["lmcache_retrieve_hit_rate"] == pytest.approx(0.75)
    assert rep.derived["lmcache_lookup_hit_rate"] == pytest.approx(0.25)
    assert rep.derived["vllm_external_prefix_cache_hit_rate"] == pytest.approx(300 / 600)
    assert rep.hit_rate_source == "lmcache_retrieve_hit_rate"


def test_old_vllm_gpu_prefix_cache_names_are_a_fallback():
    def text(q, h):
        return (
            _counter("vllm:gpu_prefix_cache_queries", "q", {"0": q})
            + "\n"
            + _counter("vllm:gpu_prefix_cache_hits", "h", {"0": h})
        )

    sels = ["vllm:gpu_prefix_cache_queries", "vllm:gpu_prefix_cache_hits"]
    rep = summarize_round([one_round("u", text(10, 0), text(30, 5), sels)])
    assert rep.hit_rate == pytest.approx(0.25)


def test_counter_first_seen_during_the_round_counts_from_zero():
    before = "# TYPE other gauge\nother 1\n"
    after = '# TYPE c_total counter\nc_total{reason="stop"} 7\n'
    rep = summarize_round([one_round("u", before, after, ['c{reason="stop"}'])])
    assert rep.metric('c{reason="stop"}').delta == 7.0


def test_two_urls_totals_and_a_dead_one():
    sels = ["vllm:prefix_cache_queries", "vllm:prefix_cache_hits", "vllm:num_requests_running"]
    a = one_round(
        "a", vllm_text(VllmState(queries=100)), vllm_text(VllmState(queries=300, hits=100)), sels
    )
    b = one_round("b", vllm_text(VllmState()), vllm_text(VllmState(queries=100, hits=100)), sels)
    dead = one_round("dead", None, None, sels)
    rep = summarize_round([a, b, dead])
    total = rep.metric("vllm:prefix_cache_queries", None)
    assert (total.url, total.delta, total.urls) == (None, 450.0, ("a", "b"))
    gone = rep.metric("vllm:prefix_cache_queries", "dead")
    assert (gone.before, gone.after, gone.delta) == (None, None, None)
    assert gone.missing == "endpoint unavailable (cannot connect)"
    assert rep.metric("vllm:num_requests_running", None) is None  # gauges have no total
    assert {(m.url, m.metric) for m in rep.missing} == {("dead", s) for s in sels}
    assert rep.hit_rate == pytest.approx(300 / 450)


# -- the watcher against a live server ---------------------------------------------------------


@dataclass
class Served:
    state: VllmState
    pending: int = 0  # counter updates the server still owes: one lands per scrape
    scrapes: int = 0


async def _start_server(served: Served, release: asyncio.Event):
    async def metrics(_request):
        served.scrapes += 1
        if served.pending:
            served.pending -= 1
            served.state.hits += 100
            served.state.running = served.pending
        return web.Response(text=vllm_text(served.state), content_type="text/plain")

    async def slow(_request):
        await asyncio.wait_for(release.wait(), 10)
        return web.Response(text=vllm_text(served.state))

    async def garbage(_request):
        return web.Response(text="<html>login</html>", content_type="text/html")

    async def lmcache(_request):
        return web.Response(text=lmcache_text(1, 2, 3, 4))

    async def other(_request):
        return web.Response(text="# TYPE process_open_fds gauge\nprocess_open_fds 7.0\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/slow", slow)
    app.router.add_get("/garbage", garbage)
    app.router.add_get("/lmcache", lmcache)
    app.router.add_get("/other", other)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/metrics"


def test_watcher_rounds_with_dead_slow_and_garbage_endpoints():
    async def scenario():
        served, release = Served(VllmState(queries=1000)), asyncio.Event()
        runner, base = await _start_server(served, release)
        dead = _dead_url()
        urls = [f"{base}/metrics", dead, f"{base}/slow", f"{base}/garbage"]
        try:
            async with aiohttp.ClientSession() as session:
                w = ServerMetricsWatcher(session, urls, None, interval_s=0.05, timeout_s=0.3)
                warnings = await w.probe()
                await w.start_round()
                served.state.running, served.state.queries = 3, 1500
                await asyncio.sleep(0.3)
                served.state.running, served.state.queries, served.state.hits = 0, 2000, 900
                r1 = await w.end_round()
                await w.start_round()
                served.state.queries, served.state.hits = 2500, 1300
                r2 = await w.end_round(settle=False)
            return warnings, r1, r2, base, dead
        finally:
            release.set()
            await runner.cleanup()

    warnings, r1, r2, base, dead = asyncio.run(scenario())
    assert len(warnings) == 3  # one per bad endpoint, none for the good one
    assert any(dead in w and "cannot connect" in w for w in warnings)
    assert any("/slow" in w and "no answer within 0.3 s" in w for w in warnings)
    assert any("/garbage" in w and "not Prometheus text" in w for w in warnings)
    assert r1.warnings == [] and r2.warnings == []  # never repeated per scrape or per round
    good = f"{base}/metrics"
    q = r1.metric("vllm:prefix_cache_queries", good)
    assert (q.before, q.after, q.delta) == (1500.0, 3000.0, 1500.0)
    run = r1.metric("vllm:num_requests_running", good)
    assert run.max == 4.5 and 0 < run.mean < 4.5 and run.samples >= 3
    assert r1.hit_rate == pytest.approx(0.9) and r2.hit_rate == pytest.approx(0.8)
    assert {m.url for m in r1.missing if m.metric is None} == {
        dead,
        f"{base}/slow",
        f"{base}/garbage",
    }
    reported_urls = {m.url for m in r1.metrics}
    assert reported_urls == {good, None}  # preset: only what the good endpoint exposes, + totals
    assert "sglang:cached_tokens_total" not in {m.metric for m in r1.metrics}
    json.dumps(r1.to_dict(), allow_nan=False)


def test_watcher_settles_before_the_after_scrape():
    async def scenario(settle: bool):
        served, release = Served(VllmState(queries=1000)), asyncio.Event()
        runner, base = await _start_server(served, release)
        sels = parse_selectors(["vllm:prefix_cache_hits", 'vllm:prefix_cache_queries{engine="0"}'])
        try:
            async with aiohttp.ClientSession() as session:
                w = ServerMetricsWatcher(
                    session, [f"{base}/metrics"], sels, interval_s=60, settle_poll_s=0.02
                )
                await w.start_round()
                served.pending, served.state.running = 3, 3  # the server lags the last answers
                return await w.end_round(settle=settle)
        finally:
            release.set()
            await runner.cleanup()

    settled = asyncio.run(scenario(True))
    assert settled.metric("vllm:prefix_cache_hits").delta == 450.0  # all three updates, x1.5
    hasty = asyncio.run(scenario(False))
    assert hasty.metric("vllm:prefix_cache_hits").delta == 150.0
    assert [m.metric for m in settled.metrics] == [
        "vllm:prefix_cache_hits",
        'vllm:prefix_cache_queries{engine="0"}',
    ]  # the derived inputs and load gauges are scraped but only selected metrics reported


def test_watcher_user_selector_that_matches_nothing_warns_once_and_is_missing():
    async def scenario():
        served, release = Served(VllmState()), asyncio.Event()
        runner, base = await _start_server(served, release)
        sels = parse_selectors(["vllm:no_such_metric", "vllm:prompt_tokens"])
        try:
            async with aiohttp.ClientSession() as session:
                w = ServerMetricsWatcher(session, [f"{base}/metrics"], sels, settle_max_s=0)
                warnings = await w.probe()
                await w.start_round()
                r = await w.end_round()
            return warnings, r
        finally:
            release.set()
            await runner.cleanup()

    warnings, r = asyncio.run(scenario())
    assert len(warnings) == 1 and "vllm:no_such_metric" in warnings[0]
    assert r.warnings == []
    m = r.metric("vllm:no_such_metric")
    assert (m.kind, m.before, m.delta, m.missing) == (None, None, None, "not exposed")
    assert r.metric("vllm:prompt_tokens").delta == 0.0


def test_watcher_says_once_what_an_endpoint_lacks_and_the_profiles_flush_lag():
    async def scenario(pause_s: float):
        served, release = Served(VllmState()), asyncio.Event()
        runner, base = await _start_server(served, release)
        urls = [f"{base}/lmcache", f"{base}/other"]
        try:
            async with aiohttp.ClientSession() as session:
                w = ServerMetricsWatcher(
                    session, urls, None, settle_max_s=0, profile=lmcache, round_pause_s=pause_s
                )
                warnings = await w.probe()
                await w.start_round()
                return urls, warnings, await w.end_round()
        finally:
            release.set()
            await runner.cleanup()

    lmcache = profile_by_name("lmcache")
    (lm, other), warnings, r = asyncio.run(scenario(0.0))
    assert len(warnings) == 2 and r.warnings == []
    assert other in warnings[0] and "none of the known LMCache on vLLM metrics" in warnings[0]
    assert warnings[1] == (
        "server metrics: LMCache publishes its counters about every 10 s, so its per-round "
        "figures can lag the round by that much; give --round-pause 10 or more."
    )
    assert {m.url for m in r.metrics} == {lm, None}  # the other endpoint reports nothing
    assert r.metric("lmcache:num_hit_tokens", lm).delta == 0.0
    assert r.missing == [] and r.profile == "lmcache"
    _, warnings, _ = asyncio.run(scenario(10.0))  # a pause of one flush: no lag note
    assert len(warnings) == 1 and "none of the known" in warnings[0]


def test_watcher_rejects_bad_arguments():
    with pytest.raises(UsageError, match="--prometheus-interval"):
        ServerMetricsWatcher(None, ["http://127.0.0.1:1/metrics"], None, interval_s=0)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="--prometheus-url"):
        ServerMetricsWatcher(None, [], None)  # type: ignore[arg-type]
    for bad in ("localhost:8000/metrics", "ftp://h/metrics", ""):
        with pytest.raises(UsageError, match="--prometheus-url: .* is not an http"):
            ServerMetricsWatcher(None, [bad], None)  # type: ignore[arg-type]
