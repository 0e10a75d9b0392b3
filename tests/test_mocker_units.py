"""The mocker's pure parts: toy tokenizer, chat template, prefix cache, timing math, planner,
config parsing, request validation, the pre-encoded wire format, the stream shapes, the
bounded request log, and the first-head deadline (on a loopback server of its own)."""

from __future__ import annotations

import asyncio
import json
import random
import time

import pytest
from openai.types.chat import ChatCompletionChunk
from openai.types.completion import Completion

from drbench.errors import UsageError
from drbench.mocker.cache import PrefixCache, block_hashes, cacheable_blocks
from drbench.mocker.config import (
    LengthKind,
    MockerConfig,
    UsageMode,
    config_from_argv,
    parse_output_tokens,
)
from drbench.mocker.guard import guarded
from drbench.mocker.reqlog import RequestLog
from drbench.mocker.request import Rejected, check_context, decode_body, parse_request
from drbench.mocker.shape import StreamShape, chunk_texts, token_pieces, tool_arguments
from drbench.mocker.timing import (
    Fault,
    Planner,
    decode_interval_s,
    draw_output_tokens,
    prefill_delay_s,
    truncate_at_stop,
)
from drbench.mocker.tokenizer import (
    FILLER_TEXT,
    filler_tokens,
    render_chat,
    tokenize,
    tokenize_capped,
)
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


def test_every_answer_retokenizes_to_its_tokens_in_the_next_chat_turn() -> None:
    """An answer sent back as the assistant turn comes back as the tokens the mocker cached,
    from every start the planner draws, for lengths that wrap the filler cycle once or twice:
    a continued conversation can reuse all of it."""
    filler = filler_tokens()
    planner = _planner()
    starts = [i for i, t in enumerate(filler) if t[:1].isupper() or t[1:2].isupper()]
    assert len(starts) > 3
    for start in starts:
        for n in (1, 7, len(filler), 2 * len(filler) + 5):
            answer = planner.output(start, n)
            turn = [{"role": "user", "content": "hi"}]
            held = tokenize(render_chat(turn)) + answer
            following = [*turn, {"role": "assistant", "content": "".join(answer)}]
            again = tokenize(render_chat([*following, {"role": "user", "content": "more"}]))
            assert again[: len(held)] == held, (start, n)


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
        (["--empty-token-rate", "2"], "--empty-token-rate"),
        (["--tokens-per-chunk", "0"], "--tokens-per-chunk"),
        (["--usage-mode", "sometimes"], "--usage-mode"),
        (["--fake-prompt-tokens", "-3"], "--fake-prompt-tokens"),
        (["--read-timeout-s", "0"], "--read-timeout-s"),
        (["--max-request-bytes", "0"], "--max-request-bytes"),
        (["--whole-answer", "--char-chunks"], "--whole-answer and --char-chunks"),
        (["--tokens-per-chunk", "4", "--whole-answer"], "--tokens-per-chunk and --whole-answer"),
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


def test_quirk_flags_parse_and_default_off() -> None:
    off = MockerConfig()
    assert (off.usage_mode, off.tokens_per_chunk, off.fake_prompt_tokens) == (
        UsageMode.FINAL,
        1,
        None,
    )
    assert not (off.whole_answer or off.char_chunks or off.tool_calls or off.no_reset_endpoint)
    cfg = config_from_argv(
        ["--usage-mode", "last-token", "--tool-calls", "--fake-prompt-tokens", "0",
         "--chat-template-header", "<s>", "--block-size", "1"]
    )  # fmt: skip
    assert cfg.usage_mode is UsageMode.LAST_TOKEN and cfg.tool_calls
    assert (cfg.fake_prompt_tokens, cfg.chat_template_header, cfg.block_size) == (0, "<s>", 1)


def test_only_the_default_stream_takes_the_fast_path() -> None:
    assert StreamShape.from_config(MockerConfig(), Kind.CHAT).plain
    assert StreamShape.from_config(MockerConfig(usage_mode=UsageMode.NONE), Kind.CHAT).plain
    for kw in (
        {"tokens_per_chunk": 2},
        {"whole_answer": True},
        {"char_chunks": True},
        {"usage_mode": UsageMode.LAST_TOKEN},
        {"new_id_per_chunk": True},
        {"empty_first_tokens": 1},
        {"empty_token_rate": 0.1},
        {"tool_calls": True},
    ):
        assert not StreamShape.from_config(MockerConfig(**kw), Kind.CHAT).plain, kw
    tools = MockerConfig(tool_calls=True)
    assert StreamShape.from_config(tools, Kind.COMPLETION).plain  # no tool calls there


# -- stream shapes ---------------------------------------------------------------------------


def test_empty_tokens_hold_their_text_for_the_next_chunk() -> None:
    toks = ["The", " cache", " keeps", " the"]
    assert token_pieces(toks, {0, 1}) == ["", "", "The cache keeps", " the"]
    assert token_pieces(toks, set()) == toks
    assert token_pieces(toks, {3}) == ["The", " cache", " keeps", " the"]  # held text goes last
    assert token_pieces([], {0}) == []


