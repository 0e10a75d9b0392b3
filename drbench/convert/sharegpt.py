"""process_sharegpt.py: a ShareGPT dump -> the benchmarker's JSONL of cleaned prompts.

Pipeline: read (JSON array or JSONL) -> clean and check each conversation (sharegpt_clean.py)
-> optional language filter -> choose the prompt (``first-turn``: the first user turn as
``text``, the next user turn as ``followup``; ``conversation``: the longest prefix ending on a
user turn that fits ``--max-prompt-tokens``, as ``messages``) -> length filters (vLLM's
defaults) -> dedupe by id and by prompt -> seeded sample -> write.  Every skipped record is
counted by reason; ``process`` does the work, only ``main`` prints.
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drbench.convert.cli import Parser, add_output_and_seed, non_negative_int, positive_int, run
from drbench.convert.jsonl import OutputRecord, read_items, unique_ids, write_jsonl
from drbench.convert.sampling import dedupe, sample
from drbench.convert.sharegpt_clean import (
    LANGS,
    Conversation,
    clean_conversation,
    detect_lang,
    normalise,
    parse_conversation,
)
from drbench.errors import DatasetError, UsageError
from drbench.tokens import TokenCounter, load_counter

__all__ = ["MODES", "ShareGPTOptions", "ShareGPTResult", "build_parser", "main", "process"]

DEFAULT_OUTPUT = "datasets/sharegpt_clean.jsonl"
MODES = ("first-turn", "conversation")


@dataclass(frozen=True)
class ShareGPTOptions:
    """Every setting of one run (the parsed command line); 0 disables a length limit."""

    input: Path
    output: Path = Path(DEFAULT_OUTPUT)
    mode: str = "first-turn"
    max_tokens_from_answer: bool = False
    num_samples: int | None = None
    seed: int = 0
    min_prompt_tokens: int = 4
    max_prompt_tokens: int = 1024
    max_total_tokens: int = 2048
    keep_lang: tuple[str, ...] = ()
    skip_lang: tuple[str, ...] = ()
    tokenizer: str | None = None


@dataclass
class ShareGPTResult:
    """The records to write and what happened to the others."""

    records: list[OutputRecord]
    read: int
    cleaned: int  # conversations whose text the cleaning changed
    skipped: Counter[str] = field(default_factory=Counter)
    kept: int = 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of process_sharegpt.py; returns the exit status."""
    return run("process_sharegpt", lambda: _main(argv))


def build_parser() -> Parser:
    p = Parser(
        prog="process_sharegpt.py",
        description="Clean a ShareGPT dump into the Dual Round Benchmarker's JSONL format.",
        epilog="Docs: docs/converter_guide.md",
    )
    _io_args(p)
    _filter_args(p)
    return p


def _io_args(p: Parser) -> None:
    p.add_argument(
        "--input",
        type=Path,
        required=True,
        metavar="FILE",
        help="ShareGPT JSON ([{id, conversations: [{from, value}]}]) or JSONL",
    )
    add_output_and_seed(p, DEFAULT_OUTPUT)
    p.add_argument(
        "--mode",
        choices=MODES,
        default="first-turn",
        help="first-turn: first user turn as text, next user turn as followup; "
        "conversation: the conversation prefix as messages (default: first-turn)",
    )
    p.add_argument(
        "--max-tokens-from-answer",
        action="store_true",
        help="set max_tokens to the real answer's length in tokens, as vLLM does",
    )
    p.add_argument(
        "--num-samples",
        type=positive_int,
        metavar="N",
        help="sample N records without replacement (default: all)",
    )


