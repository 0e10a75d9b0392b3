"""Dual Round Benchmarker: send the same prompts twice (cold, then warm) to an OpenAI-compatible
endpoint at several concurrency levels, time every token, and report what the cache bought."""

__version__ = "0.1.0"
