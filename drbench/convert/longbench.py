"""convert_longbench.py: LongBench subsets -> the benchmarker's JSONL, with a recommendation.

Pipeline: read records (hub, ``--input`` or ``--input-dir``) -> build each prompt with the
subset's official template -> count tokens -> truncate / drop / keep prompts over
``--max-model-len`` -> dedupe on the final prompt -> summarise and recommend per subset ->
sample (``--num-samples``, seeded, without replacement, stratified across subsets) -> write.
``convert`` does the work and returns what happened; only ``main`` prints.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from drbench.convert.cli import Parser, add_output_and_seed, positive_int, run
from drbench.convert.jsonl import OutputRecord, unique_ids, write_jsonl
from drbench.convert.longbench_source import (
    HUB_REPO,
    SourceRecord,
    check_hub_reachable,
    input_dir_files,
    load_hub,
    read_local,
    require_datasets,
)
from drbench.convert.longbench_template import ALL, ALL_E, TEMPLATES, LongBenchSpec
from drbench.convert.recommend import SubsetReport, analyse, render
from drbench.convert.sampling import dedupe, sample, stratified_sample
from drbench.errors import DatasetError, UsageError
from drbench.tokens import TokenCounter, load_counter

__all__ = ["Conversion", "LongBenchOptions", "build_parser", "convert", "main"]

DEFAULT_OUTPUT = "datasets/longbench.jsonl"
DEFAULT_MAX_MODEL_LEN = 32768
OVERLONG = ("truncate", "drop", "keep")
STRATIFY = ("equal", "proportional")
_INPUT_TITLE = "input (the hub by default; no network at all with --input or --input-dir)"


@dataclass(frozen=True)
class LongBenchOptions:
    """Every setting of one conversion (the parsed command line)."""

    datasets: tuple[str, ...] = ()
    input: Path | None = None
    input_dir: Path | None = None
    hub_repo: str = HUB_REPO
    cache_dir: str | None = None
    output: Path = Path(DEFAULT_OUTPUT)
    template: str = "official"
    max_tokens: int | None = None
    num_samples: int | None = None
    seed: int = 0
    stratify: str = "equal"
    max_model_len: int = DEFAULT_MAX_MODEL_LEN
    kv_cache_tokens: int | None = None
    overlong: str = "truncate"
    tokenizer: str | None = None
    recommend: bool = False

    @property
    def kv_budget(self) -> int:
        """The KV-cache budget: the user's figure, else the one sequence every server must hold."""
        return self.kv_cache_tokens or self.max_model_len


@dataclass(frozen=True, slots=True)
class _Built:
    subset: str
    record: OutputRecord
    tokens: int  # prompt tokens before any truncation


