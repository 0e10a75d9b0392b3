"""Recipes: a YAML file of option values, and optionally named runs, that stands in for flags.

``load_recipe`` reads one file with ``yaml.SafeLoader`` rules (yamlsafe.py: aliases bounded, keys
plain strings given once, shared with SLO files), checks every key against
``config.OPTIONS`` (an unknown key names its line and the nearest known key), expands ``${VAR}``
forms in string values *after* parsing (so a variable can never inject YAML structure), converts
each value with ``config.coerce`` and returns one ``RecipeRun`` per entry of ``runs:``.

It does not apply flags or defaults (``config.build_config`` does), nor check ranges and
cross-field rules (``BenchConfig.check`` does, once the flags are applied, since a flag may fix
what the recipe left out).  Relative paths stay relative to the current directory, exactly as if
typed as flags.  No printing: warnings are returned in ``Recipe.warnings`` for the CLI to show.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from drbench.config import OPTIONS, BenchConfig, Option, coerce, redacted
from drbench.envsubst import expand, expand_tree
from drbench.errors import ConfigError
from drbench.slo import BOUND_KEYS, parse_slo_flags, slo_from_mapping
from drbench.yamlsafe import YamlDocument, compose_document, show_key, yaml_error

__all__ = [
    "RECIPE_KEYS",
    "Recipe",
    "RecipeRun",
    "keys_table_markdown",
    "load_recipe",
    "parse_recipe",
]

_OPTION = {o.name: o for o in OPTIONS}
_TOP_ONLY = ("description", "runs")
RECIPE_KEYS: tuple[str, ...] = (*_OPTION, *_TOP_ONLY)
_RUN_KEYS = (*_OPTION, "description", "name")
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SECRET_VAR = re.compile(r"KEY|TOKEN|SECRET|PASS", re.IGNORECASE)


@dataclass(frozen=True)
class RecipeRun:
    """One run: ``values`` are BenchConfig field names with values already of the field's type.

    ``name`` is "" for a recipe without ``runs:``; otherwise it names the run's subdirectory of
    the output directory.  ``repr`` redacts secrets, so a run can be shown safely.
    """

    name: str
    values: dict[str, Any]
    description: str = ""

    def __repr__(self) -> str:
        return f"RecipeRun(name={self.name!r}, values={redacted(self.values)!r})"


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe: its runs in file order and the warnings the CLI should print."""

    path: str
    runs: tuple[RecipeRun, ...]
    description: str = ""
    warnings: tuple[str, ...] = ()


def load_recipe(path: str | Path, environ: Mapping[str, str] | None = None) -> Recipe:
    """Read, expand and validate the recipe at ``path`` (``environ`` defaults to os.environ)."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such file (check --recipe)") from None
    except IsADirectoryError:
        raise ConfigError(f"{name}: is a directory; --recipe takes a YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read the recipe: {exc}") from None
    return parse_recipe(text, name=name, environ=os.environ if environ is None else environ)


def parse_recipe(text: str, *, name: str, environ: Mapping[str, str]) -> Recipe:
    """The recipe in ``text``; ``name`` is how messages name the file (``name:LINE: ...``).

    The YAML is composed and checked by yamlsafe.py (size with aliases expanded, string keys,
    no key twice) before any value is built.
    """
    doc = compose_document(text, name)
    try:
        root = _root_node(doc, name)
        ctx = _Context(name, environ, doc)
        top = _items(ctx, root)
        _check_keys(ctx, top, RECIPE_KEYS, "", allow_extensions=True)
        defaults = _section(ctx, top)
        description = _text(ctx, top.get("description"))
        runs_item = top.get("runs")
        runs: tuple[RecipeRun, ...]
        if runs_item is None:
            runs = (RecipeRun("", defaults),)
        else:
            runs = _runs(ctx, runs_item, defaults)
        return Recipe(name, runs, description, tuple(ctx.warnings))
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_error(name, exc)) from None
    finally:
        doc.close()


def keys_table_markdown() -> str:
    """The Markdown table of every recipe key, generated from config.OPTIONS and BenchConfig.

    docs/RECIPE_GUIDE.md holds a copy; a test keeps the two identical.
    """
    defaults = {f.name: f.default for f in fields(BenchConfig)}
    lines = [
        "| Key | Type | Range | Default | Flag | What it sets |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for opt in OPTIONS:
        kind = _kind_words(opt)
        if opt.name == "slo":
            kind = "mapping of bounds, or list of KEY=MS"
        cells = (
            f"`{opt.name}`",
            kind,
            opt.range_words or ("http(s) URL" if opt.url else ""),
            _default_words(defaults[opt.name]),
            f"`{opt.flag}`",
            opt.help,
        )
        lines.append("| " + " | ".join(map(_cell, cells)) + " |")
    lines.append(
        "| `description` | string | | (none) | (recipe only) | Free text about the recipe. |"
    )
    lines.append(
        "| `runs` | list of mappings | | (none) | (recipe only) | Named runs; each has `name` "
        "and any keys above, which override the recipe's own. |"
    )
    return "\n".join(lines) + "\n"


# --- the YAML tree -------------------------------------------------------------------------


@dataclass
class _Context:
    name: str
    environ: Mapping[str, str]
    doc: YamlDocument
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Item:
    """One key of a mapping: the constructed key and value, the key's line and the value node."""

    key: Any
    line: int
    value: Any
    node: yaml.Node


