"""--extra-body, --header, --ignore-eos and base URLs with --endpoint-type: checked before anything
is sent (one line, exit 2), and on the wire as the mocker's /debug/requests log saw them."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from drbench.cli import main
from drbench.client import Endpoint
from drbench.config import build_config
from drbench.errors import ConfigError, UsageError
from drbench.extras import load_extra_body, parse_extra_body, parse_header, parse_headers
from drbench.records import Prompt
from drbench.urls import resolve_endpoint

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "examples" / "example_dataset.json"
FAST = ("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "8")


def logged(base_url: str) -> list[dict]:
    with urllib.request.urlopen(base_url + "/debug/requests?headers=1", timeout=10) as resp:
        return json.loads(resp.read())


def run(endpoint: str, out: Path, *extra: str) -> int:
    argv = ["--endpoint", endpoint, "--dataset", str(DATASET), "--num-samples", "2"]
    return main(
        [*argv, "--concurrency", "1", "--output-dir", str(out), "--quiet", "--no-plots", *extra]
    )


# -- on the wire -----------------------------------------------------------------------------


def test_extra_body_headers_and_ignore_eos_reach_the_server(mocker_factory, tmp_path) -> None:
    m = mocker_factory(*FAST)
    extra = {"top_p": 0.5, "chat_template_kwargs": {"enable_thinking": False}}
    status = run(
        m.base_url,  # a base URL: completed to /v1/chat/completions
        tmp_path / "out",
        "--extra-body",
        json.dumps(extra),
        "--header",
        "X-Session-Id: user-7",
        "--header",
        "X-Api-Key=gw-secret-123",
        "--ignore-eos",
        "--max-tokens",
        "12",
    )
    assert status == 0
    entries = logged(m.base_url)
    assert len(entries) >= 5  # preflight + 2 prompts x 2 rounds
    for entry in entries:
        body, headers = entry["body"], entry["headers"]
        assert body["top_p"] == 0.5 and body["chat_template_kwargs"] == {"enable_thinking": False}
        assert body["ignore_eos"] is True and "messages" in body
        assert headers["X-Session-Id"] == "user-7" and headers["X-Api-Key"] == "gw-secret-123"
    rounds = json.loads((tmp_path / "out" / "summary.json").read_text())["levels"][0]["rounds"]
    records = [
        json.loads(x) for x in (tmp_path / "out" / "requests.jsonl").read_text().splitlines()
    ]
    assert {r["completion_tokens"] for r in records} == {12}  # ignore_eos: every answer runs to 12
    assert len(rounds) == 2
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())["config"]
    assert saved["header"] == ["X-Session-Id: user-7", "X-Api-Key=***"]
    assert saved["extra_body"] == extra
    assert "gw-secret-123" not in "".join(p.read_text() for p in (tmp_path / "out").iterdir())


def test_without_ignore_eos_the_mocker_stops_at_its_own_length(mocker_factory, tmp_path) -> None:
    m = mocker_factory(*FAST)
    assert run(m.base_url + "/v1", tmp_path / "out", "--max-tokens", "12") == 0
    assert all("ignore_eos" not in e["body"] for e in logged(m.base_url))
    records = [
        json.loads(x) for x in (tmp_path / "out" / "requests.jsonl").read_text().splitlines()
    ]
    assert {r["completion_tokens"] for r in records} == {8}  # --output-tokens 8 < max_tokens 12


def test_extra_body_from_a_file_on_the_completions_api(mocker_factory, tmp_path) -> None:
    m = mocker_factory(*FAST)
    path = tmp_path / "extra.json"
    path.write_text('{"top_k": 20, "repetition_penalty": 1.1}')
    out = tmp_path / "out"
    status = run(
        m.base_url + "/v1/", out, "--endpoint-type", "completions", "--extra-body", f"@{path}"
    )
    assert status == 0
    entries = logged(m.base_url)
    assert entries and all(e["body"]["top_k"] == 20 and "prompt" in e["body"] for e in entries)
    assert json.loads((out / "summary.json").read_text())["config"]["extra_body"] == {
        "top_k": 20,
        "repetition_penalty": 1.1,
    }


# -- one line, exit 2, nothing sent ----------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (["--extra-body", '{"stream": false}'], "--extra-body: 'stream' is set by the tool"),
        (["--extra-body", '{"max_tokens": 5}'], "(use --max-tokens); remove it"),
        (["--extra-body", "[1, 2]"], "expected a JSON object of fields, got a list"),
        (["--extra-body", "{top_p: 1}"], "--extra-body: not valid JSON"),
        (["--extra-body", "@/nonexistent/x.json"], "--extra-body: cannot read /nonexistent/x.json"),
        (["--header", "X-Session-Id"], "--header 'X-Session-Id': expected 'NAME: VALUE'"),
        (["--header", "Content-Type: text/plain"], "--header Content-Type: set by the tool"),
        (["--header", "A: 1", "--header", "a: 2"], "--header a is given twice"),
        (
            ["--header", "Authorization: Bearer x", "--api-key", "k"],
            "--header Authorization and an API key",
        ),
        (
            ["--endpoint-type", "completions"],
            "--endpoint: its path ends in /chat/completions, which is the chat API",
        ),
    ],
)
def test_bad_request_options_are_one_line(flags, line, capsys, tmp_path) -> None:
    argv = ["--endpoint", "http://127.0.0.1:9/v1/chat/completions", "--dataset", str(DATASET)]
    assert main([*argv, *flags, "--output-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert line in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_chat_path_cut_short_gets_the_right_hint(capsys) -> None:
    assert main(["--endpoint", "http://h:8000/v1/chat", "--dataset", "x", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "did you mean http://h:8000/v1/chat/completions?" in err
    assert "/v1/chat/v1/" not in err


# -- pure parts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind", "want"),
    [
        ("http://h:8000", None, ("http://h:8000/v1/chat/completions", "chat")),
        ("http://h:8000/", "completions", ("http://h:8000/v1/completions", "completions")),
        ("http://h:8000/v1", None, ("http://h:8000/v1/chat/completions", "chat")),
        ("http://h/openai/v1/", "completions", ("http://h/openai/v1/completions", "completions")),
        ("http://h/v1/completions?a=1", None, ("http://h/v1/completions?a=1", "completions")),
        ("http://h/v1/chat/completions", "chat", ("http://h/v1/chat/completions", "chat")),
        ("http://h?api-version=2", None, ("http://h/v1/chat/completions?api-version=2", "chat")),
    ],
)
def test_resolve_endpoint(url, kind, want) -> None:
    assert resolve_endpoint(url, kind) == want


@pytest.mark.parametrize(
    ("url", "kind", "meant"),
    [
        ("http://h/v1/chat", None, "http://h/v1/chat/completions?"),
        ("http://h/v1/chat/", "completions", "http://h/v1/completions?"),
        ("http://u:pw@h/llm?key=s", None, "http://h/llm/v1/chat/completions?"),
    ],
)
def test_resolve_endpoint_refuses_a_path_it_cannot_complete(url, kind, meant) -> None:
    with pytest.raises(ValueError, match="did you mean") as info:
        resolve_endpoint(url, kind)
    assert str(info.value).endswith(f"did you mean {meant}")
    assert "pw" not in str(info.value) and "key=s" not in str(info.value)


def test_the_body_merges_the_extras_last_and_the_headers_go_with_every_request() -> None:
    ep = Endpoint.parse(
        "http://h:8000",
        "sk-1",
        headers=parse_headers(["X-Route: a", "X-Token: Bearer t0k"]),
        extra_body={"top_p": 0.9},
        ignore_eos=True,
    )
    body = ep.body(Prompt(id="p", text="hi"), model="m", max_tokens=4, temperature=0.0)
    assert body["top_p"] == 0.9 and body["ignore_eos"] is True and body["max_tokens"] == 4
    assert ep.headers["X-Route"] == "a" and ep.headers["Authorization"] == "Bearer sk-1"
    assert ep.redact("echo Bearer t0k and t0k") == "echo *** and ***"
    assert ep.models_url == "http://h:8000/v1/models"


def test_header_lines() -> None:
    assert parse_header("X-A: b: c") == ("X-A", "b: c")
    assert parse_header("X-A=b=c") == ("X-A", "b=c")
    assert parse_header("x-a:") == ("x-a", "")
    with pytest.raises(ConfigError, match="control character"):
        parse_header("X-A: b\nEvil: 1")
    with pytest.raises(ConfigError, match="expected 'NAME: VALUE'"):
        parse_header("bad name: 1")


def test_extra_body_sources(tmp_path) -> None:
    assert parse_extra_body({"a": 1}) == {"a": 1}  # a recipe's mapping
    assert load_extra_body('{"a": 1}') == {"a": 1}
    (tmp_path / "e.json").write_text('{"model": "x"}')
    with pytest.raises(ConfigError, match="e.json: 'model' is set by the tool"):
        load_extra_body(f"@{tmp_path / 'e.json'}")


def test_a_recipe_gives_headers_as_a_list_and_the_extra_body_as_a_mapping() -> None:
    cfg = build_config({}, {"header": ["X-A: 1, 2", "X-B: 3"], "extra_body": {"api_key": "s"}})
    assert cfg.header == ("X-A: 1, 2", "X-B: 3")  # never split at the comma or the space
    assert cfg.to_dict()["extra_body"] == {"api_key": "***"}
    with pytest.raises(ConfigError, match="--extra-body: 'prompt' is set by the tool"):
        build_config({}, {"extra_body": {"prompt": "x"}}).check()


def test_basic_auth_and_an_authorization_header_are_refused() -> None:
    with pytest.raises(UsageError, match="--header Authorization is given too"):
        Endpoint.parse("http://u:p@h/v1", headers=(("Authorization", "Bearer x"),))


@pytest.mark.slow
def test_worker_processes_send_the_same_extras(mocker_factory, tmp_path) -> None:
    """The endpoint crosses to spawned workers with its headers, extra body and ignore_eos."""
    m = mocker_factory(*FAST)
    extra = ("--header", "X-Route: r1", "--extra-body", '{"top_k": 3}', "--ignore-eos")
    assert run(m.base_url, tmp_path / "out", "--workers", "2", *extra) == 0
    entries = logged(m.base_url)
    assert len(entries) == 5  # preflight + 2 prompts x 2 rounds
    for entry in entries:
        assert entry["headers"]["X-Route"] == "r1"
        assert entry["body"]["top_k"] == 3 and entry["body"]["ignore_eos"] is True
