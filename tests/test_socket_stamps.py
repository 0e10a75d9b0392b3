"""Socket stamps: StampLog's byte-to-read mapping, and stamps taken before the task wakes."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest

import drbench.client as client
from drbench import socket_stamps
from drbench.records import Prompt
from drbench.response import parse_exchange
from drbench.socket_stamps import StampingProtocol, StampLog, make_connector


class FakeContent:
    """Stands in for aiohttp's StreamReader: only ``total_bytes`` is read."""

    def __init__(self) -> None:
        self.total_bytes = 0

    def feed(self, protocol: SimpleNamespace, t_ns: int, data: bytes) -> None:
        """What StampingProtocol.data_received does around aiohttp's parsing."""
        protocol.arrival_ns = t_ns
        self.total_bytes += len(data)
        if protocol.arrival_log is not None:
            protocol.arrival_log.note(t_ns)


def _setup() -> tuple[SimpleNamespace, FakeContent]:
    return SimpleNamespace(arrival_ns=0, arrival_log=None), FakeContent()


def test_one_read_per_chunk_keeps_its_stamp() -> None:
    proto, content = _setup()
    log = StampLog(proto, content)
    content.feed(proto, 100, b"data: a\n\n")
    assert log.split(b"data: a\n\n", 999) == [(100, b"data: a\n\n")]
    content.feed(proto, 200, b"data: b\n\n")
    assert log.split(b"data: b\n\n", 999) == [(200, b"data: b\n\n")]


def test_reads_merged_by_a_late_reader_are_cut_apart() -> None:
    proto, content = _setup()
    log = StampLog(proto, content)
    content.feed(proto, 100, b"aaa")
    content.feed(proto, 150, b"bb")
    content.feed(proto, 170, b"c")
    assert log.split(b"aaabbc", 999) == [(100, b"aaa"), (150, b"bb"), (170, b"c")]


def test_one_read_taken_in_two_parts_keeps_one_stamp() -> None:
    proto, content = _setup()
    log = StampLog(proto, content)
    content.feed(proto, 100, b"abcdef")
    content.feed(proto, 130, b"gh")
    assert log.split(b"abcd", 999) == [(100, b"abcd")]
    assert log.split(b"efgh", 999) == [(100, b"ef"), (130, b"gh")]


def test_bytes_that_came_with_the_headers_get_that_reads_stamp() -> None:
    proto, content = _setup()
    content.feed(proto, 50, b"early")  # before the reader attached
    log = StampLog(proto, content)
    content.feed(proto, 80, b"late")
    assert log.split(b"earlylate", 999) == [(50, b"early"), (80, b"late")]


def test_bytes_no_read_noted_fall_back_to_the_readers_stamp() -> None:
    proto, content = _setup()
    log = StampLog(proto, content)
    content.feed(proto, 100, b"ab")
    content.total_bytes += 2  # fed without a note
    assert log.split(b"abcd", 999) == [(100, b"ab"), (999, b"cd")]


def test_detach_stops_noting() -> None:
    proto, content = _setup()
    log = StampLog(proto, content)
    log.detach()
    assert proto.arrival_log is None


def test_make_connector_builds_stamping_connections() -> None:
    async def go() -> None:
        connector = make_connector(limit=2)
        try:
            assert isinstance(connector._factory(), StampingProtocol)
        finally:
            await connector.close()

    asyncio.run(go())


STALL_S = 0.04
STAMP_TOLERANCE_NS = 1_000  # a stamp rebuilt from ttft_ms + itl_ms carries float rounding


def _stamps_ns(mocker_factory, tmp_path: Path) -> list[float]:
    """The perf_counter_ns stamp of each text event of one streamed answer (tokens come 200 ms
    apart), checked against the mocker's trace: one stamp per content write of that response."""
    trace = tmp_path / "trace.jsonl"
    mock = mocker_factory(
        "--ttft-ms", "100", "--itl-ms", "200", "--output-tokens", "3", "--trace", str(trace)
    )
    endpoint = client.Endpoint.parse(mock.url("/v1/chat/completions"))
    body = endpoint.body(Prompt(id="p", text="hi"), model="mock-llm", max_tokens=3, temperature=0)
    req = client.PreparedRequest.of("p", body)

    async def go():
        async with client.make_session(30) as session:
            return await client.send(session, endpoint, req, 30)

    raw = asyncio.run(go())
    rec = parse_exchange(
        raw,
        prompt_id="p",
        level="concurrency=1",
        round=1,
        round_start_ns=raw.send_ns,
        prompt_tokens=1,
    )
    mock.stop()  # flushes the trace
    entry = next(e for e in map(json.loads, trace.read_text().splitlines()))
    assert rec.ok and rec.response_id == entry["id"]
    stamps = [raw.send_ns + rec.ttft_ms * 1e6]
    for gap in rec.itl_ms:
        stamps.append(stamps[-1] + gap * 1e6)
    assert len(stamps) == len(entry["content_ns"])
    return stamps


