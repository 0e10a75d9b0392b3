"""The workload generators (drbench/workloads): structure, exact lengths, seeds, offered share.

Lengths are checked three ways: the documented estimate, the bundled mocker's toy tokenizer,
and a real byte-level BPE trained here, offline, on a small corpus and loaded through
drbench.tokens.load_counter exactly as ``--tokenizer`` loads one.
"""

from __future__ import annotations

import itertools
import json
import random
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drbench.dataset import parse_record
from drbench.errors import DatasetError, UsageError
from drbench.mocker.tokenizer import tokenize
from drbench.tokens import EstimateCounter, TokenCounter, TokenizerCounter, load_counter
from drbench.workloads import Workload, generate, parse_workload, workload_help
from drbench.workloads.mooncake import read_trace
from drbench.workloads.mooncake_sample import make_sample, sample_text
from drbench.workloads.synth import MIN_WORDS, Synth, vocabulary

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "datasets" / "mooncake_sample.jsonl"
ESTIMATE = EstimateCounter()


@pytest.fixture(scope="module")
def bpe(tmp_path_factory: pytest.TempPathFactory) -> TokenizerCounter:
    """A byte-level BPE (GPT-2 style pre-tokenizer) trained on random 3-letter words."""
    import tokenizers

    rng = random.Random(1)
    triples = ["".join(t) for t in itertools.product(string.ascii_lowercase, repeat=3)]
    words = rng.sample(triples, 500) + "the quick brown fox jumps over lazy dog water".split()
    corpus = [" ".join(rng.choices(words, k=60)) for _ in range(1500)]
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=2000,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    path = tmp_path_factory.mktemp("bpe") / "tokenizer.json"
    tok.save(str(path))
    counter = load_counter(str(path))
    assert isinstance(counter, TokenizerCounter)
    return counter


def make(name: str, *items: str, counter: TokenCounter = ESTIMATE, seed: int = 0) -> Workload:
    return generate(parse_workload(name, list(items)), counter=counter, seed=seed)


def texts(record: dict[str, Any]) -> str:
    """The prompt text a record carries in round 1 (messages' contents joined)."""
    if "text" in record:
        return str(record["text"])
    return "".join(m["content"] for m in record["messages"])


def brute_offered(records: list[dict[str, Any]], tokens: Callable[[str], list[Any]]) -> float:
    """Round 1's reusable share by brute force: each prompt's longest common token prefix with
    any prompt sent before it, over all prompt tokens."""
    seqs = [tokens(texts(r)) for r in records]
    reused = 0
    for i, seq in enumerate(seqs):
        best = 0
        for earlier in seqs[:i]:
            n = 0
            for a, b in zip(seq, earlier, strict=False):
                if a != b:
                    break
                n += 1
            best = max(best, n)
        reused += best
    return reused / sum(map(len, seqs))


def words(text: str) -> list[str]:
    return text.split(" ")[1:]  # every word has its leading space


def mocker_count(text: str) -> int:
    return len(tokenize(text))


# -- synth -------------------------------------------------------------------------------------


def test_every_estimate_word_is_one_token_for_the_estimate_and_the_mocker():
    vocab = vocabulary(ESTIMATE)
    assert len(vocab) == 26**3 and all(len(w) == 4 and w[0] == " " for w in vocab)
    assert all(ESTIMATE.count(w) == 1 and mocker_count(w) == 1 for w in vocab)
    synth = Synth.create(ESTIMATE, workload="t", seed=0, blocks=10)
    for n in (1, 2, 3, 7, 100, 513):
        text = synth.block("b", n, n)
        assert ESTIMATE.count(text) == n and mocker_count(text) == n
        assert len(text) == 4 * n


def test_bpe_words_are_single_tokens_and_blocks_are_exact(bpe: TokenizerCounter):
    vocab = vocabulary(bpe)
    assert len(vocab) >= MIN_WORDS
    assert all(bpe.count(w) == 1 for w in vocab)
    synth = Synth.create(bpe, workload="t", seed=3, blocks=10)
    for n in (1, 5, 300):
        assert bpe.count(synth.block("b", n, n)) == n


def test_distinct_blocks_differ_from_the_first_word():
    synth = Synth.create(ESTIMATE, workload="t", seed=0, blocks=2000)
    firsts = {synth.block(f"b{i}", i, 3).split(" ")[1] for i in range(2000)}
    assert len(firsts) == 2000


