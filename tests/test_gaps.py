"""Gaps: itl_ms in 4 bytes a gap, giving back exactly the floats a list of ms held, and records
that keep them through to_dict, JSON and from_dict unchanged."""

from __future__ import annotations

import copy
import json
import math
import pickle
import sys
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from drbench.gaps import Gaps
from drbench.records import ErrorKind, RequestRecord, TokenSource
from drbench.response import RawExchange, parse_exchange

GAP_NS = st.integers(min_value=0, max_value=2**32 - 1)
ANY_GAP_NS = st.integers(min_value=-(2**40), max_value=2**50)


def stamps_of(gaps_ns: list[int], start: int = 10**12) -> list[int]:
    out = [start]
    for g in gaps_ns:
        out.append(out[-1] + g)
    return out


@given(st.lists(ANY_GAP_NS, max_size=50))
def test_gaps_from_stamps_are_the_floats_the_old_list_held(gaps_ns: list[int]) -> None:
    stamps = stamps_of(gaps_ns)
    gaps = Gaps.from_stamps(stamps)
    expected = [(b - a) / 1e6 for a, b in pairwise(stamps)]  # what response.py built before
    assert gaps.tolist() == expected and list(gaps) == expected and gaps == expected
    assert [gaps[i] for i in range(len(gaps))] == expected and len(gaps) == len(expected)
    assert json.dumps(gaps.tolist()) == json.dumps(expected)  # requests.jsonl unchanged


@given(st.lists(st.floats(allow_nan=False, width=64), max_size=30))
def test_gaps_keep_any_float_given_in_ms_exactly(values: list[float]) -> None:
    gaps = Gaps(values)
    assert gaps.tolist() == values
    assert Gaps(json.loads(json.dumps(gaps.tolist()))) == values


def test_storage_is_4_bytes_a_gap_with_8_for_long_or_negative_gaps_and_floats_otherwise() -> None:
    assert Gaps.from_stamps(stamps_of([20_000_000] * 5)).ns_or_ms[0].typecode == "I"
    long = Gaps.from_stamps(stamps_of([1, 5_000_000_000]))  # a 5 s stall
    assert long.ns_or_ms[0].typecode == "q" and long == [1e-6, 5000.0]
    back = Gaps.from_stamps([10, 4])  # stamps out of order
    assert back.ns_or_ms[0].typecode == "q" and back == [-6e-6]
    assert Gaps([1.0, 2.5]).ns_or_ms == (Gaps.from_stamps([0, 1_000_000, 3_500_000]).ns_or_ms)
    odd = Gaps([1.0, 0.1234567891])  # not whole nanoseconds: kept as given
    assert odd.ns_or_ms[0].typecode == "d" and odd == [1.0, 0.1234567891]
    missing = Gaps([1.0, None, math.inf])  # a null read back from a strict JSON file
    assert missing.ns_or_ms[0].typecode == "d"
    first, nan, inf = missing
    assert first == 1.0 and math.isnan(nan) and inf == math.inf


def test_the_stored_form_is_compact() -> None:
    stamps = stamps_of([12_345_678 + 1_000 * i for i in range(1000)])
    gaps = Gaps.from_stamps(stamps)
    size = sys.getsizeof(gaps)
    assert 4 * 1000 <= size < 4_500  # getsizeof counts the array it owns: 4 bytes a gap
    assert sys.getsizeof(Gaps.from_stamps(stamps_of([5 * 10**9] * 1000))) < 9_000
    assert sys.getsizeof(Gaps([x / 1e6 for x in range(1000)])) < 4_500  # ms floats: ns again
    listed = [(b - a) / 1e6 for a, b in pairwise(stamps)]
    assert sys.getsizeof(listed) + sum(map(sys.getsizeof, listed)) > 7 * size  # the old list


def test_gaps_copy_pickle_and_compare_like_a_sequence() -> None:
    gaps = Gaps.from_stamps([0, 1_500_000, 4_000_000])
    assert copy.deepcopy(gaps) == gaps == pickle.loads(pickle.dumps(gaps)) == (1.5, 2.5)
    assert gaps != [1.5] and gaps != Gaps([1.5, 2.6]) and gaps != "1.5"
    assert gaps[-1] == 2.5 and gaps[::-1] == [2.5, 1.5] and repr(gaps) == "Gaps([1.5, 2.5])"
    assert not Gaps() and sum(gaps) == 4.0 and max(gaps) == 2.5


def test_a_record_takes_any_sequence_and_stores_gaps() -> None:
    rec = RequestRecord("p", "concurrency=1", 1, 0.0, itl_ms=[1.0, 2.0])
    assert isinstance(rec.itl_ms, Gaps) and rec.itl_ms == [1.0, 2.0]
    assert isinstance(RequestRecord("p", "concurrency=1", 1, 0.0).itl_ms, Gaps)
    assert rec.mean_itl_ms == 1.5 and rec.max_itl_ms == 2.0


def _stream(tokens: int) -> RawExchange:
    raw = RawExchange(send_ns=5_000_000_000, status=200, content_type="text/event-stream")
    t = raw.send_ns + 41_234_567
    for i in range(tokens):
        event = {"id": "r1", "choices": [{"delta": {"content": f" w{i}"}, "finish_reason": None}]}
        raw.chunks.append((t, f"data: {json.dumps(event)}\n\n".encode()))
        t += 7_654_321 + 333 * i
    usage = {"prompt_tokens": 9, "completion_tokens": tokens}
    finish = {"id": "r1", "choices": [{"delta": {}, "finish_reason": "stop"}], "usage": usage}
    raw.chunks.append((t, f"data: {json.dumps(finish)}\n\ndata: [DONE]\n\n".encode()))
    raw.end_ns = t + 1
    return raw


def test_a_parsed_record_round_trips_through_to_dict_json_and_from_dict() -> None:
    raw = _stream(40)
    rec = parse_exchange(
        raw,
        prompt_id="p",
        level="concurrency=2",
        round=1,
        round_start_ns=4_900_000_000,
        prompt_tokens=9,
    )
    assert rec.ok and rec.token_source is TokenSource.USAGE and len(rec.itl_ms) == 39
    stamps = [t for t, _ in raw.chunks[:40]]
    assert rec.itl_ms == [(b - a) / 1e6 for a, b in pairwise(stamps)]
    line = json.dumps(rec.to_dict())
    back = RequestRecord.from_dict(json.loads(line))
    assert back == rec and isinstance(back.itl_ms, Gaps)
    assert back.itl_ms.ns_or_ms[0].typecode == "I"  # read back as compact as measured
    assert json.dumps(back.to_dict()) == line
    assert json.loads(line)["itl_ms"][0] == 7.654321  # ns resolution, as written before


def test_a_failed_record_with_hand_made_gaps_round_trips() -> None:
    rec = RequestRecord(
        "q", "concurrency=3", 2, 1.25, itl_ms=(0.5, 1e-7), error_kind=ErrorKind.STREAM, error="cut",
        output_text=None,
    )  # fmt: skip
    back = RequestRecord.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert back == rec and back.itl_ms == [0.5, 1e-7] and back.output_text is None
