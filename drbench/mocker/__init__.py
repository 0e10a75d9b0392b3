"""The OpenAI-compatible mock LLM server: aiohttp front end, simulated engine, prefix cache."""