def test_heads_widen_past_the_vocabulary_and_stay_distinct():
    synth = Synth.create(ESTIMATE, workload="t", seed=0, blocks=26**3 + 5)
    assert synth.width == 2
    a, b = synth.block("x", 1, 4), synth.block("y", 1 + 26**3, 4)
    assert a.split(" ")[1] == b.split(" ")[1] and a.split(" ")[2] != b.split(" ")[2]


def test_a_tokenizer_with_too_few_single_token_words_is_one_line():
    counter = TokenizerCounter("tokenizer tiny.json", lambda t: list(t.encode()), lambda i: "")
    with pytest.raises(UsageError) as exc:
        vocabulary(counter)
    msg = str(exc.value)
    assert "\n" not in msg and "tokenizer tiny.json" in msg and "--tokenizer" in msg
    assert f"need {MIN_WORDS}" in msg


def test_a_tokenizer_that_cannot_hit_the_length_is_one_line():
    # one token per word alone, but 2n-1 for n words: even totals cannot be made
    def encode(text: str) -> list[int]:
        n = len(text.split())
        return [0] * (2 * n - 1 if n else 0)

    counter = TokenizerCounter("tokenizer odd.json", encode, lambda i: "")
    with pytest.raises(UsageError) as exc:
        make("shared-prefix", "groups=1", "prompts=1", "prefix=4", counter=counter)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("--workload shared-prefix: cannot make")
    assert "exactly 4 tokens" in msg and "tokenizer odd.json" in msg


def test_a_merging_tokenizer_gets_its_unique_tail_fixed_not_the_shared_block():
    """A tokenizer that makes some word pairs one token: the prompt is still exact, and the
    shared prefix is the same string in every prompt of its group."""

    def encode(text: str) -> list[int]:
        ws = text.split()
        merged = sum(1 for a, b in zip(ws, ws[1:], strict=False) if a[0] == b[0])
        return [0] * (len(ws) - merged)

    counter = TokenizerCounter("tokenizer merge.json", encode, lambda i: "")
    w = make("shared-prefix", "groups=3", "prompts=4", "prefix=50", "suffix=30", counter=counter)
    for r in w.records:
        assert counter.count(r["text"]) == 80
    assert any(len(r["text"].split()) > 80 for r in w.records)  # the fix-up had work to do
    by_group: dict[str, list[str]] = {}
    for r in w.records:
        by_group.setdefault(r["prefix_group"], []).append(r["text"])
    for group in by_group.values():
        prefix = " ".join(group[0].split(" ")[: 1 + _prefix_words(group)])
        assert all(t.startswith(prefix) for t in group) and counter.count(prefix) == 50


def _prefix_words(group: list[str]) -> int:
    """Words all texts of a group share from the start."""
    split = [t.split(" ")[1:] for t in group]
    n = 0
    while all(len(s) > n and s[n] == split[0][n] for s in split):
        n += 1
    return n


# -- shared-prefix -----------------------------------------------------------------------------


def test_shared_prefix_defaults_mirror_sglang():
    p = parse_workload("shared-prefix", [])
    assert (p.groups, p.prompts, p.prefix, p.suffix, p.output, p.order) == (
        64,
        16,
        2048,
        128,
        256,
        "random",
    )


@pytest.mark.parametrize("counter_name", ["estimate", "bpe"])
def test_shared_prefix_structure_and_lengths(counter_name: str, request: pytest.FixtureRequest):
    counter = ESTIMATE if counter_name == "estimate" else request.getfixturevalue("bpe")
    w = make(
        "shared-prefix", "groups=4", "prompts=3", "prefix=60", "suffix=9", "output=7",
        "order=grouped", counter=counter,
    )  # fmt: skip
    assert [r["id"] for r in w.records] == [f"g{g}-p{q}" for g in range(4) for q in range(3)]
    assert all(r["max_tokens"] == 7 and r["prefix_group"] == r["id"][:2] for r in w.records)
    assert all(counter.count(r["text"]) == 69 for r in w.records)
    if counter_name == "estimate":
        assert all(mocker_count(r["text"]) == 69 for r in w.records)
    groups = [w.records[g * 3 : g * 3 + 3] for g in range(4)]
    prefixes = []
    for group in groups:
        shared = _prefix_words([r["text"] for r in group])
        prefix = "".join(" " + x for x in words(group[0]["text"])[:shared])
        assert all(r["text"].startswith(prefix) for r in group)  # byte-identical prefix
        assert counter.count(prefix) == 60
        prefixes.append(prefix)
    assert len({p.split(" ")[1] for p in prefixes}) == 4  # groups share no leading word
    bodies = {r["text"][len(prefixes[int(r["id"][1])]) :].split(" ", 2)[2] for r in w.records}
    assert len(bodies) == 12  # each suffix draws its own words, not only its own first word
    assert w.implied == {}
    assert w.offered_round1 == pytest.approx(4 * 2 * 60 / (12 * 69))
    tokens = words if counter_name == "estimate" else counter.encode
    assert brute_offered(w.records, tokens) == pytest.approx(w.offered_round1, rel=1e-12)
    assert w.describe() == (
        "shared-prefix: 4 groups x 3 prompts, prefix 60 + suffix 9 tokens, grouped order, "
        "12 prompts, offered prefix share in round 1 58.0%"
    )


