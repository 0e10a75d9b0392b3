"""Server metrics: scrape a server's Prometheus ``/metrics`` around each round and report them.

Modules, one concern each:

- ``profiles.py``  what each server exposes (vLLM, SGLang, LMCache, generic): metric names,
  derived hit rates, idle gauges, reset path, block-size and capacity sources, notes; detection.
- ``parse.py``     selectors and parsing an exposition into snapshots (pure).
- ``rounds.py``    one round's deltas, quantiles and derived hit rates from snapshots (pure).
- ``watch.py``     the async scraper the runner drives (``ServerMetricsWatcher``).
- ``capacity.py``  the one scrape before round 1: the profile, the cache block size, capacity.

The public names of all five are importable from here, each loaded on first use (PEP 562): so
``config.py``, ``client.py`` and ``sanity.py`` read ``profiles.py`` (standard library only) at
start-up, while ``parse.py`` (prometheus_client) and ``watch.py`` (aiohttp) load only when a run
scrapes, which keeps ``--help`` and the first request fast (tests/test_startup.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from drbench.prometheus.capacity import (
        ServerSetup,
        cache_sizes,
        probe_server,
        read_size,
    )
    from drbench.prometheus.parse import (
        ExpositionError,
        HistogramValue,
        LabelMatcher,
        MetricKind,
        MetricSelector,
        MetricValue,
        Snapshot,
        is_idle,
        metric_names,
        parse_selectors,
        preset_selectors,
        snapshot_from_text,
    )
    from drbench.prometheus.profiles import (
        DERIVED_RATES,
        GENERIC,
        IDLE_GAUGES,
        LMCACHE,
        PRESET_METRICS,
        PROFILE_CHOICES,
        PROFILES,
        SGLANG,
        VLLM,
        DerivedRate,
        ProfileChoice,
        ServerProfile,
        SizeSource,
        detect_profile,
        profile_by_name,
        reset_hint,
        resolve_profile,
        with_engine,
    )
    from drbench.prometheus.rounds import (
        MetricReport,
        Missing,
        RoundServerMetrics,
        UrlRound,
        counter_delta,
        derived_input_names,
        histogram_delta,
        histogram_quantile,
        summarize_round,
    )
    from drbench.prometheus.watch import (
        MAX_SCRAPE_BYTES,
        ScrapeError,
        ServerMetricsWatcher,
        fetch_text,
        scrape,
    )

__all__ = [
    "DERIVED_RATES",
    "GENERIC",
    "IDLE_GAUGES",
    "LMCACHE",
    "MAX_SCRAPE_BYTES",
    "PRESET_METRICS",
    "PROFILES",
    "PROFILE_CHOICES",
    "SGLANG",
    "VLLM",
    "DerivedRate",
    "ExpositionError",
    "HistogramValue",
    "LabelMatcher",
    "MetricKind",
    "MetricReport",
    "MetricSelector",
    "MetricValue",
    "Missing",
    "ProfileChoice",
    "RoundServerMetrics",
    "ScrapeError",
    "ServerMetricsWatcher",
    "ServerProfile",
    "ServerSetup",
    "SizeSource",
    "Snapshot",
    "UrlRound",
    "cache_sizes",
    "counter_delta",
    "derived_input_names",
    "detect_profile",
    "fetch_text",
    "histogram_delta",
    "histogram_quantile",
    "is_idle",
    "metric_names",
    "parse_selectors",
    "preset_selectors",
    "probe_server",
    "profile_by_name",
    "read_size",
    "reset_hint",
    "resolve_profile",
    "scrape",
    "snapshot_from_text",
    "summarize_round",
    "with_engine",
]

#: The submodules, lightest first: a name is looked up in them in this order, so a profiles name
#: never loads prometheus_client, and each later module imports the earlier ones anyway.
_MODULES = ("profiles", "parse", "rounds", "capacity", "watch")


def __getattr__(name: str) -> object:
    """Load the module that defines ``name`` on first use (only then its dependencies)."""
    if name in __all__:
        for module in _MODULES:
            loaded = importlib.import_module(f"{__name__}.{module}")
            if name in getattr(loaded, "__all__", ()):
                return getattr(loaded, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
