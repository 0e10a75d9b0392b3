"""A hostile OpenAI-compatible server for robustness tests: one small aiohttp app, a mode per
misbehaviour, chosen per request by a ``MODE:<name>`` marker anywhere in the prompt (so one run
can mix hostile and well-behaved prompts).  Any other request gets a short, proper stream.

It runs on 127.0.0.1 in a thread of the test process (``HostileServer``), and counts what it
was asked, so tests can assert on the server's side too.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web

__all__ = ["MODES", "HostileServer"]

_MODE = re.compile(rb"MODE:([a-z_]+)")
_TOKEN = (
    b'data: {"id":"h","object":"chat.completion.chunk","choices":[{"index":0,'
    b'"delta":{"content":"tok "},"finish_reason":null}]}\n\n'
)
_FINISH = b'data: {"id":"h","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
_DONE = b"data: [DONE]\n\n"


def _usage(prompt: str, completion: str = "3") -> bytes:
    return (
        b'data: {"id":"h","choices":[],"usage":{"prompt_tokens":'
        + prompt.encode()
        + b',"completion_tokens":'
        + completion.encode()
        + b"}}\n\n"
    )


Handler = Callable[[web.Request, web.StreamResponse], Awaitable[None]]


async def _normal(request: web.Request, resp: web.StreamResponse) -> None:
    for _ in range(3):
        await resp.write(_TOKEN)
    await resp.write(_FINISH + _usage("12") + _DONE)


async def _endless(request: web.Request, resp: web.StreamResponse) -> None:
    burst = _TOKEN * 64
    while True:  # as fast as the socket takes it, until the client goes away
        await resp.write(burst)


async def _long_line(request: web.Request, resp: web.StreamResponse) -> None:
    await resp.write(b"data: ")
    piece = b"x" * (1 << 20)
    for _ in range(8):  # 8 MiB: past the 4 MiB line cap, within the 32 MiB response cap
        await resp.write(piece)
    await resp.write(b"\n\n" + _DONE)


async def _after_done(request: web.Request, resp: web.StreamResponse) -> None:
    await _normal(request, resp)
    while True:  # keeps talking after [DONE]
        await resp.write(b": still here\n\n" * 256)


async def _half_event_then_hang(request: web.Request, resp: web.StreamResponse) -> None:
    await resp.write(_TOKEN + _TOKEN[:40])
    await asyncio.sleep(3600)


async def _dribble(request: web.Request, resp: web.StreamResponse) -> None:
    for byte in (_TOKEN * 1000)[:100_000]:  # one byte every 10 ms: far past any deadline
        await resp.write(bytes([byte]))
        await asyncio.sleep(0.01)


def _odd_usage(value: str) -> Handler:
    async def handler(request: web.Request, resp: web.StreamResponse) -> None:
        for _ in range(3):
            await resp.write(_TOKEN)
        await resp.write(_FINISH + _usage(value, value) + _DONE)

    return handler


async def _deep_json(request: web.Request, resp: web.StreamResponse) -> None:
    await resp.write(_TOKEN + b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n\n" + _DONE)


MODES: dict[str, Handler] = {
    "endless": _endless,
    "long_line": _long_line,
    "after_done": _after_done,
    "half_event": _half_event_then_hang,
    "dribble": _dribble,
    "usage_string": _odd_usage('"x"'),
    "usage_object": _odd_usage('{"a":1}'),
    "usage_negative": _odd_usage("-5"),
    "usage_nan": _odd_usage("NaN"),
    "deep_json": _deep_json,
}
_PLAIN = {  # 200 answers that are not event streams
    "html": ("text/html", b"<html><body>Please log in</body></html>"),
    "json": ("application/json", b'{"id":"x","choices":[{"message":{"content":"hi"}}]}'),
}


class HostileServer:
    """The app on a free 127.0.0.1 port, served from a thread; use as a context manager."""

    def __init__(self, *, rate_limited: int = 0, retry_after: str = "1") -> None:
        self.asked: Counter[str] = Counter()
        self._rate_limited = rate_limited  # the first N chat requests get 429 + Retry-After
        self._retry_after = retry_after
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def __enter__(self) -> HostileServer:
        self._thread.start()
        port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> int:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "m", "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        match = _MODE.search(body)
        mode = match.group(1).decode() if match else "normal"
        self.asked[mode] += 1
        if self._rate_limited > 0:
            self._rate_limited -= 1
            return web.json_response(
                {"error": {"message": "slow down", "code": 429}},
                status=429,
                headers={"Retry-After": self._retry_after},
            )
        if mode in _PLAIN:
            ctype, text = _PLAIN[mode]
            return web.Response(body=text, content_type=ctype)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            await MODES.get(mode, _normal)(request, resp)
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client gave up: the point of most modes
        return resp


def dataset_line(mode: str | None, i: int) -> str:
    text = f"MODE:{mode} question {i}" if mode else f"an ordinary question {i}"
    return json.dumps({"id": f"{mode or 'ok'}-{i}", "text": text})