def test_shared_prefix_orders():
    grouped = make("shared-prefix", "groups=3", "prompts=2", "prefix=8", "order=grouped")
    ids = {r["id"]: r for r in grouped.records}
    inter = make("shared-prefix", "groups=3", "prompts=2", "prefix=8", "order=interleaved")
    assert [r["id"] for r in inter.records] == [
        "g0-p0",
        "g1-p0",
        "g2-p0",
        "g0-p1",
        "g1-p1",
        "g2-p1",
    ]
    assert all(r == ids[r["id"]] for r in inter.records)  # same records, other order
    rand = make("shared-prefix", "groups=3", "prompts=2", "prefix=8")
    assert sorted(r["id"] for r in rand.records) == sorted(ids)
    assert [r["id"] for r in rand.records] != [r["id"] for r in grouped.records]
    assert rand == make("shared-prefix", "groups=3", "prompts=2", "prefix=8")
    assert rand.offered_round1 == grouped.offered_round1 == inter.offered_round1
    assert brute_offered(rand.records, words) == pytest.approx(rand.offered_round1, rel=1e-12)


def test_seeds_reproduce_and_differ():
    a = make("shared-prefix", "groups=2", "prompts=2", "prefix=20", seed=7)
    b = make("shared-prefix", "groups=2", "prompts=2", "prefix=20", seed=7)
    c = make("shared-prefix", "groups=2", "prompts=2", "prefix=20", seed=8)
    assert json.dumps(a.records) == json.dumps(b.records)
    by_id = {r["id"]: r["text"] for r in c.records}
    assert all(r["text"].split(" ")[1] != by_id[r["id"]].split(" ")[1] for r in a.records)


# -- sessions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("counter_name", ["estimate", "bpe"])
def test_sessions_structure_and_lengths(counter_name: str, request: pytest.FixtureRequest):
    counter = ESTIMATE if counter_name == "estimate" else request.getfixturevalue("bpe")
    w = make(
        "sessions", "users=4", "rounds=3", "system=50", "history=30", "question=6", "answer=9",
        counter=counter,
    )  # fmt: skip
    assert [r["id"] for r in w.records] == ["user-0", "user-1", "user-2", "user-3"]
    assert w.implied == {"rounds": 3, "round2_mode": "continue"}
    systems = {r["messages"][0]["content"] for r in w.records}
    assert len(systems) == 1 and counter.count(systems.pop()) == 50
    for r in w.records:
        assert [m["role"] for m in r["messages"]] == ["system", "user"]
        assert counter.count(r["messages"][1]["content"]) == 36
        assert len(r["followups"]) == 2 and all(counter.count(f) == 6 for f in r["followups"])
        assert r["max_tokens"] == 9 and r["prefix_group"] == "shared"
        if counter_name == "estimate":
            assert mocker_count(r["messages"][1]["content"]) == 36
            assert all(mocker_count(f) == 6 for f in r["followups"])
    firsts = {r["messages"][1]["content"].split(" ")[1] for r in w.records}
    assert len(firsts) == 4  # private histories share no leading word
    assert w.offered_round1 == pytest.approx(3 * 50 / (4 * 86))
    tokens = words if counter_name == "estimate" else counter.encode
    assert brute_offered(w.records, tokens) == pytest.approx(w.offered_round1, rel=1e-12)


def test_sessions_defaults_mirror_lmcache_and_system_zero_drops_the_system_turn():
    p = parse_workload("sessions", [])
    assert (p.users, p.rounds, p.system, p.history, p.question, p.answer) == (
        10,
        5,
        1000,
        2000,
        20,
        100,
    )
    w = make("sessions", "users=2", "system=0", "history=5", "question=3")
    assert all([m["role"] for m in r["messages"]] == ["user"] for r in w.records)
    assert w.offered_round1 == 0


