"""The mock server's real-server stream quirks, over HTTP against a mocker each test starts:
empty-content tokens, N tokens per chunk, one whole-answer chunk, usage placement, one
character per chunk, implausible usage, ignored max_tokens, block size 1, a chat template
header, vLLM's cache_config_info, /v1/models and context-length 400s, switched-off reset
endpoints, tool calls and an id per chunk.

Assertions are on the wire: chunk counts, contents, where usage and finish_reason sit, ids,
metric labels and statuses. Timing only with wide margins against the configured delays.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import openai
from prometheus_client.parser import text_string_to_metric_families

from drbench.mocker.tokenizer import render_chat, tokenize

FAST = ("--ttft-ms", "2", "--itl-ms", "2")
CHAT = "/v1/chat/completions"
MSGS = [{"role": "user", "content": "Tell me about caches."}]


@dataclass
class Wire:
    """One response as sent: status, the parsed ``data:`` events and whether [DONE] came."""

    status: int
    events: list[dict[str, Any]]
    done: bool

    @property
    def choices(self) -> list[dict[str, Any]]:
        """The first choice of every event that has one."""
        return [e["choices"][0] for e in self.events if e.get("choices")]

    @property
    def contents(self) -> list[str]:
        """The ``delta.content`` of every chunk that has the key, except the role chunk."""
        return [
            c["delta"]["content"]
            for c in self.choices
            if "content" in c["delta"] and "role" not in c["delta"]
        ]

    @property
    def usage_events(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("usage")]


def call(base: str, body: dict[str, Any], path: str = CHAT) -> tuple[int, Any]:
    """One POST; returns the status and the parsed JSON body."""

    async def go() -> tuple[int, Any]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
            async with s.post(base + path, json=body) as r:
                return r.status, json.loads(await r.read())

    return asyncio.run(go())


def wire(base: str, body: dict[str, Any], path: str = CHAT, usage: bool = True) -> Wire:
    """A streamed POST (``include_usage`` asked unless ``usage`` is False), events parsed."""
    body = {"stream": True, **body}
    if usage:
        body["stream_options"] = {"include_usage": True}

    async def go() -> Wire:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
            async with s.post(base + path, json=body) as r:
                raw = (await r.read()).decode()
                status = r.status
        parts = [p for p in raw.split("\n\n") if p]
        assert all(p.startswith("data: ") for p in parts), parts
        data = [p[len("data: ") :] for p in parts]
        done = data[-1] == "[DONE]"
        return Wire(status, [json.loads(d) for d in data if d != "[DONE]"], done)

    return asyncio.run(go())


def get_text(base: str, path: str) -> tuple[int, str]:
    async def go() -> tuple[int, str]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
            async with s.get(base + path) as r:
                return r.status, await r.text()

    return asyncio.run(go())


def trace_lines(path: Path, n: int) -> list[dict[str, Any]]:
    """The trace's lines once ``n`` are there (the file is flushed every 0.5 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= n:
            return [json.loads(x) for x in lines]
        time.sleep(0.1)
    raise AssertionError(f"{path} has fewer than {n} lines")


def n_tokens(text: str) -> int:
    """Tokens of an answer's text: the filler re-tokenizes to the tokens it was made of."""
    return len(tokenize(text))


# -- A1: empty-content tokens ------------------------------------------------------------------


def test_empty_first_tokens_stream_as_empty_content_and_count(mocker_factory, tmp_path) -> None:
    trace = tmp_path / "t.jsonl"
    m = mocker_factory(
        *FAST, "--output-tokens", "8", "--empty-first-tokens", "3", "--trace", str(trace)
    )
    w = wire(m.base_url, {"messages": MSGS})
    assert w.status == 200 and w.done
    assert w.choices[0]["delta"] == {"role": "assistant", "content": ""}
    contents = w.contents
    assert len(contents) == 8 and contents[:3] == ["", "", ""]
    assert all(contents[3:])  # the held-back text comes with the 4th token
    assert n_tokens("".join(contents)) == 8
    assert w.usage_events[-1]["usage"]["completion_tokens"] == 8
    (line,) = trace_lines(trace, 1)
    assert len(line["content_ns"]) == 8  # empty chunks are token chunks in the trace too
    assert line["content_ns"][0] == line["chunk_ns"][0]  # written with the role chunk: TTFT


