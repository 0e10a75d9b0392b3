"""The ideal-cache oracle: the LRU block cache on hand-made chains (known answers), the replay
of a round, the chat template's tokens, the report fields and sanity line, and, per shipped
workload on the bundled mocker, the expected hit rate equal to the measured one to the token."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import drbench.benchmark as benchmark
from drbench.chat_template import load_chat_template
from drbench.cli import main
from drbench.client import PreparedRequest
from drbench.levels import Level
from drbench.mocker.cache import PrefixCache
from drbench.oracle import NO_CAPACITY, LevelOracle, efficiency, replay
from drbench.records import RequestRecord
from drbench.reuse import (
    LevelReuse,
    LruCache,
    TokenizerTokenization,
    TokenUnits,
    render_chat,
)
from drbench.sanity import RoundFacts, round_warnings
from drbench.tokens import TokenizerCounter, load_counter
from tests.mocker_tokens import MockerTokenization

ROOT = Path(__file__).resolve().parent.parent
TRACE = ROOT / "datasets" / "mooncake_sample.jsonl"
QUICK = ("--ttft-ms", "1", "--itl-ms", "0.05")

# -- the LRU on hand-made chains -----------------------------------------------------------


def test_lru_evicts_the_least_recently_used_chain_first() -> None:
    lru = LruCache(4)
    lru.insert([1, 2])  # chain A, tail first: [2, 1] (oldest first)
    lru.insert([3, 4])  # chain B: [2, 1, 4, 3], full
    assert lru.lookup([1, 2]) == 2  # A is touched: [4, 3, 2, 1], B is now the older
    lru.insert([5])  # one over: B's tail (4) goes first
    assert list(lru.blocks) == [3, 2, 1, 5] and lru.evicted == 1
    assert lru.lookup([3, 4]) == 1  # B's head outlived its tail; touched: [2, 1, 5, 3]
    lru.insert([6, 7])  # two over: A goes, its tail (2) then its head (1)
    assert list(lru.blocks) == [5, 3, 7, 6] and lru.evicted == 3


def test_lru_tail_goes_before_head_within_one_chain() -> None:
    lru = LruCache(3)
    lru.insert([10, 11, 12])
    lru.insert([20])  # evicts 12, the chain's tail, not 10
    assert list(lru.blocks) == [11, 10, 20]
    assert lru.lookup([10, 11, 12]) == 2


def test_lru_capacity_edges() -> None:
    exact = LruCache(3)
    exact.insert([1, 2, 3])
    assert exact.lookup([1, 2, 3]) == 3 and exact.evicted == 0  # exactly full: nothing leaves
    small = LruCache(2)
    small.insert([1, 2, 3])  # a chain longer than the cache keeps its head
    assert small.lookup([1, 2, 3]) == 2 and small.evicted == 1
    off = LruCache(0)
    off.insert([1])
    assert off.lookup([1]) == 0 and not off.blocks  # no capacity: a disabled cache
    assert LruCache(5).lookup([]) == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.lists(st.integers(0, 6), min_size=1, max_size=6)),
        max_size=40,
    ),
    st.integers(0, 8),
)
def test_lru_is_the_mockers_cache(ops: list[tuple[bool, list[int]]], capacity: int) -> None:
    """Chains of shared stems (the integers pick a path), looked up or inserted in any order:
    the oracle's LRU holds the same blocks in the same order as the mocker's PrefixCache (which
    is built on it: this pins the mocker's token-level wrapper to the LRU's order)."""
    ours, theirs = LruCache(capacity), PrefixCache(1, capacity)
    for is_lookup, path in ops:
        chain = [hash(tuple(path[: i + 1])) for i in range(len(path))]
        if is_lookup:
            assert ours.lookup(chain) == theirs.match(chain, len(chain) + 1)
        else:
            ours.insert(chain)
            theirs.insert(chain)
        assert list(ours.blocks) == list(theirs._lru.blocks)


# -- the replay of a round ------------------------------------------------------------------


def _rec(pid: str, start: float, end: float, answer: str = "", ok: bool = True) -> RequestRecord:
    return RequestRecord(
        pid, "concurrency=2", 1, start_ms=start, end_ms=end, output_text=answer,
        error_kind=None if ok else "http",
    )  # fmt: skip


def _oracle(capacity_tokens: int, block: int = 4) -> LevelOracle:
    reuse = LevelReuse(block, "server", tokenization=MockerTokenization())
    return LevelOracle.for_level(reuse, capacity_tokens)


def _req(pid: str, words: int, tag: str = "w") -> PreparedRequest:
    """A completions prompt of ``words`` toy tokens (a space and three letters each)."""
    text = "".join(f" {tag}{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(words))
    return PreparedRequest.of(pid, {"prompt": text})


def test_replay_counts_whole_blocks_and_inserts_answers_when_requests_end() -> None:
    """Three equal 9-token prompts, blocks of 4, room for 4 blocks: each later one hits the 2
    whole blocks; the second's answer enters when it ends, tail first, so the cache overflows
    at the answer's tail, never at the shared head."""
    oracle = _oracle(capacity_tokens=16)  # 4 blocks of 4 tokens
    a, b = _req("a", 9), _req("b", 9)  # the same 9 tokens: 2 reusable blocks each
    c = _req("c", 9)
    offered = oracle.before([a, b, c])
    assert (offered.reused, offered.total) == (16, 27)  # b and c reuse a's 8 tokens
    answer = "".join(f" x{chr(97 + i)}" for i in range(12))  # 12 tokens: 3 more blocks
    exp = oracle.after(
        [_rec("a", 0, 5), _rec("b", 6, 9, answer), _rec("c", 10, 12)], answers_reused=False
    )
    assert exp is not None
    # a: cold; b: 8 hit; b's end inserts its 21 tokens' 5 full blocks into 4 tail first, so
    # the answer's last block goes and the shared head P1 P2 stays: c hits 8 again.
    assert (exp.cached, exp.total, exp.requests) == (16, 27, 3)
    assert exp.share == pytest.approx(16 / 27)


