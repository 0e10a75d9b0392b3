#!/usr/bin/env python3
"""Thin entry point; the work is done in drbench.convert.sharegpt."""

from drbench.convert.sharegpt import main

if __name__ == "__main__":
    raise SystemExit(main())
