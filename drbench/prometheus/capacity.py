"""What the server says about itself before any round: which profile it is, its cache block size
and capacity.

One bounded scrape of each metrics URL, before round 1: the sample names choose the server
profile (``profiles.resolve_profile``), and the profile's size sources give the block size
(vLLM: the ``block_size`` label of the info-style gauge ``vllm:cache_config_info``) and the
capacity in tokens (vLLM: ``num_gpu_blocks`` x ``block_size``; SGLang:
``sglang:max_total_num_tokens``).  The block size explains a round 2 that reused nothing (prompts
shorter than one block), the capacity one whose prompts did not fit, so the sanity checks name
them.  A URL that cannot be read is no error: the run goes on with the ``generic`` profile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from drbench.prometheus.parse import (
    ExpositionError,
    MetricSelector,
    MetricValue,
    metric_names,
    snapshot_from_text,
)
from drbench.prometheus.profiles import ServerProfile, SizeSource, resolve_profile
from drbench.prometheus.watch import ScrapeError, fetch_text

__all__ = ["ServerSetup", "cache_sizes", "probe_server", "read_size"]


@dataclass(frozen=True, slots=True)
class ServerSetup:
    """The profile a run reads the server with, and the cache sizes the server gave (None: it
    does not say, or its page could not be read)."""

    profile: ServerProfile
    chosen_by: str  # "flag", "detected" or "fallback" (nothing recognised or readable)
    block_size: int | None = None
    capacity_tokens: int | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, str | int | list[str] | None]:
        """``summary.json``'s ``run.server_profile``."""
        p = self.profile
        return {
            "name": p.name,
            "title": p.title,
            "chosen_by": self.chosen_by,
            "engine": p.engine,
            "hit_rates": [r.name for r in p.rates],
            "block_size": self.block_size,
            "block_size_source": str(p.block_size) if p.block_size else None,
            "capacity_tokens": self.capacity_tokens,
            "capacity_source": str(p.capacity_tokens) if p.capacity_tokens else None,
        }


def read_size(value: MetricValue, source: SizeSource) -> int | None:
    """A size from the series of ``source.metric``: the first series with a positive whole
    number wins (a label like ``num_gpu_blocks="None"`` is no number)."""
    for key, v in value.series.items():
        labels = dict(key)
        raw = labels.get(source.label) if source.label else v
        size = _positive_int(raw)
        if size is not None and source.times_label:
            factor = _positive_int(labels.get(source.times_label))
            size = size * factor if factor is not None else None
        if size is not None:
            return size
    return None


def cache_sizes(text: str, profile: ServerProfile) -> tuple[int | None, int | None]:
    """(block size, capacity in tokens) from one exposition, by the profile's sources."""
    sources = (profile.block_size, profile.capacity_tokens)
    wanted = [MetricSelector(s.metric) for s in sources if s is not None]
    if not wanted:
        return None, None
    try:
        snap = snapshot_from_text(text, wanted)
    except ExpositionError:
        return None, None
    out = [
        read_size(snap[s.metric], s) if s is not None and s.metric in snap else None
        for s in sources
    ]
    return out[0], out[1]


async def probe_server(
    session: aiohttp.ClientSession, urls: Sequence[str], choice: str, timeout_s: float = 5.0
) -> ServerSetup:
    """One scrape of every URL: the profile for ``--server-profile choice`` and the sizes."""
    pages = [await _page(session, url, timeout_s) for url in urls]
    readable = [p for p in pages if p is not None]
    names = set().union(*(metric_names(p) for p in readable)) if readable else None
    picked = resolve_profile(choice, names)
    block = capacity = None
    for page in readable:
        b, c = cache_sizes(page, picked.profile)
        block, capacity = block or b, capacity or c
    return ServerSetup(picked.profile, picked.chosen_by, block, capacity, picked.warnings)


async def _page(session: aiohttp.ClientSession, url: str, timeout_s: float) -> str | None:
    try:
        return await fetch_text(session, url, timeout_s)
    except ScrapeError:
        return None  # the watcher's probe says, once, why the endpoint cannot be read


def _positive_int(raw: object) -> int | None:
    try:
        value = float(str(raw))
    except ValueError:
        return None
    if not math.isfinite(value) or value < 1 or value != int(value):
        return None
    return int(value)