def test_replay_evicts_a_prefix_before_it_comes_back() -> None:
    """d0 d1 d0 with room for one document: the second d0 finds nothing (interleaved)."""
    oracle = _oracle(capacity_tokens=12)  # 3 blocks
    reqs = [_req("p0", 13, "d"), _req("p1", 13, "e"), _req("p2", 13, "d")]
    reqs[2] = PreparedRequest.of("p2", reqs[0].payload)
    assert oracle.before(reqs).reused == 12  # unlimited: p2 reuses p0's 3 blocks
    exp = oracle.after([_rec("p0", 0, 1), _rec("p1", 2, 3), _rec("p2", 4, 5)], answers_reused=False)
    assert exp is not None and exp.cached == 0
    roomy = _oracle(capacity_tokens=24)  # 6 blocks: both documents fit
    roomy.before(reqs)
    exp = roomy.after([_rec("p0", 0, 1), _rec("p1", 2, 3), _rec("p2", 4, 5)], answers_reused=False)
    assert exp is not None and exp.cached == 12


def test_replay_orders_by_record_times_and_skips_failures() -> None:
    """Concurrency 2: b starts before a ends, so it finds a's prompt blocks (cached when a was
    scheduled, as vLLM v1 does) ; a failed request neither counts nor caches."""
    reqs = [_req("a", 9), _req("b", 9), _req("c", 9)]
    cache = LruCache(100)
    tokens = MockerTokenization()
    oracle = _oracle(400)
    oracle.before(reqs)
    cached, total, n, chains = replay(
        oracle._sent, [_rec("a", 0, 10), _rec("b", 1, 2), _rec("c", 3, 4, ok=False)], cache,
        tokens, 4,
    )  # fmt: skip
    assert (cached, total, n, len(chains)) == (8, 18, 2, 2)


def test_no_capacity_no_expected_and_efficiency() -> None:
    oracle = LevelOracle.for_level(LevelReuse(16, "default"), None)
    oracle.before([_req("a", 40)])
    assert oracle.after([_rec("a", 0, 1)], answers_reused=False) is None
    assert efficiency(0.3, 0.6) == 0.5
    assert efficiency(None, 0.6) is None and efficiency(0.3, 0.0) is None