def test_tool_arguments_concatenate_to_json() -> None:
    pieces = tool_arguments(['He said "hi"', "\n", " bye"])
    assert json.loads("".join(pieces)) == {"answer": 'He said "hi"\n bye'}
    assert tool_arguments([]) == []


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, [("a",), ("b",), ("c",), ("d",), ("e",)]),
        ({"tokens_per_chunk": 2}, [(), ("ab",), (), ("cd",), ("e",)]),
        ({"tokens_per_chunk": 5}, [(), (), (), (), ("abcde",)]),
        ({"tokens_per_chunk": 9}, [(), (), (), (), ("abcde",)]),
        ({"whole_answer": True}, [("abcde",), (), (), (), ()]),
    ],
)
def test_chunk_texts_group_tokens(kw: dict, expected: list) -> None:
    assert chunk_texts(list("abcde"), StreamShape(**kw)) == expected


def test_char_chunks_split_every_piece_and_keep_empty_ones() -> None:
    got = chunk_texts(["", "ab", " c"], StreamShape(char_chunks=True))
    assert got == [("",), ("a", "b"), (" ", "c")]


def test_planner_draws_empty_tokens_seeded_and_never_the_last() -> None:
    first = _planner(empty_first_tokens=3).plan(10)
    assert first.empty_tokens == frozenset({0, 1, 2})
    assert _planner(empty_first_tokens=50).plan(10).empty_tokens == frozenset(range(9))
    draws = [
        [p.plan(None).empty_tokens for _ in range(5)]
        for p in (_planner(seed=4, empty_token_rate=0.3) for _ in range(2))
    ]
    assert draws[0] == draws[1] and len(set(draws[0])) > 1
    assert all(63 not in e and 5 < len(e) < 35 for e in draws[0])  # 64 tokens, ~30% empty
    lengths = [
        p.plan(None).output_tokens
        for p in (_planner(seed=4), _planner(seed=4, empty_token_rate=0.9))
    ]
    assert lengths[0] == lengths[1]  # its own random stream


# -- request validation (abuse) --------------------------------------------------------------


def test_deep_and_broken_json_are_vllm_style_400s() -> None:
    for raw in (b"[" * 100_000 + b"]" * 100_000, b"{bad", b"\xff", b"42"):
        with pytest.raises(Rejected) as info:
            decode_body(raw)
        err = info.value.body["error"]
        assert info.value.status == 400
        assert (err["type"], err["code"]) == ("BadRequestError", 400)


@pytest.mark.parametrize(
    ("body", "kind", "param"),
    [
        (
            {"messages": [{"role": "user", "content": "x"}], "min_tokens": -2},
            Kind.CHAT,
            "min_tokens",
        ),
        ({"prompt": [3, -1]}, Kind.COMPLETION, "prompt"),
        ({"messages": [{"role": "user", "content": [1]}]}, Kind.CHAT, "messages[0].content[0]"),
        ({"messages": [{"role": "u", "content": ["t"]}]}, Kind.CHAT, "messages[0].content[0]"),
        (
            {"messages": [{"role": "user", "content": "x"}], "top_p": float("nan")},
            Kind.CHAT,
            "top_p",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "temperature": float("inf")},
            Kind.CHAT,
            "temperature",
        ),
    ],
)
def test_out_of_range_fields_name_the_field(body: dict, kind: Kind, param: str) -> None:
    rej = _reject(body, kind)
    assert rej.status == 400 and rej.body["error"]["param"] == param
    assert param.split("[")[0] in rej.body["error"]["message"]


def test_chat_header_is_tokenized_before_the_first_message() -> None:
    msgs = [{"role": "user", "content": "hi"}]
    got = parse_request({"messages": msgs}, Kind.CHAT, SERVED, "<s> header ")
    assert got.prompt_tokens == tokenize("<s> header ") + tokenize(render_chat(msgs))
    comp = parse_request({"prompt": "hi"}, Kind.COMPLETION, SERVED, "<s> header ")
    assert comp.prompt_tokens == tokenize("hi")


def test_context_checks_use_vllms_two_messages() -> None:
    with pytest.raises(Rejected, match="your request has 128 input tokens") as info:
        check_context(128, None, 128)
    assert info.value.body["error"]["param"] == "input_tokens"
    with pytest.raises(Rejected, match=r"too large: 29\. .* \(29 > 128 - 100\)\.$") as info:
        check_context(100, 29, 128)
    assert info.value.body["error"]["type"] == "BadRequestError"
    check_context(127, None, 128)
    check_context(100, 10, 128, min_tokens=10)
    for max_tokens, room in ((10, 10), (None, 28)):  # no max_tokens: what the context leaves
        with pytest.raises(Rejected, match=f"must be <= max_tokens={room} ") as info:
            check_context(100, max_tokens, 128, min_tokens=room + 1)
        assert info.value.body["error"]["param"] == "min_tokens"
    check_context(100, None, 128, min_tokens=28)


