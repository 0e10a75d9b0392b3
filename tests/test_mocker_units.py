"""The mocker's pure parts: toy tokenizer, chat template, prefix cache, timing math, planner,
config parsing, request validation and the pre-encoded wire format."""

from __future__ import annotations

import json
import random

import pytest
from openai.types.chat import ChatCompletionChunk
from openai.types.completion import Completion

from drbench.errors import UsageError
from drbench.mocker.cache import PrefixCache, block_hashes, cacheable_blocks
from drbench.mocker.config import LengthKind, MockerConfig, config_from_argv, parse_output_tokens
from drbench.mocker.request import Rejected, check_context, decode_body, parse_request
from drbench.mocker.timing import (
    Fault,
    Planner,
    decode_interval_s,
    draw_output_tokens,
    prefill_delay_s,
    truncate_at_stop,
)
from drbench.mocker.tokenizer import FILLER_TEXT, filler_tokens, render_chat, tokenize
from drbench.mocker.wire import Kind, StreamFormat, TokenBytes, frame, usage_dict

# -- tokenizer and chat template -----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello world",
        "  spaces\n\n\tand tabs ",
        "数字 123456 and ünïcödé!",
        FILLER_TEXT,
        "<|im_start|>user\nhi<|im_end|>\n",
        "snake_case_names = 42;",
    ],
)
def test_tokenize_is_lossless(text: str) -> None:
    assert "".join(tokenize(text)) == text


def test_tokenize_gives_about_four_chars_per_token_on_english() -> None:
    text = FILLER_TEXT * 3
    ratio = len(text) / len(tokenize(text))
    assert 3.0 <= ratio <= 6.0


def test_extended_conversation_shares_the_earlier_prompt_tokens() -> None:
    turn1 = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
    earlier = tokenize(render_chat(turn1))
    turn2 = [
        *turn1,
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me about caches."},
    ]
    later = tokenize(render_chat(turn2))
    assert later[: len(earlier)] == earlier
    assert len(later) > len(earlier)


def test_render_chat_reads_content_parts_and_null_content() -> None:
    parts = [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]
    assert "user\nab<|im_end|>" in render_chat(parts)
    assert "assistant\n<|im_end|>" in render_chat([{"role": "assistant", "content": None}])


def test_filler_retokenizes_to_itself() -> None:
    filler = filler_tokens()
    assert tokenize("".join(filler)) == list(filler)


# -- prefix cache --------------------------------------------------------------------------


def _toks(n: int, tag: str = "t") -> list[str]:
    return [f"{tag}{i}" for i in range(n)]


def test_block_hashes_are_chained() -> None:
    a = block_hashes(_toks(64), 16)
    assert len(a) == 4
    b = block_hashes(_toks(48) + ["other"] * 16, 16)
    assert a[:3] == b[:3] and a[3] != b[3]
    changed_first = block_hashes(["x", *_toks(64)[1:]], 16)
    assert all(x != y for x, y in zip(a, changed_first, strict=True))


def test_block_hashes_resume_from_parents() -> None:
    toks = _toks(80)
    assert block_hashes(toks, 16, block_hashes(toks[:40], 16)) == block_hashes(toks, 16)


@pytest.mark.parametrize(("n", "blocks"), [(1, 0), (16, 0), (17, 1), (24, 1), (32, 1), (33, 2)])
def test_cacheable_blocks_leave_the_last_token_to_compute(n: int, blocks: int) -> None:
    assert cacheable_blocks(n, 16) == blocks


def test_repeated_prompt_hits_floor_n_minus_1_over_b_blocks() -> None:
    cache = PrefixCache(16, 10_000)
    toks = _toks(100)
    hashes = block_hashes(toks, 16)
    assert cache.match(hashes, len(toks)) == 0
    cache.insert(hashes)
    assert cache.match(hashes, len(toks)) == (100 - 1) // 16 * 16