def test_empty_token_rate_empties_a_seeded_share_never_the_last(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--output-tokens", "60", "--empty-token-rate", "0.5", "--seed", "3")
    patterns = []
    for _ in range(2):
        contents = wire(m.base_url, {"messages": MSGS}).contents
        assert len(contents) == 60 and contents[-1]
        assert n_tokens("".join(contents)) == 60
        empties = [i for i, c in enumerate(contents) if c == ""]
        assert 10 < len(empties) < 50
        patterns.append(empties)
    again = mocker_factory(
        *FAST, "--output-tokens", "60", "--empty-token-rate", "0.5", "--seed", "3"
    )
    first = wire(again.base_url, {"messages": MSGS}).contents
    assert [i for i, c in enumerate(first) if c == ""] == patterns[0]  # seeded, in order


# -- A2, A3, A5: how text is cut into chunks ---------------------------------------------------


def test_tokens_per_chunk_sends_one_chunk_per_n_tokens(mocker_factory, tmp_path) -> None:
    trace = tmp_path / "t.jsonl"
    m = mocker_factory(
        *FAST, "--output-tokens", "8", "--tokens-per-chunk", "3", "--trace", str(trace)
    )
    w = wire(m.base_url, {"messages": MSGS})
    contents = w.contents
    assert len(contents) == 3  # 3 + 3 + 2 tokens
    assert [n_tokens(c) for c in contents] == [3, 3, 2]
    assert w.usage_events[-1]["usage"]["completion_tokens"] == 8
    comp = wire(m.base_url, {"prompt": "Once upon a time", "max_tokens": 7}, "/v1/completions")
    texts = [c["text"] for c in comp.choices if c["finish_reason"] is None]
    assert [n_tokens(t) for t in texts] == [3, 3, 1]
    line = trace_lines(trace, 1)[0]
    assert len(line["content_ns"]) == 3  # one write per chunk


def test_whole_answer_is_one_chunk_then_a_finish_chunk_with_usage(mocker_factory, tmp_path):
    trace = tmp_path / "t.jsonl"
    m = mocker_factory(
        "--ttft-ms", "2", "--itl-ms", "20", "--output-tokens", "10", "--whole-answer",
        "--trace", str(trace),
    )  # fmt: skip
    w = wire(m.base_url, {"messages": MSGS}, usage=False)  # usage comes anyway
    assert w.done and len(w.events) == 3
    role, answer, finish = w.choices
    assert role["delta"] == {"role": "assistant", "content": ""}
    assert n_tokens(answer["delta"]["content"]) == 10 and answer["finish_reason"] is None
    assert finish["delta"] == {} and finish["finish_reason"] == "stop"
    assert w.events[2]["usage"]["completion_tokens"] == 10
    line = trace_lines(trace, 1)[0]
    assert len(line["content_ns"]) == 1
    assert line["done_ns"] - line["content_ns"][0] > 0.5 * 9 * 20e6  # the decode time: 9 ITLs


def test_char_chunks_send_one_character_per_chunk(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--output-tokens", "6", "--char-chunks")
    w = wire(m.base_url, {"messages": MSGS})
    contents = w.contents
    text = "".join(contents)
    assert all(len(c) == 1 for c in contents) and len(contents) == len(text) > 6
    assert n_tokens(text) == 6 and w.usage_events[-1]["usage"]["completion_tokens"] == 6


# -- A4: usage placement -------------------------------------------------------------------------


def test_usage_mode_last_token_puts_usage_and_finish_on_the_last_token(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--output-tokens", "5", "--usage-mode", "last-token")
    w = wire(m.base_url, {"messages": MSGS})
    assert w.done and all(e["choices"] for e in w.events)  # no empty-choices usage chunk
    last = w.events[-1]
    assert last["choices"][0]["delta"]["content"] and last["choices"][0]["finish_reason"] == "stop"
    assert last["usage"]["completion_tokens"] == 5 and w.usage_events == [last]
    assert len(w.contents) == 5
    plain = wire(m.base_url, {"messages": MSGS}, usage=False)
    assert plain.usage_events == [] and plain.choices[-1]["finish_reason"] == "stop"


def test_usage_mode_none_never_sends_usage(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--output-tokens", "4", "--usage-mode", "none")
    w = wire(m.base_url, {"messages": MSGS})
    assert w.done and len(w.contents) == 4
    assert all("usage" not in e for e in w.events)
    status, body = call(m.base_url, {"messages": MSGS})
    assert status == 200 and "usage" not in body


def test_default_usage_mode_final_is_its_own_chunk(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--output-tokens", "4", "--usage-mode", "final")
    w = wire(m.base_url, {"messages": MSGS})
    assert w.events[-1]["choices"] == [] and w.usage_events == [w.events[-1]]
    assert w.choices[-1] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}


# -- A6: implausible usage, ignored max_tokens --------------------------------------------------


def test_fake_prompt_tokens_report_n_while_metrics_count_the_real_prompt(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--output-tokens", "3", "--fake-prompt-tokens", "7")
    real = len(tokenize(render_chat(MSGS)))
    assert real != 7
    w = wire(m.base_url, {"messages": MSGS})
    assert w.usage_events[-1]["usage"]["prompt_tokens"] == 7
    assert w.usage_events[-1]["usage"]["total_tokens"] == 10
    _, body = call(m.base_url, {"prompt": "some prompt"}, "/v1/completions")
    assert body["usage"]["prompt_tokens"] == 7
    _, text = get_text(m.base_url, "/metrics")
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    queries = sum(
        s.value for s in fams["vllm:prefix_cache_queries"].samples if s.name.endswith("_total")
    )
    assert queries == real + len(tokenize("some prompt"))


def test_ignore_max_tokens_generates_the_configured_length(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--output-tokens", "12", "--ignore-max-tokens")
    w = wire(m.base_url, {"messages": MSGS, "max_tokens": 3})
    assert len(w.contents) == 12 and w.choices[-1]["finish_reason"] == "stop"
    assert w.usage_events[-1]["usage"]["completion_tokens"] == 12
    _, body = call(m.base_url, {"prompt": "x", "max_tokens": 2}, "/v1/completions")
    assert body["usage"]["completion_tokens"] == 12 and n_tokens(body["choices"][0]["text"]) == 12


# -- A7: block size 1, chat template header ------------------------------------------------------


def metric_samples(base: str, name: str) -> list[Any]:
    _, text = get_text(base, "/metrics")
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    return fams[name].samples if name in fams else []


def test_block_size_one_caches_every_token_but_the_last(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--output-tokens", "2", "--block-size", "1")
    prompt = "token level caching like the radix tree"
    n = len(tokenize(prompt))
    usages = [call(m.base_url, {"prompt": prompt}, "/v1/completions")[1]["usage"] for _ in range(2)]
    assert usages[0]["prompt_tokens_details"]["cached_tokens"] == 0
    assert usages[1]["prompt_tokens_details"]["cached_tokens"] == n - 1
    hits = metric_samples(m.base_url, "vllm:prefix_cache_hits")
    assert sum(s.value for s in hits if s.name.endswith("_total")) == n - 1
    (info,) = metric_samples(m.base_url, "vllm:cache_config_info")
    assert info.labels["block_size"] == "1"


def test_chat_template_header_is_a_cached_prefix_of_every_chat(mocker_factory) -> None:
    header = "<|system|>You are a helpful assistant of the mock family. " * 4
    m = mocker_factory(*FAST, "--output-tokens", "1", "--chat-template-header", header)
    h = len(tokenize(header))
    assert h > 32
    a = [{"role": "user", "content": "first question"}]
    b = [{"role": "user", "content": "a different one"}]
    ua = call(m.base_url, {"messages": a})[1]["usage"]
    ub = call(m.base_url, {"messages": b})[1]["usage"]
    assert ua["prompt_tokens"] == h + len(tokenize(render_chat(a)))
    assert ua["prompt_tokens_details"]["cached_tokens"] == 0
    assert ub["prompt_tokens_details"]["cached_tokens"] == h // 16 * 16  # the shared header
    _, comp = call(m.base_url, {"prompt": "first question"}, "/v1/completions")
    assert comp["usage"]["prompt_tokens"] == len(tokenize("first question"))  # no header


# -- A8, A9, A10: metrics, models, context length, reset endpoints ------------------------------


def test_cache_config_info_has_vllms_labels(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--block-size", "32", "--cache-capacity-tokens", "3200")
    (info,) = metric_samples(m.base_url, "vllm:cache_config_info")
    assert info.value == 1.0
    assert info.labels["block_size"] == "32" and info.labels["enable_prefix_caching"] == "True"
    assert info.labels["num_gpu_blocks"] == "100" and info.labels["engine"] == "0"
    assert "model_name" not in info.labels  # vLLM's info gauge has the config's fields only
    assert {"cache_dtype", "gpu_memory_utilization", "sliding_window"} <= set(info.labels)
    off = mocker_factory(*FAST, "--cache-capacity-tokens", "0")
    (info,) = metric_samples(off.base_url, "vllm:cache_config_info")
    assert info.labels["enable_prefix_caching"] == "False" and info.labels["block_size"] == "16"


def test_models_list_max_model_len_and_long_requests_get_vllms_400(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--max-model-len", "40", "--model", "a", "b")
    _, models = call_get_json(m.base_url, "/v1/models")
    assert [(x["id"], x["max_model_len"]) for x in models["data"]] == [("a", 40), ("b", 40)]
    status, body = call(m.base_url, {"prompt": "word " * 50}, "/v1/completions")
    n = len(tokenize("word " * 50))
    assert status == 400
    assert body["error"]["type"] == "BadRequestError" and body["error"]["code"] == 400
    assert body["error"]["message"] == (
        f"This model's maximum context length is 40 tokens. However, your request has {n} "
        "input tokens. Please reduce the length of the input messages."
    )
    status, body = call(m.base_url, {"prompt": "short one", "max_tokens": 39}, "/v1/completions")
    n = len(tokenize("short one"))
    assert status == 400 and body["error"]["code"] == 400
    assert body["error"]["message"].startswith(
        "'max_tokens' or 'max_completion_tokens' is too large: 39. This model's maximum "
        f"context length is 40 tokens and your request has {n} input tokens (39 > 40 - {n})."
    )


def call_get_json(base: str, path: str) -> tuple[int, Any]:
    status, text = get_text(base, path)
    return status, json.loads(text)


def test_no_reset_endpoint_answers_404_on_both_reset_paths(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--no-reset-endpoint")

    async def go() -> list[int]:
        async with aiohttp.ClientSession() as s:
            out = []
            for method, path in (("POST", "/reset_prefix_cache"), ("POST", "/flush_cache"),
                                 ("GET", "/flush_cache")):  # fmt: skip
                async with s.request(method, m.base_url + path) as r:
                    out.append(r.status)
            return out

    assert asyncio.run(go()) == [404, 404, 404]
    assert get_text(m.base_url, "/health")[0] == 200


# -- A11: tool calls, an id per chunk -------------------------------------------------------------


def test_tool_calls_stream_arguments_only_with_finish_reason_tool_calls(mocker_factory) -> None:
    m = mocker_factory(*FAST, "--output-tokens", "9", "--tool-calls")
    w = wire(m.base_url, {"messages": MSGS})
    assert w.done
    *pieces, finish = w.choices
    first = pieces[0]["delta"]
    assert first["role"] == "assistant" and first["content"] is None
    call0 = first["tool_calls"][0]
    assert call0["type"] == "function" and call0["id"].startswith("call_")
    assert call0["function"]["name"] == "mock_answer"
    assert all(set(p["delta"]) == {"tool_calls"} for p in pieces[1:])  # no content at all
    assert len(pieces) == 9  # one piece per token
    args = "".join(p["delta"]["tool_calls"][0]["function"]["arguments"] for p in pieces)
    assert n_tokens(json.loads(args)["answer"]) == 9
    assert finish["finish_reason"] == "tool_calls" and finish["delta"] == {}
    assert w.usage_events[-1]["usage"]["completion_tokens"] == 9
    _, whole = call(m.base_url, {"messages": MSGS})
    choice = whole["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    assert json.loads(choice["message"]["tool_calls"][0]["function"]["arguments"])["answer"]
    client = openai.OpenAI(base_url=m.base_url + "/v1", api_key="sk-test", max_retries=0)
    sdk = list(client.chat.completions.create(model="mock-llm", messages=MSGS, stream=True))
    sdk_args = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments or ""
        for c in sdk
        if c.choices and c.choices[0].delta.tool_calls
    )
    assert "answer" in json.loads(sdk_args)


def test_new_id_per_chunk_gives_every_chunk_a_fresh_id(mocker_factory, tmp_path) -> None:
    trace = tmp_path / "t.jsonl"
    m = mocker_factory(*FAST, "--output-tokens", "6", "--new-id-per-chunk", "--trace", str(trace))
    w = wire(m.base_url, {"messages": MSGS})
    ids = [e["id"] for e in w.events]
    assert len(ids) == 1 + 6 + 2 and len(set(ids)) == len(ids)  # role, tokens, finish, usage
    assert all(i.startswith("chatcmpl-") for i in ids)
    assert trace_lines(trace, 1)[0]["id"] == ids[0]
    default = mocker_factory(*FAST, "--output-tokens", "6")
    assert len({e["id"] for e in wire(default.base_url, {"messages": MSGS}).events}) == 1
