"""The mock server's configuration: one frozen dataclass, its command-line flags, and the
output-length spec parser.

Every default lives on ``MockerConfig`` only; the argparse flags default to "not given"
(``argparse.SUPPRESS``) so an untyped flag falls back to the dataclass. Validation happens in
``__post_init__`` and raises ``UsageError`` naming the flag. Nothing here touches the network.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields
from enum import Enum
from typing import TypeVar

from drbench.argparser import OneLineParser
from drbench.errors import UsageError

__all__ = [
    "LengthKind",
    "MetricsProfile",
    "MockerConfig",
    "OutputLengthSpec",
    "UsageMode",
    "build_parser",
    "config_from_argv",
    "parse_output_tokens",
]


class LengthKind(str, Enum):
    """How a request's output length is drawn."""

    FIXED = "fixed"
    UNIFORM = "uniform"
    NORMAL = "normal"
    EXPONENTIAL = "exp"


class UsageMode(str, Enum):
    """Where a stream's ``usage`` goes (``--usage-mode``)."""

    FINAL = "final"  # its own last chunk with empty choices, when include_usage is asked
    LAST_TOKEN = "last-token"  # on the chunk carrying the last token and finish_reason
    NONE = "none"  # never, even when include_usage is asked


class MetricsProfile(str, Enum):
    """Whose metric names ``GET /metrics`` shows (``--metrics-profile``)."""

    VLLM = "vllm"
    SGLANG = "sglang"
    LMCACHE = "lmcache"  # vLLM with LMCache as its KV connector


@dataclass(frozen=True, slots=True)
class OutputLengthSpec:
    """A parsed ``--output-tokens`` value; ``a``/``b`` mean N, lo/hi, mean/std or mean by kind."""

    kind: LengthKind
    a: float
    b: float = 0.0
    text: str = ""

    def __str__(self) -> str:
        return self.text or str(int(self.a))


_T = TypeVar("_T")
_RANGE_RE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
_DIST_RE = re.compile(r"^\s*(uniform|normal|exp)\s*:\s*([0-9.]+)\s*(?:,\s*([0-9.]+)\s*)?$")


def parse_output_tokens(text: str) -> OutputLengthSpec:
    """Parse ``N``, ``A-B``, ``uniform:A,B``, ``normal:MEAN,STD`` or ``exp:MEAN``."""
    flag = "--output-tokens"
    s = str(text).strip()
    if s.isdigit():
        n = int(s)
        if n < 1:
            raise UsageError(f"llm_mocker: {flag} must be >= 1 (got {s})")
        return OutputLengthSpec(LengthKind.FIXED, n, text=s)
    m = _RANGE_RE.match(s)
    if m:
        return _uniform(int(m.group(1)), int(m.group(2)), s)
    m = _DIST_RE.match(s)
    if not m:
        raise UsageError(
            f"llm_mocker: {flag} {s!r} is not N, A-B, uniform:A,B, normal:MEAN,STD or exp:MEAN"
        )
    kind, a, b = m.group(1), float(m.group(2)), m.group(3)
    if kind == "uniform":
        if b is None:
            raise UsageError(f"llm_mocker: {flag} uniform needs two numbers, e.g. uniform:32,128")
        return _uniform(int(a), int(float(b)), s)
    if a < 1:
        raise UsageError(f"llm_mocker: {flag} mean must be >= 1 (got {s})")
    if kind == "normal":
        return OutputLengthSpec(LengthKind.NORMAL, a, float(b or 0.0), s)
    return OutputLengthSpec(LengthKind.EXPONENTIAL, a, 0.0, s)


def _uniform(lo: int, hi: int, text: str) -> OutputLengthSpec:
    if lo < 1 or hi < lo:
        raise UsageError(f"llm_mocker: --output-tokens range needs 1 <= A <= B (got {text})")
    return OutputLengthSpec(LengthKind.UNIFORM, lo, hi, text)


