"""Read LongBench records: local JSONL files, or the Hugging Face hub through ``datasets``.

Local reading (``--input`` / ``--input-dir``) never touches the network.  Hub reading imports
``datasets`` only when called, tries ``load_dataset(repo, subset, split="test")`` first, then the
repository's Parquet layout (``{subset}/test-*.parquet``) and the JSONL layout of LongBench's
``data.zip`` (``data/{subset}.jsonl``): ``datasets>=4`` no longer runs the loading script the repo
once had.  ``repo`` may be a local folder laid out like the hub repo.  An unreachable hub is one
DatasetError that suggests ``--input-dir``, found in seconds by ``check_hub_reachable`` (one TCP
connection to the hub's host) before ``datasets`` is even imported.  Prompt building is in longbench_template.py.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from drbench.convert.jsonl import read_items
from drbench.convert.longbench_template import LongBenchSpec
from drbench.errors import DatasetError, UsageError

__all__ = [
    "HUB_REPO",
    "NO_DATASETS",
    "SourceRecord",
    "check_hub_reachable",
    "hub_problem",
    "input_dir_files",
    "load_hub",
    "read_local",
    "require_datasets",
]

HUB_REPO = "THUDM/LongBench"
HUB_ENDPOINT = "https://huggingface.co"  # huggingface_hub's default; HF_ENDPOINT overrides it
PROBE_TIMEOUT_S = 5.0
_PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")
_TRUE = {"1", "on", "yes", "true"}
_SUFFIXES = (".jsonl", ".json")


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One raw LongBench record, the subset it belongs to, and where it came from."""

    subset: str
    where: str
    fields: dict[str, Any]


def input_dir_files(directory: str | Path) -> list[Path]:
    """The ``*.jsonl`` / ``*.json`` files of a folder (not its subfolders), sorted by name."""
    d = Path(directory)
    if not d.is_dir():
        raise UsageError(f"--input-dir {directory}: no such directory")
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix in _SUFFIXES)
    if not files:
        raise UsageError(f"--input-dir {directory}: holds no .jsonl or .json files")
    return files


def read_local(
    files: Sequence[Path],
    spec: LongBenchSpec,
    *,
    subset: str | None = None,
    wanted: Sequence[str] = (),
    required: Sequence[str] = (),
) -> list[SourceRecord]:
    """Every record of the files, each with its subset (``subset``, else file name, else field).

    With ``wanted``, only records of those subsets are kept; a ``required`` subset (one the
    user named, not one ``all`` expanded to) that no file holds is an error.
    """
    records: list[SourceRecord] = []
    for path in files:
        for item in read_items(path, flag="--input"):
            if not isinstance(item.obj, dict):
                raise DatasetError(
                    f"{item.where}: expected a JSON object, got {type(item.obj).__name__}"
                )
            name = subset or _subset_of(path, item.obj, item.where, spec)
            if not wanted or name in wanted:
                records.append(SourceRecord(name, item.where, item.obj))
    missing = [w for w in required if not any(r.subset == w for r in records)]
    if missing:
        raise UsageError(
            f"--dataset {' '.join(missing)}: no such records in the input files "
            f"({', '.join(p.name for p in files)})"
        )
    return records


def load_hub(
    subset: str,
    *,
    repo: str = HUB_REPO,
    cache_dir: str | None = None,
    loader: Callable[..., Any] | None = None,
) -> list[SourceRecord]:
    """One subset's test split from the hub (or a local copy of the repo), as records.

    ``loader`` stands in for ``datasets.load_dataset`` in tests.
    """
    load = loader or _datasets_loader()
    attempts = [((repo, subset), {"split": "test"}), *_fallbacks(repo, subset)]
    first_error: Exception | None = None
    for args, kwargs in attempts:
        try:
            rows = load(*args, cache_dir=cache_dir, **kwargs)
        except ConnectionError as exc:  # also datasets' OfflineModeIsEnabled
            raise DatasetError(_unreachable(repo, exc)) from None
        except Exception as exc:  # datasets raises many types for "not in this layout"
            first_error = first_error or exc
            continue
        where = f"{repo}:{subset}"
        return [SourceRecord(subset, f"{where}[{i}]", dict(row)) for i, row in enumerate(rows)]
    tried = f"its configs, {subset}/test-*.parquet" + (
        f", data/{subset}.jsonl" if Path(repo).is_dir() else ""
    )
    hint = "" if Path(repo).is_dir() else "; download the files and use --input-dir"
    raise DatasetError(
        f"{repo}: cannot find subset {subset!r} (tried {tried}: {_one_line(first_error)}){hint}"
    )


