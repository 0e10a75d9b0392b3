"""The message catalogue: every sentence in both languages, English as the str, zh on demand."""

from __future__ import annotations

import string

from drbench.levels import Level
from drbench.messages import CATALOGUE, Message, level_words, render, round_where
from drbench.records import RequestRecord, TokenSource
from drbench.sanity import RoundFacts, no_usage_warning, round_warnings
from drbench.selfcheck import ProcessLoad, client_limit_warning


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_sentence_has_both_languages_with_the_same_placeholders() -> None:
    for key, templates in CATALOGUE.items():
        assert set(templates) == {"en", "zh"}, key
        assert _fields(templates["en"]) == _fields(templates["zh"]), key


def test_a_message_is_its_english_text_and_renders_nested_parts_in_one_language() -> None:
    where = round_where(2, Level.closed(5))
    assert where == "round 2 at concurrency 5" and isinstance(where, str)
    assert where.render("zh") == "并发 5 的第 2 轮"
    assert level_words(Level.open(10, 32)) == Level.open(10, 32).label
    assert render(level_words(Level.open(10, 32)), "zh") == "请求速率 10 req/s (最多 32 个并发)"
    assert render("plain text", "zh") == "plain text"  # not catalogued: as it is
    m = Message("warning", text=where)
    assert m == "warning: round 2 at concurrency 5" and m.render("zh") == "警告: 并发 5 的第 2 轮"


def _rec(pid: str, cached: int) -> RequestRecord:
    return RequestRecord(
        pid,
        "concurrency=5",
        1,
        0.0,
        end_ms=50.0,
        ttft_ms=10.0,
        latency_ms=50.0,
        prompt_tokens=100,
        completion_tokens=5,
        cached_tokens=cached,
        token_source=TokenSource.USAGE,
    )


def test_sanity_and_selfcheck_warnings_keep_their_english_and_have_chinese() -> None:
    facts = RoundFacts(
        level=Level.closed(5),
        round=1,
        records=[_rec("a", 90)],
        client_cached_share=0.9,
        server_hit_rate=None,
        cold_start="nonce",
    )
    (line,) = round_warnings(facts)
    assert line.startswith(
        "round 1 at concurrency 5 was not cold: 90.0% of prompt tokens cached (usage). "
        "Likely cause: the chat template's header"
    )
    zh = render(line, "zh")
    assert zh.startswith("并发 5 的第 1 轮 不是冷启动: 90.0% 的输入 tokens 命中缓存 (usage)。")
    assert "Likely" not in zh and "cached" not in zh
    load = ProcessLoad(
        worker=None,
        duration_s=1.0,
        cpu_s=0.95,
        loop_lag_p50_ms=1.0,
        loop_lag_p99_ms=40.0,
        loop_lag_max_ms=50.0,
        samples=100,
    )
    where = round_where(1, Level.closed(5))
    limit = client_limit_warning([load], where=where, workers=1, cpus=4)
    assert limit is not None
    assert limit.startswith("round 1 at concurrency 5: the client may have limited this round")
    assert limit.endswith("give --workers 2 to spread the client over more cores")
    assert render(limit, "zh").startswith(
        "并发 5 的第 1 轮: 限制本轮的可能是客户端而不是服务端: 主进程:"
    )
    estimated = _rec("b", 0)
    estimated.token_source = TokenSource.ESTIMATE
    assert render(no_usage_warning([estimated]) or "", "zh").startswith("服务端未返回 usage")


def test_a_failed_gate_speaks_both_languages() -> None:
    from drbench.errors import ExitStatus  # noqa: PLC0415
    from drbench.gates import GateResult  # noqa: PLC0415

    gate = GateResult(
        "fail_on_errors",
        Level.closed(5),
        2,
        value=50.0,
        threshold=5.0,
        passed=False,
        status=ExitStatus.ERRORS_FAILED,
        detail=Message("gate_of", n=2, total=4),
    )
    assert gate.message() == (
        "--fail-on-errors 5% failed: round 2 at concurrency 5 had 50.0% failed requests "
        "(2 of 4): exit 5"
    )
    assert render(gate.message(), "zh") == (
        "--fail-on-errors 5% 未通过: 并发 5 的第 2 轮 的失败请求占比为 50.0% (4 个中 2 个): 退出码 5"
    )


