"""The run configuration: one table of options that the CLI, recipes and docs are all built from.

``OPTIONS`` is the single source of truth: each entry names a ``BenchConfig`` field, its type, its
default and its help text.  ``cli.py`` builds argparse from it (every flag defaults to "not set"),
recipes validate their keys against it, and docs/RECIPE_GUIDE.md's key table is generated from it,
so the three cannot drift.  ``build_config`` merges defaults < recipe < flags and checks the result.
No I/O here except what the caller passes in.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, get_args

from drbench.errors import ConfigError
from drbench.extras import (
    extra_body_problem,
    parse_headers,
    redact_extra_body,
    redact_header_lines,
)
from drbench.levels import Level, format_rate
from drbench.prometheus.profiles import PROFILE_CHOICES
from drbench.records import (
    ColdStart,
    EndpointKind,
    ExecutorKind,
    ItlMode,
    Lang,
    OnLostWorker,
    Round2Mode,
)
from drbench.redact import redact_config
from drbench.textsplit import split_outside_braces
from drbench.urls import resolve_endpoint, url_problem

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "OPTIONS",
    "BenchConfig",
    "Option",
    "build_config",
    "coerce",
    "flag_label",
    "int_or_auto",
    "redacted",
]

COLD_START_POLICIES: tuple[ColdStart, ...] = get_args(ColdStart)
ENDPOINT_TYPES: tuple[EndpointKind, ...] = get_args(EndpointKind)
DEFAULT_MAX_TOKENS = 128
ROUND2_MODES: tuple[Round2Mode, ...] = get_args(Round2Mode)
EXECUTORS: tuple[ExecutorKind, ...] = get_args(ExecutorKind)
ON_LOST_WORKER: tuple[OnLostWorker, ...] = get_args(OnLostWorker)

#: How an option's value is read and checked (``_COERCERS``) and what argparse type it gets.
OptionKind = Literal[
    "str",
    "int",
    "float",
    "bool",
    "int_list",
    "float_list",
    "number_list",  # floats, from "50,90,95" as well as "50 90 95" (the CLI passes strings)
    "str_list",
    "line_list",  # a list whose items hold spaces: one item per flag (--header), never split
    "choice",
    "int_auto",
    "json",  # a JSON object: text or @FILE from a flag, a mapping or text from a recipe
]
SERVER_PROFILES = PROFILE_CHOICES  # auto, then every profile of drbench/prometheus/profiles.py


@dataclass(frozen=True)
class Option:
    """One configurable setting: a BenchConfig field, a ``--flag`` and a recipe key at once."""

    name: str
    kind: OptionKind
    help: str
    group: str
    choices: tuple[str, ...] = ()
    metavar: str | tuple[str, ...] | None = None  # a pair for NAME [KEY=VALUE ...]
    secret: bool = False
    low: float | None = None  # numbers (and every item of an int_list) must be >= low ...
    high: float | None = None  # ... and <= high; NaN and infinities never pass
    low_open: bool = False  # True: > low instead of >= low
    url: bool = False  # the value (every item of a list) must be an http(s) URL (urls.py)
    allow_inf: bool = False  # +inf passes the range check (--request-rate inf)
    default_words: str | None = None  # --help's "(default: ...)" when the field's value says less

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def range_words(self) -> str:
        """The allowed range in words ("from 1 to 100", "above 0 and at most 86400"), or ""."""
        if self.low is None or self.high is None:
            return ""
        lo, hi = _plain_number(self.low), _plain_number(self.high)
        words = f"above {lo} and at most {hi}" if self.low_open else f"from {lo} to {hi}"
        return words + (", or inf" if self.allow_inf else "")

    def range_problem(self, value: float) -> str | None:
        """Why a number is outside this option's range (NaN and infinities always are)."""
        if self.low is None or self.high is None:
            return None
        if self.allow_inf and value == math.inf:
            return None
        inside = math.isfinite(value) and self.low <= value <= self.high
        if inside and not (self.low_open and value == self.low):
            return None
        return f"must be {self.range_words} (got {value})"


def _o(name: str, kind: OptionKind, group: str, help: str, **kw: Any) -> Option:
    return Option(name=name, kind=kind, group=group, help=help, **kw)


