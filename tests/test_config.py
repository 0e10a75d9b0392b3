"""The option table, defaults < recipe < flags, range checks and their one-line messages."""

from __future__ import annotations

import pytest

from drbench.cli import build_parser, main
from drbench.config import OPTIONS, BenchConfig, build_config, coerce
from drbench.errors import ConfigError


def flags(*argv: str) -> dict:
    args = build_parser().parse_args(list(argv))
    return {o.name: getattr(args, o.name) for o in OPTIONS}


def test_every_option_is_a_config_field_and_a_flag() -> None:
    names = {o.name for o in OPTIONS}
    assert names == set(BenchConfig.__dataclass_fields__)
    assert all(v is None for v in flags().values())  # nothing is "set" unless typed


def test_defaults_recipe_then_flags() -> None:
    cfg = build_config(
        flags("--concurrency", "2", "8"), {"concurrency": (1,), "rounds": 3}, environ={}
    )
    assert cfg.concurrency == (2, 8) and cfg.rounds == 3 and cfg.max_tokens is None


def test_list_flags_accept_repeats() -> None:
    f = flags("--prometheus-url", "http://a/metrics", "--prometheus-url", "http://b/metrics")
    assert build_config(f, environ={}).prometheus_url == ("http://a/metrics", "http://b/metrics")


