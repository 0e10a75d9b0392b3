#!/usr/bin/env python3
"""Thin entry point; the work is done in drbench.convert.longbench."""

from drbench.convert.longbench import main

if __name__ == "__main__":
    raise SystemExit(main())