@pytest.fixture
def stalled_wakeups(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """A 40 ms stall between every read's arrival and the reading task's wake-up.

    Returns the ``(entered, left)`` perf_counter_ns of every ``data_received`` call that brought
    bytes: the
    deterministic seam the tests compare stamps with. (Comparing with the mocker's write times
    instead put the other process's scheduling, and so the machine's load, into the margin.)
    """
    windows: list[tuple[int, int]] = []
    original = StampingProtocol.data_received

    def stalled(self, data: bytes) -> None:
        if not data:  # aiohttp also calls it with b"" (no bytes arrived: nothing to stamp)
            original(self, data)
            return
        asyncio.get_running_loop().call_soon(time.sleep, STALL_S)  # runs before the task resumes
        entered = time.perf_counter_ns()
        original(self, data)
        windows.append((entered, time.perf_counter_ns()))

    monkeypatch.setattr(StampingProtocol, "data_received", stalled)
    return windows


def _in_a_read(stamp: float, windows: list[tuple[int, int]]) -> bool:
    tol = STAMP_TOLERANCE_NS
    return any(entered - tol <= stamp <= left + tol for entered, left in windows)


def test_stamps_are_taken_on_arrival_not_on_wakeup(
    stalled_wakeups: list[tuple[int, int]], mocker_factory, tmp_path: Path
) -> None:
    stamps = _stamps_ns(mocker_factory, tmp_path)
    assert len(stamps) == 3
    # taken inside data_received, so at least 40 ms before the stalled task could have run
    assert all(_in_a_read(s, stalled_wakeups) for s in stamps), (stamps, stalled_wakeups)


def test_without_arrival_stamps_the_stall_shows(
    stalled_wakeups: list[tuple[int, int]],
    mocker_factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fallback (stamp at wake-up) is what the test above would catch."""
    monkeypatch.setattr(client, "attach", lambda resp: None)
    stamps = _stamps_ns(mocker_factory, tmp_path)
    assert not any(_in_a_read(s, stalled_wakeups) for s in stamps), (stamps, stalled_wakeups)
    since_read_ms = [
        (s - max(entered for entered, _ in stalled_wakeups if entered <= s)) / 1e6 for s in stamps
    ]
    assert min(since_read_ms) >= 0.95 * STALL_S * 1e3, since_read_ms


def test_missing_aiohttp_internals_fall_back_to_a_plain_connector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket_stamps, "StampingProtocol", None)

    async def go() -> None:
        connector = make_connector(limit=2)
        try:
            assert not isinstance(connector._factory(), StampingProtocol)
        finally:
            await connector.close()

    asyncio.run(go())


# --- the request side: send_ns is when the request's last byte went to the kernel ---------------

# A client preempted between its send and its stamp (a loaded machine) stamps later than the
# write, and maybe later than the server's read on the other core; these margins allow for that
# and are far below what the stamps must not contain (a pooled connection's wait, a server's TTFT).
PREEMPTED_NS = 60_000_000  # the suite runs on 3 xdist workers on 2 shared cores


def _chat(mock, max_tokens: int = 2) -> tuple[client.Endpoint, client.PreparedRequest]:
    endpoint = client.Endpoint.parse(mock.url("/v1/chat/completions"))
    body = endpoint.body(
        Prompt(id="p", text="hi"), model="mock-llm", max_tokens=max_tokens, temperature=0
    )
    return endpoint, client.PreparedRequest.of("p", body)


def _trace(mock, path: Path) -> dict[str, dict]:
    mock.stop()  # flushes the trace
    return {e["id"]: e for e in map(json.loads, path.read_text().splitlines())}


@pytest.fixture
def socket_writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The ``(entered, left)`` perf_counter_ns of every non-empty write asyncio's socket
    transport performed (it calls ``sock.send`` inside): the seam send_ns is checked against."""
    from asyncio.selector_events import _SelectorSocketTransport

    windows: list[tuple[int, int]] = []
    original = _SelectorSocketTransport.write

    def write(self, data) -> None:
        entered = time.perf_counter_ns()
        original(self, data)
        if data:
            windows.append((entered, time.perf_counter_ns()))

    monkeypatch.setattr(_SelectorSocketTransport, "write", write)
    return windows


def test_send_ns_is_taken_after_the_request_is_written(
    socket_writes: list[tuple[int, int]], mocker_factory, tmp_path: Path
) -> None:
    trace = tmp_path / "trace.jsonl"
    mock = mocker_factory("--ttft-ms", "5", "--itl-ms", "1", "--trace", str(trace))
    endpoint, req = _chat(mock)

    async def go() -> tuple[int, client.RawExchange]:
        async with client.make_session(30) as session:
            before = time.perf_counter_ns()
            return before, await client.send(session, endpoint, req, 30)

    before, raw = asyncio.run(go())
    rec = parse_exchange(
        raw, prompt_id="p", level="concurrency=1", round=1, round_start_ns=before, prompt_tokens=1
    )
    entry = _trace(mock, trace)[rec.response_id]
    assert rec.ok and socket_writes
    last_write_left = max(left for _, left in socket_writes if left <= raw.send_ns)
    # after the one write that carried the request (headers and body together), not before post
    assert before < socket_writes[-1][0] <= raw.send_ns, (before, socket_writes, raw.send_ns)
    assert raw.send_ns - last_write_left < PREEMPTED_NS  # the stamp right after it, not later
    # and before the server read it (CLOCK_MONOTONIC is shared)
    assert raw.send_ns <= entry["read_ns"] + PREEMPTED_NS, (raw.send_ns, entry["read_ns"])


def test_send_ns_excludes_the_wait_for_a_pooled_connection(mocker_factory, tmp_path: Path) -> None:
    """One connection, two requests: the second waits for the first to finish before a byte of
    it is written; the old stamp (before ``session.post``) put that wait into its TTFT."""
    trace = tmp_path / "trace.jsonl"
    mock = mocker_factory("--ttft-ms", "150", "--itl-ms", "1", "--trace", str(trace))
    endpoint, req = _chat(mock)

    async def go() -> tuple[int, list[client.RawExchange]]:
        async with aiohttp.ClientSession(connector=make_connector(limit=1)) as session:
            before = time.perf_counter_ns()
            raws = await asyncio.gather(*(client.send(session, endpoint, req, 30) for _ in "ab"))
            return before, list(raws)

    before, raws = asyncio.run(go())
    recs = [
        parse_exchange(r, prompt_id="p", level="concurrency=2", round=1, round_start_ns=before,
                       prompt_tokens=1)
        for r in raws
    ]  # fmt: skip
    entries = _trace(mock, trace)
    assert all(r.ok for r in recs), [r.error for r in recs]
    first, second = sorted(raws, key=lambda r: r.send_ns)
    assert first.end_ns is not None and second.send_ns > first.end_ns  # sent after the wait
    for raw, rec in zip(raws, recs, strict=True):
        assert before <= raw.send_ns <= entries[rec.response_id]["read_ns"] + PREEMPTED_NS


def test_without_write_stamps_send_ns_is_the_stamp_before_post(
    mocker_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback: a transport that cannot be wrapped leaves the stamp before the post."""
    monkeypatch.setattr(socket_stamps, "_stamp_writes", lambda protocol, transport: None)
    mock = mocker_factory("--ttft-ms", "5", "--itl-ms", "1")
    endpoint, req = _chat(mock)

    async def go() -> tuple[int, int, client.RawExchange]:
        async with aiohttp.ClientSession(connector=make_connector(limit=1)) as session:
            async with session.get(mock.url("/v1/models")) as resp:  # the connection, made
                await resp.read()
            before = time.perf_counter_ns()
            raw = await client.send(session, endpoint, req, 30)
            return before, time.perf_counter_ns(), raw

    before, after, raw = asyncio.run(go())
    assert raw.status == 200 and raw.error is None
    assert before <= raw.send_ns <= after
    assert raw.send_ns - before < PREEMPTED_NS  # taken at the call, before the request was built


@pytest.mark.slow
def test_a_wave_of_256_requests_is_stamped_when_each_was_written(
    socket_writes: list[tuple[int, int]], mocker_factory, tmp_path: Path
) -> None:
    """256 sends started together: aiohttp builds every request before (on Python < 3.12) any
    body write runs, so a stamp taken before the post is far from the write; send_ns is not."""
    trace = tmp_path / "trace.jsonl"
    mock = mocker_factory(
        "--ttft-ms", "20", "--itl-ms", "1", "--max-num-seqs", "512", "--trace", str(trace)
    )
    endpoint, req = _chat(mock)

    async def one(session: aiohttp.ClientSession) -> tuple[int, client.RawExchange]:
        return time.perf_counter_ns(), await client.send(session, endpoint, req, 60)

    async def go() -> list[tuple[int, client.RawExchange]]:
        async with aiohttp.ClientSession(connector=make_connector(limit=300)) as session:
            async with session.get(mock.url("/v1/models")) as resp:
                await resp.read()
            return list(await asyncio.gather(*(one(session) for _ in range(256))))

    sends = asyncio.run(go())
    entries = _trace(mock, trace)
    for called_ns, raw in sends:
        rec = parse_exchange(
            raw, prompt_id="p", level="concurrency=256", round=1, round_start_ns=called_ns,
            prompt_tokens=1,
        )  # fmt: skip
        assert rec.ok, rec.error
        read_ns = entries[rec.response_id]["read_ns"]
        assert called_ns < raw.send_ns <= read_ns + PREEMPTED_NS
        # right after one of the socket writes made since its call
        assert any(
            called_ns <= entered and left <= raw.send_ns <= left + PREEMPTED_NS
            for entered, left in socket_writes
        ), raw.send_ns


# --- resume_reading: skipped when nothing is paused, honoured when something is ---------------

_EVENT = b'data: {"id":"big","choices":[{"index":0,"delta":{"content":"t"}}]}\n\n'


def test_resume_reading_with_nothing_paused_feeds_the_parser_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert StampingProtocol is not None
    calls: list[bytes] = []

    class Transport:  # what connection_made and pause/resume touch
        def write(self, data: bytes) -> None: ...
        def writelines(self, data: list[bytes]) -> None: ...
        def get_extra_info(self, name: str) -> None: ...
        def is_closing(self) -> bool:
            return False

        def pause_reading(self) -> None: ...
        def resume_reading(self) -> None: ...

    async def go() -> None:
        proto = StampingProtocol(asyncio.get_running_loop())
        proto.connection_made(Transport())
        monkeypatch.setattr(proto, "data_received", calls.append)
        proto.resume_reading()  # what aiohttp's reader calls after each read
        assert calls == []
        proto._reading_paused = True  # what pause_reading sets (it also needs a parser)
        proto.resume_reading()  # paused: aiohttp's own resume runs (it feeds the parser b"")
        assert calls == [b""]

    asyncio.run(go())


def test_a_response_that_pauses_reading_is_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """A session reading 1 KiB at a time (``read_bufsize``) and 4 MiB written at once: aiohttp's
    buffer passes its high-water mark, reading pauses and must resume through the protocol, or
    the stream stalls until the timeout."""
    from aiohttp import web

    assert StampingProtocol is not None
    pauses: list[int] = []
    original = StampingProtocol.pause_reading

    def pause(self) -> None:
        pauses.append(1)
        original(self)

    monkeypatch.setattr(StampingProtocol, "pause_reading", pause)
    n = (4 << 20) // len(_EVENT)

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(_EVENT * n + b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}'
                         b"\n\ndata: [DONE]\n\n")  # fmt: skip
        return resp

    async def go() -> client.RawExchange:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            endpoint = client.Endpoint.parse(f"http://127.0.0.1:{port}/v1/chat/completions")
            body = endpoint.body(Prompt(id="p", text="hi"), model="m", max_tokens=9, temperature=0)
            async with aiohttp.ClientSession(
                connector=make_connector(limit=1),
                read_bufsize=1024,
                timeout=aiohttp.ClientTimeout(total=20),  # a stalled stream fails, not hangs
            ) as session:
                return await client.send(
                    session, endpoint, client.PreparedRequest.of("p", body), 30
                )
        finally:
            await runner.cleanup()

    raw = asyncio.run(go())
    rec = parse_exchange(
        raw,
        prompt_id="p",
        level="concurrency=1",
        round=1,
        round_start_ns=raw.send_ns,
        prompt_tokens=1,
    )
    assert rec.ok, rec.error
    assert rec.token_events == n
    assert pauses  # the case this test is about did happen
