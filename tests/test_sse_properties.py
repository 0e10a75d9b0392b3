"""Property tests of the SSE decoder: any bytes, split anywhere, give events or SSELineTooLong,
never another exception, and the split never changes the result."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from drbench.sse import SSEDecoder, SSELineTooLong

_PIECES = st.sampled_from(
    [b"data: ", b"data:", b"event: error", b": ping", b"\n", b"\r", b"\r\n", b"\xef\xbb\xbf",
     b'{"a": 1}', b"[DONE]", b"id: 3", b"retry: x", b"\xff\xfe", b"x" * 50]
)  # fmt: skip
_STREAMS = st.one_of(st.binary(max_size=400), st.lists(_PIECES, max_size=40).map(b"".join))


def decode(data: bytes, cuts: list[int], cap: int) -> list[tuple[str, str]] | str:
    dec, out, prev = SSEDecoder(max_line_bytes=cap), [], 0
    try:
        for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
            out += dec.feed(data[prev:cut])
            prev = cut
        out += dec.flush()
    except SSELineTooLong:
        return "too long"
    return [(e.event, e.data) for e in out]


@settings(max_examples=300, deadline=None)
@given(_STREAMS, st.lists(st.integers(min_value=0, max_value=1000), max_size=8))
def test_any_bytes_split_anywhere_decode_the_same(data: bytes, cuts: list[int]) -> None:
    whole = decode(data, [], cap=1 << 20)
    assert decode(data, cuts, cap=1 << 20) == whole
    assert whole == decode(data, list(range(len(data))), cap=1 << 20)  # byte by byte


@settings(max_examples=200, deadline=None)
@given(_STREAMS, st.lists(st.integers(min_value=0, max_value=1000), max_size=8))
def test_a_small_cap_gives_events_or_the_clean_error(data: bytes, cuts: list[int]) -> None:
    result = decode(data, cuts, cap=64)
    assert result == decode(data, [], cap=64)  # the cap does not depend on the split either
    if result != "too long":
        assert all(len(line) <= 64 for _, d in result for line in d.split("\n"))
