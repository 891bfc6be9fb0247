"""HTTP plumbing shared by the vendor providers: one request, its errors translated, no secret out.

Every vendor module (``_datadog``, ``_newrelic`` ...) sends its requests through
:class:`VendorHTTP`, so they all behave alike where it matters to a user:

* every call has the provider's timeout; no httpx exception leaves the package;
* the answer's status becomes the error tree of :mod:`analysis._spec.errors`, worded with
  the vendor's own message (its JSON ``errors``/``error``/``message``, or the start of
  the body)::

      timeout                 QueryTimeoutError        "Datadog at ... did not answer within 5s"
      refused, DNS, TLS       ProviderUnavailableError "cannot reach Datadog at ...: ConnectError"
      401, 403                UnauthorizedError        "Datadog refused the credentials (HTTP 403): ..."
      400, 422                BadQueryError            "Datadog rejected the query ...: ..."
      404, 429, 5xx, other    HTTPStatusError          "Datadog answered HTTP 503 to ...: ..."
      not JSON where JSON     QueryError               "Datadog answered ... with a body that is not JSON"

* no message carries a credential: the address loses its ``user:password@``, headers are
  never formatted, and every value of the provider's Secret is masked in whatever a vendor
  echoes back (some quote the API key they refused).

:class:`SingleValue` gives the vendors the two Protocol methods that only Prometheus can
answer (range samples and histogram buckets) as a clear error.  :func:`tls_verify` is
shared with the Prometheus provider: a CA certificate it cannot load is an error naming
the Secret key it came from, never quoting the certificate.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from analysis._spec.errors import (
    BadQueryError,
    HTTPStatusError,
    ProviderUnavailableError,
    QueryError,
    QueryTimeoutError,
    UnauthorizedError,
)
from analysis._spec.provider import MASK, ProviderConfig, redact, safe_address
from analysis._spec.vocabulary import Bucket

__all__ = ["MASK", "SingleValue", "VendorHTTP", "redact", "short", "tls_verify"]

_MAX_MESSAGE = 300
# Where OpenSSL's message says which line of CPython raised it: of no use to a user.
_SSL_LOCATION = re.compile(r"\s*\(_ssl\.c:\d+\)")


def short(query: str, limit: int = 200) -> str:
    """``query`` on one line, cut to ``limit`` characters, for a message."""
    q = " ".join(query.split())
    return q if len(q) <= limit else q[: limit - 3] + "..."


def tls_verify(config: ProviderConfig, title: str, where: str, query: str) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for ``config``: False when told to skip, a context trusting its CA
    certificate when it has one, else the system's (True). A certificate OpenSSL cannot load
    is a :class:`ProviderUnavailableError` naming where it came from
    (``ProviderConfig.ca_origin``) and what is wrong, never quoting it (OpenSSL's reason,
    or that it is not ASCII), not an ``ssl.SSLError`` out of ``evaluate``. Prometheus and
    the vendors' client both build their clients with it.
    """
    if config.insecure_skip_verify:
        return False
    if not (config.ca_file or config.ca_data):
        return True
    try:
        return ssl.create_default_context(cafile=config.ca_file, cadata=config.ca_data)
    except ssl.SSLError as exc:
        reason = _SSL_LOCATION.sub("", str(exc.args[-1] if exc.args else exc)).strip()
        why = f"is not a PEM certificate OpenSSL can load ({reason})"
    except OSError as exc:  # the file of ca_file
        why = f"cannot be read ({exc.strerror or type(exc).__name__})"
    except (TypeError, ValueError):  # cadata with a character past ASCII
        why = "is not a PEM certificate (it holds characters past ASCII)"
    raise ProviderUnavailableError(
        f"cannot check the TLS certificate of {title} at {where}: {config.ca_origin} {why}",
        query=query,
    )


