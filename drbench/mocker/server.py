"""The mock server's HTTP front end (aiohttp) and its entry point, ``main()``.

Routes: ``POST /v1/chat/completions``, ``POST /v1/completions``, ``GET /v1/models``,
``GET /health``, ``GET /metrics``, ``POST /reset_prefix_cache`` (and SGLang's ``/flush_cache``;
neither under ``--no-reset-endpoint``), and the test aid ``GET|DELETE /debug/requests``. A completion handler validates the body, asks
the planner for the request's output and faults, hands a ``Seq`` to the engine and waits; the
engine writes streamed tokens itself (see engine.py / sink.py). The handler ends the response,
frees the slot if the client left (handler cancellation is on), and writes the trace line.

Abuse limits: a body over ``--max-request-bytes`` gets a 413, a body slower than
``--read-timeout-s`` a 408, and a connection whose first request head is not complete within
``--read-timeout-s`` is closed (guard.py; later heads: aiohttp's keep-alive timeout).

``main()`` prints exactly one line to stdout once it serves,
``llm_mocker: serving on http://HOST:PORT``, and exits 0 on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http import HttpVersion11
from prometheus_client import CONTENT_TYPE_LATEST

from drbench.errors import ExitStatus, UsageError
from drbench.mocker.config import MockerConfig, UsageMode, config_from_argv
from drbench.mocker.engine import Engine, Seq
from drbench.mocker.guard import guarded
from drbench.mocker.reqlog import RequestLog
from drbench.mocker.request import (
    ParsedRequest,
    Rejected,
    decode_body,
    parse_request,
)
from drbench.mocker.shape import StreamShape, tool_arguments
from drbench.mocker.sink import ShapedSink, StreamSink
from drbench.mocker.timing import Fault, RequestPlan
from drbench.mocker.trace import TraceWriter
from drbench.mocker.wire import (
    Kind,
    StreamFormat,
    TokenBytes,
    completion_body,
    error_body,
    tool_call_id,
)

__all__ = ["build_app", "main", "ready_line"]

_COMPLETED = ("stop", "length")


@dataclass(eq=False)
class _State:
    """Everything the handlers share (one per app; no module-level state)."""

    cfg: MockerConfig
    engine: Engine
    trace: TraceWriter | None
    tokens: dict[Kind, TokenBytes]
    recent: RequestLog
    shapes: dict[Kind, StreamShape]


_STATE = web.AppKey("drbench_mocker_state", _State)


def ready_line(host: str, port: int) -> str:
    """The one line printed when serving starts (MockerProcess waits for it)."""
    shown = f"[{host}]" if ":" in host else host
    return f"llm_mocker: serving on http://{shown}:{port}"


async def build_app(cfg: MockerConfig) -> web.Application:
    """The aiohttp application with a fresh engine (call inside the running loop)."""
    engine = Engine(cfg)
    trace = TraceWriter(cfg.trace) if cfg.trace else None
    tokens = {k: TokenBytes.build(k, engine.filler) for k in Kind}
    log = RequestLog(cfg.debug_requests, cfg.debug_requests_bytes)
    shapes = {k: StreamShape.from_config(cfg, k) for k in Kind}
    state = _State(cfg, engine, trace, tokens, log, shapes)
    app = web.Application(client_max_size=cfg.max_request_bytes)
    app[_STATE] = state
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_post("/v1/completions", _completions)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/health", _health)
    app.router.add_get("/metrics", _metrics)
    if not cfg.no_reset_endpoint:  # else aiohttp's 404, as vLLM without its dev mode
        app.router.add_post("/reset_prefix_cache", _reset)
        app.router.add_route("*", "/flush_cache", _flush)
    app.router.add_get("/debug/requests", _debug_get)
    app.router.add_delete("/debug/requests", _debug_clear)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``llm_mocker.py``: parse flags, serve until SIGINT/SIGTERM."""
    try:
        cfg = config_from_argv(argv)
        _raise_open_file_limit()
        return asyncio.run(_serve(cfg))
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return int(exc.exit_status)
    except KeyboardInterrupt:
        return int(ExitStatus.OK)


# -- serving ------------------------------------------------------------------------------


async def _serve(cfg: MockerConfig) -> int:
    app = await build_app(cfg)
    state = app[_STATE]
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        access_log=None,
        shutdown_timeout=2.0,
        keepalive_timeout=cfg.read_timeout_s,
    )
    await runner.setup()
    loop = asyncio.get_running_loop()
    assert runner.server is not None
    try:
        server = await loop.create_server(
            guarded(runner.server, cfg.read_timeout_s),
            cfg.host,
            cfg.port,
            backlog=cfg.backlog,
            reuse_address=True,
        )
    except OSError as exc:
        await runner.cleanup()
        raise UsageError(
            f"llm_mocker: cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}. "
            "Choose another --port (0 picks a free one)."
        ) from None
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if state.trace is not None:
        state.trace.start()
    port = server.sockets[0].getsockname()[1]
    print(ready_line(cfg.host, port), flush=True)
    await stop.wait()
    server.close()  # no new connections; runner.cleanup() ends the open ones
    state.engine.shutdown()
    await runner.cleanup()
    if state.trace is not None:
        await state.trace.close()
    return int(ExitStatus.OK)


