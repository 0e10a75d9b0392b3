"""Dataset loading, its one-line errors, sampling and the cold-start nonce."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drbench.dataset import cold_prefix, load_prompts, select_prompts, with_prefix
from drbench.errors import DatasetError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "example_dataset.json"


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_jsonl_with_every_record_shape(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "d.jsonl",
        "\n".join(
            [
                json.dumps({"text": "a", "max_tokens": 7, "followup": "more?", "id": "x"}),
                "",
                json.dumps({"prompt": "b", "source": "s"}),
                json.dumps({"messages": [{"role": "user", "content": "c"}]}),
            ]
        ),
    )
    prompts = load_prompts(p)
    assert [pr.id for pr in prompts] == ["x", "3", "4"]  # default ids are line numbers
    assert prompts[0].max_tokens == 7 and prompts[0].followup == "more?"
    assert prompts[1].text == "b" and prompts[1].source == "s"
    assert prompts[2].as_messages() == [{"role": "user", "content": "c"}]


def test_json_array_and_the_shipped_example() -> None:
    prompts = load_prompts(EXAMPLE)
    assert len(prompts) == 10
    assert len({p.id for p in prompts}) == 10
    assert sum(len(p.as_text()) > 4000 for p in prompts) >= 3  # long enough to show the cache


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "d.jsonl:2: not valid JSON"),
        ('{"txt": "a"}', "d.jsonl:2: missing the prompt: give 'text', 'messages' or 'prompt'"),
        ('{"text": ""}', "d.jsonl:2: 'text' is empty"),
        (
            '{"text": "a", "max_tokens": 0}',
            "d.jsonl:2: 'max_tokens' must be a positive integer, got 0",
        ),
        ('{"text": "a", "prompt": "b"}', "d.jsonl:2: give only one of"),
        (
            '{"messages": [{"role": "robot", "content": "x"}]}',
            "d.jsonl:2: 'messages[0].role' is 'robot'",
        ),
        ('["a"]', "d.jsonl:2: expected a JSON object, got list"),
    ],
)
def test_a_bad_line_is_named_with_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    p = write(tmp_path, "d.jsonl", '{"text": "ok"}\n' + line + "\n")
    with pytest.raises(DatasetError) as err:
        load_prompts(p)
    assert str(err.value).startswith(
        str(tmp_path / message.split(":")[0]) + message[len(message.split(":")[0]) :]
    )


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file .check --dataset"):
        load_prompts(tmp_path / "nope.jsonl")
    with pytest.raises(DatasetError, match="holds no records"):
        load_prompts(write(tmp_path, "e.jsonl", "\n\n"))


def test_duplicate_ids_are_made_unique(tmp_path: Path) -> None:
    p = write(tmp_path, "d.jsonl", '{"text": "a", "id": "q"}\n{"text": "b", "id": "q"}\n')
    assert [pr.id for pr in load_prompts(p)] == ["q", "q#2"]


def test_select_first_n_seeded_shuffle_and_too_many() -> None:
    prompts = load_prompts(EXAMPLE)
    assert [p.id for p in select_prompts(prompts, 3)] == ["ex-01", "ex-02", "ex-03"]
    a = select_prompts(prompts, 5, shuffle=True, seed=1)
    assert a == select_prompts(prompts, 5, shuffle=True, seed=1)
    assert len({p.id for p in a}) == 5 and a != select_prompts(prompts, 5, shuffle=True, seed=2)
    with pytest.raises(DatasetError, match="holds 10 records but --num-samples is 11"):
        select_prompts(prompts, 11, source="x.json")


def test_prefix_goes_at_the_very_start() -> None:
    prompts = {p.id: p for p in load_prompts(EXAMPLE)}
    nonce = cold_prefix("abcd1234", 2, 0, 10)
    assert with_prefix(prompts["ex-01"], nonce).text.startswith(nonce + "Explain")
    chat = with_prefix(prompts["ex-04"], nonce)
    assert chat.messages[0]["role"] == "system" and chat.messages[0]["content"].startswith(nonce)
    assert (
        prompts["ex-04"].messages[0]["content"].startswith("You are")
    )  # the original is untouched
    others = [
        cold_prefix("abcd1234", 1, 0, 10),
        cold_prefix("ffff0000", 2, 0, 10),
        cold_prefix("abcd1234", 2, 1, 10),
    ]
    assert nonce not in others and len(set(others)) == 3
