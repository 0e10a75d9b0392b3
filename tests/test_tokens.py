"""The token estimate, middle truncation and the recommendation arithmetic."""

from __future__ import annotations

import pytest

from drbench.convert.recommend import analyse, percentile, render
from drbench.tokens import EstimateCounter, load_counter, wide_chars


def test_estimate_rules() -> None:
    est = EstimateCounter()
    assert est.count("") == 0
    assert est.count("abcd") == 1 and est.count("abcde") == 2
    assert est.count("长城") == 2 and est.count("长城ab") == 3
    assert est.count("カタカナ한국") == 6
    assert wide_chars("a长，b") == 2  # full-width comma counts as CJK
    assert load_counter(None) == est


def test_truncate_middle_keeps_both_ends_and_fits() -> None:
    est = EstimateCounter()
    text = "HEAD " + "x" * 4000 + " TAIL"
    cut = est.truncate_middle(text, 100)
    assert est.count(cut) == 100
    assert cut.startswith("HEAD ") and cut.endswith(" TAIL")
    assert est.truncate_middle("short", 100) == "short"
    zh = "开头" + "中" * 500 + "结尾"
    cut = est.truncate_middle(zh, 10)
    assert cut == "开头中中中中中中结尾"


def test_percentile_nearest_rank() -> None:
    assert percentile([5, 1, 3, 2, 4], 50) == 3
    assert percentile([5, 1, 3, 2, 4], 90) == 5
    assert percentile([7], 90) == 7
    with pytest.raises(ValueError):
        percentile([], 50)


def test_analyse_recommendation_arithmetic() -> None:
    report = analyse(
        "s", [100, 200, 300, 400, 1000], max_tokens=50, max_model_len=800, kv_cache_tokens=2000
    )
    assert report.over_limit == 1  # 1000 + 50 > 800
    assert (report.p50_tokens, report.p90_tokens, report.max_tokens_seen) == (300, 1000, 1000)
    # clamped to 750: p90 750 + 50 = 800 tokens a request -> 2000 // 800 = 2 at once
    assert report.concurrency == (1, 2)
    # mean clamped prompt 350 -> 5 prompts fit the cache, so all 5 are recommended
    assert report.num_samples == 5 and report.round_fits_cache
    tight = analyse("s", [1000] * 10, max_tokens=24, max_model_len=4096, kv_cache_tokens=4000)
    assert tight.num_samples == 4 and not tight.round_fits_cache
    assert tight.concurrency == (1, 3)


def test_render_flags_problems() -> None:
    reports = [
        analyse("a", [5000], max_tokens=64, max_model_len=4096, kv_cache_tokens=4096,
                chat_template=False),
    ]  # fmt: skip
    text = render(reports, counter="estimate", max_model_len=4096, kv=4096)
    assert "over limit: prompts that with --max-tokens exceed --max-model-len 4096: a (1)" in text
    assert "LongBench sends a without one" in text
