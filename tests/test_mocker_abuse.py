"""The mock server under abuse, over HTTP and raw sockets against a mocker each test starts:
bodies too deep, too big or too slow, bounded debug log, slowloris connections, and request
fields out of range. Each must end in a clear error (or a closed connection), never a 500, a
traceback or a connection held forever.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import aiohttp
import pytest

from drbench.mocker.tokenizer import tokenize

FAST = ("--ttft-ms", "2", "--itl-ms", "2", "--output-tokens", "2")
CHAT = "/v1/chat/completions"
MSG = [{"role": "user", "content": "x"}]


def post_raw(base: str, path: str, data: bytes) -> tuple[int, Any]:
    async def go() -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
            async with s.post(base + path, data=data, headers=headers) as r:
                return r.status, json.loads(await r.read())

    return asyncio.run(go())


def get_json(base: str, path: str) -> Any:
    async def go() -> Any:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
            async with s.get(base + path) as r:
                return json.loads(await r.read())

    return asyncio.run(go())


def closed_after(port: int, sends: list[bytes], gap_s: float = 0.0, limit_s: float = 15) -> float:
    """Send ``sends`` (``gap_s`` apart, then nothing); seconds until the server closed the
    connection, with whatever it sent ignored."""
    with socket.create_connection(("127.0.0.1", port), timeout=limit_s) as s:
        start = time.monotonic()
        for data in sends:
            s.sendall(data)
            time.sleep(gap_s)
        s.settimeout(limit_s)
        while s.recv(65536):
            pass
        return time.monotonic() - start


def test_a_100k_deep_json_body_is_a_vllm_style_400(mocker_factory) -> None:
    m = mocker_factory(*FAST)
    deep = b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, body = post_raw(m.base_url, CHAT, deep)
    assert status == 400
    assert body["error"]["type"] == "BadRequestError" and body["error"]["code"] == 400
    assert "nested too deeply" in body["error"]["message"]
    for bad in (b"{oops", b"\xff\xfe\x00", b"[1, 2]"):
        status, body = post_raw(m.base_url, CHAT, bad)
        assert (status, body["error"]["type"]) == (400, "BadRequestError")
    assert get_json(m.base_url, "/v1/models")["data"]
    assert m.stderr_text() == ""  # no traceback


@pytest.mark.parametrize(
    ("body", "param", "needle"),
    [
        ({"messages": MSG, "min_tokens": -1}, "min_tokens", "'min_tokens': must be >= 0"),
        ({"messages": MSG, "min_tokens": 10**12}, "min_tokens", "'min_tokens': must be <="),
        ({"messages": MSG, "min_tokens": 5, "max_tokens": 4}, "min_tokens", "max_tokens=4 "),
        ({"prompt": [1, 2, -5]}, "prompt", "'prompt[2]': token ids must be >= 0"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, 5]}]},
            "messages[0].content[1]",
            "'messages[0].content[1]'",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 7}]}]},
            "messages[0].content[0].text",
            "'messages[0].content[0].text'",
        ),
    ],
)
def test_out_of_range_fields_are_400s_naming_the_field(
    mocker, body: dict, param: str, needle: str
) -> None:
    path = "/v1/completions" if "prompt" in body else CHAT
    status, err = post_raw(mocker.base_url, path, json.dumps(body).encode())
    assert status == 400 and err["error"]["param"] == param
    assert needle in err["error"]["message"]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_temperature_is_a_400(mocker, literal: bytes) -> None:
    raw = b'{"messages": [{"role": "user", "content": "x"}], "temperature": ' + literal + b"}"
    status, err = post_raw(mocker.base_url, CHAT, raw)
    assert status == 400 and err["error"]["param"] == "temperature"
    assert "expected a finite number" in err["error"]["message"]


def test_body_over_max_request_bytes_is_a_413(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--max-request-bytes", "2000")
    big = json.dumps({"prompt": "y" * 5000}).encode()
    status, body = post_raw(m.base_url, "/v1/completions", big)
    assert status == 413 and body["error"]["code"] == 413
    assert "2000 bytes (--max-request-bytes)" in body["error"]["message"]
    status, _ = post_raw(m.base_url, "/v1/completions", json.dumps({"prompt": "ok"}).encode())
    assert status == 200
    assert get_json(m.base_url, "/debug/requests") == [{"prompt": "ok"}]  # not the big one


def test_debug_log_is_bounded_in_bytes(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--debug-requests-bytes", "10000")
    for tag in "abcde":
        body = json.dumps({"prompt": tag * 4000, "max_tokens": 1}).encode()
        assert post_raw(m.base_url, "/v1/completions", body)[0] == 200
    kept = get_json(m.base_url, "/debug/requests")
    assert [b["prompt"][0] for b in kept] == ["d", "e"]  # 2 x ~4 kB fit in 10 kB
    huge = json.dumps({"prompt": "z" * 20000, "max_tokens": 1}).encode()
    assert post_raw(m.base_url, "/v1/completions", huge)[0] == 200
    assert get_json(m.base_url, "/debug/requests")[-1] == {"truncated": True, "bytes": len(huge)}


def test_half_a_request_line_is_closed_within_the_read_timeout(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--read-timeout-s", "1")
    assert m.port is not None
    took = closed_after(m.port, [b"POST /v1/chat/compl"])
    assert 0.5 < took < 10
    # trickled header lines that never end the head: closed too, though bytes keep coming
    took = closed_after(m.port, [b"POST /v1/completions HTTP/1.1\r\n", b"Host: x\r\n"], 0.4)
    assert took < 10
    assert get_json(m.base_url, "/v1/models")["data"]  # the server still serves


def test_a_body_slower_than_the_read_timeout_gets_a_408(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--read-timeout-s", "1")
    assert m.port is not None
    head = (
        b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", m.port), timeout=15) as s:
        start = time.monotonic()
        s.sendall(head + b'{"prompt": ')
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        took = time.monotonic() - start
    status_line, rest = data.split(b"\r\n", 1)
    assert b" 408 " in status_line and 0.5 < took < 10
    body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == 408 and "--read-timeout-s" in body["error"]["message"]


def test_a_kept_alive_connection_serves_requests_within_the_timeout(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--read-timeout-s", "1")

    async def go() -> list[int]:
        conn = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=conn) as s:
            out = []
            for _ in range(3):
                async with s.post(m.base_url + "/v1/completions", json={"prompt": "k"}) as r:
                    out.append(r.status)
                    await r.read()
                await asyncio.sleep(0.6)  # each head comes later than 1 s after connecting
            return out

    assert asyncio.run(go()) == [200, 200, 200]


def peak_rss_mb(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        line = next(x for x in f if x.startswith("VmHWM"))
    return int(line.split()[1]) // 1024


@pytest.mark.slow
def test_a_20_mb_prompt_is_rejected_without_holding_its_tokens(mocker_factory) -> None:
    m = mocker_factory(*FAST)
    assert m.proc is not None
    before = peak_rss_mb(m.proc.pid)
    text = "hello world, caches are fast. " * 700_000
    status, body = post_raw(m.base_url, "/v1/completions", json.dumps({"prompt": text}).encode())
    assert status == 400
    assert f"your request has {len(tokenize(text))} input tokens" in body["error"]["message"]
    # 21 MB of body, JSON and text, but not its 5.6 M token strings (~280 MB more)
    assert peak_rss_mb(m.proc.pid) - before < 200
