"""The simulated prefix cache: chained block hashes as vLLM computes them, LRU over a capacity.

A prompt is cut into full blocks of ``block_size`` tokens; block *i*'s hash covers block *i*'s
tokens and block *i-1*'s hash, so equal hashes mean equal prefixes. A lookup counts the leading
blocks present, capped (as vLLM does) at ``floor((N - 1) / B)`` blocks because the last prompt
token is always recomputed. Eviction is least-recently-used, and a touched chain is re-ordered
tail-first so a prompt loses its tail blocks before its head, like vLLM's free-block queue.

What it does not do: hold the KV of running requests (blocks in use are never pinned here), or
cache partial blocks. Hashes use Python's ``hash`` on tuples of strings: unique within one
process, which is all a cache that lives in one process needs.
"""

from __future__ import annotations

from collections.abc import Sequence

from drbench.reuse import LruCache, reusable_blocks

__all__ = ["PrefixCache", "block_hashes", "cacheable_blocks"]


def block_hashes(tokens: Sequence[str], block_size: int, parents: Sequence[int] = ()) -> list[int]:
    """Chained hashes of every full block of ``tokens``.

    ``parents`` are the hashes already known for the leading blocks (e.g. the prompt's, when
    the prompt plus its answer is hashed): they are kept and hashing resumes after them.
    """
    out = list(parents)
    prev = out[-1] if out else 0
    for start in range(len(out) * block_size, len(tokens) - block_size + 1, block_size):
        prev = hash((prev, tuple(tokens[start : start + block_size])))
        out.append(prev)
    return out


def cacheable_blocks(num_tokens: int, block_size: int) -> int:
    """How many leading blocks of an N-token prompt can be cache hits: floor((N - 1) / B)."""
    return reusable_blocks(num_tokens, block_size)


class PrefixCache:
    """An LRU set of block hashes bounded by a capacity in tokens.

    The LRU itself is the client's oracle's (``reuse.LruCache``), so the cache the mocker serves
    and the one the benchmarker simulates cannot drift apart; this adds tokens, the per-prompt
    cap of ``cacheable_blocks`` and the reset endpoint.
    """

    __slots__ = ("_lru", "block_size")

    def __init__(self, block_size: int, capacity_tokens: int) -> None:
        self.block_size = block_size
        self._lru = LruCache(capacity_tokens // block_size)

    def __len__(self) -> int:
        return len(self._lru.blocks)

    @property
    def capacity_blocks(self) -> int:
        return self._lru.capacity_blocks

    @property
    def evicted_blocks(self) -> int:
        return self._lru.evicted

    @property
    def cached_tokens(self) -> int:
        """Tokens held (full blocks only)."""
        return len(self._lru.blocks) * self.block_size

    def match(self, hashes: Sequence[int], num_tokens: int) -> int:
        """Cached prefix length in tokens for a prompt of ``num_tokens``; touches the hits."""
        limit = cacheable_blocks(num_tokens, self.block_size)
        return self._lru.lookup(hashes[:limit]) * self.block_size

    def insert(self, hashes: Sequence[int]) -> None:
        """Add (or refresh) a chain of blocks, evicting the least recently used past capacity."""
        self._lru.insert(hashes)

    def reset(self) -> None:
        """Empty the cache (``POST /reset_prefix_cache``)."""
        self._lru.blocks.clear()
