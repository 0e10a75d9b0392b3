"""Turning raw time-stamped streams into records: TTFT/ITL, usage, errors, real-server quirks."""

from __future__ import annotations

import json

from drbench.records import ErrorKind, TokenSource
from drbench.response import RawExchange, error_message, parse_exchange

MS = 1_000_000


def chunk(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def chat(
    content: object = None, role: str | None = None, finish: str | None = None, **extra
) -> bytes:
    delta: dict = {}
    if role:
        delta["role"] = role
    if content is not None or "null_content" in extra:
        delta["content"] = content
    return chunk(
        {
            "id": "c1",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra.get("top", {}),
        }
    )


USAGE = chunk(
    {
        "id": "c1",
        "choices": [],
        "usage": {
            "prompt_tokens": 20,
            "completion_tokens": 3,
            "total_tokens": 23,
            "prompt_tokens_details": {"cached_tokens": 16},
        },
    }
)
DONE = b"data: [DONE]\n\n"


def parse(
    chunks: list[tuple[int, bytes]], *, status: int = 200, end_ms: int | None = None, **raw_kw
):
    end = end_ms * MS if end_ms is not None else (chunks[-1][0] if chunks else 0)
    raw = RawExchange(send_ns=0, status=status, chunks=chunks, end_ns=end, **raw_kw)
    return parse_exchange(
        raw, prompt_id="p", level="concurrency=1", round=1, round_start_ns=0, prompt_tokens=20
    )


def test_ttft_skips_the_role_only_chunk_and_itl_gaps_follow_text_events() -> None:
    rec = parse(
        [
            (5 * MS, chat("", role="assistant")),
            (10 * MS, chat("Hel")),
            (13 * MS, chat("lo")),
            (20 * MS, chat("!", finish="stop")),
            (21 * MS, USAGE),
            (21 * MS, DONE),
        ]
    )
    assert rec.ok and rec.ttft_ms == 10.0
    assert rec.itl_ms == [3.0, 7.0]
    assert rec.latency_ms == 21.0
    assert rec.output_text == "Hello!"
    assert (rec.prompt_tokens, rec.completion_tokens, rec.cached_tokens) == (20, 3, 16)
    assert rec.token_source is TokenSource.USAGE
    assert rec.finish_reason == "stop" and rec.response_id == "c1"
    assert rec.tpot_ms == (21.0 - 10.0) / 2


def test_several_events_in_one_network_chunk_share_its_stamp() -> None:
    rec = parse([(10 * MS, chat("a") + chat("b") + chat("c", finish="stop") + DONE)])
    assert rec.ttft_ms == 10.0 and rec.itl_ms == [0.0, 0.0]


def test_usage_on_a_content_chunk_and_null_content_are_accepted() -> None:
    with_usage = chunk(
        {
            "id": "x",
            "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1},
        }
    )
    rec = parse(
        [
            (1 * MS, chat(None, role="assistant", null_content=True)),
            (2 * MS, with_usage),
            (3 * MS, DONE),
        ]
    )
    assert (
        rec.ok and rec.ttft_ms == 2.0 and rec.completion_tokens == 1 and rec.cached_tokens is None
    )


def test_no_usage_falls_back_to_a_labelled_estimate() -> None:
    rec = parse([(1 * MS, chat("abcd")), (2 * MS, chat("efgh", finish="length")), (3 * MS, DONE)])
    assert rec.token_source is TokenSource.ESTIMATE
    assert rec.completion_tokens == 2 and rec.prompt_tokens == 20  # as counted before the round


def test_no_usage_with_a_tokenizer_counts_the_answer_with_it() -> None:
    from drbench.tokens import TokenizerCounter

    words = TokenizerCounter("test", lambda t: t.split(), lambda ids: " ".join(ids))
    chunks = [(1 * MS, chat("one two ")), (2 * MS, chat("three", finish="stop")), (3 * MS, DONE)]
    raw = RawExchange(send_ns=0, status=200, chunks=chunks, end_ns=3 * MS)

    def parse(raw: RawExchange):
        return parse_exchange(
            raw,
            prompt_id="p",
            level="concurrency=1",
            round=1,
            round_start_ns=0,
            prompt_tokens=7,
            tokenizer=words,
        )

    rec = parse(raw)
    assert rec.token_source is TokenSource.TOKENIZER
    assert (rec.prompt_tokens, rec.completion_tokens) == (7, 3)
    # usage still wins over the tokenizer
    chunks.insert(2, (3 * MS, USAGE))
    rec = parse(raw)
    assert (
        rec.token_source is TokenSource.USAGE
        and rec.completion_tokens == 3
        and rec.prompt_tokens == 20
    )


def test_completions_stream_and_reasoning_content_count_as_text() -> None:
    comp = chunk(
        {
            "id": "t",
            "object": "text_completion",
            "choices": [{"index": 0, "text": "x", "finish_reason": None}],
        }
    )
    reason = chunk(
        {
            "id": "r",
            "choices": [
                {"index": 0, "delta": {"reasoning_content": "think"}, "finish_reason": None}
            ],
        }
    )
    assert parse([(4 * MS, comp), (5 * MS, chat("", finish="stop")), (6 * MS, DONE)]).ttft_ms == 4.0
    assert (
        parse([(7 * MS, reason), (9 * MS, chat("y", finish="stop")), (9 * MS, DONE)]).ttft_ms == 7.0
    )


def test_keep_alive_comments_are_ignored() -> None:
    rec = parse(
        [
            (1 * MS, b": ping\n\n"),
            (2 * MS, chat("a", finish="stop")),
            (3 * MS, b": ping\n\n" + DONE),
        ]
    )
    assert rec.ok and rec.ttft_ms == 2.0


def test_http_error_keeps_the_servers_message() -> None:
    body = json.dumps(
        {
            "error": {
                "message": "The model `x` does not exist.",
                "type": "NotFoundError",
                "code": 404,
            }
        }
    )
    rec = parse([], status=404, end_ms=1, body=body)
    assert not rec.ok and rec.error_kind is ErrorKind.HTTP
    assert rec.error == "HTTP 404: The model `x` does not exist."


def test_old_vllm_error_shape_and_plain_text_bodies() -> None:
    assert error_message('{"object":"error","message":"bad","type":"x"}') == "bad"
    assert error_message("upstream connect error") == "upstream connect error"
    assert error_message(None) == "(empty body)"


def test_in_stream_error_event_fails_the_request() -> None:
    err = chunk(
        {"error": {"message": "out of KV blocks", "type": "InternalServerError", "code": 500}}
    )
    rec = parse([(1 * MS, chat("a")), (2 * MS, err), (3 * MS, DONE)])
    assert rec.error_kind is ErrorKind.STREAM and "out of KV blocks" in rec.error
    assert rec.ttft_ms == 1.0  # what was measured before the failure is kept


def test_malformed_event_fails_the_request() -> None:
    rec = parse(
        [
            (1 * MS, chat("a")),
            (2 * MS, b"data: {not json\n\n"),
            (3 * MS, chat("b", finish="stop") + DONE),
        ]
    )
    assert rec.error_kind is ErrorKind.MALFORMED and "event 2" in rec.error


def test_stream_cut_before_done_or_finish_is_a_failure() -> None:
    rec = parse([(1 * MS, chat("a")), (2 * MS, chat("b"))])
    assert rec.error_kind is ErrorKind.STREAM and "without [DONE]" in rec.error


def test_finish_reason_without_done_is_accepted() -> None:
    assert parse([(1 * MS, chat("a", finish="stop"))]).ok


def test_stream_without_text_is_empty_failure() -> None:
    rec = parse(
        [(1 * MS, chat("", role="assistant")), (2 * MS, chat("", finish="stop")), (2 * MS, DONE)]
    )
    assert rec.error_kind is ErrorKind.EMPTY and rec.ttft_ms is None


def test_transport_error_from_the_client_is_kept() -> None:
    rec = parse(
        [(1 * MS, chat("a"))], error_kind=ErrorKind.TIMEOUT, error="timed out after 1 s (--timeout)"
    )
    assert rec.error_kind is ErrorKind.TIMEOUT and rec.ttft_ms == 1.0


def test_record_round_trips_through_its_dict() -> None:
    from drbench.records import RequestRecord

    rec = parse([(1 * MS, chat("a")), (3 * MS, chat("b", finish="stop")), (4 * MS, USAGE + DONE)])
    again = RequestRecord.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert again == rec and again.level == "concurrency=1"
    # A schema-1 requests.jsonl line names its level by "concurrency" alone.
    old = {k: v for k, v in rec.to_dict().items() if k != "level"} | {"concurrency": 1}
    assert RequestRecord.from_dict(json.loads(json.dumps(old))) == rec
