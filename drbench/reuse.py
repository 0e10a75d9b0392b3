"""The prefix share a round offers: what an unlimited prefix cache could reuse of its prompts.

A measured cached share or hit rate means little without the reuse the traffic made possible:
60% is excellent for a workload whose prompts share 60% and poor for one that repeats itself.
This module simulates prefix caching the way vLLM does it, on the texts the client is about to
send: a prompt is cut into blocks of ``block_size`` units, each block is named by a hash chained
over the blocks before it (``hash((parent, block))``, so equal hashes mean equal prefixes, and an
equal block at another position does not match), a prompt's reusable units are its leading full
blocks already in the cache (at most ``(units - 1) // block_size`` of them: the last unit is
always computed, as in vLLM and SGLang), and once it is sent its full blocks enter the cache.

Units: with ``--tokenizer`` the token ids of the request's text; without, "estimated tokens",
the estimate of tokens.py cut into pieces: one unit per CJK/kana/Hangul character, and one per 4
consecutive other characters (a run of them is cut from its start; its last piece may be
shorter, and the text's last piece, if short, fills no block: the next turn may extend it).  A
chat request's text is its messages in a simple prefix-stable template (``render_chat``), not
the server's chat template, which adds some tokens per message: the real block boundaries are
shifted by them, so the figure can be off by about a block per prompt, never more.

The cache is a ``BlockCache`` (``UnlimitedCache`` here); an LRU of the server's capacity
(issue 13) is another class of the same Protocol.  What it does not do: model requests that
run together (a shared prefix is cached only once its first request has computed it, so a
burst of requests sharing it can reuse less than offered), or the server's own tokenizer when
``--tokenizer`` is not given.  Pure apart from the cache object it is handed; no I/O.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Container, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import accumulate, pairwise
from typing import TYPE_CHECKING, Any, Literal, Protocol

from drbench.tokens import WIDE_CHARS, TokenCounter, TokenizerCounter

if TYPE_CHECKING:
    from drbench.chat_template import ChatTemplate
    from drbench.client import PreparedRequest
    from drbench.records import RequestRecord

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "ESTIMATE_CHARS",
    "BlockCache",
    "BlockSource",
    "EstimateTokenization",
    "LevelReuse",
    "LruCache",
    "Reuse",
    "TextUnits",
    "TokenUnits",
    "Tokenization",
    "TokenizerTokenization",
    "UnitKind",
    "Units",
    "UnlimitedCache",
    "chain_hashes",
    "offered",
    "offered_chains",
    "remember",
    "render_chat",
    "request_text",
    "reusable_blocks",
    "tokenization_for",
    "units_of",
    "with_answer",
]

DEFAULT_BLOCK_SIZE = 16  # vLLM's GPU default, used when the server's metrics do not say
ESTIMATE_CHARS = 4  # characters of an estimated token (tokens.py's estimate)

UnitKind = Literal["tokens", "estimated tokens"]
BlockSource = Literal["server", "flag", "default"]

_WIDE = re.compile(WIDE_CHARS)
_WIDE_RUNS = re.compile(f"({WIDE_CHARS}+)")  # split: other, CJK, other, ... (kept by the group)


class Units(Protocol):
    """A prompt as the simulated cache sees it: a count of units, cut into full blocks."""

    @property
    def count(self) -> int: ...

    def blocks(self, block_size: int) -> Iterable[Hashable]:
        """The content of each full block, in order (the hashing is ``chain_hashes``')."""
        ...


@dataclass(frozen=True, slots=True)
class TokenUnits:
    """Token ids from ``--tokenizer``: a block is a tuple of ``block_size`` ids (any hashable
    tokens do: the tests hand it the bundled mocker's token strings)."""

    ids: Sequence[Hashable]

    @property
    def count(self) -> int:
        return len(self.ids)

    def blocks(self, block_size: int) -> list[Hashable]:
        ids = self.ids
        return [
            tuple(ids[i : i + block_size]) for i in range(0, len(ids) - block_size + 1, block_size)
        ]


@dataclass(frozen=True, slots=True)
class TextUnits:
    """Estimated tokens of a text: a block is the slice of text its units cover.

    ``runs`` are the lengths of the text's runs, alternately of other characters (even
    positions, 4 a unit; possibly empty) and of CJK (odd positions, 1 a unit), as ``re.split``
    cuts them at C speed: text without CJK is one run, and its blocks are simply
    ``4 * block_size`` characters.  Blocks are found by bisection per block, never per unit
    or per run in Python, so a 100k-unit prompt costs milliseconds.
    """

    text: str
    runs: tuple[int, ...]

    @classmethod
    def of(cls, text: str) -> TextUnits:
        if text.isascii() or _WIDE.search(text) is None:
            return cls(text, (len(text),))
        return cls(text, tuple(map(len, _WIDE_RUNS.split(text))))

    @property
    def count(self) -> int:
        return sum(self._units())

    def blocks(self, block_size: int) -> list[Hashable]:
        text = self.text
        if len(self.runs) == 1:  # no CJK: every unit is 4 characters
            size = block_size * ESTIMATE_CHARS
            return [text[i : i + size] for i in range(0, len(text) - size + 1, size)]
        ends = self._block_ends(block_size)
        return [text[begin:end] for begin, end in pairwise([0, *ends])]

    def _units(self) -> list[int]:
        """Units per run: a run of other characters is cut into 4-character pieces."""
        units = list(self.runs)
        units[0::2] = [-(-n // ESTIMATE_CHARS) for n in units[0::2]]
        return units

    def _block_ends(self, block_size: int) -> list[int]:
        """Where each full block ends in the text; a short last piece completes no block."""
        units = self._units()
        done = list(accumulate(units))  # units up to the end of each run
        before = [0, *done]  # units before each run
        chars = [0, *accumulate(self.runs)]  # where each run starts
        width = [ESTIMATE_CHARS, 1] * (len(units) // 2) + [ESTIMATE_CHARS]
        complete = done[-1] - (self.runs[-1] % ESTIMATE_CHARS != 0)  # the last run: not CJK
        return [
            min(chars[i] + (target - before[i]) * width[i], chars[i + 1])
            for target in range(block_size, complete + 1, block_size)
            for i in (bisect_left(done, target),)  # the run holding the block's last unit
        ]


class BlockCache(Protocol):
    """A prefix cache of chained block hashes (an LRU of a capacity is another implementation)."""

    def lookup(self, hashes: Sequence[int]) -> int:
        """How many leading blocks of the chain are cached (an LRU would touch them)."""
        ...

    def insert(self, hashes: Sequence[int]) -> None:
        """The blocks of a prompt that was sent (or of an answer the server computed)."""
        ...


@dataclass(slots=True)
class UnlimitedCache:
    """Keeps every block it is given: the reuse the traffic itself makes possible."""

    blocks: set[int] = field(default_factory=set)

    def lookup(self, hashes: Sequence[int]) -> int:
        return _leading(self.blocks, hashes)

    def insert(self, hashes: Sequence[int]) -> None:
        self.blocks.update(hashes)


def _leading(held: Container[int], hashes: Sequence[int]) -> int:
    """How many leading hashes of the chain ``held`` contains (a chain is cut at its first miss)."""
    hit = 0
    for h in hashes:
        if h not in held:
            break
        hit += 1
    return hit


def reusable_blocks(units: int, block_size: int) -> int:
    """How many leading blocks of an N-unit prompt can be cache hits: floor((N - 1) / B), as
    vLLM and SGLang always compute the last prompt token (the mocker's cache uses it too)."""
    return max(units - 1, 0) // block_size


@dataclass(slots=True)
class LruCache:
    """A prefix cache of ``capacity_blocks`` blocks that evicts the least recently used first.

    As vLLM's free-block queue and the bundled mocker (drbench/mocker/cache.py) order it: the
    blocks a request touches are moved to the recent end tail first, so within one request's
    chain the tail is evicted before the head, and a chain's head outlives its tail.  A lookup
    touches the blocks it found; an insert touches (or adds) every block of the chain, then
    evicts from the old end down to the capacity.  A capacity of 0 holds nothing.
    """

    capacity_blocks: int
    blocks: OrderedDict[int, None] = field(default_factory=OrderedDict)
    evicted: int = 0

    def lookup(self, hashes: Sequence[int]) -> int:
        hit = _leading(self.blocks, hashes)
        self._touch(hashes[:hit])
        return hit

    def insert(self, hashes: Sequence[int]) -> None:
        if self.capacity_blocks <= 0:
            return
        self._touch(hashes)
        blocks = self.blocks
        over = len(blocks) - self.capacity_blocks
        for _ in range(over):
            blocks.popitem(last=False)
        self.evicted += max(over, 0)

    def _touch(self, hashes: Sequence[int]) -> None:
        blocks = self.blocks
        move = blocks.move_to_end
        for h in reversed(hashes):  # tail first: the head ends the most recently used
            if h in blocks:
                move(h)
            else:
                blocks[h] = None


@dataclass(frozen=True, slots=True)
class Reuse:
    """Units an ideal cache could have served over the units sent, and how they were counted."""

    reused: int
    total: int
    block_size: int = DEFAULT_BLOCK_SIZE
    unit: UnitKind = "estimated tokens"
    block_source: BlockSource = "default"

    @property
    def share(self) -> float | None:
        """reused / total; None for a round that sent no prompt unit."""
        return self.reused / self.total if self.total else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reused_units": self.reused,
            "total_units": self.total,
            "unit": self.unit,
            "block_size": self.block_size,
            "block_size_source": self.block_source,
        }


class Tokenization(Protocol):
    """How the oracle turns a request into the units the server caches."""

    @property
    def unit(self) -> UnitKind: ...

    def prompt(self, payload: Mapping[str, Any]) -> Units:
        """The prompt as the server tokenizes it (as far as the client can tell)."""
        ...

    def held(self, payload: Mapping[str, Any], prompt: Units, answer: str) -> Units:
        """What the server caches once it has answered: the prompt, then the answer."""
        ...


@dataclass(frozen=True, slots=True)
class EstimateTokenization:
    """No tokenizer: estimated tokens of the text, chat rendered by ``render_chat``."""

    @property
    def unit(self) -> UnitKind:
        return "estimated tokens"

    def prompt(self, payload: Mapping[str, Any]) -> Units:
        return TextUnits.of(request_text(payload))

    def held(self, payload: Mapping[str, Any], prompt: Units, answer: str) -> Units:
        return TextUnits.of(request_text(with_answer(payload, answer)))


@dataclass(frozen=True, slots=True)
class TokenizerTokenization:
    """``--tokenizer`` ids; a chat request rendered by the folder's chat template when it has
    one (the server's own tokens around each message), else by ``render_chat``.

    Once answered, the server holds the prompt's ids then the answer's: with a template (or a
    completions prompt) that is the prompt's ids followed by the answer encoded alone; without
    one, the conversation with the answer as an assistant turn, rendered as the next turn will
    be.  A template that raises on some messages renders them with ``render_chat`` instead.
    """

    counter: TokenizerCounter
    template: ChatTemplate | None = None

    @property
    def unit(self) -> UnitKind:
        return "tokens"

    def prompt(self, payload: Mapping[str, Any]) -> Units:
        return TokenUnits(self.counter.encode(self._text(payload)))

    def held(self, payload: Mapping[str, Any], prompt: Units, answer: str) -> Units:
        if isinstance(prompt, TokenUnits) and (
            self.template is not None or "messages" not in payload
        ):
            return TokenUnits([*prompt.ids, *self.counter.encode(answer)])
        return TokenUnits(self.counter.encode(request_text(with_answer(payload, answer))))

    def _text(self, payload: Mapping[str, Any]) -> str:
        messages = payload.get("messages")
        if self.template is not None and messages is not None:
            try:
                return self.template.render(messages)
            except Exception:  # noqa: BLE001 - e.g. raise_exception("roles must alternate")
                return render_chat(messages)
        return request_text(payload)


def tokenization_for(
    counter: TokenCounter | None, template: ChatTemplate | None = None
) -> Tokenization:
    """The oracle's units: the tokenizer's ids (with its chat template) or the estimate."""
    if isinstance(counter, TokenizerCounter):
        return TokenizerTokenization(counter, template)
    return EstimateTokenization()


def chain_hashes(blocks: Iterable[Hashable]) -> list[int]:
    """Each block's hash, chained over the blocks before it: ``hash((parent, block))``."""
    out, parent = [], 0
    for block in blocks:
        parent = hash((parent, block))
        out.append(parent)
    return out


def offered(sequences: Iterable[Units], cache: BlockCache, block_size: int) -> Reuse:
    """Send the sequences in order through ``cache``: the units their cached prefixes cover.

    Each sequence is looked up before its own blocks enter the cache, so a prompt never reuses
    itself; at most ``(count - 1) // block_size`` blocks are reusable (the last unit is always
    computed).
    """
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")
    chains = ((seq.count, chain_hashes(seq.blocks(block_size))) for seq in sequences)
    return offered_chains(chains, cache, block_size)


def offered_chains(
    chains: Iterable[tuple[int, Sequence[int]]], cache: BlockCache, block_size: int
) -> Reuse:
    """``offered`` on sequences already hashed: (units, chained block hashes) each."""
    reused = total = 0
    for count, hashes in chains:
        reused += cache.lookup(hashes[: reusable_blocks(count, block_size)]) * block_size
        total += count
        cache.insert(hashes)
    return Reuse(reused, total, block_size)


def remember(sequences: Iterable[Units], cache: BlockCache, block_size: int) -> None:
    """Put the sequences' full blocks in the cache without counting them (answers, in continue
    mode: the server computed them, so the next turn finds them)."""
    for seq in sequences:
        cache.insert(chain_hashes(seq.blocks(block_size)))


def render_chat(messages: Iterable[Mapping[str, Any]]) -> str:
    """Messages as one text, ``{role}\\n{content}\\n\\n`` each: a conversation that appends turns
    renders to a text that starts with the earlier one's.  A server's real chat template adds
    tokens around each message (and a generation prompt), which shifts block boundaries by a
    few tokens per message; the share moves by at most about a block per prompt."""
    return "".join(f"{m.get('role') or 'user'}\n{_content(m.get('content'))}\n\n" for m in messages)


def request_text(payload: Mapping[str, Any]) -> str:
    """The text of a request body: the completions prompt, or the chat messages rendered."""
    messages = payload.get("messages")
    if messages is not None:
        return render_chat(messages)
    prompt = payload.get("prompt")
    return prompt if isinstance(prompt, str) else ""


def with_answer(payload: Mapping[str, Any], answer: str) -> dict[str, Any]:
    """The request extended by its answer: what the server holds once it has generated it."""
    out = dict(payload)
    if "messages" in out:
        out["messages"] = [*out["messages"], {"role": "assistant", "content": answer}]
    else:
        out["prompt"] = f"{out.get('prompt') or ''}{answer}"
    return out


def units_of(text: str, counter: TokenCounter | None) -> Units:
    """Token ids with a real tokenizer, estimated tokens otherwise."""
    if isinstance(counter, TokenizerCounter):
        return TokenUnits(counter.encode(text))
    return TextUnits.of(text)


@dataclass
class LevelReuse:
    """One level's offered reuse: a cache that starts cold and keeps what each round sent.

    Levels have cold-start nonces of their own and round 1 starts cold, so the runner makes
    one per level; warm-up requests are never shown to it.  ``tokenization`` says how a
    request becomes units (``tokenization_for(counter)`` when not given).
    """

    block_size: int
    block_source: BlockSource
    counter: TokenCounter | None = None
    cache: BlockCache = field(default_factory=UnlimitedCache)
    tokenization: Tokenization | None = None

    @classmethod
    def for_server(
        cls,
        block_size: int | None,
        counter: TokenCounter | None,
        *,
        source: BlockSource = "server",
        tokenization: Tokenization | None = None,
    ) -> LevelReuse:
        """The given block size (the server's metrics', or ``source`` says whence), else
        vLLM's default."""
        if block_size:
            return cls(block_size, source, counter, tokenization=tokenization)
        return cls(DEFAULT_BLOCK_SIZE, "default", counter, tokenization=tokenization)

    @property
    def tokens(self) -> Tokenization:
        return self.tokenization or tokenization_for(self.counter)

    @property
    def unit(self) -> UnitKind:
        return self.tokens.unit

    def round(self, payloads: Iterable[Mapping[str, Any]]) -> Reuse:
        """The offered reuse of a round about to be sent; its prompts then stay cached."""
        tokens = self.tokens
        return self.offer([tokens.prompt(p) for p in payloads])[0]

    def offer(self, units: Sequence[Units]) -> tuple[Reuse, list[list[int]]]:
        """``round`` on prompts already made units; also their chained hashes (the oracle's
        LRU replays them after the round instead of hashing again)."""
        chains = [chain_hashes(u.blocks(self.block_size)) for u in units]
        found = offered_chains(
            zip((u.count for u in units), chains, strict=True), self.cache, self.block_size
        )
        return replace(found, unit=self.unit, block_source=self.block_source), chains

    def remember_chains(self, chains: Iterable[Sequence[int]]) -> None:
        """Blocks the server cached besides the prompts (each answer, hashed by the oracle)."""
        for chain in chains:
            self.cache.insert(chain)

    def answered(
        self, previous: Iterable[PreparedRequest], records: Iterable[RequestRecord]
    ) -> None:
        """Continue mode: the server also cached each answer it generated, so the next turn is
        offered its whole history (the next request up to and including the answer)."""
        tokens = self.tokens
        answers = {r.prompt_id: r.output_text for r in records if r.ok and r.output_text}
        history = (
            tokens.held(q.payload, tokens.prompt(q.payload), answers[q.prompt_id])
            for q in previous
            if q.prompt_id in answers
        )
        remember(history, self.cache, self.block_size)


def _content(content: Any) -> str:
    """A message's text: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text") or "") for part in content if isinstance(part, Mapping))
    return "" if content is None else str(content)
