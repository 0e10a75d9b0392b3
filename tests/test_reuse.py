"""The offered prefix share (drbench/reuse.py): hand-made sequences with known answers, the
estimate's units, chat rendering across turns, continue-mode history; its sanity line; and end
to end on the mocker, where the measured cached share must follow what was offered."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drbench.cli import main
from drbench.client import PreparedRequest
from drbench.levels import Level
from drbench.oracle import NO_CAPACITY
from drbench.records import RequestRecord, TokenSource
from drbench.report.console import format_comparison, format_overview, format_round
from drbench.report.files import csv_rows
from drbench.reuse import (
    DEFAULT_BLOCK_SIZE,
    LevelReuse,
    Reuse,
    TextUnits,
    TokenUnits,
    UnlimitedCache,
    chain_hashes,
    offered,
    render_chat,
    request_text,
    units_of,
    with_answer,
)
from drbench.sanity import RoundFacts, round_warnings
from drbench.tokens import EstimateCounter, TokenizerCounter
from tests.test_report import run_result

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "examples" / "example_dataset.json"
FAST = ("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "8")


def ids(*ranges: range | list[int]) -> TokenUnits:
    return TokenUnits([i for r in ranges for i in r])


def reuse_of(*seqs: TokenUnits | TextUnits, block: int = 16) -> tuple[int, int]:
    r = offered(seqs, UnlimitedCache(), block)
    return r.reused, r.total


# --- the simulator on token ids ---------------------------------------------------------------


def test_a_shared_prefix_is_reused_by_whole_blocks() -> None:
    # 40 ids: 2 full blocks and 8 left over; the second prompt shares the first 36 ids
    a = ids(range(40))
    b = ids(range(36), range(100, 110))
    assert reuse_of(a, b) == (32, 86)  # the third block differs after id 35: 2 blocks hit
    assert reuse_of(a, a) == (32, 80)
    assert reuse_of(b, a) == (32, 86)  # either order: the shared part is the same


def test_a_partial_block_is_never_cached_or_reused() -> None:
    assert reuse_of(ids(range(15)), ids(range(15))) == (0, 30)  # under one block
    assert reuse_of(ids(range(20)), ids(range(20))) == (16, 40)
    # the first prompt's partial tail does not make the second's full block a hit
    assert reuse_of(ids(range(20)), ids(range(32))) == (16, 52)


def test_the_last_unit_is_always_computed() -> None:
    """As vLLM (and SGLang) do: an exact repeat of 32 ids reuses 1 block, not 2."""
    assert reuse_of(ids(range(32)), ids(range(32))) == (16, 64)
    assert reuse_of(ids(range(33)), ids(range(33))) == (32, 66)


def test_block_size_one_reuses_every_unit_but_the_last() -> None:
    assert reuse_of(ids([1, 2, 3]), ids([1, 2, 3]), block=1) == (2, 6)
    assert reuse_of(ids([1, 2, 3]), ids([1, 2, 4]), block=1) == (2, 6)
    assert reuse_of(ids([1, 2, 3]), ids([9, 2, 3]), block=1) == (0, 6)  # chained: no later hit


def test_hashes_are_chained_so_an_equal_block_elsewhere_does_not_match() -> None:
    first, second = range(16), range(16, 32)
    assert reuse_of(ids(first, second), ids(second, first, [0])) == (0, 65)
    # the same second block behind another first block: its hash differs
    assert reuse_of(ids(first, second), ids(range(50, 66), second, [0])) == (0, 65)
    h = chain_hashes([(1,), (2,)])
    assert h[0] == hash((0, (1,))) and h[1] == hash((h[0], (2,)))


def test_a_prompt_does_not_reuse_itself_and_the_cache_accumulates() -> None:
    cache = UnlimitedCache()
    assert offered([ids(range(64))], cache, 16) == Reuse(0, 64, 16)  # round 1: cold
    assert offered([ids(range(64))], cache, 16) == Reuse(48, 64, 16)  # round 2 sees round 1
    assert len(cache.blocks) == 4
    with pytest.raises(ValueError, match="block_size"):
        offered([], cache, 0)


def test_reuse_share_and_its_json() -> None:
    assert Reuse(0, 0).share is None  # nothing sent: no share, not 0%
    r = Reuse(30, 40, 32, "tokens", "server")
    assert r.share == 0.75
    assert r.to_dict() == {
        "reused_units": 30,
        "total_units": 40,
        "unit": "tokens",
        "block_size": 32,
        "block_size_source": "server",
    }


# --- estimated units --------------------------------------------------------------------------


def test_estimated_units_are_4_characters_and_one_per_cjk_character() -> None:
    ascii_text = "a" * 130
    assert TextUnits.of(ascii_text).count == EstimateCounter().count(ascii_text) == 33
    cjk = "缓存" * 50
    assert TextUnits.of(cjk).count == EstimateCounter().count(cjk) == 100  # not 25
    assert len(list(TextUnits.of(cjk).blocks(16))) == 6
    t = TextUnits.of("abcdefgh中文ijklm")
    assert t.count == 6  # abcd efgh 中 文 ijkl m
    assert list(t.blocks(1)) == ["abcd", "efgh", "中", "文", "ijkl"]  # "m" may still grow
    assert list(t.blocks(2)) == ["abcdefgh", "中文"]
    assert list(TextUnits.of("ab中cd").blocks(1)) == ["ab", "中"]  # a run's last piece is whole
    assert TextUnits.of("").count == 0 and list(TextUnits.of("").blocks(1)) == []


def test_a_cjk_prompt_offers_as_many_units_as_its_characters() -> None:
    shared = "前缀缓存" * 40  # 160 characters: 10 blocks of 16
    a, b = TextUnits.of(shared + "第一个问题"), TextUnits.of(shared + "第二个问题")
    assert reuse_of(a, b) == (160, 330)


@given(st.text(alphabet="ab 缓存\n", max_size=300), st.integers(1, 40))
def test_estimated_blocks_cover_the_text_from_its_start_and_stay_a_prefix(text, block) -> None:
    """Blocks are consecutive slices from the start; a longer text keeps a prefix's blocks
    (what lets round k+1 find round k's blocks), except a short piece the longer text grew."""
    blocks = list(TextUnits.of(text).blocks(block))
    assert text.startswith("".join(blocks))
    for cut in (len(text) // 2, len(text) - 1):
        head = list(TextUnits.of(text[:cut]).blocks(block))
        assert blocks[: len(head)] == head


def test_units_come_from_the_tokenizer_when_one_is_given() -> None:
    tok = TokenizerCounter("t", lambda s: [ord(c) for c in s], lambda i: "".join(map(chr, i)))
    assert units_of("héllo", tok) == TokenUnits([104, 233, 108, 108, 111])
    assert isinstance(units_of("héllo", EstimateCounter()), TextUnits)
    assert isinstance(units_of("héllo", None), TextUnits)
    assert LevelReuse.for_server(None, tok).unit == "tokens"
    assert LevelReuse.for_server(None, None).unit == "estimated tokens"


def test_the_block_size_is_the_servers_else_vllms_default() -> None:
    lr = LevelReuse.for_server(None, None)
    assert (lr.block_size, lr.block_source) == (DEFAULT_BLOCK_SIZE, "default") == (16, "default")
    lr = LevelReuse.for_server(64, None)
    assert (lr.block_size, lr.block_source) == (64, "server")
    r = lr.round([{"prompt": "x" * 1000}])
    assert (r.block_size, r.block_source, r.unit) == (64, "server", "estimated tokens")


# --- request texts, chat rendering, continue mode ---------------------------------------------


def test_chat_rendering_stays_a_prefix_across_turns() -> None:
    turn1 = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q1"}]
    turn2 = [*turn1, {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}]
    assert render_chat(turn1) == "system\nBe brief.\n\nuser\nQ1\n\n"
    assert render_chat(turn2).startswith(render_chat(turn1))
    assert render_chat(turn2).startswith(
        render_chat(with_answer({"messages": turn1}, "A1")["messages"])
    )
    parts = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "nonce "}, {"type": "text", "text": "hi"}],
        }
    ]
    assert render_chat(parts) == "user\nnonce hi\n\n"
    assert request_text({"prompt": "plain"}) == "plain"
    assert request_text({"messages": turn1}) == render_chat(turn1)
    assert with_answer({"prompt": "Q "}, "A") == {"prompt": "Q A"}


