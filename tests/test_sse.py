"""The SSE decoder against awkward splits: every fixture is fed cut at every byte offset."""

from __future__ import annotations

import pytest

from drbench.sse import SSEDecoder


def decode_split(data: bytes, *cuts: int) -> list[tuple[str, str]]:
    dec, events, prev = SSEDecoder(), [], 0
    for cut in (*cuts, len(data)):
        events += dec.feed(data[prev:cut])
        prev = cut
    events += dec.flush()
    return [(e.event, e.data) for e in events]


CASES = {
    "lf": (b'data: {"a":1}\n\ndata: [DONE]\n\n', [("message", '{"a":1}'), ("message", "[DONE]")]),
    "crlf": (
        b'data: {"a":1}\r\n\r\ndata: [DONE]\r\n\r\n',
        [("message", '{"a":1}'), ("message", "[DONE]")],
    ),
    "cr": (b"data: x\r\rdata: y\r\r", [("message", "x"), ("message", "y")]),
    "comments": (b": keep-alive\n\n:ping\ndata: x\n\n", [("message", "x")]),
    "multiline": (b"data: line1\ndata: line2\n\n", [("message", "line1\nline2")]),
    "no_space": (b"data:x\n\ndata:  two\n\n", [("message", "x"), ("message", " two")]),
    "error_event": (
        b'event: error\ndata: {"error":{"message":"boom"}}\n\n',
        [("error", '{"error":{"message":"boom"}}')],
    ),
    "usage_only": (
        b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\ndata: [DONE]\n\n',
        [
            ("message", '{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}'),
            ("message", "[DONE]"),
        ],
    ),
    "utf8": ("data: 你好\n\n".encode(), [("message", "你好")]),
    "bom": (b"\xef\xbb\xbfdata: x\n\n", [("message", "x")]),
    "unterminated": (b"data: tail", [("message", "tail")]),
    "ignored_fields": (b"id: 7\nretry: 100\nfoo: bar\ndata: x\n\n", [("message", "x")]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_single_split_gives_the_same_events(name: str) -> None:
    data, expected = CASES[name]
    assert decode_split(data) == expected
    for cut in range(len(data) + 1):
        assert decode_split(data, cut) == expected, f"cut at byte {cut}"


@pytest.mark.parametrize("name", ["crlf", "multiline", "utf8"])
def test_byte_by_byte(name: str) -> None:
    data, expected = CASES[name]
    assert decode_split(data, *range(1, len(data))) == expected


def test_events_are_returned_as_soon_as_complete() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: a\n") == []
    assert [e.data for e in dec.feed(b"\ndata: b")] == ["a"]
    assert [e.data for e in dec.flush()] == ["b"]


def test_blank_lines_without_data_dispatch_nothing() -> None:
    assert decode_split(b"\n\n\n\nevent: x\n\n") == []


def test_a_long_line_arrives_whole_and_a_line_over_the_cap_raises() -> None:
    from drbench.sse import SSELineTooLong

    dec = SSEDecoder(max_line_bytes=1 << 20)
    line = b"data: " + b"y" * 600_000
    events = [e for i in range(0, len(line), 4096) for e in dec.feed(line[i : i + 4096])]
    events += dec.feed(b"\n\n")
    assert [len(e.data) for e in events] == [600_000]
    dec = SSEDecoder(max_line_bytes=1 << 20)
    with pytest.raises(SSELineTooLong):
        for _ in range(0, 2 << 20, 4096):
            dec.feed(b"x" * 4096)
