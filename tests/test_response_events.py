"""Token events as real servers send them (issue: trustworthy numbers), and hostile answers."""

from __future__ import annotations

import json

from drbench.records import ErrorKind, TokenSource
from drbench.response import STEP_BYTES, RawExchange, parse_exchange, parse_steps

MS = 1_000_000
DONE = b"data: [DONE]\n\n"


def ev(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def delta(finish: str | None = None, **d: object) -> bytes:
    return ev({"id": "x", "choices": [{"index": 0, "delta": d, "finish_reason": finish}]})


def usage(prompt: object = 20, completion: object = 3, cached: object = None) -> bytes:
    u: dict = {"prompt_tokens": prompt, "completion_tokens": completion}
    if cached is not None:
        u["prompt_tokens_details"] = {"cached_tokens": cached}
    return ev({"id": "x", "choices": [], "usage": u})


def parse(chunks, *, end_ms=None, **raw_kw):
    end = end_ms * MS if end_ms is not None else (chunks[-1][0] if chunks else 0)
    raw = RawExchange(send_ns=0, status=200, chunks=chunks, end_ns=end, **raw_kw)
    return parse_exchange(
        raw, prompt_id="p", level="concurrency=1", round=1, round_start_ns=0, prompt_tokens=20
    )


def test_a_stream_of_empty_content_tokens_is_a_success_timed_from_its_first_token() -> None:
    chunks = [(1 * MS, delta(role="assistant", content=""))]
    chunks += [((10 + i) * MS, delta(content="")) for i in range(128)]
    chunks += [(140 * MS, delta(finish="length")), (141 * MS, usage(20, 128)), (141 * MS, DONE)]
    rec = parse(chunks)
    assert rec.ok, rec.error
    assert rec.ttft_ms == 10.0  # the first empty-content token, not the role chunk
    assert rec.token_events == 128 and len(rec.itl_ms) == 127 and set(rec.itl_ms) == {1.0}
    assert rec.completion_tokens == 128 and rec.output_text == ""
    assert rec.note == "128 tokens but no text"
    assert rec.tpot_ms == (141.0 - 10.0) / 127


def test_ttft_is_the_first_token_even_when_the_first_tokens_have_no_text() -> None:
    chunks = [(1 * MS, delta(role="assistant", content=""))]
    chunks += [(5 * MS, delta(content="")), (6 * MS, delta(content=""))]
    chunks += [(12_800 * MS, delta(content="Hi")), (12_801 * MS, delta(content="!", finish="stop"))]
    chunks += [(12_802 * MS, usage(20, 4)), (12_802 * MS, DONE)]
    rec = parse(chunks)
    assert rec.ok and rec.ttft_ms == 5.0 and rec.itl_ms == [1.0, 12_794.0, 1.0]
    assert rec.output_text == "Hi!" and rec.note is None


def test_the_finish_chunk_and_the_usage_chunk_are_not_token_events() -> None:
    chunks = [(2 * MS, delta(content="a")), (3 * MS, delta(finish="stop", content=""))]
    chunks += [
        (4 * MS, ev({"id": "x", "choices": [{"index": 0, "text": "", "finish_reason": "stop"}]}))
    ]
    chunks += [(5 * MS, usage(20, 1)), (5 * MS, DONE)]
    rec = parse(chunks)
    assert rec.ok and rec.token_events == 1 and rec.itl_ms == []


def test_tpot_is_null_when_the_whole_answer_came_in_one_event() -> None:
    chunks = [(10 * MS, delta(content="the whole answer at once")), (90 * MS, delta(finish="stop"))]
    chunks += [(90 * MS, usage(20, 6)), (90 * MS, DONE)]
    rec = parse(chunks)
    assert rec.ok and rec.completion_tokens == 6 and rec.token_events == 1
    assert rec.tpot_ms is None and rec.itl_ms == []


def test_without_usage_one_character_per_event_is_not_one_token_per_event() -> None:
    text = "The quick brown fox jumps over the lazy dog again and again"
    chunks = [((1 + i) * MS, delta(content=c)) for i, c in enumerate(text)]
    chunks += [(100 * MS, delta(finish="stop")), (100 * MS, DONE)]
    rec = parse(chunks)
    assert rec.token_source is TokenSource.ESTIMATE
    assert rec.token_events == len(text)
    assert rec.completion_tokens == -(-len(text) // 4)  # the text's estimate, as for prompts


def test_a_tool_call_only_answer_succeeds() -> None:
    call = {"index": 0, "id": "c", "type": "function", "function": {"name": "get", "arguments": ""}}
    chunks = [(1 * MS, delta(role="assistant", content=None, tool_calls=[call]))]
    for i, piece in enumerate(['{"city"', ': "Paris"}']):
        chunks.append(
            ((2 + i) * MS, delta(tool_calls=[{"index": 0, "function": {"arguments": piece}}]))
        )
    chunks += [(5 * MS, delta(finish="tool_calls")), (5 * MS, usage(20, 7)), (5 * MS, DONE)]
    rec = parse(chunks)
    assert rec.ok, rec.error
    assert rec.finish_reason == "tool_calls" and rec.token_events == 3 and rec.ttft_ms == 1.0


def test_reasoning_tokens_are_token_events() -> None:
    chunks = [(3 * MS, delta(reasoning_content="think")), (4 * MS, delta(content="ok"))]
    chunks += [(5 * MS, delta(finish="stop")), (5 * MS, DONE)]
    rec = parse(chunks)
    assert rec.ok and rec.ttft_ms == 3.0 and rec.output_text == "thinkok"


def test_a_finished_stream_with_no_token_at_all_is_empty() -> None:
    rec = parse(
        [
            (1 * MS, delta(role="assistant", content="")),
            (2 * MS, delta(finish="stop")),
            (3 * MS, usage(20, 0)),
            (3 * MS, DONE),
        ]
    )
    assert rec.error_kind is ErrorKind.EMPTY


def test_odd_usage_fields_are_ignored_with_a_note() -> None:
    for bad in ("x", {"a": 1}, -5, 2.5, True, None):
        chunks = [(1 * MS, delta(content="abcd")), (2 * MS, delta(finish="stop"))]
        chunks += [(3 * MS, usage(bad, bad, cached=bad)), (3 * MS, DONE)]
        rec = parse(chunks)
        assert rec.ok, (bad, rec.error)
        assert rec.token_source is TokenSource.ESTIMATE, bad
        assert rec.prompt_tokens == 20 and rec.completion_tokens == 1 and rec.cached_tokens is None
        if bad is not None:
            assert rec.note and "ignored usage" in rec.note


def test_nan_usage_is_not_believed() -> None:
    body = b'data: {"choices": [], "usage": {"prompt_tokens": NaN, "completion_tokens": 3}}\n\n'
    rec = parse([(1 * MS, delta(content="abcd", finish="stop")), (2 * MS, body), (2 * MS, DONE)])
    assert rec.ok and rec.completion_tokens == 3 and rec.prompt_tokens == 20
    assert "prompt_tokens=nan" in (rec.note or "")


def test_json_nested_100k_deep_is_malformed_not_a_crash() -> None:
    deep = b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n\n"
    rec = parse([(1 * MS, deep), (2 * MS, DONE)])
    assert rec.error_kind is ErrorKind.MALFORMED and "too deep" in rec.error


def test_a_200_answer_that_is_not_a_stream_names_its_content_type() -> None:
    body = b'{"id": "x", "choices": [{"message": {"content": "hi"}}]}'
    rec = parse([(1 * MS, body)], content_type="application/json")
    assert rec.error_kind is ErrorKind.MALFORMED and "application/json" in rec.error
    rec = parse([(1 * MS, b"<html><body>login</body></html>")], content_type="text/html")
    assert rec.error_kind is ErrorKind.MALFORMED and "text/html" in rec.error


def test_a_transfer_cut_in_the_middle_of_an_event_keeps_the_transport_failure() -> None:
    half = delta(content="b")[:15]
    rec = parse(
        [(1 * MS, delta(content="a")), (2 * MS, half)],
        error_kind=ErrorKind.TIMEOUT,
        error="timed out after 2 s (--timeout)",
    )
    assert rec.error_kind is ErrorKind.TIMEOUT and rec.ttft_ms == 1.0


def test_a_line_over_the_cap_fails_as_oversize() -> None:
    raw = RawExchange(send_ns=0, status=200, chunks=[(1, b"data: " + b"x" * 5000)], end_ns=2)
    rec = parse_exchange(
        raw,
        prompt_id="p",
        level="concurrency=1",
        round=1,
        round_start_ns=0,
        prompt_tokens=1,
        max_line_bytes=4096,
    )
    assert rec.error_kind is ErrorKind.OVERSIZE and "cap 4096" in rec.error


def test_a_long_response_is_parsed_in_slices() -> None:
    one = delta(content="token ")
    n = 3 * STEP_BYTES // len(one)
    chunks = [(i * MS, one) for i in range(n)] + [(n * MS, delta(finish="stop")), (n * MS, DONE)]
    raw = RawExchange(send_ns=0, status=200, chunks=chunks, end_ns=n * MS)
    steps = parse_steps(
        raw, prompt_id="p", level="concurrency=1", round=1, round_start_ns=0, prompt_tokens=1
    )
    slices = 0
    while True:
        try:
            next(steps)
            slices += 1
        except StopIteration as stop:
            rec = stop.value
            break
    assert slices >= 2 and rec.ok and rec.token_events == n