def test_lru_evicts_least_recent_and_tail_first() -> None:
    cache = PrefixCache(16, 16 * 6)
    a, b = block_hashes(_toks(64, "a"), 16), block_hashes(_toks(64, "b"), 16)
    cache.insert(a)
    cache.insert(b)  # 8 blocks into 6: a's two tail blocks go first
    assert len(cache) == 6 and cache.evicted_blocks == 2
    assert cache.match(a, 65) == 32  # a's head survives, its tail does not
    assert cache.match(b, 65) == 64


def test_zero_capacity_disables_and_reset_empties() -> None:
    off = PrefixCache(16, 0)
    h = block_hashes(_toks(64), 16)
    off.insert(h)
    assert off.match(h, 64) == 0
    on = PrefixCache(16, 1000)
    on.insert(h)
    on.reset()
    assert len(on) == 0 and on.match(h, 64) == 0


# -- timing math and the planner ------------------------------------------------------------


def test_prefill_delay_counts_only_uncached_tokens() -> None:
    cold = prefill_delay_s(2000, 20.0, 20000.0)
    warm = prefill_delay_s(2000 - 1984, 20.0, 20000.0)
    assert cold == pytest.approx(0.020 + 0.1)
    assert warm == pytest.approx(0.020 + 16 / 20000)
    assert cold / warm > 3  # the defaults make the cache effect obvious


def test_decode_interval_slowdown_and_jitter() -> None:
    assert decode_interval_s(10, 5, 10, 0.0, 0.0, 0.7) == pytest.approx(0.010)
    assert decode_interval_s(10, 10, 10, 0.5, 0.0, 0.0) == pytest.approx(0.015)
    assert decode_interval_s(10, 5, 10, 0.5, 0.0, 0.0) == pytest.approx(0.0125)
    assert decode_interval_s(10, 0, 10, 0.0, 0.2, -1.0) == pytest.approx(0.008)


@pytest.mark.parametrize("spec", ["64", "32-128", "uniform:5,9", "normal:50,10", "exp:40"])
def test_output_lengths_follow_the_spec(spec: str) -> None:
    parsed = parse_output_tokens(spec)
    rng = random.Random(1)
    draws = [draw_output_tokens(parsed, rng) for _ in range(2000)]
    assert min(draws) >= 1
    if parsed.kind is LengthKind.FIXED:
        assert set(draws) == {64}
    elif parsed.kind is LengthKind.UNIFORM:
        assert min(draws) == parsed.a and max(draws) == parsed.b
    else:
        assert abs(sum(draws) / len(draws) - parsed.a) < 0.15 * parsed.a


@pytest.mark.parametrize("bad", ["0", "9-3", "abc", "normal:", "uniform:5", "exp:0"])
def test_bad_output_token_specs_name_the_flag(bad: str) -> None:
    with pytest.raises(UsageError, match="--output-tokens"):
        parse_output_tokens(bad)


def _planner(**kw: object) -> Planner:
    return Planner(MockerConfig(**kw), filler_tokens())  # type: ignore[arg-type]


def test_plan_caps_at_max_tokens_with_reason_length() -> None:
    p = _planner(output_tokens=parse_output_tokens("64"))
    assert (p.plan(10).output_tokens, p.plan(10).finish_reason) == (10, "length")
    plan = p.plan(None)
    assert (plan.output_tokens, plan.finish_reason) == (64, "stop")
    assert p.plan(None, min_tokens=80).output_tokens == 80
    assert p.plan(200, ignore_eos=True).output_tokens == 200


def test_plan_stops_before_a_stop_string() -> None:
    p = _planner(output_tokens=parse_output_tokens("200"))
    plan = p.plan(None, stop=("cache",))
    text = "".join(p.output(plan.filler_offset, plan.output_tokens))
    assert "cache" not in text and plan.finish_reason == "stop"
    full = "".join(p.output(plan.filler_offset, 200))
    assert full.startswith(text) and full[len(text) :].lstrip().startswith("c")


