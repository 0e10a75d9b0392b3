"""Check a URL given by the user (``--endpoint``, ``--prometheus-url``, ``--cache-reset-url``).

``resolve_endpoint`` completes a base ``--endpoint`` (``http://host:8000`` or ``.../v1``, as
vLLM bench's ``--base-url`` and AIPerf's ``--url`` take it) with the path ``--endpoint-type``
names, and refuses a path it cannot complete with the URL that was probably meant.
``url_problem`` says why a string cannot be an http(s) URL to connect to,
so that a typo is a usage error naming the flag (exit 2) instead of an "unreachable server"
after a connection attempt (exit 3).  Its messages show at most ``scheme://host:port``, never
the userinfo (``user:password@``) nor the path or query, which may carry credentials.
No network, no DNS: a well-formed URL to a host that does not exist is the preflight's business.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from drbench.records import EndpointKind

__all__ = ["SCHEMES", "resolve_endpoint", "url_problem"]

SCHEMES = ("http", "https")
_HOST = re.compile(r"[A-Za-z0-9._~%!$&'()*+,;=-]+|\[[0-9A-Fa-f:.]+(%[A-Za-z0-9._~-]+)?\]")
_EXAMPLE = "e.g. http://localhost:8000/v1/chat/completions or http://localhost:8000/metrics"


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable http(s) URL (one short phrase), or None when it is.

    The caller strips surrounding whitespace first; whitespace or control characters left
    inside are a problem (a URL cannot hold them unencoded).
    """
    if not url:
        return f"is empty; give a URL, {_EXAMPLE}"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "holds a space or a control character; percent-encode it (a space is %20)"
    scheme, sep, rest = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return f"is not a URL; give scheme://host[:port]/path, {_EXAMPLE}"
    if scheme.lower() not in SCHEMES:
        return f"scheme {scheme.lower()!r} is not supported; use http:// or https://"
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    hostport = netloc.rpartition("@")[2]
    host, port, problem = _split_host_port(hostport)
    if problem:
        return problem
    shown = f"{scheme.lower()}://{host}" + (f":{port}" if port is not None else "")
    if "@" in rest[len(netloc) :]:  # an unencoded '/' in a password: host and port may be in it
        shown, host_shown, port_shown = "the URL", "", ""
    else:
        host_shown, port_shown = f" {host[:80]!r}", f" {(port or '')[:20]!r}"
    if not host:
        return f"has no host; give one, {_EXAMPLE}"
    if not _HOST.fullmatch(host):
        return f"host{host_shown} is not a valid host name or address"
    if port is not None:
        if not port:
            return f"has ':' but no port after it in {shown[:100]}; remove ':' or give the port"
        if not port.isascii() or not port.isdigit():
            return f"port{port_shown} is not a number in {shown[:100]}"
        if not 1 <= int(port) <= 65535:
            return f"port {int(port)} is out of range (1-65535) in {shown[:100]}"
    return None


def resolve_endpoint(url: str, kind: EndpointKind | None) -> tuple[str, EndpointKind]:
    """The URL requests go to and the API it speaks, from ``--endpoint`` and ``--endpoint-type``.

    A path ending in /chat/completions or /completions is used as given (``kind``, when set,
    must agree with it); no path or a path ending in /v1 is completed (``kind`` defaults to
    chat). Anything else raises ValueError naming the URL to give instead. The query string is
    kept; ``url`` holds no userinfo (the caller takes it out first).
    """
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    said: EndpointKind | None = (
        "chat"
        if path.endswith("/chat/completions")
        else "completions"
        if path.endswith("/completions")
        else None
    )
    if said is not None:
        if kind is not None and kind != said:
            raise ValueError(
                f"its path ends in /{'chat/' if said == 'chat' else ''}completions, which is the "
                f"{said} API, and --endpoint-type says {kind}: drop --endpoint-type or change the path"
            )
        return url, said
    kind = kind or "chat"
    api = "/chat/completions" if kind == "chat" else "/completions"
    if path == "" or path.endswith("/v1"):
        return urlunsplit(parts._replace(path=path + ("" if path else "/v1") + api)), kind
    if path.endswith("/chat"):  # .../v1/chat: the API's name cut short
        meant = path + "/completions" if kind == "chat" else path[: -len("/chat")] + api
    elif "/v1/" in path:  # .../v1/oops or .../v1/chat/complete: the API after /v1 mistyped
        meant = path[: path.rindex("/v1/") + 3] + api
    else:
        meant = path + "/v1" + api
    host = parts.netloc.rpartition("@")[2]  # never a password in a message
    shown = urlunsplit(parts._replace(netloc=host, path=meant, query="", fragment=""))
    raise ValueError(
        f"path {path!r} is neither a base URL (http://host:8000 or .../v1) nor a "
        f"chat-completions or completions URL; did you mean {shown}?"
    )


def _split_host_port(hostport: str) -> tuple[str, str | None, str | None]:
    """(host, port or None when no ':' is given, problem) of ``host[:port]`` or ``[v6][:port]``."""
    if hostport.startswith("["):
        inside, bracket, after = hostport.partition("]")
        if not bracket:
            return "", None, "has an unclosed '[' in its IPv6 host; write http://[::1]:8000/..."
        host = inside + "]"
        if not after:
            return host, None, None
        if not after.startswith(":"):
            return host, None, f"has {after[:20]!r} after the IPv6 host; expected ':PORT'"
        return host, after[1:], None
    host, colon, port = hostport.partition(":")
    return host, (port if colon else None), None