# -- long-doc ----------------------------------------------------------------------------------


@pytest.mark.parametrize("counter_name", ["estimate", "bpe"])
def test_long_doc_structure_and_lengths(counter_name: str, request: pytest.FixtureRequest):
    counter = ESTIMATE if counter_name == "estimate" else request.getfixturevalue("bpe")
    w = make(
        "long-doc", "docs=3", "doc=200", "questions=2", "question=10", "answer=5",
        "order=interleaved", counter=counter,
    )  # fmt: skip
    assert [r["id"] for r in w.records] == ["d0-q0", "d1-q0", "d2-q0", "d0-q1", "d1-q1", "d2-q1"]
    assert all(counter.count(r["text"]) == 210 and r["max_tokens"] == 5 for r in w.records)
    if counter_name == "estimate":
        assert all(mocker_count(r["text"]) == 210 for r in w.records)
    for d in range(3):
        first, second = w.records[d]["text"], w.records[d + 3]["text"]
        assert w.records[d]["prefix_group"] == w.records[d + 3]["prefix_group"] == f"d{d}"
        common = _prefix_words([first, second])
        assert counter.count("".join(" " + x for x in words(first)[:common])) == 200
    assert len({r["text"].split(" ")[1] for r in w.records[:3]}) == 3
    assert w.offered_round1 == pytest.approx(3 * 200 / (6 * 210))
    tokens = words if counter_name == "estimate" else counter.encode
    assert brute_offered(w.records, tokens) == pytest.approx(w.offered_round1, rel=1e-12)


def test_long_doc_defaults_mirror_lmcache_and_grouped_order():
    p = parse_workload("long-doc", [])
    assert (p.docs, p.doc, p.questions, p.answer, p.order) == (8, 20000, 2, 100, "random")
    w = make("long-doc", "docs=2", "doc=10", "questions=3", "order=grouped")
    assert [r["id"] for r in w.records] == [f"d{d}-q{k}" for d in range(2) for k in range(3)]


# -- mooncake ----------------------------------------------------------------------------------


def test_the_shipped_sample_is_what_the_package_makes():
    assert SAMPLE.read_text(encoding="utf-8") == sample_text()
    lines = make_sample()
    assert len(lines) == 200 and 15_000 < lines[-1]["timestamp"] < 30_000
    assert all(512 <= x["input_length"] <= 4096 for x in lines)
    firsts = [x["hash_ids"][0] for x in lines]
    assert max(firsts.count(h) for h in set(firsts)) > 20  # some prefixes are widely shared
    depths = {len(x["hash_ids"]) for x in lines}
    assert depths == set(range(1, 9))


