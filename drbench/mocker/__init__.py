"""The OpenAI-compatible mock LLM server (``llm_mocker.py``); see docs/mocker_guide.md.

Modules, front to back::

    server.py     aiohttp routes, completion handlers, main()        (HTTP in, responses out)
    request.py    body validation -> ParsedRequest, OpenAI-style 400/404s          (pure)
    tokenizer.py  toy tokenizer, chat template, filler text                         (pure)
    timing.py     TTFT/ITL math, output-length draws, per-request plan and faults   (pure)
    engine.py     scheduler, wait queue and the ONE step loop producing every token
    cache.py      chained block hashes, LRU prefix cache                            (pure)
    sink.py       writes a stream's pre-built SSE chunks straight to its transport
    shape.py      stream quirks of real servers: which texts go in which chunk      (pure)
    wire.py       OpenAI wire format as bytes templates and dicts                   (pure)
    metrics.py    vLLM, SGLang or LMCache Prometheus metrics on a registry of the server's own
    trace.py      --trace JSONL writer (buffered, flushed every 0.5 s)
    reqlog.py     the bounded log of request bodies behind /debug/requests          (pure)
    guard.py      closes a connection whose first request head is late (slowloris)
    config.py     MockerConfig (every default) and the flags
    process.py    MockerProcess: run the server as a child process (tests, demo, bench)
"""
