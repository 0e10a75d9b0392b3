"""Service-level objectives: parse the bounds (SLO file, ``--slo`` flags) and judge one request.

An SLO is up to four upper bounds in milliseconds (TTFT, ITL, TPOT, latency).  A request is *good*
when it succeeded and meets every bound that is given; ``stats.py`` counts good requests into
goodput.  Bounds on a round's percentile (``ttft_p95_ms: 500``: the round's P95 TTFT at most
500 ms) judge the round instead; ``stats.py`` checks them into ``slo_percentiles``.  Every malformed input is one ``ConfigError`` line naming the file or flag and the key.
No I/O beyond reading the one SLO file, no printing, no statistics.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drbench.errors import ConfigError
from drbench.records import ItlMode, RequestRecord

__all__ = [
    "BOUND_KEYS",
    "ITL_MODES",
    "SLO",
    "PercentileBound",
    "load_slo_file",
    "merge",
    "parse_slo_flags",
    "slo_from_mapping",
]

BOUND_KEYS = ("ttft_ms", "itl_ms", "tpot_ms", "latency_ms")
ITL_MODES = ("mean", "max")
_VALID_KEYS = (*BOUND_KEYS, "itl_mode")
_EXAMPLE = "e.g. 'slo: {ttft_ms: 1000, itl_ms: 50}'"
_PERCENTILE_KEY = re.compile(r"(ttft|itl|tpot|latency)_p(\d+(?:\.\d+)?)_ms")


@dataclass(frozen=True)
class PercentileBound:
    """``ttft_p95_ms: 500``: the round's P95 of TTFT must be at most 500 ms."""

    key: str
    bound_ms: float

    @property
    def metric(self) -> str:
        """The metric's name in stats.METRICS: ``ttft_ms``."""
        return _split_percentile_key(self.key)[0]

    @property
    def percentile(self) -> float:
        return _split_percentile_key(self.key)[1]


def _split_percentile_key(key: str) -> tuple[str, float]:
    m = _PERCENTILE_KEY.fullmatch(key)
    if m is None:
        raise ValueError(f"not a percentile key: {key!r}")
    return f"{m.group(1)}_ms", float(m.group(2))


def _is_percentile_key(key: str) -> bool:
    m = _PERCENTILE_KEY.fullmatch(key)
    return m is not None and 0 <= float(m.group(2)) <= 100


@dataclass(frozen=True)
class SLO:
    """Upper bounds in ms (``None``: not bounded) and how ``itl_ms`` reads a request's gaps.

    ``itl_mode="mean"`` (the default) bounds a request's mean inter-token gap, because the original
    README defines ITL as the average interval between tokens and its SLO example means that.
    ``"max"`` bounds the worst gap of the request instead: stricter, for SLOs about streaming
    smoothness, where one long stall is what the user notices.

    A bound whose value a successful request cannot have counts as met: TPOT of an answer with
    fewer than two tokens (vLLM's goodput treats it as 0), ITL of an answer without gaps.  TPOT
    whose token count is unknown is treated the same way.  TTFT and latency exist for every
    successful request; a record lacking one of them is not good when that bound is given.

    ``explicit`` names the keys a parser actually read, so that ``merge`` lets ``--slo
    itl_mode=mean`` override a file's ``max``; it takes no part in equality.
    """

    ttft_ms: float | None = None
    itl_ms: float | None = None
    tpot_ms: float | None = None
    latency_ms: float | None = None
    itl_mode: ItlMode = "mean"
    percentile_bounds: tuple[PercentileBound, ...] = ()  # round-level: ttft_p95_ms...
    explicit: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def __post_init__(self) -> None:
        for key in BOUND_KEYS:
            if getattr(self, key) is not None:
                object.__setattr__(self, key, _check_bound(getattr(self, key), f"SLO {key}"))
        if self.itl_mode not in ITL_MODES:
            raise ConfigError(f"SLO itl_mode: expected 'mean' or 'max', got {self.itl_mode!r}")
        if not self.explicit:
            given = {k for k in BOUND_KEYS if getattr(self, k) is not None}
            if self.itl_mode != "mean":
                given.add("itl_mode")
            object.__setattr__(self, "explicit", frozenset(given))

    @property
    def is_empty(self) -> bool:
        """True when no bound is given, per request or on a percentile."""
        return not self.has_request_bounds and not self.percentile_bounds

    @property
    def has_request_bounds(self) -> bool:
        """True when a per-request bound is given (then there is goodput to report)."""
        return any(getattr(self, key) is not None for key in BOUND_KEYS)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every bound (``None`` when not given), the ITL mode, then each
        percentile bound by its key (``ttft_p95_ms``)."""
        return {
            **{key: getattr(self, key) for key in BOUND_KEYS},
            "itl_mode": self.itl_mode,
            **{b.key: b.bound_ms for b in self.percentile_bounds},
        }

    def check(self, record: RequestRecord) -> bool:
        """Whether the request succeeded and meets every given bound (value <= bound)."""
        if not record.ok:
            return False
        itl = record.mean_itl_ms if self.itl_mode == "mean" else record.max_itl_ms
        measured = (
            (self.ttft_ms, record.ttft_ms, False),
            (self.latency_ms, record.latency_ms, False),
            (self.tpot_ms, record.tpot_ms, True),
            (self.itl_ms, itl, True),
        )
        for bound, value, missing_is_met in measured:
            if bound is None:
                continue
            if value is None:
                if not missing_is_met:
                    return False
            elif value > bound:
                return False
        return True


def load_slo_file(path: str | Path) -> SLO:
    """The SLO of a YAML file holding one top-level ``slo:`` mapping (safe YAML rules only).

    Read with the recipes' loader (yamlsafe.py), so a key given twice is refused here too.
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such file (check --slo-file)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read the SLO file: {exc}") from None
    from drbench.yamlsafe import compose_document, show_key  # noqa: PLC0415 - a light CLI start

    doc = compose_document(text, name)  # the recipe's checks: duplicate keys, aliases, key types
    try:
        data = doc.construct(doc.root) if doc.root is not None else None
    finally:
        doc.close()
    if not isinstance(data, dict) or "slo" not in data:
        raise ConfigError(f"{name}: expected a top-level 'slo:' mapping, {_EXAMPLE}")
    extra = [k for k in data if k != "slo"]
    if extra:
        raise ConfigError(
            f"{name}: {show_key(extra[0])}: unknown top-level key; the file holds one 'slo:'"
        )
    slo = slo_from_mapping(data["slo"], where=f"{name}: slo")
    if slo.is_empty:
        raise ConfigError(f"{name}: slo: no bounds given; set at least one of {_keys(BOUND_KEYS)}")
    return slo


