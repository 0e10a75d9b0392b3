"""LongBench's official per-subset prompt templates and generation lengths, and subset names.

The facts live in ``longbench_config.json`` beside this module, a verbatim copy of LongBench's
``config/dataset2prompt.json`` and ``dataset2maxlen.json`` (MIT), so prompts are byte-identical
to LongBench's ``pred.py`` (including the upstream typo "asconcisely").  LongBench-E subsets are
named ``NAME_e`` and use NAME's template and length.  No I/O except reading that packaged file.
"""

from __future__ import annotations

import difflib
import json
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from drbench.errors import DatasetError, UsageError

__all__ = ["ALL", "ALL_E", "TEMPLATES", "LongBenchSpec"]

ALL = "all"  # every LongBench v1 subset
ALL_E = "all_e"  # every LongBench-E subset
TEMPLATES = ("official", "raw")


@dataclass(frozen=True)
class LongBenchSpec:
    """The subsets, their templates and maximum generation lengths, from the packaged table."""

    prompts: Mapping[str, str]
    max_new_tokens: Mapping[str, int]
    no_chat_template: frozenset[str]
    e_subsets: tuple[str, ...]

    @classmethod
    def load(cls) -> LongBenchSpec:
        raw = (
            resources.files("drbench.convert").joinpath("longbench_config.json").read_text("utf-8")
        )
        data = json.loads(raw)
        return cls(
            prompts=data["prompts"],
            max_new_tokens=data["max_new_tokens"],
            no_chat_template=frozenset(data["no_chat_template"]),
            e_subsets=tuple(data["longbench_e_subsets"]),
        )

    @property
    def subsets(self) -> tuple[str, ...]:
        return tuple(self.prompts)

    def names(self) -> list[str]:
        """Every accepted subset name: the v1 subsets, then the LongBench-E ones."""
        return [*self.subsets, *(f"{s}_e" for s in self.e_subsets)]

    def base(self, name: str) -> str:
        """The v1 subset whose template and length a (possibly ``_e``) subset uses."""
        if name.endswith("_e") and name[:-2] in self.e_subsets:
            return name[:-2]
        return name

    def is_known(self, name: str) -> bool:
        return name in self.prompts or (name.endswith("_e") and name[:-2] in self.e_subsets)

    def resolve(self, names: Sequence[str], *, flag: str = "--dataset") -> list[str]:
        """The subsets named, with ``all`` / ``all_e`` expanded and repeats removed, in order."""
        out: list[str] = []
        for name in names:
            if name == ALL:
                expanded = list(self.subsets)
            elif name == ALL_E:
                expanded = [f"{s}_e" for s in self.e_subsets]
            elif self.is_known(name):
                expanded = [name]
            else:
                raise UsageError(self.unknown_message(name, flag))
            out.extend(n for n in expanded if n not in out)
        return out

    def unknown_message(self, name: str, where: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return (
            f"{where}: unknown LongBench subset {name!r}; {hint}"
            f"choose from {', '.join(self.subsets)}, their _e versions ({', '.join(self.e_subsets)}), "
            f"'{ALL}' or '{ALL_E}'"
        )

    def max_tokens(self, name: str) -> int:
        return self.max_new_tokens[self.base(name)]

    def chat_template(self, name: str) -> bool:
        """Whether LongBench applies the model's chat template to this subset's prompts."""
        return self.base(name) not in self.no_chat_template

    def required_fields(self, name: str, template: str) -> tuple[str, ...]:
        """The record fields the prompt needs: those in the template, or context for raw."""
        if template == "raw":
            return ("context",)
        fmt = string.Formatter().parse(self.prompts[self.base(name)])
        return tuple(dict.fromkeys(f for _, f, _, _ in fmt if f))

    def prompt(self, name: str, record: Mapping[str, Any], template: str, *, where: str) -> str:
        """The prompt text of one LongBench record; a DatasetError names a missing field."""
        fields = {}
        for field in self.required_fields(name, template):
            value = record.get(field)
            if not isinstance(value, str):
                got = "missing" if value is None else f"a {type(value).__name__}, not a string"
                raise DatasetError(
                    f"{where}: field {field!r} is {got} "
                    f"(a LongBench {self.base(name)} record needs {', '.join(self.required_fields(name, template))})"
                )
            fields[field] = value
        if template == "raw":
            extra = record.get("input")
            return fields["context"] + (f"\n\n{extra}" if isinstance(extra, str) and extra else "")
        return self.prompts[self.base(name)].format(**fields)