def _filter_args(p: Parser) -> None:
    p.add_argument(
        "--min-prompt-tokens",
        type=non_negative_int,
        default=4,
        metavar="N",
        help="drop prompts shorter than N tokens (as vLLM; default: 4)",
    )
    p.add_argument(
        "--max-prompt-tokens",
        type=non_negative_int,
        default=1024,
        metavar="N",
        help="drop prompts longer than N tokens (as vLLM; 0: no limit; default: 1024)",
    )
    p.add_argument(
        "--max-total-tokens",
        type=non_negative_int,
        default=2048,
        metavar="N",
        help="drop records whose prompt plus answer exceed N tokens "
        "(as vLLM; 0: no limit; default: 2048)",
    )
    p.add_argument(
        "--keep-lang",
        nargs="+",
        choices=LANGS,
        default=[],
        metavar="LANG",
        help=f"keep only prompts in these scripts ({', '.join(LANGS)}; 'en' means Latin script)",
    )
    p.add_argument(
        "--skip-lang",
        nargs="+",
        choices=LANGS,
        default=[],
        metavar="LANG",
        help="drop prompts in these scripts",
    )
    p.add_argument(
        "--tokenizer",
        metavar="PATH",
        help="a local tokenizer.json or model folder for exact token counts "
        "(default: estimate, ~4 characters per token, 1 per CJK character)",
    )


def process(opts: ShareGPTOptions) -> ShareGPTResult:
    """Run the pipeline of the module docstring."""
    counter = load_counter(opts.tokenizer)
    items = read_items(opts.input, flag="--input")
    if not items:
        raise DatasetError(f"{opts.input}: holds no conversations")
    result = ShareGPTResult(records=[], read=len(items), cleaned=0)
    candidates = []
    for index, item in enumerate(items, start=1):
        raw = parse_conversation(item.obj, where=item.where, default_id=f"sharegpt-{index}")
        cleaned = clean_conversation(raw)
        result.cleaned += any(
            a.text.strip() != b.text for a, b in zip(raw.turns, cleaned.turns, strict=True)
        )
        record, reason = _convert(cleaned, opts, counter)
        if record is None:
            result.skipped[reason or "unknown"] += 1
        else:
            candidates.append(record)
    records = _dedupe(candidates, result.skipped)
    result.kept = len(records)
    result.records = unique_ids(sample(records, opts.num_samples, random.Random(opts.seed)))
    return result


def _main(argv: Sequence[str] | None) -> int:
    opts = _options(build_parser().parse_args(argv))
    result = process(opts)
    for line in _summary(result, opts):
        print(line)
    n = write_jsonl(opts.output, result.records)
    print(f"wrote {n} records to {opts.output}")
    return 0


def _options(args: Any) -> ShareGPTOptions:
    if args.keep_lang and args.skip_lang:
        raise UsageError("give --keep-lang or --skip-lang, not both")
    if args.max_prompt_tokens and args.min_prompt_tokens > args.max_prompt_tokens:
        raise UsageError(
            f"--min-prompt-tokens {args.min_prompt_tokens} is above "
            f"--max-prompt-tokens {args.max_prompt_tokens}"
        )
    return ShareGPTOptions(
        input=args.input, output=args.output, mode=args.mode,
        max_tokens_from_answer=args.max_tokens_from_answer, num_samples=args.num_samples,
        seed=args.seed, min_prompt_tokens=args.min_prompt_tokens,
        max_prompt_tokens=args.max_prompt_tokens, max_total_tokens=args.max_total_tokens,
        keep_lang=tuple(args.keep_lang), skip_lang=tuple(args.skip_lang),
        tokenizer=args.tokenizer,
    )  # fmt: skip


def _convert(
    cleaned: Conversation, opts: ShareGPTOptions, counter: TokenCounter
) -> tuple[OutputRecord | None, str | None]:
    conv, reason = normalise(cleaned)
    if conv is None:
        return None, reason
    reason = _language_reason(conv, opts)
    if reason:
        return None, reason
    return _candidate(conv, opts, counter)


def _language_reason(conv: Conversation, opts: ShareGPTOptions) -> str | None:
    if not opts.keep_lang and not opts.skip_lang:
        return None
    lang = detect_lang(conv.turns[0].text)
    if (opts.keep_lang and lang not in opts.keep_lang) or lang in opts.skip_lang:
        return "language"
    return None


