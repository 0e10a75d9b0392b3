"""convert_longbench: official templates, every option on the shipped samples, hub loading
through a local folder (no network), and the bad-input errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from drbench.convert import longbench
from drbench.convert.longbench import LongBenchOptions, convert
from drbench.convert.longbench_source import HUB_REPO, check_hub_reachable, hub_problem
from drbench.convert.longbench_template import LongBenchSpec
from drbench.errors import DatasetError, UsageError
from drbench.tokens import EstimateCounter

# Nothing in these tests may reach the network, even if `datasets` is imported later.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "datasets" / "LongBench"
SPEC = LongBenchSpec.load()

RECORD = {
    "input": "Who built the mill?",
    "context": "Passage 1:\nThe Mill\nThe mill was built by {Ada} in 1801.",
    "answers": ["Ada"],
    "_id": "rec-1",
}


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    code = longbench.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# --- templates and tables ----------------------------------------------------------------


def test_official_template_hotpotqa_exact() -> None:
    expected = (
        "Answer the question based on the given passages. Only give me the answer and do not "
        "output any other words.\n\nThe following are given passages.\n"
        "Passage 1:\nThe Mill\nThe mill was built by {Ada} in 1801.\n\n"
        "Answer the question based on the given passages. Only give me the answer and do not "
        "output any other words.\n\nQuestion: Who built the mill?\nAnswer:"
    )
    assert SPEC.prompt("hotpotqa", RECORD, "official", where="t") == expected
    assert SPEC.prompt("hotpotqa_e", RECORD, "official", where="t") == expected


def test_official_template_narrativeqa_keeps_upstream_typo() -> None:
    text = SPEC.prompt("narrativeqa", {"context": "C", "input": "Q"}, "official", where="t")
    assert text == (
        "You are given a story, which can be either a novel or a movie script, and a question. "
        "Answer the question asconcisely as you can, using a single phrase if possible. Do not "
        "provide any explanation.\n\nStory: C\n\nNow, answer the question based on the story "
        "asconcisely as you can, using a single phrase if possible. Do not provide any "
        "explanation.\n\nQuestion: Q\n\nAnswer:"
    )


def test_official_templates_zh_gov_report_and_trec() -> None:
    zh = SPEC.prompt("multifieldqa_zh", {"context": "文", "input": "问"}, "official", where="t")
    assert zh == (
        "阅读以下文字并用中文简短回答：\n\n文\n\n现在请基于上面的文章回答下面的问题，"
        "只告诉我答案，不要输出任何其他字词。\n\n问题：问\n回答："
    )
    gov = SPEC.prompt("gov_report", {"context": "R"}, "official", where="t")  # no input needed
    assert gov == (
        "You are given a report by a government agency. Write a one-page summary of the "
        "report.\n\nReport:\nR\n\nNow, write a one-page summary of the report.\n\nSummary:"
    )
    trec = SPEC.prompt("trec", {"context": "E", "input": "Q"}, "official", where="t")
    assert trec == (
        "Please determine the type of the question below. Here are some examples of "
        "questions.\n\nE\nQ"
    )


def test_raw_template_is_context_and_input() -> None:
    assert SPEC.prompt("hotpotqa", RECORD, "raw", where="t") == (
        RECORD["context"] + "\n\n" + RECORD["input"]
    )
    assert SPEC.prompt("gov_report", {"context": "R", "input": ""}, "raw", where="t") == "R"


def test_tables_match_longbench() -> None:
    assert len(SPEC.subsets) == 21 and len(SPEC.e_subsets) == 13
    lengths = {n: SPEC.max_tokens(n) for n in ("narrativeqa", "lcc", "hotpotqa", "qmsum")}
    assert lengths == {"narrativeqa": 128, "lcc": 64, "hotpotqa": 32, "qmsum": 512}
    assert SPEC.max_tokens("gov_report_e") == 512
    assert not SPEC.chat_template("trec") and not SPEC.chat_template("lcc_e")
    assert SPEC.chat_template("hotpotqa")


def test_resolve_expands_all_and_rejects_unknown() -> None:
    assert SPEC.resolve(["all"]) == list(SPEC.subsets)
    assert SPEC.resolve(["all_e", "hotpotqa_e"]) == [f"{s}_e" for s in SPEC.e_subsets]
    assert SPEC.resolve(["trec", "trec"]) == ["trec"]
    with pytest.raises(UsageError, match="did you mean 'hotpotqa'"):
        SPEC.resolve(["hotpot"])
    with pytest.raises(UsageError, match="unknown LongBench subset 'narrativeqa_e'"):
        SPEC.resolve(["narrativeqa_e"])  # narrativeqa has no LongBench-E version


# --- the command on the shipped samples -------------------------------------------------


def test_input_dir_converts_every_file_and_dedupes(tmp_path: Path, capsys) -> None:
    out = tmp_path / "lb.jsonl"
    code, stdout, _ = _run(["--input-dir", str(SAMPLES), "--output", str(out)], capsys)
    assert code == 0
    records = _lines(out)
    assert len(records) == 21  # 23 read, 2 exact duplicates removed
    assert "read 23 records" in stdout
    assert "skipped duplicate prompts (same final prompt text): 2" in stdout
    assert len({r["text"] for r in records}) == len(records)
    assert len({r["id"] for r in records}) == len(records)
    sources = {r["source"] for r in records}
    assert sources == {
        f"longbench/{s}"
        for s in ("gov_report", "hotpotqa", "hotpotqa_e", "multifieldqa_zh", "narrativeqa", "trec")
    }
    for r in records:
        assert r["max_tokens"] == SPEC.max_tokens(r["source"].split("/")[1])
    assert f"wrote 21 records to {out}" in stdout


def test_input_file_uses_official_prompt(tmp_path: Path, capsys) -> None:
    out = tmp_path / "h.jsonl"
    src = SAMPLES / "hotpotqa.jsonl"
    assert _run(["--input", str(src), "--output", str(out)], capsys)[0] == 0
    raw = _lines(src)
    got = _lines(out)
    assert [r["id"] for r in got] == [r["_id"] for r in raw]
    for r, g in zip(raw, got, strict=True):
        assert g["text"] == SPEC.prompts["hotpotqa"].format(context=r["context"], input=r["input"])
        assert g["max_tokens"] == 32 and "followup" not in g


def test_default_output_path(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, stdout, _ = _run(["--input", str(SAMPLES / "trec.jsonl")], capsys)
    assert code == 0 and "wrote 3 records to datasets/longbench.jsonl" in stdout
    assert len(_lines(tmp_path / "datasets" / "longbench.jsonl")) == 3


def test_input_file_with_dataset_names_the_subset(tmp_path: Path, capsys) -> None:
    src = _write_jsonl(tmp_path / "mine.jsonl", [{"context": "C", "input": "Q"}])
    out = tmp_path / "o.jsonl"
    code, _, err = _run(["--input", str(src), "--output", str(out)], capsys)
    assert code == 2
    assert f"{src}:1: cannot tell the subset" in err and "--dataset NAME" in err
    assert _run(["--input", str(src), "--dataset", "qasper", "--output", str(out)], capsys)[0] == 0
    (rec,) = _lines(out)
    assert rec["source"] == "longbench/qasper" and rec["max_tokens"] == 128
    assert rec["id"] == "qasper-0"


def test_input_dir_with_dataset_filters_subsets(tmp_path: Path, capsys) -> None:
    out = tmp_path / "o.jsonl"
    args = ["--input-dir", str(SAMPLES), "--dataset", "trec", "narrativeqa", "--output", str(out)]
    assert _run(args, capsys)[0] == 0
    assert {r["source"] for r in _lines(out)} == {"longbench/trec", "longbench/narrativeqa"}
    assert (
        _run(["--input-dir", str(SAMPLES), "--dataset", "all", "--output", str(out)], capsys)[0]
        == 0
    )
    assert "longbench/hotpotqa_e" not in {r["source"] for r in _lines(out)}


def test_template_raw_and_max_tokens_override(tmp_path: Path, capsys) -> None:
    out = tmp_path / "o.jsonl"
    args = ["--input", str(SAMPLES / "narrativeqa.jsonl"), "--template", "raw"]
    assert _run([*args, "--max-tokens", "100", "--output", str(out)], capsys)[0] == 0
    raw = _lines(SAMPLES / "narrativeqa.jsonl")
    got = _lines(out)
    assert [g["text"] for g in got] == [f"{r['context']}\n\n{r['input']}" for r in raw]
    assert {g["max_tokens"] for g in got} == {100}


def test_num_samples_is_seeded_stratified_and_without_replacement(tmp_path: Path, capsys) -> None:
    outs = []
    for seed in ("1", "1", "2"):
        out = tmp_path / f"s{len(outs)}.jsonl"
        args = ["--input-dir", str(SAMPLES), "--num-samples", "7", "--seed", seed]
        code, stdout, _ = _run([*args, "--output", str(out)], capsys)
        assert code == 0
        outs.append(_lines(out))
    assert outs[0] == outs[1]  # same seed, same sample
    assert outs[0] != outs[2]
    assert len(outs[0]) == 7 and len({r["text"] for r in outs[0]}) == 7
    per_subset = {}
    for r in outs[2]:
        per_subset[r["source"]] = per_subset.get(r["source"], 0) + 1
    # 7 over 6 subsets, equal shares: one each, the extra one to the first subset.
    assert sorted(per_subset.values()) == [1, 1, 1, 1, 1, 2]
    assert per_subset["longbench/gov_report"] == 2
    assert (
        "sampled 7 of 21 (seed 2, stratified (equal)): gov_report 2/3, hotpotqa 1/5, "
        "hotpotqa_e 1/2, multifieldqa_zh 1/4, narrativeqa 1/4, trec 1/3" in stdout
    )


def test_stratify_proportional(tmp_path: Path, capsys) -> None:
    args = ["--input-dir", str(SAMPLES), "--num-samples", "7", "--stratify", "proportional"]
    code, stdout, _ = _run([*args, "--output", str(tmp_path / "o.jsonl")], capsys)
    assert code == 0
    # 7 * size / 21 with largest remainders: 1, 1.67, 0.67, 1.33, 1.33, 1 -> 1, 2, 1, 1, 1, 1
    assert (
        "gov_report 1/3, hotpotqa 2/5, hotpotqa_e 1/2, multifieldqa_zh 1/4, narrativeqa 1/4, "
        "trec 1/3" in stdout
    )


def test_asking_for_more_than_exist_takes_all_once(tmp_path: Path, capsys) -> None:
    out = tmp_path / "o.jsonl"
    args = ["--input", str(SAMPLES / "trec.jsonl"), "--num-samples", "50", "--output", str(out)]
    code, stdout, _ = _run(args, capsys)
    assert code == 0
    assert "--num-samples 50: only 3 records exist; took all" in stdout
    records = _lines(out)
    assert len(records) == 3 and len({r["id"] for r in records}) == 3


def test_overlong_truncate_keeps_both_ends(tmp_path: Path, capsys) -> None:
    out = tmp_path / "o.jsonl"
    args = ["--input", str(SAMPLES / "hotpotqa.jsonl"), "--max-model-len", "600"]
    code, stdout, _ = _run([*args, "--output", str(out)], capsys)
    assert code == 0
    assert "truncated in the middle to fit --max-model-len 600: 5" in stdout
    estimate = EstimateCounter()
    for r in _lines(out):
        assert estimate.count(r["text"]) <= 600 - 32
        assert estimate.count(r["text"]) >= 600 - 32 - 1
        assert r["text"].startswith("Answer the question based on the given passages.")
        assert r["text"].endswith("\nAnswer:")


def test_overlong_drop_and_keep(tmp_path: Path, capsys) -> None:
    out = tmp_path / "o.jsonl"
    base = ["--input", str(SAMPLES / "narrativeqa.jsonl"), "--max-model-len", "1200"]
    code, stdout, _ = _run([*base, "--overlong", "drop", "--output", str(out)], capsys)
    assert code == 0
    assert "skipped as too long for --max-model-len 1200 (--overlong drop): 2" in stdout
    assert len(_lines(out)) == 2
    code, stdout, _ = _run([*base, "--overlong", "keep", "--output", str(out)], capsys)
    assert code == 0 and len(_lines(out)) == 4
    assert "over limit: prompts that with --max-tokens exceed --max-model-len 1200" in stdout
    code, _, err = _run([*base, "--max-model-len", "300", "--overlong", "drop"], capsys)
    assert code == 2 and "no records left to write" in err


def test_recommend_writes_nothing_and_uses_kv_budget(tmp_path: Path, capsys) -> None:
    out = tmp_path / "o.jsonl"
    args = ["--input-dir", str(SAMPLES), "--recommend", "--output", str(out)]
    code, stdout, _ = _run([*args, "--kv-cache-tokens", "100000"], capsys)
    assert code == 0 and not out.exists()
    assert "KV-cache budget 100000 tokens" in stdout
    assert "--recommend: nothing written" in stdout
    assert "LongBench sends trec without one" in stdout
    small = _run([*args, "--kv-cache-tokens", "3000"], capsys)[1]
    row = next(line for line in small.splitlines() if line.startswith("hotpotqa "))
    head = (
        "Answer the question based on the given passages. Only give me the answer and do not "
        "output any other words.\n\nThe following are given passages.\nPassage 1:\n"
    )
    # columns: ..., concurrency 3000 // (p90 1418 + 32), shared prefix (the template's head)
    assert row.split()[-2:] == ["1-2", str(-(-len(head) // 4))]


def test_tokenizer_without_packages_is_one_clear_error(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    monkeypatch.setitem(sys.modules, "transformers", None)
    tok = tmp_path / "tokenizer.json"
    tok.write_text("{}", encoding="utf-8")
    args = ["--input", str(SAMPLES / "trec.jsonl"), "--tokenizer", str(tok)]
    code, _, err = _run([*args, "--output", str(tmp_path / "o.jsonl")], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "pip install tokenizers" in err
    code, _, err = _run(["--input", str(SAMPLES / "trec.jsonl"), "--tokenizer", "nope"], capsys)
    assert code == 2 and "--tokenizer nope: no such file or directory" in err


def test_tokenizer_gives_exact_counts_and_truncation(tmp_path: Path, capsys, monkeypatch) -> None:
    """A stand-in `tokenizers` package (one token per word) exercises the real code path."""

    vocab: dict[str, int] = {}

    class WordTokenizer:
        @classmethod
        def from_file(cls, path: str) -> WordTokenizer:
            assert Path(path).name == "tokenizer.json"
            return cls()

        def encode(self, text: str, add_special_tokens: bool = True):
            assert add_special_tokens is False
            ids = [vocab.setdefault(w, len(vocab)) for w in text.split(" ")]
            return types.SimpleNamespace(ids=ids)

        def decode(self, ids: list[int]) -> str:
            words = {i: w for w, i in vocab.items()}
            return " ".join(words[i] for i in ids)

    monkeypatch.setitem(sys.modules, "tokenizers", types.SimpleNamespace(Tokenizer=WordTokenizer))
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "tokenizer.json").write_text("{}", encoding="utf-8")
    out = tmp_path / "o.jsonl"
    args = ["--input", str(SAMPLES / "trec.jsonl"), "--tokenizer", str(tmp_path / "tok")]
    code, stdout, _ = _run([*args, "--max-model-len", "74", "--output", str(out)], capsys)
    assert code == 0
    assert f"Prompt lengths (tokenizer {tmp_path / 'tok'})" in stdout
    raw = _lines(SAMPLES / "trec.jsonl")
    for r, g in zip(raw, _lines(out), strict=True):  # 74 - 64 = 10 tokens: 5 first, 5 last
        words = SPEC.prompt("trec", r, "official", where="t").split(" ")
        assert g["text"] == " ".join(words[:5]) + " ".join(words[-5:])


# --- the hub, through a local folder laid out like it ------------------------------------


@pytest.fixture
def offline(monkeypatch):
    """Force datasets / huggingface_hub offline even if they were imported before."""
    import huggingface_hub.constants

    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # what the converter's own hub probe reads


def _hub_folder(root: Path, *, readme: bool, layout: str = "parquet") -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in (SAMPLES / "hotpotqa.jsonl").read_text().splitlines()]
    if layout == "parquet":
        (root / "hotpotqa").mkdir(parents=True)
        pq.write_table(
            pa.Table.from_pylist(rows), root / "hotpotqa" / "test-00000-of-00001.parquet"
        )
    else:
        (root / "data").mkdir(parents=True)
        _write_jsonl(root / "data" / "hotpotqa.jsonl", rows)
    if readme:
        (root / "README.md").write_text(
            "---\nconfigs:\n- config_name: hotpotqa\n  data_files:\n  - split: test\n"
            "    path: hotpotqa/test-*.parquet\n---\n",
            encoding="utf-8",
        )
    return root


@pytest.mark.parametrize(
    ("readme", "layout"), [(True, "parquet"), (False, "parquet"), (False, "jsonl")]
)
def test_hub_loading_through_local_repo(tmp_path, capsys, offline, readme, layout) -> None:
    repo = _hub_folder(tmp_path / "repo", readme=readme, layout=layout)
    out = tmp_path / "o.jsonl"
    args = ["--dataset", "hotpotqa", "--hub-repo", str(repo), "--cache-dir", str(tmp_path / "c")]
    code, stdout, err = _run([*args, "--output", str(out)], capsys)
    assert code == 0, err
    expected = [
        SPEC.prompts["hotpotqa"].format(context=r["context"], input=r["input"])
        for r in _lines(SAMPLES / "hotpotqa.jsonl")
    ]
    assert [r["text"] for r in _lines(out)] == expected
    assert any((tmp_path / "c").iterdir())


def test_hub_subset_missing_from_local_repo(tmp_path, capsys, offline) -> None:
    repo = _hub_folder(tmp_path / "repo", readme=True)
    args = ["--dataset", "narrativeqa", "--hub-repo", str(repo), "--cache-dir", str(tmp_path)]
    code, _, err = _run([*args, "--output", str(tmp_path / "o.jsonl")], capsys)
    assert code == 2
    assert f"{repo}: cannot find subset 'narrativeqa'" in err and err.count("\n") == 1


def test_unreachable_hub_suggests_input_dir(tmp_path, capsys, offline) -> None:
    out = tmp_path / "o.jsonl"
    args = ["--dataset", "hotpotqa", "--cache-dir", str(tmp_path / "c"), "--output", str(out)]
    code, _, err = _run(args, capsys)
    assert code == 2 and not out.exists()
    assert err.startswith(
        "convert_longbench: cannot reach the Hugging Face hub for THUDM/LongBench"
    )
    assert "--input-dir" in err and err.count("\n") == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_hub(monkeypatch):
    """HF_ENDPOINT at a closed port of 127.0.0.1: the hub is unreachable, without any network."""
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    for name in ("HF_HUB_OFFLINE", "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_unreachable_hub_fails_fast_in_one_line(tmp_path, capsys, no_hub) -> None:
    out = tmp_path / "o.jsonl"
    args = [
        "--dataset",
        "hotpotqa",
        "trec",
        "--cache-dir",
        str(tmp_path / "c"),
        "--output",
        str(out),
    ]
    start = time.monotonic()
    code, stdout, err = _run(args, capsys)
    assert time.monotonic() - start < 15  # the retries took 25 s; the probe refuses at once
    assert code == 2 and not out.exists() and stdout == ""
    assert err.startswith(
        "convert_longbench: cannot reach the Hugging Face hub for THUDM/LongBench "
        "(cannot connect to 127.0.0.1:"
    )
    assert "--input-dir" in err and err.count("\n") == 1


def test_hub_probe_is_skipped_offline_behind_a_proxy_and_for_a_local_repo(tmp_path, no_hub):
    check_hub_reachable(str(tmp_path))  # a local folder laid out like the repo
    env = {"HF_ENDPOINT": os.environ["HF_ENDPOINT"]}
    with pytest.raises(DatasetError, match="cannot connect to 127.0.0.1"):
        check_hub_reachable(HUB_REPO, env)
    check_hub_reachable(HUB_REPO, {**env, "HF_HUB_OFFLINE": "1"})
    check_hub_reachable(HUB_REPO, {**env, "https_proxy": "http://proxy:3128"})
    assert "has no host" in hub_problem("http:///x")


def test_loader_connection_error_stops_at_once() -> None:
    calls = []

    def loader(*args, **kwargs):
        calls.append(args)
        raise ConnectionError("no route to host")

    with pytest.raises(DatasetError, match="cannot reach the Hugging Face hub .*no route to host"):
        convert(LongBenchOptions(datasets=("trec",)), loader=loader)
    assert calls == [("THUDM/LongBench", "trec")]


def test_help_does_not_import_heavy_packages() -> None:
    code = (
        "import sys, drbench.convert.longbench as m, drbench.convert.sharegpt as s;"
        "m.build_parser().format_help(); s.build_parser().format_help();"
        "print(sorted(k for k in ('datasets', 'tokenizers', 'transformers', 'pyarrow') "
        "if k in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "nope.jsonl"], "nope.jsonl: no such file (check --input)"),
        (["--input-dir", "nodir"], "--input-dir nodir: no such directory"),
        (["--dataset", "hotpot"], "unknown LongBench subset 'hotpot'; did you mean 'hotpotqa'?"),
        ([], "give --dataset NAME (from the hub), --input FILE or --input-dir DIR"),
        (["--dataset", "trec", "--num-samples", "0"], "--num-samples: must be >= 1"),
        (["--input", "a", "--input-dir", "b"], "not allowed with argument"),
        (["--dataset", "trec", "--max-tokens", "9", "--max-model-len", "9"], "leaves no room"),
        (["--input", "x.jsonl", "--dataset", "trec", "lcc"], "--input takes one file"),
        (["--input", "x.jsonl", "--dataset", "all"], "--input takes one file"),
        (
            ["--input", str(SAMPLES / "gov_report.jsonl"), "--max-model-len", "512"],
            "--max-model-len 512 leaves no room for a prompt next to gov_report's max_tokens 512",
        ),
    ],
)
def test_usage_errors_are_one_line(capsys, args, message) -> None:
    code, out, err = _run(args, capsys)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert out == ""


def test_record_missing_field_names_file_line_and_field(tmp_path: Path, capsys) -> None:
    src = _write_jsonl(
        tmp_path / "hotpotqa.jsonl", [{"context": "C", "input": "Q"}, {"input": "Q2"}]
    )
    code, _, err = _run(["--input", str(src), "--output", str(tmp_path / "o.jsonl")], capsys)
    assert code == 2
    assert f"{src}:2: field 'context' is missing" in err


def test_wrong_format_files(tmp_path: Path, capsys) -> None:
    sharegpt = ROOT / "datasets" / "ShareGPT" / "ShareGPT_sample.json"
    code, _, err = _run(["--input", str(sharegpt), "--dataset", "trec"], capsys)
    assert code == 2 and f"{sharegpt}:2: field 'context' is missing" in err
    text = tmp_path / "trec.jsonl"
    text.write_text("just some text\n", encoding="utf-8")
    code, _, err = _run(["--input", str(text)], capsys)
    assert code == 2 and f"{text}:1: not valid JSON" in err
    bad_subset = _write_jsonl(tmp_path / "x.jsonl", [{"context": "C", "dataset": "hotpot"}])
    code, _, err = _run(["--input", str(bad_subset)], capsys)
    assert code == 2 and f"{bad_subset}:1: field 'dataset': unknown LongBench subset" in err
    empty = tmp_path / "lcc.jsonl"
    empty.write_text("\n", encoding="utf-8")
    code, _, err = _run(["--input", str(empty)], capsys)
    assert code == 2 and "holds no LongBench records" in err
