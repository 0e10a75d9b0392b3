"""SLO bounds: the YAML file, the --slo flags, merging them, and judging one request."""

from __future__ import annotations

import pytest

from drbench.errors import ConfigError
from drbench.records import ErrorKind, RequestRecord
from drbench.slo import SLO, load_slo_file, merge, parse_slo_flags

NUMBER = "expected a positive number of milliseconds"
VALID = (
    "valid keys: ttft_ms, itl_ms, tpot_ms, latency_ms, itl_mode, or a percentile bound such as "
    "ttft_p95_ms (METRIC_pN_ms, N from 0 to 100)"
)


def rec(
    *,
    ttft: float | None = 100.0,
    itl: tuple[float, ...] = (10.0, 20.0),
    latency: float | None = 130.0,
    completion: int | None = 3,
    kind: ErrorKind | None = None,
) -> RequestRecord:
    return RequestRecord(
        prompt_id="p",
        level="concurrency=1",
        round=1,
        start_ms=0.0,
        end_ms=latency,
        ttft_ms=ttft,
        latency_ms=latency,
        itl_ms=list(itl),
        completion_tokens=completion,
        error_kind=kind,
        error="boom" if kind else None,
    )


def write(tmp_path, text: str):
    path = tmp_path / "slo.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(fn, *args) -> str:
    with pytest.raises(ConfigError) as info:
        fn(*args)
    return str(info.value)


# --- check ---------------------------------------------------------------------------------------


def test_check_every_bound_is_inclusive_upper_bound():
    # The record: TTFT 100, gaps 10 and 20 (mean 15, max 20), latency 130, 3 tokens:
    # TPOT = (130 - 100) / (3 - 1) = 15.
    r = rec()
    assert SLO(ttft_ms=100, itl_ms=15, tpot_ms=15, latency_ms=130).check(r)
    assert not SLO(ttft_ms=99.9).check(r)
    assert not SLO(itl_ms=14.9).check(r)
    assert not SLO(tpot_ms=14.9).check(r)
    assert not SLO(latency_ms=129.9).check(r)


def test_itl_mode_mean_versus_max():
    r = rec(itl=(10.0, 20.0))  # mean gap 15, worst gap 20
    assert SLO(itl_ms=18).check(r)
    assert not SLO(itl_ms=18, itl_mode="max").check(r)
    assert SLO(itl_ms=20, itl_mode="max").check(r)


def test_failed_request_is_never_good():
    r = rec(kind=ErrorKind.TIMEOUT)
    assert not SLO(ttft_ms=10_000).check(r)


def test_undefined_values_meet_their_bound():
    one_token = rec(itl=(), latency=100.0, completion=1)  # no TPOT, no gaps
    assert one_token.tpot_ms is None and one_token.mean_itl_ms is None
    assert SLO(tpot_ms=1, itl_ms=1).check(one_token)
    assert SLO(tpot_ms=1, itl_ms=1, itl_mode="max").check(one_token)
    unknown_count = rec(completion=None)
    assert SLO(tpot_ms=1).check(unknown_count)


def test_missing_ttft_or_latency_is_not_good():
    assert not SLO(ttft_ms=1000).check(rec(ttft=None))
    assert not SLO(latency_ms=1000).check(rec(latency=None))
    assert SLO(ttft_ms=1000).check(rec(latency=None))  # latency not bounded


def test_slo_direct_construction_is_validated():
    assert error_of(SLO, -1) == f"SLO ttft_ms: {NUMBER}, got -1"
    with pytest.raises(ConfigError, match="SLO itl_mode: expected 'mean' or 'max', got 'avg'"):
        SLO(itl_ms=5, itl_mode="avg")
    assert SLO(ttft_ms=5).ttft_ms == 5.0 and isinstance(SLO(ttft_ms=5).ttft_ms, float)


def test_is_empty_and_to_dict():
    assert SLO().is_empty
    assert SLO(itl_mode="max").is_empty
    slo = SLO(ttft_ms=1000, itl_ms=50)
    assert not slo.is_empty
    assert slo.to_dict() == {
        "ttft_ms": 1000.0,
        "itl_ms": 50.0,
        "tpot_ms": None,
        "latency_ms": None,
        "itl_mode": "mean",
    }


