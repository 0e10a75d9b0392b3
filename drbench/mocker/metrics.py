"""Prometheus metrics under the names real servers use, on a registry of the server's own.

``--metrics-profile`` picks whose names, types, labels and histogram buckets ``/metrics`` shows,
so a benchmarker pointed at the mocker reads the series it would read from that server
(../shared/notes section 1):

- ``vllm``: vLLM's (``model_name``, ``engine="0"``), with its info-style
  ``vllm:cache_config_info`` (value 1, the cache config as labels).
- ``sglang``: SGLang's: scheduler gauges labelled ``model_name``, ``engine_type``, ``tp_rank``,
  ``pp_rank``; token counters and latency histograms labelled ``model_name``, counted when a
  request finishes, as SGLang's tokenizer manager does; ``sglang:max_total_num_tokens`` is the
  cache capacity.
- ``lmcache``: vLLM started with LMCache as its KV connector and its own prefix caching off
  (LMCache's benchmarks run it so): the mock's one cache plays LMCache's tier, so vLLM's local
  prefix counters stay 0 while ``vllm:external_prefix_cache_*`` and LMCache's ``lmcache:*``
  counters (``model_name``, ``worker_id``) count its hits.  They are published at once: the
  mock has no 10 s flush.

Every profile adds the two bare gauges the original README queries, ``lmcache_hit_rate`` and
``memory_usage_bytes``.  Gauges of engine state are read lazily at scrape time through
callbacks, so the engine's hot path never touches a metric; counters and histograms move once or
twice per request.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from drbench.mocker.config import MetricsProfile

__all__ = [
    "E2E_BUCKETS",
    "SGLANG_E2E_BUCKETS",
    "SGLANG_TTFT_BUCKETS",
    "TTFT_BUCKETS",
    "EngineGauges",
    "MockerMetrics",
    "cache_config_labels",
]

# fmt: off
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
                5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
               120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
SGLANG_TTFT_BUCKETS = (0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0,
                       80.0, 100.0, 200.0, 400.0)
SGLANG_E2E_BUCKETS = (0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0,
                      80.0, 100.0, 200.0, 400.0, 600.0, 1200.0, 1800.0, 2400.0)
# fmt: on
_HIT_RATE_WINDOW = 1000  # requests, like the windowed hit rate vLLM logs


def cache_config_labels(block_size: int, num_blocks: int, prefix_caching: bool) -> dict[str, str]:
    """The labels of ``vllm:cache_config_info``: as vLLM's ``CacheConfig.metrics_info()``
    (every field as a string, ``str(True)`` is ``"True"``) plus ``engine``; no ``model_name``.
    The fields a mock has no value for carry vLLM's defaults."""
    return {
        "block_size": str(block_size),
        "cache_dtype": "auto",
        "calculate_kv_scales": "False",
        "cpu_offload_gb": "0",
        "enable_prefix_caching": str(prefix_caching),
        "gpu_memory_utilization": "0.9",
        "is_attention_free": "False",
        "num_cpu_blocks": "None",
        "num_gpu_blocks": str(num_blocks),
        "num_gpu_blocks_override": "None",
        "sliding_window": "None",
        "swap_space_bytes": "0",
        "engine": "0",
    }


@dataclass(frozen=True, slots=True)
class EngineGauges:
    """Callbacks read at scrape time."""

    running: Callable[[], float]
    waiting: Callable[[], float]
    kv_usage: Callable[[], float]
    memory_bytes: Callable[[], float]


