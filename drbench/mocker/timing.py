"""The simulated engine's timing math and per-request plan: pure functions and seeded draws.

TTFT = queue wait + ``ttft_ms`` + uncached prompt tokens / ``prefill_tokens_per_s``; after the
first token, one token every ``itl_ms``, stretched by ``decode_slowdown`` as the running batch
fills and by +/- ``jitter``. A ``Planner`` draws, per request and in arrival order, the output
length, where the filler text starts, and which fault (if any) the request gets; each concern
has its own seeded stream, so turning faults on does not change the output lengths.

Nothing here knows about HTTP, clocks or the cache; engine.py applies these numbers.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from drbench.mocker.config import LengthKind, MockerConfig, OutputLengthSpec

__all__ = [
    "Fault",
    "Planner",
    "RequestPlan",
    "decode_interval_s",
    "draw_output_tokens",
    "prefill_delay_s",
    "truncate_at_stop",
]


class Fault(str, Enum):
    """What goes wrong with a request, if anything (at most one fault per request)."""

    NONE = "none"
    ERROR = "error"  # HTTP 500 before anything is streamed
    RATE_LIMIT = "rate_limit"  # HTTP 429 with Retry-After
    DROP = "drop"  # the connection is closed mid-stream
    MALFORMED = "malformed"  # one garbage SSE event mid-stream


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """What the engine will generate for one request."""

    output_tokens: int
    finish_reason: str  # "stop" or "length"
    filler_offset: int  # index into the filler token cycle of the first output token
    fault: Fault = Fault.NONE
    fault_at: int = -1  # output-token index before which a DROP/MALFORMED fault fires
    empty_tokens: frozenset[int] = frozenset()  # indices streamed with empty content


def prefill_delay_s(uncached_tokens: int, ttft_ms: float, prefill_tokens_per_s: float) -> float:
    """Seconds from admission to the first token."""
    return ttft_ms / 1000.0 + uncached_tokens / prefill_tokens_per_s


def decode_interval_s(
    itl_ms: float, running: int, max_num_seqs: int, slowdown: float, jitter: float, u: float
) -> float:
    """Seconds to the next token; ``u`` in [-1, 1] is the jitter draw (ignored if jitter is 0)."""
    fill = running / max_num_seqs if max_num_seqs else 0.0
    return itl_ms / 1000.0 * (1.0 + slowdown * min(fill, 1.0)) * (1.0 + jitter * u)


def draw_output_tokens(spec: OutputLengthSpec, rng: random.Random) -> int:
    """One output length (>= 1) from the ``--output-tokens`` spec."""
    if spec.kind is LengthKind.FIXED:
        return int(spec.a)
    if spec.kind is LengthKind.UNIFORM:
        return rng.randint(int(spec.a), int(spec.b))
    if spec.kind is LengthKind.NORMAL:
        return max(1, round(rng.gauss(spec.a, spec.b)))
    return max(1, math.ceil(rng.expovariate(1.0 / spec.a)))


def truncate_at_stop(tokens: Sequence[str], stops: Sequence[str]) -> int | None:
    """Tokens to keep so the text ends before the earliest stop string; None if none occurs."""
    text = "".join(tokens)
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    if not hits:
        return None
    cut, end, kept = min(hits), 0, 0
    for tok in tokens:
        end += len(tok)
        if end > cut:
            break
        kept += 1
    return kept


class Planner:
    """Seeded per-request draws; deterministic for a given seed and request order."""

    def __init__(self, cfg: MockerConfig, filler: Sequence[str]) -> None:
        self._cfg = cfg
        self._filler = filler
        self._starts = [i for i, t in enumerate(filler) if t[:1].isupper() or t[1:2].isupper()]
        self._lengths = random.Random(f"{cfg.seed}:lengths")
        self._faults = random.Random(f"{cfg.seed}:faults")
        self._empty = random.Random(f"{cfg.seed}:empty")

    def plan(
        self,
        max_tokens: int | None,
        min_tokens: int = 0,
        ignore_eos: bool = False,
        stop: Sequence[str] = (),
    ) -> RequestPlan:
        """Draw one request's plan (call once per accepted request, in arrival order)."""
        drawn = draw_output_tokens(self._cfg.output_tokens, self._lengths)
        offset = self._starts[self._lengths.randrange(len(self._starts))]
        if ignore_eos and max_tokens is not None:
            drawn = max_tokens
        n = max(drawn, min_tokens)
        reason = "stop"
        if max_tokens is not None and n >= max_tokens:
            n, reason = max_tokens, "length"
        if stop:
            kept = truncate_at_stop(self.output(offset, n), stop)
            if kept is not None:
                n, reason = kept, "stop"
        fault = self._draw_fault()
        midstream = fault in (Fault.DROP, Fault.MALFORMED)
        at = n // 2 if midstream else -1
        return RequestPlan(n, reason, offset, fault, at, self._draw_empty(n))

    def output(self, offset: int, n: int) -> list[str]:
        """The ``n`` output tokens starting at ``offset`` (the first without leading space)."""
        filler, size = self._filler, len(self._filler)
        toks = [filler[(offset + i) % size] for i in range(n)]
        if toks:
            toks[0] = toks[0].lstrip()
        return toks

    def _draw_empty(self, n: int) -> frozenset[int]:
        """Which tokens stream with empty content: the first ``--empty-first-tokens`` and a
        seeded ``--empty-token-rate`` share of the rest; never the last, which carries the
        held-back text, so the streamed text is the whole answer."""
        cfg = self._cfg
        first = min(cfg.empty_first_tokens, max(n - 1, 0))
        empty = set(range(first))
        rate = cfg.empty_token_rate
        if rate > 0:
            empty.update(i for i in range(first, n - 1) if self._empty.random() < rate)
        return frozenset(empty)

    def _draw_fault(self) -> Fault:
        cfg, rng = self._cfg, self._faults
        u_err, u_rl, u_drop, u_mal = (rng.random() for _ in range(4))
        if u_err < cfg.error_rate:
            return Fault.ERROR
        if u_rl < cfg.rate_limit_rate:
            return Fault.RATE_LIMIT
        if u_drop < cfg.drop_rate:
            return Fault.DROP
        if u_mal < cfg.malformed_rate:
            return Fault.MALFORMED
        return Fault.NONE
