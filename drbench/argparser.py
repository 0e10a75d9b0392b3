"""An ArgumentParser whose errors are one line: a ``UsageError`` instead of usage text and exit.

argparse prints the whole usage block and exits on a bad flag; every entry point of the tool
(the benchmarker, the converters, the mocker) uses this parser instead, so a mistake is one line
in the tool's own voice (``drbench: --timeout: invalid float value: 'x' (see --help)``), an
unknown flag gets "did you mean --x?" from the parser's own flags, and ``main([...])`` returns
exit code 2 rather than raising SystemExit.  ``--help`` and ``--version`` still print and exit 0:
every parser has ``--version`` (``PROG (drbench X.Y.Z)`` unless the entry point words it).
Unknown ``--flags`` are looked for before argparse parses, so a mistyped flag is named even when
argparse would first complain about a required flag that is missing (``--inptu x``).
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn

from drbench import __version__
from drbench.errors import UsageError

__all__ = ["OneLineParser", "unknown_flag_hint"]

_UNRECOGNIZED = "unrecognized arguments: "
_ARGUMENT = re.compile(r"^argument ([^:]+): ")


class OneLineParser(argparse.ArgumentParser):
    """Raises ``UsageError(prefix + one line)``; ``prefix`` is e.g. ``"llm_mocker: "``.

    The prefix is for entry points whose message carries the program name itself; the others
    add their ``prog: `` when printing.
    """

    def __init__(
        self,
        *args: Any,
        prefix: str = "",
        version: str | None = None,
        peers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)  # argparse's own parameters, passed through
        self.error_prefix = prefix
        self.peers = dict(peers or {})  # another tool's flag -> what to write here instead
        self.add_argument(
            "--version",
            action="version",
            version=version or f"{self.prog} (drbench {__version__})",
            help="print the version and exit",
        )

    def parse_known_args(self, args: Iterable[str] | None = None, *rest: Any, **kw: Any) -> Any:
        """argparse's (its overloads passed through), after a look for unknown ``--flags``
        (see the module docstring)."""
        words = list(sys.argv[1:] if args is None else args)
        unknown = self.unknown_flags(words)
        if unknown:
            self.error(_UNRECOGNIZED + " ".join(unknown))
        return super().parse_known_args(words, *rest, **kw)

    def unknown_flags(self, words: Sequence[str]) -> list[str]:
        """The ``--words`` no flag of this parser takes, up to a bare ``--``; a word that starts
        a known flag is argparse's to read (an abbreviation, or ambiguous)."""
        known = self.known_flags()
        out = []
        for word in words:
            if word == "--":
                break
            name = word.split("=", 1)[0]
            if name.startswith("--") and not any(k.startswith(name) for k in known):
                out.append(word)
        return out

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.error_prefix}{self.one_line(message)}")

    def one_line(self, message: str) -> str:
        """argparse's message rewritten: the flag first, a hint for an unknown flag."""
        message = " ".join(message.split())
        if message.startswith(_UNRECOGNIZED):
            return unknown_flag_hint(
                message.removeprefix(_UNRECOGNIZED).split(), self.known_flags(), self.peers
            )
        match = _ARGUMENT.match(message)
        if match:
            flag = match.group(1).split("/")[-1]
            message = f"{flag}: {message[match.end() :]}"
        return f"{message} (see --help)"

    def known_flags(self) -> list[str]:
        return sorted(s for s in self._option_string_actions if s.startswith("--"))


def unknown_flag_hint(
    extra: list[str], known: list[str], peers: Mapping[str, str] | None = None
) -> str:
    """``unknown flag --concurency; did you mean --concurrency?`` for the first unknown word;
    a peer tool's flag (``peers``: vLLM bench's ``--base-url``) gets what to write instead."""
    before = extra[: extra.index("--")] if "--" in extra else extra  # after it: no flags
    flags = [w for w in before if w.startswith("-")]
    if not flags:
        shown = " ".join(w for w in extra if w != "--")[:80]
        return f"unexpected argument {shown!r}; flags take the form --name VALUE (see --help)"
    word = flags[0].split("=", 1)[0]
    if peers and word in peers:
        return f"unknown flag {word}; {peers[word]}"
    near = difflib.get_close_matches(word, known, n=1, cutoff=0.7)
    hint = f"did you mean {near[0]}?" if near else "see --help for the flags"
    return f"unknown flag {word[:80]}; {hint}"
