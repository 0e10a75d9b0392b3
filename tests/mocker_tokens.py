"""The bundled mocker's tokenization as a cache-oracle ``Tokenization``, for tests only.

The mocker's cache hashes its toy tokenizer's token strings (drbench/mocker/tokenizer.py): a chat
request is ``--chat-template-header`` then its ChatML rendering, a completions prompt its text;
once answered it holds the prompt's tokens then the answer's.  Handing this to the oracle
(``RunPlan.tokenization``, via ``Benchmark.tokenization``) makes its units exactly the mocker's,
so the expected hit rate can be checked against the measured one to the token.  Production code
never imports the mocker for this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drbench.mocker.tokenizer import render_chat, tokenize
from drbench.reuse import TokenUnits, UnitKind, Units

__all__ = ["MockerTokenization"]


@dataclass(frozen=True, slots=True)
class MockerTokenization:
    header: str = ""  # the mocker's --chat-template-header

    @property
    def unit(self) -> UnitKind:
        return "tokens"

    def prompt(self, payload: Mapping[str, Any]) -> Units:
        messages = payload.get("messages")
        if messages is not None:
            return TokenUnits(tokenize(self.header) + tokenize(render_chat(messages)))
        return TokenUnits(tokenize(str(payload.get("prompt") or "")))

    def held(self, payload: Mapping[str, Any], prompt: Units, answer: str) -> Units:
        assert isinstance(prompt, TokenUnits)
        return TokenUnits([*prompt.ids, *tokenize(answer)])
