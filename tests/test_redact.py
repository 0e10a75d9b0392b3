"""No credential in a URL reaches a file or the terminal: the redactor, and a whole run that
carries userinfo and tokens in --endpoint, --prometheus-url and --cache-reset-url."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drbench.cli import main
from drbench.config import BenchConfig
from drbench.levels import Level
from drbench.records import ErrorKind, RequestRecord
from drbench.redact import is_secret_param, redact_config, redact_text, redact_url
from drbench.report.console import format_overview, format_round
from drbench.report.files import RecordLog, write_round, write_summary
from drbench.results import LevelResult, RoundResult, RunResult
from drbench.stats import summarize_round

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "examples" / "example_dataset.json"
FAST = ("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "8")
SECRET = "hunter2pass"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://user:pw@h:8000/v1/chat/completions", "http://***@h:8000/v1/chat/completions"),
        ("http://user@h/metrics", "http://***@h/metrics"),
        ("http://a:b@c@h/x", "http://***@h/x"),  # the last @ ends the userinfo
        (
            "https://h/m?api_key=k1&x=1&sig=s&X-Amz-Signature=q&access_token=t&page=2",
            "https://h/m?api_key=***&x=1&sig=***&X-Amz-Signature=***&access_token=***&page=2",
        ),
        ("https://h/m?token=&Password=p#frag", "https://h/m?token=&Password=***#frag"),
        ("http://h:8000/metrics?format=text", "http://h:8000/metrics?format=text"),
        ("http://[::1]:8000/metrics", "http://[::1]:8000/metrics"),
        ("not a url", "not a url"),
        ("http://u:p@h:notaport/x", "<a URL that cannot be parsed>"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("key", True),
        ("apikey", True),
        ("API-Key", True),
        ("auth", True),
        ("authorization", True),
        ("client_secret", True),
        ("passwd", True),
        ("sig", True),
        ("page", False),
        ("format", False),
        ("keys_only", False),
        ("design", False),
    ],
)
def test_secret_looking_parameter_names(name: str, secret: bool) -> None:
    assert is_secret_param(name) is secret


def test_redact_text_and_config() -> None:
    text = "cache reset http://u:pw@h/reset answered HTTP 404 (see http://h/x?token=t)."
    assert redact_text(text) == (
        "cache reset http://***@h/reset answered HTTP 404 (see http://h/x?token=***)."
    )
    cfg = BenchConfig(
        endpoint="http://u:pw@h/v1/completions",
        prometheus_url=("http://h/metrics?key=k", "http://h2/metrics"),
        api_key="sk-1",
    ).to_dict()
    assert cfg["endpoint"] == "http://***@h/v1/completions" and cfg["api_key"] == "***"
    assert cfg["prometheus_url"] == ["http://h/metrics?key=***", "http://h2/metrics"]
    assert redact_config({"n": 3, "nested": {"u": ["http://a:b@h/"]}}) == {
        "n": 3,
        "nested": {"u": ["http://***@h/"]},
    }


def test_an_error_message_quoting_a_url_is_redacted_in_every_report(tmp_path: Path) -> None:
    rec = RequestRecord("p0", "concurrency=1", 1, 0.0, end_ms=5.0, status=None)
    rec.error_kind = ErrorKind.CONNECTION
    rec.error = f"TooManyRedirects: http://u:{SECRET}@h/v1/chat/completions"
    result = RoundResult(summarize_round([rec], level=Level.closed(1), round=1), [rec])
    run = RunResult(
        BenchConfig(),
        "t0",
        levels=[
            LevelResult(
                Level.closed(1), "nonce", [result], warnings=[f"see http://h/?token={SECRET}"]
            )
        ],
    )
    texts = [
        write_round(tmp_path, result).read_text(),
        write_summary(tmp_path, run).read_text(),
        format_round(result),
        format_overview(run),
    ]
    log = RecordLog(tmp_path / "requests.jsonl")
    log.write(rec)
    log.close()
    texts.append((tmp_path / "requests.jsonl").read_text())
    assert all(SECRET not in t for t in texts)
    assert "http://***@h/v1/chat/completions" in texts[0] and "token=***" in texts[1]


def _with_creds(base_url: str, path: str, query: str = "") -> str:
    scheme, rest = base_url.split("://", 1)
    return f"{scheme}://bench:{SECRET}@{rest}{path}{query}"


def test_a_run_with_credentials_in_every_url_leaks_none(fast_mocker, tmp_path: Path) -> None:
    mock = fast_mocker
    out = tmp_path / "run"
    # credentials in all three URLs of a run that works (a refused reset stops the run: below)
    cmd = [
        sys.executable,
        str(ROOT / "dual_round_benchmarker.py"),
        "--endpoint",
        _with_creds(mock.base_url, "/v1/chat/completions"),
        "--prometheus-url",
        _with_creds(mock.base_url, "/metrics", f"?token={SECRET}"),
        "--cold-start",
        "reset",
        "--cache-reset-url",
        _with_creds(mock.base_url, "/reset_prefix_cache"),
        "--dataset",
        str(DATASET),
        "--num-samples",
        "3",
        "--concurrency",
        "2",
        "--output-dir",
        str(out),
        "--no-plots",
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    files = sorted(p.name for p in out.iterdir())
    assert "summary.json" in files and "concurrency_2_round_1.json" in files
    for p in out.iterdir():
        assert SECRET not in p.read_text(), p.name
    assert SECRET not in run.stdout and SECRET not in run.stderr
    assert "http://***@127.0.0.1" in run.stderr  # the banner still names the server
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["endpoint"].startswith("http://***@127.0.0.1")
    assert summary["config"]["prometheus_url"][0].endswith("/metrics?token=***")
    server = summary["levels"][0]["rounds"][0]["server_metrics"]
    assert server["metrics"] and all(
        m["url"].startswith("http://***@") and m["url"].endswith("?token=***")
        for m in server["metrics"]
    )

    dry = subprocess.run([*cmd, "--dry-run"], capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and "***@" in dry.stdout
    assert SECRET not in dry.stdout + dry.stderr

    # a reset URL that answers 404 stops the run; its one line quotes the URL, redacted
    refused = [a.replace("/reset_prefix_cache", "/no_such_reset") for a in cmd]
    refused[refused.index("--output-dir") + 1] = str(tmp_path / "refused")
    run = subprocess.run(refused, capture_output=True, text=True, timeout=120)
    assert run.returncode == 3 and "http://***@127.0.0.1" in run.stderr and "404" in run.stderr
    assert SECRET not in run.stdout + run.stderr


def test_a_preflight_error_quoting_the_endpoint_leaks_nothing(
    fast_mocker, tmp_path: Path, capsys
) -> None:
    mock = fast_mocker
    argv = [
        "--endpoint",
        _with_creds(mock.base_url, "/v1/chat/completions"),
        "--model",
        "no-such-model",
        "--dataset",
        str(DATASET),
        "--output-dir",
        str(tmp_path / "x"),
        "--quiet",
    ]
    assert main(argv) == 3
    err = capsys.readouterr().err
    # the endpoint's credentials were taken out of its URL (sent as basic auth) before any use
    assert "does not serve model" in err and "http://127.0.0.1" in err and SECRET not in err
    bad = ["--endpoint", f"http://u:{SECRET}@h/v1/oops", "--dataset", str(DATASET)]
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert "did you mean http://h/v1/chat/completions?" in err and SECRET not in err
