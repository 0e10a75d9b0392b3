"""The command line of dual_round_benchmarker.py: flags -> BenchConfig -> run -> reports -> exit code.

Flags are built from config.OPTIONS and default to "not set", so defaults live in BenchConfig
alone and a recipe's values are overridden only by flags the user typed.  Only DrbenchError is
turned into a one-line message; anything else is a bug and says so (traceback with --debug).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from drbench import __version__
from drbench.argparser import OneLineParser
from drbench.config import OPTIONS, BenchConfig, build_config, flag_label, int_or_auto
from drbench.errors import DrbenchError, ExitStatus, UsageError, severity
from drbench.messages import Message
from drbench.records import Lang

__all__ = ["build_parser", "main"]

PROG = "dual_round_benchmarker.py"
EXAMPLE_DATASET = Path(__file__).resolve().parent.parent / "examples" / "example_dataset.json"
EXAMPLE_SLO = EXAMPLE_DATASET.parent / "slo_example.yaml"

#: Flags of vLLM bench serve (--base-url, --num-prompts), AIPerf (--url, -H, --extra-inputs,
#: --request-count), SGLang's bench_serving (--extra-request-body) and guidellm (--target) a
#: user may type, and what to write instead.
PEER_FLAGS: dict[str, str] = {
    "--base-url": "give the server as --endpoint URL: a base URL (http://host:8000) or the full "
    "path (http://host:8000/v1/chat/completions)",
    "--url": "give the server as --endpoint URL: a base URL (http://host:8000) or the full path",
    "--target": "give the server as --endpoint URL: a base URL (http://host:8000) or the full path",
    "-H": "use --header 'NAME: VALUE' (once per header)",
    "--extra-inputs": "use --extra-body JSON (an object merged into every request body)",
    "--extra-request-body": "use --extra-body JSON (an object merged into every request body)",
    "--num-prompts": "use --num-samples N",
    "--request-count": "use --num-samples N",
}

_EPILOG = f"""\
examples:
  {PROG} --demo
  {PROG} --dataset examples/example_dataset.json \\
      --endpoint http://localhost:8000/v1/chat/completions --num-samples 10 --concurrency 5
  {PROG} --dataset datasets/longbench_sample.jsonl --endpoint http://localhost:8000 \\
      --num-samples 20 --concurrency 5 10 20 --prometheus-url http://localhost:8000/metrics \\
      --slo-file examples/slo_example.yaml --output-dir results/test_run

exit codes:
  0    every level ran (failed requests are data, not an error)
  1    internal error (a bug: rerun with --debug and report it)
  2    usage error: bad flag, recipe, SLO file, dataset or output directory
  3    preflight failed: endpoint unreachable, model rejected or API key refused
  4    --fail-on-slo: some round's goodput fell below the threshold, or a round
         missed a percentile bound of the SLO (ttft_p95_ms)
  5    --fail-on-errors: some round's failed-request share exceeded the threshold
         (5 wins when both gates fail)
  6    some round had no successful request at all (always checked; wins over 4 and 5)
  7    --compare --fail-on-regression: B is worse than A by more than PCT, the 95% CI
         excluding zero
  8    --on-lost-worker stop: a worker process or Ray actor was lost mid-round; the
         rounds before it and its finished requests are still reported
  130  interrupted (Ctrl-C); finished rounds are still reported