def check_hub_reachable(repo: str, environ: Mapping[str, str] | None = None) -> None:
    """Fail in seconds, with one line, when the hub's host cannot be resolved or connected to.

    Without this, ``datasets``/``huggingface_hub`` retry for about 20 seconds and log every
    attempt before failing.  Skipped for a local repository folder, with ``HF_HUB_OFFLINE``
    set (the cache is then used) and behind a proxy (a direct connection would prove nothing).
    """
    env = os.environ if environ is None else environ
    if Path(repo).is_dir() or env.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        return
    if any(env.get(v) or env.get(v.lower()) for v in _PROXY_VARS):
        return
    problem = hub_problem(env.get("HF_ENDPOINT") or HUB_ENDPOINT)
    if problem:
        raise DatasetError(_unreachable(repo, problem))


def hub_problem(endpoint: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Why a TCP connection to the endpoint's host cannot be opened (one phrase), or None."""
    parts = urlsplit(endpoint.strip())
    try:
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        return f"HF_ENDPOINT {endpoint!r} is not a URL ({exc})"
    if not host:
        return f"HF_ENDPOINT {endpoint!r} has no host"
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except socket.gaierror as exc:
        return f"cannot resolve {host}: {exc.strerror or exc}"
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc.strerror or exc}"
    return None


def _subset_of(path: Path, obj: dict[str, Any], where: str, spec: LongBenchSpec) -> str:
    if spec.is_known(path.stem):
        return path.stem
    field = obj.get("dataset")
    if isinstance(field, str) and spec.is_known(field):
        return field
    if field is None:
        raise DatasetError(
            f"{where}: cannot tell the subset: the file name {path.stem!r} is not a LongBench "
            "subset and the record has no 'dataset' field; rename the file (e.g. hotpotqa.jsonl) "
            "or give --dataset NAME"
        )
    raise DatasetError(spec.unknown_message(str(field), f"{where}: field 'dataset'"))


def _fallbacks(repo: str, subset: str) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """Other places the same data lives: Parquet per config, and data.zip's JSONL files."""
    local = Path(repo).is_dir()
    base = repo if local else f"hf://datasets/{repo}"
    out: list[tuple[tuple[str, ...], dict[str, Any]]] = [
        (("parquet",), {"data_files": {"test": f"{base}/{subset}/test-*.parquet"}})
    ]
    if local:
        out.append((("json",), {"data_files": {"test": f"{base}/data/{subset}.jsonl"}}))
    for _, kwargs in out:
        kwargs["split"] = "test"
    return out


NO_DATASETS = (
    "loading LongBench from the hub needs the 'datasets' package (~260 MB with pyarrow and "
    "pandas, so not in requirements.txt): pip install -r requirements-hub.txt, or pip install "
    "'.[hub]'; or download the JSONL files and use --input-dir DIR"
)


def require_datasets() -> None:
    """A one-line UsageError when ``datasets`` (the ``hub`` extra) is not installed; checked
    before the hub probe, so a missing package is said before any network wait. No import."""
    if importlib.util.find_spec("datasets") is None:
        raise UsageError(NO_DATASETS)


def _datasets_loader() -> Callable[..., Any]:
    try:
        import datasets
    except ImportError:
        raise UsageError(NO_DATASETS) from None
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    return datasets.load_dataset


def _unreachable(repo: str, exc: Exception | str) -> str:
    reason = exc if isinstance(exc, str) else _one_line(exc)
    return (
        f"cannot reach the Hugging Face hub for {repo} ({reason}); download the LongBench "
        "JSONL files (data.zip of https://huggingface.co/datasets/THUDM/LongBench), unzip them "
        "and use --input-dir DIR"
    )


def _one_line(exc: Exception | None) -> str:
    text = str(exc).strip().splitlines()[0] if exc and str(exc).strip() else type(exc).__name__
    return text[:200]
