"""The converters' shared reader and writer: locations, self-check, unique ids, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drbench.convert.jsonl import OutputRecord, read_items, unique_ids, write_jsonl
from drbench.errors import DatasetError


def test_read_jsonl_keeps_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n', encoding="utf-8")
    assert [(i.where, i.obj) for i in read_items(path)] == [
        (f"{path}:1", {"a": 1}),
        (f"{path}:3", {"a": 2}),
    ]


def test_read_array_gives_each_item_its_line(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('[\n {"a": 1,\n  "b": 2},\n {"a": "x\\ny"}\n]\n', encoding="utf-8")
    items = read_items(path)
    assert [i.where for i in items] == [f"{path}:2", f"{path}:4"]
    assert items[1].obj == {"a": "x\ny"}
    path.write_text("[]", encoding="utf-8")
    assert read_items(path) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"a": 1}\n{"a": \n', ":2: not valid JSON"),
        ('[{"a": 1} {"a": 2}]', ":1: not valid JSON (expected ',' or ']')"),
        ('[\n{"a": 1},\n{"a": }\n]', ":3: not valid JSON"),
    ],
)
def test_read_errors_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_items(path)


def test_read_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no such file \(check --input\)"):
        read_items(tmp_path / "missing.json")
    with pytest.raises(DatasetError, match="is a directory"):
        read_items(tmp_path)
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DatasetError, match="not UTF-8 text"):
        read_items(binary)


def test_record_to_dict_omits_unknown_fields() -> None:
    assert OutputRecord("1", "s", text="t").to_dict() == {"id": "1", "source": "s", "text": "t"}
    full = OutputRecord("2", "s", messages=({"role": "user", "content": "c"},), max_tokens=5)
    assert list(full.to_dict()) == ["id", "source", "messages", "max_tokens"]


def test_write_checks_records_and_is_atomic(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "o.jsonl"
    n = write_jsonl(out, [OutputRecord("1", "s", text="长城", followup="f")])
    assert n == 1
    assert out.read_text(encoding="utf-8") == (
        '{"id": "1", "source": "s", "text": "长城", "followup": "f"}\n'
    )
    before = out.read_bytes()
    with pytest.raises(DatasetError, match="refusing to write record '2': 'text' is empty"):
        write_jsonl(out, [OutputRecord("1", "s", text="x"), OutputRecord("2", "s", text=" ")])
    with pytest.raises(DatasetError, match="a second record with id '1'"):
        write_jsonl(out, [OutputRecord("1", "s", text="x"), OutputRecord("1", "s", text="y")])
    with pytest.raises(DatasetError, match="no records left to write"):
        write_jsonl(out, [])
    assert out.read_bytes() == before
    assert [p.name for p in out.parent.iterdir()] == ["o.jsonl"]


def test_unique_ids_suffixes_repeats() -> None:
    recs = [OutputRecord("a", "s", text=t) for t in ("1", "2", "3")] + [
        OutputRecord("a#2", "s", text="4")
    ]
    assert [r.id for r in unique_ids(recs)] == ["a", "a#2", "a#3", "a#2#2"]
    assert json.loads(json.dumps([r.to_dict() for r in unique_ids(recs)]))[1]["text"] == "2"
