"""An ArgumentParser whose errors are one line: a ``UsageError`` instead of usage text and exit.

argparse prints the whole usage block and exits on a bad flag; every entry point of the tool
(the benchmarker, the converters, the mocker) uses this parser instead, so a mistake is one line
in the tool's own voice (``drbench: --timeout: invalid float value: 'x' (see --help)``), an
unknown flag gets "did you mean --x?" from the parser's own flags, and ``main([...])`` returns
exit code 2 rather than raising SystemExit.  ``--help`` and ``--version`` still print and exit 0.
"""

from __future__ import annotations

import argparse
import difflib
import re
from typing import Any, NoReturn

from drbench.errors import UsageError

__all__ = ["OneLineParser", "unknown_flag_hint"]

_UNRECOGNIZED = "unrecognized arguments: "
_ARGUMENT = re.compile(r"^argument ([^:]+): ")


class OneLineParser(argparse.ArgumentParser):
    """Raises ``UsageError(prefix + one line)``; ``prefix`` is e.g. ``"llm_mocker: "``.

    The prefix is for entry points whose message carries the program name itself; the others
    add their ``prog: `` when printing.
    """

    def __init__(self, *args: Any, prefix: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # argparse's own parameters, passed through
        self.error_prefix = prefix

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.error_prefix}{self.one_line(message)}")

    def one_line(self, message: str) -> str:
        """argparse's message rewritten: the flag first, a hint for an unknown flag."""
        message = " ".join(message.split())
        if message.startswith(_UNRECOGNIZED):
            return unknown_flag_hint(
                message.removeprefix(_UNRECOGNIZED).split(), self.known_flags()
            )
        match = _ARGUMENT.match(message)
        if match:
            flag = match.group(1).split("/")[-1]
            message = f"{flag}: {message[match.end() :]}"
        return f"{message} (see --help)"

    def known_flags(self) -> list[str]:
        return sorted(s for s in self._option_string_actions if s.startswith("--"))


def unknown_flag_hint(extra: list[str], known: list[str]) -> str:
    """``unknown flag --concurency; did you mean --concurrency?`` for the first unknown word."""
    flags = [w for w in extra if w.startswith("-")]
    if not flags:
        shown = " ".join(extra)[:80]
        return f"unexpected argument {shown!r}; flags take the form --name VALUE (see --help)"
    word = flags[0].split("=", 1)[0]
    near = difflib.get_close_matches(word, known, n=1, cutoff=0.7)
    hint = f"did you mean {near[0]}?" if near else "see --help for the flags"
    return f"unknown flag {word[:80]}; {hint}"