def vendor_message(response: httpx.Response) -> str:
    """What the vendor said went wrong, from the usual JSON shapes or the body's start."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    found: list[str] = []
    if isinstance(body, Mapping):
        for key in ("errors", "error", "message", "Message", "errorMessage", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value:
                found.append(value)
            elif isinstance(value, list):
                found.extend(str(v) for v in value if v)
            elif isinstance(value, Mapping):
                inner = value.get("message") or value.get("status") or value.get("code")
                if inner:
                    found.append(str(inner))
            if found:
                break
    text = "; ".join(found) if found else response.text
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _params(
    params: Mapping[str, str] | Sequence[tuple[str, str]] | None,
) -> httpx.QueryParams | None:
    if params is None:
        return None
    return httpx.QueryParams(list(params.items()) if isinstance(params, Mapping) else list(params))


class VendorHTTP:
    """Requests to one vendor's API with the provider's settings; see the module docstring.

    ``title`` names the vendor in messages. Pass ``transport`` (tests) or ``client`` (a
    shared ``httpx.AsyncClient``) to replace the client opened per call.
    """

    def __init__(
        self,
        config: ProviderConfig,
        title: str,
        *,
        endpoint: str | None = None,
        secrets: Sequence[str] = (),
        auth_endpoint: bool = False,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.title = title
        # Where the requests go, for messages, when not the provider's address (a token
        # endpoint, STS); secrets this instance sends besides the Secret's (a token it got).
        self.endpoint = endpoint or config.address
        self.auth_endpoint = auth_endpoint  # any 4xx but throttling: the credentials refused
        self._client = client
        self._transport = transport
        self._extra_secrets: tuple[str, ...] = tuple(s for s in secrets if s)

    @property
    def where(self) -> str:
        """The endpoint's scheme and host only: a path or query may hold a key (some hosted
        services put the API key in the URL), and user:password@ is a credential."""
        if not self.endpoint:
            return self.title
        parts = urlsplit(self.endpoint)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return f"{parts.scheme}://{host}" if host else safe_address(self.endpoint)

    def also_mask(self, value: str) -> None:
        """Mask ``value`` too: a credential this provider sends that is not in its Secret
        (a token it obtained, the pod's own)."""
        self._extra_secrets = (*self._extra_secrets, value)

    def clean(self, text: str) -> str:
        """``text`` without any credential of this provider."""
        return redact(text, (*self.config.credentials, *self._extra_secrets))

    async def send(
        self,
        method: str,
        url: str,
        *,
        query: str,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        headers: Sequence[tuple[str, str]] = (),
        json_body: Any = None,
        content: bytes | str | None = None,
    ) -> httpx.Response:
        """The answer to one request, or the translated error (see the module docstring)."""
        timeout = httpx.Timeout(self.config.timeout_seconds)
        all_headers = [*self.config.headers, *headers]
        verify = (
            tls_verify(self.config, self.title, self.where, query) if self._client is None else True
        )
        try:
            # httpx's timeout bounds each read; this one the whole request, answer included
            # (a server that sends its answer a few bytes at a time is as late as a silent one)
            async with asyncio.timeout(self.config.timeout_seconds):
                response = await self._request(
                    method, url, params, all_headers, json_body, content, timeout, verify
                )
        except (TimeoutError, httpx.TimeoutException):
            raise QueryTimeoutError(
                self.clean(
                    f"{self.title} at {self.where} did not answer within "
                    f"{self.config.timeout_seconds:g}s (query {short(query)!r})"
                ),
                query=query,
            ) from None
        except httpx.HTTPError as exc:
            raise ProviderUnavailableError(
                self.clean(f"cannot reach {self.title} at {self.where}: {type(exc).__name__}"),
                query=query,
            ) from None
        except ValueError as exc:  # an address httpx cannot even parse
            raise ProviderUnavailableError(
                self.clean(f"cannot reach {self.title} at {self.where}: {exc}"), query=query
            ) from None
        self.check_status(response, query)
        return response

    async def _request(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None,
        headers: list[tuple[str, str]],
        json_body: Any,
        content: bytes | str | None,
        timeout: httpx.Timeout,
        verify: ssl.SSLContext | bool,
    ) -> httpx.Response:
        """One request on the shared client, or on a client of its own (its answer read)."""
        if self._client is not None:
            return await self._client.request(
                method,
                url,
                params=_params(params),
                headers=headers,
                json=json_body,
                content=content,
                timeout=timeout,
            )
        async with httpx.AsyncClient(
            verify=verify, transport=self._transport, timeout=timeout
        ) as client:
            return await client.request(
                method,
                url,
                params=_params(params),
                headers=headers,
                json=json_body,
                content=content,
            )

    #: Vendor error codes (from :meth:`vendor_error`) meaning "slow down" or "not you".
    throttle_codes: frozenset[str] = frozenset()
    refusal_codes: frozenset[str] = frozenset()

    def vendor_error(self, response: httpx.Response) -> tuple[str, str]:
        """What the vendor said (its message) and its error code, if it has codes."""
        return vendor_message(response), ""

    def check_status(self, response: httpx.Response, query: str) -> None:
        """Raise the error an HTTP error status means; nothing for 1xx-3xx."""
        status = response.status_code
        if status < 400:
            return
        said, code = self.vendor_error(response)
        said = self.clean(said)
        detail = f": {said}" if said else ""
        throttled = status == 429 or code in self.throttle_codes
        refused = not throttled and (
            status in (401, 403)
            or code in self.refusal_codes
            or (self.auth_endpoint and status < 500)
        )
        if refused:
            raise UnauthorizedError(
                self.clean(f"{self.title} at {self.where} refused the credentials (HTTP {status})")
                + detail,
                query=query,
                status_code=status,
            )
        if not throttled and status in (400, 422):
            raise BadQueryError(
                self.clean(f"{self.title} rejected the query {short(query)!r} (HTTP {status})")
                + detail,
                query=query,
                status_code=status,
            )
        hint = " (rate limited; the next tick asks again)" if throttled else ""
        raise HTTPStatusError(
            self.clean(
                f"{self.title} at {self.where} answered HTTP {status}{hint} to query {short(query)!r}"
            )
            + detail,
            query=query,
            status_code=status,
        )

    def decode(self, response: httpx.Response, query: str) -> Any:
        """The answer's JSON, or a :class:`QueryError` saying it is not JSON."""
        try:
            return response.json()
        except (ValueError, json.JSONDecodeError, RecursionError):  # nested past any sense too
            start = self.clean(" ".join(response.text[:80].split()))
            raise QueryError(
                f"{self.title} answered HTTP {response.status_code} to query {short(query)!r} "
                f"with a body that is not JSON: {start!r}",
                query=query,
            ) from None

    async def get_json(
        self,
        url: str,
        *,
        query: str,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Any:
        response = await self.send("GET", url, query=query, params=params, headers=headers)
        return self.decode(response, query)

    async def post_json(
        self,
        url: str,
        *,
        query: str,
        json_body: Any = None,
        content: bytes | str | None = None,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Any:
        response = await self.send(
            "POST",
            url,
            query=query,
            params=params,
            headers=headers,
            json_body=json_body,
            content=content,
        )
        return self.decode(response, query)


class SingleValue:
    """The part of the MetricProvider Protocol a one-number-per-query vendor cannot answer.

    The threshold judge and the compare judge's error-rate test only call ``run_query``;
    range samples and histogram buckets are Prometheus shapes, so asking another vendor
    for them is a clear error (``canary lint`` says it before a canary runs).
    """

    title = "this provider"

    async def query_samples(
        self, query: str, *, start: datetime, end: datetime, step_seconds: float
    ) -> tuple[float, ...]:
        raise QueryError(
            f"{self.title} answers one number per query, not a range of samples "
            f"(query {short(query)!r})",
            query=query,
        )

    async def query_buckets(self, query: str, *, at: datetime | None = None) -> tuple[Bucket, ...]:
        raise QueryError(
            f"{self.title} has no histogram buckets: compare latency needs a Prometheus "
            f"provider; compare the error rate or use a threshold (query {short(query)!r})",
            query=query,
        )
