"""Server profiles: everything drbench knows about one serving stack's ``/metrics``, in one place.

A ``ServerProfile`` owns a server's metric names (the preset reported without
``--prometheus-metrics``), its derived per-round hit rates (best first), the load gauges that
read 0 when it is idle, its cache-reset path and what to say when that path is refused, where
its cache block size and capacity can be read, why a warm round may have reused nothing, how
often it publishes its counters (LMCache's flush lag) and notes to give once per run.  Adding a
server is adding a profile here.

Profiles: ``vllm``, ``sglang``, ``lmcache`` (LMCache's own counters read together with those of
the engine it runs in, vLLM unless SGLang's names are seen) and ``generic`` (every known name:
TGI, a proxy, or a server whose first scrape could not be read).  ``resolve_profile`` turns the
``--server-profile`` choice and the metric names of the first scrape into one profile.
Pure data and pure functions, no I/O; ``client.py`` reads the reset hints from here.  Facts:
../shared/notes section 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from drbench.messages import Message

__all__ = [
    "DERIVED_RATES",
    "GENERIC",
    "IDLE_GAUGES",
    "LMCACHE",
    "PRESET_METRICS",
    "PROFILES",
    "PROFILE_CHOICES",
    "SGLANG",
    "VLLM",
    "DerivedRate",
    "ProfileChoice",
    "ServerProfile",
    "SizeSource",
    "detect_profile",
    "profile_by_name",
    "reset_hint",
    "resolve_profile",
    "with_engine",
]


@dataclass(frozen=True, slots=True)
class DerivedRate:
    """A ratio of two counter deltas; ``inputs`` lists (numerator, denominator) pairs, best first."""

    name: str
    inputs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class SizeSource:
    """Where a cache size is read: a label of an info-style gauge, or a gauge's value.

    ``label`` None reads the sample's value; ``times_label`` multiplies by another label of the
    same series (vLLM's capacity is ``num_gpu_blocks`` blocks of ``block_size`` tokens).
    """

    metric: str
    label: str | None = None
    times_label: str | None = None

    def __str__(self) -> str:
        if self.label is None:
            return self.metric
        times = f" x {self.times_label}" if self.times_label else ""
        return f"{self.metric}{{{self.label}}}{times}"


@dataclass(frozen=True, slots=True)
class ServerProfile:
    """One serving stack's metrics knowledge; ``engine`` names the profile it was combined with."""

    name: str
    title: str
    prefixes: tuple[str, ...]  # metric-name prefixes that identify the server
    metrics: tuple[str, ...]  # the preset: reported when the endpoint exposes them
    rates: tuple[DerivedRate, ...]  # per-round hit rates, best first (the first one is *the* rate)
    idle_gauges: tuple[str, ...] = ()  # load gauges that read 0 when nothing is in flight
    reset_path: str | None = None  # the cache-reset path, e.g. /reset_prefix_cache
    reset_refused: str = ""  # what to say when that path answers 404
    block_size: SizeSource | None = None  # None: the server does not say (reported as unknown)
    capacity_tokens: SizeSource | None = None
    cache_off: str = ""  # why a warm round may have reused nothing (the sanity check's cause)
    notes: tuple[str, ...] = ()  # said once per run when the profile is in use
    flush_interval_s: float = 0.0  # counters are published this often (0: as they change)
    flushed_by: str = ""  # who publishes them that late
    engine: str | None = None  # LMCache: the engine profile whose metrics it also reads

    @property
    def rate_inputs(self) -> tuple[str, ...]:
        """Every counter a derived rate can use; scraped whatever the user selects."""
        names = (n for rate in self.rates for pair in rate.inputs for n in pair)
        return tuple(dict.fromkeys(names))

    def owns(self, name: str) -> bool:
        return name.startswith(self.prefixes)


_VLLM_RATES = (
    DerivedRate(
        "vllm_prefix_cache_hit_rate",
        (
            ("vllm:prefix_cache_hits", "vllm:prefix_cache_queries"),
            ("vllm:gpu_prefix_cache_hits", "vllm:gpu_prefix_cache_queries"),  # pre-0.9 names
        ),
    ),
    DerivedRate(
        "vllm_external_prefix_cache_hit_rate",
        (("vllm:external_prefix_cache_hits", "vllm:external_prefix_cache_queries"),),
    ),
    DerivedRate(
        "vllm_prompt_tokens_cached_share", (("vllm:prompt_tokens_cached", "vllm:prompt_tokens"),)
    ),
)
_SGLANG_RATES = (
    DerivedRate(
        "sglang_prefix_cache_hit_rate",
        (("sglang:cached_tokens_total", "sglang:prompt_tokens_total"),),
    ),
)
_LMCACHE_RATES = (
    DerivedRate(
        "lmcache_retrieve_hit_rate", (("lmcache:num_hit_tokens", "lmcache:num_requested_tokens"),)
    ),
    DerivedRate(
        "lmcache_lookup_hit_rate", (("lmcache:num_lookup_hits", "lmcache:num_lookup_tokens"),)
    ),
)

#: Counters are written without ``_total`` unless the server's own docs spell them with it; both
#: forms match.
VLLM = ServerProfile(
    name="vllm",
    title="vLLM",
    prefixes=("vllm:",),
    metrics=(
        "vllm:prefix_cache_queries",
        "vllm:prefix_cache_hits",
        "vllm:external_prefix_cache_queries",
        "vllm:external_prefix_cache_hits",
        "vllm:gpu_prefix_cache_queries",  # pre-0.9 names (counted blocks in 0.8)
        "vllm:gpu_prefix_cache_hits",
        "vllm:prompt_tokens",
        "vllm:generation_tokens",
        "vllm:prompt_tokens_cached",
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",  # deprecated 0.9 name of the line above
        "vllm:num_preemptions",
        "vllm:time_to_first_token_seconds",
        "vllm:inter_token_latency_seconds",
        "vllm:e2e_request_latency_seconds",
    ),
    rates=_VLLM_RATES,
    idle_gauges=("vllm:num_requests_running", "vllm:num_requests_waiting"),
    reset_path="/reset_prefix_cache",
    reset_refused="vLLM serves /reset_prefix_cache only when started with VLLM_SERVER_DEV_MODE=1 "
    "(SGLang's is /flush_cache)",
    block_size=SizeSource("vllm:cache_config_info", "block_size"),
    capacity_tokens=SizeSource("vllm:cache_config_info", "num_gpu_blocks", "block_size"),
    cache_off=Message("cache_off_vllm"),
)

SGLANG = ServerProfile(
    name="sglang",
    title="SGLang",
    prefixes=("sglang:",),
    metrics=(
        "sglang:cached_tokens_total",
        "sglang:prompt_tokens_total",
        "sglang:generation_tokens_total",
        "sglang:num_running_reqs",
        "sglang:num_queue_reqs",
        "sglang:token_usage",
        "sglang:max_total_num_tokens",
        "sglang:cache_hit_rate",  # last prefill batch only: reported, never used for a hit rate
        "sglang:time_to_first_token_seconds",
        "sglang:e2e_request_latency_seconds",
    ),
    rates=_SGLANG_RATES,
    idle_gauges=("sglang:num_running_reqs", "sglang:num_queue_reqs"),
    reset_path="/flush_cache",
    reset_refused="SGLang serves /flush_cache; vLLM's is /reset_prefix_cache",
    # SGLang's page size is a server argument, not a metric: the block size stays unknown.
    capacity_tokens=SizeSource("sglang:max_total_num_tokens"),
    cache_off=Message("cache_off_sglang"),
)

LMCACHE = ServerProfile(
    name="lmcache",
    title="LMCache",
    prefixes=("lmcache:",),
    metrics=(
        "lmcache:num_requested_tokens",
        "lmcache:num_hit_tokens",
        "lmcache:num_lookup_tokens",
        "lmcache:num_lookup_hits",
        "lmcache:num_stored_tokens",
        "lmcache:local_cache_usage",
        "lmcache:retrieve_hit_rate",  # per flush interval, reads 1 when idle: reported only
    ),
    rates=_LMCACHE_RATES,
    cache_off=Message("cache_off_lmcache"),
    flush_interval_s=10.0,  # LMCache's log_interval, hard-coded in its engine builder
    flushed_by="LMCache",
)

GENERIC = ServerProfile(
    name="generic",
    title="generic",
    prefixes=(),
    metrics=(
        *VLLM.metrics,
        *SGLANG.metrics,
        *LMCACHE.metrics,
        "lmcache_hit_rate",  # the gauges the original README names
        "memory_usage_bytes",
        "tgi_queue_size",
        "tgi_batch_current_size",
        "tgi_request_count",
        "tgi_request_duration",
    ),
    rates=(_VLLM_RATES[0], *_SGLANG_RATES, *_LMCACHE_RATES, *_VLLM_RATES[1:]),
    idle_gauges=(
        *VLLM.idle_gauges,
        *SGLANG.idle_gauges,
        "tgi_queue_size",
        "tgi_batch_current_size",
    ),
    cache_off=Message("cache_off_generic"),
)

#: The profiles ``--server-profile`` names, in the order the docs list them.
PROFILES: tuple[ServerProfile, ...] = (VLLM, SGLANG, LMCACHE, GENERIC)
PROFILE_CHOICES: tuple[str, ...] = ("auto", *(p.name for p in PROFILES))

#: The generic profile's tables, under the names the package had before profiles.
PRESET_METRICS: tuple[str, ...] = GENERIC.metrics
IDLE_GAUGES: tuple[str, ...] = GENERIC.idle_gauges
DERIVED_RATES: tuple[DerivedRate, ...] = GENERIC.rates

_ENGINES = (VLLM, SGLANG)  # what LMCache runs inside


@dataclass(frozen=True, slots=True)
class ProfileChoice:
    """The profile a run uses, how it was chosen ("flag", "detected" or "fallback"), and a
    warning when the flag contradicts the metric names the server exposes."""

    profile: ServerProfile
    chosen_by: str
    detected: str | None = None  # the profile the names point to, when they point to one
    warnings: tuple[str, ...] = ()


def profile_by_name(name: str) -> ServerProfile:
    """The profile ``--server-profile NAME`` means (``lmcache``: on vLLM)."""
    for profile in PROFILES:
        if profile.name == name:
            return with_engine(profile, VLLM) if profile is LMCACHE else profile
    raise ValueError(f"unknown server profile {name!r}; choose one of {', '.join(PROFILE_CHOICES)}")


def detect_profile(names: Iterable[str]) -> ServerProfile | None:
    """The profile the metric names of a scrape point to, or None when no known prefix appears.

    LMCache's names win and combine with the engine seen beside them (SGLang if its names are
    there, else vLLM): LMCache in vLLM shares vLLM's ``/metrics``.
    """
    seen = {name.split(":", 1)[0] + ":" for name in names if ":" in name}
    engine = next((p for p in _ENGINES if set(p.prefixes) & seen), None)
    if set(LMCACHE.prefixes) & seen:
        return with_engine(LMCACHE, engine or VLLM)
    return engine


def resolve_profile(choice: str, names: Iterable[str] | None) -> ProfileChoice:
    """The profile for ``--server-profile choice`` given the first scrape's names (None: no
    scrape could be read).  ``auto`` takes the detected profile, else ``generic``.  A named
    profile warns when the server exposes none of its own names (``lmcache``: no ``lmcache:``)
    but another server's."""
    seen = frozenset(names) if names is not None else frozenset()
    detected = detect_profile(seen)
    found = detected.name if detected is not None else None
    if choice == "auto":
        if detected is None:
            return ProfileChoice(GENERIC, "fallback")
        return ProfileChoice(detected, "detected", found)
    profile = profile_by_name(choice)
    if choice == LMCACHE.name and detected is not None:
        on_sglang = SGLANG.name in (detected.name, detected.engine)
        profile = with_engine(LMCACHE, SGLANG if on_sglang else VLLM)
    warnings: tuple[str, ...] = ()
    own = profile.prefixes[:1]  # LMCache on vLLM: lmcache:, not the engine's vllm:
    if detected is not None and profile is not GENERIC and not any(n.startswith(own) for n in seen):
        warnings = (
            Message(
                "profile_mismatch",
                choice=choice,
                detected=detected.title,
                title=profile.title,
                found=found or "",
            ),
        )
    return ProfileChoice(profile, "flag", found, warnings)


def with_engine(cache: ServerProfile, engine: ServerProfile) -> ServerProfile:
    """A cache tier read together with the engine it runs in: the tier's names and hit rates
    first, then the engine's; the engine's idle gauges, reset path and cache sizes; both notes."""
    return ServerProfile(
        name=cache.name,
        title=f"{cache.title} on {engine.title}",
        prefixes=(*cache.prefixes, *engine.prefixes),
        metrics=(*cache.metrics, *engine.metrics),
        rates=(*cache.rates, *engine.rates),
        idle_gauges=engine.idle_gauges,
        reset_path=engine.reset_path,
        reset_refused=engine.reset_refused,
        block_size=engine.block_size,
        capacity_tokens=engine.capacity_tokens,
        cache_off=Message("cache_off_either", a=cache.cache_off, b=engine.cache_off),
        notes=(*cache.notes, *engine.notes),
        flush_interval_s=max(cache.flush_interval_s, engine.flush_interval_s),
        flushed_by=cache.flushed_by or engine.flushed_by,
        engine=engine.name,
    )


def reset_hint(path: str) -> str | None:
    """What to say when a cache-reset URL ending in ``path`` answers 404, from the profiles."""
    path = path.rstrip("/")
    for profile in PROFILES:
        if profile.reset_path and path.endswith(profile.reset_path):
            return profile.reset_refused
    return None