def slo_from_mapping(data: Any, *, where: str) -> SLO:
    """An SLO from an already-parsed mapping (an SLO file's or a recipe's ``slo:`` section).

    ``where`` prefixes every message, e.g. ``"slo.yaml: slo"`` gives ``slo.yaml: slo.ttft_ms: ...``.
    An empty mapping gives an empty SLO; the caller decides whether that is an error.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of bounds, got {_show(data)}; {_EXAMPLE}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        _check_key(str(key), f"{where}.{key}")
        if key == "itl_mode":
            values[key] = _itl_mode(value, f"{where}.{key}")
        else:
            values[key] = _check_bound(value, f"{where}.{key}")
    return _slo(values)


def parse_slo_flags(items: list[str]) -> SLO:
    """The SLO of ``--slo KEY=VALUE ...`` (e.g. ``ttft_ms=1000 itl_ms=50 itl_mode=max``).

    ``itl_mode`` alone is accepted (it may switch the mode of an SLO file's bounds); ``merge``
    rejects the combination if no bound is given anywhere.
    """
    if not items:
        raise ConfigError(f"--slo: no bounds given; use KEY=VALUE with KEY one of {_keys()}")
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--slo: expected KEY=VALUE (e.g. ttft_ms=1000), got {item!r}")
        _check_key(key, f"--slo {key}")
        if key in values:
            raise ConfigError(f"--slo {key}: given twice; give each key once")
        raw = raw.strip()
        if key == "itl_mode":
            values[key] = _itl_mode(raw, f"--slo {key}")
        else:
            values[key] = _check_bound(_number(raw), f"--slo {key}", shown=raw)
    return _slo(values)


def _slo(values: dict[str, Any]) -> SLO:
    """An SLO of checked key/value pairs, percentile keys gathered into ``percentile_bounds``."""
    plain = {k: v for k, v in values.items() if k in _VALID_KEYS}
    bounds = tuple(PercentileBound(k, v) for k, v in values.items() if k not in _VALID_KEYS)
    return SLO(**plain, percentile_bounds=bounds, explicit=frozenset(values))


def merge(file_slo: SLO | None, flag_slo: SLO | None) -> SLO | None:
    """The file's SLO with every key the flags give overriding it; ``None`` when neither exists."""
    if file_slo is None and flag_slo is None:
        return None
    base = file_slo or SLO()
    over = flag_slo or SLO()
    values = {k: getattr(over if k in over.explicit else base, k) for k in _VALID_KEYS}
    bounds = {b.key: b for b in base.percentile_bounds} | {b.key: b for b in over.percentile_bounds}
    merged = SLO(
        **values,
        percentile_bounds=tuple(bounds.values()),
        explicit=base.explicit | over.explicit,
    )
    if merged.is_empty:
        raise ConfigError("--slo: itl_mode alone bounds nothing; add a bound, e.g. itl_ms=50")
    return merged


def _check_key(key: str, where: str) -> None:
    if key in _VALID_KEYS or _is_percentile_key(key):
        return
    near = difflib.get_close_matches(key, _VALID_KEYS, n=1)
    hint = f"did you mean {near[0]!r}? " if near else ""
    raise ConfigError(
        f"{where}: unknown key; {hint}valid keys: {_keys()}, or a percentile bound such as "
        "ttft_p95_ms (METRIC_pN_ms, N from 0 to 100)"
    )


def _check_bound(value: Any, where: str, *, shown: str | None = None) -> float:
    """``value`` as a float if it is a finite positive number (bools are not numbers here)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        got = repr(shown) if shown is not None else _show(value)
        raise ConfigError(f"{where}: expected a positive number of milliseconds, got {got}")
    return float(value)


def _itl_mode(value: Any, where: str) -> str:
    if value not in ITL_MODES:
        raise ConfigError(f"{where}: expected 'mean' or 'max', got {_show(value)}")
    return value


def _number(raw: str) -> float | None:
    try:
        return float(raw)
    except ValueError:
        return None


def _show(value: Any) -> str:
    """A value as the user wrote it in YAML (``null``, ``true``), strings quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return repr(value)


def _keys(keys: tuple[str, ...] = _VALID_KEYS) -> str:
    return ", ".join(keys)
