"""Check a URL given by the user (``--endpoint``, ``--prometheus-url``, ``--cache-reset-url``).

One pure function, ``url_problem``, says why a string cannot be an http(s) URL to connect to,
so that a typo is a usage error naming the flag (exit 2) instead of an "unreachable server"
after a connection attempt (exit 3).  Its messages show at most ``scheme://host:port``, never
the userinfo (``user:password@``) nor the path or query, which may carry credentials.
No network, no DNS: a well-formed URL to a host that does not exist is the preflight's business.
"""

from __future__ import annotations

import re

__all__ = ["SCHEMES", "url_problem"]

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
