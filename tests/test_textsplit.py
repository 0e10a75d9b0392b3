"""One list-splitting rule: separators outside braces and quotes, backslash escapes in quotes."""

from __future__ import annotations

import pytest

from drbench.config import OPTIONS, coerce
from drbench.prometheus import parse_selectors
from drbench.textsplit import split_outside_braces


@pytest.mark.parametrize(
    "text, separators, expected",
    [
        ("5 10,20", ", ", ["5", "10", "20"]),
        ("a,,b", ",", ["a", "", "b"]),
        ('m{a="1",b="2"},n', ",", ['m{a="1",b="2"}', "n"]),
        ("m{a='x, y'} n", " ", ["m{a='x, y'}", "n"]),
        ('m{a="q\\" b"} n', " ", ['m{a="q\\" b"}', "n"]),  # \" does not end the string
        ('"a,b",c', ",", ['"a,b"', "c"]),
        ("", ",", [""]),
    ],
)
def test_split_outside_braces(text: str, separators: str, expected: list[str]) -> None:
    assert split_outside_braces(text, separators) == expected


def test_recipe_lists_and_selectors_split_the_same_string_alike() -> None:
    """A recipe or environment value with an escaped quote yields the selectors the flag gives."""
    text = 'm{l="q\\" b,c"} n'
    opt = next(o for o in OPTIONS if o.name == "prometheus_metrics")
    items = coerce(opt, text, "r.yaml:1")
    assert items == ('m{l="q\\" b,c"}', "n")
    assert [str(s) for s in parse_selectors(items)] == [
        str(s) for s in parse_selectors(['m{l="q\\" b,c"}', "n"])
    ]
    assert parse_selectors(items)[0].matchers[0].value == 'q" b,c'
