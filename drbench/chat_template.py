"""The served model's chat template, read from the ``--tokenizer`` folder, so the cache oracle
counts the tokens a template adds around each message (role headers, separators, the
generation prompt) and cuts blocks where the server does.

The template is ``tokenizer_config.json``'s ``chat_template`` (a string, or a list of named
templates: ``default`` is taken) or a ``chat_template.jinja`` file beside it.  It is rendered
with transformers' ``apply_chat_template`` when transformers is installed, else with jinja2 in a
sandbox set up as transformers sets it (``trim_blocks``, ``lstrip_blocks``, ``raise_exception``,
``tojson``), else not at all (``load_chat_template`` says so and the oracle keeps its simple
template).  No network: only the local folder is read.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from drbench.errors import UsageError

__all__ = ["ChatTemplate", "TemplateEngine", "load_chat_template", "template_source"]

TemplateEngine = Literal["transformers", "jinja2"]


@dataclass(frozen=True)
class ChatTemplate:
    """A chat template ready to render a request's messages (with the generation prompt)."""

    engine: TemplateEngine
    render_messages: Callable[[Sequence[Mapping[str, Any]]], str]

    def render(self, messages: Sequence[Mapping[str, Any]]) -> str:
        """The prompt text the server builds from ``messages`` (generation prompt included)."""
        return self.render_messages(messages)


def template_source(path: str) -> tuple[Path, str, dict[str, Any]] | None:
    """(the file it came from, the template text, the tokenizer config) for a ``--tokenizer``
    path, or None when its folder has no chat template."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    config_file = folder / "tokenizer_config.json"
    config: dict[str, Any] = {}
    if config_file.is_file():
        try:
            loaded = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(f"--tokenizer {path}: cannot read {config_file}: {exc}") from None
        config = loaded if isinstance(loaded, dict) else {}
    jinja_file = folder / "chat_template.jinja"
    if jinja_file.is_file():
        return jinja_file, jinja_file.read_text(encoding="utf-8"), config
    source = config.get("chat_template")
    if isinstance(source, list):  # [{"name": "default", "template": ...}, ...]
        named = {t.get("name"): t.get("template") for t in source if isinstance(t, dict)}
        source = named.get("default")
    if isinstance(source, str) and source:
        return config_file, source, config
    return None


def load_chat_template(path: str) -> ChatTemplate | None:
    """The folder's chat template, checked by rendering one message; None without one (or
    with neither transformers nor jinja2 installed: the oracle then keeps its approximation).

    A template that cannot be compiled or rendered is one ``UsageError`` line.
    """
    found = template_source(path)
    if found is None:
        return None
    where, source, config = found
    template = _with_transformers(path) or _with_jinja2(path, where, source, config)
    if template is None:
        return None
    try:
        template.render([{"role": "user", "content": "hello"}])
    except Exception as exc:  # a template raises whatever it likes; the user gets one line
        raise UsageError(f"--tokenizer {path}: its chat template ({where}) fails: {exc}") from None
    return template


def _with_transformers(path: str) -> ChatTemplate | None:
    transformers = _optional("transformers")
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    if transformers is None:
        return None
    try:
        tok = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception:  # noqa: BLE001 - a folder transformers cannot load: jinja2 renders it
        return None

    def render(messages: Sequence[Mapping[str, Any]]) -> str:
        text = tok.apply_chat_template(
            [dict(m) for m in messages], tokenize=False, add_generation_prompt=True
        )
        return str(text)

    return ChatTemplate("transformers", render)


def _with_jinja2(
    path: str, where: Path, source: str, config: Mapping[str, Any]
) -> ChatTemplate | None:
    sandbox = _optional("jinja2.sandbox")
    if sandbox is None:
        return None
    env = sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    env.filters["tojson"] = lambda x, indent=None, **_: json.dumps(
        x, ensure_ascii=False, indent=indent
    )
    env.globals["raise_exception"] = raise_exception
    try:
        compiled = env.from_string(source)
    except Exception as exc:  # jinja2's TemplateSyntaxError and friends
        raise UsageError(f"--tokenizer {path}: its chat template ({where}) fails: {exc}") from None
    specials = {k: _token(config.get(k)) for k in ("bos_token", "eos_token", "pad_token")}

    def render(messages: Sequence[Mapping[str, Any]]) -> str:
        return str(
            compiled.render(
                messages=[dict(m) for m in messages], add_generation_prompt=True, **specials
            )
        )

    return ChatTemplate("jinja2", render)


def _token(value: Any) -> str:
    """A special token of tokenizer_config.json: a string or ``{"content": ...}``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else ""


def _optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None
