"""Recipes: ${VAR} expansion, key checks with line numbers, runs, SLO, secrets, CLI precedence."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from drbench.cli import _resolve_runs, main
from drbench.config import OPTIONS, build_config
from drbench.envsubst import expand, expand_tree
from drbench.errors import ConfigError
from drbench.recipe import RECIPE_KEYS, keys_table_markdown, load_recipe, parse_recipe

ROOT = Path(__file__).resolve().parent.parent
URL = "http://127.0.0.1:9/v1/chat/completions"
SECRET = "sk-test-0123456789abcdef"


def recipe(text: str, **env: str):
    return parse_recipe(text, name="recipe.yaml", environ=env)


def values(text: str, **env: str) -> dict:
    (run,) = recipe(text, **env).runs
    return run.values


def error(text: str, **env: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_recipe(text, name="recipe.yaml", environ=env)
    message = str(info.value)
    assert "\n" not in message
    return message


def no_flags(**given) -> dict:
    return {o.name: given.get(o.name) for o in OPTIONS}


# --- expand: every form ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("plain text", {}, "plain text"),
        ("${A}", {"A": "x"}, "x"),
        ("pre-${A}-post", {"A": "x"}, "pre-x-post"),
        ("${A}${B}", {"A": "1", "B": "2"}, "12"),
        ("${A}", {"A": ""}, ""),
        ("${A:-dflt}", {}, "dflt"),
        ("${A:-dflt}", {"A": ""}, "dflt"),
        ("${A:-dflt}", {"A": "set"}, "set"),
        ("${A:-}", {}, ""),
        ("${URL:-http://h:8000/v1?a=b}", {}, "http://h:8000/v1?a=b"),
        ("${A:-two words}", {}, "two words"),
        ("${A:?needed}", {"A": "v"}, "v"),
        ("${A:-${B:-inner}}", {}, "inner"),
        ("${A:-${B:-inner}}", {"B": "b"}, "b"),
        ("${A:-${B:-inner}}", {"A": "a"}, "a"),
        ("$$", {}, "$"),
        ("cost: $$5", {}, "cost: $5"),
        ("$${A}", {"A": "x"}, "${A}"),
        ("$$$${A}", {}, "$${A}"),
        ("$${A}${A}", {"A": "x"}, "${A}x"),
        ("${A:-$$}", {}, "$"),
        ("5$ and $5 and $", {}, "5$ and $5 and $"),
        ("${A}", {"A": "${B}"}, "${B}"),  # a value is never expanded again
        ("${A}", {"A": "$HOME $$"}, "$HOME $$"),
    ],
)
def test_expand_forms(text, env, expected):
    assert expand(text, env, "recipe.yaml:1: model") == expected


def test_unset_variable_without_default_is_an_error_that_shows_the_fix():
    with pytest.raises(ConfigError) as info:
        expand("${NOPE}", {}, "recipe.yaml:3: model")
    assert str(info.value) == (
        "recipe.yaml:3: model: ${NOPE} is not set; set it, or write ${NOPE:-default} "
        "(${NOPE:-} leaves the option unset)"
    )


@pytest.mark.parametrize("env", [{}, {"OUT": ""}])
def test_required_variable_unset_or_empty_stops_with_its_message(env):
    with pytest.raises(ConfigError) as info:
        expand("${OUT:?set OUT to the results directory}", env, "r.yaml:9: output_dir")
    assert str(info.value) == "r.yaml:9: output_dir: OUT: set OUT to the results directory"


def test_required_variable_without_message_says_what_is_wrong():
    with pytest.raises(ConfigError, match=r"^w: OUT: is not set or empty$"):
        expand("${OUT:?}", {}, "w")


def test_a_multi_line_required_message_still_gives_one_line():
    message = error("output_dir: |-\n  ${OUT:?set OUT\n  to a directory}\n")
    assert message == "recipe.yaml:1: output_dir: OUT: set OUT to a directory"


def test_required_message_may_itself_use_variables():
    with pytest.raises(ConfigError, match=r"^w: OUT: set OUT on host-1$"):
        expand("${OUT:?set OUT on ${HOST}}", {"HOST": "host-1"}, "w")


def test_the_default_is_not_expanded_when_the_variable_is_set():
    # the unset ${MISSING} in the default would be an error if it were evaluated
    assert expand("${A:-${MISSING}}", {"A": "a"}, "w") == "a"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("$HOME/x", r"\$HOME is not expanded; write \$\{HOME\} .* or \$\$HOME"),
        ("${A", r"unterminated '\$\{'"),
        ("${A:-${B}", r"unterminated '\$\{'"),
        ("${}", r"bad substitution '\$\{\}'"),
        ("${1A}", r"bad substitution '\$\{1A\}'"),
        ("${A:+x}", r"bad substitution '\$\{A:\+x\}'; use \$\{NAME\}, \$\{NAME:-default\}"),
        ("${A-x}", r"bad substitution"),
        ("${A B}", r"bad substitution"),
    ],
)
def test_malformed_references_are_errors(text, pattern):
    with pytest.raises(ConfigError, match=r"^recipe.yaml:2: model: " + pattern):
        expand(text, {"A": "a", "B": "b", "HOME": "/home/u"}, "recipe.yaml:2: model")


def test_expand_tree_walks_lists_and_mapping_values_but_not_keys():
    tree = {"${K}": ["${A}", {"deep": "${B:-b}"}, 3, None, True], "n": 1.5}
    out = expand_tree(tree, {"K": "key", "A": "a"}, "w")
    assert out == {"${K}": ["a", {"deep": "b"}, 3, None, True], "n": 1.5}


def test_expand_tree_names_the_position_of_a_failing_item():
    with pytest.raises(ConfigError, match=r"^w\[1\]\.x: \$\{NOPE\} is not set"):
        expand_tree(["ok", {"x": "${NOPE}"}], {}, "w")


# --- recipes: values, types, expansion after parsing -----------------------------------------


def test_a_recipe_without_runs_is_one_unnamed_run_of_its_values():
    r = recipe(f"endpoint: {URL}\nconcurrency: [1, 5]\nshuffle: yes\ntimeout: 30\n")
    assert [run.name for run in r.runs] == [""]
    assert r.runs[0].values == {
        "endpoint": URL,
        "concurrency": (1, 5),
        "shuffle": True,
        "timeout": 30.0,
    }
    assert r.warnings == ()


def test_one_variable_holding_a_list_of_levels_becomes_integers():
    assert values("concurrency: ${LEVELS}", LEVELS="5 10 20")["concurrency"] == (5, 10, 20)
    assert values("concurrency: ${LEVELS}", LEVELS="5,10")["concurrency"] == (5, 10)
    assert values("concurrency: ${L:-1 2}")["concurrency"] == (1, 2)


def test_variables_inside_yaml_lists_and_every_kind_of_value_are_converted():
    got = values(
        "concurrency: [1, '${C2}', \"${C3:-4}\"]\n"
        "prometheus_url: ['${M1}', 'http://b/metrics']\n"
        "num_samples: ${N}\ntemperature: ${T}\nshuffle: ${S}\ncold_start: ${P}\n",
        C2="2",
        M1="http://a/metrics",
        N="7",
        T="0.5",
        S="true",
        P="reset",
    )
    assert got["concurrency"] == (1, 2, 4)
    assert got["prometheus_url"] == ("http://a/metrics", "http://b/metrics")
    assert (got["num_samples"], got["temperature"], got["shuffle"]) == (7, 0.5, True)
    assert got["cold_start"] == "reset"


def test_a_variable_cannot_inject_yaml_structure():
    got = values(
        "model: ${EVIL}\nfollowup_text: ${EVIL2}\n",
        EVIL="x\nendpoint: http://evil/v1/chat/completions",
        EVIL2="{a: 1, b: [2]}",
    )
    assert got == {
        "model": "x\nendpoint: http://evil/v1/chat/completions",
        "followup_text": "{a: 1, b: [2]}",
    }


@pytest.mark.parametrize(
    "text", ["model: ${M:-}", "model: ${M}", "model: ''", "model:", "model: null", "model: ~"]
)
def test_empty_and_null_values_leave_the_option_unset(text):
    assert values(text, M="") == {}


def test_yaml_comments_and_quoting_are_plain_yaml():
    got = values("followup_text: 'a # not a comment'  # a comment\nmodel: \"$${literal}\"\n")
    assert got == {"followup_text": "a # not a comment", "model": "${literal}"}


# --- conversion errors name the key, the variable and the value ------------------------------


def test_conversion_error_names_line_key_variable_and_bad_value():
    message = error(f"endpoint: {URL}\n\nconcurrency: ${{LEVELS}}\n", LEVELS="five")
    assert message == "recipe.yaml:3: concurrency: ${LEVELS} gave 'five'; expected an integer"


def test_conversion_error_names_the_bad_item_of_a_list():
    message = error("concurrency: ${LEVELS:-1}", LEVELS="5 ten 20")
    assert message == (
        "recipe.yaml:1: concurrency: ${LEVELS:-1} gave '5 ten 20'; expected an integer, got 'ten'"
    )


def test_conversion_error_in_a_yaml_list_names_the_variables():
    message = error("concurrency: [1, '${C}']", C="x")
    assert message.startswith("recipe.yaml:1: concurrency: ${C} gave [1, 'x']; expected an integer")


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("num_samples: ${N}", {"N": "1.5"}, "num_samples: ${N} gave '1.5'; expected an integer"),
        ("timeout: ${T}", {"T": "soon"}, "timeout: ${T} gave 'soon'; expected a number"),
        ("shuffle: ${S}", {"S": "maybe"}, "shuffle: ${S} gave 'maybe'; expected true or false"),
        (
            "round2_mode: ${R}",
            {"R": "again"},
            "round2_mode: ${R} gave 'again'; expected one of repeat, continue",
        ),
    ],
)
def test_conversion_errors_of_each_kind(text, env, expected):
    assert error(text, **env) == "recipe.yaml:1: " + expected


def test_literal_values_of_the_wrong_type_name_line_and_key():
    assert error("\nnum_samples: many\n") == (
        "recipe.yaml:2: num_samples: expected an integer, got 'many'"
    )
    assert error("rounds: true") == "recipe.yaml:1: rounds: expected a number, got True"
    assert error("model: {a: 1}") == (
        "recipe.yaml:1: model: expected a single value or a list, got a mapping"
    )
    assert error("timeout: [1, 2]") == "recipe.yaml:1: timeout: expected a single value, got a list"


def test_a_value_from_a_secret_looking_variable_is_not_echoed():
    message = error("num_samples: ${MY_TOKEN}", MY_TOKEN="tok-12345")
    assert "tok-12345" not in message
    assert message.startswith("recipe.yaml:1: num_samples: ${MY_TOKEN} gave a value (hidden")


# --- unknown keys, duplicates, structure ------------------------------------------------------


def test_unknown_key_suggests_the_nearest_and_gives_its_line():
    text = f"endpoint: {URL}\n# comment\n\nconcurency: 5\n"
    assert error(text) == "recipe.yaml:4: concurency: unknown key; did you mean 'concurrency'?"


def test_kebab_case_keys_suggest_the_snake_case_key():
    assert error("num-samples: 5") == (
        "recipe.yaml:1: num-samples: unknown key; did you mean 'num_samples'?"
    )


def test_unknown_key_without_a_near_match_points_at_the_guide():
    assert error("zzzz: 1") == (
        "recipe.yaml:1: zzzz: unknown key; see docs/RECIPE_GUIDE.md for the keys"
    )
    assert error("1: x").startswith("recipe.yaml:1: a key must be a plain string")


def test_unknown_key_in_a_run_names_the_run_and_the_line():
    text = "runs:\n  - name: a\n  - name: b\n    modle: m\n"
    assert error(text) == "recipe.yaml:4: runs[1].modle: unknown key; did you mean 'model'?"


def test_runs_cannot_nest_and_name_is_only_a_run_key():
    assert "runs[0].runs: unknown key" in error("runs:\n  - name: a\n    runs: []\n")
    assert error("name: x").startswith("recipe.yaml:1: name: unknown key")


def test_a_key_given_twice_is_an_error_not_a_silent_overwrite():
    assert error("concurrency: 1\nmodel: m\nconcurrency: 2\n") == (
        "recipe.yaml:3: concurrency: given twice (first on line 1); give each key once"
    )


def test_a_key_given_twice_inside_a_run_or_the_slo_is_an_error_too():
    assert error("runs:\n  - name: a\n    model: m\n    model: n\n").startswith(
        "recipe.yaml:4: model: given twice (first on line 3)"
    )
    assert error("slo:\n  ttft_ms: 1\n  ttft_ms: 2\n").startswith(
        "recipe.yaml:3: ttft_ms: given twice (first on line 2)"
    )


def test_yaml_syntax_errors_give_line_and_column():
    assert error("model: m\nendpoint: a: b\n") == (
        "recipe.yaml:2: not valid YAML (mapping values are not allowed here, column 12)"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "recipe.yaml: the recipe is empty; expected keys such as 'endpoint: URL'"),
        (
            "# only a comment\n",
            "recipe.yaml: the recipe is empty; expected keys such as 'endpoint: URL'",
        ),
        ("- a\n- b\n", "recipe.yaml:1: expected a mapping of keys (e.g. 'endpoint: URL')"),
    ],
)
def test_a_recipe_must_be_a_mapping(text, expected):
    assert error(text) == expected


def test_python_tags_are_refused_by_the_safe_loader():
    assert "not valid YAML" in error("model: !!python/object/apply:os.system ['echo hi']")


def test_anchors_merge_keys_and_x_extension_keys_share_settings_between_runs():
    text = (
        "x-small: &small\n  num_samples: 3\n  max_tokens: 8\n"
        "runs:\n"
        "  - name: a\n    <<: *small\n"
        "  - name: b\n    <<: *small\n    max_tokens: 16\n"
    )
    a, b = recipe(text).runs
    assert a.values == {"num_samples": 3, "max_tokens": 8}
    assert b.values == {"num_samples": 3, "max_tokens": 16}


# --- runs ---------------------------------------------------------------------------------------


def test_runs_override_the_recipe_defaults_in_file_order():
    text = (
        f"endpoint: {URL}\nconcurrency: [1, 2]\nmodel: base\n"
        "runs:\n"
        "  - name: small\n"
        "  - name: big\n    concurrency: ${BIG:-8 16}\n    description: the big one\n"
        "  - name: other\n    model: ${OTHER_MODEL}\n"
    )
    r = recipe(text, OTHER_MODEL="m2")
    assert [run.name for run in r.runs] == ["small", "big", "other"]
    small, big, other = (run.values for run in r.runs)
    assert small == {"endpoint": URL, "concurrency": (1, 2), "model": "base"}
    assert big == {"endpoint": URL, "concurrency": (8, 16), "model": "base"}
    assert other == {"endpoint": URL, "concurrency": (1, 2), "model": "m2"}
    assert r.runs[1].description == "the big one"


def test_a_run_value_that_expands_to_empty_keeps_the_recipe_default():
    (run,) = recipe("model: base\nruns:\n  - name: a\n    model: ${M:-}\n").runs
    assert run.values == {"model": "base"}


def test_run_names_may_come_from_variables():
    (run,) = recipe("runs:\n  - name: ${TAG:-nightly}-c8\n", TAG="pr42").runs
    assert run.name == "pr42-c8"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("runs:\n  - model: m\n", "recipe.yaml:2: runs[0]: missing 'name' (its subdirectory)"),
        ("runs: []\n", "recipe.yaml:1: runs: expected a non-empty list of runs"),
        ("runs: {name: a}\n", "recipe.yaml:1: runs: expected a non-empty list of runs"),
        ("runs:\n  - a\n", "recipe.yaml:2: runs[0]: expected a mapping with 'name'"),
        (
            "runs:\n  - name: a\n  - name: A\n",
            "recipe.yaml:3: runs[1].name: 'A' is already the name of the run on line 2",
        ),
        (
            "runs:\n  - name: ../up\n",
            "recipe.yaml:2: runs[0].name: '../up' cannot name a directory",
        ),
        ("runs:\n  - name: a/b\n", "recipe.yaml:2: runs[0].name: 'a/b' cannot name a directory"),
        ("runs:\n  - name: .hidden\n", "recipe.yaml:2: runs[0].name: '.hidden' cannot name"),
        ("runs:\n  - name: ''\n", "recipe.yaml:2: runs[0].name: '' cannot name a directory"),
        ("runs:\n  - name: [a]\n", "recipe.yaml:2: runs[0].name: ['a'] cannot name a directory"),
    ],
)
def test_bad_runs_are_errors(text, expected):
    assert error(text).startswith(expected)


# --- SLO -----------------------------------------------------------------------------------------


def test_slo_mapping_becomes_the_slo_list_form():
    got = values("slo:\n  ttft_ms: 1000\n  itl_ms: 50.5\n  itl_mode: max\n")
    assert got == {"slo": ("ttft_ms=1000", "itl_ms=50.5", "itl_mode=max")}


def test_slo_bounds_may_come_from_variables():
    got = values("slo:\n  ttft_ms: ${TTFT:-800}\n  latency_ms: ${LAT}\n", LAT="20000")
    assert got == {"slo": ("ttft_ms=800", "latency_ms=20000")}


def test_slo_list_form_is_accepted_and_checked():
    assert values("slo: [ttft_ms=500, itl_ms=40]") == {"slo": ("ttft_ms=500", "itl_ms=40")}
    assert values("slo: ${SLO}", SLO="ttft_ms=500 tpot_ms=30") == {
        "slo": ("ttft_ms=500", "tpot_ms=30")
    }
    assert error("slo: [ttft=5]").startswith("recipe.yaml:1: slo ttft: unknown key")


def test_slo_errors_give_the_line_of_the_bound():
    assert error("slo:\n  ttft_ms: 1000\n  itl: 5\n").startswith(
        "recipe.yaml:3: slo.itl: unknown key; did you mean 'itl_ms'?"
    )
    assert error("slo:\n  ttft_ms: ${T}\n", T="fast") == (
        "recipe.yaml:2: slo.ttft_ms: expected a positive number of milliseconds, got 'fast'"
    )
    assert "slo.ttft_ms: expected a positive number" in error("slo:\n  ttft_ms: -1\n")


def test_a_run_may_replace_the_slo():
    text = "slo: {ttft_ms: 1000}\nruns:\n  - name: a\n  - name: b\n    slo: {ttft_ms: 200}\n"
    a, b = recipe(text).runs
    assert a.values["slo"] == ("ttft_ms=1000",)
    assert b.values["slo"] == ("ttft_ms=200",)


# --- the API key ---------------------------------------------------------------------------------


def test_a_literal_api_key_gets_a_warning_that_does_not_repeat_it():
    r = recipe(f"endpoint: {URL}\napi_key: {SECRET}\n")
    assert r.runs[0].values["api_key"] == SECRET
    (warning,) = r.warnings
    assert warning.startswith("recipe.yaml:2: api_key is written literally in the recipe")
    assert "${OPENAI_API_KEY}" in warning
    assert SECRET not in warning


def test_an_api_key_from_a_variable_gets_no_warning_and_is_redacted_everywhere():
    r = recipe("api_key: ${OPENAI_API_KEY}\n", OPENAI_API_KEY=SECRET)
    assert r.warnings == ()
    assert r.runs[0].values["api_key"] == SECRET
    assert SECRET not in repr(r)
    cfg = build_config(no_flags(), r.runs[0].values, environ={})
    assert cfg.api_key == SECRET
    assert SECRET not in json.dumps(cfg.to_dict())
    assert cfg.to_dict()["api_key"] == "***"
    assert SECRET not in repr(cfg)


def test_an_empty_api_key_variable_leaves_the_key_unset():
    assert values("api_key: ${OPENAI_API_KEY:-}\n") == {}


# --- the files: load_recipe, examples, the generated docs -----------------------------------


def test_load_recipe_reads_the_file_and_the_process_environment(tmp_path, monkeypatch):
    path = tmp_path / "r.yaml"
    path.write_text("model: ${DRB_TEST_MODEL}\n", encoding="utf-8")
    monkeypatch.setenv("DRB_TEST_MODEL", "from-env")
    r = load_recipe(path)
    assert r.path == str(path)
    assert r.runs[0].values == {"model": "from-env"}
    assert load_recipe(path, environ={"DRB_TEST_MODEL": "given"}).runs[0].values["model"] == "given"


def test_load_recipe_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such file \(check --recipe\)$"):
        load_recipe(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_recipe(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("concurency: 5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(bad))}:1: concurency: unknown key"):
        load_recipe(bad)


@pytest.mark.parametrize(
    "name",
    [
        "recipe_example.yaml",
        "recipe_dual_round.yaml",
        "recipe_env_test.yaml",
        "recipe_workloads.yaml",
    ],
)
def test_example_recipes_load_with_no_warnings(name):
    env = {"DRB_OUTPUT_DIR": "results/ci"}
    r = load_recipe(ROOT / "examples" / name, environ=env)
    assert r.warnings == ()
    assert r.description
    for run in r.runs:
        build_config(no_flags(), run.values, environ={}).check()


def test_env_test_recipe_takes_every_machine_value_from_the_environment():
    env = {
        "DRB_ENDPOINT": URL,
        "DRB_MODEL": "m",
        "DRB_API_KEY": SECRET,
        "DRB_DATASET": "d.jsonl",
        "DRB_NUM_SAMPLES": "3",
        "DRB_CONCURRENCY": "2,4",
        "DRB_OUTPUT_DIR": "out",
    }
    (run,) = load_recipe(ROOT / "examples" / "recipe_env_test.yaml", environ=env).runs
    got = {k: run.values.get(k) for k in ("endpoint", "model", "api_key", "dataset")}
    assert got == {"endpoint": URL, "model": "m", "api_key": SECRET, "dataset": "d.jsonl"}
    assert (run.values["num_samples"], run.values["concurrency"]) == (3, (2, 4))
    with pytest.raises(ConfigError, match="DRB_OUTPUT_DIR: set DRB_OUTPUT_DIR to the results"):
        load_recipe(ROOT / "examples" / "recipe_env_test.yaml", environ={})


def test_dual_round_recipe_has_both_round2_modes_prometheus_and_slo():
    runs = load_recipe(ROOT / "examples" / "recipe_dual_round.yaml", environ={}).runs
    assert {run.name: run.values.get("round2_mode") for run in runs} == {
        "repeat": "repeat",
        "continue": "continue",
    }
    for run in runs:
        assert run.values["prometheus_url"] and run.values["slo"]
        assert run.values["cold_start"] == "nonce"


def test_recipe_guide_holds_exactly_the_generated_key_table():
    guide = (ROOT / "docs" / "RECIPE_GUIDE.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- keys-table:start -->\n(.*?)<!-- keys-table:end -->", guide, re.S)
    assert match, "docs/RECIPE_GUIDE.md lost its keys-table markers"
    assert match.group(1) == keys_table_markdown(), (
        "docs/RECIPE_GUIDE.md is out of date: paste the output of "
        "python -c 'from drbench.recipe import keys_table_markdown as t; print(t(), end=\"\")'"
    )


def test_the_key_table_has_one_row_per_recipe_key_with_its_flag():
    table = keys_table_markdown()
    keys = re.findall(r"^\| `([a-z_0-9]+)` \|", table, re.M)
    assert keys == list(RECIPE_KEYS)
    assert (
        "| `concurrency` | list of integers | from 1 to 10000 | `[5]` | `--concurrency` |" in table
    )
    assert "| `timeout` | number | above 0 and at most 86400 | `300.0` | `--timeout` |" in table
    assert (
        "| `cold_start` | one of `nonce`, `reset`, `none` |  | `nonce` | `--cold-start` |" in table
    )


# --- the CLI: precedence, layout, --dry-run -----------------------------------------------------


def write_recipe(tmp_path, text: str) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_flags_override_the_recipe_and_unset_flags_keep_it(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    path = write_recipe(
        tmp_path, f"endpoint: {URL}\nconcurrency: [1, 2]\nmodel: recipe-model\nmax_tokens: 9\n"
    )
    ((name, cfg),) = _resolve_runs(no_flags(concurrency=[7], max_tokens=3), path)
    assert name == ""
    assert cfg.concurrency == (7,) and cfg.max_tokens == 3  # the flags
    assert cfg.model == "recipe-model" and cfg.endpoint == URL  # the recipe
    assert cfg.timeout == 300.0  # the default


def test_flags_override_every_run_of_a_multi_run_recipe(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    path = write_recipe(
        tmp_path,
        "model: m\noutput_dir: res\nruns:\n  - name: a\n    model: ma\n  - name: b\n",
    )
    runs = _resolve_runs(no_flags(model="flag-model"), path)
    assert [(n, c.model) for n, c in runs] == [("a", "flag-model"), ("b", "flag-model")]
    assert [c.output_dir for _, c in runs] == [str(Path("res/a")), str(Path("res/b"))]
    runs = _resolve_runs(no_flags(output_dir=str(tmp_path / "o")), path)
    assert [c.output_dir for _, c in runs] == [str(tmp_path / "o" / "a"), str(tmp_path / "o" / "b")]


def test_the_recipe_key_wins_over_openai_api_key_and_the_flag_over_both(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("RECIPE_KEY", "sk-from-recipe")
    path = write_recipe(tmp_path, "api_key: ${RECIPE_KEY}\n")
    assert _resolve_runs(no_flags(), path)[0][1].api_key == "sk-from-recipe"
    assert _resolve_runs(no_flags(api_key="sk-flag"), path)[0][1].api_key == "sk-flag"
    path = write_recipe(tmp_path, "api_key: ${NO_SUCH_KEY_VAR:-}\n")
    assert _resolve_runs(no_flags(), path)[0][1].api_key == "sk-from-env"


def test_dry_run_prints_every_run_with_the_key_redacted(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRB_TEST_KEY", SECRET)
    path = write_recipe(
        tmp_path,
        f"endpoint: {URL}\ndataset: d.jsonl\napi_key: ${{DRB_TEST_KEY}}\n"
        "runs:\n  - name: c1\n    concurrency: 1\n  - name: c8\n    concurrency: 8\n",
    )
    status = main(["--recipe", path, "--dry-run", "--output-dir", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert status == 0 and err == ""
    assert SECRET not in out
    docs = json.loads(out)  # one JSON list: a run per entry
    assert [(d["run"], d["config"]["concurrency"]) for d in docs] == [("c1", [1]), ("c8", [8])]
    assert {d["config"]["api_key"] for d in docs} == {"***"}
    assert docs[1]["config"]["output_dir"] == str(tmp_path / "out" / "c8")
    assert not (tmp_path / "out").exists()  # --dry-run writes nothing


def test_dry_run_warns_about_a_literal_key_on_stderr_without_showing_it(tmp_path, capsys):
    path = write_recipe(tmp_path, f"endpoint: {URL}\napi_key: {SECRET}\n")
    assert main(["--recipe", path, "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    assert err.startswith(f"drbench: warning: {path}:2: api_key is written literally")


def test_cli_recipe_errors_are_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DRB_TEST_OUT", raising=False)
    path = write_recipe(tmp_path, "model: m\noutput_dir: ${DRB_TEST_OUT:?set DRB_TEST_OUT}\n")
    assert main(["--recipe", path, "--dry-run"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"drbench: {path}:2: output_dir: DRB_TEST_OUT: set DRB_TEST_OUT\n"


def test_a_bad_substitution_over_lines_is_still_one_line():
    """Found by tests/test_properties.py: a quoted YAML value may hold a newline inside ${...}."""
    with pytest.raises(ConfigError) as info:
        parse_recipe("endpoint: '${A\n\n  }'\n", name="r.yaml", environ={})
    assert "\n" not in str(info.value)
    assert "bad substitution '${A\\n}'" in str(info.value)  # YAML folds the blank line
