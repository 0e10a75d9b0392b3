"""Scrape Prometheus endpoints before, during and after each benchmark round.

``ServerMetricsWatcher`` is what the runner drives: ``start_round()`` scrapes every endpoint
("before") and starts one background sampler per endpoint; ``end_round()`` stops them, waits
briefly for the server to settle, scrapes "after" and returns the round's ``RoundServerMetrics``.
An endpoint that is down, slow, answers garbage or an endless body (a scrape reads at most
``MAX_SCRAPE_BYTES``) never raises out of the watcher: it gives one warning line for the whole
run and its figures are None.  The caller owns the aiohttp session.
Parsing is in ``parse.py``, the per-round arithmetic in ``rounds.py``, and what a server exposes
(its preset, hit rates, idle gauges, flush lag) in its ``profiles.py`` profile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp
import yarl

from drbench.errors import UsageError
from drbench.messages import Message
from drbench.prometheus.parse import (
    ExpositionError,
    MetricSelector,
    Snapshot,
    is_idle,
    preset_selectors,
    snapshot_from_text,
)
from drbench.prometheus.profiles import GENERIC, ServerProfile
from drbench.prometheus.rounds import Missing, RoundServerMetrics, UrlRound, summarize_round
from drbench.redact import redact_text, redact_url

__all__ = ["MAX_SCRAPE_BYTES", "ScrapeError", "ServerMetricsWatcher", "fetch_text", "scrape"]

MAX_SCRAPE_BYTES = 16 * 1024 * 1024  # a real /metrics page is well under 1 MiB
_READ_CHUNK = 64 * 1024


class ScrapeError(Exception):
    """One scrape that gave nothing usable; the message is short and names no secret.

    ``reason`` keeps the ``Message`` itself (``str(exc)`` would be its English text only), so
    the warning that quotes it renders in ``--lang`` too."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def scrape(
    session: aiohttp.ClientSession,
    url: str,
    selectors: Sequence[MetricSelector],
    timeout_s: float,
    max_bytes: int = MAX_SCRAPE_BYTES,
) -> Snapshot:
    """GET ``url`` and match ``selectors``; every failure is a ``ScrapeError``."""
    try:
        return snapshot_from_text(await fetch_text(session, url, timeout_s, max_bytes), selectors)
    except ExpositionError as exc:
        raise ScrapeError(str(exc)) from None


async def fetch_text(
    session: aiohttp.ClientSession, url: str, timeout_s: float, max_bytes: int = MAX_SCRAPE_BYTES
) -> str:
    """The metrics page at ``url`` as text; every failure is a ``ScrapeError``.

    A body over ``max_bytes`` is a failed scrape: it is not read further (the connection is
    dropped), so an endless or huge metrics page costs at most that much memory.
    """
    try:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with session.get(url, timeout=timeout, headers={"Accept": "text/plain"}) as resp:
            if resp.status != 200:
                reason = f" {resp.reason}" if resp.reason else ""
                raise ScrapeError(Message("scrape_http", status=resp.status, reason=reason))
            body = await _read_capped(resp, max_bytes)
    except (asyncio.TimeoutError, TimeoutError):
        raise ScrapeError(Message("scrape_timeout", s=f"{timeout_s:g}")) from None
    except aiohttp.ClientConnectorError as exc:
        why = str(exc.os_error.strerror or exc.os_error)
        raise ScrapeError(Message("scrape_connect", why=why)) from None
    except aiohttp.ClientError as exc:
        raise ScrapeError(redact_text(f"{type(exc).__name__}: {exc}")) from None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise ScrapeError(Message("scrape_not_utf8")) from None


