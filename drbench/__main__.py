"""``python -m drbench``: the same command line as dual_round_benchmarker.py (drbench.cli).

Only an entry point; it works from any directory where the package imports, with no script on
the path.
"""

from __future__ import annotations

from drbench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