OPTIONS: tuple[Option, ...] = (
    _o(
        "endpoint",
        "str",
        "target",
        "The server: a chat-completions or completions URL (http://localhost:8000/v1/chat/completions; the body follows the path), or a base URL (http://localhost:8000 or .../v1) that --endpoint-type completes.",
        metavar="URL",
        url=True,
    ),
    _o(
        "endpoint_type",
        "choice",
        "target",
        "The API a base --endpoint URL gets: 'chat' appends /v1/chat/completions (or /chat/completions after /v1), 'completions' /v1/completions; a full --endpoint path already says which.",
        choices=ENDPOINT_TYPES,
        default_words="chat",
    ),
    _o(
        "model",
        "str",
        "target",
        "Model name to request.",
        metavar="NAME",
        default_words="the first model GET /v1/models lists",
    ),
    _o(
        "api_key",
        "str",
        "target",
        "Bearer token, never written to any output.",
        metavar="KEY",
        secret=True,
        default_words="$OPENAI_API_KEY",
    ),
    _o(
        "header",
        "line_list",
        "target",
        "An HTTP header sent with every request, 'NAME: VALUE' (or NAME=VALUE); repeat the flag for several (a router's session id, a gateway's key). Values of Authorization, Cookie and names with key, token, secret or password are masked in every output.",
        metavar="'NAME: VALUE'",
    ),
    _o(
        "extra_body",
        "json",
        "target",
        """A JSON object merged into every request body, or @FILE.json to read it, e.g. '{"top_p": 0.9, "chat_template_kwargs": {"enable_thinking": false}}'; keys the tool sets (model, messages, prompt, stream, stream_options, max_tokens, temperature, ignore_eos) are refused.""",
        metavar="JSON",
    ),
    _o(
        "timeout",
        "float",
        "target",
        "Per-request timeout in seconds; a request past it is recorded as a failure.",
        metavar="S",
        low=0,
        high=86_400,
        low_open=True,
    ),
    _o(
        "dataset",
        "str",
        "workload",
        "JSONL file (one object a line) or JSON array; a record has 'text', 'messages' or 'prompt', optionally 'max_tokens', 'followup' (or 'followups', one per later round), 'prefix_group' (prompts sharing a prefix share their nonce) and 'timestamp' (ms, for --fixed-schedule).",
        metavar="FILE",
    ),
    _o(
        "workload",
        "str_list",
        "workload",
        "Generate the prompts instead of --dataset: a workload NAME, then its KEY=VALUE settings, e.g. --workload shared-prefix groups=8 prompts=4 prefix=2000. Workloads: shared-prefix, sessions, long-doc, mooncake (docs/workloads.md has every key and default).",
        metavar=("NAME", "KEY=VALUE"),
    ),
    _o(
        "write_workload",
        "str",
        "workload",
        "Write the --workload's records to FILE (benchmark JSONL, usable as --dataset) and exit without sending anything.",
        metavar="FILE",
    ),
    _o(
        "sweep",
        "str",
        "sweep",
        "Capacity sweep: one measured run of the --workload per value of one of its keys (groups, docs, users...), each in its own subdirectory of --output-dir, then sweep.json, sweep.csv and sweep.png at the top: KEY=V1,V2,... or KEY=LO:HI[:STEP] or KEY=LO:HI:xF (geometric), e.g. docs=1:16 or users=1:64:x2.",
        metavar="KEY=VALUES",
    ),
    _o(
        "sweep_threshold",
        "float",
        "sweep",
        "The hit rate the sweep reports the working set of: where the measured hit rate of the measured round falls below it, interpolated between the two values around it.",
        metavar="RATE",
        low=0,
        high=1,
        low_open=True,
    ),
    _o(
        "slo_search",
        "str_list",
        "sweep",
        "Sessions within an SLO: the largest U for which --workload sessions with users=U at concurrency U keeps round K's TTFT percentile within the bound, by doubling then bisection, each probe a measured run in its own subdirectory (slo_search.json at the top): ttft_p95_ms=MS (or p50/p90/p99), optionally round=K (else the last round) and max=N (else 64).",
        metavar="KEY=VALUE",
    ),
    _o(
        "num_samples",
        "int",
        "workload",
        "How many records to send per round: the first N, or a seeded sample with --shuffle.",
        metavar="N",
        default_words="all",
        low=1,
        high=10_000_000,
    ),
    _o(
        "shuffle",
        "bool",
        "workload",
        "Take a seeded random sample of --num-samples records instead of the first ones.",
    ),
    _o(
        "seed",
        "int",
        "workload",
        "Seed for --shuffle, bootstrap intervals and anything else random.",
        metavar="N",
        low=0,
        high=2**32 - 1,
    ),
    _o(
        "max_tokens",
        "int",
        "workload",
        "max_tokens of every request; when given (flag or recipe) it wins over a record's own 'max_tokens'.",
        metavar="N",
        default_words="the record's 'max_tokens', else 128",
        low=1,
        high=1_000_000,
    ),
    _o(
        "temperature",
        "float",
        "workload",
        "Sampling temperature (0 keeps answers, and so round-2 continuations, repeatable).",
        metavar="T",
        low=0,
        high=2,
    ),
    _o(
        "ignore_eos",
        "bool",
        "workload",
        "Send ignore_eos: true (vLLM, SGLang): every answer runs to its max_tokens, so output lengths do not drift between rounds.",
    ),
    _o(
        "tokenizer",
        "str",
        "workload",
        "Local tokenizer (a tokenizer.json, or a model folder with the transformers package) for token counts when the server sends no usage.",
        metavar="PATH",
        default_words="the documented estimate",
    ),
    _o(
        "concurrency",
        "int_list",
        "load",
        "Concurrency levels to run, in order; at each, at most C requests are in flight (closed loop).",
        metavar="C",
        low=1,
        high=10_000,
    ),
    _o(
        "request_rate",
        "float_list",
        "load",
        "Open-loop levels instead of --concurrency: requests per second, in order ('inf' sends every request at once). Arrivals are seeded gamma intervals (--burstiness); round 2 replays round 1's schedule exactly.",
        metavar="R",
        low=0,
        high=1_000_000,
        low_open=True,
        allow_inf=True,
    ),
    _o(
        "fixed_schedule",
        "bool",
        "load",
        "Replay instead of --concurrency or --request-rate: each record is sent at its 'timestamp' (ms; the earliest is time 0), as AIPerf's fixed schedule; records without one are refused.",
    ),
    _o(
        "speedup",
        "float_list",
        "load",
        "--fixed-schedule levels: replay speeds, in order (2 sends the trace in half its time).",
        metavar="X",
        default_words="1",
        low=0,
        high=10_000,
        low_open=True,
    ),
    _o(
        "burstiness",
        "float",
        "load",
        "Shape of the gamma inter-arrival times of --request-rate, as vLLM's: 1 is Poisson, below 1 burstier, above 1 more regular.",
        metavar="B",
        low=0,
        high=1000,
        low_open=True,
    ),
    _o(
        "max_concurrency",
        "int",
        "load",
        "Cap on requests in flight at a --request-rate level; a request due while the cap is full waits, and its send lag shows how long.",
        metavar="N",
        low=1,
        high=1_000_000,
    ),
    _o(
        "warmup",
        "int",
        "load",
        "Requests sent before each level and left out of every statistic and file; each has a nonce of its own, so it cannot warm round 1's cache.",
        metavar="N",
        low=0,
        high=1_000_000,
    ),
    _o(
        "ramp_up",
        "float",
        "load",
        "Closed loop: open the C slots evenly over S seconds (slot k at k x S / C) instead of all at once.",
        metavar="S",
        low=0,
        high=86_400,
    ),
    _o(
        "max_round_duration",
        "float",
        "load",
        "Safety cap per round: after S seconds nothing more is sent, requests in flight finish, and the round is marked truncated.",
        metavar="S",
        low=0,
        high=86_400 * 7,
        low_open=True,
    ),
    _o(
        "workers",
        "int_auto",
        "load",
        "Processes that send the load, each with its own event loop and connections: 1 sends from this process; N > 1 starts N worker processes sharing each level (at most C in flight in total); 'auto' takes one per core but one. Under --executor ray: the actors per host.",
        metavar="N",
        low=1,
        high=256,
    ),
    _o(
        "executor",
        "choice",
        "load",
        "Where the load is sent from: 'local' is this machine (this process, or --workers processes); 'ray' places the workers as Ray actors on the hosts of a Ray cluster, --workers of them per host (docs/distributed.md; pip install \".[ray]\").",
        choices=EXECUTORS,
    ),
    _o(
        "ray_address",
        "str",
        "load",
        "--executor ray: the cluster to join, as ray.init takes it: 'auto' (the cluster `ray start` began on this machine), HOST:PORT of its head, or ray://HOST:10001 (Ray Client) (default: RAY_ADDRESS, else a cluster of this machine, else a new local one)",
        metavar="ADDR",
    ),
    _o(
        "ray_hosts",
        "int",
        "load",
        "--executor ray: how many of the cluster's hosts send load, --workers actors on each (default: every live host with the CPUs for them)",
        metavar="N",
        low=1,
        high=4096,
    ),
    _o(
        "on_lost_worker",
        "choice",
        "load",
        "When a worker process or Ray actor is lost mid-round (its requests in flight are recorded as failed): 'continue' runs the round on with the others; 'stop' sends nothing more, reports what was done and exits 8.",
        choices=ON_LOST_WORKER,
    ),
    _o(
        "rounds",
        "int",
        "load",
        "Rounds per level: round 1 cold, the rest warm (2 = the dual-round benchmark).",
        metavar="N",
        low=1,
        high=100,
    ),
    _o(
        "round_pause",
        "float",
        "load",
        "Seconds to wait between rounds (e.g. 10 for LMCache's metrics flush interval).",
        metavar="S",
        low=0,
        high=3600,
    ),
    _o(
        "cold_start",
        "choice",
        "cache",
        "How round 1 is made cold: 'nonce' starts each prompt with a per-run, per-level, per-prompt nonce (round 1 a guaranteed miss); 'reset' POSTs --cache-reset-url before each level; 'none' sends prompts as they are.",
        choices=COLD_START_POLICIES,
        default_words="nonce, or reset when --cache-reset-url is given",
    ),
    _o(
        "cache_reset_url",
        "str",
        "cache",
        "URL POSTed before each level, and once in preflight (a non-2xx answer stops the run); implies --cold-start reset (vLLM: /reset_prefix_cache with VLLM_SERVER_DEV_MODE=1, SGLang: /flush_cache).",
        metavar="URL",
        url=True,
    ),
    _o(
        "round2_mode",
        "choice",
        "cache",
        "'repeat' resends round 1's exact request; 'continue' sends the conversation onward: round 1's answer as the assistant turn, then a follow-up user turn.",
        choices=ROUND2_MODES,
    ),
    _o(
        "cache_block_size",
        "int",
        "cache",
        "The server's prefix-cache block in tokens, for the offered share and the expected hit rate when its metrics do not say (vLLM's cache_config_info does; SGLang's radix cache is token-level: 1). Default: the metrics', else 16.",
        metavar="N",
        low=1,
        high=1_000_000,
    ),
    _o(
        "cache_capacity_tokens",
        "int",
        "cache",
        "The server's prefix-cache capacity in tokens, for the expected hit rate (an LRU of this size) when its metrics do not say (vLLM: num_gpu_blocks x block_size; SGLang: max_total_num_tokens). Without either, no expected hit rate.",
        metavar="N",
        low=1,
        high=10**12,
    ),
    _o(
        "followup_text",
        "str",
        "cache",
        "Follow-up user turn for --round2-mode continue when a record has no 'followup'.",
        metavar="TEXT",
    ),
    _o(
        "prometheus_url",
        "str_list",
        "server metrics",
        "Prometheus /metrics URL(s) scraped before, during and after each round (repeat for several replicas).",
        metavar="URL",
        url=True,
    ),
    _o(
        "prometheus_metrics",
        "str_list",
        "server metrics",
        "Metric names to report, optionally with a label selector, with or without _total.",
        metavar="NAME",
        default_words="a preset of vLLM, SGLang and LMCache cache/load metrics",
    ),
    _o(
        "prometheus_interval",
        "float",
        "server metrics",
        "Seconds between scrapes during a round.",
        metavar="S",
        low=0.01,
        high=3600,
    ),
    _o(
        "slo_file",
        "str",
        "slo",
        "YAML file with 'slo: {ttft_ms, itl_ms, tpot_ms, latency_ms}'; a request meeting every bound is 'good'.",
        metavar="FILE",
    ),
    _o(
        "slo",
        "str_list",
        "slo",
        "SLO bounds as KEY=MS (ttft_ms, itl_ms, tpot_ms, latency_ms); override --slo-file.",
        metavar="KEY=MS",
    ),
    _o(
        "slo_itl_mode",
        "choice",
        "slo",
        "Whether itl_ms bounds a request's mean gap ('mean') or its worst gap ('max').",
        choices=get_args(ItlMode),
    ),
    _o(
        "fail_on_slo",
        "float",
        "ci",
        "Exit 4 when any round's goodput is below PCT percent, or a round missed a percentile bound of the SLO (ttft_p95_ms), after writing every report.",
        metavar="PCT",
        low=0,
        high=100,
    ),
    _o(
        "fail_on_errors",
        "float",
        "ci",
        "Exit 5 when any round's failed-request share is above PCT percent.",
        metavar="PCT",
        low=0,
        high=100,
    ),
    _o(
        "output_dir",
        "str",
        "output",
        "Directory for requests.jsonl, metrics_summary.csv, summary.json and per-round JSON.",
        metavar="DIR",
        default_words="results/<timestamp>",
    ),
    _o("overwrite", "bool", "output", "Allow writing into an existing non-empty output directory."),
    _o(
        "no_plots",
        "bool",
        "output",
        "Do not write plots.png (written when matplotlib is installed) nor report.html's charts (its tables are still written).",
    ),
    _o(
        "lang",
        "choice",
        "output",
        "Language of every console and stderr line ('zh': Chinese, the original README's labels); result files stay English.",
        choices=get_args(Lang),
    ),
    _o(
        "quiet",
        "bool",
        "output",
        "No progress bars and no per-round tables; only the final summary, warnings, one line per round with failures, and errors.",
    ),
    _o(
        "verbose",
        "bool",
        "output",
        "Print every round's full table (Avg, percentiles, Min, Max, Stddev; throughput, goodput, load, cache) and the server-metrics table, not only each level's compact answer (the files always hold everything).",
    ),
    _o(
        "percentiles",
        "number_list",
        "output",
        "Percentiles of every latency figure in the console, metrics_summary.csv and summary.json, e.g. 50,90,95,99 (P50, P90 and P99 are always in summary.json). An SLO can bound any percentile: --slo ttft_p95_ms=500.",
        metavar="P",
        low=0,
        high=100,
    ),
    _o(
        "max_response_bytes",
        "int",
        "target",
        "Bytes kept of one response; a longer (or endless) stream is cut there and fails as 'oversize'.",
        metavar="N",
        default_words="33554432, 32 MiB",
        low=1024,
        high=1 << 40,
    ),
    _o(
        "max_line_bytes",
        "int",
        "target",
        "Longest SSE line accepted; a longer one fails the request as 'oversize'.",
        metavar="N",
        default_words="4194304, 4 MiB",
        low=1024,
        high=1 << 40,
    ),
    _o(
        "server_profile",
        "choice",
        "server metrics",
        "Which server's metrics --prometheus-url reads: its metric names, hit rates, idle gauges and cache sizes. 'auto' detects it from the metric names of the first scrape (vllm:, sglang:, lmcache:; LMCache with the engine it runs in), else 'generic' (every known name).",
        choices=SERVER_PROFILES,
    ),
)


