"""What the server says about its own prefix cache before any round: its block size.

vLLM exposes its cache configuration as the info-style gauge ``vllm:cache_config_info`` whose
labels are the config's fields (``block_size="16"``, ``enable_prefix_caching="True"``, ...).
The block size explains a round 2 that reused nothing (prompts shorter than one block), so the
sanity checks name it.  One bounded scrape; no answer is an error.
"""

from __future__ import annotations

import asyncio
import re

import aiohttp

__all__ = ["block_size_from_metrics", "fetch_block_size"]

_INFO = re.compile(r'^vllm:cache_config_info\{[^}]*\bblock_size="(\d+)"', re.MULTILINE)
_SCRAPE_LIMIT = 16 * 1024 * 1024


def block_size_from_metrics(text: str) -> int | None:
    """The ``block_size`` label of ``vllm:cache_config_info`` in a Prometheus text page."""
    match = _INFO.search(text)
    size = int(match.group(1)) if match else 0
    return size or None


async def fetch_block_size(
    session: aiohttp.ClientSession, url: str, timeout_s: float = 5.0
) -> int | None:
    """The block size from one scrape of ``url``; None when it cannot be had."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            if resp.status != 200:
                return None
            body = await resp.content.read(_SCRAPE_LIMIT)
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError):
        return None
    return block_size_from_metrics(body.decode("utf-8", "replace"))