class _Vllm:
    """vLLM's metric set; ``external`` counts the cache as a KV connector's (LMCache) tier."""

    def __init__(
        self,
        reg: CollectorRegistry,
        model_name: str,
        gauges: EngineGauges,
        cache_info: Mapping[str, str] | None,
        external: bool,
    ) -> None:
        if cache_info is not None:
            info = {**cache_info, "enable_prefix_caching": "False"} if external else cache_info
            # vLLM emulates an Info metric with a gauge permanently set to 1.
            Gauge(
                "vllm:cache_config_info",
                "Information of the LLMEngine CacheConfig",
                list(info),
                registry=reg,
            ).labels(**info).set(1)
        labels = self.labels = {"model_name": model_name, "engine": "0"}
        names = list(labels)
        for field_name, name, doc in (
            ("running", "vllm:num_requests_running", "Number of requests in model execution batches."),
            ("waiting", "vllm:num_requests_waiting", "Number of requests waiting to be processed."),
            ("kv_usage", "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage."),
        ):  # fmt: skip
            Gauge(name, doc, names, registry=reg).labels(**labels).set_function(
                getattr(gauges, field_name)
            )

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, names, registry=reg).labels(**labels)

        self.queries = counter(
            "vllm:prefix_cache_queries",
            "Prefix cache queries, in terms of number of queried tokens.",
        )
        self.hits = counter(
            "vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens."
        )
        self.prompt = counter("vllm:prompt_tokens", "Number of prefill tokens processed.")
        self.generation = counter(
            "vllm:generation_tokens", "Number of generation tokens processed."
        )
        self.cached = counter(
            "vllm:prompt_tokens_cached", "Number of cached prompt tokens (local + external)."
        )
        self.external = external
        if external:
            self.ext_queries = counter(
                "vllm:external_prefix_cache_queries",
                "External prefix cache queries from KV connector cross-instance cache sharing, "
                "in terms of number of queried tokens.",
            )
            self.ext_hits = counter(
                "vllm:external_prefix_cache_hits",
                "External prefix cache hits from KV connector cross-instance cache sharing, in "
                "terms of number of cached tokens.",
            )
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            names,
            buckets=TTFT_BUCKETS,
            registry=reg,
        ).labels(**labels)
        self.e2e = Histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            names,
            buckets=E2E_BUCKETS,
            registry=reg,
        ).labels(**labels)
        self.success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            [*names, "finished_reason"],
            registry=reg,
        )

    def on_admit(self, prompt_tokens: int, cached_tokens: int) -> None:
        if self.external:  # vLLM's own prefix caching is off: the connector's tier answers
            self.ext_queries.inc(prompt_tokens)
            self.ext_hits.inc(cached_tokens)
        else:
            self.queries.inc(prompt_tokens)
            self.hits.inc(cached_tokens)

    def on_first_token(self, ttft_s: float, prompt_tokens: int, cached_tokens: int) -> None:
        self.ttft.observe(ttft_s)
        self.prompt.inc(prompt_tokens)
        self.cached.inc(cached_tokens)

    def on_end(self, e2e_s: float | None, generated: int, finished_reason: str) -> None:
        if generated:
            self.generation.inc(generated)
        self.success.labels(**self.labels, finished_reason=finished_reason).inc()
        if e2e_s is not None:
            self.e2e.observe(e2e_s)


class _Sglang:
    """SGLang's metric set (``python/sglang/srt/metrics/collector.py``)."""

    def __init__(
        self, reg: CollectorRegistry, model_name: str, gauges: EngineGauges, capacity_tokens: int
    ) -> None:
        sched = {"model_name": model_name, "engine_type": "unified", "tp_rank": "0", "pp_rank": "0"}
        self._last_hit_rate = 0.0

        def gauge(name: str, doc: str, read: Callable[[], float]) -> None:
            Gauge(name, doc, list(sched), registry=reg).labels(**sched).set_function(read)

        gauge("sglang:num_running_reqs", "The number of running requests.", gauges.running)
        gauge(
            "sglang:num_queue_reqs", "The number of requests in the waiting queue.", gauges.waiting
        )
        gauge("sglang:token_usage", "The token usage.", gauges.kv_usage)
        gauge(
            "sglang:num_used_tokens",
            "The number of used tokens.",
            lambda: round(gauges.kv_usage() * capacity_tokens),
        )
        gauge(
            "sglang:max_total_num_tokens",
            "Maximum total number of tokens in the KV cache pool.",
            lambda: float(capacity_tokens),
        )
        gauge("sglang:cache_hit_rate", "The prefix cache hit rate.", lambda: self._last_hit_rate)
        labels = {"model_name": model_name}
        names = list(labels)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, names, registry=reg).labels(**labels)

        self.prompt = counter("sglang:prompt_tokens_total", "Number of prefill tokens processed.")
        self.generation = counter(
            "sglang:generation_tokens_total", "Number of generation tokens processed."
        )
        self.cached = counter("sglang:cached_tokens_total", "Number of cached prompt tokens.")
        self.requests = counter("sglang:num_requests_total", "Number of requests processed.")
        self.ttft = Histogram(
            "sglang:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            names,
            buckets=SGLANG_TTFT_BUCKETS,
            registry=reg,
        ).labels(**labels)
        self.e2e = Histogram(
            "sglang:e2e_request_latency_seconds",
            "Histogram of End-to-end request latency in seconds",
            names,
            buckets=SGLANG_E2E_BUCKETS,
            registry=reg,
        ).labels(**labels)

    def on_admit(self, prompt_tokens: int, cached_tokens: int) -> None:
        """SGLang's gauge is the last prefill batch's hit rate (here: the last request's)."""
        self._last_hit_rate = cached_tokens / prompt_tokens if prompt_tokens else 0.0

    def on_first_token(self, ttft_s: float, prompt_tokens: int, cached_tokens: int) -> None:
        self.ttft.observe(ttft_s)

    def on_finish(
        self, e2e_s: float | None, generated: int, prompt_tokens: int, cached_tokens: int
    ) -> None:
        """The token counters move when a request finishes, as in SGLang's tokenizer manager."""
        self.prompt.inc(prompt_tokens)
        self.cached.inc(cached_tokens)
        self.generation.inc(generated)
        self.requests.inc()
        if e2e_s is not None:
            self.e2e.observe(e2e_s)


