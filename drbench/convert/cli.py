"""Argparse plumbing shared by the converter commands (LongBench, ShareGPT, mix).

A parser whose errors are ``UsageError`` (so ``main([...])`` returns 2 instead of exiting), flag
value checkers, and ``run`` which turns a DrbenchError into one stderr line and an exit code.
The commands themselves live in longbench.py, sharegpt.py and mix.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drbench.argparser import OneLineParser
from drbench.errors import DrbenchError, ExitStatus

__all__ = ["Parser", "add_output_and_seed", "non_negative_int", "positive_int", "run"]


class Parser(OneLineParser):
    """The shared one-line parser (drbench/argparser.py); ``run`` adds the ``prog: `` prefix."""


def add_output_and_seed(group: Any, default_output: str) -> None:
    """The --output FILE and --seed N flags every converter command shares."""
    group.add_argument(
        "--output",
        type=Path,
        default=Path(default_output),
        metavar="FILE",
        help=f"output JSONL (default: {default_output})",
    )
    group.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {text})")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (got {text})")
    return value


def run(prog: str, body: Callable[[], int]) -> int:
    """Call an entry point's body; a user error becomes ``prog: message`` and its exit code."""
    try:
        return body()
    except DrbenchError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return int(exc.exit_status)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return int(ExitStatus.INTERRUPTED)
    except BrokenPipeError:  # e.g. `... | head`: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitStatus.ERROR)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
