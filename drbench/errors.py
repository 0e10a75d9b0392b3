"""The package's exception tree and the process exit codes.

Library code raises these and never prints; only ``cli.py`` (and the other entry points) turn
them into one line on stderr and an exit code, so a user's mistake never looks like a crash::

    DrbenchError                 anything the user can fix; str(exc) is the one line to print
    ├── UsageError               a bad flag or flag combination                   (exit 2)
    ├── ConfigError              a bad recipe / SLO file / config value            (exit 2)
    ├── DatasetError             a dataset file that cannot be read or is malformed (exit 2)
    ├── PreflightError           the endpoint is unreachable, rejects the model/key (exit 3)
    └── OutputDirError           the output directory exists and is not empty      (exit 2)

Request failures during a round are *not* exceptions: they are data on a RequestRecord.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "ConfigError",
    "DatasetError",
    "DrbenchError",
    "ExitStatus",
    "OutputDirError",
    "PreflightError",
    "UsageError",
    "severity",
]


class ExitStatus(IntEnum):
    """Process exit codes; CI scripts depend on these values, so they never change meaning."""

    OK = 0
    ERROR = 1  # an unexpected internal error (a bug: run with --debug and report it)
    USAGE = 2  # bad flag, recipe, SLO file, dataset or output directory
    PREFLIGHT = 3  # endpoint unreachable, model rejected or key refused before any round
    SLO_FAILED = 4  # --fail-on-slo: some round's goodput fell below the threshold
    ERRORS_FAILED = 5  # --fail-on-errors: some round's failed-request share exceeded the threshold
    NO_SUCCESS = 6  # some round had no successful request at all (always checked; wins over 5, 4)
    REGRESSION = 7  # --compare --fail-on-regression: B worse than A beyond the threshold and noise
    LOST_WORKER = 8  # --on-lost-worker stop: a worker process or Ray actor was lost mid-round
    INTERRUPTED = 130  # Ctrl-C; every finished round is still reported


_SEVERITY = {130: 7, 1: 6, 8: 5, 3: 5, 2: 5, 6: 4, 5: 3, 4: 2, 7: 2, 0: 0}


def severity(status: int) -> tuple[int, int]:
    """Sort key of exit codes, the worst last: what several runs (a recipe's, a sweep's)
    report as one. An interrupt and a bug come first, then a run that could not start, then
    the gates."""
    return (_SEVERITY.get(status, 1), status)


class DrbenchError(Exception):
    """Base of every error a user can fix; its message is a single line meant for the terminal."""

    exit_status: ExitStatus = ExitStatus.USAGE


class UsageError(DrbenchError):
    """A flag value or combination that cannot work (raised before anything is sent)."""


class ConfigError(DrbenchError):
    """A recipe, SLO file or configuration value that is malformed or out of range."""


class DatasetError(DrbenchError):
    """A dataset file that is missing, unreadable, or has a malformed record (names file:line)."""


class OutputDirError(DrbenchError):
    """The output directory cannot be used (exists and is not empty, or is not writable)."""


class LostWorkerError(DrbenchError):
    """--on-lost-worker stop: a worker was lost, so the run stopped after the round it hit (the
    rounds before it, and that round's finished requests, are still reported: exit 8)."""

    exit_status = ExitStatus.LOST_WORKER


class PreflightError(DrbenchError):
    """The one-request check before the first round failed: the server's own message is kept."""

    exit_status = ExitStatus.PREFLIGHT