class _Lmcache:
    """LMCache's counters and gauges (``lmcache/observability.py``); the mock's cache is its."""

    def __init__(self, reg: CollectorRegistry, model_name: str, gauges: EngineGauges) -> None:
        labels = {"model_name": model_name, "worker_id": "0"}
        names = list(labels)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, names, registry=reg).labels(**labels)

        self.retrieves = counter(
            "lmcache:num_retrieve_requests", "Total number of retrieve requests"
        )
        self.stores = counter("lmcache:num_store_requests", "Total number of store requests")
        self.lookups = counter("lmcache:num_lookup_requests", "Total number of lookup requests")
        self.requested = counter(
            "lmcache:num_requested_tokens", "Total number of tokens requested to retrieve"
        )
        self.hit = counter("lmcache:num_hit_tokens", "Total number of tokens hit in retrieval")
        self.lookup_tokens = counter(
            "lmcache:num_lookup_tokens", "Total number of tokens requested in lookup"
        )
        self.lookup_hits = counter(
            "lmcache:num_lookup_hits", "Total number of tokens hit in lookup"
        )
        self.stored = counter("lmcache:num_stored_tokens", "Total number of tokens stored")
        self._since_read = [0, 0]  # requested, hit since the rate gauge was last read
        Gauge(
            "lmcache:retrieve_hit_rate", "Hit rate of retrieve requests", names, registry=reg
        ).labels(**labels).set_function(self._interval_rate)
        Gauge("lmcache:local_cache_usage", "Local cache usage (bytes)", names, registry=reg).labels(
            **labels
        ).set_function(gauges.memory_bytes)

    def on_admit(self, prompt_tokens: int, cached_tokens: int) -> None:
        self.lookups.inc()
        self.lookup_tokens.inc(prompt_tokens)
        self.lookup_hits.inc(cached_tokens)
        self.retrieves.inc()
        self.requested.inc(prompt_tokens)
        self.hit.inc(cached_tokens)
        self._since_read[0] += prompt_tokens
        self._since_read[1] += cached_tokens

    def on_finish(self, completed: bool, prompt_tokens: int, cached_tokens: int) -> None:
        if completed:
            self.stores.inc()
            self.stored.inc(prompt_tokens - cached_tokens)

    def _interval_rate(self) -> float:
        """Per interval, as LMCache's: 1 when there was no retrieve since the last read."""
        requested, hit = self._since_read
        self._since_read[0] = self._since_read[1] = 0
        return hit / requested if requested else 1.0


class MockerMetrics:
    """The server's metric set; one instance per server, never the global registry."""

    def __init__(
        self,
        model_name: str,
        gauges: EngineGauges,
        cache_info: Mapping[str, str] | None = None,
        profile: MetricsProfile = MetricsProfile.VLLM,
        capacity_tokens: int = 0,
    ) -> None:
        reg = self.registry = CollectorRegistry(auto_describe=True)
        self.profile = profile
        self._vllm: _Vllm | None = None
        self._sglang: _Sglang | None = None
        self._lmcache: _Lmcache | None = None
        if profile is MetricsProfile.SGLANG:
            self._sglang = _Sglang(reg, model_name, gauges, capacity_tokens)
        else:
            external = profile is MetricsProfile.LMCACHE
            self._vllm = _Vllm(reg, model_name, gauges, cache_info, external)
            self._lmcache = _Lmcache(reg, model_name, gauges) if external else None
        self._window: deque[tuple[int, int]] = deque()
        self._window_sums = [0, 0]
        Gauge(
            "lmcache_hit_rate",
            "Prefix-cache token hit rate over the last 1000 requests.",
            registry=reg,
        ).set_function(self._hit_rate)
        Gauge(
            "memory_usage_bytes", "KV-cache bytes held by the prefix cache.", registry=reg
        ).set_function(gauges.memory_bytes)

    def on_admit(self, prompt_tokens: int, cached_tokens: int) -> None:
        """A request was scheduled: the cache was queried for its prompt."""
        for part in (self._vllm, self._sglang, self._lmcache):
            if part is not None:
                part.on_admit(prompt_tokens, cached_tokens)
        window, sums = self._window, self._window_sums
        window.append((prompt_tokens, cached_tokens))
        sums[0] += prompt_tokens
        sums[1] += cached_tokens
        if len(window) > _HIT_RATE_WINDOW:
            q, h = window.popleft()
            sums[0] -= q
            sums[1] -= h

    def on_first_token(self, ttft_s: float, prompt_tokens: int, cached_tokens: int) -> None:
        """Prefill finished: the uncached prompt tokens were computed."""
        for part in (self._vllm, self._sglang):
            if part is not None:
                part.on_first_token(ttft_s, prompt_tokens, cached_tokens)

    def on_end(
        self,
        e2e_s: float | None,
        generated: int,
        finished_reason: str,
        prompt_tokens: int = 0,
        cached_tokens: int = 0,
    ) -> None:
        """A request left the engine (``e2e_s`` is None when it was aborted)."""
        if self._vllm is not None:
            self._vllm.on_end(e2e_s, generated, finished_reason)
        if self._sglang is not None:
            self._sglang.on_finish(e2e_s, generated, prompt_tokens, cached_tokens)
        if self._lmcache is not None:
            self._lmcache.on_finish(e2e_s is not None, prompt_tokens, cached_tokens)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)

    def _hit_rate(self) -> float:
        queries, hits = self._window_sums
        return hits / queries if queries else 0.0
