"""Recipes and SLO files share one YAML reader: bounded aliases, string keys, no key twice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from drbench.errors import ConfigError
from drbench.recipe import parse_recipe
from drbench.slo import load_slo_file
from drbench.yamlsafe import MAX_NODES, compose_document

URL = "http://127.0.0.1:9/v1/chat/completions"


def billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + f"\nx-laughs: *a{levels - 1}\nendpoint: {URL}\n"


def recipe_error(text: str) -> str:
    with pytest.raises(ConfigError) as err:
        parse_recipe(text, name="r.yaml", environ={})
    return str(err.value)


def test_billion_laughs_is_refused_quickly_naming_the_line() -> None:
    start = time.monotonic()
    message = recipe_error(billion_laughs())
    assert time.monotonic() - start < 20  # it used to run for a minute and take a gigabyte
    assert message.startswith("r.yaml:") and f"over {MAX_NODES} values" in message


def test_an_alias_inside_itself_is_refused() -> None:
    assert "refers to the collection that contains it" in recipe_error("x-a: &a [1, *a]\n")


def test_aliases_and_merges_of_reasonable_size_still_work() -> None:
    text = (
        "x-base: &base {rounds: 3, concurrency: [1, 2]}\n"
        f"endpoint: {URL}\n"
        "runs:\n  - name: a\n    <<: *base\n  - name: b\n    <<: *base\n    rounds: 4\n"
    )
    runs = parse_recipe(text, name="r.yaml", environ={}).runs
    assert [(r.values["rounds"], r.values["concurrency"]) for r in runs] == [
        (3, (1, 2)),
        (4, (1, 2)),
    ]


@pytest.mark.parametrize(
    "text, line, kind",
    [
        ("endpoint: x\n? [a, b]\n: 1\n", 2, "not a list"),
        ("? {a: 1}\n: 1\n", 1, "not a mapping"),
        ("rounds: 2\nnull: 1\n", 2, "read as null"),
        ("runs:\n  - name: a\n    3.5: x\n", 3, "read as float"),
    ],
)
def test_non_string_keys_are_one_line_naming_the_line(text: str, line: int, kind: str) -> None:
    message = recipe_error(text)
    assert message.startswith(f"r.yaml:{line}: a key must be a plain string") and kind in message


def test_deep_nesting_and_bad_values_are_one_line() -> None:
    assert recipe_error("x-deep: " + "[" * 100_000).startswith("r.yaml")
    assert recipe_error("description: 2024-02-30\n").startswith(
        "r.yaml:1: cannot read this value (day is out of range"
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slo.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_slo_file_refuses_a_key_given_twice_like_recipes(tmp_path: Path) -> None:
    path = write(tmp_path, "slo:\n  ttft_ms: 100\n  itl_ms: 5\n  ttft_ms: 200\n")
    with pytest.raises(ConfigError, match=r"slo\.yaml:4: ttft_ms: given twice \(first on line 2\)"):
        load_slo_file(path)
    with pytest.raises(ConfigError, match=r"slo\.yaml:3: slo: given twice"):
        load_slo_file(write(tmp_path, "slo: {ttft_ms: 1}\n\nslo: {ttft_ms: 2}\n"))


def test_slo_file_refuses_laughs_and_complex_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"over {MAX_NODES} values"):
        load_slo_file(write(tmp_path, billion_laughs() + "slo: {ttft_ms: 1}\n"))
    with pytest.raises(ConfigError, match=r"slo\.yaml:2: a key must be a plain string"):
        load_slo_file(write(tmp_path, "slo:\n  ? [ttft_ms]\n  : 1\n"))
    assert load_slo_file(write(tmp_path, "slo:\n  ttft_ms: 100\n")).ttft_ms == 100.0


def test_compose_document_of_an_empty_text_has_no_root() -> None:
    doc = compose_document("# nothing\n", "e.yaml")
    assert doc.root is None
    doc.close()


def test_flow_nesting_past_the_limit_is_refused_before_pyyaml_reads_it() -> None:
    """PyYAML's scanner is quadratic in flow depth: 100,000 brackets would take hours."""
    from drbench.yamlsafe import MAX_FLOW_DEPTH, compose_document

    with pytest.raises(ConfigError, match=r"^r.yaml:2: \[ and \{ nested more than 100 levels"):
        compose_document("a: 1\nb: " + "[" * 100_000 + "\n", "r.yaml")
    ok = "a: '" + "[" * 500 + "'\n# " + "{" * 500 + "\nb: " + "[" * MAX_FLOW_DEPTH + "]" * 100
    doc = compose_document(ok + "\n", "r.yaml")  # quoted and commented brackets do not count
    doc.close()


def test_a_repeated_key_made_of_blanks_is_named_on_one_line() -> None:
    # hypothesis found it: the key "\n" (a quoted scalar of blank lines) printed raw split the line
    with pytest.raises(ConfigError) as err:
        compose_document("? '\n\n  '\n: null\n? '\n\n  '\n: null\n", "r.yaml")
    assert str(err.value) == "r.yaml:5: '\\n': given twice (first on line 1); give each key once"