def test_truncate_at_stop() -> None:
    assert truncate_at_stop(["a", "b", "cd", "e"], ["d"]) == 2
    assert truncate_at_stop(["a", "b"], ["zz"]) is None
    assert truncate_at_stop(["ab", "c"], ["x", "a"]) == 0


def test_planner_is_deterministic_per_seed_and_faults_do_not_shift_lengths() -> None:
    spec = parse_output_tokens("10-500")
    runs = []
    for faults in (0.0, 0.5):
        p = _planner(seed=7, output_tokens=spec, drop_rate=faults)
        runs.append([(x.output_tokens, x.filler_offset) for x in (p.plan(None) for _ in range(50))])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) > 10


def test_fault_rates_of_one_always_fire() -> None:
    for flag, fault in [
        ("error_rate", Fault.ERROR),
        ("rate_limit_rate", Fault.RATE_LIMIT),
        ("drop_rate", Fault.DROP),
        ("malformed_rate", Fault.MALFORMED),
    ]:
        p = _planner(**{flag: 1.0})
        plans = [p.plan(20) for _ in range(20)]
        assert {x.fault for x in plans} == {fault}
        if fault in (Fault.DROP, Fault.MALFORMED):
            assert {x.fault_at for x in plans} == {10}
    assert {_planner().plan(20).fault} == {Fault.NONE}


# -- config --------------------------------------------------------------------------------


def test_defaults_live_on_the_dataclass_and_flags_override() -> None:
    assert config_from_argv([]) == MockerConfig()
    cfg = config_from_argv(["--itl-ms", "3", "--model", "a", "b", "--output-tokens", "5-9"])
    assert cfg.itl_ms == 3 and cfg.model == ("a", "b") and cfg.served_model == "a"
    assert cfg.output_tokens.kind is LengthKind.UNIFORM


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--error-rate", "1.5"], "--error-rate"),
        (["--itl-ms", "0"], "--itl-ms"),
        (["--block-size", "x"], "--block-size"),
        (["--bogus"], "--bogus"),
        (["--port", "70000"], "--port"),
        (["--cache-capacity-tokens", "-1"], "--cache-capacity"),
    ],
)
def test_bad_flags_give_one_line_naming_the_flag(argv: list[str], needle: str) -> None:
    with pytest.raises(UsageError, match=needle) as info:
        config_from_argv(argv)
    assert "\n" not in str(info.value)


# -- request validation ----------------------------------------------------------------------

SERVED = ("mock-llm", "alias")


def _reject(body: object, kind: Kind = Kind.CHAT) -> Rejected:
    with pytest.raises(Rejected) as info:
        parse_request(body, kind, SERVED)  # type: ignore[arg-type]
    return info.value


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "messages", "missing_required_parameter"),
        ({"messages": "hi"}, "messages", "invalid_type"),
        ({"messages": []}, "messages", "empty_array"),
        ({"messages": [{"content": "x"}]}, "messages[0].role", "invalid_type"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "invalid_type"),
        (
            {"messages": [{"role": "user", "content": "x"}], "max_tokens": "5"},
            "max_tokens",
            "invalid_type",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
            "max_tokens",
            "invalid_value",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "stream": "yes"},
            "stream",
            "invalid_type",
        ),
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n", "invalid_value"),
        (
            {"messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
            "temperature",
            "invalid_type",
        ),
        ({"messages": [{"role": "user", "content": "x"}], "stop": [1]}, "stop", "invalid_type"),
    ],
)
def test_bad_chat_requests_get_openai_style_400s(body: dict, param: str, code: str) -> None:
    rej = _reject(body)
    assert rej.status == 400
    assert rej.body["error"]["type"] == "invalid_request_error"
    assert (rej.body["error"]["param"], rej.body["error"]["code"]) == (param, code)


