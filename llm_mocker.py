#!/usr/bin/env python3
"""Thin entry point; the work is done in drbench.mocker.server."""

from drbench.mocker.server import main

if __name__ == "__main__":
    raise SystemExit(main())