@dataclass(frozen=True)
class BenchConfig:
    """A fully resolved run: every field of OPTIONS, checked for range and consistency."""

    endpoint: str | None = None
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    endpoint_type: EndpointKind | None = None  # None: the path says, else chat
    header: tuple[str, ...] = field(default=(), repr=False)  # 'NAME: VALUE' lines
    extra_body: dict[str, Any] | str | None = None  # a mapping, JSON text or @FILE
    timeout: float = 300.0
    dataset: str | None = None
    workload: tuple[str, ...] = ()  # NAME, then KEY=VALUE settings
    write_workload: str | None = None
    sweep: str | None = None  # KEY=VALUES over the --workload (drbench/sweep.py)
    sweep_threshold: float = 0.5
    slo_search: tuple[str, ...] = ()  # ttft_p95_ms=MS [round=K] [max=N] (drbench/slo_search.py)
    num_samples: int | None = None
    shuffle: bool = False
    seed: int = 0
    max_tokens: int | None = None  # None: each record's own, else DEFAULT_MAX_TOKENS
    temperature: float = 0.0
    ignore_eos: bool = False
    tokenizer: str | None = None
    concurrency: tuple[int, ...] = (5,)  # () when --request-rate gives the levels
    request_rate: tuple[float, ...] = ()
    fixed_schedule: bool = False
    speedup: tuple[float, ...] = ()  # () is 1x (see ``speedups``)
    burstiness: float = 1.0
    max_concurrency: int | None = None
    warmup: int = 0
    ramp_up: float = 0.0
    max_round_duration: float | None = None
    workers: int | str = 1  # or "auto"; per host under --executor ray
    executor: ExecutorKind = "local"
    ray_address: str | None = None
    ray_hosts: int | None = None
    on_lost_worker: OnLostWorker = "continue"
    rounds: int = 2
    round_pause: float = 0.0
    cold_start: ColdStart = "nonce"  # build_config makes it "reset" when only a reset URL is given
    cache_reset_url: str | None = None
    round2_mode: Round2Mode = "repeat"
    followup_text: str = "Thank you. Now summarise your answer in one sentence."
    cache_block_size: int | None = None  # None: the server metrics', else 16
    cache_capacity_tokens: int | None = None  # None: the server metrics', else no expected
    prometheus_url: tuple[str, ...] = ()
    prometheus_metrics: tuple[str, ...] = ()
    prometheus_interval: float = 1.0
    slo_file: str | None = None
    slo: tuple[str, ...] = ()
    slo_itl_mode: ItlMode | None = None
    fail_on_slo: float | None = None
    fail_on_errors: float | None = None
    output_dir: str | None = None
    overwrite: bool = False
    no_plots: bool = False
    lang: Lang = "en"
    quiet: bool = False
    verbose: bool = False
    percentiles: tuple[float, ...] = (50.0, 90.0, 99.0)
    max_response_bytes: int = 32 * 1024 * 1024
    max_line_bytes: int = 4 * 1024 * 1024
    server_profile: str = "auto"

    def check(self, label: Callable[[str], str] = lambda n: flag_label(n)) -> BenchConfig:
        """Raise ConfigError for a value out of range or an inconsistent combination."""
        for name, message in _problems(self):
            raise ConfigError(f"{label(name)}{'' if message.startswith(':') else ' '}{message}")
        return self

    @property
    def levels(self) -> tuple[Level, ...]:
        """The run's levels, in order: trace speeds under --fixed-schedule, rates when
        --request-rate is given, else concurrencies."""
        if self.fixed_schedule:
            return tuple(Level.trace(s, self.max_concurrency) for s in self.speedups)
        if self.request_rate:
            return tuple(Level.open(r, self.max_concurrency) for r in self.request_rate)
        return tuple(Level.closed(c) for c in self.concurrency)

    @property
    def speedups(self) -> tuple[float, ...]:
        """--speedup's values, 1x when none is given."""
        return self.speedup or (1.0,)

    @property
    def worker_count(self) -> int:
        """Worker processes to start (1: none, the main process sends)."""
        if self.workers == "auto":
            return max(1, (os.cpu_count() or 1) - 1)
        return int(self.workers)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with secrets redacted (this is what result files record)."""
        return redacted({f.name: _jsonable(getattr(self, f.name)) for f in fields(self)})


def flag_label(name: str) -> str:
    return "--" + name.replace("_", "-")


def redacted(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with every secret option's value replaced, so no key ever reaches a file or log."""
    secret = {o.name for o in OPTIONS if o.secret}
    out = {k: ("***" if k in secret and v else v) for k, v in values.items()}
    if out.get("header"):
        out["header"] = redact_header_lines(out["header"])
    extra = out.get("extra_body")
    if isinstance(extra, str) and not extra.startswith("@") and not extra_body_problem(extra):
        extra = json.loads(extra)  # shown as the object it is, its credentials masked
    if extra is not None:
        out["extra_body"] = redact_extra_body(extra)
    return redact_config(out)