def test_api_key_from_environment_and_redacted_everywhere() -> None:
    cfg = build_config(flags(), environ={"OPENAI_API_KEY": "sk-secret"})
    assert cfg.api_key == "sk-secret"
    assert "sk-secret" not in repr(cfg) and cfg.to_dict()["api_key"] == "***"
    assert (
        build_config(flags("--api-key", "sk-flag"), environ={"OPENAI_API_KEY": "x"}).api_key
        == "sk-flag"
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--concurrency", "0"], "--concurrency must be from 1 to 10000 (got 0)"),
        (["--rounds", "0"], "--rounds must be from 1 to 100 (got 0)"),
        (["--timeout", "0"], "--timeout must be above 0 and at most 86400 (got 0.0)"),
        (["--fail-on-slo", "120"], "--fail-on-slo must be from 0 to 100 (got 120.0)"),
        (["--cold-start", "reset"], "--cold-start reset needs --cache-reset-url URL"),
        (["--endpoint", "localhost:8000"], "--endpoint: is not a URL; give scheme://host"),
        (["--round2-mode", "continue", "--rounds", "1"], "--round2-mode continue needs --rounds 2"),
    ],
)
def test_range_errors_name_the_flag(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_config(flags(*argv), environ={}).check()
    assert str(err.value).startswith(message)


NUMBERS = [o for o in OPTIONS if o.kind in ("int", "float", "int_list", "float_list", "int_auto")]
# What an option needs beside it to be checked at all: rate levels replace --concurrency's, and
# a rate level's cap needs rate levels.
COMPANIONS = {
    "request_rate": {"concurrency": ()},
    "max_concurrency": {"request_rate": (10.0,), "concurrency": ()},
    "speedup": {"fixed_schedule": True, "concurrency": ()},
    "ray_hosts": {"executor": "ray"},
}


def test_every_number_option_has_a_documented_range() -> None:
    assert NUMBERS and all(o.range_words for o in NUMBERS)


@pytest.mark.parametrize("opt", [o for o in NUMBERS if o.kind == "float"], ids=lambda o: o.name)
@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e309"])
def test_float_flags_must_be_finite(opt, text: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_config(flags(f"{opt.flag}={text}"), environ={}).check()
    assert str(err.value).startswith(f"{opt.flag} must be {opt.range_words} (got ")


@pytest.mark.parametrize("opt", NUMBERS, ids=lambda o: o.name)
def test_number_ranges_are_inclusive_and_refuse_just_outside(opt) -> None:
    floats = opt.kind in ("float", "float_list")
    step = 0.001 if floats else 1
    typ = float if floats else int
    listed = opt.kind.endswith("_list")
    companions = COMPANIONS.get(opt.name, {})
    inside = [opt.high] if opt.low_open else [opt.low, opt.high]
    for v in inside:
        BenchConfig(**companions, **{opt.name: (typ(v),) if listed else typ(v)}).check()
    for v in (opt.low if opt.low_open else opt.low - step, opt.high + step):
        value = (typ(v),) if listed else typ(v)
        with pytest.raises(ConfigError, match=f"^{opt.flag} must be "):
            BenchConfig(**companions, **{opt.name: value}).check()


def test_recipe_values_get_the_same_range_check_naming_the_key(tmp_path, capsys) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("endpoint: http://127.0.0.1:9/v1/chat/completions\ntimeout: .inf\n")
    assert main(["--recipe", str(recipe), "--dataset", "x", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"drbench: --timeout (recipe key 'timeout' in {recipe}) must be above 0 and at most "
        "86400 (got inf)"
    )


@pytest.mark.parametrize("flag", ["--endpoint", "--prometheus-url", "--cache-reset-url"])
@pytest.mark.parametrize(
    "url, message",
    [
        ("http://h:99999/x", "port 99999 is out of range (1-65535) in http://h:99999"),
        ("http://user:s3cret@h:99999/x", "port 99999 is out of range (1-65535) in http://h:99999"),
        ("http://h:abc/x", "port 'abc' is not a number in http://h:abc"),
        ("http://:8000/x", "has no host"),
        ("ftp://h/x", "scheme 'ftp' is not supported; use http:// or https://"),
        ("http://h x/", "holds a space or a control character"),
    ],
)
def test_bad_urls_are_usage_errors_naming_the_flag(
    flag: str, url: str, message: str, capsys
) -> None:
    argv = ["--endpoint", "http://127.0.0.1:9/v1/chat/completions", "--dataset", "x"]
    argv += [flag, url, "--cold-start", "reset", "--cache-reset-url", "http://127.0.0.1:9/r"]
    if flag == "--cache-reset-url":
        argv = argv[:-2] + [flag, url]
    assert main([*argv, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err == f"drbench: {flag}: {message}\n" or (
        err.startswith(f"drbench: {flag}: {message}") and err.count("\n") == 1
    )
    assert "s3cret" not in err and "user" not in err


def test_urls_lose_surrounding_whitespace() -> None:
    cfg = build_config(
        flags(
            "--endpoint", " http://h:8000/v1/chat/completions\t", "--prometheus-url", " http://h/m "
        ),
        {"cache_reset_url": "  http://h/reset\n"},
        environ={},
    ).check()
    assert cfg.endpoint == "http://h:8000/v1/chat/completions"
    assert (cfg.prometheus_url, cfg.cache_reset_url) == (("http://h/m",), "http://h/reset")


@pytest.mark.parametrize(
    "kind_name, value, expected",
    [
        ("concurrency", "5 10, 20", (5, 10, 20)),
        ("rounds", "3", 3),
        ("rounds", 3.0, 3),
        ("shuffle", "yes", True),
        ("temperature", "0.5", 0.5),
        ("prometheus_url", "http://x", ("http://x",)),
        ("prometheus_metrics", 'a{x="1",y="2, 3"} b,c', ('a{x="1",y="2, 3"}', "b", "c")),
    ],
)
def test_coerce_converts_strings_from_recipes(
    kind_name: str, value: object, expected: object
) -> None:
    opt = next(o for o in OPTIONS if o.name == kind_name)
    assert coerce(opt, value, "r.yaml:3") == expected


@pytest.mark.parametrize(
    "name, value",
    [
        ("rounds", "two"),
        ("rounds", 2.5),
        ("shuffle", "maybe"),
        ("cold_start", "warm"),
        ("concurrency", "5 x"),
    ],
)
def test_coerce_errors_say_where(name: str, value: object) -> None:
    opt = next(o for o in OPTIONS if o.name == name)
    with pytest.raises(ConfigError, match=rf"^r.yaml:3: {name}: expected"):
        coerce(opt, value, "r.yaml:3")


def test_cli_usage_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    assert main(["--dataset", "x.json"]) == 2
    assert capsys.readouterr().err.strip() == "drbench: --endpoint URL is required (or try --demo)"
    code = main(
        [
            "--endpoint",
            "http://127.0.0.1:9/v1/chat/completions",
            "--dataset",
            str(tmp_path / "no.jsonl"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert (
        code == 2 and err.endswith("no.jsonl: no such file (check --dataset)") and "\n" not in err
    )
    code = main(  # a base URL is completed (tests/test_request_options.py); a cut path is not
        ["--endpoint", "http://127.0.0.1:9/v1/chat", "--dataset", "examples/example_dataset.json"]
    )
    assert (
        code == 2
        and "did you mean http://127.0.0.1:9/v1/chat/completions?" in capsys.readouterr().err
    )


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for code in ("0 ", "2 ", "3 ", "4 ", "5 ", "130"):
        assert f"\n  {code}" in out


def test_tokenizer_path_errors_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    argv = [
        "--endpoint",
        "http://127.0.0.1:9/v1/chat/completions",
        "--dataset",
        "examples/example_dataset.json",
    ]
    assert (
        main(
            [*argv, "--tokenizer", str(tmp_path / "none.json"), "--output-dir", str(tmp_path / "o")]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err == f"drbench: --tokenizer {tmp_path / 'none.json'}: no such file or directory"
    assert not (tmp_path / "o").exists()


def test_percentiles_flag_takes_a_comma_list_sorts_it_and_refuses_nonsense() -> None:
    from drbench.config import build_config  # noqa: PLC0415

    assert BenchConfig().percentiles == (50.0, 90.0, 99.0)
    assert build_config({"percentiles": ["99,50", "95"]}).check().percentiles == (50, 95, 99)
    with pytest.raises(ConfigError, match=r"^--percentiles: expected numbers from 0 to 100"):
        build_config({"percentiles": ["50,p95"]})
    with pytest.raises(ConfigError, match=r"^--percentiles must be from 0 to 100 \(got 101.0\)"):
        build_config({"percentiles": ["101"]}).check()
    with pytest.raises(ConfigError, match="lists 95 twice: give each percentile once"):
        build_config({"percentiles": ["95,95"]}).check()
    with pytest.raises(ConfigError, match="--verbose and --quiet"):
        build_config({"verbose": True, "quiet": True}).check()


def test_percentiles_from_the_command_line_as_one_comma_list_or_several_words() -> None:
    for argv in (["--percentiles", "50,90,95,99"], ["--percentiles", "50", "90,95", "99"]):
        args = vars(build_parser().parse_args(argv))
        flags = {o.name: args[o.name] for o in OPTIONS}
        assert build_config(flags).check().percentiles == (50, 90, 95, 99)
    assert main(["--percentiles", "50,abc", "--dry-run"]) == 2
