"""The parse path's shortcuts give what the general code gives: SSE data lines handled inline,
plain content deltas, record dicts built without asdict; and odd ``choices`` never crash."""

from __future__ import annotations

import json
from dataclasses import asdict

from drbench.records import ErrorKind, RequestRecord, TokenSource
from drbench.response import RawExchange, parse_exchange
from drbench.sse import SSEDecoder


def _parse(*events: object, done: bool = True) -> RequestRecord:
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    raw = RawExchange(send_ns=0, status=200)
    raw.chunks.append((1_000_000, body + (b"data: [DONE]\n\n" if done else b"")))
    raw.end_ns = 2_000_000
    return parse_exchange(
        raw, prompt_id="p", level="concurrency=1", round=1, round_start_ns=0, prompt_tokens=1
    )


def _decode(data: bytes) -> list[tuple[str, str]]:
    dec = SSEDecoder()
    return [(e.event, e.data) for e in [*dec.feed(data), *dec.flush()]]


def test_data_lines_with_and_without_value_or_space() -> None:
    assert _decode(b"data\ndata: x\ndata:y\n\n") == [("message", "\nx\ny")]
    assert _decode(b"event: error\ndata: e\n\ndata: m\n\n") == [("error", "e"), ("message", "m")]
    assert _decode(b"datax: no\ndata: yes\n\n") == [("message", "yes")]


def test_reasoning_and_content_in_one_delta_are_joined_in_order() -> None:
    rec = _parse(
        {"choices": [{"delta": {"reasoning": "r", "content": "c", "reasoning_content": "rc"}}]},
        {"choices": [{"delta": {"content": None, "reasoning_content": "t"}}]},
        {"choices": [{"delta": {"content": 5}, "finish_reason": "stop"}]},
    )
    assert rec.output_text == "crcrt"
    assert rec.completion_tokens == 2  # the third event carries no text


def test_choices_that_are_not_objects_carry_nothing_and_do_not_crash() -> None:
    rec = _parse(
        {"id": "r1", "choices": ["x", 1, None]},
        {"choices": [{"delta": {"content": "ok"}, "finish_reason": "stop"}]},
    )
    assert rec.ok and rec.output_text == "ok" and rec.response_id == "r1"
    empty = _parse({"choices": ["x"]})
    assert empty.error_kind is ErrorKind.EMPTY


def test_an_empty_id_is_replaced_by_a_later_one() -> None:
    rec = _parse({"id": "", "choices": []}, {"id": "r2", "choices": [{"delta": {"content": "a"}}]})
    assert rec.response_id == "r2"


def test_record_dict_is_what_asdict_gives_plus_the_derived_keys() -> None:
    rec = RequestRecord(
        "p", "concurrency=4", 1, 1.5, ttft_ms=1.0, latency_ms=4.0, itl_ms=[1.0, 2.0], completion_tokens=3,
        token_source=TokenSource.USAGE, error_kind=None, output_text="abc",
    )  # fmt: skip
    d = rec.to_dict()
    expected = {
        **asdict(rec),
        "token_source": "usage",
        "error_kind": None,
        "ok": True,
        "tpot_ms": 1.5,
        "mean_itl_ms": 1.5,
    }
    assert d == expected and list(d) == list(expected)
    d["itl_ms"].append(9.0)
    assert rec.itl_ms == [1.0, 2.0]  # the dict does not alias the record


def _parse_lines(*lines: bytes) -> RequestRecord:
    raw = RawExchange(send_ns=0, status=200)
    raw.chunks.append((1_000_000, b"".join(b"data:" + line + b"\n\n" for line in lines)))
    raw.end_ns = 2_000_000
    return parse_exchange(
        raw, prompt_id="p", level="concurrency=1", round=1, round_start_ns=0, prompt_tokens=1
    )


_TOKEN = b' {"id": "x", "choices": [{"delta": {"content": "hi"}}]}'


def test_events_the_scanner_does_not_take_whole_are_read_as_json_loads_reads_them() -> None:
    """take() reads an event with json's scanner and leaves the rest to json.loads: padding
    around the value, [DONE] with spaces, trailing bytes after a valid object."""
    padded = _parse_lines(b'   {"choices": [{"delta": {"content": "a"}}]}   ', b" [DONE] ")
    assert padded.ok and padded.output_text == "a" and padded.token_events == 1
    extra = _parse_lines(_TOKEN, b' {"choices": []} {"x": 1}', b" [DONE]")
    assert extra.error_kind is ErrorKind.MALFORMED and "event 2 is not JSON" in extra.error
    nan = _parse_lines(_TOKEN, b" NaN", b" [DONE]")
    assert nan.error_kind is ErrorKind.MALFORMED and "not a JSON object" in nan.error
    not_done = _parse_lines(_TOKEN, b' ["[DONE]"]')
    assert not_done.error_kind is ErrorKind.MALFORMED


def test_json_nested_too_deep_is_malformed_by_the_scanner_path_too() -> None:
    rec = _parse_lines(_TOKEN, b" " + b"[" * 100_000 + b"]" * 100_000, b" [DONE]")
    assert rec.error_kind is ErrorKind.MALFORMED and "nested too deep" in rec.error