def _record(prompt_id: str, answer: str, ok: bool = True) -> RequestRecord:
    return RequestRecord(
        prompt_id=prompt_id,
        level="concurrency=1",
        round=1,
        start_ms=0.0,
        output_text=answer,
        error_kind=None if ok else "http",
        token_source=TokenSource.USAGE,
    )


def test_continue_mode_offers_a_later_turn_its_whole_history() -> None:
    question, answer, followup = "q" * 400, "a" * 800, "f" * 40
    turn1 = [{"role": "user", "content": question}]
    turn2 = [
        *turn1,
        {"role": "assistant", "content": answer},
        {"role": "user", "content": followup},
    ]
    history = TextUnits.of(render_chat(turn2[:-1])).count  # round 2 minus its last user turn

    def round2(with_history: bool, ok: bool = True) -> Reuse:
        lr = LevelReuse.for_server(16, None)
        r1 = lr.round([{"messages": turn1}])
        assert r1.reused == 0
        if with_history:
            lr.answered([PreparedRequest.of("p", {"messages": turn1})], [_record("p", answer, ok)])
        return lr.round([{"messages": turn2}])

    full = round2(True)
    assert full.total == TextUnits.of(render_chat(turn2)).count
    assert history - 16 < full.reused <= history  # all of it, but for the last partial block
    assert round2(False).reused <= TextUnits.of(render_chat(turn1)).count  # only turn 1's text
    assert round2(True, ok=False).reused == round2(False).reused  # a failed answer: no history