# -- the chat template ----------------------------------------------------------------------

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def chatml_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A word-level tokenizer with ChatML special tokens, and a tokenizer_config.json whose
    chat_template is ChatML."""
    import tokenizers

    words = ["hello", "there", "user", "assistant", "system", "again", "\n"]
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(words)}}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    folder = tmp_path_factory.mktemp("chatml")
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": CHATML}))
    return folder


def test_chat_template_tokens_are_counted_when_the_folder_has_one(chatml_folder: Path) -> None:
    counter = load_counter(str(chatml_folder))
    assert isinstance(counter, TokenizerCounter)
    template = load_chat_template(str(chatml_folder))
    assert template is not None and template.engine in ("jinja2", "transformers")
    messages = [{"role": "user", "content": "hello there"}]
    payload = {"messages": messages}
    with_template = TokenizerTokenization(counter, template).prompt(payload)
    without = TokenizerTokenization(counter).prompt(payload)
    rendered = "<|im_start|>user\nhello there<|im_end|>\n<|im_start|>assistant\n"
    assert template.render(messages) == rendered
    assert with_template == TokenUnits(counter.encode(rendered))
    # <|im_start|> user hello there <|im_end|> <|im_start|> assistant (the pre-tokenizer drops
    # newlines): 7, where the simple template ("user\nhello there\n\n") gives 3
    assert (with_template.count, without.count) == (7, 3)
    assert without == TokenUnits(counter.encode(render_chat(messages)))
    # once answered, the server holds the prompt's ids, then the answer's
    held = TokenizerTokenization(counter, template).held(payload, with_template, "hello again")
    assert isinstance(held, TokenUnits) and list(held.ids[:7]) == list(with_template.ids)
    assert held.count == 9


def test_a_folder_without_a_template_and_a_broken_one(tmp_path: Path, chatml_folder) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "tokenizer.json").write_text((chatml_folder / "tokenizer.json").read_text())
    assert load_chat_template(str(bare)) is None
    assert load_chat_template(str(bare / "tokenizer.json")) is None
    (bare / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{% for %}"}))
    from drbench.errors import UsageError

    with pytest.raises(UsageError, match=r"--tokenizer .*bare: its chat template .* fails"):
        load_chat_template(str(bare))


def test_the_run_counts_the_template_tokens(fast_mocker, tmp_path: Path, chatml_folder) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"id": "p", "text": "hello there " * 20}) + "\n")
    s = _run(
        fast_mocker, tmp_path / "r", "--dataset", str(data), "--tokenizer", str(chatml_folder),
        "--cold-start", "none",
    )  # fmt: skip
    offered = s["levels"][0]["rounds"][0]["cache"]["offered"]
    assert offered["unit"] == "tokens"
    assert offered["total_units"] == 40 + 5  # the words, and the ChatML tokens around them


# -- the report fields and the sanity line --------------------------------------------------


def _run(mock: Any, out: Path, *extra: str) -> dict[str, Any]:
    argv = [
        "--endpoint", mock.base_url + "/v1/chat/completions", "--output-dir", str(out),
        "--no-plots", "--quiet", "--concurrency", "1", *extra,
    ]  # fmt: skip
    assert main(argv) == 0
    return json.loads((out / "summary.json").read_text())


def test_the_report_fields_without_and_with_a_capacity(fast_mocker, tmp_path: Path, capsys) -> None:
    data = tmp_path / "d.jsonl"
    with data.open("w") as f:
        for i in range(3):
            f.write(json.dumps({"id": f"q{i}", "text": "shared words " * 40 + f"q {i}"}) + "\n")
    s = _run(fast_mocker, tmp_path / "a", "--dataset", str(data))
    cache = s["levels"][0]["rounds"][1]["cache"]
    assert cache["attainable"] == cache["offered_share"] > 0.5
    assert cache["expected"] is None and cache["oracle"]["expected_missing"] == NO_CAPACITY
    assert cache["efficiency"] == pytest.approx(cache["client_cached_share"] / cache["attainable"])
    assert cache["oracle"]["efficiency_measured"] == "usage"
    s = _run(
        fast_mocker, tmp_path / "b", "--dataset", str(data), "--cache-capacity-tokens", "4096",
        "--cache-block-size", "32",
    )  # fmt: skip
    cache = s["levels"][0]["rounds"][1]["cache"]
    exp = cache["oracle"]["expected"]
    assert exp["capacity_tokens"] == 4096 and exp["capacity_source"] == "flag"
    assert exp["block_size"] == 32 and exp["block_size_source"] == "flag"
    assert exp["capacity_blocks"] == 128 and exp["requests"] == 3
    assert cache["expected"] == pytest.approx(exp["cached_units"] / exp["total_units"])
    assert cache["offered"]["block_size_source"] == "flag"
    with (tmp_path / "b" / "metrics_summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert float(rows[1]["cache_expected"]) == pytest.approx(cache["expected"])
    assert rows[1]["cache_oracle_expected_capacity_tokens"] == "4096"
    assert float(rows[1]["cache_efficiency"]) == pytest.approx(cache["efficiency"])
    with (tmp_path / "a" / "metrics_summary.csv").open() as f:
        first = next(csv.DictReader(f))
    assert set(rows[0]) == set(first)  # the same columns, computed or not
    capsys.readouterr()
    main([
        "--endpoint", fast_mocker.base_url + "/v1/chat/completions", "--output-dir",
        str(tmp_path / "c"), "--no-plots", "--concurrency", "1", "--dataset", str(data),
        "--cache-capacity-tokens", "4096", "--verbose",
    ])  # fmt: skip
    out = capsys.readouterr().out  # --verbose: the full round table holds the oracle's lines
    assert "Expected hit rate (an LRU of 4096 tokens from the flag, replayed on the round): " in out
    assert "Cache efficiency (usage cached share / offered share): " in out
    assert "Expected hit" in out and "Eff." in out  # the comparison and the summary table


@pytest.mark.parametrize("flag", ["--cache-capacity-tokens", "--cache-block-size"])
def test_the_flags_refuse_a_bad_number_in_one_line(flag: str, capsys) -> None:
    assert main(["--endpoint", "http://127.0.0.1:9/v1/completions", flag, "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0]


def _facts(usage: float, expected: float | None, offered: float = 0.9) -> RoundFacts:
    return RoundFacts(
        level=Level.closed(4), round=2, records=[], client_cached_share=usage,
        server_hit_rate=None, cold_start="nonce", offered_share=offered,
        expected_share=expected, expected_capacity_tokens=None if expected is None else 8192,
    )  # fmt: skip


def test_the_below_offered_line_names_the_cause_the_expected_rate_points_to() -> None:
    (plain,) = round_warnings(_facts(0.2, None))
    assert "offered prefix share 90.0%). Likely cause:" in plain
    assert "the cache holds less than the round's working set" in plain
    (capacity,) = round_warnings(_facts(0.2, 0.25))
    assert "expected 25.0% from an LRU of 8192 tokens). Likely cause: the cache holds less" in (
        capacity
    )
    (policy,) = round_warnings(_facts(0.2, 0.85))
    assert "expected 85.0% from an LRU of 8192 tokens), far below what its capacity allows" in (
        policy
    )
    assert "an eviction policy that keeps less than LRU, a router spreads" in policy
    assert "working set" not in policy
    assert round_warnings(_facts(0.6, 0.85)) == []  # more than half of the offered: no line
    assert sum("reused less than half" in w for w in round_warnings(_facts(0.2, 0.85))) == 1


# -- the mocker: expected equals measured, to the token, for every shipped workload ------------

WORKLOADS = {
    "shared-prefix": (
        ["groups=3", "prompts=3", "prefix=120", "suffix=20", "output=24"], "320",
    ),
    "long-doc": (
        ["docs=3", "doc=200", "questions=2", "question=10", "answer=24", "order=interleaved"],
        "480",
    ),
    "sessions": (
        ["users=3", "rounds=3", "system=60", "history=120", "question=10", "answer=60"], "640",
    ),
    "mooncake": ([f"trace={TRACE}", "limit=16", "block=64"], "1024"),
}  # fmt: skip


def _measured(out: Path) -> dict[int, tuple[int, int]]:
    """(cached tokens, prompt tokens) per round from requests.jsonl's usage."""
    got: dict[int, tuple[int, int]] = {}
    for line in (out / "requests.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r.get("round") and r.get("error_kind") is None:
            cached, prompt = got.get(r["round"], (0, 0))
            got[r["round"]] = (cached + r["cached_tokens"], prompt + r["prompt_tokens"])
    return got


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_expected_equals_measured_on_the_mocker(
    name: str, mocker_factory, tmp_path: Path, monkeypatch
) -> None:
    """At concurrency 1, against a mocker whose cache is too small for the workload's working
    set (so the LRU evicts), with the mocker's own tokenization: the expected hit rate's
    cached and total tokens are the usage's, summed, in every round."""
    items, capacity = WORKLOADS[name]
    header = "<|im_start|>system\nmock header<|im_end|>\n"
    mock = mocker_factory(
        *QUICK, "--output-tokens", "100-180", "--cache-capacity-tokens", capacity,
        "--block-size", "16", "--chat-template-header", header,
    )  # fmt: skip
    prepare = benchmark.Benchmark._prepare  # bound to the class: the original

    def with_mocker_tokens(cls: type, cfg: Any) -> benchmark.Benchmark:
        bench = prepare(cfg)
        bench.tokenization = MockerTokenization(header)
        return bench

    monkeypatch.setattr(benchmark.Benchmark, "_prepare", classmethod(with_mocker_tokens))
    out = tmp_path / "r"
    s = _run(
        mock, out, "--workload", name, *items, "--prometheus-url", mock.base_url + "/metrics",
        "--max-tokens", "180", "--seed", "3",
    )  # fmt: skip
    measured = _measured(out)
    rounds = s["levels"][0]["rounds"]
    assert len(rounds) >= 2
    below = 0
    for r in rounds:
        exp = r["cache"]["oracle"]["expected"]
        assert exp["capacity_tokens"] == int(capacity) and exp["capacity_source"] == "server"
        assert exp["unit"] == "tokens" and exp["block_size"] == 16
        assert (exp["cached_units"], exp["total_units"]) == measured[r["round"]], r["round"]
        below += r["cache"]["expected"] < r["cache"]["attainable"] - 0.05
    assert below  # the capacity mattered in some round: a real test of the LRU
