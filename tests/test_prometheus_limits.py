"""A /metrics page that never ends (or says it is huge) is a failed scrape, not a memory blow-up.

The servers here are aiohttp apps on 127.0.0.1 port 0, started by each test.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from drbench.prometheus import (
    MAX_SCRAPE_BYTES,
    MetricSelector,
    ScrapeError,
    ServerMetricsWatcher,
    scrape,
)

CHUNK = b"# HELP filler an endless comment line, as a broken exporter might send\n" * 1024


async def _start() -> tuple[web.AppRunner, str, dict[str, int]]:
    sent = {"bytes": 0}

    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        try:
            while True:
                await resp.write(CHUNK)
                sent["bytes"] += len(CHUNK)
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client hung up: what the cap is for
        return resp

    async def declared_huge(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": str(10**10)})
        await resp.prepare(request)
        await resp.write(b"vllm:num_requests_running 0\n")
        return resp

    app = web.Application()
    app.router.add_get("/endless", endless)
    app.router.add_get("/huge", declared_huge)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}", sent


def test_the_default_cap_ends_an_endless_scrape() -> None:
    async def go() -> tuple[str, int]:
        runner, base, sent = await _start()
        try:
            async with aiohttp.ClientSession() as session:
                with pytest.raises(ScrapeError) as err:
                    await scrape(session, f"{base}/endless", [MetricSelector("x")], 120.0)
            await asyncio.sleep(0.1)  # let the server see the hang-up
            return str(err.value), sent["bytes"]
        finally:
            await runner.cleanup()

    message, sent = asyncio.run(go())
    assert MAX_SCRAPE_BYTES == 16 * 2**20
    assert message == "metrics page larger than 16 MiB; not read further"
    assert sent < 4 * MAX_SCRAPE_BYTES  # the cap, plus what socket buffers held: not unbounded


def test_a_declared_huge_page_is_refused_before_reading() -> None:
    async def go() -> str:
        runner, base, _ = await _start()
        try:
            async with aiohttp.ClientSession() as session:
                with pytest.raises(ScrapeError) as err:
                    await scrape(session, f"{base}/huge", [MetricSelector("x")], 5.0, 2**20)
            return str(err.value)
        finally:
            await runner.cleanup()

    assert asyncio.run(go()) == "metrics page larger than 1 MiB; not read further"


def test_the_watcher_warns_once_and_marks_the_round_missing() -> None:
    async def go():
        runner, base, _ = await _start()
        url = f"{base}/endless"
        try:
            async with aiohttp.ClientSession() as session:
                w = ServerMetricsWatcher(
                    session, [url], None, interval_s=0.05, settle_max_s=0, max_scrape_bytes=2**20
                )
                warnings = await w.probe()
                await w.start_round()
                await asyncio.sleep(0.2)  # a few samples fail the same way, silently
                return url, warnings, await w.end_round()
        finally:
            await runner.cleanup()

    url, warnings, server = asyncio.run(go())
    assert warnings == [
        f"server metrics: {url} unavailable (metrics page larger than 1 MiB; not read "
        "further); its figures are marked missing and the run goes on. Check --prometheus-url."
    ]
    assert server.warnings == [] and server.hit_rate is None
    assert [(m.url, m.metric) for m in server.missing] == [(url, None)]
    assert "larger than 1 MiB" in server.missing[0].reason
