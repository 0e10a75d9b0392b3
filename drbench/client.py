"""One streaming request over a shared aiohttp session, timed at the moment its bytes arrive.

The hot loop does three things per network chunk: await it, take its arrival stamp, append.
The stamp is the one socket_stamps.py's protocol noted when the bytes came off the socket (falling back
to ``perf_counter_ns()`` at task wake-up when the connection does not stamp).  The request's own
stamp (``send_ns``, the origin of TTFT and latency) is the protocol's too: when its last byte was
handed to the kernel, not when ``session.post`` was called (connection wait, request building and
aiohttp's deferred body write are not the server's time); ``perf_counter_ns()`` before the post
when the connection does not stamp or no response came.
Request bodies are JSON-encoded before the round starts; decoding and parsing happen after the
stream ends (response.py).  Transport failures become data on the RawExchange, never exceptions.
Also here: the endpoint's shape (chat or completions), the model list, the preflight request and
the cache-reset call, which all share the session and the error wording.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from functools import cached_property
from time import perf_counter_ns
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp

from drbench.errors import PreflightError, UsageError
from drbench.messages import Message
from drbench.prometheus.profiles import reset_hint
from drbench.records import EndpointKind, ErrorKind, Prompt
from drbench.redact import basic_auth_forms, is_secret_header, mask_secrets
from drbench.response import RawExchange, error_message, parse_exchange
from drbench.socket_stamps import StampLog, attach, make_connector, sent_ns
from drbench.tokens import EstimateCounter, TokenCounter
from drbench.urls import resolve_endpoint

__all__ = [
    "Endpoint",
    "ModelInfo",
    "PreparedRequest",
    "check_reset",
    "list_models",
    "make_session",
    "post_reset",
    "preflight",
    "send",
    "split_userinfo",
]

_DONE = b"[DONE]"
_AFTER_DONE_WAIT_S = 2.0  # a server may hold the connection after [DONE]; don't wait for --timeout
_ERROR_BODY_LIMIT = 4096
_RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}
_RETRY_AFTER_CAP_S = 30.0  # the preflight honours Retry-After up to this
_MODELS_BODY_LIMIT = 4 * 1024 * 1024
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
MAX_READS = (
    1 << 20
)  # reads kept per response: a server dribbling bytes cannot grow the list past it


@dataclass(frozen=True)
class Endpoint:
    """The target URL, whether it speaks chat or completions, and the request headers.

    Credentials in the URL (``http://user:pass@host/...``) are taken out of it and sent as HTTP
    basic auth, so ``url`` itself is safe to print; aiohttp refuses a URL with credentials and an
    Authorization header together, so they cannot be combined with ``--api-key``.
    """

    url: str
    kind: EndpointKind
    api_key: str | None = None
    basic_auth: str | None = None  # "user:password" taken from the URL
    extra_headers: tuple[tuple[str, str], ...] = ()  # --header, checked by extras.parse_headers
    extra_body: dict[str, Any] = field(default_factory=dict)  # --extra-body, merged last
    ignore_eos: bool = False  # --ignore-eos

    @classmethod
    def parse(
        cls,
        url: str,
        api_key: str | None = None,
        kind: EndpointKind | None = None,
        *,
        headers: tuple[tuple[str, str], ...] = (),
        extra_body: dict[str, Any] | None = None,
        ignore_eos: bool = False,
    ) -> Endpoint:
        """The endpoint of ``--endpoint`` (a full or base URL) and ``--endpoint-type``."""
        url, userinfo = split_userinfo(url.strip())
        if userinfo and api_key:
            raise UsageError(
                "--endpoint carries user:password@ and an API key is set too (--api-key or "
                "$OPENAI_API_KEY): both would be the Authorization header; drop one of them"
            )
        if userinfo and any(n.lower() == "authorization" for n, _ in headers):
            raise UsageError(
                "--endpoint carries user:password@ and --header Authorization is given too: "
                "both would be the Authorization header; drop one of them"
            )
        try:
            url, said = resolve_endpoint(url, kind)
        except ValueError as exc:
            raise UsageError(f"--endpoint: {exc}") from None
        return cls(url, said, api_key, userinfo, headers, dict(extra_body or {}), ignore_eos)

    @property
    def models_url(self) -> str:
        """GET /v1/models beside the endpoint's path (a query string, if any, is kept)."""
        parts = urlsplit(self.url)
        suffix = "/chat/completions" if self.kind == "chat" else "/completions"
        base = parts.path.rstrip("/")[: -len(suffix)]
        return urlunsplit(parts._replace(path=base + "/models"))

    @cached_property
    def headers(self) -> dict[str, str]:
        """Built once: every request of the run sends the same headers."""
        h = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        elif self.basic_auth:
            h["Authorization"] = "Basic " + basic_auth_forms(self.basic_auth)[1]
        h.update(self.extra_headers)
        return h

    @cached_property
    def secrets(self) -> tuple[str, ...]:
        """What a server must not get to echo into a record: the key, the basic-auth forms."""
        auth = basic_auth_forms(self.basic_auth) if self.basic_auth else ()
        sent = tuple(v for n, v in self.extra_headers if is_secret_header(n))
        return tuple(s for s in (self.api_key, *auth, *sent, *_bearer_tokens(sent)) if s)

    def redact(self, text: str) -> str:
        """Text with the credentials masked, in case a server echoes them back in an error."""
        return mask_secrets(text, self.secrets) if text else text

    def body(
        self,
        prompt: Prompt,
        *,
        model: str,
        max_tokens: int,
        temperature: float,
        messages: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The request body: the path decides between ``messages`` and ``prompt``; then
        ``ignore_eos`` and the ``--extra-body`` fields (which never hold a key set here)."""
        body: dict[str, Any] = {"model": model}
        if self.kind == "chat":
            body["messages"] = messages if messages is not None else prompt.as_messages()
        else:
            body["prompt"] = prompt.as_text() if messages is None else _flatten(messages)
        body.update(
            max_tokens=max_tokens,
            temperature=temperature,
            stream=True,
            stream_options={"include_usage": True},
        )
        if self.ignore_eos:
            body["ignore_eos"] = True
        if self.extra_body:
            body.update(self.extra_body)
        return body


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """A request ready to send: its body is encoded once, before the round starts."""

    prompt_id: str
    body: bytes
    prompt_tokens: int  # counted before the round (used only when the server sends no usage)
    payload: dict[str, Any]  # the decoded body, kept to build multi-turn follow-ups from

    @property
    def max_tokens(self) -> int | None:
        return self.payload.get("max_tokens")

    def for_sender(self) -> PreparedRequest:
        """What another process needs to send it: the body, without the decoded payload (a
        second copy of a long prompt) but for the max_tokens its record reports."""
        kept = {"max_tokens": self.payload["max_tokens"]} if "max_tokens" in self.payload else {}
        return PreparedRequest(self.prompt_id, self.body, self.prompt_tokens, kept)

    @classmethod
    def of(
        cls, prompt_id: str, payload: dict[str, Any], counter: TokenCounter | None = None
    ) -> PreparedRequest:
        messages = payload.get("messages")
        if messages:
            text = "".join(str(m.get("content") or "") for m in messages)
        else:
            text = payload.get("prompt") or ""
        body = json.dumps(payload, ensure_ascii=False).encode()
        tokens = (counter or EstimateCounter()).count(text)
        return cls(prompt_id=prompt_id, body=body, prompt_tokens=tokens, payload=payload)


def _bearer_tokens(values: tuple[str, ...]) -> tuple[str, ...]:
    """The credential of ``Bearer X`` / ``Basic X`` header values, which a server may echo alone."""
    return tuple(v.split(None, 1)[1] for v in values if len(v.split(None, 1)) == 2)


def make_session(timeout_s: float) -> aiohttp.ClientSession:
    """One pooled keep-alive session for the whole run (connection setup is paid once per slot).

    The pool has no limit: the level's pacer decides how many requests are in flight, never the
    pool (a pool of C connections would quietly turn an open loop into a closed one)."""
    connector = make_connector(limit=0, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(timeout_s, 30.0)),
        raise_for_status=False,
    )


async def send(
    session: aiohttp.ClientSession,
    endpoint: Endpoint,
    req: PreparedRequest,
    timeout_s: float,
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> RawExchange:
    """Send one streaming request and collect its time-stamped chunks; never raises for I/O.

    ``timeout_s`` is a deadline for the whole response (the session's total timeout); a response
    of more than ``max_bytes`` (or ``MAX_READS`` reads) is cut there and fails as ``oversize``.
    """
    raw = RawExchange(send_ns=perf_counter_ns())  # kept if the request fails before a response
    try:
        async with session.post(endpoint.url, data=req.body, headers=endpoint.headers) as resp:
            raw.send_ns = sent_ns(resp, raw.send_ns)
            raw.status = resp.status
            if resp.status >= 300:
                body = await resp.content.read(_ERROR_BODY_LIMIT)
                raw.end_ns = perf_counter_ns()
                raw.body = endpoint.redact(body.decode("utf-8", "replace"))
                return raw
            raw.content_type = resp.headers.get("Content-Type")
            arrivals = attach(resp)
            raw.socket_stamps = arrivals is not None
            try:
                if not await _read_stream(resp.content, raw, arrivals, max_bytes):
                    resp.close()  # over the cap, or babbling after [DONE]: drop the connection
            finally:
                if arrivals is not None:
                    arrivals.detach()
    except asyncio.TimeoutError:
        _fail(raw, ErrorKind.TIMEOUT, f"timed out after {timeout_s:g} s (--timeout)")
    except aiohttp.ClientConnectorError as exc:
        _fail(
            raw, ErrorKind.CONNECTION, f"cannot connect to {exc.host}:{exc.port} ({exc.os_error})"
        )
    except aiohttp.ClientPayloadError as exc:
        _fail(raw, ErrorKind.STREAM, f"stream broken after {len(raw.chunks)} chunks: {_why(exc)}")
    except aiohttp.ServerDisconnectedError:
        _fail(
            raw,
            ErrorKind.CONNECTION,
            f"server closed the connection after {len(raw.chunks)} chunks",
        )
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        _fail(raw, ErrorKind.CONNECTION, endpoint.redact(f"{type(exc).__name__}: {exc}"))
    return raw


async def _read_stream(
    content: aiohttp.StreamReader, raw: RawExchange, arrivals: StampLog | None, max_bytes: int
) -> bool:
    """The timing path: stamp every chunk on arrival; stop at end of body or soon after [DONE].

    Returns whether the connection can be reused: False when the response passed the size cap
    (recorded on ``raw``) or the server kept sending or holding the connection after [DONE].
    """
    chunks = raw.chunks
    append, extend = chunks.append, chunks.extend
    read = content.readany
    split = arrivals.split if arrivals is not None else None
    last = b""
    size = 0
    while True:
        data = await read()
        t = perf_counter_ns()
        if not data:
            raw.end_ns = t
            return True
        if split is None:
            append((t, data))
        else:
            pieces = split(data, t)
            extend(pieces)
            t = pieces[-1][0]
        size += len(data)
        if size > max_bytes or len(chunks) > MAX_READS:
            _fail(raw, ErrorKind.OVERSIZE, _oversize(size, len(chunks), max_bytes))
            raw.end_ns = t
            return False
        # [DONE] in this read, or cut between the last one and this (its "]" among the first
        # five bytes): the slices are built only then
        if _DONE in data or (data.find(b"]", 0, 5) >= 0 and _DONE in last[-6:] + data[:6]):
            raw.end_ns = t
            break
        last = data
    if arrivals is not None:
        arrivals.detach()
    drained = 0
    try:  # drain the rest so the connection can be reused, but do not wait on a held stream
        while data := await asyncio.wait_for(content.readany(), _AFTER_DONE_WAIT_S):
            drained += len(data)
            if drained > _ERROR_BODY_LIMIT:
                return False  # still talking after [DONE]: not a connection to reuse
    except asyncio.TimeoutError:
        return False
    return True


def _oversize(size: int, reads: int, max_bytes: int) -> str:
    if reads > MAX_READS:
        return f"response cut after {reads} reads ({size} bytes): more than {MAX_READS} reads"
    return (
        f"response cut after {size} bytes, over --max-response-bytes {max_bytes}: "
        "an endless or oversized stream"
    )


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One entry of GET /v1/models; vLLM also lists the model's context length."""

    id: str
    max_model_len: int | None = None


async def open_connections(
    session: aiohttp.ClientSession, endpoint: Endpoint, n: int, timeout_s: float = 5.0
) -> int:
    """Open up to ``n`` pooled connections before a level, with ``n`` concurrent GETs of the
    models list, so that the level's first wave does not pay n TCP handshakes (the client's
    and the server's CPU) while its first streams are being timed.  Failures are ignored: the
    level then connects as it goes.  Returns how many answered."""

    async def one() -> bool:
        try:
            async with session.get(endpoint.models_url, headers=endpoint.headers) as resp:
                await resp.content.read(_MODELS_BODY_LIMIT)
                return resp.status < 500
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError):
            return False

    tasks = [asyncio.ensure_future(one()) for _ in range(max(0, n))]
    if not tasks:
        return 0
    done, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return sum(1 for t in done if not t.cancelled() and t.exception() is None and t.result())


async def list_models(session: aiohttp.ClientSession, endpoint: Endpoint) -> list[ModelInfo]:
    """The models GET /v1/models lists; a PreflightError says what to pass instead."""
    url = endpoint.models_url
    try:
        async with session.get(url, headers=endpoint.headers) as resp:
            text = (await resp.content.read(_MODELS_BODY_LIMIT)).decode("utf-8", "replace")
            if resp.status != 200:
                raise PreflightError(
                    f"cannot list models at {url} (HTTP {resp.status}: {error_message(text)}); "
                    "check the path of --endpoint, or pass --model NAME"
                )
            data = json.loads(text).get("data") or []
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        raise PreflightError(_unreachable(url, exc)) from None
    except (ValueError, AttributeError, RecursionError):
        raise PreflightError(
            f"{url} did not return a model list: check the path of --endpoint, or pass --model NAME"
        ) from None
    return [
        ModelInfo(m["id"], _count_or_none(m.get("max_model_len")))
        for m in (data if isinstance(data, list) else [])
        if isinstance(m, dict) and isinstance(m.get("id"), str)
    ]


async def preflight(
    session: aiohttp.ClientSession,
    endpoint: Endpoint,
    model: str,
    timeout_s: float,
    *,
    max_tokens: int = 1,
    attempts: int = 4,
    backoff_s: float = 0.5,
) -> list[str]:
    """One real request before any round, with the run's largest ``max_tokens``, so a limit the
    server refuses stops the run before it starts; it is read only up to its first token.
    Transient failures are retried a few times, honouring Retry-After up to a cap; returns what
    the caller should tell the user about those waits."""
    probe = Prompt(id="preflight", text="Say OK.")
    body = endpoint.body(probe, model=model, max_tokens=max_tokens, temperature=0.0)
    req = PreparedRequest.of("preflight", body)
    notes: list[str] = []
    for attempt in range(1, attempts + 1):
        raw, retry_after = await _first_token(session, endpoint, req, timeout_s)
        rec = parse_exchange(
            raw,
            prompt_id="preflight",
            level="preflight",
            round=0,
            round_start_ns=raw.send_ns,
            prompt_tokens=req.prompt_tokens,
        )
        if rec.ok or rec.error_kind is ErrorKind.EMPTY:
            return notes  # answered (an answer of no token is the model's business)
        if rec.token_events and rec.error_kind is ErrorKind.STREAM and not raw.error:
            return notes  # a token arrived: the stream was cut there on purpose
        transient = raw.status in _RETRYABLE or (
            raw.status == 200 and rec.error_kind in (ErrorKind.STREAM, ErrorKind.CONNECTION)
        )
        if not transient or attempt == attempts:
            raise PreflightError(_preflight_message(endpoint, model, raw, rec.error or ""))
        wait = backoff_s * 2 ** (attempt - 1)
        if retry_after is not None:
            wait = min(retry_after, _RETRY_AFTER_CAP_S)
            capped = Message("retry_capped") if retry_after > _RETRY_AFTER_CAP_S else ""
            notes.append(
                Message(
                    "preflight_retry",
                    status=raw.status,
                    after=f"{retry_after:g}",
                    wait=f"{wait:g}",
                    capped=capped,
                )
            )
        await asyncio.sleep(wait)
    return notes


async def _first_token(
    session: aiohttp.ClientSession, endpoint: Endpoint, req: PreparedRequest, timeout_s: float
) -> tuple[RawExchange, float | None]:
    """The start of one answer: its status, error body or stream up to the first token event."""
    raw = RawExchange(send_ns=perf_counter_ns())
    retry_after = None
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with session.post(
            endpoint.url, data=req.body, headers=endpoint.headers, timeout=timeout
        ) as resp:
            raw.send_ns = sent_ns(resp, raw.send_ns)
            raw.status = resp.status
            retry_after = _retry_after_s(resp.headers.get("Retry-After"))
            if resp.status >= 300:
                body = await resp.content.read(_ERROR_BODY_LIMIT)
                raw.body = endpoint.redact(body.decode("utf-8", "replace"))
                raw.end_ns = perf_counter_ns()
                return raw, retry_after
            raw.content_type = resp.headers.get("Content-Type")
            size = 0
            while data := await resp.content.readany():
                raw.chunks.append((perf_counter_ns(), data))
                size += len(data)
                if size > _ERROR_BODY_LIMIT * 16 or _has_token(raw):
                    resp.close()
                    break
            raw.end_ns = perf_counter_ns()
    except asyncio.TimeoutError:
        _fail(raw, ErrorKind.TIMEOUT, f"timed out after {timeout_s:g} s")
    except aiohttp.ClientConnectorError as exc:
        _fail(
            raw, ErrorKind.CONNECTION, f"cannot connect to {exc.host}:{exc.port} ({exc.os_error})"
        )
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        _fail(raw, ErrorKind.CONNECTION, endpoint.redact(_why(exc)))
    return raw, retry_after


def _has_token(raw: RawExchange) -> bool:
    rec = parse_exchange(
        raw, prompt_id="", level="preflight", round=0, round_start_ns=raw.send_ns, prompt_tokens=0
    )
    return rec.token_events > 0 or rec.error_kind in (ErrorKind.MALFORMED, ErrorKind.OVERSIZE)


def _retry_after_s(value: str | None) -> float | None:
    """Retry-After in seconds (the delta-seconds form; an HTTP date is not worth honouring)."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < float("inf") else None


def _count_or_none(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


async def post_reset(session: aiohttp.ClientSession, url: str) -> str | None:
    """POST a cache-reset URL; returns a warning line on failure (the run goes on, flagged)."""
    try:
        async with session.post(url) as resp:
            if 200 <= resp.status < 300:
                return None
            body = (await resp.content.read(_ERROR_BODY_LIMIT)).decode("utf-8", "replace")
            return Message("reset_http", url=url, status=resp.status, error=error_message(body))
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        return Message("reset_failed", url=url, why=_why(exc))


async def check_reset(session: aiohttp.ClientSession, url: str) -> None:
    """Call the cache-reset URL once before any round; a refusal stops the run (exit 3)."""
    problem = await post_reset(session, url)
    if problem is None:
        return
    known = reset_hint(urlsplit(url).path) if "404" in problem else None
    hint = f"{known}; or use --cold-start nonce" if known else "check --cache-reset-url"
    raise PreflightError(f"{problem}: round 1 could not be made cold; {hint}")


def split_userinfo(url: str) -> tuple[str, str | None]:
    """The URL without ``user:password@``, and that ``user:password`` (percent-decoded)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=host)), unquote(userinfo)


def _preflight_message(endpoint: Endpoint, model: str, raw: RawExchange, error: str) -> str:
    url = endpoint.url
    if raw.status is None:
        return (
            f"preflight request to {url} failed: {error}. Is the server running? Check --endpoint."
        )
    if raw.status in (401, 403):
        return f"{url} refused the API key ({error}). Check --api-key or $OPENAI_API_KEY."
    if raw.status == 404 and model in (raw.body or ""):
        return f"{url} does not serve model {model!r} ({error}). Check --model."
    if raw.status == 404:
        return f"{url} was not found ({error}). Check the path of --endpoint."
    return f"preflight request to {url} failed: {error}"


def _unreachable(url: str, exc: BaseException) -> str:
    return f"cannot connect to {url} ({_why(exc)}). Is the server running? Check --endpoint."


def _fail(raw: RawExchange, kind: ErrorKind, message: str) -> None:
    raw.end_ns = raw.end_ns or perf_counter_ns()
    raw.error_kind, raw.error = kind, message


def _why(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return str(exc.os_error.strerror or exc.os_error)
    return str(exc) or type(exc).__name__


def _flatten(messages: list[dict[str, Any]]) -> str:
    return Prompt(id="", messages=tuple(messages)).as_text()
