"""Prometheus metrics under the names real servers use, on a registry of the server's own.

vLLM's names, types, labels (``model_name``, ``engine="0"``) and histogram buckets, so a
benchmarker pointed at the mocker reads the same series it would read from vLLM; plus the two
bare gauges the original README queries, ``lmcache_hit_rate`` and ``memory_usage_bytes``, and
vLLM's info-style ``vllm:cache_config_info`` (value 1, the cache config as labels).
Gauges of engine state are read lazily at scrape time through callbacks, so the engine's hot
path never touches a metric; counters and histograms move once or twice per request.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["E2E_BUCKETS", "TTFT_BUCKETS", "EngineGauges", "MockerMetrics", "cache_config_labels"]

# fmt: off
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
                5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
               120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
# fmt: on
_HIT_RATE_WINDOW = 1000  # requests, like the windowed hit rate vLLM logs

# (name, help) of the labelled counters, in the order __init__ unpacks them; vLLM's help texts.
_COUNTERS = (
    ("vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens."),
    ("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens."),
    ("vllm:prompt_tokens", "Number of prefill tokens processed."),
    ("vllm:generation_tokens", "Number of generation tokens processed."),
    ("vllm:prompt_tokens_cached", "Number of cached prompt tokens (local prefix cache hits)."),
)
_HISTOGRAMS = (
    (
        "vllm:time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
        TTFT_BUCKETS,
    ),
    (
        "vllm:e2e_request_latency_seconds",
        "Histogram of e2e request latency in seconds.",
        E2E_BUCKETS,
    ),
)
# (EngineGauges field, name, help) of the labelled gauges read at scrape time.
_GAUGES = (
    ("running", "vllm:num_requests_running", "Number of requests in model execution batches."),
    ("waiting", "vllm:num_requests_waiting", "Number of requests waiting to be processed."),
    ("kv_usage", "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage."),
)


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


class MockerMetrics:
    """The server's metric set; one instance per server, never the global registry."""

    def __init__(
        self, model_name: str, gauges: EngineGauges, cache_info: Mapping[str, str] | None = None
    ) -> None:
        reg = self.registry = CollectorRegistry(auto_describe=True)
        if cache_info is not None:
            # vLLM emulates an Info metric with a gauge permanently set to 1.
            Gauge(
                "vllm:cache_config_info",
                "Information of the LLMEngine CacheConfig",
                list(cache_info),
                registry=reg,
            ).labels(**cache_info).set(1)
        labels = self._labels = {"model_name": model_name, "engine": "0"}
        names = list(labels)
        for field_name, name, doc in _GAUGES:
            child = Gauge(name, doc, names, registry=reg).labels(**labels)
            child.set_function(getattr(gauges, field_name))
        self._queries, self._hits, self._prompt, self._generation, self._cached = (
            Counter(name, doc, names, registry=reg).labels(**labels) for name, doc in _COUNTERS
        )
        self._ttft, self._e2e = (
            Histogram(name, doc, names, buckets=buckets, registry=reg).labels(**labels)
            for name, doc, buckets in _HISTOGRAMS
        )
        self._success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            [*names, "finished_reason"],
            registry=reg,
        )
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
        self._queries.inc(prompt_tokens)
        self._hits.inc(cached_tokens)
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
        self._ttft.observe(ttft_s)
        self._prompt.inc(prompt_tokens)
        self._cached.inc(cached_tokens)

    def on_end(self, e2e_s: float | None, generated: int, finished_reason: str) -> None:
        """A request left the engine (``e2e_s`` is None when it was aborted)."""
        if generated:
            self._generation.inc(generated)
        self._success.labels(**self._labels, finished_reason=finished_reason).inc()
        if e2e_s is not None:
            self._e2e.observe(e2e_s)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)

    def _hit_rate(self) -> float:
        queries, hits = self._window_sums
        return hits / queries if queries else 0.0
