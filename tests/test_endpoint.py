"""The endpoint's URL: credentials in it become basic auth, never a crash or a leak."""

from __future__ import annotations

import base64

import pytest

from drbench.client import Endpoint, split_userinfo
from drbench.errors import UsageError


def test_credentials_in_the_url_are_sent_as_basic_auth_and_kept_out_of_the_url() -> None:
    ep = Endpoint.parse(" http://al%40ice:s3cr%3At@h:8000/v1/chat/completions ")
    assert ep.url == "http://h:8000/v1/chat/completions" and ep.kind == "chat"
    assert ep.headers["Authorization"] == "Basic " + base64.b64encode(b"al@ice:s3cr:t").decode()
    assert ep.redact("echo: al@ice:s3cr:t") == "echo: ***"
    assert ep.models_url == "http://h:8000/v1/models"


def test_credentials_in_the_url_and_an_api_key_is_one_clear_line() -> None:
    with pytest.raises(UsageError, match="drop one of them"):
        Endpoint.parse("http://u:p@h/v1/completions", api_key="sk-x")


def test_split_userinfo_leaves_a_plain_url_alone() -> None:
    assert split_userinfo("http://h/v1/x") == ("http://h/v1/x", None)
    assert split_userinfo("https://u@h/v1/x") == ("https://h/v1/x", "u")


def test_the_models_url_keeps_a_query_string_out_of_the_path() -> None:
    ep = Endpoint.parse("http://h/openai/v1/completions?api-version=2024")
    assert ep.models_url == "http://h/openai/v1/models?api-version=2024"