def test_a_message_survives_pickle_and_deepcopy() -> None:
    import copy  # noqa: PLC0415
    import pickle  # noqa: PLC0415

    m = Message("warning", text=round_where(1, Level.closed(3)))
    for twin in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        assert twin == m and twin.render("zh") == "警告: 并发 3 的第 1 轮"


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_server_metrics_and_oracle_sentences_keep_their_english_and_have_chinese() -> None:
    from drbench.oracle import NO_CAPACITY  # noqa: PLC0415
    from drbench.prometheus.profiles import LMCACHE, VLLM, resolve_profile, with_engine  # noqa: PLC0415
    from drbench.prometheus.watch import _profile_notes  # noqa: PLC0415

    (mismatch,) = resolve_profile("sglang", ["vllm:num_requests_running"]).warnings
    assert mismatch == (
        "server metrics: --server-profile sglang but the endpoint exposes vLLM metrics; its "
        "SGLang hit rates may be missing (use --server-profile auto or vllm)"
    )
    assert render(mismatch, "zh").startswith("服务端指标: 指定了 --server-profile sglang")
    lmcache = with_engine(LMCACHE, VLLM)
    (lag,) = _profile_notes(lmcache, round_pause_s=0.0)
    assert lag.startswith("server metrics: LMCache publishes its counters about every 10 s")
    assert "每 10 秒" in render(lag, "zh") and "publishes" not in render(lag, "zh")
    assert lmcache.cache_off.endswith(", or prefix caching is off (vLLM: --enable-prefix-caching)")
    assert render(lmcache.cache_off, "zh").endswith(
        "或前缀缓存未开启 (vLLM: --enable-prefix-caching)"
    )
    assert NO_CAPACITY.startswith("not computed: the server's cache capacity is unknown")
    assert render(NO_CAPACITY, "zh").startswith("未计算: 服务端的缓存容量未知")


def test_a_zh_run_prints_no_english_warning(mocker_factory, tmp_path, capsys) -> None:
    """End to end: a dead --prometheus-url and prompts over the mocker's context length give
    their warnings in Chinese, as every other line the run prints on stderr."""
    import socket  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from drbench.cli import main  # noqa: PLC0415

    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    mock = mocker_factory("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "8",
                          "--max-model-len", "600")  # fmt: skip
    dataset = Path(__file__).resolve().parent.parent / "examples" / "example_dataset.json"
    code = main(
        ["--endpoint", mock.base_url + "/v1/chat/completions", "--dataset", str(dataset),
         "--output-dir", str(tmp_path / "o"), "--no-plots", "--lang", "zh", "--rounds", "2",
         "--max-tokens", "16", "--concurrency", "2",
         "--prometheus-url", f"http://127.0.0.1:{dead}/metrics"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if ln.startswith("drbench: ")]
    warnings = [ln for ln in lines if ln.startswith("drbench: 警告: ")]
    assert any("max_model_len 600" in ln for ln in warnings), err
    assert any(f"127.0.0.1:{dead}" in ln and "不可用" in ln for ln in warnings), err
    assert all(_has_cjk(ln) for ln in lines), err
    for english in ("warning:", "need more than", "unavailable", "marked missing", "cannot connect",
                    "Likely cause", "Check --prometheus-url", "they will likely fail"):  # fmt: skip
        assert english not in err, english
    s = __import__("json").loads((tmp_path / "o" / "summary.json").read_text())
    assert any("need more than the model's max_model_len 600" in w for w in s["run"]["warnings"])


def test_sweep_and_slo_search_lines_keep_their_english_and_have_chinese() -> None:
    from drbench.report.sweep_files import answer_sentence, probe_sentence  # noqa: PLC0415
    from drbench.slo_search import Probe, SearchSpec  # noqa: PLC0415

    spec = SearchSpec(percentile=95, bound_ms=2000, round=2, max_users=64)
    probe = probe_sentence(spec, Probe(8, 2500.0, 1, False, "d", 0))
    assert probe == (
        "slo-search users=8 at concurrency 8: round 2 TTFT p95 2500.0 ms, 1 failed "
        "(bound 2000 ms): over"
    )
    assert render(probe, "zh") == (
        "slo-search users=8 (并发 8): 第 2 轮 TTFT p95 2500.0 ms, 失败 1 (上限 2000 ms): 超限"
    )
    best = answer_sentence(spec, {4: True, 8: False})
    assert best == (
        "slo-search: at most 4 concurrent sessions keep round 2 TTFT p95 within 2000 ms (5 do not)"
    )
    assert render(best, "zh") == (
        "slo-search: 最多 4 个并发会话可保持第 2 轮 TTFT p95 不超过 2000 ms (5 个则不能)"
    )
    for english in ("concurrent", "within", "do not", "failed", "bound"):
        assert english not in render(probe, "zh") + render(best, "zh"), english


def test_a_regression_gate_line_speaks_both_languages() -> None:
    from drbench.compare import GateCheck, Regression  # noqa: PLC0415

    msg = GateCheck(Regression("ttft_p99", 10.0), "concurrency=2", 2, 25.0, (5.0, 40.0)).message()
    assert msg == (
        "--fail-on-regression ttft_p99=10: round 2 at concurrency=2: "
        "B worse by +25.0% (95% CI +5.0% .. +40.0%): FAILED"
    )
    assert render(msg, "zh") == (
        "--fail-on-regression ttft_p99=10: concurrency=2 的第 2 轮: "
        "B 比 A 差 +25.0% (95% 置信区间 +5.0% .. +40.0%): 未通过"
    )
