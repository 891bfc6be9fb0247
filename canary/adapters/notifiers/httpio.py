"""HTTP plumbing shared by the notifiers and the webhook caller.

Notifications and webhooks both POST JSON to addresses that users configure, and
both must keep those addresses out of sight: a Slack or Teams webhook URL *is*
the credential (its path is the secret), and a token is a token. This module
holds the pieces they share so the rules live in one place:

* `HttpClients` — one `httpx.AsyncClient` per (proxy, TLS verification) pair,
  created lazily through an injectable factory and closed together;
* `http_redactor`, `redact_url`, `scrub_urls` and `protect_http_logs` — secrets and
  URL paths never reach logs, exception messages, Events or the status;
* `parse_retry_after`, `backoff_delay` and `sanitize_body` — the retry and
  error-text helpers both callers need.

Nothing here decides *what* to send; it only makes sending safe.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from canary.adapters.redaction import REDACTED, Redactor

__all__ = [
    "USER_AGENT",
    "ClientFactory",
    "HttpClients",
    "backoff_delay",
    "default_client_factory",
    "http_redactor",
    "parse_retry_after",
    "protect_http_logs",
    "redact_url",
    "sanitize_body",
    "scrub_urls",
]

USER_AGENT = "canary-engine"

ClientFactory = Callable[[str | None, bool], httpx.AsyncClient]
"""Build a client for ``(proxy, verify)``; the pool calls it once per pair."""


def default_client_factory(proxy: str | None, verify: bool) -> httpx.AsyncClient:
    """A client with no default timeout (every call passes its own) and a small pool."""
    return httpx.AsyncClient(
        proxy=proxy,
        verify=verify,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        timeout=None,
    )


class HttpClients:
    """A lazily filled pool of shared clients, keyed by proxy and TLS verification.

    A proxy is a property of the transport in httpx, so each distinct proxy gets
    its own client; everything else (timeouts, headers) is per request.
    """

    def __init__(self, factory: ClientFactory | None = None) -> None:
        self._factory = factory or default_client_factory
        self._clients: dict[tuple[str | None, bool], httpx.AsyncClient] = {}
        protect_http_logs()

    def get(self, *, proxy: str | None = None, verify: bool = True) -> httpx.AsyncClient:
        key = (proxy or None, verify)
        client = self._clients.get(key)
        if client is None or client.is_closed:
            client = self._factory(key[0], verify)
            self._clients[key] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


# ----------------------------------------------------------------------- redaction

_URL = re.compile(r"""\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+""")
_MIN_SECRET = 4  # shorter fragments would redact ordinary words


def redact_url(url: str) -> str:
    """Keep scheme and host (useful in messages), hide user info, path and query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return REDACTED
    if not parts.scheme or not host:
        return REDACTED
    netloc = f"{host}:{port}" if port else host
    hidden = parts.path not in ("", "/") or parts.query or parts.fragment
    return f"{parts.scheme}://{netloc}/{REDACTED}" if hidden else f"{parts.scheme}://{netloc}/"


def scrub_urls(text: str) -> str:
    """Replace every URL in ``text`` by its redacted form."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def http_redactor(secrets: Iterable[str | None] = ()) -> Redactor:
    """Removes known secrets (and any URL path) from text before it leaves.

    Give it the webhook address, the token and the proxy URL; it also hides
    the pieces a library might print separately (a URL's path, query or
    password) so a partial leak is caught too.
    """
    return Redactor.of(secrets, forms=_url_forms, min_length=_MIN_SECRET, scrub=scrub_urls)


def _url_forms(value: str) -> Iterable[str]:
    yield value
    yield from _url_fragments(value)


def _url_fragments(value: str) -> Iterable[str]:
    try:
        parts = urlsplit(value)
    except ValueError:
        return ()
    if not parts.scheme or not parts.netloc:
        return ()
    fragments = [parts.path.strip("/"), parts.query, parts.fragment]
    if parts.password:
        fragments.append(parts.password)
    return (f for f in fragments if f)


class _ScrubUrlsFilter(logging.Filter):
    """Rewrites log records of HTTP libraries so URLs lose their path and query.

    httpx logs every request at INFO with its full URL, which for a Slack or
    Teams webhook is the credential itself.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "://" in record.msg:
            record.msg = scrub_urls(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_scrub_arg(a) for a in record.args)
        return True


def _scrub_arg(value: object) -> object:
    if isinstance(value, httpx.URL):
        return redact_url(str(value))
    if isinstance(value, str) and "://" in value:
        return scrub_urls(value)
    return value


_FILTER = _ScrubUrlsFilter()


def protect_http_logs() -> None:
    """Install the URL-scrubbing filter on httpx's and httpcore's loggers (idempotent)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


# -------------------------------------------------------------------- retry helpers


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date).

    Returns None when the header is absent or unreadable, 0 for a date in the past.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_delay(attempt: int, *, base: float, cap: float) -> float:
    """Exponential backoff: ``base * 2**attempt`` seconds, at most ``cap`` (attempt 0 waits base)."""
    if attempt < 0:
        attempt = 0
    return min(cap, base * (2.0 ** min(attempt, 62)))


_SPACE = re.compile(r"\s+")


def sanitize_body(body: bytes | str, limit: int = 300) -> str:
    """A response body fit for an Event: decoded, control characters removed, one line, truncated."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    text = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    text = _SPACE.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: max(0, limit - 1)].rstrip() + "…"
    return text
