"""process_sharegpt: cleaning rules, every option on the shipped sample, and bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from drbench.convert import sharegpt
from drbench.convert.sharegpt_clean import (
    Conversation,
    Turn,
    clean_text,
    detect_lang,
    html_to_markdown,
    normalise,
)
from drbench.tokens import EstimateCounter

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "datasets" / "ShareGPT" / "ShareGPT_sample.json"


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    code = sharegpt.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _convert(tmp_path: Path, capsys, *extra: str) -> tuple[list[dict], str]:
    out = tmp_path / "o.jsonl"
    code, stdout, err = _run(["--input", str(SAMPLE), "--output", str(out), *extra], capsys)
    assert code == 0, err
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()], stdout


def _by_id(records: list[dict]) -> dict[str, dict]:
    return {r["id"]: r for r in records}


# --- cleaning ----------------------------------------------------------------------------


def test_html_becomes_markdown() -> None:
    html = (
        '<div class="markdown prose"><p>Use <code>csv</code> &amp; <strong>read</strong>:</p>'
        '<pre><div class="bar"><span>python</span><button>Copy code</button></div>'
        '<code class="hljs language-python">import csv\nprint(1)\n</code></pre>'
        "<ol><li><p>one</p></li><li>two</li></ol><ul><li>dot</li></ul></div>"
    )
    assert clean_text(html) == (
        "Use `csv` & **read**:\n\n```python\nimport csv\nprint(1)\n```\n\n1. one\n\n2. two\n\n- dot"
    )
    assert html_to_markdown("<h2>Title</h2><p>a<br>b</p>").strip() == "## Title\n\na\nb"


def test_export_artefacts_are_removed() -> None:
    assert clean_text("```pythonCopy code\nx = 1\n```") == "```python\nx = 1\n```"
    assert clean_text("2 / 2Tell me more") == "Tell me more"
    assert clean_text("1 / 1\nHi") == "Hi"
    assert clean_text("3 / 4 of the cake") == "3 / 4 of the cake"  # not a counter
    assert clean_text("done\nCopy12 chars / 3 words\n\n\n\nend") == "done\n\nend"


def test_text_that_mentions_tags_is_left_alone() -> None:
    text = "Why does print('<p>') show <p> and not a paragraph?"
    assert clean_text(text) == text


def _conv(*turns: tuple[str, str]) -> Conversation:
    return Conversation("c", tuple(Turn(role, text) for role, text in turns))


def test_normalise_structure_rules() -> None:
    conv, reason = normalise(_conv(("assistant", "hi"), ("user", "q"), ("assistant", "a")))
    assert reason is None and [t.role for t in conv.turns] == ["user", "assistant"]
    conv, _ = normalise(_conv(("system", "be brief"), ("user", "q"), ("assistant", "a")))
    assert conv.system == "be brief" and len(conv.turns) == 2
    assert normalise(_conv())[1] == "empty"
    assert normalise(_conv(("assistant", "only me")))[1] == "empty"
    assert normalise(_conv(("user", "q"), ("user", "q2"), ("assistant", "a")))[1] == (
        "non-alternating"
    )
    assert normalise(_conv(("user", "q"), ("bing", "a")))[1] == "non-alternating"
    assert normalise(_conv(("user", "q"), ("assistant", "")))[1] == "empty turn"
    assert normalise(_conv(("user", "q")))[1] == "no answer"


def test_detect_lang_by_script() -> None:
    assert detect_lang("How are you?") == "en"
    assert detect_lang("用三句话介绍一下长城。") == "zh"
    assert detect_lang("辞書をソートする方法") == "ja"
    assert detect_lang("서울에서 가볼 만한 곳") == "ko"
    assert detect_lang("Привет, как дела?") == "ru"
    assert detect_lang("12345 !!!") == "unknown"


# --- the command on the shipped sample ---------------------------------------------------


def test_first_turn_default_on_sample(tmp_path: Path, capsys) -> None:
    records, stdout = _convert(tmp_path, capsys)
    assert "read 38 conversations" in stdout
    assert "cleaned HTML/markdown artefacts in 4 conversations" in stdout
    assert (
        "skipped 9: duplicate id 1, duplicate prompt 1, empty 1, empty turn 1, no answer 1, "
        "non-alternating 2, prompt too long 1, prompt too short 1" in stdout
    )
    assert len(records) == 29 and "kept 29" in stdout
    by_id = _by_id(records)
    assert by_id["sg_001_0"] == {
        "id": "sg_001_0",
        "source": "sharegpt",
        "text": "What is the difference between a process and a thread?",
        "followup": "So when should I use multiple processes instead of threads in Python?",
    }
    assert by_id["sg_007_0"]["text"] == "How can I keep basil alive on a windowsill?"
    assert by_id["sg_007_0"]["followup"] == "It is getting leggy. Should I cut it back?"
    assert by_id["sg_005_0"]["text"] == "How do I undo the last git commit but keep my changes?"
    assert by_id["sg_023_0"]["text"] == "How many hours of sleep does a teenager need?"
    assert "sg_024_0" not in by_id  # same first prompt as sg_001_0
    assert not {"sg_016_0", "sg_017_0", "sg_018_0", "sg_020_0", "sg_022_0"} & set(by_id)
    assert all("max_tokens" not in r for r in records)
    assert len({r["text"] for r in records}) == len(records)


def test_max_tokens_from_answer(tmp_path: Path, capsys) -> None:
    records, _ = _convert(tmp_path, capsys, "--max-tokens-from-answer")
    raw = {c["id"]: c for c in json.loads(SAMPLE.read_text(encoding="utf-8"))}
    est = EstimateCounter()
    for r in records:
        turns = [t for t in raw[r["id"]]["conversations"] if t["from"] != "system"]
        first = next(i for i, t in enumerate(turns) if t["from"] == "human")
        assert r["max_tokens"] == est.count(clean_text(turns[first + 1]["value"]))


def test_conversation_mode_keeps_prefix_and_system(tmp_path: Path, capsys) -> None:
    records, _ = _convert(tmp_path, capsys, "--mode", "conversation", "--max-tokens-from-answer")
    by_id = _by_id(records)
    tutor = by_id["sg_037_0"]["messages"]
    assert [m["role"] for m in tutor] == ["system", "user", "assistant", "user"]
    assert tutor[-1]["content"] == "Can you check it with sides 3, 4 and 5?"
    assert by_id["sg_037_0"]["max_tokens"] == EstimateCounter().count(
        "s = 6, and 6 x 3 x 2 x 1 = 36, whose square root is 6. That matches the right-angled "
        "triangle's area of 3 x 4 / 2 = 6."
    )
    assert all(r["messages"][-1]["role"] == "user" and "text" not in r for r in records)
    assert "sg_024_0" in by_id  # its conversation differs from sg_001_0's


def test_conversation_mode_shortens_prefix_to_fit(tmp_path: Path, capsys) -> None:
    records, _ = _convert(tmp_path, capsys, "--mode", "conversation", "--max-prompt-tokens", "60")
    bloom = _by_id(records)["sg_003_0"]["messages"]
    assert [m["role"] for m in bloom] == ["user"]  # the full 5-turn prefix would be ~150 tokens


def test_length_filters(tmp_path: Path, capsys) -> None:
    records, stdout = _convert(tmp_path, capsys, "--min-prompt-tokens", "0")
    assert "sg_017_0" in _by_id(records)  # "hi" passes when the minimum is 0
    records, stdout = _convert(
        tmp_path, capsys, "--max-prompt-tokens", "0", "--max-total-tokens", "0"
    )
    assert "sg_016_0" in _by_id(records)  # the long log passes with both limits off
    records, stdout = _convert(tmp_path, capsys, "--max-total-tokens", "60")
    assert "prompt + answer too long" in stdout
    est = EstimateCounter()
    assert all(est.count(r["text"]) <= 60 for r in records)


def test_language_filters(tmp_path: Path, capsys) -> None:
    records, stdout = _convert(tmp_path, capsys, "--keep-lang", "zh", "ko")
    assert sorted(r["id"] for r in records) == ["sg_025_0", "sg_026_0"]
    assert "language 31" in stdout  # 33 well-formed conversations, 2 in Chinese or Korean
    records, _ = _convert(tmp_path, capsys, "--skip-lang", "en")
    assert sorted(r["id"] for r in records) == ["sg_025_0", "sg_026_0", "sg_027_0"]


def test_num_samples_seeded_without_replacement(tmp_path: Path, capsys) -> None:
    a, stdout = _convert(tmp_path, capsys, "--num-samples", "10", "--seed", "3")
    b, _ = _convert(tmp_path, capsys, "--num-samples", "10", "--seed", "3")
    c, _ = _convert(tmp_path, capsys, "--num-samples", "10", "--seed", "4")
    assert a == b and a != c
    assert len({r["id"] for r in a}) == 10 and "sampled 10 of 29 (seed 3)" in stdout
    everything, stdout = _convert(tmp_path, capsys, "--num-samples", "500")
    assert len(everything) == 29 and len({r["id"] for r in everything}) == 29
    assert "--num-samples 500: only 29 records remain; took all" in stdout


def test_default_output_path_and_jsonl_input(tmp_path: Path, capsys, monkeypatch) -> None:
    src = tmp_path / "sg.jsonl"
    convs = json.loads(SAMPLE.read_text(encoding="utf-8"))[:3]
    src.write_text("".join(json.dumps(c) + "\n" for c in convs), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, stdout, _ = _run(["--input", str(src)], capsys)
    assert code == 0
    written = tmp_path / "datasets" / "sharegpt_clean.jsonl"
    assert len(written.read_text(encoding="utf-8").splitlines()) == 3
    assert "wrote 3 records to datasets/sharegpt_clean.jsonl" in stdout


# --- bad input ---------------------------------------------------------------------------


def test_longbench_file_is_the_wrong_format(capsys) -> None:
    lb = ROOT / "datasets" / "LongBench" / "trec.jsonl"
    code, _, err = _run(["--input", str(lb), "--output", "unused.jsonl"], capsys)
    assert code == 2
    assert f"{lb}:1: field 'conversations' is missing" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '[{"id": "a", "conversations": [{"from": "human"}]}]',
            ":1: field 'conversations[0].value'",
        ),
        ('[\n{"id": "a", "conversations": []},\n{"id": "b", "conversations": "x"}\n]', ":3: field"),
        ('{"id": "a", "conversations": [{"value": "x"}]}', ":1: field 'conversations[0].from'"),
        (
            '{"id": "a", "conversations": [{"from": 5, "value": "x"}]}',
            ":1: field 'conversations[0].from' is a number (5), not a string",
        ),
        (
            '{"id": "a", "conversations": [{"from": "human", "value": null}]}',
            ":1: field 'conversations[0].value' is null, not a string",
        ),
        (
            '{"id": "a", "conversations": [{"from": "human", "value": ["x"]}]}',
            ":1: field 'conversations[0].value' is a list, not a string",
        ),
        (
            '{"id": "a", "conversations": ["hi"]}',
            ":1: field 'conversations[0]' is a string, not an object {from, value}",
        ),
        (
            '{"id": "a", "conversation": [{"from": "human", "value": true}]}',
            ":1: field 'conversation[0].value' is a boolean (true), not a string",
        ),
        ('{"id": "a", "conversations": null}', ":1: field 'conversations' is null, not a list"),
        ('{"id": "a", "conversations": {"a": 1}}', "is an object, not a list"),
        ("not json at all", ":1: not valid JSON"),
        ("[1, 2]", ":1: expected a JSON object"),
        ("", "holds no conversations"),
    ],
)
def test_malformed_records(tmp_path: Path, capsys, content: str, message: str) -> None:
    src = tmp_path / "in.json"
    src.write_text(content, encoding="utf-8")
    code, _, err = _run(["--input", str(src), "--output", str(tmp_path / "o.jsonl")], capsys)
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "nope.json"], "nope.json: no such file (check --input)"),
        ([], "the following arguments are required: --input"),
        (["--input", "x", "--mode", "chat"], "--mode: invalid choice: 'chat'"),
        (["--input", "x", "--keep-lang", "en", "--skip-lang", "zh"], "not both"),
        (["--input", "x", "--min-prompt-tokens", "9", "--max-prompt-tokens", "5"], "is above"),
        (["--input", "x", "--num-samples", "-1"], "--num-samples: must be >= 1"),
    ],
)
def test_usage_errors(capsys, args: list[str], message: str) -> None:
    code, out, err = _run(args, capsys)
    assert code == 2 and message in err and err.count("\n") == 1 and out == ""


def test_everything_filtered_is_an_error(tmp_path: Path, capsys) -> None:
    out = tmp_path / "o.jsonl"
    code, stdout, err = _run(
        ["--input", str(SAMPLE), "--output", str(out), "--keep-lang", "ru"], capsys
    )
    assert code == 2 and "no records left to write" in err and not out.exists()
    assert "language" in stdout  # the counts still say why


def test_tokenizer_missing_packages(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    monkeypatch.setitem(sys.modules, "transformers", None)
    code, _, err = _run(["--input", str(SAMPLE), "--tokenizer", str(tmp_path)], capsys)
    assert code == 2 and "pip install tokenizers" in err