# --- the file --------------------------------------------------------------------------------------


def test_load_original_readme_example(tmp_path):
    path = write(tmp_path, "slo:\n  ttft_ms: 1000\n  itl_ms: 50\n  latency_ms: 10000\n")
    assert load_slo_file(path) == SLO(ttft_ms=1000, itl_ms=50, latency_ms=10000)


def test_load_tpot_and_itl_mode(tmp_path):
    path = write(tmp_path, "slo: {tpot_ms: 25.5, itl_ms: 80, itl_mode: max}\n")
    assert load_slo_file(str(path)) == SLO(tpot_ms=25.5, itl_ms=80, itl_mode="max")


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    assert error_of(load_slo_file, path) == f"{path}: no such file (check --slo-file)"


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, "slo:\n  ttft_ms: 1\n   itl_ms: 2\n")
    assert error_of(load_slo_file, path) == (
        f"{path}:3: not valid YAML (mapping values are not allowed here, column 10)"
    )


def test_unknown_key_suggests_the_nearest(tmp_path):
    path = write(tmp_path, "slo:\n  ttf_ms: 1000\n")
    assert error_of(load_slo_file, path) == (
        f"{path}: slo.ttf_ms: unknown key; did you mean 'ttft_ms'? {VALID}"
    )


def test_unknown_key_without_near_match(tmp_path):
    path = write(tmp_path, "slo:\n  throughput: 5\n")
    assert error_of(load_slo_file, path) == f"{path}: slo.throughput: unknown key; {VALID}"


@pytest.mark.parametrize(
    ("value", "shown"),
    [("fast", "'fast'"), ("-5", "-5"), ("0", "0"), ("true", "true"), ("", "null"), (".nan", "nan")],
)
def test_bad_bound_values(tmp_path, value, shown):
    path = write(tmp_path, f"slo:\n  ttft_ms: {value}\n")
    assert error_of(load_slo_file, path) == f"{path}: slo.ttft_ms: {NUMBER}, got {shown}"


def test_quoted_number_is_not_a_number(tmp_path):
    path = write(tmp_path, 'slo:\n  itl_ms: "50"\n')
    assert error_of(load_slo_file, path) == f"{path}: slo.itl_ms: {NUMBER}, got '50'"


def test_bad_itl_mode(tmp_path):
    path = write(tmp_path, "slo: {itl_ms: 50, itl_mode: worst}\n")
    assert error_of(load_slo_file, path) == (
        f"{path}: slo.itl_mode: expected 'mean' or 'max', got 'worst'"
    )


@pytest.mark.parametrize("text", ["slo: {}\n", "slo:\n", "slo: {itl_mode: max}\n"])
def test_empty_slo(tmp_path, text):
    path = write(tmp_path, text)
    assert error_of(load_slo_file, path) == (
        f"{path}: slo: no bounds given; set at least one of ttft_ms, itl_ms, tpot_ms, latency_ms"
    )


@pytest.mark.parametrize("text", ["", "ttft_ms: 1000\n", "- slo\n"])
def test_no_top_level_slo_mapping(tmp_path, text):
    path = write(tmp_path, text)
    assert error_of(load_slo_file, path) == (
        f"{path}: expected a top-level 'slo:' mapping, e.g. 'slo: {{ttft_ms: 1000, itl_ms: 50}}'"
    )


def test_slo_not_a_mapping(tmp_path):
    path = write(tmp_path, "slo: [1000, 50]\n")
    assert error_of(load_slo_file, path).startswith(
        f"{path}: slo: expected a mapping of bounds, got a list;"
    )


def test_extra_top_level_key(tmp_path):
    path = write(tmp_path, "slo: {ttft_ms: 1}\nslos: {itl_ms: 2}\n")
    assert error_of(load_slo_file, path) == (
        f"{path}: slos: unknown top-level key; the file holds one 'slo:'"
    )


def test_unsafe_yaml_tag_is_refused(tmp_path):
    path = write(tmp_path, "slo: !!python/object/apply:os.system ['true']\n")
    assert error_of(load_slo_file, path).startswith(f"{path}:1: not valid YAML")


# --- flags and merge -------------------------------------------------------------------------------


