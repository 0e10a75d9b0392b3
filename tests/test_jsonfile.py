"""The shared dataset reader (drbench/jsonfile.py), through the benchmarker and the converters.

Every bad file is one DatasetError line naming file:line; the converters turn it into one
stderr line and exit 2 without leaving a temporary file.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from drbench.convert import longbench, mix, sharegpt
from drbench.convert.jsonl import OutputRecord, check_file, read_items, write_jsonl
from drbench.dataset import load_prompts
from drbench.errors import DatasetError
from drbench.jsonfile import iter_items

DEEP = b"[" * 100_000 + b"]" * 100_000

BAD_FILES = {
    "surrogate.jsonl": (b'{"text": "a"}\n{"text": "x\\ud800y"}\n', 2, "lone UTF-16 surrogate"),
    "surrogate.json": (b'[{"text": "a"},\n {"text": "\\udfff"}]', 2, "lone UTF-16 surrogate"),
    "latin1.jsonl": (b'{"text": "a"}\n\n{"text": "caf\xe9"}\n', 3, "not UTF-8 text (byte 0xe9"),
    "latin1.json": (b'[\n{"text": "caf\xe9"}]', 2, "not UTF-8 text (byte 0xe9 at column 14)"),
    "deep.jsonl": (b'{"text": "a"}\n' + DEEP + b"\n", 2, "nested too deeply"),
    "deep.json": (b'[{"text": "a"},\n\n' + DEEP + b"]", 3, "nested too deeply"),
    "broken.jsonl": (b'{"text": "a"}\n{"text": }\n', 2, "not valid JSON (Expecting value"),
    "trailing.json": (b'[{"text": "a"}]\n]', 2, "extra data after the array"),
}


@pytest.fixture(params=sorted(BAD_FILES))
def bad_file(request, tmp_path: Path) -> tuple[Path, int, str]:
    content, line, message = BAD_FILES[request.param]
    path = tmp_path / request.param
    path.write_bytes(content)
    return path, line, message


def test_bad_files_are_one_line_naming_file_and_line(bad_file) -> None:
    path, line, message = bad_file
    for read in (load_prompts, lambda p: read_items(p, flag="--input")):
        with pytest.raises(DatasetError) as err:
            read(path)
        text = str(err.value)
        assert text.startswith(f"{path}:{line}: ") and message in text and "\n" not in text


def test_utf8_bom_is_accepted_in_jsonl_and_arrays(tmp_path: Path) -> None:
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b'\xef\xbb\xbf{"text": "a", "id": "x"}\n{"text": "b"}\n')
    array = tmp_path / "bom.json"
    array.write_bytes(b'\xef\xbb\xbf\n  [{"text": "a"},\n {"text": "b"}]\n')
    assert [(p.id, p.text) for p in load_prompts(jsonl)] == [("x", "a"), ("2", "b")]
    assert [(p.id, p.text) for p in load_prompts(array)] == [("1", "a"), ("2", "b")]
    assert [i.where for i in iter_items(array, flag="--x")] == [f"{array}:2", f"{array}:3"]


def test_a_valid_surrogate_pair_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "pair.jsonl"
    path.write_text('{"text": "\\ud83d\\ude00 ok"}\n', encoding="utf-8")
    assert load_prompts(path)[0].text == "\U0001f600 ok"


def test_missing_file_and_directory_name_the_flag(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no such file \(check --dataset\)"):
        load_prompts(tmp_path / "nope.jsonl")
    with pytest.raises(DatasetError, match=r"is a directory.*check --input"):
        read_items(tmp_path, flag="--input")


def test_jsonl_stops_at_the_first_bad_line_without_reading_the_rest(tmp_path: Path) -> None:
    """A FIFO whose writer keeps it open: reading to the end would block until it closes."""
    fifo = tmp_path / "data.jsonl"
    os.mkfifo(fifo)
    release, closed = threading.Event(), threading.Event()

    def writer() -> None:
        with fifo.open("wb") as f:
            f.write(b'{"text": }\n' + b'{"text": "more"}\n' * 1000)
            f.flush()
            release.wait(30)
        closed.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        with pytest.raises(DatasetError, match=r"data\.jsonl:1: not valid JSON"):
            load_prompts(fifo)
        assert not closed.is_set()  # the error came while the rest was still unread
    finally:
        release.set()
        thread.join(5)


def test_check_file_lists_every_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"text": "\\ud800"}\n{"text": "ok"}\n{"text": "\xff"}\n{"nope": 1}\n')
    problems = check_file(path)
    assert [p.split(": ")[0] for p in problems] == [f"{path}:{n}" for n in (1, 3, 4)]


def test_write_jsonl_leaves_no_temporary_file_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with pytest.raises(DatasetError, match="not valid Unicode"):
        write_jsonl(out, [OutputRecord("a", "t", text="ok"), OutputRecord("b", "t", text="\ud800")])
    assert list(tmp_path.iterdir()) == []


def _sharegpt_line(value: str) -> str:
    turns = [{"from": "human", "value": value}]
    return json.dumps({"id": "a", "conversations": turns}, ensure_ascii=False)


@pytest.mark.parametrize(
    "content, line, message",
    [
        ("\n" + _sharegpt_line("hello @ there").replace("@", "\\ud800"), 2, "surrogate"),
        (b"[" + DEEP + b"]", 1, "nested too deeply"),
        (b"\xef\xbb\xbf" + _sharegpt_line("caf\xe9").encode("latin-1") + b"\n", 1, "not UTF-8"),
    ],
    ids=["surrogate", "deep", "latin1"],
)
def test_converters_print_one_line_exit_2_and_leave_no_tmp(
    tmp_path: Path, capsys, content: bytes | str, line: int, message: str
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "out" / "o.jsonl"
    runs = {
        "process_sharegpt": lambda: sharegpt.main(["--input", str(src), "--output", str(out)]),
        "mix": lambda: mix.main(["--mix", f"{src}:1", "--total", "1", "--output", str(out)]),
        "convert_longbench": lambda: longbench.main(
            ["--input", str(src), "--dataset", "trec", "--output", str(out)]
        ),
    }
    for prog, run in runs.items():
        assert run() == 2, prog
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"{prog}: {src}:{line}: "), err
        assert message in err
        assert not out.parent.exists() or list(out.parent.iterdir()) == []