def _raise_open_file_limit() -> None:
    """Thousands of concurrent streams need thousands of sockets; lift the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft != resource.RLIM_INFINITY and soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


# -- completion handlers ------------------------------------------------------------------


async def _chat(request: web.Request) -> web.StreamResponse:
    return await _complete(request, Kind.CHAT)


async def _completions(request: web.Request) -> web.StreamResponse:
    return await _complete(request, Kind.COMPLETION)


async def _complete(request: web.Request, kind: Kind) -> web.StreamResponse:
    arrived_ns = time.monotonic_ns()  # the request's headers are parsed: it has arrived
    state = request.app[_STATE]
    cfg = state.cfg
    try:
        raw = await _read_body(request, cfg)
    except Rejected as rej:
        # No keep-alive after a body left unread. After a 413, aiohttp reads and discards what
        # is still coming (its lingering, at most 10 s) so the client sees the answer; a body
        # too slow to arrive gets no such grace: the 408 is sent and the connection closed.
        resp, _ = await _send_json(request, rej.body, rej.status, close=True)
        if rej.status == 408 and request.transport is not None:
            request.transport.close()
        return resp
    read_ns = time.monotonic_ns()
    arrival = asyncio.get_running_loop().time()
    try:
        body = decode_body(raw)
        state.recent.add(raw, request.raw_headers)
        parsed = parse_request(body, kind, cfg.model, cfg.chat_template_header, cfg.max_model_len)
    except Rejected as rej:
        resp, _ = await _send_json(request, rej.body, rej.status)
        return resp
    plan = state.engine.planner.plan(
        None if cfg.ignore_max_tokens else parsed.max_tokens,
        parsed.min_tokens,
        parsed.ignore_eos,
        parsed.stop,
    )
    rid = f"{kind.id_prefix}-{uuid.uuid4().hex}"
    entry: dict[str, Any] = {
        "id": rid,
        "path": request.path,
        "status": 200,
        "arrived_ns": arrived_ns,
        "read_ns": read_ns,
        "chunk_ns": [],
        "content_ns": [],
        "done_ns": None,
    }
    try:
        if plan.fault in (Fault.ERROR, Fault.RATE_LIMIT):
            return await _injected_error(request, state, plan, entry)
        if parsed.stream:
            return await _stream(request, state, parsed, plan, rid, arrival, entry)
        return await _unary(request, state, parsed, plan, rid, arrival, entry)
    finally:
        if state.trace is not None:
            state.trace.record(entry)


async def _read_body(request: web.Request, cfg: MockerConfig) -> bytes:
    """The whole body, or a 413 past ``--max-request-bytes`` (aiohttp stops reading there, so
    a huge body never sits in memory) or a 408 when it takes longer than ``--read-timeout-s``."""
    try:
        return await asyncio.wait_for(request.read(), cfg.read_timeout_s)
    except web.HTTPRequestEntityTooLarge:
        raise Rejected(
            413,
            error_body(
                f"Request body too large: the limit is {cfg.max_request_bytes} bytes "
                "(--max-request-bytes).",
                "RequestEntityTooLargeError",
                None,
                413,
            ),
        ) from None
    except asyncio.TimeoutError:
        raise Rejected(
            408,
            error_body(
                f"Request body not received within {cfg.read_timeout_s:g} s (--read-timeout-s).",
                "RequestTimeoutError",
                None,
                408,
            ),
        ) from None


async def _stream(
    request: web.Request,
    state: _State,
    parsed: ParsedRequest,
    plan: RequestPlan,
    rid: str,
    arrival: float,
    entry: dict[str, Any],
) -> web.StreamResponse:
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    chunked = request.version >= HttpVersion11
    if chunked:
        resp.enable_chunked_encoding()
    await resp.prepare(request)
    transport = request.transport
    if transport is None:
        return resp
    fmt = StreamFormat(parsed.kind, rid, parsed.model, int(time.time()))
    shape = state.shapes[parsed.kind]
    tracing = state.trace is not None
    sink: StreamSink | ShapedSink
    if shape.plain:
        usage = parsed.include_usage and shape.usage_mode is not UsageMode.NONE
        tokens = state.tokens[parsed.kind]
        sink = StreamSink(transport, chunked, fmt, tokens, plan.filler_offset, usage, tracing)
    else:
        answer = state.engine.planner.output(plan.filler_offset, plan.output_tokens)
        sink = ShapedSink(
            transport,
            chunked,
            fmt,
            shape,
            answer,
            plan.empty_tokens,
            parsed.include_usage,
            tracing,
        )
    seq = state.engine.new_seq(rid, parsed.prompt_tokens, plan, sink, arrival)
    outcome = await _run(state.engine, seq)
    entry["chunk_ns"], entry["content_ns"] = sink.chunk_ns, sink.content_ns
    entry["done_ns"] = sink.done_ns
    if outcome in _COMPLETED:
        with contextlib.suppress(ConnectionError):  # the client left right after [DONE]
            await resp.write_eof()
    return resp


async def _unary(
    request: web.Request,
    state: _State,
    parsed: ParsedRequest,
    plan: RequestPlan,
    rid: str,
    arrival: float,
    entry: dict[str, Any],
) -> web.StreamResponse:
    seq = state.engine.new_seq(rid, parsed.prompt_tokens, plan, None, arrival)
    await _run(state.engine, seq)
    if plan.fault is Fault.DROP and request.transport is not None:
        request.transport.close()
        return web.Response(status=200)
    if plan.fault is Fault.MALFORMED:
        return await _send_raw(request, b'{"id": "' + rid.encode() + b'", "choices": [ ###', entry)
    text = "".join(state.engine.output_tokens(seq))
    usage: dict[str, Any] | None = state.engine.usage(seq, seq.generated)
    reason, call_id = plan.finish_reason, None
    if state.shapes[parsed.kind].tool_calls:
        text, call_id = "".join(tool_arguments([text])), tool_call_id(rid)
        reason = "tool_calls" if reason == "stop" else reason
    if state.cfg.usage_mode is UsageMode.NONE:
        usage = None
    body = completion_body(
        parsed.kind, rid, parsed.model, int(time.time()), text, reason, usage, call_id
    )
    resp, entry["done_ns"] = await _send_json(request, body, 200)
    return resp


async def _run(engine: Engine, seq: Seq) -> str:
    """Submit and wait; whatever happens to the handler, the slot is freed."""
    engine.submit(seq)
    try:
        return await seq.done
    finally:
        engine.abort(seq)


async def _injected_error(
    request: web.Request, state: _State, plan: RequestPlan, entry: dict[str, Any]
) -> web.StreamResponse:
    if plan.fault is Fault.ERROR:
        body = error_body(
            "The server had an error while processing your request (injected by --error-rate).",
            "server_error",
            None,
            None,
        )
        status, headers = 500, None
    else:
        secs = state.cfg.retry_after_s
        body = error_body(
            "Rate limit reached (injected by --rate-limit-rate). Please retry "
            f"after {secs} seconds.",
            "requests",
            None,
            "rate_limit_exceeded",
        )
        status = 429
        headers = {"Retry-After": str(secs), "retry-after-ms": str(secs * 1000)}
    entry["status"] = status
    resp, entry["done_ns"] = await _send_json(request, body, status, headers)
    return resp


async def _send_json(
    request: web.Request,
    body: Any,
    status: int,
    headers: dict[str, str] | None = None,
    close: bool = False,
) -> tuple[web.Response, int]:
    """Write a JSON response now (then close the connection if ``close``); returns it and the
    monotonic_ns when it was written."""
    resp = web.Response(
        body=json.dumps(body).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )
    if close:
        resp.force_close()
    with contextlib.suppress(ConnectionError):  # the client is gone: nothing to answer
        await resp.prepare(request)
        await resp.write_eof()
    return resp, time.monotonic_ns()


async def _send_raw(request: web.Request, data: bytes, entry: dict[str, Any]) -> web.Response:
    resp = web.Response(body=data, status=200, content_type="application/json")
    with contextlib.suppress(ConnectionError):
        await resp.prepare(request)
        await resp.write_eof()
    entry["done_ns"] = time.monotonic_ns()
    return resp


# -- other endpoints ----------------------------------------------------------------------


async def _models(request: web.Request) -> web.Response:
    cfg = request.app[_STATE].cfg
    created = int(time.time())
    data: list[dict[str, Any]] = [
        {
            "id": name,
            "object": "model",
            "created": created,
            "owned_by": "drbench",
            "root": name,
            "parent": None,
            "max_model_len": cfg.max_model_len,
            "permission": [],
        }
        for name in cfg.model
    ]
    return web.json_response({"object": "list", "data": data})


async def _health(request: web.Request) -> web.Response:
    return web.Response(status=200)


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[_STATE].engine.metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _reset(request: web.Request) -> web.Response:
    request.app[_STATE].engine.reset_cache()
    return web.Response(status=200)


async def _flush(request: web.Request) -> web.Response:
    request.app[_STATE].engine.reset_cache()
    return web.Response(text="Cache flushed.\n")


async def _debug_get(request: web.Request) -> web.Response:
    with_headers = request.query.get("headers", "") not in ("", "0", "false")
    body = request.app[_STATE].recent.render(with_headers)
    return web.Response(body=body, content_type="application/json")


async def _debug_clear(request: web.Request) -> web.Response:
    return web.json_response({"cleared": request.app[_STATE].recent.clear()})


if __name__ == "__main__":
    raise SystemExit(main())