def _root_node(doc: YamlDocument, name: str) -> yaml.MappingNode:
    root = doc.root
    if root is None:
        raise ConfigError(f"{name}: the recipe is empty; expected keys such as 'endpoint: URL'")
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(
            f"{name}:{root.start_mark.line + 1}: expected a mapping of keys (e.g. 'endpoint: URL')"
        )
    return root


def _items(ctx: _Context, node: yaml.MappingNode) -> dict[Any, _Item]:
    """The keys of a mapping node in order, with ``<<: *anchor`` merges applied."""
    ctx.doc.flatten(node)  # resolves '<<: *anchor' merges, later keys winning
    out: dict[Any, _Item] = {}
    for key_node, value_node in node.value:
        key = ctx.doc.construct(key_node)
        value = ctx.doc.construct(value_node)
        out.pop(key, None)
        out[key] = _Item(key, key_node.start_mark.line + 1, value, value_node)
    return out


def _check_keys(
    ctx: _Context,
    items: dict[Any, _Item],
    known: tuple[str, ...],
    prefix: str,
    *,
    allow_extensions: bool = False,
) -> None:
    for key, item in items.items():
        if isinstance(key, str) and (key in known or (allow_extensions and key.startswith("x-"))):
            continue
        near = difflib.get_close_matches(str(key).replace("-", "_"), known, n=1, cutoff=0.6)
        hint = f"did you mean {near[0]!r}?" if near else "see docs/RECIPE_GUIDE.md for the keys"
        raise ConfigError(f"{ctx.name}:{item.line}: {prefix}{show_key(key)}: unknown key; {hint}")


def _runs(ctx: _Context, item: _Item, defaults: dict[str, Any]) -> tuple[RecipeRun, ...]:
    if not isinstance(item.node, yaml.SequenceNode) or not item.node.value:
        raise ConfigError(
            f"{ctx.name}:{item.line}: runs: expected a non-empty list of runs, "
            "each a mapping with a 'name' (or remove 'runs:' for a single run)"
        )
    runs: list[RecipeRun] = []
    seen: dict[str, int] = {}
    for index, node in enumerate(item.node.value):
        line = node.start_mark.line + 1
        if not isinstance(node, yaml.MappingNode):
            raise ConfigError(f"{ctx.name}:{line}: runs[{index}]: expected a mapping with 'name'")
        entry = _items(ctx, node)
        _check_keys(ctx, entry, _RUN_KEYS, f"runs[{index}].")
        name = _run_name(ctx, entry, index, line)
        if name.lower() in seen:
            raise ConfigError(
                f"{ctx.name}:{line}: runs[{index}].name: {name!r} is already the name of the run "
                f"on line {seen[name.lower()]}; each run needs its own name (its output directory)"
            )
        seen[name.lower()] = line
        values = {**defaults, **_section(ctx, entry)}
        runs.append(RecipeRun(name, values, _text(ctx, entry.get("description"))))
    return tuple(runs)


def _run_name(ctx: _Context, entry: dict[Any, _Item], index: int, line: int) -> str:
    item = entry.get("name")
    if item is None:
        raise ConfigError(f"{ctx.name}:{line}: runs[{index}]: missing 'name' (its subdirectory)")
    where = f"{ctx.name}:{item.line}: runs[{index}].name"
    raw = item.value
    name = expand(raw, ctx.environ, where, []) if isinstance(raw, str) else raw
    if (
        isinstance(name, bool)
        or not isinstance(name, (str, int))
        or not _RUN_NAME.fullmatch(str(name))
    ):
        raise ConfigError(
            f"{where}: {name!r} cannot name a directory; use up to 64 letters, digits, "
            "'.', '_' and '-', starting with a letter or digit"
        )
    return str(name)


def _text(ctx: _Context, item: _Item | None) -> str:
    if item is None or item.value is None:
        return ""
    if not isinstance(item.value, str):
        raise ConfigError(f"{ctx.name}:{item.line}: {item.key}: expected text")
    return item.value


# --- values --------------------------------------------------------------------------------


def _section(ctx: _Context, items: dict[Any, _Item]) -> dict[str, Any]:
    """Option values of one mapping (top level or one run); unset and empty values are left out."""
    values: dict[str, Any] = {}
    for key, item in items.items():
        if key not in _OPTION:
            continue
        if key == "slo":
            value = _slo_value(ctx, item)
        else:
            value = _option_value(ctx, _OPTION[key], item)
        if value is not None:
            values[key] = value
    return values


