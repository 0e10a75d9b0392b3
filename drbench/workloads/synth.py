"""Synthetic prompt text of an exact token length, reproducible from a seed.

Text is words, each preceded by one space, so a text of n words is n tokens:

- without a tokenizer the words are 3 lowercase letters: every ``" abc"`` is 4 characters, i.e.
  exactly one token of the documented estimate (drbench/tokens.py: non-CJK characters / 4,
  rounded up), and one token of the bundled mocker's toy tokenizer too;
- with a tokenizer the words are those of a built-in candidate list that the tokenizer encodes
  to one token with their leading space; the whole text's count is then checked, and only the
  unique tail of a text (never a shared block) is lengthened or shortened until it is exact.

Every block draws its words from ``random.Random(f"{seed}:{workload}:{part}")``, so one seed
gives byte-identical text, and starts with head words that number it within its workload (the
vocabulary in a seeded order, as digits), so distinct blocks differ from their first word while
the workload has fewer blocks than the vocabulary has words (and from within the first few words
beyond that).  A shared block is made once and reused as the same string.  No I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import string
from dataclasses import dataclass
from typing import Any

from drbench.errors import UsageError
from drbench.tokens import EstimateCounter, TokenCounter
from drbench.workloads.workload import FLAG

__all__ = ["MAX_TEXT_BYTES", "MIN_WORDS", "Synth", "Words", "vocabulary"]

MIN_WORDS = 100  # single-token words a tokenizer must offer: fewer make repetitive, long heads
MAX_TEXT_BYTES = 1 << 30  # a workload refuses to synthesize more prompt text than this

_TRIPLES = tuple("".join(t) for t in itertools.product(string.ascii_lowercase, repeat=3))
# Longer English words many tokenizers hold as one token with a leading space.
_COMMON = tuple(
    """about above after again along among answer around basic before began being below
    better between black block board bring build cache called carry cause center change
    check child class clear close color common could count cover cross death early earth
    eight every field final first floor follow force found front given great green group
    happen heard heart heavy horse house human known large later learn leave level light
    little local major might money month moral music never night north notice number often
    order other paper party peace place plain plant point power press quick quite reach ready
    right river round second seven shall short should since small sound south space speak
    stand start state still story study table taken thing think third those three today
    total toward under until usual value voice watch water where which while white whole
    world would write young""".split()
)


def vocabulary(counter: TokenCounter) -> tuple[str, ...]:
    """The words text is made of, each with its leading space, in a fixed order.

    The estimate takes every 3-letter word (4 characters with the space: one token each);
    a tokenizer takes the candidates it encodes to exactly one token with the space.
    """
    if isinstance(counter, EstimateCounter):
        return tuple(" " + w for w in _TRIPLES)
    words = tuple(" " + w for w in _TRIPLES + _COMMON if counter.count(" " + w) == 1)
    if len(words) < MIN_WORDS:
        raise UsageError(
            f"{FLAG}: {counter.name} encodes only {len(words)} of drbench's "
            f"{len(_TRIPLES) + len(_COMMON)} candidate words to one token (the workloads need "
            f"{MIN_WORDS}); check --tokenizer, or leave it out to use the estimate"
        )
    return words


class Words:
    """The word sequence of one block: its head words, then seeded words, extended on demand.

    ``text(k)`` is always a prefix of ``text(k + 1)``, so a cut block is a prefix of the block.
    """

    __slots__ = ("_items", "_rng", "_vocab")

    def __init__(self, rng: random.Random, vocab: tuple[str, ...], head: list[str]) -> None:
        self._rng, self._vocab, self._items = rng, vocab, head

    def text(self, k: int) -> str:
        if k > len(self._items):
            self._items.extend(self._rng.choices(self._vocab, k=k - len(self._items)))
        return "".join(self._items[:k])


@dataclass(frozen=True)
class Synth:
    """Text maker for one workload and seed; ``blocks`` sized the head (how many blocks exist)."""

    counter: TokenCounter
    workload: str
    seed: int
    vocab: tuple[str, ...]
    heads: tuple[str, ...]  # the vocabulary in this seed's order: the digits of a block number
    width: int  # head words per block: enough digits to number every block of the workload

    @classmethod
    def create(cls, counter: TokenCounter, *, workload: str, seed: int, blocks: int) -> Synth:
        vocab = vocabulary(counter)
        heads = list(vocab)
        random.Random(f"{seed}:{workload}:heads").shuffle(heads)
        return cls(counter, workload, seed, vocab, tuple(heads), 1).sized(blocks)

    def sized(self, blocks: int) -> Synth:
        """The same maker with heads wide enough to number ``blocks`` blocks."""
        width = 1
        while len(self.vocab) ** width < blocks:
            width += 1
        return dataclasses.replace(self, width=width)

    @property
    def chars_per_token(self) -> float:
        return sum(map(len, self.vocab)) / len(self.vocab)

    def words(self, part: str, index: int) -> Words:
        """The words of block number ``index`` (unique in the workload), seeded by ``part``."""
        n = len(self.heads)
        head = [self.heads[(index // n**j) % n] for j in range(self.width)]
        return Words(random.Random(f"{self.seed}:{self.workload}:{part}"), self.vocab, head)

    def block(self, part: str, index: int, tokens: int) -> str:
        """A standalone block of exactly ``tokens`` tokens."""
        return self.fit("", self.words(part, index), tokens, part=part)

    def extend(self, head: str, part: str, index: int, total: int) -> str:
        """``head`` plus a unique tail (block ``index``) so the whole text is ``total`` tokens."""
        return self.fit(head, self.words(part, index), total, part=part)

    def grouped(
        self,
        groups: int,
        members: int,
        shared: tuple[str, str, int],
        unique: tuple[str, str, int],
        max_tokens: int,
    ) -> list[dict[str, Any]]:
        """Records made group by group: each group's shared block (``shared``: its part name,
        id letter and tokens, e.g. ``("prefix", "g", 2048)``) followed by each member's own
        tail (``unique``, e.g. ``("suffix", "p", 128)``); ids ``g3-p7``, ``prefix_group``
        ``g3``.  The shape of shared-prefix and long-doc alike."""
        (s_part, s_id, s_tokens), (u_part, u_id, u_tokens) = shared, unique
        records: list[dict[str, Any]] = []
        for g in range(groups):
            head = self.block(f"{s_part}-{s_id}{g}", g, s_tokens)
            for k in range(members):
                index = groups + g * members + k
                name = f"{s_id}{g}-{u_id}{k}"
                text = self.extend(head, f"{u_part}-{name}", index, s_tokens + u_tokens)
                records.append(
                    {
                        "id": name,
                        "text": text,
                        "max_tokens": max_tokens,
                        "prefix_group": f"{s_id}{g}",
                    }
                )
        return records

    def fit(self, head: str, words: Words, total: int, *, part: str, cap: int | None = None) -> str:
        """``head`` + the first k of ``words`` (k <= ``cap``), k chosen so the whole counts
        exactly ``total``; one UsageError when the tokenizer makes that impossible."""
        k = total - (self.counter.count(head) if head else 0)
        most = 2 * total + 16 if cap is None else cap  # words may merge: k can pass total
        tried: set[int] = set()
        while 0 <= k <= most and k not in tried and len(tried) < 64:
            tried.add(k)
            text = head + words.text(k)
            found = self.counter.count(text)
            if found == total:
                return text
            k += total - found
        raise UsageError(
            f"{FLAG} {self.workload}: cannot make {part} exactly {total} tokens with "
            f"{self.counter.name} (its words merge across spaces); leave out --tokenizer to "
            "use the estimate"
        )

    def check_size(self, tokens: int, hint: str) -> None:
        """Refuse, before making any, prompts of over MAX_TEXT_BYTES of text in all."""
        size = tokens * self.chars_per_token
        if size > MAX_TEXT_BYTES:
            raise UsageError(
                f"{FLAG} {self.workload}: the prompts would be about {size / 2**30:.1f} GiB "
                f"of text, over the 1 GiB limit; {hint}"
            )