def coerce(option: Option, value: Any, where: str) -> Any:
    """A recipe or environment value converted to the option's type, or a ConfigError at ``where``."""
    try:
        return _COERCERS[option.kind](option, value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def build_config(
    flags: Mapping[str, Any],
    recipe: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> BenchConfig:
    """Defaults < recipe values < flags the user typed (``None`` in ``flags`` means "not set")."""
    values: dict[str, Any] = {}
    for source in (recipe or {}, flags):
        values.update({k: v for k, v in source.items() if v is not None})
    environ = os.environ if environ is None else environ
    if not values.get("api_key") and environ.get("OPENAI_API_KEY"):
        values["api_key"] = environ["OPENAI_API_KEY"]
    for name in (
        "concurrency",
        "request_rate",
        "speedup",
        "workload",
        "prometheus_url",
        "prometheus_metrics",
        "slo",
        "slo_search",
        "header",
    ):
        if name in values:
            values[name] = tuple(values[name])
    if "percentiles" in values:  # "50,90,95,99" from the command line: strings until here
        option = next(o for o in OPTIONS if o.name == "percentiles")
        try:
            values["percentiles"] = tuple(sorted(_to_numbers(option, values["percentiles"])))
        except ValueError:
            shown = " ".join(map(str, values["percentiles"]))
            raise ConfigError(
                f"--percentiles: expected numbers from 0 to 100, e.g. 50,90,95,99; got {shown!r}"
            ) from None
    if (values.get("request_rate") or values.get("fixed_schedule")) and "concurrency" not in values:
        values["concurrency"] = ()  # the rates, or the trace's timestamps, are the levels
    for opt in OPTIONS:  # " http://host:8000/v1 " from a pasted line or a quoted variable
        if opt.url and isinstance(values.get(opt.name), str):
            values[opt.name] = values[opt.name].strip()
        elif opt.url and isinstance(values.get(opt.name), tuple):
            values[opt.name] = tuple(str(v).strip() for v in values[opt.name])
    if values.get("cache_reset_url") and "cold_start" not in values:
        values["cold_start"] = "reset"  # a reset URL says how round 1 is made cold
    return replace(BenchConfig(), **values)


def _problems(c: BenchConfig) -> list[tuple[str, str]]:
    """Every (option, message) wrong with ``c``: URLs, ranges from OPTIONS, then combinations.

    The one place where ranges are checked: flags, recipe keys and environment values all end
    up here, so ``--timeout inf`` and ``timeout: .nan`` get the same line.  A message that
    starts with ':' is written right after the label ("--endpoint: port ... out of range").
    """
    out: list[tuple[str, str]] = []
    if c.concurrency and c.request_rate:
        out.append(
            (
                "request_rate",
                "and --concurrency both give levels: a run is an open loop (rates) or a closed "
                "loop (concurrencies); cap a rate level's requests in flight with --max-concurrency",
            )
        )
    if c.workload and c.dataset:
        out.append(("workload", "and --dataset both give the prompts: drop one of them"))
    if c.write_workload and not c.workload:
        out.append(("write_workload", "writes a --workload's records, and none is given"))
    if c.sweep and not c.workload:
        out.append(
            (
                "sweep",
                "varies a key of a --workload, and none is given: add e.g. --workload long-doc "
                "doc=4000 and --sweep docs=1:16",
            )
        )
    if c.slo_search and c.sweep:
        out.append(("slo_search", "and --sweep both run the workload per value: drop one of them"))
    if c.slo_search and (c.request_rate or c.fixed_schedule):
        out.append(
            (
                "slo_search",
                "runs each probe at concurrency U (its users=); drop --request-rate or "
                "--fixed-schedule",
            )
        )
    if c.slo_search and c.write_workload:
        out.append(
            ("slo_search", "runs the workload; --write-workload writes it: drop one of them")
        )
    if c.sweep and c.write_workload:
        out.append(
            (
                "sweep",
                "runs the workload once per value; --write-workload writes one: drop one of them",
            )
        )
    if c.fixed_schedule and (c.concurrency or c.request_rate):
        other = "--concurrency" if c.concurrency else "--request-rate"
        out.append(
            (
                "fixed_schedule",
                f"and {other} both say when requests go: --fixed-schedule sends each record at "
                "its timestamp (cap what is in flight with --max-concurrency, change the pace "
                f"with --speedup); drop one of them",
            )
        )
    if c.speedup and not c.fixed_schedule:
        out.append(("speedup", "sets the pace of --fixed-schedule, which is not given"))
    if not c.concurrency and not c.request_rate and not c.fixed_schedule:
        out.append(("concurrency", "needs at least one level"))
    if c.verbose and c.quiet:
        out.append(("verbose", "and --quiet ask for more and for less: drop one of them"))
    if not c.percentiles:
        out.append(("percentiles", "needs at least one percentile, e.g. 50,90,95,99"))
    for name in ("concurrency", "request_rate", "speedup", "percentiles"):
        values: tuple[float, ...] = getattr(c, name)
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            shown = ", ".join(format_rate(v) for v in repeated)
            what = "percentile" if name == "percentiles" else "level"
            out.append((name, f"lists {shown} twice: give each {what} once"))
    if c.max_concurrency is not None and not (c.request_rate or c.fixed_schedule):
        out.append(
            (
                "max_concurrency",
                "caps a --request-rate or --fixed-schedule level; a --concurrency level already "
                "keeps at most C in flight",
            )
        )
    if c.ramp_up and (c.request_rate or c.fixed_schedule):
        out.append(
            (
                "ramp_up",
                "spreads a closed loop's start; a --request-rate or --fixed-schedule level has "
                "its schedule",
            )
        )
    for opt in OPTIONS:
        value = getattr(c, opt.name)
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if item is None or isinstance(item, bool):
                continue
            if opt.url and isinstance(item, str) and (problem := url_problem(item)):
                out.append((opt.name, f": {problem}"))
            elif isinstance(item, (int, float)) and (problem := opt.range_problem(item)):
                out.append((opt.name, problem))
    if c.cold_start == "reset" and not c.cache_reset_url:
        out.append(
            ("cold_start", "reset needs --cache-reset-url URL (e.g. .../reset_prefix_cache)")
        )
    if c.cache_reset_url and c.cold_start != "reset":
        out.append(
            (
                "cache_reset_url",
                f"is only called with --cold-start reset (got --cold-start {c.cold_start}): "
                "drop one of them",
            )
        )
    if c.endpoint and not url_problem(c.endpoint):
        try:
            resolve_endpoint(c.endpoint, c.endpoint_type)
        except ValueError as exc:
            out.append(("endpoint", f": {exc}"))
    try:
        parse_headers(c.header, api_key=bool(c.api_key))
    except ConfigError as exc:
        out.append(("header", str(exc).removeprefix("--header ")))
    if (problem := extra_body_problem(c.extra_body)) is not None:
        out.append(("extra_body", f": {problem}"))
    if c.executor == "ray" and c.workers == "auto":
        out.append(
            (
                "workers",
                "auto counts this machine's cores; under --executor ray it is the actors per "
                "host: give a number (each actor takes one of its host's CPUs)",
            )
        )
    for name in ("ray_address", "ray_hosts"):
        if getattr(c, name) is not None and c.executor != "ray":
            out.append((name, "is a setting of --executor ray, which is not given: add it"))
    if c.round2_mode == "continue" and c.rounds < 2:
        out.append(("round2_mode", "continue needs --rounds 2 or more"))
    if c.server_profile != "auto" and not c.prometheus_url:
        out.append(
            (
                "server_profile",
                f"{c.server_profile} says how to read --prometheus-url, which is not given: "
                "add --prometheus-url URL or drop --server-profile",
            )
        )
    return out


def _to_bool(option: Option, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in {"1", "true", "yes", "on"}:
        return True
    if s in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{option.name}: expected true or false, got {v!r}")


def _to_number(option: Option, v: Any, typ: type) -> Any:
    if isinstance(v, bool):
        raise ValueError(f"{option.name}: expected a number, got {v!r}")
    try:
        x = float(v) if typ is float else int(str(v).strip()) if isinstance(v, str) else v
    except ValueError:
        raise ValueError(
            f"{option.name}: expected {'an integer' if typ is int else 'a number'}, got {v!r}"
        ) from None
    if typ is int and (not isinstance(x, int) or isinstance(x, bool)):
        if isinstance(x, float) and x.is_integer():
            return int(x)
        raise ValueError(f"{option.name}: expected an integer, got {v!r}")
    return x


def _to_numbers(option: Option, v: Any) -> tuple[float, ...]:
    """``number_list``: every item a number, and a string item may hold several ("50,95")."""
    items = v if isinstance(v, (list, tuple)) else [v]
    parts: list[Any] = []
    for item in items:
        parts += list(_to_list(option, item, lambda x: x)) if isinstance(item, str) else [item]
    return tuple(_to_number(option, x, float) for x in parts)


def _to_list(option: Option, v: Any, item: Callable[[Any], Any]) -> tuple[Any, ...]:
    if isinstance(v, str):  # "5 10,20" or 'm{a="1",b="2"} n': a selector stays whole
        v = [item for item in split_outside_braces(v, ", \t\n") if item]
    if not isinstance(v, (list, tuple)):
        v = [v]
    return tuple(item(x) for x in v)


def int_or_auto(v: Any) -> int | str:
    """``--workers``' value: an integer, or "auto"; ValueError names what was expected."""
    if isinstance(v, str):
        text = v.strip()
        if text == "auto":
            return "auto"
        if text.lstrip("+-").isdigit():
            return int(text)
    elif isinstance(v, int) and not isinstance(v, bool):
        return v
    elif isinstance(v, float) and v.is_integer():
        return int(v)
    raise ValueError(f"expected an integer or 'auto', got {v!r}")


def _to_int_or_auto(option: Option, v: Any) -> int | str:
    try:
        return int_or_auto(v)
    except ValueError as exc:
        raise ValueError(f"{option.name}: {exc}") from None


def _to_choice(option: Option, v: Any) -> str:
    if v not in option.choices:
        raise ValueError(f"{option.name}: expected one of {', '.join(option.choices)}, got {v!r}")
    return v


def _to_lines(option: Option, v: Any) -> tuple[str, ...]:
    """A recipe's list of header lines, or one line; never split at spaces or commas."""
    items = v if isinstance(v, (list, tuple)) else [v]
    return tuple(_to_str(option, x) for x in items)


def _to_json(option: Option, v: Any) -> dict[str, Any] | str:
    """A recipe's mapping as it is, or text (JSON, or @FILE) that check() and the run read."""
    if isinstance(v, Mapping):
        return dict(v)
    if isinstance(v, str):
        return v
    raise ValueError(f"{option.name}: expected a mapping or JSON text, got a {type(v).__name__}")


def _to_str(option: Option, v: Any) -> str:
    if isinstance(v, (dict, list)):
        raise ValueError(f"{option.name}: expected a string, got a {type(v).__name__}")
    return str(v)


_COERCERS: dict[OptionKind, Callable[[Option, Any], Any]] = {
    "str": _to_str,
    "int": lambda o, v: _to_number(o, v, int),
    "float": lambda o, v: _to_number(o, v, float),
    "bool": _to_bool,
    "choice": _to_choice,
    "int_list": lambda o, v: _to_list(o, v, lambda x: _to_number(o, x, int)),
    "float_list": lambda o, v: _to_list(o, v, lambda x: _to_number(o, x, float)),
    "number_list": _to_numbers,
    "int_auto": lambda o, v: _to_int_or_auto(o, v),
    "str_list": lambda o, v: _to_list(o, v, lambda x: _to_str(o, x)),
    "line_list": _to_lines,
    "json": _to_json,
}


def _plain_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _jsonable(v: Any) -> Any:
    """Tuples as lists, and an infinite rate as "inf" (as vLLM writes it: strict JSON)."""
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    return "inf" if isinstance(v, float) and math.isinf(v) else v