def _option_value(ctx: _Context, option: Option, item: _Item) -> Any:
    """The expanded, converted value of one key; ``None`` when it is null or expands to ""."""
    loc = f"{ctx.name}:{item.line}"
    used: list[str] = []
    value = expand_tree(item.value, ctx.environ, f"{loc}: {option.name}", used)
    if option.secret and not used and item.value not in (None, ""):
        ctx.warnings.append(
            f"{loc}: {option.name} is written literally in the recipe; write "
            f"'{option.name}: ${{OPENAI_API_KEY}}' (or another variable) to keep the key out of it"
        )
    if value is None or value == "":
        return None
    shape = _shape_problem(option, value)
    if shape:
        raise ConfigError(f"{loc}: {option.name}: {shape}")
    try:
        return coerce(option, value, where=loc)
    except ConfigError as exc:
        if not used:
            raise
        raise ConfigError(_conversion_error(loc, option, item.value, value, used, exc)) from None


def _shape_problem(option: Option, value: Any) -> str | None:
    if option.kind == "json":  # a mapping, or JSON text / @FILE
        return "expected a mapping or JSON text, got a list" if isinstance(value, list) else None
    if isinstance(value, dict):
        return "expected a single value or a list, got a mapping"
    if isinstance(value, list) and not option.kind.endswith("_list"):
        return "expected a single value, got a list"
    return None


def _conversion_error(
    loc: str, option: Option, raw: Any, value: Any, used: list[str], exc: ConfigError
) -> str:
    """``recipe.yaml:7: concurrency: ${LEVELS} gave 'five'; expected an integer``."""
    detail = str(exc).removeprefix(f"{loc}: ").removeprefix(f"{option.name}: ")
    secret = option.secret or any(_SECRET_VAR.search(n) for n in used)
    if secret:
        shown, detail = "a value (hidden: it may be a secret)", detail.split(", got ")[0]
    else:
        shown = repr(value)
        detail = detail.removesuffix(f", got {value!r}")
    origin = raw if isinstance(raw, str) else ", ".join(f"${{{n}}}" for n in dict.fromkeys(used))
    return f"{loc}: {option.name}: {origin} gave {shown}; {detail}"


def _slo_value(ctx: _Context, item: _Item) -> tuple[str, ...] | None:
    """The ``slo`` key: a mapping like an SLO file's (lines per bound) or the --slo list form."""
    if isinstance(item.node, yaml.MappingNode):
        return _slo_mapping(ctx, item, item.node)
    value = _option_value(ctx, _OPTION["slo"], item)
    if value is None:
        return None
    try:
        parse_slo_flags(list(value))
    except ConfigError as exc:
        raise ConfigError(f"{ctx.name}:{item.line}: slo{str(exc).removeprefix('--slo')}") from None
    return value


def _slo_mapping(ctx: _Context, item: _Item, node: yaml.MappingNode) -> tuple[str, ...] | None:
    bounds: dict[str, Any] = {}
    for key, sub in _items(ctx, node).items():
        where = f"{ctx.name}:{sub.line}: slo"
        value = expand_tree(sub.value, ctx.environ, f"{where}.{key}", [])
        if isinstance(value, str) and key != "itl_mode":
            value = _number(value)
        slo_from_mapping({key: value}, where=where)  # checks this key with its own line
        bounds[str(key)] = value
    if not bounds:
        return None
    slo = slo_from_mapping(bounds, where=f"{ctx.name}:{item.line}: slo")
    out = [f"{k}={_plain(getattr(slo, k))}" for k in BOUND_KEYS if k in bounds]
    if "itl_mode" in bounds:
        out.append(f"itl_mode={slo.itl_mode}")
    return tuple(out)


# --- small helpers -------------------------------------------------------------------------


def _number(text: str) -> Any:
    """A string that holds a number as that number (an SLO bound from a variable)."""
    try:
        return float(text)
    except ValueError:
        return text


def _plain(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _kind_words(opt: Option) -> str:
    if opt.kind == "choice":
        return "one of " + ", ".join(f"`{c}`" for c in opt.choices)
    return {
        "str": "string",
        "int": "integer",
        "float": "number",
        "bool": "true / false",
        "int_list": "list of integers",
        "float_list": "list of numbers",
        "number_list": "list of numbers",
        "str_list": "list of strings",
        "line_list": "list of strings (one header a line)",
        "int_auto": "integer or `auto`",
        "json": "mapping, JSON text or `@FILE`",
    }[opt.kind]


def _default_words(value: Any) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        return f"`[{', '.join(map(str, value))}]`"
    return f"`{value}`"


def _cell(text: str) -> str:
    """Table-cell text: a ``|`` would end the cell and ``<name>`` would vanish as an HTML tag."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