def _candidate(
    conv: Conversation, opts: ShareGPTOptions, counter: TokenCounter
) -> tuple[OutputRecord | None, str | None]:
    """The record one conversation gives, or None and why it was filtered out."""
    if opts.mode == "first-turn":
        end = 0
        prompt_tokens = counter.count(conv.turns[0].text)
    else:
        end, prompt_tokens = _prefix_end(conv, opts.max_prompt_tokens, counter)
    answer = conv.turns[end + 1].text if end + 1 < len(conv.turns) else None
    answer_tokens = counter.count(answer) if answer is not None else None
    reason = _length_reason(prompt_tokens, answer_tokens, opts)
    if reason:
        return None, reason
    return _record(conv, end, opts, answer_tokens), None


def _prefix_end(conv: Conversation, limit: int, counter: TokenCounter) -> tuple[int, int]:
    """Index of the last user turn of the longest prefix within ``limit``, and its tokens."""
    total = counter.count(conv.system) if conv.system else 0
    best_end, best_tokens = 0, None
    for i, turn in enumerate(conv.turns):
        total += counter.count(turn.text)
        if turn.role == "user" and (not limit or total <= limit or best_tokens is None):
            best_end, best_tokens = i, total
        if limit and total > limit:
            break
    return best_end, best_tokens or 0


def _length_reason(prompt: int, answer: int | None, opts: ShareGPTOptions) -> str | None:
    if prompt < opts.min_prompt_tokens:
        return "prompt too short"
    if opts.max_prompt_tokens and prompt > opts.max_prompt_tokens:
        return "prompt too long"
    if opts.max_total_tokens and answer is not None and prompt + answer > opts.max_total_tokens:
        return "prompt + answer too long"
    return None


def _record(
    conv: Conversation, end: int, opts: ShareGPTOptions, answer_tokens: int | None
) -> OutputRecord:
    max_tokens = max(1, answer_tokens) if opts.max_tokens_from_answer and answer_tokens else None
    if opts.mode == "first-turn":
        followup = conv.turns[2].text if len(conv.turns) > 2 else None
        return OutputRecord(conv.id, "sharegpt", text=conv.turns[0].text,
                            max_tokens=max_tokens, followup=followup)  # fmt: skip
    messages = [{"role": "system", "content": conv.system}] if conv.system else []
    messages += [{"role": t.role, "content": t.text} for t in conv.turns[: end + 1]]
    return OutputRecord(conv.id, "sharegpt", messages=tuple(messages), max_tokens=max_tokens)


def _dedupe(candidates: list[OutputRecord], skipped: Counter[str]) -> list[OutputRecord]:
    """FastChat's dedupe by id, then ours by the final prompt."""
    by_id, n_id = dedupe(candidates, key=lambda r: r.id)
    by_prompt, n_prompt = dedupe(by_id, key=lambda r: r.prompt_key())
    if n_id:
        skipped["duplicate id"] += n_id
    if n_prompt:
        skipped["duplicate prompt"] += n_prompt
    return by_prompt


def _summary(result: ShareGPTResult, opts: ShareGPTOptions) -> list[str]:
    lines = [f"read {result.read} conversations from {opts.input}"]
    if result.cleaned:
        lines.append(f"cleaned HTML/markdown artefacts in {result.cleaned} conversations")
    if result.skipped:
        reasons = ", ".join(f"{why} {n}" for why, n in sorted(result.skipped.items()))
        lines.append(f"skipped {sum(result.skipped.values())}: {reasons}")
    lines.append(f"kept {result.kept}")
    if opts.num_samples is not None:
        if opts.num_samples > result.kept:
            lines.append(
                f"--num-samples {opts.num_samples}: only {result.kept} records remain; took all"
            )
        lines.append(f"sampled {len(result.records)} of {result.kept} (seed {opts.seed})")
    return lines


if __name__ == "__main__":
    sys.exit(main())