async def _read_capped(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    too_big = ScrapeError(Message("scrape_too_big", size=_size(max_bytes)))
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise too_big
    chunks, size = [], 0
    async for chunk in resp.content.iter_chunked(_READ_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n} bytes"


class ServerMetricsWatcher:
    """Per-round server metrics of one or more endpoints (several replicas, engine + LMCache).

    ``profile`` says what the server exposes (``profiles.py``; default: every known name).
    ``selectors`` None or empty reads the profile's preset, reporting on each endpoint only the
    preset metrics it was seen to expose.  The counters behind the profile's hit rates and its
    load gauges (used for settling) are scraped whatever the selectors, but only reported when
    selected.  ``settle_max_s`` bounds the wait in ``end_round`` (0: no wait);
    ``max_scrape_bytes`` bounds what one scrape reads; ``round_pause_s`` (``--round-pause``)
    silences the flush-lag note when the pause outlasts the profile's flush interval.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        urls: Sequence[str],
        selectors: Sequence[MetricSelector] | None = None,
        interval_s: float = 1.0,
        timeout_s: float = 5.0,
        settle_max_s: float = 2.0,
        settle_poll_s: float = 0.2,
        max_scrape_bytes: int = MAX_SCRAPE_BYTES,
        profile: ServerProfile = GENERIC,
        round_pause_s: float = 0.0,
    ) -> None:
        if not urls:
            raise UsageError("--prometheus-url: give at least one metrics URL")
        if not interval_s > 0:
            raise UsageError(f"--prometheus-interval must be > 0 seconds (got {interval_s})")
        for url in urls:
            _check_url(url)
        self._session = session
        self._urls = list(dict.fromkeys(urls))
        self._interval_s, self._timeout_s = interval_s, timeout_s
        self._settle_max_s, self._settle_poll_s = settle_max_s, settle_poll_s
        self._max_scrape_bytes = max_scrape_bytes
        self._profile, self._round_pause_s = profile, round_pause_s
        self._preset = not selectors
        chosen = list(selectors) if selectors else preset_selectors(profile.metrics)
        self._reported = list(dict.fromkeys(str(s) for s in chosen))
        extra = [MetricSelector(n) for n in (*profile.rate_inputs, *profile.idle_gauges)]
        self._tracked = list({str(s): s for s in (*chosen, *extra)}.values())
        self._seen: dict[str, set[str]] = {url: set() for url in self._urls}
        self._warned: set[tuple[str, str]] = set()
        self._warnings: list[str] = []
        self._before: dict[str, Snapshot | None] | None = None
        self._errors: dict[str, str | None] = {}
        self._samples: dict[str, list[Snapshot]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def urls(self) -> list[str]:
        return list(self._urls)

    @property
    def profile(self) -> ServerProfile:
        return self._profile

    async def probe(self) -> list[str]:
        """One scrape of every endpoint up front; returns the warning lines it raised, the
        profile's notes among them."""
        await asyncio.gather(*(self._scrape_one(url, "probe") for url in self._urls))
        for line in _profile_notes(self._profile, self._round_pause_s):
            self._warn_once("", line, line)
        return self._drain()

    async def start_round(self) -> None:
        """Scrape "before" on every endpoint, then sample each every ``interval_s``."""
        await self.stop()
        self._errors = {url: None for url in self._urls}
        snaps = await asyncio.gather(*(self._scrape_one(url, "before") for url in self._urls))
        self._before = dict(zip(self._urls, snaps, strict=True))
        self._samples = {url: [] for url in self._urls}
        self._tasks = [asyncio.create_task(self._sample(url)) for url in self._urls]

    async def end_round(self, *, settle: bool = True) -> RoundServerMetrics:
        """Stop sampling, let the server settle (bounded), scrape "after", report the round."""
        if self._before is None:
            raise RuntimeError("end_round() called without start_round()")
        await self.stop()
        snaps = await asyncio.gather(*(self._after(url, settle) for url in self._urls))
        rounds = [
            UrlRound(
                redact_url(url),  # what the reports show
                self._before[url],
                after,
                self._samples[url],
                self._reported_for(url),
                self._errors[url],
            )
            for url, after in zip(self._urls, snaps, strict=True)
        ]
        self._before = None
        profile = self._profile
        return summarize_round(rounds, self._drain(), profile.rates, profile.name)

    def missing_round(self, reason: str) -> RoundServerMetrics:
        """The round's server part when its closing scrapes never ran (Ctrl-C): all missing."""
        missing = [Missing(redact_url(url), None, reason) for url in self._urls]
        return RoundServerMetrics([], {}, missing, profile=self._profile.name)

    async def stop(self) -> None:
        """Cancel the samplers (idempotent); call it when a run is interrupted mid-round."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- private ---------------------------------------------------------------------------

    async def _sample(self, url: str) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            snap = await self._scrape_one(url, "sample")
            if snap is not None:
                self._samples[url].append(snap)

    async def _after(self, url: str, settle: bool) -> Snapshot | None:
        """The "after" scrape; with ``settle``, re-scraped until idle and unchanged (bounded).

        vLLM updates its counters a moment after the last response, so one scrape right away
        can miss the round's last requests (../shared/notes §1.5).
        """
        snap = await self._scrape_one(url, "after")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settle_max_s
        while settle and snap is not None and loop.time() < deadline:
            await asyncio.sleep(self._settle_poll_s)
            again = await self._scrape_one(url, "settle")
            if again is None:
                break
            done = again == snap and is_idle(again, self._profile.idle_gauges)
            snap = again
            if done:
                break
        return snap

    async def _scrape_one(self, url: str, role: str) -> Snapshot | None:
        try:
            snap = await scrape(
                self._session, url, self._tracked, self._timeout_s, self._max_scrape_bytes
            )
        except asyncio.CancelledError:
            raise
        except ScrapeError as exc:
            self._failed(url, role, exc.reason)
            return None
        except Exception as exc:  # never let a metrics endpoint end a benchmark run
            self._failed(url, role, redact_text(f"{type(exc).__name__}: {exc}"))
            return None
        self._note(url, role, snap)
        return snap

    def _failed(self, url: str, role: str, reason: str) -> None:
        if role in ("before", "after"):
            self._errors[url] = reason
        self._warn_once(
            url,
            "down",
            Message("metrics_down", url=redact_url(url), reason=reason),
        )

    def _note(self, url: str, role: str, snap: Snapshot) -> None:
        """Remember what the endpoint exposes; warn once about what it lacks."""
        self._seen[url].update(sel for sel in self._reported if sel in snap)
        if role == "sample" or role == "settle":
            return
        where = redact_url(url)
        if self._preset and not any(sel in snap for sel in self._profile.metrics):
            self._warn_once(
                url,
                "preset",
                Message("metrics_no_preset", url=where, known=_known(self._profile)),
            )
        for sel in [] if self._preset else self._reported:
            if sel not in snap:
                self._warn_once(
                    url,
                    sel,
                    Message("metrics_no_match", url=where, sel=str(sel)),
                )

    def _reported_for(self, url: str) -> list[str]:
        if not self._preset:
            return list(self._reported)
        return [sel for sel in self._reported if sel in self._seen[url]]

    def _warn_once(self, url: str, what: str, line: str) -> None:
        if (url, what) not in self._warned:
            self._warned.add((url, what))
            self._warnings.append(line)

    def _drain(self) -> list[str]:
        out, self._warnings = self._warnings, []
        return out


def _profile_notes(profile: ServerProfile, round_pause_s: float) -> list[str]:
    """The notes a profile gives once per run; the flush lag only when the pause is shorter."""
    lines: list[str] = [
        Message("profile_note", title=profile.title, note=note) for note in profile.notes
    ]
    flush = profile.flush_interval_s
    if flush > 0 and round_pause_s < flush:
        lines.append(Message("flush_lag", who=profile.flushed_by, flush=f"{flush:g}"))
    return lines


def _known(profile: ServerProfile) -> str:
    return Message("known_generic") if profile is GENERIC else profile.title


def _check_url(url: str) -> None:
    try:
        parsed = yarl.URL(url)
        ok = parsed.scheme in ("http", "https") and bool(parsed.host)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise UsageError(
            f"--prometheus-url: {redact_url(url)!r} is not an http(s) URL; give the full metrics "
            "address, e.g. http://127.0.0.1:8000/metrics"
        )
