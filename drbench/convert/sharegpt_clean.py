"""Clean ShareGPT conversations as the well-known cleaning scripts do (FastChat's clean_sharegpt).

- text: HTML (raw ShareGPT dumps: a value that starts with a block tag) becomes markdown; the "```pythonCopy code" and
  "Copy 12 chars / 3 words" artefacts and the "1 / 1" regenerate counters are removed;
- structure: leading turns that are not the user's are dropped (a leading system turn is kept
  aside); then turns must alternate user/assistant, none may be empty, and there must be an
  answer, else the conversation is dropped with a reason;
- language: a script-based guess (``detect_lang``) for ``--keep-lang`` / ``--skip-lang``.

Pure functions: no I/O, no printing; structural errors a user must fix raise DatasetError.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from drbench.errors import DatasetError

__all__ = [
    "LANGS",
    "Conversation",
    "Turn",
    "clean_conversation",
    "clean_text",
    "detect_lang",
    "html_to_markdown",
    "normalise",
    "parse_conversation",
]

# ShareGPT's speaker names (and the aliases mirrors use) -> chat roles.
_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "assistant": "assistant",
    "system": "system",
}
LANGS = ("en", "zh", "ja", "ko", "ru", "unknown")

# Raw ChatGPT exports hold whole HTML documents; text that merely mentions a tag is left alone.
_HTML = re.compile(r"\s*<(div|p|ol|ul|pre|table|h[1-6])\b[^>]*>", re.I)
_COPY_CODE = re.compile(r"```([\w+#.-]*)[ \t]*Copy code[ \t]*\n?")
_COPY_COUNT = re.compile(r"Copy\d+ chars / \d+ words")
_REGENERATE = re.compile(r"^\d+ / \d+(?![\d ])")
_LIST_MARK = re.compile(r"(?:^|\n)(?:- |\d+\. )$")
_BLANKS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


@dataclass(frozen=True, slots=True)
class Turn:
    role: str  # "user", "assistant", "system", or the unknown speaker name as given
    text: str


@dataclass(frozen=True, slots=True)
class Conversation:
    """A cleaned conversation: turns alternate user/assistant starting with the user."""

    id: str
    turns: tuple[Turn, ...]
    system: str | None = None


def parse_conversation(obj: Any, *, where: str, default_id: str) -> Conversation:
    """The raw turns of one ShareGPT record; a DatasetError names the record and field."""
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    key = "conversations" if "conversations" in obj else "conversation"
    turns = obj.get(key)
    if not isinstance(turns, list):
        got = "missing" if key not in obj else f"{_a(turns)}, not a list"
        raise DatasetError(
            f"{where}: field 'conversations' is {got} "
            "(a ShareGPT record is {id, conversations: [{from, value}, ...]})"
        )
    parsed = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise DatasetError(
                f"{where}: field '{key}[{i}]' is {_a(turn)}, not an object {{from, value}}"
            )
        for name in ("from", "value"):
            if name not in turn:
                raise DatasetError(f"{where}: field '{key}[{i}].{name}' is missing")
            if not isinstance(turn[name], str):
                raise DatasetError(
                    f"{where}: field '{key}[{i}].{name}' is {_a(turn[name])}, not a string"
                )
        speaker: str = turn["from"]  # both checked to be strings just above
        text: str = turn["value"]
        parsed.append(Turn(_ROLES.get(speaker.lower(), speaker), text))
    rid = obj.get("id")
    return Conversation(str(rid) if rid not in (None, "") else default_id, tuple(parsed))


def _a(value: Any) -> str:
    """A JSON value's type as a phrase: ``a number (5)``, ``null``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    names: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
    return names.get(type(value), f"a {type(value).__name__}")


def clean_conversation(conv: Conversation) -> Conversation:
    """The conversation with every turn's text cleaned (``clean_text``), structure untouched."""
    return Conversation(conv.id, tuple(Turn(t.role, clean_text(t.text)) for t in conv.turns))


def normalise(conv: Conversation) -> tuple[Conversation | None, str | None]:
    """The conversation in benchmark shape, or None and the reason it was dropped.

    Expects cleaned text (``clean_conversation``): a turn left empty by cleaning is empty.
    """
    turns = list(conv.turns)
    system = None
    if turns and turns[0].role == "system":
        system, turns = turns[0].text or None, turns[1:]
    while turns and turns[0].role != "user":
        turns = turns[1:]
    if not turns:
        return None, "empty"
    if any(not t.text for t in turns):
        return None, "empty turn"
    expected = ("user", "assistant")
    if any(t.role != expected[i % 2] for i, t in enumerate(turns)):
        return None, "non-alternating"
    if len(turns) < 2:
        return None, "no answer"
    return Conversation(conv.id, tuple(turns), system), None


