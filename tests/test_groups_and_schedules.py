"""What workloads need from the engine: prefix groups that share their cold-start nonce, one
follow-up turn per round, and a trace replayed on its records' timestamps (--fixed-schedule)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from time import perf_counter_ns
from typing import Any

import pytest

import drbench.runner as runner
from drbench.cli import main
from drbench.client import Endpoint, PreparedRequest
from drbench.config import BenchConfig, build_config
from drbench.dataset import in_schedule_order, parse_record
from drbench.errors import ConfigError, DatasetError
from drbench.levels import Level
from drbench.pacing import OpenLoop, busiest_second, pacer_for, trace_offsets
from drbench.plan import RunPlan, continue_requests, level_requests, prefix_groups
from drbench.records import Prompt, RequestRecord
from drbench.response import RawExchange
from drbench.results import LevelResult, RoundResult, RunResult

ENDPOINT = Endpoint.parse("http://127.0.0.1:9/v1/chat/completions")
_STREAM = (
    b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\ndata: [DONE]\n\n'
)


def _first_text(req: PreparedRequest) -> str:
    return str(req.payload["messages"][0]["content"])


# --- dataset fields -------------------------------------------------------------------------


def test_workload_fields_are_read_from_a_record() -> None:
    p = parse_record(
        {
            "text": "doc and question",
            "prefix_group": "d2",
            "followups": ["second?", "third?"],
            "timestamp": 1500,
        },
        where="w.jsonl:3",
        default_id="3",
    )
    assert (p.group, p.followups, p.timestamp_ms) == ("d2", ("second?", "third?"), 1500.0)
    plain = parse_record({"text": "x"}, where="w.jsonl:1", default_id="1")
    assert (plain.group, plain.followups, plain.timestamp_ms) == (None, (), None)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"prefix_group": 3}, "w.jsonl:7: 'prefix_group' must be a string, got int"),
        ({"followups": "more"}, "w.jsonl:7: 'followups' must be a list of non-empty strings"),
        ({"followups": ["ok", " "]}, "w.jsonl:7: 'followups' must be a list of non-empty"),
        ({"timestamp": -1}, "w.jsonl:7: 'timestamp' must be a number of milliseconds >= 0"),
        ({"timestamp": "10"}, "w.jsonl:7: 'timestamp' must be a number of milliseconds >= 0"),
        ({"timestamp": True}, "w.jsonl:7: 'timestamp' must be a number of milliseconds >= 0"),
    ],
)
def test_bad_workload_fields_name_the_line(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(DatasetError) as err:
        parse_record({"text": "x", **extra}, where="w.jsonl:7", default_id="7")
    assert str(err.value).startswith(message)


def test_followup_for_each_round() -> None:
    p = Prompt(id="u", text="x", followup="fallback", followups=("q2", "q3"))
    assert [p.followup_for(k, "default") for k in (2, 3, 4)] == ["q2", "q3", "fallback"]
    assert Prompt(id="v", text="x").followup_for(2, "default") == "default"


def test_a_fixed_schedule_needs_every_timestamp_and_goes_in_time_order() -> None:
    prompts = [
        Prompt(id="a", text="x", timestamp_ms=500),
        Prompt(id="b", text="x", timestamp_ms=0),
        Prompt(id="c", text="x", timestamp_ms=500),
    ]
    assert [p.id for p in in_schedule_order(prompts, "t.jsonl")] == ["b", "a", "c"]
    with pytest.raises(DatasetError, match="t.jsonl: record 'z' has no 'timestamp'"):
        in_schedule_order([*prompts, Prompt(id="z", text="x")], "t.jsonl")


# --- prefix groups and their nonces -----------------------------------------------------------


def test_prefix_groups_number_groups_in_order_and_lone_prompts_alone() -> None:
    prompts = [
        Prompt(id="1", text="x", group="g"),
        Prompt(id="2", text="x"),
        Prompt(id="3", text="x", group="h"),
        Prompt(id="4", text="x", group="g"),
        Prompt(id="5", text="x"),
    ]
    assert prefix_groups(prompts) == [0, 1, 2, 0, 3]


def test_a_group_shares_its_nonce_and_nothing_else_does() -> None:
    prompts = [Prompt(id=f"p{i}", text=f"shared doc, q{i}", group=f"g{i % 3}") for i in range(9)]
    plan = RunPlan(BenchConfig(concurrency=(1, 2)), ENDPOINT, "m", prompts, run_token="t")
    nonces = [
        [_first_text(r).split(" ", 1)[0] for r in level_requests(plan, index)] for index in (0, 1)
    ]
    for level in nonces:
        for i, nonce in enumerate(level):
            assert nonce == level[i % 3]  # one nonce per group
    heads = {n[:4] for level in nonces for n in level}
    assert len(heads) == 6  # 3 groups x 2 levels: no two share even four letters


def test_without_groups_every_prompt_keeps_a_nonce_of_its_own() -> None:
    prompts = [Prompt(id=f"p{i}", text="same text") for i in range(5)]
    plan = RunPlan(BenchConfig(concurrency=(1,)), ENDPOINT, "m", prompts, run_token="t")
    heads = {_first_text(r)[:4] for r in level_requests(plan, 0)}
    assert len(heads) == 5


# --- one follow-up per round ----------------------------------------------------------------


def test_continue_takes_each_rounds_own_followup() -> None:
    prompts = [Prompt(id="u", text="hello", followups=("q2", "q3"))]
    reqs = [PreparedRequest.of("u", {"messages": [{"role": "user", "content": "hello"}]})]

    def answered(rnd: int) -> list[RequestRecord]:
        rec = RequestRecord(prompt_id="u", level="concurrency=1", round=rnd, start_ms=0.0)
        rec.output_text = f"answer {rnd}"
        return [rec]

    for rnd in (2, 3, 4):
        reqs, failed = continue_requests(reqs, answered(rnd - 1), prompts, "default", round=rnd)
        assert failed == 0
    turns = [m["content"] for m in reqs[0].payload["messages"]]
    assert turns == ["hello", "answer 1", "q2", "answer 2", "q3", "answer 3", "default"]


# --- trace offsets ----------------------------------------------------------------------------


def test_trace_offsets_start_at_zero_and_scale_with_the_speedup() -> None:
    ts = [1000.0, 1500.0, 3000.0]
    assert trace_offsets(ts, 3, 1.0) == (0.0, 0.5, 2.0)
    assert trace_offsets(ts, 3, 2.0) == (0.0, 0.25, 1.0)
    # a warm-up longer than the trace starts it over one mean gap (1 s) after its end
    assert trace_offsets(ts, 5, 1.0) == (0.0, 0.5, 2.0, 3.0, 3.5)
    assert trace_offsets([], 3, 1.0) == ()


def test_busiest_second() -> None:
    assert busiest_second([]) == 0
    assert busiest_second([0.0]) == 1
    assert busiest_second([0.0, 0.2, 0.9, 1.0, 1.5, 1.6, 1.7]) == 5  # 0.9 .. 1.7
    assert busiest_second([0.0, 5.0, 10.0]) == 1


def test_pacer_for_a_trace_level_replays_the_timestamps_under_its_cap() -> None:
    pacer = pacer_for(
        Level.trace(4, max_concurrency=2),
        3,
        burstiness=1.0,
        seed=0,
        ramp_up_s=0.0,
        timestamps_ms=[0.0, 400.0, 800.0],
    )
    assert isinstance(pacer, OpenLoop)
    assert pacer.offsets_s == (0.0, 0.1, 0.2) and pacer.max_concurrency == 2
    with pytest.raises(ValueError, match="needs their timestamps"):
        pacer_for(Level.trace(1), 3, burstiness=1.0, seed=0, ramp_up_s=0.0)


# --- the flags --------------------------------------------------------------------------------


def test_fixed_schedule_levels_are_the_speedups() -> None:
    cfg = build_config({"fixed_schedule": True, "speedup": [1, 2.5]}, environ={}).check()
    assert cfg.concurrency == ()
    assert cfg.levels == (Level.trace(1), Level.trace(2.5))
    assert build_config({"fixed_schedule": True}, environ={}).check().levels == (Level.trace(1),)
    capped = build_config({"fixed_schedule": True, "max_concurrency": 8}, environ={}).check()
    assert capped.levels == (Level.trace(1, max_concurrency=8),)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            {"fixed_schedule": True, "concurrency": [5]},
            "--fixed-schedule and --concurrency both say when requests go",
        ),
        (
            {"fixed_schedule": True, "request_rate": [5]},
            "--fixed-schedule and --request-rate both say when requests go",
        ),
        ({"speedup": [2]}, "--speedup sets the pace of --fixed-schedule, which is not given"),
        ({"fixed_schedule": True, "speedup": [2, 2]}, "--speedup lists 2 twice"),
        ({"fixed_schedule": True, "speedup": [0]}, "--speedup must be above 0"),
        ({"fixed_schedule": True, "ramp_up": 2}, "--ramp-up spreads a closed loop's start"),
    ],
)
def test_fixed_schedule_conflicts_are_one_line(flags: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_config(flags, environ={}).check()
    assert str(err.value).startswith(message)


# --- whole runs through a transport double -----------------------------------------------------


class _Quiet:
    def round_started(self, level: Level, rnd: int, total: int) -> Any:
        class _Bar:
            def update(self, rec: RequestRecord) -> None:
                pass

            def close(self) -> None:
                pass

        return _Bar()

    def request_done(self, rec: RequestRecord) -> None:
        pass

    def round_done(self, level: LevelResult, result: RoundResult) -> None:
        pass

    def level_done(self, level: LevelResult) -> None:
        pass

    def warning(self, message: str) -> None:
        pass

    def note(self, message: str) -> None:
        pass


def _run(cfg: BenchConfig, prompts: list[Prompt]) -> tuple[RunResult, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []

    async def answering_send(req: PreparedRequest) -> RawExchange:
        sent.append(req.payload)
        raw = RawExchange(send_ns=perf_counter_ns(), status=200)
        await asyncio.sleep(0)
        raw.chunks.append((perf_counter_ns(), _STREAM))
        raw.end_ns = perf_counter_ns()
        return raw

    plan = RunPlan(cfg, ENDPOINT, "m", prompts, run_token="t")
    result = RunResult(config=cfg, started_at="t0")
    asyncio.run(runner.run(plan, result, _Quiet(), transport=answering_send))
    return result, sent


def test_a_trace_level_sends_each_record_at_its_timestamp_in_every_round() -> None:
    prompts = [Prompt(id=f"t{i}", text="x", timestamp_ms=ms) for i, ms in enumerate((0, 300, 600))]
    cfg = BenchConfig(concurrency=(), fixed_schedule=True, speedup=(3.0,))
    result, _ = _run(cfg, prompts)
    (level,) = result.levels
    assert level.level == Level.trace(3)
    for rnd in level.rounds:
        assert [r.level for r in rnd.records] == ["trace=3x"] * 3
        assert [r.scheduled_ms for r in rnd.records] == pytest.approx([0.0, 100.0, 200.0])
        # sent no earlier than due (and, on a loaded machine, possibly later)
        assert all(r.start_ms >= (r.scheduled_ms or 0) - 1.0 for r in rnd.records)


def test_a_session_run_sends_each_users_turns_in_order() -> None:
    prompts = [
        Prompt(id=f"user-{u}", text=f"history {u}", group="shared", followups=("q2", "q3"))
        for u in range(2)
    ]
    cfg = BenchConfig(concurrency=(2,), rounds=3, round2_mode="continue")
    result, sent = _run(cfg, prompts)
    assert [len(r.records) for r in result.levels[0].rounds] == [2, 2, 2]
    last_turns = [p["messages"][-1]["content"] for p in sent]
    assert last_turns[2:] == ["q2", "q2", "q3", "q3"]
    # the group's one nonce is at the start of both users' first turn
    nonces = {p["messages"][0]["content"].split(" ", 1)[0] for p in sent}
    assert len(nonces) == 1


# --- on the bundled mocker --------------------------------------------------------------------


def test_fixed_schedule_end_to_end_names_levels_and_files(fast_mocker, tmp_path: Path) -> None:
    data = tmp_path / "trace.jsonl"
    rows = [{"id": f"r{i}", "text": f"request {i}", "timestamp": 200 * i} for i in range(6)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows[::-1]))  # out of order on purpose
    out = tmp_path / "out"
    argv = [
        "--endpoint",
        fast_mocker.url("/v1/chat/completions"),
        "--dataset",
        str(data),
        "--output-dir",
        str(out),
    ]
    argv += ["--fixed-schedule", "--speedup", "2", "4", "--max-tokens", "4", "--quiet"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    kinds = [(lv["level"]["kind"], lv["level"]["speedup"]) for lv in summary["levels"]]
    assert kinds == [("trace", 2.0), ("trace", 4.0)]
    assert (out / "trace_2x_round_1.json").is_file() and (out / "trace_4x_round_2.json").is_file()
    logged = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    first = [r for r in logged if r["level"] == "trace=2x" and r["round"] == 1]
    assert [r["prompt_id"] for r in first] == [f"r{i}" for i in range(6)]  # in timestamp order
    assert [r["scheduled_ms"] for r in first] == pytest.approx([100.0 * i for i in range(6)])
