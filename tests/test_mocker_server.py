"""The mock server over real HTTP: wire format (raw and through the openai SDK), usage and cached
tokens, the cache effect on TTFT, eviction, reset, queueing, metrics, faults, bad requests,
client disconnects, the trace file and the /debug/requests aid.

Each test starts its own mocker (``mocker_factory``) with small delays unless it only reads
state-free endpoints. Timing assertions compare against the configured delays with wide margins.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from multidict import CIMultiDict
from prometheus_client.parser import text_string_to_metric_families

from drbench.mocker.cache import cacheable_blocks
from drbench.mocker.metrics import TTFT_BUCKETS
from drbench.mocker.process import MockerProcess, MockerStartError
from drbench.mocker.tokenizer import render_chat, tokenize

FAST = ("--ttft-ms", "2", "--itl-ms", "2", "--output-tokens", "8")


@dataclass
class Resp:
    status: int
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def request(
    method: str,
    url: str,
    *,
    json_body: Any = None,
    content: bytes | None = None,
    timeout: float = 30.0,
) -> Resp:
    """One plain HTTP exchange (its own event loop, so tests stay synchronous)."""

    async def go() -> Resp:
        headers = {"Content-Type": "application/json"} if content is not None else None
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
            async with s.request(method, url, json=json_body, data=content, headers=headers) as r:
                return Resp(r.status, CIMultiDict(r.headers), await r.read())

    return asyncio.run(go())


def get(url: str) -> Resp:
    return request("GET", url)


def post(url: str, json_body: Any = None, **kw: Any) -> Resp:
    return request("POST", url, json_body=json_body, **kw)


@dataclass
class Streamed:
    status: int
    headers: CIMultiDict[str]
    events: list[Any] = field(default_factory=list)  # parsed JSON, raw str if not JSON
    content_times: list[float] = field(default_factory=list)
    start: float = 0.0
    done: bool = False
    error: Exception | None = None

    @property
    def ttft_s(self) -> float:
        return self.content_times[0] - self.start

    @property
    def chunks(self) -> list[dict]:
        return [e for e in self.events if isinstance(e, dict)]

    @property
    def usage(self) -> dict:
        return next(e["usage"] for e in self.chunks if e.get("usage"))


def stream(
    base: str, body: dict, path: str = "/v1/chat/completions", stop_after_content: int | None = None
) -> Streamed:
    """POST with stream=true and parse the SSE events, stamping the text-bearing ones."""
    return asyncio.run(
        _stream(
            base + path,
            {"stream": True, "stream_options": {"include_usage": True}, **body},
            stop_after_content,
        )
    )


async def _stream(url: str, body: dict, stop_after_content: int | None) -> Streamed:
    start = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.post(url, json=body) as r:
            res = Streamed(r.status, CIMultiDict(r.headers), start=start)
            buf = b""
            try:
                async for data in r.content.iter_any():
                    now = time.perf_counter()
                    buf += data
                    while b"\n\n" in buf:
                        raw, buf = buf.split(b"\n\n", 1)
                        _take(res, raw.decode(), now)
                    if stop_after_content and len(res.content_times) >= stop_after_content:
                        r.close()  # drop the connection mid-stream
                        return res
            except aiohttp.ClientError as exc:
                res.error = exc
    return res


def _take(res: Streamed, raw: str, now: float) -> None:
    assert raw.startswith("data: "), raw
    data = raw[len("data: ") :]
    if data == "[DONE]":
        res.done = True
        return
    try:
        event = json.loads(data)
    except ValueError:
        res.events.append(data)
        return
    res.events.append(event)
    for c in event.get("choices") or []:
        if c.get("delta", {}).get("content") or c.get("text"):
            res.content_times.append(now)


def chat_body(content: str, **kw: Any) -> dict:
    return {"model": "mock-llm", "messages": [{"role": "user", "content": content}], **kw}


def prompt_tokens(messages: list[dict]) -> int:
    return len(tokenize(render_chat(messages)))


def metrics(base: str) -> dict[str, float]:
    """Every sample summed over its labels, keyed by sample name (plus le for buckets)."""
    text = get(base + "/metrics").text
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            key = s.name + (f"[{s.labels['le']}]" if "le" in s.labels else "")
            out[key] = out.get(key, 0.0) + s.value
    return out


def sdk(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0)


# -- wire format -------------------------------------------------------------------------------


def test_chat_stream_wire_format(mocker_factory) -> None:
    m = mocker_factory(*FAST)
    res = stream(m.base_url, chat_body("hello", max_tokens=5))
    assert res.status == 200 and res.done and res.error is None
    assert res.headers["content-type"].startswith("text/event-stream")
    chunks = res.chunks
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content = [c for c in chunks[1:-2]]
    assert len(content) == 5 and all(c["choices"][0]["finish_reason"] is None for c in content)
    assert chunks[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "length",
    }
    assert chunks[-1]["choices"] == []
    n = prompt_tokens([{"role": "user", "content": "hello"}])
    assert chunks[-1]["usage"] == {
        "prompt_tokens": n,
        "completion_tokens": 5,
        "total_tokens": n + 5,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def test_stream_without_include_usage_has_no_usage_chunk(mocker_factory) -> None:
    m = mocker_factory(*FAST)
    body = {**chat_body("hi", max_tokens=3), "stream_options": None}
    res = stream(m.base_url, body)
    assert res.done and all("usage" not in c for c in res.chunks)
    assert res.chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_openai_sdk_consumes_every_response_shape(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--model", "mock-llm", "other-name")
    client = sdk(m.base_url)
    msgs = [{"role": "user", "content": "Say something."}]
    chunks = list(
        client.chat.completions.create(
            model="mock-llm", messages=msgs, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].usage.completion_tokens == 8
    assert chunks[-1].usage.prompt_tokens == prompt_tokens(msgs)
    full = client.chat.completions.create(model="other-name", messages=msgs, max_tokens=4)
    assert full.model == "other-name" and full.choices[0].finish_reason == "length"
    assert full.choices[0].message.content and full.usage.completion_tokens == 4
    assert full.usage.prompt_tokens_details.cached_tokens == 0
    comp = list(
        client.completions.create(
            model="mock-llm",
            prompt="Once upon a time",
            stream=True,
            max_tokens=6,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in comp if c.choices)
    assert comp[-1].usage.completion_tokens == 6
    whole = client.completions.create(model="mock-llm", prompt="Once upon a time", max_tokens=3)
    assert whole.object == "text_completion" and whole.usage.completion_tokens == 3
    assert [x.id for x in client.models.list().data] == ["mock-llm", "other-name"]


def test_http_1_0_stream_is_unchunked_and_closes(mocker_factory) -> None:
    m = mocker_factory(*FAST)
    body = json.dumps({"prompt": "hi", "stream": True, "max_tokens": 3}).encode()
    head = (
        f"POST /v1/completions HTTP/1.0\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", m.port), timeout=10) as s:
        s.sendall(head + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    headers, payload = data.split(b"\r\n\r\n", 1)
    assert b"200" in headers.split(b"\r\n")[0] and b"chunked" not in headers.lower()
    assert payload.count(b'"text":') == 4 and payload.endswith(b"data: [DONE]\n\n")


# -- usage, cache and timing ---------------------------------------------------------------


def test_repeated_prompt_has_lower_ttft_and_cached_tokens(mocker_factory) -> None:
    m = mocker_factory(
        "--ttft-ms", "5", "--itl-ms", "2", "--output-tokens", "3", "--prefill-tokens-per-s", "10000"
    )
    content = " ".join(f"fact {i}: caches make repeated prompts fast." for i in range(150))
    n = prompt_tokens([{"role": "user", "content": content}])
    assert n > 1000
    cold = stream(m.base_url, chat_body(content))
    warm = stream(m.base_url, chat_body(content))
    assert cold.usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert warm.usage["prompt_tokens_details"]["cached_tokens"] == (n - 1) // 16 * 16
    assert cold.ttft_s >= 0.8 * (0.005 + n / 10000)
    assert warm.ttft_s < cold.ttft_s / 3


def test_extended_conversation_reuses_prompt_and_answer_blocks(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--output-tokens", "40")
    turn1 = [
        {"role": "system", "content": "You are terse. " * 20},
        {"role": "user", "content": "Explain prefix caching."},
    ]
    reply = post(m.base_url + "/v1/chat/completions", json_body={"messages": turn1}).json()[
        "choices"
    ][0]["message"]["content"]
    turn2 = [
        *turn1,
        {"role": "assistant", "content": reply},
        {"role": "user", "content": "And eviction?"},
    ]
    usage = post(
        m.base_url + "/v1/chat/completions", json_body={"messages": turn2, "max_tokens": 1}
    ).json()["usage"]
    seen = tokenize(render_chat(turn1)) + tokenize(reply)
    now = tokenize(render_chat(turn2))
    common = next((i for i, (a, b) in enumerate(zip(seen, now, strict=False)) if a != b), len(seen))
    expected = min(common // 16, cacheable_blocks(len(now), 16)) * 16
    assert expected > len(tokenize(render_chat(turn1))) // 16 * 16  # the answer counts too
    assert usage["prompt_tokens_details"]["cached_tokens"] == expected


def test_working_set_past_capacity_is_evicted(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--cache-capacity-tokens", "640", "--output-tokens", "1")
    a, b = "alpha beta gamma delta " * 100, "one two three four five " * 100
    assert 400 < prompt_tokens([{"role": "user", "content": a}]) < 640

    def cached(text: str) -> int:
        r = post(m.base_url + "/v1/completions", json_body={"prompt": text}).json()
        return r["usage"]["prompt_tokens_details"]["cached_tokens"]

    assert cached(a) == 0 and cached(a) > 0
    assert cached(b) == 0  # b pushes most of a out
    assert cached(a) < 640 - 400


def test_reset_endpoints_empty_the_cache(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--output-tokens", "1")
    body = {"prompt": "reset me please " * 40}

    def cached() -> int:
        r = post(m.base_url + "/v1/completions", json_body=body).json()
        return r["usage"]["prompt_tokens_details"]["cached_tokens"]

    cached()
    assert cached() > 0
    assert post(m.base_url + "/reset_prefix_cache").status == 200
    assert cached() == 0 and cached() > 0
    assert post(m.base_url + "/flush_cache").status == 200
    assert cached() == 0


def test_requests_past_max_num_seqs_queue_visibly(mocker_factory) -> None:
    m = mocker_factory(
        "--max-num-seqs", "2", "--ttft-ms", "5", "--itl-ms", "20", "--output-tokens", "25"
    )
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        futs = [pool.submit(stream, m.base_url, chat_body(f"q{i}")) for i in range(5)]
        time.sleep(0.25)
        snap = metrics(m.base_url)
        results = [f.result() for f in futs]
    assert snap["vllm:num_requests_running"] == 2
    assert snap["vllm:num_requests_waiting"] == 3
    ttfts = sorted(r.ttft_s for r in results)
    assert ttfts[1] < 0.25 and ttfts[2] > 0.3  # three waited for a ~0.5 s request to end
    after = metrics(m.base_url)
    assert after["vllm:num_requests_running"] == 0 and after["vllm:num_requests_waiting"] == 0


def test_output_is_deterministic_under_seed(mocker_factory) -> None:
    outs = []
    for _ in range(2):
        m = mocker_factory(*FAST, "--seed", "11", "--output-tokens", "3-30")
        outs.append(
            [
                post(m.base_url + "/v1/completions", json_body={"prompt": f"p{i}"}).json()[
                    "choices"
                ][0]["text"]
                for i in range(6)
            ]
        )
    assert outs[0] == outs[1] and len({len(t) for t in outs[0]}) > 1


# -- metrics -----------------------------------------------------------------------------------


def test_metrics_parse_with_vllm_names_labels_and_counts(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--output-tokens", "4", "--kv-bytes-per-token", "1000")
    text = "metrics metrics metrics " * 30
    usages = [
        post(m.base_url + "/v1/completions", json_body={"prompt": text}).json()["usage"]
        for _ in range(2)
    ]
    raw = get(m.base_url + "/metrics")
    assert raw.headers["content-type"].startswith("text/plain")
    fams = {f.name: f for f in text_string_to_metric_families(raw.text)}
    for name in (
        "vllm:prefix_cache_queries",
        "vllm:prefix_cache_hits",
        "vllm:prompt_tokens",
        "vllm:generation_tokens",
        "vllm:prompt_tokens_cached",
    ):
        assert fams[name].type == "counter"
        assert fams[name].samples[0].labels == {"model_name": "mock-llm", "engine": "0"}
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "lmcache_hit_rate",
        "memory_usage_bytes",
    ):
        assert fams[name].type == "gauge"
    ttft = fams["vllm:time_to_first_token_seconds"]
    assert ttft.type == "histogram"
    bounds = [float(s.labels["le"]) for s in ttft.samples if s.name.endswith("_bucket")]
    assert bounds == [*TTFT_BUCKETS, float("inf")]
    assert fams["vllm:e2e_request_latency_seconds"].type == "histogram"
    got = metrics(m.base_url)
    prompt = sum(u["prompt_tokens"] for u in usages)
    hits = sum(u["prompt_tokens_details"]["cached_tokens"] for u in usages)
    assert got["vllm:prefix_cache_queries_total"] == prompt
    assert (
        got["vllm:prefix_cache_hits_total"] == hits == (usages[0]["prompt_tokens"] - 1) // 16 * 16
    )
    assert got["vllm:prompt_tokens_cached_total"] == hits
    assert got["vllm:generation_tokens_total"] == 8
    assert got["vllm:time_to_first_token_seconds_count"] == 2
    assert got["vllm:e2e_request_latency_seconds_count"] == 2
    assert got["lmcache_hit_rate"] == pytest.approx(hits / prompt)
    assert got["memory_usage_bytes"] > 0 and got["memory_usage_bytes"] % 16000 == 0


# -- faults --------------------------------------------------------------------------------------


def test_error_rate_gives_500_with_openai_error(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--error-rate", "1")
    r = post(m.base_url + "/v1/chat/completions", json_body=chat_body("x", stream=True))
    assert r.status == 500 and r.json()["error"]["type"] == "server_error"
    with pytest.raises(openai.InternalServerError):
        sdk(m.base_url).chat.completions.create(
            model="mock-llm", messages=[{"role": "user", "content": "x"}]
        )


def test_rate_limit_gives_429_with_retry_after(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--rate-limit-rate", "1", "--retry-after-s", "3")
    r = post(m.base_url + "/v1/completions", json_body={"prompt": "x"})
    assert r.status == 429 and r.headers["retry-after"] == "3"
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    with pytest.raises(openai.RateLimitError):
        sdk(m.base_url).completions.create(model="mock-llm", prompt="x")


def test_drop_closes_the_connection_mid_stream(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--drop-rate", "1", "--output-tokens", "20")
    res = stream(m.base_url, chat_body("x"))
    assert not res.done and isinstance(res.error, aiohttp.ClientError)
    assert len(res.content_times) == 10
    assert get(m.base_url + "/health").status == 200
    assert metrics(m.base_url)["vllm:num_requests_running"] == 0
    assert m.stderr_text() == ""


def test_faults_on_non_streamed_requests(mocker_factory) -> None:
    dropped = mocker_factory(*FAST, "--drop-rate", "1")
    with pytest.raises(aiohttp.ClientError):
        post(dropped.base_url + "/v1/completions", {"prompt": "x"})
    garbled = mocker_factory(*FAST, "--malformed-rate", "1")
    r = post(garbled.base_url + "/v1/completions", {"prompt": "x"})
    assert r.status == 200
    with pytest.raises(ValueError):
        r.json()
    assert dropped.stderr_text() == "" and garbled.stderr_text() == ""


def test_malformed_inserts_one_garbage_event(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--malformed-rate", "1", "--output-tokens", "12")
    res = stream(m.base_url, chat_body("x"))
    garbage = [e for e in res.events if isinstance(e, str)]
    assert len(garbage) == 1 and res.done
    assert len(res.content_times) == res.usage["completion_tokens"] == 12


# -- bad requests ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"{oops", 400),
        (b'{"model": "mock-llm"}', 400),
        (b'{"messages": "hello"}', 400),
        (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": "ten"}', 400),
        (b'{"messages": [{"role": "user", "content": "x"}], "model": "no-such-model"}', 404),
    ],
)
def test_bad_requests_get_errors_not_500s(mocker, payload: bytes, status: int) -> None:
    r = post(mocker.base_url + "/v1/chat/completions", content=payload)
    assert r.status == status
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]


def test_context_longer_than_max_model_len_is_a_400(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--max-model-len", "50")
    r = post(m.base_url + "/v1/completions", json_body={"prompt": "word " * 60})
    assert r.status == 400 and "maximum context length is 50" in r.json()["error"]["message"]


# -- disconnects -----------------------------------------------------------------------------


def test_client_disconnect_frees_its_slot_at_once(mocker_factory) -> None:
    m = mocker_factory(
        "--max-num-seqs", "1", "--ttft-ms", "5", "--itl-ms", "50", "--output-tokens", "200"
    )
    first = stream(m.base_url, chat_body("long one"), stop_after_content=2)
    assert len(first.content_times) >= 2  # then the connection was closed mid-stream
    second = stream(m.base_url, chat_body("next", max_tokens=2))
    assert second.done and second.ttft_s < 1.0  # not the ~10 s the first would have held it
    assert m.stderr_text() == ""


def test_queued_client_that_leaves_is_dequeued(mocker_factory) -> None:
    m = mocker_factory(
        "--max-num-seqs", "1", "--ttft-ms", "5", "--itl-ms", "50", "--output-tokens", "100"
    )
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        holder = pool.submit(stream, m.base_url, chat_body("holder", max_tokens=12))
        time.sleep(0.1)
        with pytest.raises(asyncio.TimeoutError):
            post(m.base_url + "/v1/chat/completions", chat_body("waiter"), timeout=0.3)
        time.sleep(0.1)
        snap = metrics(m.base_url)
        assert holder.result().done
    assert snap["vllm:num_requests_waiting"] == 0 and snap["vllm:num_requests_running"] == 1
    assert m.stderr_text() == ""


# -- trace, debug aid, endpoints, process ---------------------------------------------------------


def test_trace_records_write_times_per_request(mocker_factory, tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    m = mocker_factory(
        "--ttft-ms", "5", "--itl-ms", "10", "--output-tokens", "6", "--trace", str(path)
    )
    t0 = time.monotonic_ns()
    res = stream(m.base_url, chat_body("trace me"))
    unary = post(m.base_url + "/v1/completions", json_body={"prompt": "x"}).json()
    time.sleep(1.0)  # the periodic flush
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["id"] for x in lines] == [res.chunks[0]["id"], unary["id"]]
    s, u = lines
    assert s["path"] == "/v1/chat/completions" and s["status"] == 200
    assert (
        len(s["content_ns"]) == 6 and len(s["chunk_ns"]) == 1 + 6 + 2
    )  # role, text, finish, usage
    assert (
        t0
        <= s["arrived_ns"]
        <= s["read_ns"]
        <= s["chunk_ns"][0]
        <= s["done_ns"]
        <= time.monotonic_ns()
    )
    gaps = [b - a for a, b in zip(s["content_ns"], s["content_ns"][1:], strict=False)]
    assert 5e6 < sum(gaps) / len(gaps) < 30e6  # configured 10 ms
    assert s["content_ns"][0] - s["read_ns"] >= 4e6  # configured TTFT >= 5 ms
    assert u["chunk_ns"] == [] and u["done_ns"] >= u["read_ns"]
    assert m.stop() == 0


def test_debug_requests_keeps_the_latest_bodies(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--debug-requests", "3")
    tags = [uuid.uuid4().hex for _ in range(5)]
    for tag in tags:
        post(m.base_url + "/v1/completions", json_body={"prompt": tag, "max_tokens": 1})
    got = get(m.base_url + "/debug/requests").json()
    assert [b["prompt"] for b in got] == tags[2:]
    assert request("DELETE", m.base_url + "/debug/requests").json() == {"cleared": 3}
    assert get(m.base_url + "/debug/requests").json() == []


def test_health_models_and_signals(mocker_factory) -> None:
    m = mocker_factory("--model", "a", "b")
    assert get(m.base_url + "/health").status == 200
    assert [x["id"] for x in get(m.base_url + "/v1/models").json()["data"]] == ["a", "b"]
    assert m.proc is not None
    os.kill(m.proc.pid, signal.SIGINT)
    assert m.proc.wait(timeout=10) == 0


def test_bad_flag_fails_start_with_the_servers_message() -> None:
    with pytest.raises(MockerStartError, match="--itl-ms must be > 0") as info:
        MockerProcess(["--itl-ms", "-1"]).start()
    assert "--itl-ms" in info.value.stderr