def clean_text(text: str) -> str:
    """The text with HTML turned into markdown and ChatGPT-export artefacts removed."""
    if _HTML.match(text):
        text = html_to_markdown(text)
    text = _REGENERATE.sub("", text)
    text = _COPY_CODE.sub(lambda m: f"```{m.group(1)}\n", text)
    text = _COPY_COUNT.sub("", text)
    text = "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n"))
    return _BLANKS.sub("\n\n", text).strip()


def html_to_markdown(html: str) -> str:
    """Markdown for the HTML ChatGPT pages hold: paragraphs, lists, code blocks, emphasis."""
    parser = _Markdown()
    parser.feed(html)
    parser.close()
    return "".join(parser.out)


def detect_lang(text: str) -> str:
    """A script-based guess: ko (Hangul), ja (kana), zh (Han), ru (Cyrillic), en (Latin).

    "en" means Latin script: this cannot tell English from French.  No letters: "unknown".
    """
    counts = {
        "ko": _count(r"[\uac00-\ud7af\u1100-\u11ff]", text),
        "ja": _count(r"[\u3040-\u30ff]", text),
        "zh": _count(r"[\u4e00-\u9fff\u3400-\u4dbf]", text),
        "ru": _count(r"[\u0400-\u04ff]", text),
        "en": _count(r"[A-Za-z\u00c0-\u024f]", text),
    }
    if counts["ja"] and counts["ja"] >= 0.05 * (counts["ja"] + counts["zh"]):
        counts["ja"] += counts.pop("zh")
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] else "unknown"


def _count(pattern: str, text: str) -> int:
    return len(re.findall(pattern, text))


class _Markdown(HTMLParser):
    """A small HTML -> markdown converter; state lives on the instance, one per document."""

    _SKIP = frozenset({"button", "svg", "script", "style", "path"})
    _EMPHASIS = {"strong": "**", "b": "**", "em": "*", "i": "*"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.pre = False
        self.code = False
        self.lists: list[list[int]] = []  # a counter per open <ol>, [] per <ul>

    def handle_starttag(self, tag: str, attrs: Sequence[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skip += 1
        elif tag == "pre":
            self.pre = True
        elif tag == "code":
            self._open_code(dict(attrs).get("class") or "")
        elif tag == "br":
            self.out.append("\n")
        elif tag in ("p", "div", "table", "tr"):
            self._block()
        elif tag in ("ol", "ul"):
            self.lists.append([0] if tag == "ol" else [])
            self._block()
        elif tag == "li":
            self._item()
        elif tag in self._EMPHASIS:
            self.out.append(self._EMPHASIS[tag])
        elif re.fullmatch(r"h[1-6]", tag):
            self._block()
            self.out.append("#" * int(tag[1]) + " ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag == "pre":
            self.pre = False
        elif tag == "code":
            if not self.pre:
                self.out.append("`")
            else:
                self.out.append("```\n\n" if "".join(self.out[-1:]).endswith("\n") else "\n```\n\n")
            self.code = False
        elif tag in ("ol", "ul"):
            if self.lists:
                self.lists.pop()
            self._block()
        elif tag in ("p", "div", "table", "tr") or re.fullmatch(r"h[1-6]", tag):
            self._block()
        elif tag in self._EMPHASIS:
            self.out.append(self._EMPHASIS[tag])
        elif tag == "td":
            self.out.append(" | ")

    def handle_data(self, data: str) -> None:
        if self.skip or (self.pre and not self.code):
            return  # inside <pre>, only the <code> body is text; the rest is the copy bar
        if not self.code and not data.strip():
            return
        self.out.append(data)

    def _open_code(self, css: str) -> None:
        self.code = True
        if self.pre:
            lang = re.search(r"language-([\w+#.-]+)", css)
            self._block()
            self.out.append(f"```{lang.group(1) if lang else ''}\n")
        else:
            self.out.append("`")

    def _block(self) -> None:
        tail = "".join(self.out[-2:])
        if self.out and not tail.endswith("\n\n") and not _LIST_MARK.search(tail):
            self.out.append("\n\n")

    def _item(self) -> None:
        self.out.append("\n")
        if self.lists and self.lists[-1]:
            self.lists[-1][0] += 1
            self.out.append(f"{self.lists[-1][0]}. ")
        else:
            self.out.append("- ")