# -- bounded request log ---------------------------------------------------------------------


def test_request_log_is_bounded_by_count_and_bytes() -> None:
    log = RequestLog(3, 25)
    for body in (b'{"a":1}', b'{"b":2}', b'{"c":3}', b'{"d":4}'):
        log.add(body)
    assert json.loads(log.render()) == [{"b": 2}, {"c": 3}, {"d": 4}]
    log.add(b'{"e":"xxxxxxxxxx"}')  # 18 bytes: with d's 7, exactly the 25 allowed
    assert json.loads(log.render()) == [{"d": 4}, {"e": "xxxxxxxxxx"}] and log.bytes_held == 25
    log.add(b'{"f":"' + b"y" * 40 + b'"}')  # 48 bytes alone exceed 25: a stub, alone
    assert json.loads(log.render()) == [{"truncated": True, "bytes": 48}]
    assert log.bytes_held == len(log.render()) - 2 < 48
    assert log.clear() == 1 and log.render() == b"[]" and log.bytes_held == 0
    off = RequestLog(0, 100)
    off.add(b"{}")
    assert len(off) == 0


# -- first-head deadline ---------------------------------------------------------------------


class _Recorder(asyncio.Protocol):
    """Stands in for aiohttp's protocol: records what the guard forwards."""

    def __init__(self) -> None:
        self.data = b""
        self.lost = False

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


def test_head_deadline_closes_a_stalled_head_and_spares_a_complete_one() -> None:
    async def scenario(payload: bytes) -> tuple[float | None, _Recorder]:
        made: list[_Recorder] = []

        def factory() -> _Recorder:
            made.append(_Recorder())
            return made[-1]

        loop = asyncio.get_running_loop()
        server = await loop.create_server(guarded(factory, 0.3), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        start = time.monotonic()
        writer.write(payload)
        try:
            got = await asyncio.wait_for(reader.read(), 1.5)  # b"" once the server closes
            closed_after = time.monotonic() - start if got == b"" else None
        except asyncio.TimeoutError:
            closed_after = None
        writer.close()
        server.close()
        await server.wait_closed()
        return closed_after, made[0]

    took, inner = asyncio.run(scenario(b"POST /v1/chat/compl"))
    assert took is not None and 0.2 < took < 1.4 and inner.lost
    assert inner.data == b"POST /v1/chat/compl"  # everything was forwarded
    split = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    took, inner = asyncio.run(scenario(split))
    assert took is None and inner.data == split  # a complete head disarms the deadline


def test_tokenize_capped_keeps_a_prefix_and_counts_everything() -> None:
    text = FILLER_TEXT * 3
    full = tokenize(text)
    assert tokenize_capped(text, None) == (full, len(full))
    assert tokenize_capped(text, 10) == (full[:10], len(full))
    assert tokenize_capped(text, 10**9) == (full, len(full))
    assert tokenize_capped(text, 0) == ([], len(full))


def test_parse_checks_the_context_with_the_true_count_of_a_long_prompt() -> None:
    text = "word " * 500
    with pytest.raises(Rejected, match=f"your request has {len(tokenize(text))} input tokens"):
        parse_request({"prompt": text}, Kind.COMPLETION, SERVED, max_model_len=100)
    with pytest.raises(Rejected, match="your request has 300 input tokens"):
        parse_request({"prompt": list(range(300))}, Kind.COMPLETION, SERVED, max_model_len=100)
    header = "head " * 10
    msgs = [{"role": "user", "content": "x"}]
    n = len(tokenize(header)) + len(tokenize(render_chat(msgs)))
    ok = parse_request({"messages": msgs}, Kind.CHAT, SERVED, header, max_model_len=n + 1)
    assert len(ok.prompt_tokens) == n
    with pytest.raises(Rejected, match=f"your request has {n} input tokens"):
        parse_request({"messages": msgs}, Kind.CHAT, SERVED, header, max_model_len=n)


def test_request_log_keeps_each_bodys_headers_in_its_byte_budget() -> None:
    log = RequestLog(5, 60)
    log.add(b'{"a":1}', [(b"X-Session-Id", b"s1"), (b"Host", b"h")])
    assert json.loads(log.render()) == [{"a": 1}]  # the plain list is unchanged
    assert json.loads(log.render(with_headers=True)) == [
        {"headers": {"X-Session-Id": "s1", "Host": "h"}, "body": {"a": 1}}
    ]
    assert log.bytes_held == 7 + 14 + 5
    log.add(b'{"b":2}', [(b"X-Long", b"v" * 30)])  # 7 + 36: the first entry must go
    assert json.loads(log.render(with_headers=True)) == [
        {"headers": {"X-Long": "v" * 30}, "body": {"b": 2}}
    ]
    assert log.bytes_held == 43
    log.add(b'{"c":3}', [(b"X", b"y" * 60)])  # alone over budget: a stub, without headers
    assert json.loads(log.render(with_headers=True))[-1] == {
        "headers": {},
        "body": {"truncated": True, "bytes": 7},
    }
