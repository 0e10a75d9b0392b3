"""The project's one redactor: what a URL, a config or a server's answer looks like wherever it is
printed or stored.

A URL may carry credentials (``http://user:pass@host/...``) or a token in its query string
(``?api_key=...``, a signed URL's ``&sig=...``).  Requests still go to the real URL; only what a
person or a file sees is redacted: the userinfo becomes ``***@`` and the value of every
secret-looking query parameter becomes ``***``.  A server may also echo the API key or the
basic-auth credentials back in an error body: ``mask_secrets`` replaces the known secret values
(``client.Endpoint.redact`` calls it with the run's, secret ``--header`` values included).
``is_secret_header`` says which ``--header`` values are masked wherever the config is shown.  Pure string functions, no I/O.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "basic_auth_forms",
    "is_secret_header",
    "is_secret_param",
    "mask_secrets",
    "redact_config",
    "redact_text",
    "redact_url",
]

MASK = "***"
UNPARSABLE = "<a URL that cannot be parsed>"
# query parameter names, or parts of them (api_key, X-Amz-Signature, access_token), that hold secrets
_SECRET_WORDS = frozenset({"key", "token", "secret", "password", "sig", "signature", "auth"})
_SECRET_ENDINGS = ("key", "token", "secret", "password", "passwd", "pwd", "signature")
_SECRET_HEADERS = frozenset({"cookie", "set-cookie", "proxy-authorization", "authorization"})
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
_TRAILING = ".,;:!?)]}"


def is_secret_param(name: str) -> bool:
    """True for a query parameter name that looks like it holds a credential."""
    parts = [p for p in re.split(r"[^a-z0-9]+", unquote(name).lower()) if p]
    return any(
        p in _SECRET_WORDS or p.endswith(_SECRET_ENDINGS) or p.startswith("auth") for p in parts
    )


def is_secret_header(name: str) -> bool:
    """True for an HTTP header whose value looks like a credential: Authorization,
    Proxy-Authorization, Cookie, and any name with a key, token, secret or password part
    (X-Api-Key, X-Auth-Token); a routing or session id header is not one."""
    low = name.lower()
    return low in _SECRET_HEADERS or is_secret_param(low)


def redact_url(url: str) -> str:
    """``url`` with its userinfo replaced by ``***@`` and secret query values by ``***``.

    Anything else (scheme, host, port, path, other parameters, their order and encoding) is
    kept, so the redacted URL still says which server was measured.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return UNPARSABLE
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rpartition("@")[2]
    query = "&".join(_redact_param(p) for p in parts.query.split("&")) if parts.query else ""
    if netloc == parts.netloc and query == parts.query:
        return url  # nothing secret: keep the text exactly as given
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """Free text (a warning, an error message) with every URL in it redacted."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(_redact_match, text)


def mask_secrets(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of each non-empty secret replaced by ``***``.

    Longest first, so a secret that contains another (``user:pw`` and ``pw``) leaves no piece of
    itself behind.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def basic_auth_forms(userinfo: str) -> tuple[str, str]:
    """The two ways basic-auth credentials can come back in an answer: ``user:password`` as
    given and the base64 text of the ``Authorization: Basic`` header."""
    return userinfo, base64.b64encode(userinfo.encode()).decode()


def redact_config(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a JSON-ready config with every URL in a string or list of strings redacted."""
    return {key: _redact_value(value) for key, value in values.items()}


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, (list, tuple)):
        return [_redact_value(v) for v in value]
    if isinstance(value, Mapping):
        return redact_config(value)
    return value


def _redact_param(param: str) -> str:
    name, sep, value = param.partition("=")
    return f"{name}={MASK}" if sep and value and is_secret_param(name) else param


def _redact_match(match: re.Match[str]) -> str:
    url = match.group(0)
    stripped = url.rstrip(_TRAILING)
    return redact_url(stripped) + url[len(stripped) :]
