"""Server profiles: detection from metric names, the --server-profile choice, composition of
LMCache with its engine, reset hints, cache sizes from a page, per-profile hit rates, the
sanity sentences that come from a profile, and the mocker's --metrics-profile pages.

Pages are rendered by the mocker's own ``MockerMetrics`` (no server); the one network test
talks to a closed 127.0.0.1 port.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from drbench.config import OPTIONS, SERVER_PROFILES, build_config, coerce
from drbench.errors import ConfigError, UsageError
from drbench.levels import Level
from drbench.mocker.config import MetricsProfile, config_from_argv
from drbench.mocker.metrics import EngineGauges, MockerMetrics, cache_config_labels
from drbench.prometheus import (
    GENERIC,
    LMCACHE,
    PROFILE_CHOICES,
    PROFILES,
    SGLANG,
    VLLM,
    MetricSelector,
    UrlRound,
    cache_sizes,
    detect_profile,
    metric_names,
    probe_server,
    profile_by_name,
    reset_hint,
    resolve_profile,
    snapshot_from_text,
    summarize_round,
    with_engine,
)
from drbench.records import RequestRecord, TokenSource
from drbench.sanity import RoundFacts, round_warnings


def page(profile: MetricsProfile, requests=(), *, capacity_blocks: int = 100) -> str:
    """A mocker /metrics page after ``requests`` (prompt tokens, cached tokens) have finished."""
    gauges = EngineGauges(lambda: 0.0, lambda: 0.0, lambda: 0.0, lambda: 0.0)
    m = MockerMetrics(
        "m", gauges, cache_config_labels(16, capacity_blocks, True), profile, capacity_blocks * 16
    )
    for prompt, cached in requests:
        m.on_admit(prompt, cached)
        m.on_first_token(0.01, prompt, cached)
        m.on_end(0.02, 4, "stop", prompt, cached)
    return m.render().decode()


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def rate_round(profile, before: str, after: str) -> dict[str, float | None]:
    names = [*profile.rate_inputs]
    sels = [MetricSelector(n) for n in names]
    ur = UrlRound("u", snapshot_from_text(before, sels), snapshot_from_text(after, sels), (), names)
    r = summarize_round([ur], (), profile.rates, profile.name)
    return {"derived": r.derived, "source": r.hit_rate_source, "rate": r.hit_rate}


# -- detection and choice ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "names, expect",
    [
        ({"vllm:prefix_cache_hits_total", "python_info"}, ("vllm", None)),
        ({"sglang:cached_tokens_total"}, ("sglang", None)),
        ({"vllm:num_requests_running", "lmcache:num_hit_tokens_total"}, ("lmcache", "vllm")),
        ({"sglang:num_running_reqs", "lmcache:num_hit_tokens_total"}, ("lmcache", "sglang")),
        ({"lmcache:num_hit_tokens_total"}, ("lmcache", "vllm")),  # LMCache's own page
    ],
)
def test_detection_reads_the_name_prefixes(names, expect) -> None:
    found = detect_profile(names)
    assert found is not None and (found.name, found.engine) == expect


@pytest.mark.parametrize("names", [set(), {"tgi_queue_size", "python_info"}, {"a:b"}])
def test_no_known_prefix_detects_nothing_and_auto_falls_back_to_generic(names) -> None:
    assert detect_profile(names) is None
    choice = resolve_profile("auto", names)
    assert (choice.profile, choice.chosen_by, choice.warnings) == (GENERIC, "fallback", ())
    assert resolve_profile("auto", None).profile is GENERIC  # no page could be read


def test_a_flag_is_kept_and_warns_only_when_the_names_contradict_it() -> None:
    vllm_names = {"vllm:prefix_cache_hits_total"}
    same = resolve_profile("vllm", vllm_names)
    assert (same.profile, same.chosen_by, same.warnings) == (VLLM, "flag", ())
    other = resolve_profile("sglang", vllm_names)
    assert other.profile is SGLANG and other.detected == "vllm"
    assert other.warnings == (
        "server metrics: --server-profile sglang but the endpoint exposes vLLM metrics; its "
        "SGLang hit rates may be missing (use --server-profile auto or vllm)",
    )
    assert resolve_profile("generic", vllm_names).warnings == ()  # generic reads everything
    with_lmcache = {"vllm:prefix_cache_hits_total", "lmcache:num_hit_tokens_total"}
    assert resolve_profile("vllm", with_lmcache).warnings == ()  # vLLM's names are there
    assert resolve_profile("lmcache", vllm_names).warnings == (
        "server metrics: --server-profile lmcache but the endpoint exposes vLLM metrics; its "
        "LMCache on vLLM hit rates may be missing (use --server-profile auto or vllm)",
    )
    assert resolve_profile("sglang", None).warnings == ()  # nothing seen, nothing to say
    on_sglang = resolve_profile("lmcache", {"sglang:num_running_reqs"}).profile
    assert on_sglang.title == "LMCache on SGLang" and on_sglang.idle_gauges == SGLANG.idle_gauges


def test_lmcache_reads_its_own_rates_first_then_the_engines() -> None:
    p = with_engine(LMCACHE, VLLM)
    assert [r.name for r in p.rates] == [
        "lmcache_retrieve_hit_rate",
        "lmcache_lookup_hit_rate",
        "vllm_prefix_cache_hit_rate",
        "vllm_external_prefix_cache_hit_rate",
        "vllm_prompt_tokens_cached_share",
    ]
    assert p.metrics == (*LMCACHE.metrics, *VLLM.metrics)
    assert (p.idle_gauges, p.reset_path, p.block_size) == (
        VLLM.idle_gauges,
        "/reset_prefix_cache",
        VLLM.block_size,
    )
    assert p.flush_interval_s == 10 and p.flushed_by == "LMCache"
    assert profile_by_name("lmcache") == p


@pytest.mark.parametrize("profile", [*PROFILES, with_engine(LMCACHE, SGLANG)])
def test_every_profile_reports_what_its_rates_and_idle_checks_read(profile) -> None:
    assert set(profile.rate_inputs) <= set(profile.metrics)
    assert set(profile.idle_gauges) <= set(profile.metrics)
    assert len(set(profile.metrics)) == len(profile.metrics)
    assert set(profile.metrics) <= set(GENERIC.metrics)


def test_the_config_choices_are_the_profiles() -> None:
    assert SERVER_PROFILES == PROFILE_CHOICES
    assert build_config({}).server_profile == "auto"
    with_url = {"server_profile": "sglang", "prometheus_url": ["http://h/metrics"]}
    assert build_config(with_url).check().server_profile == "sglang"
    with pytest.raises(ConfigError) as alone:
        build_config({"server_profile": "sglang"}).check()
    assert str(alone.value) == (
        "--server-profile sglang says how to read --prometheus-url, which is not given: add "
        "--prometheus-url URL or drop --server-profile"
    )
    option = next(o for o in OPTIONS if o.name == "server_profile")
    assert OPTIONS[-1] is option and option.flag == "--server-profile"
    with pytest.raises(ConfigError, match="^recipe.yaml:3: server_profile: expected one of auto,"):
        coerce(option, "tgi", "recipe.yaml:3")


def test_a_profile_without_a_metrics_url_is_a_usage_error(capsys) -> None:
    from drbench.cli import main  # noqa: PLC0415

    argv = ["--endpoint", "http://127.0.0.1:9/v1/chat/completions", "--server-profile", "lmcache"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "drbench: --server-profile lmcache says how to read --prometheus-url, which is not "
        "given: add --prometheus-url URL or drop --server-profile"
    ]


def test_the_package_loads_parsing_and_scraping_only_when_used() -> None:
    code = (
        "import importlib, json, sys; import drbench.prometheus as p; "
        "from drbench.prometheus import VLLM; "
        "import drbench.config, drbench.client, drbench.sanity; "
        "light = sorted(m for m in ('prometheus_client', 'drbench.prometheus.parse', "
        "'drbench.prometheus.watch') if m in sys.modules); "
        "from drbench.prometheus import snapshot_from_text; "
        "print(json.dumps([light, 'prometheus_client' in sys.modules, "
        "sorted(p.__all__) == sorted(n for m in p._MODULES "
        "for n in importlib.import_module('drbench.prometheus.' + m).__all__)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [[], True, True]
    import drbench.prometheus as package

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        package.nope  # noqa: B018


def test_reset_hints_come_from_the_profiles_reset_paths() -> None:
    assert "VLLM_SERVER_DEV_MODE=1" in (reset_hint("/v1/reset_prefix_cache") or "")
    assert reset_hint("/flush_cache/") == SGLANG.reset_refused
    assert reset_hint("/admin/reset") is None


# -- cache sizes -------------------------------------------------------------------------------


def test_block_size_and_capacity_from_each_servers_page() -> None:
    assert cache_sizes(page(MetricsProfile.VLLM), VLLM) == (16, 1600)
    assert cache_sizes(page(MetricsProfile.SGLANG), SGLANG) == (None, 1600)  # no page size
    assert cache_sizes(page(MetricsProfile.LMCACHE), profile_by_name("lmcache")) == (16, 1600)
    assert cache_sizes(page(MetricsProfile.VLLM), GENERIC) == (None, None)
    assert cache_sizes("<html>", VLLM) == (None, None)
    no_blocks = 'vllm:cache_config_info{block_size="16",num_gpu_blocks="None"} 1.0\n'
    assert cache_sizes(no_blocks, VLLM) == (16, None)  # "None" is no number


def test_probe_of_an_unreadable_url_falls_back_to_generic() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def go():
        async with aiohttp.ClientSession() as session:
            return await probe_server(session, [f"http://127.0.0.1:{port}/metrics"], "auto", 2.0)

    setup = asyncio.run(go())
    assert (setup.profile, setup.chosen_by, setup.block_size) == (GENERIC, "fallback", None)
    assert setup.to_dict()["name"] == "generic"


# -- per-profile hit rates ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "mock, profile, source",
    [
        (MetricsProfile.VLLM, VLLM, "vllm_prefix_cache_hit_rate"),
        (MetricsProfile.SGLANG, SGLANG, "sglang_prefix_cache_hit_rate"),
        (MetricsProfile.LMCACHE, profile_by_name("lmcache"), "lmcache_retrieve_hit_rate"),
    ],
)
def test_each_profile_computes_its_rate_from_the_mockers_counters(mock, profile, source) -> None:
    cold = [(100, 0), (50, 0)]
    warm = [*cold, (100, 96), (50, 48)]
    got = rate_round(profile, page(mock, cold), page(mock, warm))
    assert got["source"] == source and got["rate"] == pytest.approx(144 / 150)
    assert rate_round(profile, page(mock), page(mock, cold))["rate"] == 0.0


def test_a_profile_ignores_the_other_servers_counters() -> None:
    before = page(MetricsProfile.VLLM) + page(MetricsProfile.SGLANG).replace("lmcache_hit", "x")
    mixed = page(MetricsProfile.VLLM, [(100, 96)]) + page(MetricsProfile.SGLANG, [(10, 0)])
    mixed = mixed.replace("lmcache_hit_rate", "x").replace("memory_usage_bytes", "y")
    before = before.replace("memory_usage_bytes", "y")
    assert rate_round(SGLANG, before, mixed)["derived"] == {"sglang_prefix_cache_hit_rate": 0.0}
    generic = rate_round(GENERIC, before, mixed)
    assert generic["source"] == "vllm_prefix_cache_hit_rate" and generic["rate"] == 0.96


def test_metric_names_lists_samples_not_comments() -> None:
    names = metric_names(page(MetricsProfile.SGLANG))
    assert "sglang:prompt_tokens_total" in names and "sglang:num_running_reqs" in names
    assert not any(n.startswith("#") or n.startswith("vllm:") for n in names)


# -- sanity sentences from the profile ----------------------------------------------------------


def _records(prompt_tokens: int, n: int) -> list[RequestRecord]:
    return [
        RequestRecord(
            prompt_id=f"p{i}",
            level="concurrency=1",
            round=2,
            start_ms=0.0,
            prompt_tokens=prompt_tokens,
            token_source=TokenSource.USAGE,
        )
        for i in range(n)
    ]


def test_a_warm_round_that_reused_nothing_names_the_capacity_or_the_profiles_cause() -> None:
    def cause(**kw) -> str:
        facts = RoundFacts(Level.closed(1), 2, _records(500, 4), 0.0, 0.0, "nonce", **kw)
        (line,) = [w for w in round_warnings(facts) if "reused almost nothing" in w]
        return line.split("Likely cause: ")[1]

    assert cause(capacity_tokens=1000) == (
        "the round's prompts total 2000 tokens, more than the server's cache holds (1000 "
        "tokens), so each is evicted before it is reused: use fewer or shorter prompts"
    )
    assert cause(capacity_tokens=100000, cache_off_cause=SGLANG.cache_off) == (
        "prefix caching is off (SGLang: the radix cache is disabled, --disable-radix-cache), "
        "or the cache is too small for the round's prompts (evicted before reuse)"
    )
    assert cause(block_size=1024, capacity_tokens=1000).startswith("the prompts average 500")
    assert cause().startswith("prefix caching is off (vLLM: --enable-prefix-caching; SGLang:")


# -- the mocker's --metrics-profile pages ------------------------------------------------------


def test_the_mockers_sglang_page_has_sglangs_names_labels_and_timing() -> None:
    fams = families(page(MetricsProfile.SGLANG, [(100, 32)]))
    assert not any(name.startswith("vllm:") for name in fams)
    for name in ("sglang:prompt_tokens", "sglang:cached_tokens", "sglang:generation_tokens"):
        assert fams[name].type == "counter"
        assert fams[name].samples[0].name == name + "_total"
        assert fams[name].samples[0].labels == {"model_name": "m"}
    assert fams["sglang:prompt_tokens"].samples[0].value == 100
    assert fams["sglang:cached_tokens"].samples[0].value == 32
    running = fams["sglang:num_running_reqs"].samples[0]
    assert running.labels == {"model_name": "m", "engine_type": "unified", "tp_rank": "0", "pp_rank": "0"}  # fmt: skip
    assert fams["sglang:max_total_num_tokens"].samples[0].value == 1600
    assert fams["sglang:cache_hit_rate"].samples[0].value == 0.32
    ttft = fams["sglang:time_to_first_token_seconds"]
    assert ttft.type == "histogram"
    assert float(next(s for s in ttft.samples if s.name.endswith("_bucket")).labels["le"]) == 0.1


def test_sglangs_token_counters_move_when_a_request_finishes() -> None:
    gauges = EngineGauges(lambda: 1.0, lambda: 0.0, lambda: 0.0, lambda: 0.0)
    m = MockerMetrics("m", gauges, None, MetricsProfile.SGLANG, 1600)
    m.on_admit(100, 32)
    m.on_first_token(0.01, 100, 32)
    assert families(m.render().decode())["sglang:prompt_tokens"].samples[0].value == 0
    m.on_end(0.02, 4, "stop", 100, 32)
    assert families(m.render().decode())["sglang:prompt_tokens"].samples[0].value == 100


def test_the_mockers_lmcache_page_is_vllm_with_lmcache_as_its_connector() -> None:
    fams = families(page(MetricsProfile.LMCACHE, [(100, 0), (100, 96)]))
    value = lambda name: fams[name].samples[0].value  # noqa: E731
    assert value("vllm:prefix_cache_queries") == value("vllm:prefix_cache_hits") == 0
    assert value("vllm:external_prefix_cache_queries") == value("lmcache:num_requested_tokens")
    assert value("vllm:external_prefix_cache_hits") == value("lmcache:num_hit_tokens") == 96
    assert value("lmcache:num_lookup_hits") == 96 and value("lmcache:num_lookup_tokens") == 200
    assert value("lmcache:num_stored_tokens") == 104  # what each request computed
    assert fams["lmcache:num_hit_tokens"].samples[0].labels == {"model_name": "m", "worker_id": "0"}
    info = fams["vllm:cache_config_info"].samples[0].labels
    assert info["enable_prefix_caching"] == "False"
    # per interval, as LMCache's: the first read covers the requests, the next an idle interval
    assert value("lmcache:retrieve_hit_rate") == 0.48
    idle = families(MockerMetrics("m", EngineGauges(*[lambda: 0.0] * 4), None, MetricsProfile.LMCACHE).render().decode())  # fmt: skip
    assert idle["lmcache:retrieve_hit_rate"].samples[0].value == 1.0


def test_the_metrics_profile_flag() -> None:
    assert config_from_argv([]).metrics_profile is MetricsProfile.VLLM
    assert (
        config_from_argv(["--metrics-profile", "sglang"]).metrics_profile is MetricsProfile.SGLANG
    )
    with pytest.raises(UsageError, match="--metrics-profile: invalid choice: 'tgi'"):
        config_from_argv(["--metrics-profile", "tgi"])
