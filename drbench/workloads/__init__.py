"""Cache workloads the field uses, generated as ordinary benchmark records (docs/workloads.md).

``shared-prefix`` (SGLang generated-shared-prefix), ``sessions`` (LMCache multi-round-qa),
``long-doc`` (LMCache long_doc_qa) and ``mooncake`` (FAST'25 trace replay).  Each is a module
with a frozen parameters dataclass and a ``generate``; params.py parses ``key=value`` items and
dispatches.  Pure: no network, no clock, no config import; only mooncake reads a file.
"""

from __future__ import annotations

from drbench.workloads.params import WORKLOADS, generate, parse_workload, workload_help
from drbench.workloads.workload import Workload

__all__ = ["WORKLOADS", "Workload", "generate", "parse_workload", "workload_help"]
