"""--slo-search: the spec's one-line mistakes, the doubling-then-bisection order of probes on
made-up verdicts, and a search on a mocker with 4 running slots, where a fifth concurrent
session waits a whole request for its first token: the answer is 4."""

from __future__ import annotations

import json

import pytest

from drbench.cli import main
from drbench.errors import UsageError
from drbench.slo_search import answer, next_probe, parse_search

SESSIONS = ("sessions", "rounds=2")


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main([*argv, "--dry-run"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    return err.strip()


def test_the_spec_reads_bound_round_and_max() -> None:
    spec = parse_search(["ttft_p95_ms=2000"], SESSIONS, 5)
    assert (spec.percentile, spec.bound_ms, spec.round, spec.max_users) == (95, 2000.0, 5, 64)
    spec = parse_search(["ttft_p99_ms=250.5", "round=1", "max=8"], SESSIONS, 2)
    assert (spec.metric, spec.bound_ms, spec.round, spec.max_users) == ("ttft_p99_ms", 250.5, 1, 8)


@pytest.mark.parametrize(
    ("items", "workload", "message"),
    [
        ([], SESSIONS, "--slo-search: needs a bound, e.g. --slo-search ttft_p95_ms=2000"),
        (
            ["ttft_p95_ms=2000"],
            ("long-doc",),
            "--slo-search searches the users= of --workload sessions (one session each, at "
            "concurrency U): add --workload sessions",
        ),
        (
            ["ttft_p42_ms=10"],
            SESSIONS,
            "--slo-search ttft_p42_ms=10: bound one of ttft_p50_ms, ttft_p90_ms, ttft_p95_ms, "
            "ttft_p99_ms",
        ),
        (["ttft_p95_ms=abc"], SESSIONS, "--slo-search ttft_p95_ms=abc: expected a number"),
        (["ttft_p95_ms=0"], SESSIONS, "--slo-search ttft_p95_ms=0: give a bound in ms above 0"),
        (["ttft_p95_ms=9", "round=3"], SESSIONS, "--slo-search round=3: the run has rounds 1 to 2"),
        (["ttft_p95_ms=9", "max=0"], SESSIONS, "--slo-search max=0: give max from 1 to 100000"),
        (
            ["ttft_p95_ms=9", "users=4"],
            SESSIONS,
            "--slo-search users=4: unknown key 'users'; give ttft_p95_ms=MS, round=K, max=N",
        ),
        (["2000"], SESSIONS, "--slo-search 2000: expected KEY=VALUE, e.g. ttft_p95_ms=2000"),
    ],
)
def test_a_bad_spec_is_one_line(items: list[str], workload: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_search(items, workload, 2)
    assert str(info.value) == message


def test_the_cli_refuses_a_search_it_cannot_run(capsys) -> None:
    base = ("--workload", "sessions", "--slo-search", "ttft_p95_ms=100")
    assert refused(capsys, *base, "--request-rate", "2") == (
        "drbench: --slo-search runs each probe at concurrency U (its users=); drop "
        "--request-rate or --fixed-schedule"
    )
    assert refused(capsys, *base, "--concurrency", "4") == (
        "drbench: --slo-search runs each probe at --concurrency U, its users=: drop --concurrency"
    )
    assert refused(capsys, *base, "--sweep", "users=1:4") == (
        "drbench: --slo-search and --sweep both run the workload per value: drop one of them"
    )
    assert refused(capsys, "--workload", "sessions", "--slo-search", "ttft_p95_ms=x") == (
        "drbench: --slo-search ttft_p95_ms=x: expected a number"
    )


def probes_until_answer(limit: int, top: int) -> tuple[list[int], int | None]:
    """Run the search against a server that keeps the bound up to ``limit`` sessions."""
    verdicts: dict[int, bool] = {}
    order = []
    while (u := next_probe(verdicts, top)) is not None:
        assert u not in verdicts and 1 <= u <= top
        order.append(u)
        verdicts[u] = u <= limit
    return order, answer(verdicts, top)


def test_probes_double_then_bisect() -> None:
    assert probes_until_answer(4, 16) == ([1, 2, 4, 8, 6, 5], 4)
    assert probes_until_answer(11, 64) == ([1, 2, 4, 8, 16, 12, 10, 11], 11)
    assert probes_until_answer(0, 64) == ([1], None)
    assert probes_until_answer(100, 20) == ([1, 2, 4, 8, 16, 20], 20)


@pytest.mark.parametrize("top", [1, 7, 64])
def test_the_search_finds_every_limit(top: int) -> None:
    for limit in range(top + 2):
        order, found = probes_until_answer(limit, top)
        assert found == (min(limit, top) or None)
        assert len(order) <= 2 * (top.bit_length() + 1)


@pytest.mark.slow
def test_the_search_finds_the_mockers_running_slots(mocker_factory, tmp_path, capsys) -> None:
    # 4 slots; a request holds one for 50 + 10 x 20 = 250 ms, so a fifth session waits
    # about that long for its first token: TTFT ~50 ms up to 4 sessions, 300 ms or more above.
    mock = mocker_factory(
        "--max-num-seqs", "4", "--ttft-ms", "50", "--itl-ms", "20", "--output-tokens", "10"
    )
    out = tmp_path / "search"
    argv = [
        "--endpoint",
        f"{mock.base_url}/v1/chat/completions",
        "--workload",
        *SESSIONS,
        "system=10",
        "history=20",
        "question=5",
        "answer=10",
        "--slo-search",
        "ttft_p95_ms=175",
        "max=16",
        "--output-dir",
        str(out),
        "--quiet",
        "--no-plots",
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    data = json.loads((out / "slo_search.json").read_text())
    assert data["answer"] == 4
    assert [p["users"] for p in data["probes"]] == [1, 2, 4, 8, 6, 5]
    assert [p["passed"] for p in data["probes"]] == [True, True, True, False, False, False]
    assert data["search"]["round"] == 2 and data["stopped"] is None
    for p in data["probes"]:
        summary = json.loads((out / p["dir"] / "summary.json").read_text())
        assert summary["config"]["concurrency"] == [p["users"]]
        assert f"users={p['users']}" in summary["workload"]["settings"]
    assert (
        "drbench: slo-search: at most 4 concurrent sessions keep round 2 TTFT p95 within "
        "175 ms (5 do not)"
    ) in err
    assert "slo-search users=8 at concurrency 8: round 2 TTFT p95 " in err
