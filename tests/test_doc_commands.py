"""Every command in README.md, docs/*.md and the benchmarker's --help examples runs, so the docs
cannot drift from the tool again.

The fenced ``bash`` blocks are read as a user would paste them: ``\\`` continues a line, ``#``
starts a comment, ``a && b`` is two commands, ``python - <<'PY' ... PY`` is one, and a block
with a ``set -e...`` line is a script run whole by bash. Each document's commands run in order,
in a tmp directory holding copies of examples/ and datasets/ (so a converter's ``--output
datasets/...`` or a run's ``results/...`` never touches the checkout, and tests on other
workers never share a file), against a mocker this test starts. Benchmarker commands run
in-process through ``main()`` (their imports paid once); the others as subprocesses. What is changed, and only this:

- ``http://localhost:8000`` and ``http://127.0.0.1:8000`` (in commands and in the copied recipes)
  become the mocker's URL; ``python`` is this interpreter, with the checkout on PYTHONPATH.
- A benchmarker run (not ``--dry-run``, ``--help`` nor ``--write-workload``) is made small: ``--num-samples N``
  becomes ``min(N, 4)`` after checking that the file holds N records (what the real run checks,
  so "50 of a 10-record file" still fails here), ``--num-samples 4`` is added when absent
  (not to a ``--sweep`` or ``--slo-search``, whose values generate their own sizes),
  ``--request-rate`` and ``--speedup`` values are multiplied by 100, ``--ramp-up`` becomes 0.1,
  ``--warmup`` at most 2, and ``--no-plots`` plus ``--output-dir results/doc-K`` (when absent) are
  added.
- An output under ``/tmp/`` goes under the tmp directory's ``tmp/`` instead.
- ``llm_mocker.py --port 8000`` listens on port 0, and is stopped once it says it is serving.
- A ``python -`` snippet that reads ``results/NAME/summary.json`` gets one first, from a short
  run at a rate level (the snippet exits 0 or 1, its gate's answer, never with a traceback).

Commands that cannot run here are listed in ``SKIPPED_BY_DESIGN`` with the reason; an entry that
no longer matches any command fails the test, so the list cannot go stale either.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from drbench.cli import _EPILOG, PROG, main

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")))
MAX_SAMPLES = 4
TIMEOUT_S = 180

#: (pattern, why it does not run here); each must match at least one command of the docs.
SKIPPED_BY_DESIGN: tuple[tuple[str, str], ...] = (
    (r"^pip install ", "installs packages: the suite runs where they are installed"),
    (r"^python -m pytest ", "runs the test suite this test is part of"),
    (r"^bash tests/test_recipe_env_integration\.sh", "tests/test_recipe_integration.py runs it"),
    (r"^python tests/test_prometheus\.py", "the Prometheus integration tests, part of the suite"),
    (r"^wget .*Mooncake", "downloads the full Mooncake trace from GitHub (network)"),
    (r"^python convert_longbench\.py --dataset \w+ ", "downloads LongBench from the HF hub"),
    (r"^ray start ", "starts a node of a real Ray cluster (tests/test_ray_executor.py starts one)"),
    (
        r"^(?!.*--dry-run).*--executor ray ",
        "needs a Ray cluster: tests/test_ray_executor.py runs the executor on a local one",
    ),
    (r"^'?(HEAD_POD=|kubectl )", "needs a Kubernetes cluster with the KubeRay operator"),
    (
        r"--fail-on-regression ",
        "its exit code is the verdict on two runs' noise; tests/test_examples.py runs "
        "examples/ci_regression.sh, which gates with it, and tests/test_compare.py the gates",
    ),
)


@dataclass(frozen=True)
class Command:
    source: str  # "README.md" or "--help"
    text: str  # one logical command, or a whole script
    stdin: str | None = None  # a heredoc's body
    script: bool = False


def doc_commands(name: str) -> list[Command]:
    """The commands of one document, in order."""
    if name == "--help":
        return _commands(name, _help_examples())
    text = (ROOT / name).read_text(encoding="utf-8")
    out: list[Command] = []
    for block in re.findall(r"^```(?:bash|sh|shell)\n(.*?)^```", text, re.S | re.M):
        if re.search(r"^set -e", block, re.M):
            out.append(Command(name, block, script=True))
        else:
            out.extend(_commands(name, block))
    return out


def _help_examples() -> str:
    lines = _EPILOG.split("examples:\n", 1)[1].split("\n\n", 1)[0]
    return re.sub(rf"^\s*{re.escape(PROG)}", f"python {PROG}", lines, flags=re.M)


def _commands(source: str, block: str) -> list[Command]:
    lines = re.sub(r"\\\n\s*", " ", block).splitlines()
    out: list[Command] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        heredoc = re.search(r"<<'?(\w+)'?", line)
        if heredoc:
            end = lines.index(heredoc.group(1), i)
            body = "\n".join(lines[i:end]) + "\n"
            out.append(Command(source, line[: heredoc.start()].strip(), stdin=body))
            i = end + 1
            continue
        while True:  # a quote left open goes on on the next line ('{ ... }' over lines)
            try:
                words = shlex.split(line, comments=True)
                break
            except ValueError:
                if i == len(lines):
                    raise
                line, i = line + "\n" + lines[i], i + 1
        part: list[str] = []
        for word in [*words, "&&"]:
            if word == "&&":
                out.append(Command(source, shlex.join(part)))
                part = []
            else:
                part.append(word)
    return out


def skip_reason(cmd: Command) -> str | None:
    for pattern, reason in SKIPPED_BY_DESIGN:
        if re.search(pattern, cmd.text):
            return reason
    return None


# -- running ---------------------------------------------------------------------------------


def workdir(tmp: Path, base_url: str) -> Path:
    for name in ("examples", "datasets"):
        shutil.copytree(ROOT / name, tmp / name)
    for recipe in (tmp / "examples").glob("*.yaml"):
        recipe.write_text(_urls(recipe.read_text(encoding="utf-8"), base_url), encoding="utf-8")
    (tmp / "tests").symlink_to(ROOT / "tests")
    for script in ROOT.glob("*.py"):
        (tmp / script.name).symlink_to(script)
    return tmp


def _urls(text: str, base_url: str) -> str:
    return re.sub(r"http://(localhost|127\.0\.0\.1):8000", base_url, text)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("OPENAI_API_KEY", None)
    return env


def benchmark_argv(words: list[str], cwd: Path, index: int) -> list[str]:
    """A benchmarker command made small (the module docstring lists every change)."""
    if {"--dry-run", "--help", "--version", "--write-workload"} & set(words):
        return words
    out: list[str] = []
    flag = ""
    for word in words:
        if word.startswith("--"):
            flag = word
            out.append(word)
            continue
        if flag == "--num-samples":
            _check_samples(words, cwd, int(word))
            word = str(min(int(word), MAX_SAMPLES))
        elif flag in ("--request-rate", "--speedup") and word != "inf":
            word = f"{float(word) * 100:g}"
        elif flag == "--ramp-up":
            word = "0.1"
        elif flag == "--warmup":
            word = str(min(int(word), 2))
        out.append(word)
    if "--num-samples" not in words and not {"--sweep", "--slo-search"} & set(words):
        out += ["--num-samples", str(MAX_SAMPLES)]  # a sweep's values have their own sizes
    if "--output-dir" not in words:
        out += ["--output-dir", f"results/doc-{index}"]
    return [*out, "--no-plots"]


def _check_samples(words: list[str], cwd: Path, wanted: int) -> None:
    if "--dataset" not in words:
        return
    from drbench.dataset import load_prompts  # noqa: PLC0415

    path = cwd / words[words.index("--dataset") + 1]
    held = len(load_prompts(str(path)))
    assert wanted <= held, f"--num-samples {wanted} of {path.name}, which holds {held} records"


def run_command(cmd: Command, cwd: Path, base_url: str, index: int) -> None:
    (cwd / "tmp").mkdir(exist_ok=True)
    text = _urls(cmd.text, base_url).replace(" /tmp/", f" {cwd}/tmp/")
    where = f"{cmd.source}: {cmd.text[:200]}"
    if cmd.script:
        done = _run(["bash", "-c", text], cwd)
        assert done.returncode == 0, f"{where}\n{done.stderr[-3000:]}"
        return
    words = shlex.split(text)
    if words[0] == "python":
        words[0] = sys.executable
    if cmd.stdin is not None:
        _prepare_summary(cmd.stdin, cwd, base_url)
        done = _run(words, cwd, stdin=cmd.stdin)
        assert done.returncode in (0, 1) and "Traceback" not in done.stderr, (
            f"{where}\n{done.stderr[-3000:]}"
        )
        return
    if words[1:2] == ["llm_mocker.py"]:
        _serve_once(words, cwd)
        return
    if words[1:2] == ["dual_round_benchmarker.py"]:
        argv = benchmark_argv(words[2:], cwd, index)
        status, out, err = _main_in(cwd, argv)
        assert status == 0, f"{where}\n{out[-2000:]}\n{err[-3000:]}"
        return
    if words[0] == "curl":
        words = [*words[:1], "-sS", "--max-time", "30", *words[1:]]
    done = _run(words, cwd)
    assert done.returncode == 0, f"{where}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    if words[0] == "curl":
        assert "data: [DONE]" in done.stdout, where


def _main_in(cwd: Path, argv: list[str]) -> tuple[int, str, str]:
    """The benchmarker's main() in this process (its imports are paid once, not per command),
    run from ``cwd``; tests on one xdist worker run one at a time, so the chdir is theirs."""
    out, err = io.StringIO(), io.StringIO()
    before = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(argv)
    finally:
        os.chdir(before)
    return status, out.getvalue(), err.getvalue()


def _run(argv: list[str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def _serve_once(words: list[str], cwd: Path) -> None:
    """A documented mocker start, on port 0: it must say it serves; then it is stopped."""
    if "--port" in words:
        words[words.index("--port") + 1] = "0"
    proc = subprocess.Popen(
        words, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "serving on http://" in line, f"{shlex.join(words)}: {line!r}"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _prepare_summary(snippet: str, cwd: Path, base_url: str) -> None:
    for rel in re.findall(r"results/[\w.-]+/summary\.json", snippet):
        if (cwd / rel).exists():
            continue
        argv = [sys.executable, "dual_round_benchmarker.py", "--endpoint", base_url]
        argv += ["--dataset", "examples/example_dataset.json", "--num-samples", "4"]
        argv += ["--request-rate", "200", "--no-plots", "--quiet"]
        done = _run([*argv, "--output-dir", str(Path(rel).parent)], cwd)
        assert done.returncode == 0, done.stderr[-3000:]
        json.loads((cwd / rel).read_text())


# -- the tests -------------------------------------------------------------------------------


def test_every_document_has_commands_and_the_skips_are_all_used() -> None:
    commands = [c for name in (*DOCS, "--help") for c in doc_commands(name)]
    assert {c.source for c in commands} == {*DOCS, "--help"}
    for pattern, reason in SKIPPED_BY_DESIGN:
        hits = [c for c in commands if re.search(pattern, c.text)]
        assert hits, f"SKIPPED_BY_DESIGN {pattern!r} ({reason}) matches no command any more"
    assert all(c.text for c in commands)


def test_a_block_reads_as_a_shell_would() -> None:
    block = (
        "# a comment\n"
        "pip install -r requirements.txt && python x.py --demo   # trailing\n"
        "python y.py \\\n  --a '{\"k\": 1}' \\\n  --b 2\n"
        "python - <<'PY'\nprint(1)\nPY\n"
    )
    got = _commands("t", block)
    assert [c.text for c in got] == [
        "pip install -r requirements.txt",
        "python x.py --demo",
        "python y.py --a '{\"k\": 1}' --b 2",
        "python -",
    ]
    assert got[-1].stdin == "print(1)\n"


def test_a_run_is_made_small_but_a_wrong_sample_count_still_fails(tmp_path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    words = ["--dataset", "examples/example_dataset.json", "--num-samples", "10"]
    argv = benchmark_argv([*words, "--request-rate", "2", "inf", "--ramp-up", "10"], tmp_path, 3)
    assert argv == [
        *words[:3],
        "4",
        "--request-rate",
        "200",
        "inf",
        "--ramp-up",
        "0.1",
        "--output-dir",
        "results/doc-3",
        "--no-plots",
    ]
    with pytest.raises(AssertionError, match="--num-samples 50 of example_dataset.json"):
        benchmark_argv([*words[:3], "50"], tmp_path, 0)


@pytest.mark.slow
@pytest.mark.parametrize("name", [*DOCS, "--help"])
def test_every_command_runs(name: str, fast_mocker, tmp_path: Path) -> None:
    mock = fast_mocker  # the worker's shared one: these runs need answers, not a fresh cache
    cwd = workdir(tmp_path, mock.base_url)
    ran = 0
    for index, cmd in enumerate(doc_commands(name)):
        if skip_reason(cmd) is None:
            run_command(cmd, cwd, mock.base_url, index)
            ran += 1
    assert ran > 0
