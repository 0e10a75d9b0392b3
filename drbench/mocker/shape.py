"""How a streamed answer is cut into chunks when a real server's quirk is switched on.

The default stream (one chunk per token, usage on its own final chunk) takes the pre-encoded
fast path in sink.py. The flags below reproduce what real servers send instead, and this module
decides, as pure functions, which texts are written at which token:

- ``--empty-token-rate`` / ``--empty-first-tokens``: some tokens stream as ``"content": ""``
  (vLLM does this for tokens that do not decode to text yet); their text is held back and comes
  with the next non-empty chunk, so the streamed text still equals the answer.
- ``--tokens-per-chunk N``: one chunk (one write) per N tokens, written when the N-th is produced.
- ``--whole-answer``: the whole text in one chunk at the first token.
- ``--char-chunks``: one chunk per character of each token, written when the token is produced.
- ``--tool-calls``: the same pieces become the ``arguments`` of one function call.

What it does not do: encode JSON (wire.py), write or time anything (sink.py), or decide when a
token is produced (engine.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence, Set
from dataclasses import dataclass

from drbench.mocker.config import MockerConfig, UsageMode
from drbench.mocker.wire import TOOL_NAME, Kind

__all__ = [
    "TOOL_ARGUMENT_KEY",
    "TOOL_NAME",
    "StreamShape",
    "chunk_texts",
    "token_pieces",
    "tool_arguments",
]

TOOL_ARGUMENT_KEY = "answer"  # its arguments are {"answer": "<the answer text>"}


@dataclass(frozen=True, slots=True)
class StreamShape:
    """The stream quirks in force for one endpoint kind."""

    tokens_per_chunk: int = 1
    whole_answer: bool = False
    char_chunks: bool = False
    usage_mode: UsageMode = UsageMode.FINAL
    tool_calls: bool = False
    new_id_per_chunk: bool = False
    empty_tokens: bool = False

    @classmethod
    def from_config(cls, cfg: MockerConfig, kind: Kind) -> StreamShape:
        """The shape of ``kind``'s streams (tool calls exist on the chat endpoint only)."""
        return cls(
            cfg.tokens_per_chunk,
            cfg.whole_answer,
            cfg.char_chunks,
            cfg.usage_mode,
            cfg.tool_calls and kind is Kind.CHAT,
            cfg.new_id_per_chunk,
            cfg.empty_token_rate > 0 or cfg.empty_first_tokens > 0,
        )

    @property
    def plain(self) -> bool:
        """True when the pre-encoded one-chunk-per-token fast path can serve the stream
        (``--usage-mode none`` is that path with include_usage turned off)."""
        return (
            self.tokens_per_chunk == 1
            and not (self.whole_answer or self.char_chunks or self.tool_calls)
            and not (self.new_id_per_chunk or self.empty_tokens)
            and self.usage_mode is not UsageMode.LAST_TOKEN
        )


def token_pieces(tokens: Sequence[str], empty: Set[int]) -> list[str]:
    """Each token's streamed text: ``""`` for an empty token, whose text is held back and
    prepended to the next non-empty one's (whatever is still held at the end goes last)."""
    out: list[str] = []
    held = ""
    for i, tok in enumerate(tokens):
        if i in empty:
            held += tok
            out.append("")
        else:
            out.append(held + tok)
            held = ""
    if held and out:
        out[-1] += held
    return out


def tool_arguments(pieces: Sequence[str]) -> list[str]:
    """The pieces as slices of a JSON arguments string ``{"answer": "..."}``: each piece is
    JSON-escaped, the first opens the object and the last closes it, so the concatenation
    of all pieces parses."""
    out = [json.dumps(p, ensure_ascii=False)[1:-1] for p in pieces]
    if out:
        out[0] = '{"' + TOOL_ARGUMENT_KEY + '": "' + out[0]
        out[-1] += '"}'
    return out


def chunk_texts(pieces: Sequence[str], shape: StreamShape) -> list[tuple[str, ...]]:
    """For each token index, the texts of the content chunks written when it is produced
    (an empty tuple: nothing is written at that token)."""
    n = len(pieces)
    if shape.whole_answer:
        return [("".join(pieces),) if i == 0 else () for i in range(n)]
    if shape.char_chunks:
        return [tuple(p) if p else ("",) for p in pieces]
    size = shape.tokens_per_chunk
    out: list[tuple[str, ...]] = []
    for i in range(n):
        if (i + 1) % size == 0 or i == n - 1:
            out.append(("".join(pieces[i - i % size : i + 1]),))
        else:
            out.append(())
    return out