def test_bad_completion_prompts_and_unknown_models() -> None:
    for body in ({}, {"prompt": 5}, {"prompt": ""}, {"prompt": ["a", "b"]}):
        assert _reject(body, Kind.COMPLETION).status == 400
    rej = _reject({"model": "gpt-9", "prompt": "x"}, Kind.COMPLETION)
    assert rej.status == 404 and rej.body["error"]["type"] == "NotFoundError"
    assert "gpt-9" in rej.body["error"]["message"]


def test_valid_requests_parse() -> None:
    chat = parse_request(
        {
            "model": "alias",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_completion_tokens": 7,
            "max_tokens": 99,
            "stop": "x",
        },
        Kind.CHAT,
        SERVED,
    )
    assert (chat.model, chat.stream, chat.include_usage, chat.max_tokens, chat.stop) == (
        "alias",
        True,
        True,
        7,
        ("x",),
    )
    assert chat.prompt_tokens == tokenize(render_chat([{"role": "user", "content": "hi"}]))
    ids = parse_request({"prompt": [1, 2, 3]}, Kind.COMPLETION, SERVED)
    assert len(ids.prompt_tokens) == 3 and ids.model == "mock-llm"


def test_decode_body_and_context_length() -> None:
    for raw in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        with pytest.raises(Rejected) as info:
            decode_body(raw)
        assert info.value.status == 400
    check_context(100, 28, 128)
    with pytest.raises(Rejected, match="maximum context length is 128"):
        check_context(100, 29, 128)


# -- wire format -----------------------------------------------------------------------------


def _events(data: bytes) -> list[bytes]:
    assert data.endswith(b"\n\n")
    return [e[len(b"data: ") :] for e in data.split(b"\n\n") if e]


def test_prebuilt_chat_chunks_are_what_the_openai_sdk_expects() -> None:
    filler = filler_tokens()
    fmt = StreamFormat(Kind.CHAT, "chatcmpl-1", 'we"ird/model', 1700000000)
    tb = TokenBytes.build(Kind.CHAT, filler)
    for i, tail in enumerate(tb.rest[:40]):
        chunk = ChatCompletionChunk.model_validate_json(_events(fmt.prefix + tail)[0])
        assert chunk.choices[0].delta.content == filler[i]
        assert chunk.model == 'we"ird/model' and chunk.id == "chatcmpl-1"
    role = ChatCompletionChunk.model_validate_json(_events(fmt.role_event())[0])
    assert role.choices[0].delta.role == "assistant"
    finish = ChatCompletionChunk.model_validate_json(_events(fmt.finish_event("stop"))[0])
    assert finish.choices[0].finish_reason == "stop"
    usage = ChatCompletionChunk.model_validate_json(
        _events(fmt.usage_event(usage_dict(10, 3, 8)))[0]
    )
    assert usage.choices == [] and usage.usage.total_tokens == 13
    assert usage.usage.prompt_tokens_details.cached_tokens == 8


def test_prebuilt_completion_chunks_parse_and_garbage_does_not() -> None:
    fmt = StreamFormat(Kind.COMPLETION, "cmpl-1", "m", 1)
    tb = TokenBytes.build(Kind.COMPLETION, ['a"b\\c\n'])
    # Streamed completion chunks carry finish_reason null, as OpenAI's and vLLM's do (the SDK
    # builds stream chunks without validation), so check the fields rather than the model.
    chunk = json.loads(_events(fmt.prefix + tb.rest[0])[0])
    assert chunk["choices"][0]["text"] == 'a"b\\c\n'
    assert Completion.model_construct(**chunk).id == "cmpl-1"
    assert fmt.role_event() == b""
    with pytest.raises(ValueError):
        json.loads(_events(fmt.garbage_event())[0])


def test_frame_uses_http_chunked_encoding() -> None:
    assert frame(b"hello", True) == b"5\r\nhello\r\n"
    assert frame(b"x" * 26, True).startswith(b"1a\r\n")
    assert frame(b"hello", False) == b"hello"