def _opt(help_text: str, *, default: _T) -> _T:
    """A dataclass field whose help text the flag reuses, so the doc lives next to the default.

    Typed as the default's type (what ``field`` itself is to a type checker), so each field's
    annotation is checked against its default.
    """
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class MockerConfig:
    """Everything the mock server needs; defaults are quick, deterministic and fault-free."""

    host: str = _opt("address to listen on", default="127.0.0.1")
    port: int = _opt("TCP port (0 picks a free one)", default=8000)
    model: tuple[str, ...] = _opt(
        "served model name(s); the first labels metrics", default=("mock-llm",)
    )
    seed: int = _opt("seed of every random draw (lengths, jitter, faults)", default=0)
    ttft_ms: float = _opt("fixed part of the time to first token", default=20.0)
    itl_ms: float = _opt("time between two output tokens of one request", default=10.0)
    output_tokens: OutputLengthSpec = _opt(
        "output length: N, A-B, uniform:A,B, normal:MEAN,STD or exp:MEAN (capped by max_tokens)",
        default=OutputLengthSpec(LengthKind.FIXED, 64, text="64"),
    )
    prefill_tokens_per_s: float = _opt(
        "prefill speed for prompt tokens not in the cache", default=20000.0
    )
    block_size: int = _opt("prefix-cache block size in tokens", default=16)
    max_num_seqs: int = _opt("running slots; more requests wait in a queue", default=256)
    cache_capacity_tokens: int = _opt(
        "prefix-cache capacity in tokens (LRU; 0 disables)", default=200000
    )
    max_model_len: int = _opt(
        "prompt + max_tokens limit; longer requests get a 400", default=131072
    )
    decode_slowdown: float = _opt("ITL grows by this fraction when all slots are busy", default=0.0)
    jitter: float = _opt("ITL varies uniformly by +/- this fraction", default=0.0)
    error_rate: float = _opt("share of requests answered with HTTP 500", default=0.0)
    rate_limit_rate: float = _opt("share of requests answered with HTTP 429", default=0.0)
    retry_after_s: int = _opt("Retry-After seconds sent with injected 429s", default=1)
    drop_rate: float = _opt("share of requests whose connection is closed mid-stream", default=0.0)
    malformed_rate: float = _opt("share of streams with one garbage SSE event", default=0.0)
    kv_bytes_per_token: int = _opt(
        "KV-cache bytes per token, for memory_usage_bytes", default=131072
    )
    trace: str | None = _opt(
        "append one JSON line of write times per request to FILE", default=None
    )
    debug_requests: int = _opt(
        "request bodies kept for GET /debug/requests (0 disables)", default=1000
    )
    debug_requests_bytes: int = _opt(
        "total bytes of request bodies /debug/requests keeps; a bigger body is logged as a stub",
        default=16 * 1024 * 1024,
    )
    backlog: int = _opt("listen backlog (pending connections)", default=4096)
    max_request_bytes: int = _opt(
        "largest request body accepted; a bigger one gets a 413", default=32 * 1024 * 1024
    )
    read_timeout_s: float = _opt(
        "a connection must send a whole request head within S s of connecting (or of its "
        "last response, the keep-alive limit) and a body within S s of its head",
        default=60.0,
    )
    metrics_profile: MetricsProfile = _opt(
        "whose metric names /metrics shows: vllm, sglang (sglang:*) or lmcache (vLLM with "
        "LMCache as KV connector: lmcache:* and vllm:external_prefix_cache_*)",
        default=MetricsProfile.VLLM,
    )
    no_reset_endpoint: bool = _opt(
        "answer 404 on /reset_prefix_cache and /flush_cache (vLLM without VLLM_SERVER_DEV_MODE=1)",
        default=False,
    )
    # -- stream shapes of real servers (all off by default) --
    empty_token_rate: float = _opt(
        'share of tokens streamed as {"content": ""} (their text comes with the next chunk)',
        default=0.0,
    )
    empty_first_tokens: int = _opt(
        "the first N tokens of every answer are streamed with empty content", default=0
    )
    tokens_per_chunk: int = _opt("tokens sent together in one chunk (one write)", default=1)
    whole_answer: bool = _opt(
        "the whole answer in ONE chunk at the first token, then a finish chunk with usage",
        default=False,
    )
    char_chunks: bool = _opt("stream the answer one character per chunk", default=False)
    usage_mode: UsageMode = _opt(
        "where a stream's usage goes: final (own chunk, if include_usage), last-token "
        "(on the last token's chunk, if include_usage) or none (never)",
        default=UsageMode.FINAL,
    )
    fake_prompt_tokens: int | None = _opt(
        "usage.prompt_tokens always reports N, whatever the prompt (implausible usage)",
        default=None,
    )
    ignore_max_tokens: bool = _opt(
        "generate the --output-tokens length even when max_tokens is smaller", default=False
    )
    chat_template_header: str = _opt(
        "text tokenized before the first chat message, like a chat template's header "
        "(completions get none)",
        default="",
    )
    tool_calls: bool = _opt(
        'chat answers streamed as delta.tool_calls pieces, finish_reason "tool_calls"',
        default=False,
    )
    new_id_per_chunk: bool = _opt("every streamed chunk carries a fresh id", default=False)

    def __post_init__(self) -> None:
        _check_positive(
            self,
            (
                "itl_ms",
                "prefill_tokens_per_s",
                "block_size",
                "max_num_seqs",
                "max_model_len",
                "backlog",
                "max_request_bytes",
                "read_timeout_s",
                "tokens_per_chunk",
            ),
        )
        _check_non_negative(
            self,
            (
                "port",
                "ttft_ms",
                "cache_capacity_tokens",
                "decode_slowdown",
                "retry_after_s",
                "kv_bytes_per_token",
                "debug_requests",
                "debug_requests_bytes",
                "empty_first_tokens",
            ),
        )
        if self.fake_prompt_tokens is not None and self.fake_prompt_tokens < 0:
            raise UsageError(
                f"llm_mocker: --fake-prompt-tokens must be >= 0 (got {self.fake_prompt_tokens})"
            )
        rates = ("jitter", "error_rate", "rate_limit_rate", "drop_rate", "malformed_rate")
        for name in (*rates, "empty_token_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"llm_mocker: {_flag(name)} must be in [0, 1] (got {value})")
        if not self.model or any(not m.strip() for m in self.model):
            raise UsageError("llm_mocker: --model needs at least one non-empty name")
        if self.port > 65535:
            raise UsageError(f"llm_mocker: --port must be <= 65535 (got {self.port})")
        shapes = [
            flag
            for flag, on in (
                ("--tokens-per-chunk", self.tokens_per_chunk > 1),
                ("--whole-answer", self.whole_answer),
                ("--char-chunks", self.char_chunks),
            )
            if on
        ]
        if len(shapes) > 1:
            raise UsageError(
                f"llm_mocker: {' and '.join(shapes)} each set how text is cut into chunks; "
                "choose one"
            )

    @property
    def served_model(self) -> str:
        """The name used in responses when a request names no model, and in metric labels."""
        return self.model[0]


def build_parser() -> argparse.ArgumentParser:
    """One flag per ``MockerConfig`` field, each defaulting to 'not given'."""
    p = OneLineParser(
        prefix="llm_mocker: ",
        prog="llm_mocker.py",
        description="OpenAI-compatible mock LLM server with a simulated engine and prefix cache.",
        argument_default=argparse.SUPPRESS,
    )
    converters = {int: int, float: float, str: str}
    for f in fields(MockerConfig):
        default = f.default if f.default is not MISSING else None
        help_text = f"{f.metadata['help']} (default: {_show(default)})"
        flag = _flag(f.name)
        if f.name == "model":
            p.add_argument(flag, nargs="+", metavar="NAME", help=help_text)
        elif f.name == "output_tokens":
            p.add_argument(flag, type=parse_output_tokens, metavar="SPEC", help=help_text)
        elif f.name == "trace":
            p.add_argument(flag, metavar="FILE", help=help_text)
        elif f.name == "fake_prompt_tokens":
            p.add_argument(flag, type=int, metavar="N", help=help_text)
        elif isinstance(default, Enum):
            p.add_argument(flag, choices=[m.value for m in type(default)], help=help_text)
        elif isinstance(default, bool):
            p.add_argument(flag, action="store_true", help=f.metadata["help"])
        else:
            p.add_argument(
                flag, type=converters[type(default)], metavar=_metavar(f.name), help=help_text
            )
    return p


def config_from_argv(argv: Sequence[str] | None) -> MockerConfig:
    """Parse flags into a config; raises UsageError (one line) for a bad value."""
    ns = build_parser().parse_args(list(argv) if argv is not None else None)
    values = vars(ns)
    if "model" in values:
        values["model"] = tuple(values["model"])
    if "usage_mode" in values:
        values["usage_mode"] = UsageMode(values["usage_mode"])
    if "metrics_profile" in values:
        values["metrics_profile"] = MetricsProfile(values["metrics_profile"])
    return MockerConfig(**values)


def _check_positive(cfg: MockerConfig, names: Sequence[str]) -> None:
    for name in names:
        value = getattr(cfg, name)
        if value <= 0:
            raise UsageError(f"llm_mocker: {_flag(name)} must be > 0 (got {value})")


def _check_non_negative(cfg: MockerConfig, names: Sequence[str]) -> None:
    for name in names:
        value = getattr(cfg, name)
        if value < 0:
            raise UsageError(f"llm_mocker: {_flag(name)} must be >= 0 (got {value})")


def _metavar(name: str) -> str:
    if name.endswith(("_rate", "jitter", "slowdown")):
        return "F"
    if name.endswith("_ms"):
        return "MS"
    if name.endswith("_s"):
        return "S"
    return {"host": "ADDR", "chat_template_header": "TEXT"}.get(name, "N")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return " ".join(value)
    if isinstance(value, Enum):
        return str(value.value)
    if value == "":
        return '""'
    return "none" if value is None else str(value)