def test_parse_flags():
    slo = parse_slo_flags(["ttft_ms=1000", "itl_ms=50.5", "tpot_ms=1e1", "itl_mode=max"])
    assert slo == SLO(ttft_ms=1000, itl_ms=50.5, tpot_ms=10, itl_mode="max")


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            [],
            "--slo: no bounds given; use KEY=VALUE with KEY one of "
            "ttft_ms, itl_ms, tpot_ms, latency_ms, itl_mode",
        ),
        (["ttft_ms"], "--slo: expected KEY=VALUE (e.g. ttft_ms=1000), got 'ttft_ms'"),
        (["=5"], "--slo: expected KEY=VALUE (e.g. ttft_ms=1000), got '=5'"),
        (["ttft_ms=fast"], f"--slo ttft_ms: {NUMBER}, got 'fast'"),
        (["ttft_ms=-1"], f"--slo ttft_ms: {NUMBER}, got '-1'"),
        (["latency_ms=0"], f"--slo latency_ms: {NUMBER}, got '0'"),
        (["itl_ms=nan"], f"--slo itl_ms: {NUMBER}, got 'nan'"),
        (["itl_ms=inf"], f"--slo itl_ms: {NUMBER}, got 'inf'"),
        (["itl_ms="], f"--slo itl_ms: {NUMBER}, got ''"),
        (["ttft=5"], f"--slo ttft: unknown key; did you mean 'ttft_ms'? {VALID}"),
        (["ttft_ms=1", "ttft_ms=2"], "--slo ttft_ms: given twice; give each key once"),
        (["itl_mode=avg"], "--slo itl_mode: expected 'mean' or 'max', got 'avg'"),
    ],
)
def test_parse_flags_errors(items, message):
    assert error_of(parse_slo_flags, items) == message


def test_merge_flags_override_file():
    file_slo = SLO(ttft_ms=1000, itl_ms=50, itl_mode="max")
    flag_slo = parse_slo_flags(["ttft_ms=500", "latency_ms=9000"])
    merged = merge(file_slo, flag_slo)
    assert merged == SLO(ttft_ms=500, itl_ms=50, latency_ms=9000, itl_mode="max")


def test_merge_explicit_default_itl_mode_overrides_file():
    merged = merge(SLO(itl_ms=50, itl_mode="max"), parse_slo_flags(["itl_mode=mean"]))
    assert merged == SLO(itl_ms=50, itl_mode="mean")


def test_merge_one_side_or_none():
    assert merge(None, None) is None
    assert merge(SLO(ttft_ms=1), None) == SLO(ttft_ms=1)
    assert merge(None, SLO(itl_ms=2, itl_mode="max")) == SLO(itl_ms=2, itl_mode="max")


def test_merge_itl_mode_alone_is_an_error():
    assert error_of(merge, None, parse_slo_flags(["itl_mode=max"])) == (
        "--slo: itl_mode alone bounds nothing; add a bound, e.g. itl_ms=50"
    )


def test_percentile_bounds_from_flags_files_and_merged(tmp_path):
    flags = parse_slo_flags(["ttft_p95_ms=500", "itl_p99.9_ms=80"])
    assert [(b.key, b.metric, b.percentile, b.bound_ms) for b in flags.percentile_bounds] == [
        ("ttft_p95_ms", "ttft_ms", 95.0, 500.0),
        ("itl_p99.9_ms", "itl_ms", 99.9, 80.0),
    ]
    assert not flags.is_empty and not flags.has_request_bounds
    assert flags.to_dict()["ttft_p95_ms"] == 500.0
    path = write(tmp_path, "slo:\n  ttft_ms: 1000\n  ttft_p95_ms: 700\n")
    from_file = load_slo_file(path)
    merged = merge(from_file, parse_slo_flags(["ttft_p95_ms=400"]))
    assert merged.ttft_ms == 1000.0
    assert [(b.key, b.bound_ms) for b in merged.percentile_bounds] == [("ttft_p95_ms", 400.0)]
    assert error_of(parse_slo_flags, ["ttft_p95_ms=-1"]) == (
        "--slo ttft_p95_ms: expected a positive number of milliseconds, got '-1'"
    )
    assert "unknown key" in error_of(parse_slo_flags, ["ttft_p101_ms=5"])