def _trace(tmp_path: Path, lines: list[Any], name: str = "trace.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def test_mooncake_sample_blocks_are_identical_for_equal_hash_ids():
    w = make("mooncake", f"trace={SAMPLE}")
    assert w.implied == {"fixed_schedule": True} and len(w.records) == 200
    seen: dict[int, list[str]] = {}
    for line, r in zip(make_sample(), w.records, strict=True):
        ws = words(r["text"])
        assert ESTIMATE.count(r["text"]) == line["input_length"] == len(ws)
        assert r["max_tokens"] == line["output_length"]
        assert r["prefix_group"] == f"h{line['hash_ids'][0]}"
        for j, hid in enumerate(line["hash_ids"]):
            part = ws[j * 512 : (j + 1) * 512]
            full = seen.setdefault(hid, part)
            if len(part) == 512 and len(full) < 512:
                seen[hid] = full = part
            assert full[: len(part)] == part  # the same block (a cut one is its prefix)
    assert w.records[0]["timestamp"] == 0 and w.records[0]["id"] == "t-000000"
    t0 = make_sample()[0]["timestamp"]
    assert [r["timestamp"] for r in w.records] == [x["timestamp"] - t0 for x in make_sample()]
    assert brute_offered(w.records, words) == pytest.approx(w.offered_round1, rel=1e-12)
    assert 0.3 < w.offered_round1 < 0.7
    assert mocker_count(w.records[5]["text"]) == make_sample()[5]["input_length"]


def test_mooncake_with_a_tokenizer_is_exact(bpe: TokenizerCounter):
    w = make("mooncake", f"trace={SAMPLE}", "limit=30", "block=64", counter=bpe)
    lines = make_sample()[:30]
    assert [bpe.count(r["text"]) for r in w.records] == [x["input_length"] for x in lines]
    assert brute_offered(w.records, bpe.encode) == pytest.approx(w.offered_round1, rel=1e-12)


def test_mooncake_inconsistent_lines_get_unique_padding(tmp_path: Path):
    path = _trace(
        tmp_path,
        [
            {"timestamp": 0, "input_length": 10, "output_length": 3, "hash_ids": [7]},
            {"timestamp": 5, "input_length": 10, "output_length": 3, "hash_ids": [7]},
            {"timestamp": 9, "input_length": 6, "output_length": 3, "hash_ids": []},
            {"timestamp": 9, "input_length": 3, "output_length": 3, "hash_ids": [7, 8, 9]},
        ],
    )
    w = make("mooncake", f"trace={path}", "block=4")
    a, b, c, d = (words(r["text"]) for r in w.records)
    assert [len(x) for x in (a, b, c, d)] == [10, 10, 6, 3]
    assert a[:4] == b[:4] and a[4] != b[4]  # block 7, then each line's own padding
    assert d == a[:3] and w.records[2]["prefix_group"] == "t-000002"
    assert w.offered_round1 == pytest.approx((4 + 3) / 29)
    assert brute_offered(w.records, words) == pytest.approx(w.offered_round1, rel=1e-12)


def test_mooncake_window_and_limit(tmp_path: Path):
    lines = [
        {"timestamp": t, "input_length": 4, "output_length": 1, "hash_ids": [i]}
        for i, t in enumerate([0, 1000, 2500, 3000, 4200, 5000])
    ]
    path = _trace(tmp_path, lines)
    w = make("mooncake", f"trace={path}", "block=4", "start=1", "end=4.2")
    assert [r["timestamp"] for r in w.records] == [0, 1500, 2000]
    assert [r["prefix_group"] for r in w.records] == ["h1", "h2", "h3"]
    w = make("mooncake", f"trace={path}", "block=4", "start=2", "limit=2")
    assert [r["prefix_group"] for r in w.records] == ["h2", "h3"]
    with pytest.raises(DatasetError, match="no request in the window"):
        make("mooncake", f"trace={path}", "start=6")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ({"timestamp": 1, "input_length": 4, "output_length": 1}, "missing 'hash_ids'"),
        ([1, 2], "expected a JSON object, got list"),
        ({"timestamp": "1", "input_length": 4, "output_length": 1, "hash_ids": []}, "'timestamp'"),
        ({"timestamp": -1, "input_length": 4, "output_length": 1, "hash_ids": []}, "'timestamp'"),
        ({"timestamp": 1, "input_length": -4, "output_length": 1, "hash_ids": []}, "'input_length'"),
        ({"timestamp": 1, "input_length": 4, "output_length": 1.5, "hash_ids": []}, "'output_length'"),
        ({"timestamp": 1, "input_length": True, "output_length": 1, "hash_ids": []}, "'input_length'"),
        ({"timestamp": 1, "input_length": 4, "output_length": 1, "hash_ids": 3}, "'hash_ids'"),
        ({"timestamp": 1, "input_length": 4, "output_length": 1, "hash_ids": [1, -2]}, "'hash_ids[1]'"),
        ({"timestamp": 0, "input_length": 4, "output_length": 1, "hash_ids": [1]}, "before the previous"),
    ],
)  # fmt: skip
def test_mooncake_bad_lines_are_one_line_naming_file_and_line(
    tmp_path: Path, line: Any, expected: str
):
    good = {"timestamp": 5, "input_length": 4, "output_length": 1, "hash_ids": [0]}
    path = _trace(tmp_path, [good, line, good])
    with pytest.raises(DatasetError) as exc:
        make("mooncake", f"trace={path}")
    msg = str(exc.value)
    assert msg.startswith(f"{path}:2: ") and expected in msg and "\n" not in msg


def test_mooncake_missing_trace_names_the_key(tmp_path: Path):
    with pytest.raises(DatasetError) as exc:
        make("mooncake", f"trace={tmp_path / 'nope.jsonl'}")
    assert "no such file" in str(exc.value) and "--workload mooncake trace=" in str(exc.value)