def test_continue_mode_history_for_the_completions_api() -> None:
    lr = LevelReuse.for_server(16, None)
    prompt, answer = "p" * 640, "a" * 640
    lr.round([{"prompt": prompt}])
    lr.answered([PreparedRequest.of("x", {"prompt": prompt})], [_record("x", answer)])
    r = lr.round([{"prompt": f"{prompt}{answer}\n\nmore please\n\n"}])  # as plan.py continues
    assert r.reused == 320  # 160 + 160 units of history: 20 blocks


# --- the sanity line ----------------------------------------------------------------------------


def _facts(rnd: int, measured: float | None, offer: float | None, hit: float | None = None):
    recs = [
        RequestRecord(
            prompt_id=f"p{i}",
            level="concurrency=1",
            round=rnd,
            start_ms=0.0,
            prompt_tokens=500,
            token_source=TokenSource.USAGE,
        )
        for i in range(4)
    ]
    return RoundFacts(Level.closed(1), rnd, recs, measured, hit, "nonce", offered_share=offer)


def _below(facts: RoundFacts) -> list[str]:
    return [w for w in round_warnings(facts) if "less than half of what its prompts offered" in w]


def test_a_round_far_below_its_offer_gets_one_line_naming_the_causes() -> None:
    (line,) = _below(_facts(2, 0.30, 0.95, hit=0.25))
    assert line.startswith(
        "round 2 at concurrency 1 reused less than half of what its prompts offered (30.0% of "
        "prompt tokens cached (usage), 25.0% server hit rate; offered prefix share 95.0%). "
        "Likely cause: prefix caching is off"
    )
    assert "working set" in line and "router" in line and "\n" not in line
    (line,) = _below(_facts(1, 0.10, 0.80))  # a shared-prefix workload's round 1
    assert line.startswith("round 1 at concurrency 1 reused less than half")


def test_the_offer_line_stays_quiet_when_it_should() -> None:
    assert _below(_facts(2, 0.50, 0.95)) == []  # more than half of the offer
    assert _below(_facts(2, 0.20, 0.45)) == []  # offers under 50% are not judged
    assert _below(_facts(1, 0.0, 0.01)) == []  # an ordinary round 1: nothing offered
    assert _below(_facts(2, None, 0.95)) == []  # no measured figure at all
    assert _below(_facts(2, 0.3, None)) == []
    # a round that reused nothing gets the "reused almost nothing" line instead, not both
    lines = round_warnings(_facts(2, 0.0, 0.95))
    assert len(lines) == 1 and "reused almost nothing" in lines[0]


