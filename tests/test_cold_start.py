"""The cold-start nonce: what varies per run, level and prompt comes first."""

from __future__ import annotations

import itertools

from drbench.dataset import cold_prefix


def nonces(token: str, levels: int, prompts: int) -> list[str]:
    return [cold_prefix(token, lv, i, prompts) for lv in range(levels) for i in range(prompts)]


def test_no_two_prompts_of_a_run_share_their_first_four_characters() -> None:
    run = nonces("35a1d9e1", 4, 1000)
    assert len({n[:4] for n in run}) == len(run)
    assert all(n.endswith(" ") and n[:-1].isalpha() for n in run)  # letters only, then a space


def test_neighbouring_prompts_differ_in_their_first_character() -> None:
    run = nonces("35a1d9e1", 2, 500)
    assert all(a[0] != b[0] for a, b in itertools.pairwise(run))
    # with token-level caching, prompts share at most the first character's token
    assert len({n[:2] for n in run}) == len(run)


def test_another_run_draws_other_nonces() -> None:
    a, b = set(nonces("35a1d9e1", 2, 200)), set(nonces("0badf00d", 2, 200))
    assert not a & b
    assert len({n[5:] for n in a | b}) == len(a | b)  # the random tail differs too
