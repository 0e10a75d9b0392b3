"""Property tests: whatever the input, the readers give a result or their own one-line error.

Never another exception (a traceback, exit 1): the dataset reader, the ``${VAR}`` expander and
the recipe loader (through to a checked BenchConfig) are fed arbitrary and near-valid input.
"""

from __future__ import annotations

import json
import os
import tempfile

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from drbench.config import build_config
from drbench.dataset import load_prompts
from drbench.envsubst import expand
from drbench.errors import ConfigError, DatasetError
from drbench.recipe import RECIPE_KEYS, parse_recipe

FAST = settings(max_examples=200, deadline=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "text",
                    "messages",
                    "prompt",
                    "max_tokens",
                    "id",
                    "role",
                    "content",
                    "followup",
                    "x",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
json_lines = st.lists(json_values.map(lambda v: json.dumps(v, allow_nan=True)), max_size=5).map(
    lambda lines: "\n".join(lines).encode()
)
json_array = st.lists(json_values, max_size=5).map(lambda v: json.dumps(v).encode())
surrogate_line = st.integers(0xD800, 0xDFFF).map(lambda c: f'{{"text": "a\\u{c:04x}"}}'.encode())
deep = st.integers(500, 3000).map(lambda n: b"[" * n + b"]" * n)
noise = st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff", b"\\ud800", b"[", b"\n", b"\r\n", b'"'])
file_bytes = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    json_lines,
    json_array,
    st.tuples(noise, json_lines | json_array, noise).map(b"".join),
    st.lists(json_lines | surrogate_line | deep, min_size=1, max_size=3).map(b"\n".join),
)


@pytest.mark.slow  # CPU-bound
@FAST
@given(content=file_bytes)
def test_dataset_reader_gives_prompts_or_a_dataset_error(content: bytes) -> None:
    fd, name = tempfile.mkstemp(suffix=".jsonl")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        try:
            prompts = load_prompts(name)
        except DatasetError as exc:
            assert "\n" not in str(exc) and str(exc).startswith(name)
        else:
            assert prompts and len({p.id for p in prompts}) == len(prompts)
            for p in prompts:
                (p.text or json.dumps(p.messages, ensure_ascii=False)).encode("utf-8")
    finally:
        os.unlink(name)


dollar_text = st.text(alphabet="${}:-?$AB_a1 \n", max_size=30) | st.text(max_size=30)
environ = st.dictionaries(st.sampled_from(["A", "B", "A_1", "_", "a"]), dollar_text, max_size=4)


@FAST
@given(text=dollar_text, env=environ)
def test_envsubst_gives_a_string_or_its_config_error(text: str, env: dict[str, str]) -> None:
    try:
        out = expand(text, env, "r.yaml:1: model")
    except ConfigError as exc:
        assert str(exc).startswith("r.yaml:1: model")
    else:
        assert isinstance(out, str)
        if "$" not in text:
            assert out == text


scalars = st.none() | st.booleans() | st.integers() | st.floats() | dollar_text
yaml_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from([*RECIPE_KEYS, "name", "ttft_ms", "x-a"]), inner, max_size=3
        )
    ),
    max_leaves=8,
)
recipes = st.dictionaries(
    st.sampled_from([*RECIPE_KEYS, "x-extra", "nmae"]) | st.text(max_size=5),
    yaml_values,
    max_size=6,
).map(lambda d: yaml.safe_dump(d, allow_unicode=True))
yamlish = st.text(alphabet="abcdeknprsu_:-[]{}&*!<>?|#'\"$ \n\t0123.", max_size=80)
tricky = st.sampled_from(
    [
        "? [a, b]\n: 1\n",
        "1: x\n",
        "description: 2024-02-30\n",
        "x-a: &a [1, *a]\n",
        "<<: 5\n",
        "runs: 5\n",
        "runs:\n  - name: a\n    ? {b: 1}\n    : 2\n",
        "slo: {ttft_ms: .nan}\n",
        "timeout: .inf\n",
        "endpoint: 'http://h:99999/x'\n",
        "concurrency: [1, .nan]\n",
        "seed: 1e400\n",
        "x-d: " + "[" * 2000 + "\n",
    ]
)
mixed = st.lists(tricky | recipes | yamlish, min_size=1, max_size=3).map("".join)


@pytest.mark.slow  # CPU-bound
@FAST
@given(text=recipes | yamlish | mixed, env=environ)
def test_recipe_loader_gives_checked_configs_or_a_config_error(
    text: str, env: dict[str, str]
) -> None:
    try:
        recipe = parse_recipe(text, name="r.yaml", environ=env)
        configs = [build_config({}, run.values, environ={}).check() for run in recipe.runs]
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert len(configs) == len(recipe.runs) >= 1


def test_a_key_of_blank_lines_is_shown_quoted_on_one_line() -> None:
    """The counterexample Hypothesis found: the key itself held the line breaks."""
    with pytest.raises(ConfigError) as exc:
        parse_recipe("? '\n\n  '\n: null\n", name="r.yaml", environ={})
    assert "\n" not in str(exc.value) and "'\\n'" in str(exc.value)
