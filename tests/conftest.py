"""Shared fixtures: the mock LLM server, started as a real subprocess on a free 127.0.0.1 port.

- ``mocker_factory``: returns ``start(*args) -> MockerProcess`` (started; stopped at test end).
  Use it when a test needs its own flags or a cache/metrics state no other test touches.
- ``mocker``: one default mocker shared by the whole session (its cache, metrics and
  ``/debug/requests`` see every test's traffic, so assert on deltas or unique prompts). Under
  pytest-xdist "session" means one worker: each worker starts its own.
- ``fast_mocker``: like ``mocker``, with the delays the CLI end-to-end tests use (``E2E_FAST``),
  for runs that only need a server to answer; the same caveats, and a test that resets its
  cache resets it for the tests after it on that worker.
- ``sigint_reaches_children``: for tests that Ctrl-C a child run with SIGINT.

Tests marked ``slow`` (seconds each) are collected first: pytest-xdist's default ``load``
scheduling then starts them on different workers while the short ones fill the gaps, instead of
one worker ending the run alone on a long test that came last.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from drbench.mocker.process import MockerProcess

E2E_FAST = ("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "8")


# slow tests marked here, not in their file (the prometheus tests are being moved)
SLOW_ELSEWHERE = ("tests/test_prometheus.py::test_exit_codes_for_ci",)


def pytest_configure(config: pytest.Config) -> None:
    """Under xdist (``-n 3``), distribute by ``xdist_group`` marks when no --dist is given:
    tests/test_ray_executor.py's tests then share one xdist worker and one Ray cluster. Here
    rather than in addopts, so pytest without xdist still runs. xdist has made ``-n`` mean
    "load" by now and picks its scheduler later; its workers read the mode from the command
    line, so they are told through ``pytest_configure_node``."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # an xdist worker: name each test's group as loadgroup does
        if workerinput.get("drbench_loadgroup"):
            config.option.loadgroup = True
        return
    given = any(a == "--dist" or a.startswith("--dist=") for a in config.invocation_params.args)
    if getattr(config.option, "dist", None) == "load" and not given:
        config.option.dist = "loadgroup"
        config.pluginmanager.register(_LoadGroupNodes(), "drbench-loadgroup")


class _LoadGroupNodes:
    """Tells each xdist worker that the controller distributes by group."""

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["drbench_loadgroup"] = True


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first (a stable sort: the order within each group stays)."""
    for item in items:
        if item.nodeid in SLOW_ELSEWHERE:
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


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


@pytest.fixture(scope="session")
def fast_mocker() -> Iterator[MockerProcess]:
    """A mocker start is ~0.4 s of CPU; a whole CLI run against it, a fraction of that."""
    with MockerProcess(E2E_FAST) as proc:
        yield proc


@pytest.fixture
def sigint_reaches_children() -> Iterator[None]:
    """Make SIGINT interrupt the children this test starts, however pytest was launched.

    A shell starts a background job (``pytest &``, a CI runner without job control) with SIGINT
    ignored; an ignored signal stays ignored across exec, so a child Python would never see the
    test's Ctrl-C and would run to the end. A handler (unlike SIG_IGN) is reset by exec, so
    installing Python's default one here gives every child the default disposition.
    """
    before = signal.getsignal(signal.SIGINT)
    if before == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if before == signal.SIG_IGN:
        signal.signal(signal.SIGINT, before)