def test_round_one_is_not_called_warm_for_reuse_its_own_prompts_offer() -> None:
    def not_cold(measured: float, offer: float | None) -> bool:
        return any("was not cold" in w for w in round_warnings(_facts(1, measured, offer)))

    assert not_cold(0.30, None) and not_cold(0.30, 0.0)
    assert not not_cold(0.30, 0.28)  # a shared-prefix workload caches within round 1
    assert not_cold(0.50, 0.28)


# --- the reports --------------------------------------------------------------------------------


def test_the_reports_show_the_offer_beside_the_measured_shares(tmp_path: Path) -> None:
    run = run_result()
    level = run.levels[0]
    level.rounds[0].offered = Reuse(0, 400)
    level.rounds[1].offered = Reuse(288, 400, 32, "tokens", "server")
    en = format_round(level.rounds[1], "en")
    cache = en[en.index("Cache:") :].splitlines()
    assert cache[1:6] == [
        "  Offered prefix share (an unlimited cache; tokens, blocks of 32 from the server's "
        "metrics): 72.0%",
        f"  Expected hit rate: {NO_CAPACITY}",
        "  Cached prompt tokens (usage): 96.0%",
        "  Server prefix-cache hit rate (counter deltas): -",
        "  Cache efficiency (usage cached share / offered share): 133.3%",
    ]
    zh = format_round(level.rounds[0], "zh")
    assert (
        "可复用的前缀占比 (无限容量缓存; 估算 tokens, 块大小 16, 来自 vLLM GPU 默认值): 0.0%" in zh
    )
    assert "  Offered share    0.0% -> 72.0%" in format_comparison(level)
    # padded by display width (5 CJK characters take 10 of the label's 16 columns)
    assert "  可复用前缀       0.0% -> 72.0%" in format_comparison(level, "zh")
    overview = format_overview(run).splitlines()
    # no hit rate anywhere: its column is left out (a line under the table says how to get it)
    assert overview[2].split()[-4:] == ["Goodput", "Offered", "Cached", "Eff."]
    assert overview[3].split()[-4:] == ["(%)", "(%)", "(%)", "(%)"]
    assert overview[6].split()[-3:] == ["72.0", "96.0", "133.3"]
    rows = csv_rows(run.levels)
    assert [r["offered_prefix_share"] for r in rows] == [0.0, 0.72]
    assert rows[1]["cache_offered_block_size_source"] == "server"
    assert "cache_offered_share" not in rows[1]  # one column for it, under its own name
    level.rounds[1] = replace(level.rounds[1], offered=None)  # a round without it: same columns
    assert list(csv_rows(run.levels)[1]) == list(rows[1])
    assert csv_rows(run.levels)[1]["offered_prefix_share"] is None
    assert "Offered prefix share" not in format_round(level.rounds[1])


# --- end to end on the mocker -------------------------------------------------------------------


def _run(mock, out: Path, dataset: Path, *extra: str, quiet: bool = True) -> dict:
    argv = [
        "--endpoint",
        mock.base_url + "/v1/chat/completions",
        "--dataset",
        str(dataset),
        "--output-dir",
        str(out),
        "--no-plots",
        *(("--quiet",) if quiet else ()),
        *extra,
    ]
    assert main(argv) == 0
    return json.loads((out / "summary.json").read_text())


@pytest.mark.slow
def test_a_plain_dataset_offers_nothing_cold_and_almost_everything_warm(
    mocker_factory, tmp_path: Path, capsys
) -> None:
    mock = mocker_factory(*FAST)
    s = _run(mock, tmp_path / "r", DATASET, "--concurrency", "2", "--verbose", quiet=False)
    r1, r2 = s["levels"][0]["rounds"]
    for r in (r1, r2):
        assert r["cache"]["offered"]["unit"] == "estimated tokens"
        assert r["cache"]["offered"]["block_size"] == 16
        assert r["cache"]["offered"]["block_size_source"] == "default"
        assert r["cache"]["offered"]["total_units"] > 0
    assert r1["cache"]["offered_share"] < 0.01  # the nonce makes every prompt unique
    assert r2["cache"]["offered_share"] > 0.9
    measured = r2["cache"]["client_cached_share"]
    assert abs(measured - r2["cache"]["offered_share"]) < 0.05  # the mocker got what was offered
    rows = list(csv.DictReader((tmp_path / "r" / "metrics_summary.csv").open()))
    assert float(rows[1]["offered_prefix_share"]) == pytest.approx(r2["cache"]["offered_share"])
    assert rows[0]["cache_offered_block_size"] == "16"
    per_round = json.loads((tmp_path / "r" / "concurrency_2_round_2.json").read_text())
    assert per_round["summary"]["cache"]["offered"] == r2["cache"]["offered"]
    printed = capsys.readouterr().out
    assert (
        "Offered prefix share (an unlimited cache; estimated tokens, blocks of 16 from " in printed
    )
    assert "vLLM's GPU default): " in printed
    share = f"{100 * r2['cache']['offered_share']:.1f}%"
    assert f"Offered share    {100 * r1['cache']['offered_share']:.1f}% -> {share}" in printed
    assert not any("offered" in w for w in s["levels"][0]["warnings"])


