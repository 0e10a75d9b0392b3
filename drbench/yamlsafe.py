"""Read a small YAML document (a recipe, an SLO file) safely: one loader, one set of refusals.

``compose_document`` parses with ``yaml.SafeLoader`` rules and checks the node tree before
anything is constructed, so that every problem is one ``ConfigError`` naming ``file:line``:

- a YAML syntax error, or nesting too deep for the parser (``RecursionError``);
- a document larger than ``MAX_NODES`` nodes *once aliases are expanded*: a "billion laughs"
  document (``&a [*b, *b, ...]`` nested) is tiny as text but astronomically large as values,
  and anything that walks its values would hang; the size is computed on the shared node graph
  in linear time, and an alias that contains itself is refused too;
- a mapping key that is not a plain string (``? [a, b]``, ``1:``, ``null:``);
- a key given twice in one mapping (YAML would silently keep the last).

``YamlDocument.construct`` turns a node into Python values and turns construction failures
(e.g. ``2024-02-30`` read as a date) into the same one-line form.  No I/O: callers read the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from drbench.errors import ConfigError

__all__ = [
    "MAX_FLOW_DEPTH",
    "MAX_NODES",
    "YamlDocument",
    "compose_document",
    "show_key",
    "yaml_error",
]

MAX_NODES = 10_000
MAX_FLOW_DEPTH = 100
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


@dataclass
class YamlDocument:
    """A composed, checked document: its root node (None when empty) and the loader behind it."""

    name: str
    root: yaml.Node | None
    loader: yaml.SafeLoader

    def construct(self, node: yaml.Node) -> Any:
        """The Python value of ``node``; a value YAML cannot build is a ConfigError at its line."""
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise ConfigError(yaml_error(self.name, exc)) from None
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            line = node.start_mark.line + 1
            raise ConfigError(f"{self.name}:{line}: cannot read this value ({exc})") from None

    def flatten(self, node: yaml.MappingNode) -> None:
        """Apply ``<<: *anchor`` merges to a mapping node in place (later keys win)."""
        try:
            self.loader.flatten_mapping(node)
        except yaml.YAMLError as exc:
            raise ConfigError(yaml_error(self.name, exc)) from None

    def close(self) -> None:
        self.loader.dispose()


def compose_document(text: str, name: str) -> YamlDocument:
    """Parse ``text`` into a checked node tree (see the module docstring for the checks)."""
    _check_flow_depth(name, text)
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        loader.dispose()
        raise ConfigError(yaml_error(name, exc)) from None
    except RecursionError:
        loader.dispose()
        raise ConfigError(
            f"{name}: nested too deeply to read; is this a recipe/SLO file?"
        ) from None
    doc = YamlDocument(name, root, loader)
    if root is not None:
        try:
            _check_size(name, root)
            _check_keys(name, root)
        except ConfigError:
            doc.close()
            raise
    return doc


def _check_flow_depth(name: str, text: str) -> None:
    """Refuse ``[``/``{`` nested past MAX_FLOW_DEPTH before PyYAML sees them: its scanner is
    quadratic in flow depth (2,000 levels took 1.6 s, 100,000 would take hours).

    A linear scan that skips quoted text and comments; it may count a bracket PyYAML would
    read as text (inside a plain scalar), which only matters past a depth no recipe reaches.
    """
    depth, quote = 0, ""
    line = 1
    comment = False
    prev = "\n"
    for ch in text:
        if ch == "\n":
            line, comment = line + 1, False
        elif comment:
            pass
        elif quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and prev in " \t\n":
            comment = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_FLOW_DEPTH:
                raise ConfigError(
                    f"{name}:{line}: [ and {{ nested more than {MAX_FLOW_DEPTH} levels deep; "
                    "not a recipe/SLO file"
                )
        elif ch in "]}":
            depth = max(depth - 1, 0)
        prev = ch


def yaml_error(name: str, exc: Exception) -> str:
    """One line for a PyYAML error: ``file:line: not valid YAML (problem, column N)``."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or "syntax error"
    problem = " ".join(str(problem).split())
    if mark is None:
        return f"{name}: not valid YAML ({problem})"
    return f"{name}:{mark.line + 1}: not valid YAML ({problem}, column {mark.column + 1})"


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_size(name: str, root: yaml.Node) -> None:
    """Refuse a document whose values, aliases expanded, would exceed MAX_NODES nodes.

    Post-order over the node graph with one size per node: each node is sized once however
    many aliases point at it, so the check itself is linear in the text.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # nodes on the current path: meeting one again is a loop
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            if sizes[key] > MAX_NODES:
                raise ConfigError(
                    f"{name}:{node.start_mark.line + 1}: too large once its aliases (*name) are "
                    f"expanded (over {MAX_NODES} values); write the values out instead"
                )
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise ConfigError(
                f"{name}:{node.start_mark.line + 1}: an alias refers to the collection that "
                "contains it; a recipe value cannot contain itself"
            )
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)


def _check_keys(name: str, root: yaml.Node) -> None:
    """Every mapping key a plain string given once (merge keys ``<<`` aside).

    Runs on the node tree before anything is constructed, because constructing a mapping
    flattens its ``<<: *anchor`` merges into it in place.
    """
    stack, visited = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in visited:  # an alias repeats a node
            continue
        visited.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                stack.append(value_node)
                line = key_node.start_mark.line + 1
                if key_node.tag == _MERGE_TAG:
                    continue
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR_TAG:
                    raise ConfigError(
                        f"{name}:{line}: a key must be a plain string (a name such as "
                        f"'endpoint'), not {_kind(key_node)}"
                    )
                if key_node.value in seen:
                    key = key_node.value
                    shown = key if key.isprintable() and key.strip() == key else repr(key)
                    raise ConfigError(
                        f"{name}:{line}: {shown}: given twice (first on line "
                        f"{seen[key_node.value]}); give each key once"
                    )
                seen[key_node.value] = line


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    tag = str(node.tag).rsplit(":", 1)[-1]
    return f"{node.value!r} (read as {tag}; quote it to make it a string)"


def show_key(key: object) -> str:
    """A mapping key as an error line can show it: as written when it is plain printable text,
    else quoted (a key of newlines or spaces must not break the one line)."""
    if isinstance(key, str) and key and key.isprintable() and key.strip() == key:
        return key
    return repr(key)
