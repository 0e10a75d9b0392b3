"""Shared fixtures: the mock LLM server, started as a real subprocess on a free 127.0.0.1 port.

- ``mocker_factory``: returns ``start(*args) -> MockerProcess`` (started; stopped at test end).
  Use it when a test needs its own flags or a cache/metrics state no other test touches.
- ``mocker``: one default mocker shared by the whole session (its cache, metrics and
  ``/debug/requests`` see every test's traffic, so assert on deltas or unique prompts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from drbench.mocker.process import MockerProcess


@pytest.fixture
def mocker_factory() -> Iterator[Callable[..., MockerProcess]]:
    started: list[MockerProcess] = []

    def start(*args: str) -> MockerProcess:
        proc = MockerProcess(args)
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def mocker() -> Iterator[MockerProcess]:
    with MockerProcess() as proc:
        yield proc