@pytest.mark.slow
def test_a_shared_prefix_dataset_offers_the_share_it_was_built_with(
    mocker_factory, tmp_path: Path
) -> None:
    n, prefix_chars, suffix_chars = 6, 4000, 400  # 1,000 + 100 estimated tokens a prompt
    shared = ("The shared system prompt of every request. " * 100)[:prefix_chars]
    data = tmp_path / "shared.jsonl"
    with data.open("w") as f:
        for i in range(n):
            suffix = (f"Question {i}: what is unique here? " * 20)[:suffix_chars]
            f.write(json.dumps({"id": f"q{i}", "text": shared + suffix}) + "\n")
    mock = mocker_factory(*FAST)  # its own cache: round 1 is cold without a nonce
    s = _run(mock, tmp_path / "r", data, "--concurrency", "1", "--cold-start", "none")
    r1, r2 = s["levels"][0]["rounds"]
    o1 = r1["cache"]["offered"]
    per_prompt = math.ceil((5 + prefix_chars + suffix_chars + 2) / 4)  # "user\n" text "\n\n"
    assert o1["total_units"] == n * per_prompt
    built = (n - 1) * (prefix_chars // 4) / o1["total_units"]  # every prompt after the first
    assert abs(r1["cache"]["offered_share"] - built) <= n * 16 / o1["total_units"]
    assert r2["cache"]["offered_share"] > 0.9
    # the mocker, a block LRU with room for all, cached round 1's shared prefix as offered
    assert r1["cache"]["client_cached_share"] == pytest.approx(
        r1["cache"]["offered_share"], abs=0.1
    )
    assert not any("not cold" in w for w in s["levels"][0]["warnings"])


@pytest.mark.slow
def test_continue_mode_offers_the_history_and_the_mocker_reuses_it(
    mocker_factory, tmp_path: Path
) -> None:
    """Short questions, long answers: round 2's reuse is mostly round 1's answers, so a
    simulator that forgot them would offer about a fifth of round 2."""
    data = tmp_path / "short.jsonl"
    with data.open("w") as f:
        for i in range(4):
            f.write(json.dumps({"id": f"s{i}", "text": f"Short question number {i}, " * 8}) + "\n")
    mock = mocker_factory("--ttft-ms", "1", "--itl-ms", "0.01", "--output-tokens", "200")
    s = _run(
        mock, tmp_path / "r", data, "--concurrency", "2", "--round2-mode", "continue",
        "--max-tokens", "200",
    )  # fmt: skip
    r1, r2 = s["levels"][0]["rounds"]
    assert r1["cache"]["offered_share"] < 0.01
    assert r2["cache"]["offered"]["total_units"] > 4 * r1["cache"]["offered"]["total_units"]
    assert r2["cache"]["offered_share"] > 0.8  # the question and the answer of round 1
    # The mocker reuses the answers too: more than round 1's prompts alone could give (so
    # forgetting the answers would be wrong), and never more than the ideal offered (here in
    # estimated units of a simpler template than the mocker's ChatML, hence the margin).
    prompts_alone = r1["cache"]["offered"]["total_units"] / r2["cache"]["offered"]["total_units"]
    measured = r2["cache"]["client_cached_share"]
    assert prompts_alone + 0.1 < measured <= r2["cache"]["offered_share"] + 0.05