@dataclass
class Conversion:
    """What a conversion did: the records to write and every count the summary reports."""

    records: list[OutputRecord]
    reports: list[SubsetReport]
    counter: str
    read: int
    duplicates: int = 0
    truncated: int = 0
    dropped: int = 0
    available: dict[str, int] = field(default_factory=dict)
    taken: dict[str, int] = field(default_factory=dict)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of convert_longbench.py; returns the exit status."""
    return run("convert_longbench", lambda: _main(argv))


def build_parser() -> Parser:
    p = Parser(
        prog="convert_longbench.py",
        description="Convert LongBench subsets into the Dual Round Benchmarker's JSONL format, "
        "with LongBench's official prompt templates and generation lengths.",
        epilog="Docs: docs/converter_guide.md",
    )
    _input_args(p.add_argument_group(_INPUT_TITLE))
    _output_args(p.add_argument_group("output"))
    _fit_args(p.add_argument_group("fit and recommendation"))
    return p


def _input_args(src: Any) -> None:
    src.add_argument(
        "--dataset",
        nargs="+",
        metavar="NAME",
        default=[],
        help=f"LongBench subsets (e.g. hotpotqa narrativeqa, hotpotqa_e), or "
        f"'{ALL}' (21 subsets) or '{ALL_E}' (13 LongBench-E subsets)",
    )
    one = src.add_mutually_exclusive_group()
    one.add_argument("--input", type=Path, metavar="FILE", help="one local LongBench JSONL file")
    one.add_argument(
        "--input-dir",
        type=Path,
        metavar="DIR",
        help="every *.jsonl/*.json file of DIR (subset from the file name or the "
        "record's 'dataset' field); with --dataset, only those subsets",
    )
    src.add_argument(
        "--hub-repo",
        default=HUB_REPO,
        metavar="REPO",
        help=f"hub repository, or a local folder laid out like it (default: {HUB_REPO})",
    )
    src.add_argument(
        "--cache-dir", metavar="DIR", help="datasets cache folder (default: Hugging Face's)"
    )


def _output_args(out: Any) -> None:
    add_output_and_seed(out, DEFAULT_OUTPUT)
    out.add_argument(
        "--template",
        choices=TEMPLATES,
        default="official",
        help="official: LongBench's per-subset template; raw: context and input only "
        "(default: official)",
    )
    out.add_argument(
        "--max-tokens",
        type=positive_int,
        metavar="N",
        help="max_tokens of every record (default: the subset's official length)",
    )
    out.add_argument(
        "--num-samples",
        type=positive_int,
        metavar="N",
        help="sample N records in all, without replacement (default: all)",
    )
    out.add_argument(
        "--stratify",
        choices=STRATIFY,
        default="equal",
        help="split --num-samples across subsets equally or in proportion to their sizes "
        "(default: equal)",
    )


def _fit_args(fit: Any) -> None:
    fit.add_argument(
        "--max-model-len",
        type=positive_int,
        default=DEFAULT_MAX_MODEL_LEN,
        metavar="N",
        help=f"the server's context length (default: {DEFAULT_MAX_MODEL_LEN})",
    )
    fit.add_argument(
        "--overlong",
        choices=OVERLONG,
        default="truncate",
        help="prompts that with max_tokens exceed --max-model-len: truncate in the "
        "middle as LongBench does, drop, or keep (default: truncate)",
    )
    fit.add_argument(
        "--kv-cache-tokens",
        type=positive_int,
        metavar="N",
        help="the server's KV-cache size in tokens (vLLM logs it at startup); "
        "(default: --max-model-len)",
    )
    fit.add_argument(
        "--tokenizer",
        metavar="PATH",
        help="a local tokenizer.json or model folder for exact token counts "
        "(default: estimate, ~4 characters per token, 1 per CJK character)",
    )
    fit.add_argument(
        "--recommend",
        action="store_true",
        help="print the per-subset summary and recommendation; write nothing",
    )


def convert(opts: LongBenchOptions, *, loader: Callable[..., Any] | None = None) -> Conversion:
    """Run the pipeline of the module docstring; ``loader`` replaces datasets.load_dataset."""
    spec = LongBenchSpec.load()
    counter = load_counter(opts.tokenizer)
    raw = _read(opts, spec, loader)
    if not raw:
        raise DatasetError("the input holds no LongBench records")
    built = [_build(r, i, opts, spec, counter) for i, r in enumerate(raw)]
    kept, truncated, dropped = _fit(built, opts, counter)
    kept, duplicates = dedupe(kept, key=lambda b: b.record.prompt_key())
    groups: dict[str, list[_Built]] = {}
    for b in kept:
        groups.setdefault(b.subset, []).append(b)
    reports = [_report(name, items, opts, spec, counter) for name, items in groups.items()]
    chosen, taken = _sample(groups, opts)
    return Conversion(
        records=unique_ids([b.record for b in chosen]),
        reports=reports,
        counter=counter.name,
        read=len(raw),
        duplicates=duplicates,
        truncated=truncated,
        dropped=dropped,
        available={k: len(v) for k, v in groups.items()},
        taken=taken,
    )


def _main(argv: Sequence[str] | None) -> int:
    opts = _options(build_parser().parse_args(argv))
    conv = convert(opts)
    print(
        render(
            conv.reports, counter=conv.counter, max_model_len=opts.max_model_len, kv=opts.kv_budget
        )
    )
    for line in _summary(conv, opts):
        print(line)
    if opts.recommend:
        print("--recommend: nothing written")
        return 0
    n = write_jsonl(opts.output, conv.records)
    print(f"wrote {n} records to {opts.output}")
    return 0


def _options(args: Any) -> LongBenchOptions:
    if not args.dataset and args.input is None and args.input_dir is None:
        raise UsageError("give --dataset NAME (from the hub), --input FILE or --input-dir DIR")
    if args.input is not None and (len(args.dataset) > 1 or {ALL, ALL_E} & set(args.dataset)):
        raise UsageError("--input takes one file of one subset: give at most one --dataset NAME")
    if args.max_tokens is not None and args.max_tokens >= args.max_model_len:
        raise UsageError(
            f"--max-tokens {args.max_tokens} leaves no room for a prompt within "
            f"--max-model-len {args.max_model_len}"
        )
    return LongBenchOptions(
        datasets=tuple(args.dataset), input=args.input, input_dir=args.input_dir,
        hub_repo=args.hub_repo, cache_dir=args.cache_dir, output=args.output,
        template=args.template, max_tokens=args.max_tokens, num_samples=args.num_samples,
        seed=args.seed, stratify=args.stratify, max_model_len=args.max_model_len,
        kv_cache_tokens=args.kv_cache_tokens, overlong=args.overlong,
        tokenizer=args.tokenizer, recommend=args.recommend,
    )  # fmt: skip


def _read(
    opts: LongBenchOptions, spec: LongBenchSpec, loader: Callable[..., Any] | None
) -> list[SourceRecord]:
    wanted = spec.resolve(opts.datasets) if opts.datasets else []
    if opts.input is not None:
        return read_local([opts.input], spec, subset=wanted[0] if wanted else None)
    if opts.input_dir is not None:
        named = [n for n in opts.datasets if n not in (ALL, ALL_E)]
        return read_local(input_dir_files(opts.input_dir), spec, wanted=wanted, required=named)
    if loader is None:
        require_datasets()  # the hub extra first: said before any network wait
        check_hub_reachable(opts.hub_repo)
    records: list[SourceRecord] = []
    for name in wanted:
        records.extend(load_hub(name, repo=opts.hub_repo, cache_dir=opts.cache_dir, loader=loader))
    return records


def _build(
    rec: SourceRecord,
    index: int,
    opts: LongBenchOptions,
    spec: LongBenchSpec,
    counter: TokenCounter,
) -> _Built:
    text = spec.prompt(rec.subset, rec.fields, opts.template, where=rec.where)
    rid = rec.fields.get("_id", rec.fields.get("id"))
    record = OutputRecord(
        id=str(rid) if rid not in (None, "") else f"{rec.subset}-{index}",
        source=f"longbench/{rec.subset}",
        text=text,
        max_tokens=opts.max_tokens or spec.max_tokens(rec.subset),
    )
    return _Built(rec.subset, record, counter.count(text))


def _fit(
    built: list[_Built], opts: LongBenchOptions, counter: TokenCounter
) -> tuple[list[_Built], int, int]:
    """Apply --overlong to prompts whose tokens plus max_tokens exceed --max-model-len."""
    kept, truncated, dropped = [], 0, 0
    for b in built:
        limit = opts.max_model_len - (b.record.max_tokens or 0)
        if limit < 1:
            raise UsageError(
                f"--max-model-len {opts.max_model_len} leaves no room for a prompt next to "
                f"{b.subset}'s max_tokens {b.record.max_tokens}; raise it or lower --max-tokens"
            )
        if b.tokens <= limit or opts.overlong == "keep":
            kept.append(b)
        elif opts.overlong == "drop":
            dropped += 1
        else:
            text = counter.truncate_middle(b.record.text or "", limit)
            kept.append(_Built(b.subset, replace(b.record, text=text), b.tokens))
            truncated += 1
    return kept, truncated, dropped


def _report(
    name: str,
    items: list[_Built],
    opts: LongBenchOptions,
    spec: LongBenchSpec,
    counter: TokenCounter,
) -> SubsetReport:
    texts = [b.record.text or "" for b in items]
    shared = counter.count(os.path.commonprefix(texts)) if len(texts) > 1 else 0
    return analyse(
        name,
        [b.tokens for b in items],
        max_tokens=opts.max_tokens or spec.max_tokens(name),
        max_model_len=opts.max_model_len,
        kv_cache_tokens=opts.kv_budget,
        chat_template=spec.chat_template(name),
        shared_prefix_tokens=shared,
    )


def _sample(
    groups: dict[str, list[_Built]], opts: LongBenchOptions
) -> tuple[list[_Built], dict[str, int]]:
    rng = random.Random(opts.seed)
    if opts.num_samples is None or len(groups) == 1:
        picked = [b for items in groups.values() for b in sample(items, opts.num_samples, rng)]
        return picked, {k: sum(1 for b in picked if b.subset == k) for k in groups}
    weights = {k: (1.0 if opts.stratify == "equal" else float(len(v))) for k, v in groups.items()}
    return stratified_sample(groups, opts.num_samples, weights, rng)


def _summary(conv: Conversion, opts: LongBenchOptions) -> list[str]:
    lines = [f"read {conv.read} records"]
    if conv.duplicates:
        lines.append(f"skipped duplicate prompts (same final prompt text): {conv.duplicates}")
    limit = f"--max-model-len {opts.max_model_len}"
    if conv.truncated:
        lines.append(f"truncated in the middle to fit {limit}: {conv.truncated}")
    if conv.dropped:
        lines.append(f"skipped as too long for {limit} (--overlong drop): {conv.dropped}")
    total = sum(conv.available.values())
    if opts.num_samples is not None:
        if opts.num_samples > total:
            lines.append(f"--num-samples {opts.num_samples}: only {total} records exist; took all")
        parts = ", ".join(f"{k} {conv.taken[k]}/{n}" for k, n in conv.available.items())
        how = f", stratified ({opts.stratify})" if len(conv.available) > 1 else ""
        lines.append(f"sampled {len(conv.records)} of {total} (seed {opts.seed}{how}): {parts}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
