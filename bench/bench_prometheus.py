"""How long one /metrics scrape takes to parse, with and without the line prefilter.

The watcher parses in the benchmark's event loop, so a slow parse would delay token timestamps.
This builds a vLLM-sized exposition with prometheus_client (every vLLM histogram with its real
buckets, several engines) and prints the parse time per scrape.  Bounded: about a second.

    python bench/bench_prometheus.py [--engines 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, uninstalled

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from drbench.prometheus import (
    MetricSelector,
    derived_input_names,
    preset_selectors,
    snapshot_from_text,
)

LATENCY = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920]
TTFT = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
TOKENS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]
HISTOGRAMS = {
    "vllm:time_to_first_token_seconds": TTFT,
    "vllm:inter_token_latency_seconds": TTFT,
    "vllm:request_time_per_output_token_seconds": TTFT,
    "vllm:e2e_request_latency_seconds": LATENCY,
    "vllm:request_queue_time_seconds": LATENCY,
    "vllm:request_prefill_time_seconds": LATENCY,
    "vllm:request_decode_time_seconds": LATENCY,
    "vllm:request_inference_time_seconds": LATENCY,
    "vllm:request_prompt_tokens": TOKENS,
    "vllm:request_generation_tokens": TOKENS,
    "vllm:request_params_max_tokens": TOKENS,
    "vllm:iteration_tokens_total": TOKENS,
}


def vllm_page(engines: int) -> str:
    reg = CollectorRegistry()
    labels = ["model_name", "engine"]
    for name, buckets in HISTOGRAMS.items():
        h = Histogram(name, name, labels, buckets=buckets, registry=reg)
        for e in range(engines):
            for i in range(50):
                h.labels("m", str(e)).observe(i * 0.37)
    for name in ("prefix_cache_queries", "prefix_cache_hits", "prompt_tokens", "generation_tokens"):
        c = Counter(f"vllm:{name}", name, labels, registry=reg)
        for e in range(engines):
            c.labels("m", str(e)).inc(1000 + e)
    for name in ("num_requests_running", "num_requests_waiting", "kv_cache_usage_perc"):
        g = Gauge(f"vllm:{name}", name, labels, registry=reg)
        for e in range(engines):
            g.labels("m", str(e)).set(e)
    return generate_latest(reg).decode()


def per_call_ms(fn, budget_s: float = 0.3) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget_s:
        fn()
        n += 1
    return (time.perf_counter() - start) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engines", type=int, default=2)
    args = ap.parse_args()
    page = vllm_page(args.engines)
    extra = [MetricSelector(n) for n in derived_input_names()]
    sels = [*preset_selectors(), *extra]
    print(f"page: {len(page) / 1024:.0f} KiB, {page.count(chr(10))} lines, {args.engines} engines")
    full = per_call_ms(lambda: list(text_string_to_metric_families(page)))
    print(f"prometheus_client parser, whole page: {full:.2f} ms per scrape")
    filtered = per_call_ms(lambda: snapshot_from_text(page, sels))
    print(f"snapshot_from_text, preset ({len(sels)} selectors): {filtered:.2f} ms per scrape")


if __name__ == "__main__":
    main()