Metric definitions, every output file and the summary.json contract: docs/benchmarker_guide.md
"""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        version=f"drbench {__version__}",
        peers=PEER_FLAGS,
        description="Send the same prompts twice (round 1 cold, round 2 warm) at each concurrency "
        "level, time every streamed token, and report what the KV/prefix cache bought.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = {f.name: f.default for f in fields(BenchConfig)}
    groups: dict[str, Any] = {}
    for opt in OPTIONS:
        group = groups.get(opt.group) or groups.setdefault(
            opt.group, parser.add_argument_group(opt.group)
        )
        default = defaults[opt.name]
        words = opt.default_words or ("" if default in (None, (), False) else _show(default))
        shown = f" (default: {words})" if words else ""  # one style in every --help
        kw: dict[str, Any] = {"dest": opt.name, "default": None, "help": opt.help + shown}
        if opt.kind == "bool":
            kw["action"] = "store_const"
            kw["const"] = True
        else:
            kw["metavar"] = opt.metavar
            kw["type"] = _ARG_TYPES.get(opt.kind, str)
            if opt.kind == "line_list":  # one item per flag: --header 'A: 1' --header 'B: 2'
                kw["action"] = "append"
            elif opt.kind.endswith("_list"):  # both "--x a b" and "--x a --x b" work
                kw["nargs"] = "+"
                kw["action"] = "extend"
            if opt.choices:
                kw["choices"] = opt.choices
                kw.pop("metavar")
        group.add_argument(opt.flag, **kw)
    run = parser.add_argument_group("run")
    run.add_argument(
        "--recipe",
        metavar="FILE",
        help="YAML recipe: every option above as a snake_case key, ${VAR} / ${VAR:-default} / ${VAR:?message} expansion, and a 'runs:' list of named runs (docs/RECIPE_GUIDE.md). Flags typed here override it.",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="Print the fully resolved configuration of every run (secrets redacted) and exit without sending anything.",
    )
    run.add_argument(
        "--demo",
        action="store_true",
        help="Start the bundled mock server on a free port, run the example dataset against it and print the report.",
    )
    run.add_argument(
        "--report",
        metavar="DIR",
        help="Re-render DIR/report.html of an earlier run from its summary.json and requests.jsonl (schema 1 or 2); sends nothing.",
    )
    run.add_argument(
        "--compare",
        nargs=2,
        metavar=("DIR_A", "DIR_B"),
        help="Compare run B against run A per level and round, with 95%% bootstrap CIs (paired by prompt id when both sent the same prompts); prints a table, writes compare.json and compare.html to --output-dir, else to results/compare-<time>.",
    )
    run.add_argument(
        "--fail-on-regression",
        nargs="+",
        action="extend",
        metavar="METRIC=PCT",
        help="With --compare: exit 7 when B is worse than A by more than PCT percent and the 95%% CI excludes zero, e.g. ttft_p99=10 (METRIC: ttft|itl|tpot|latency _ avg|p50|p90|p99).",
    )
    run.add_argument("--debug", action="store_true", help="Show tracebacks of internal errors.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:  # a bad flag: one line, not the usage block
        _err(str(exc))
        return int(exc.exit_status)
    flags = {o.name: getattr(args, o.name) for o in OPTIONS}
    try:
        offline = _offline(args, flags)
        if offline is not None:
            return offline
        if args.demo:
            return _run_demo(flags)
        runs = _resolve_runs(flags, args.recipe)
        label = _label_for(args.recipe)
        for _, cfg in runs:  # every run is checked before the first one sends anything
            cfg.check(label)
            _check_sweep(cfg)
        if args.dry_run:
            resolved = [{"run": name, "config": cfg.to_dict()} for name, cfg in runs]
            print(
                json.dumps(resolved if args.recipe else resolved[0], indent=2, ensure_ascii=False)
            )
            return int(ExitStatus.OK)
        return max((_run_named(name, cfg, label) for name, cfg in runs), key=severity)
    except DrbenchError as exc:
        _err(str(exc))
        return int(exc.exit_status)
    except KeyboardInterrupt:
        _err("interrupted")
        return int(ExitStatus.INTERRUPTED)
    except BrokenPipeError:  # e.g. `--dry-run | head`: the reader left, which is fine
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return int(ExitStatus.OK)
    except Exception as exc:  # a bug: never hide it, never dump it on a user unasked
        if args.debug:
            traceback.print_exc()
        _err(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)")
        return int(ExitStatus.ERROR)


def _offline(args: argparse.Namespace, flags: dict[str, Any]) -> int | None:
    """--report DIR or --compare A B (result files in, nothing sent); None: neither was given."""
    if args.fail_on_regression and not args.compare:
        raise UsageError("--fail-on-regression needs --compare DIR_A DIR_B")
    if args.report and args.compare:
        raise UsageError("--report and --compare are two commands: give one of them")
    from drbench.offline import compare_main, report_main  # noqa: PLC0415

    lang: Lang = "zh" if flags.get("lang") == "zh" else "en"
    if args.report:
        return report_main(args.report, lang)
    if args.compare:
        return compare_main(
            args.compare,
            args.fail_on_regression or [],
            flags.get("output_dir"),
            overwrite=bool(flags.get("overwrite")),
            lang=lang,
        )
    return None


def run_config(cfg: BenchConfig, label: Any = flag_label) -> int:
    """Check the configuration, run every level, write every report; returns the exit code."""
    from drbench.benchmark import Benchmark  # noqa: PLC0415 - keeps --help fast (numpy, aiohttp)

    cfg.check(label)
    if cfg.write_workload:
        return _write_workload(cfg)
    if not cfg.endpoint:
        raise UsageError("--endpoint URL is required (or try --demo)")
    if not cfg.dataset and not cfg.workload:
        raise UsageError("--dataset FILE or --workload NAME is required (or try --demo)")
    if cfg.sweep:
        from drbench.sweep_run import run_sweep  # noqa: PLC0415

        return run_sweep(cfg)
    if cfg.slo_search:
        from drbench.sweep_run import run_slo_search  # noqa: PLC0415

        return run_slo_search(cfg)
    return int(Benchmark.prepare(cfg).execute())


def _check_sweep(cfg: BenchConfig) -> None:
    """A --sweep's key and every value, or a --slo-search's bound, checked before any run
    (and by --dry-run)."""
    if cfg.sweep:
        from drbench.sweep_run import check_sweep  # noqa: PLC0415

        check_sweep(cfg)
    if cfg.slo_search:
        from drbench.sweep_run import check_search  # noqa: PLC0415

        check_search(cfg)


def _write_workload(cfg: BenchConfig) -> int:
    """--write-workload FILE: generate, write the JSONL, say what it holds; nothing is sent."""
    from drbench.tokens import load_counter  # noqa: PLC0415
    from drbench.workload_run import workload_prompts, write_workload  # noqa: PLC0415

    counter = load_counter(cfg.tokenizer) if cfg.tokenizer else None
    workload, _ = workload_prompts(cfg, counter)
    write_workload(cfg.write_workload or "", workload)
    wrote = Message("workload_wrote", file=str(cfg.write_workload), what=workload.describe())
    print(f"drbench: {wrote.render(cfg.lang)}", file=sys.stderr)
    hints = " ".join(
        flag_label(k) if v is True else f"{flag_label(k)} {_show(v)}"
        for k, v in workload.implied.items()
    )
    if hints:
        hint = Message("workload_hint", hints=hints)
        print(f"drbench: {hint.render(cfg.lang)}", file=sys.stderr)
    return int(ExitStatus.OK)


def _run_demo(flags: dict[str, Any]) -> int:
    from drbench.mocker.process import MockerProcess  # noqa: PLC0415

    if not EXAMPLE_DATASET.exists() and not flags.get("dataset") and not flags.get("workload"):
        raise UsageError(
            f"--demo needs {EXAMPLE_DATASET} (it ships with the repository checkout); "
            "run from a checkout or pass --dataset FILE"
        )
    with MockerProcess(["--itl-ms", "5", "--output-tokens", "32"]) as mock:
        endpoint = f"{mock.base_url}/v1/chat/completions"
        demo: dict[str, Any] = {
            "endpoint": endpoint,
            "dataset": str(EXAMPLE_DATASET) if EXAMPLE_DATASET.exists() else None,
            "concurrency": (1, 5),
            "prometheus_url": (f"{mock.base_url}/metrics",),
            "slo_file": str(EXAMPLE_SLO) if EXAMPLE_SLO.exists() else None,
            "output_dir": f"results/demo-{datetime.now():%Y%m%d-%H%M%S}",
        }
        typed = {k: v for k, v in flags.items() if v is not None}
        if typed.get("workload"):  # the workload gives the prompts, and maybe its own pace
            demo.pop("dataset")
            demo.pop("concurrency")
        cfg = _with_workload(build_config(typed, demo), set(typed) | set(demo))
        cfg = _with_extra_body(cfg)
        if cfg.endpoint != endpoint:
            cfg = replace(cfg, endpoint=endpoint)
        demo_line = Message("demo", url=mock.base_url)
        print(f"drbench: {demo_line.render(cfg.lang)}", file=sys.stderr)
        return run_config(cfg)


def _run_named(name: str, cfg: BenchConfig, label: Any) -> int:
    """One run of a recipe; a run that cannot start is reported and the next one still runs."""
    try:
        return run_config(cfg, label)
    except DrbenchError as exc:
        if not name:
            raise
        _err(f"run {name!r}: {exc}")
        return int(exc.exit_status)


def _resolve_runs(flags: dict[str, Any], recipe_path: str | None) -> list[tuple[str, BenchConfig]]:
    """(name, config) of every run: one without a recipe, one per entry of the recipe's runs:."""
    typed = {k for k, v in flags.items() if v is not None}
    if recipe_path is None:
        return [("", _with_extra_body(_with_workload(build_config(flags), typed)))]
    from drbench.recipe import load_recipe  # noqa: PLC0415

    recipe = load_recipe(recipe_path)
    for warning in recipe.warnings:
        _err(f"warning: {warning}")
    out = []
    for run in recipe.runs:
        cfg = _with_workload(build_config(flags, run.values), typed | set(run.values))
        if len(recipe.runs) > 1 or run.name:
            from drbench.report.files import default_output_dir  # noqa: PLC0415

            base = Path(cfg.output_dir) if cfg.output_dir else default_output_dir()
            cfg = replace(cfg, output_dir=str(base / run.name) if run.name else str(base))
        out.append((run.name, _with_extra_body(cfg)))
    return out