def test_mooncake_refuses_a_trace_over_a_gibibyte_of_text(tmp_path: Path):
    huge = {"timestamp": 0, "input_length": 200_000_000, "output_length": 1, "hash_ids": [0]}
    path = _trace(tmp_path, [huge, huge])
    with pytest.raises(UsageError) as exc:
        make("mooncake", f"trace={path}")
    msg = str(exc.value)
    assert f"{path}:2" in msg and "limit=" in msg and "end=" in msg and "\n" not in msg
    assert len(read_trace(parse_workload("mooncake", [f"trace={path}", "limit=1"]))) == 1


# -- every record is a benchmark record --------------------------------------------------------


def test_every_record_parses_as_a_dataset_record():
    made = [
        make("shared-prefix", "groups=2", "prompts=2", "prefix=5"),
        make("sessions", "users=2", "rounds=2", "system=5", "history=5"),
        make("long-doc", "docs=2", "doc=5"),
        make("mooncake", f"trace={SAMPLE}", "limit=5"),
    ]
    keys = {
        "shared-prefix": {"id", "text", "max_tokens", "prefix_group"},
        "sessions": {"id", "messages", "followups", "max_tokens", "prefix_group"},
        "long-doc": {"id", "text", "max_tokens", "prefix_group"},
        "mooncake": {"id", "text", "max_tokens", "prefix_group", "timestamp"},
    }
    for w in made:
        for n, r in enumerate(w.records):
            assert set(r) == keys[w.name]
            json.dumps(r)  # JSONL-ready
            prompt = parse_record(r, where=f"{w.name}:{n}", default_id=str(n))
            assert prompt.id == r["id"] and prompt.max_tokens == r["max_tokens"]


# -- parameters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "items", "expected"),
    [
        ("shared-prefx", [], "unknown workload; did you mean shared-prefix?"),
        ("nope", [], "unknown workload; choose from shared-prefix, sessions, long-doc, mooncake"),
        ("shared-prefix", ["group=3"], "unknown key 'group'; did you mean groups?"),
        ("shared-prefix", ["groups"], "'groups' is not key=value; write e.g. groups=64"),
        ("shared-prefix", ["groups=x"], "groups=x: expected an integer"),
        ("shared-prefix", ["groups=0"], "groups=0 is out of range; give an integer from 1 to 100000"),
        ("shared-prefix", ["order=shuffled"], "order=shuffled: expected one of random, grouped, interleaved"),
        ("shared-prefix", ["groups=2", "groups=3"], "groups= given twice"),
        ("long-doc", ["order=tile"], "LMCache's --repeat-mode name; drbench calls that order interleaved"),
        ("long-doc", ["order=interleave"], "drbench calls that order grouped"),
        ("sessions", ["rounds=1"], "rounds=1 is out of range; give an integer from 2 to 1000"),
        ("mooncake", [], "needs trace=... (the trace JSONL"),
        ("mooncake", ["trace=t", "start=x"], "start=x: expected a number"),
        ("mooncake", ["trace=t", "start=-1"], "start=-1.0 is out of range; give a number >= 0"),
        ("mooncake", ["trace=t", "limit=0"], "limit=0 is out of range; give an integer >= 1"),
        ("mooncake", ["trace=t", "start=5", "end=2"], "end=2.0 is not after start=5.0"),
        ("mooncake", ["trace="], "trace=: expected a file path"),
    ],
)  # fmt: skip
def test_bad_parameters_are_one_line(name: str, items: list[str], expected: str):
    with pytest.raises(UsageError) as exc:
        parse_workload(name, items)
    msg = str(exc.value)
    assert msg.startswith(f"--workload {name}: ") and expected in msg and "\n" not in msg


def test_types_are_read():
    p = parse_workload("mooncake", ["trace=a/b.jsonl", "block=16", "start=1.5", "limit=3"])
    assert (p.trace, p.block, p.start, p.end, p.limit) == (Path("a/b.jsonl"), 16, 1.5, None, 3)


def test_a_workload_too_big_is_refused_before_it_is_made():
    with pytest.raises(UsageError) as exc:
        make("shared-prefix", "groups=100000", "prompts=100000")
    assert "over the 1 GiB limit; lower groups=" in str(exc.value)


def test_help_lists_every_workload_key_and_default():
    text = workload_help()
    for name in ("shared-prefix", "sessions", "long-doc", "mooncake"):
        assert f"  {name}: " in text
    for shown in ("groups=64", "prefix=2048", "users=10", "history=2000", "doc=20000",
                  "trace=PATH", "block=512", "order=random"):  # fmt: skip
        assert shown in text