def _with_extra_body(cfg: BenchConfig) -> BenchConfig:
    """--extra-body @FILE read now, so --dry-run and summary.json show the fields sent."""
    if isinstance(cfg.extra_body, str) and cfg.extra_body.startswith("@"):
        from drbench.extras import load_extra_body  # noqa: PLC0415

        return replace(cfg, extra_body=load_extra_body(cfg.extra_body))
    return cfg


def _with_workload(cfg: BenchConfig, given: set[str]) -> BenchConfig:
    """The settings a --workload implies, unless ``given`` (imported only with a workload)."""
    if cfg.slo_search and "concurrency" in given:
        raise UsageError(
            "--slo-search runs each probe at --concurrency U, its users=: drop --concurrency"
        )
    if not cfg.workload:
        return cfg
    from drbench.workload_run import with_workload_settings  # noqa: PLC0415

    return with_workload_settings(cfg, given)


def _label_for(recipe_path: str | None) -> Any:
    """How a config error names the setting: the flag, or flag-or-recipe-key with a recipe."""
    if recipe_path is None:
        return flag_label
    return lambda name: f"{flag_label(name)} (recipe key '{name}' in {recipe_path})"


def _int_or_auto(text: str) -> int | str:
    try:
        return int_or_auto(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_ARG_TYPES: dict[str, Any] = {
    "int": int,
    "float": float,
    "int_list": int,
    "float_list": float,
    "int_auto": _int_or_auto,
}


def _show(v: Any) -> str:
    return " ".join(map(str, v)) if isinstance(v, tuple) else str(v)


def _err(message: str) -> None:
    print(f"drbench: {message}", file=sys.stderr)
