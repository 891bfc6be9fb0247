"""A thin async client of Prometheus' HTTP API, the one metric provider implemented.

It exists so the controller never blocks its event loop on a metric query and
never sees an httpx exception: every call has a timeout, every failure is
translated into the tree of :mod:`analysis._spec.errors`, and results are reduced to
exactly the shape the caller asked for (one number, one series of samples, or
one histogram).  Unlike Flagger, several series where one value is expected is
an error naming the query and the series count, not a silent pick of the last.
An answer of the wrong shape (a Prometheus-compatible proxy may send one) is a
:class:`QueryError` naming what was wrong, never an ``IndexError`` or ``TypeError``;
so is a number too large for a float and JSON nested past any sense.  A CA certificate
OpenSSL cannot load is a :class:`ProviderUnavailableError` naming where it came from,
an address that is no URL an :class:`AnalysisSpecError` (as CloudWatch's region).

The timeout bounds the whole request, answer included: a server that sends its answer
a few bytes at a time is as late as one that sends nothing.  Messages never carry a
credential: they quote what the server said (its error, the start of its body, the part
of an answer that was wrong), and a proxy may echo the token it refused, so every
message is cleaned of the provider's credentials before it leaves.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import ssl
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx

from analysis._http import tls_verify
from analysis._spec.errors import (
    AnalysisSpecError,
    HTTPStatusError,
    MultipleSeriesError,
    NoDataError,
    PrometheusAPIError,
    ProviderUnavailableError,
    QueryError,
    QueryTimeoutError,
)
from analysis._spec.provider import (
    ProviderConfig,
    address_problem,
    redact,
    safe_address,
)
from analysis._spec.vocabulary import Bucket

__all__ = ["PrometheusProvider", "safe_address"]

_MAX_BODY_IN_MESSAGE = 300
_MAX_JSON_IN_MESSAGE = 80

# How far below 0 a bucket's count may be and still be read as 0, as a share of the
# answer's largest count (at least 1): increase() extrapolates and a recording rule may
# subtract, so float rounding leaves counts like -1e-9 where there were none.  A count
# further below 0 is a broken query, not rounding.
_ROUNDING_SLACK = 1e-6

# Headers of spec.provider.headers whose values are credentials by their name's look.
_CREDENTIAL_HEADER = re.compile(r"auth|token|key|secret|passw|cookie|session", re.IGNORECASE)


def _short(query: str, limit: int = 200) -> str:
    q = " ".join(query.split())
    return q if len(q) <= limit else q[: limit - 3] + "..."


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse_float(raw: object, query: str) -> float:
    """A value of the answer as a number. Prometheus sends numbers as strings; a JSON
    number is read too, but not ``true`` (no count), nor one past a float's range."""
    try:
        if isinstance(raw, bool):
            raise TypeError("a boolean is no number")
        return float(raw)  # type: ignore[arg-type]
    except OverflowError:  # an integer of hundreds of digits
        raise QueryError(
            f"query {_short(query)!r} returned a number too large for a float: {_json(raw)}",
            query=query,
        ) from None
    except (TypeError, ValueError):
        raise QueryError(
            f"query {_short(query)!r} returned a non-numeric value {_shown(raw)}",
            query=query,
        ) from None


def _text(value: object, limit: int) -> str:
    """A field of Prometheus' error answer (a string, or whatever a proxy sent) for a message."""
    return _cut(value, limit) if isinstance(value, str) else _shown(value, limit)


def _shown(value: object, limit: int = _MAX_JSON_IN_MESSAGE) -> str:
    """``repr(value)`` cut short; a value nested too deeply for ``repr`` is named by type."""
    try:
        return _cut(repr(value), limit)
    except RecursionError:
        return f"a {type(value).__name__}"


def _json(value: object) -> str:
    """``value`` as the JSON it came as, cut short, for a message about a malformed answer."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = f"a {type(value).__name__}"
    return _cut(text, _MAX_JSON_IN_MESSAGE)


def _malformed(where: str, query: str, what: str) -> QueryError:
    """The error of an answer whose JSON is not the shape Prometheus' API documents."""
    return QueryError(
        f"malformed answer from {where}: {what} (query {_short(query)!r})", query=query
    )


class PrometheusProvider:
    """Prometheus behind :class:`~analysis.MetricProvider`.

    Pass ``client`` to share one ``httpx.AsyncClient`` between queries (its own
    TLS settings then apply); otherwise each call opens and closes its own
    client with this provider's auth, headers, TLS settings and timeout.
    """

    def __init__(
        self,
        config: ProviderConfig,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = config
        self._client = client
        self._transport = transport
        self._base = config.address.rstrip("/")
        self._secrets = self._credentials()
        self._address_problem = address_problem(config.address, self._secrets)

    @property
    def config(self) -> ProviderConfig:
        return self._config

    def __repr__(self) -> str:
        return f"PrometheusProvider(address={safe_address(self._base)!r})"

    # -- HTTP plumbing -------------------------------------------------------

    def _credentials(self) -> tuple[str, ...]:
        """Everything this provider sends that a message must not show: the Secret's
        credentials, the token, the basic-auth user and password and their header, and the
        values of spec.provider.headers named like credentials (``Authorization``, ...)."""
        config = self._config
        sent = [value for name, value in self._headers() if name == "Authorization"]
        sent += [v for name, v in config.headers if _CREDENTIAL_HEADER.search(name)]
        extra = [config.username or "", config.password or "", config.token or "", *sent]
        extra += [part for v in sent for part in v.split()[1:]]  # "Bearer abc": abc alone too
        return (*config.credentials, *(v for v in extra if len(v) >= 4))

    def _clean(self, text: str) -> str:
        """``text`` without any credential of this provider."""
        return redact(text, self._secrets)

    @contextmanager
    def _cleaned(self) -> Iterator[None]:
        """The block's :class:`QueryError`, its message cleaned of this provider's credentials.

        What a message quotes came from the server (its error, the start of its body, the
        part of the answer that was wrong): a proxy echoing the token it refused would put
        it in a verdict's summary, and from there in the status, Events and alerts.  Cleaning
        every message where it leaves, not each quote where it is made, leaves no quote out.
        """
        try:
            yield
        except QueryError as exc:
            exc.args = (self._clean(str(exc)),)
            if isinstance(exc, PrometheusAPIError):
                exc.error_type = self._clean(exc.error_type)
            raise

    def _headers(self) -> list[tuple[str, str]]:
        headers = list(self._config.headers)
        if self._config.token:
            headers.append(("Authorization", f"Bearer {self._config.token}"))
        elif self._config.username is not None and self._config.password is not None:
            raw = f"{self._config.username}:{self._config.password}".encode()
            headers.append(("Authorization", "Basic " + base64.b64encode(raw).decode("ascii")))
        headers.append(("Accept", "application/json"))
        return headers

    def _where(self, path: str) -> str:
        """The URL of ``path``, fit for messages (no credentials)."""
        return f"{safe_address(self._base)}{path}"

    async def _get(self, path: str, params: Mapping[str, str], query: str) -> Any:
        """The ``data`` of Prometheus' answer to one GET, within the timeout, or the error."""
        url = f"{self._base}{path}"
        seconds = self._config.timeout_seconds
        where = safe_address(self._base)
        if self._address_problem is not None:
            raise _address_error(self._address_problem)
        verify = (
            tls_verify(self._config, "Prometheus", where, query) if self._client is None else True
        )
        try:
            # httpx's timeout bounds each read; this one the whole request, answer included.
            async with asyncio.timeout(seconds):
                response = await self._send(url, params, verify)
        except (TimeoutError, httpx.TimeoutException):
            raise QueryTimeoutError(
                f"Prometheus at {where} did not answer within {seconds:g}s "
                f"(query {_short(query)!r})",
                query=query,
            ) from None
        except httpx.HTTPError as exc:
            raise ProviderUnavailableError(
                f"cannot reach Prometheus at {where}: {type(exc).__name__}", query=query
            ) from None
        except UnicodeEncodeError:  # a header value (a token from a Secret) past ASCII
            raise ProviderUnavailableError(
                f"cannot send the query to Prometheus at {where}: a header or credential "
                "holds a character HTTP headers cannot carry",
                query=query,
            ) from None
        except (httpx.InvalidURL, ValueError) as exc:  # a host IDNA refuses; the text may quote it
            raise _address_error(
                f"{where!r} is no URL httpx can use ({type(exc).__name__})"
            ) from None
        return self._decode(response, query, f"{where}{path}")

    async def _send(
        self, url: str, params: Mapping[str, str], verify: ssl.SSLContext | bool
    ) -> httpx.Response:
        timeout = httpx.Timeout(self._config.timeout_seconds)
        if self._client is not None:
            return await self._client.get(
                url, params=params, headers=self._headers(), timeout=timeout
            )
        async with httpx.AsyncClient(
            verify=verify, transport=self._transport, timeout=timeout
        ) as client:
            return await client.get(url, params=params, headers=self._headers())

    def _decode(self, response: httpx.Response, query: str, where: str) -> Any:
        body: Any = None
        try:
            body = response.json()
        except RecursionError:
            if response.status_code < 400:
                raise _malformed(where, query, "its JSON is nested too deeply to read") from None
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "error":
            error_type = _text(body.get("errorType", ""), _MAX_JSON_IN_MESSAGE)
            error = _text(body.get("error", ""), _MAX_BODY_IN_MESSAGE)
            raise PrometheusAPIError(
                f"Prometheus rejected query {_short(query)!r} "
                f"(HTTP {response.status_code}, {error_type}): {error}",
                query=query,
                status_code=response.status_code,
                error_type=error_type,
            )
        if response.status_code >= 400:
            text = response.text[:_MAX_BODY_IN_MESSAGE].strip()
            raise HTTPStatusError(
                f"Prometheus answered HTTP {response.status_code} to query {_short(query)!r}"
                + (f": {text}" if text else ""),
                query=query,
                status_code=response.status_code,
            )
        if not isinstance(body, dict) or body.get("status") != "success":
            raise HTTPStatusError(
                f"Prometheus answered HTTP {response.status_code} without a JSON success body "
                f"to query {_short(query)!r}",
                query=query,
                status_code=response.status_code,
            )
        data = body.get("data")
        if not isinstance(data, dict):
            raise QueryError(f"Prometheus answer to {_short(query)!r} has no data", query=query)
        return data

    # -- MetricProvider ------------------------------------------------------

    async def run_query(self, query: str, *, at: datetime | None = None) -> float:
        with self._cleaned():
            return await self._run_query(query, at)

    async def _run_query(self, query: str, at: datetime | None) -> float:
        where = self._where("/api/v1/query")
        data = await self._get("/api/v1/query", _instant(query, at), query)
        result_type = data.get("resultType")
        result = data.get("result")
        if result_type == "scalar":
            if not isinstance(result, list) or len(result) != 2:
                raise _malformed(
                    where, query, f'the scalar result is {_json(result)}, not [time, "value"]'
                )
            value = _parse_float(result[1], query)
        elif result_type == "vector":
            series = _one_series(_list(result, where, query), query, "query", "one value")
            value = _parse_float(_sample(series, where, query)[1], query)
        else:
            raise QueryError(
                f"query {_short(query)!r} returned a {result_type} where an instant vector "
                "or scalar was expected",
                query=query,
            )
        if math.isnan(value):
            raise NoDataError(f"query {_short(query)!r} returned NaN", query=query)
        return value

    async def is_online(self) -> bool:
        try:
            return await self.run_query("vector(1)") == 1.0
        except (QueryError, AnalysisSpecError):
            return False

    async def query_samples(
        self, query: str, *, start: datetime, end: datetime, step_seconds: float
    ) -> tuple[float, ...]:
        points = await self.query_points(query, start=start, end=end, step_seconds=step_seconds)
        return tuple(value for _, value in points)

    async def query_points(
        self, query: str, *, start: datetime, end: datetime, step_seconds: float
    ) -> tuple[tuple[datetime, float], ...]:
        """A range query's single series as (time, value) points, oldest first, NaN left out
        (``query_samples`` keeps only the values, which is all a judge needs; a picture of
        the run needs the times too)."""
        with self._cleaned():
            return await self._query_points(query, start, end, step_seconds)

    async def _query_points(
        self, query: str, start: datetime, end: datetime, step_seconds: float
    ) -> tuple[tuple[datetime, float], ...]:
        params = {
            "query": query,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{step_seconds:g}",
        }
        where = self._where("/api/v1/query_range")
        data = await self._get("/api/v1/query_range", params, query)
        result = _result(data, query, "matrix", "range query", "a matrix", where)
        series = _one_series(result, query, "range query", "one")
        if not isinstance(series, dict):
            raise _malformed(where, query, f"a matrix entry is {_json(series)}, not a series")
        # A series without "values" has only native histograms ("histograms"): no number.
        pairs = series.get("values", [])
        if not isinstance(pairs, list):
            raise _malformed(where, query, f"a series' values are {_json(pairs)}, not a list")
        points = []
        for pair in pairs:
            if not isinstance(pair, list) or len(pair) != 2:
                raise _malformed(where, query, f'a point is {_json(pair)}, not [time, "value"]')
            value = _parse_float(pair[1], query)
            if not math.isnan(value):
                points.append((_instant_of(pair[0], where, query), value))
        if not points:
            raise NoDataError(f"query {_short(query)!r} returned only NaN", query=query)
        return tuple(points)

    async def query_buckets(self, query: str, *, at: datetime | None = None) -> tuple[Bucket, ...]:
        with self._cleaned():
            return await self._query_buckets(query, at)

    async def _query_buckets(self, query: str, at: datetime | None) -> tuple[Bucket, ...]:
        where = self._where("/api/v1/query")
        data = await self._get("/api/v1/query", _instant(query, at), query)
        expected = "an instant vector grouped by (le)"
        result = _result(data, query, "vector", "bucket query", expected, where)
        return _buckets_from_vector(result, query, where)


def _address_error(problem: str) -> AnalysisSpecError:
    """The error of an address no request can go to; the provider cannot tell whether the
    spec or its Secret gave it (``provider_config`` can, and says which)."""
    return AnalysisSpecError("spec.provider.address or the Secret's 'address' key", problem)


def _instant_of(raw: object, where: str, query: str) -> datetime:
    """A point's time (Unix seconds); one no clock can show is a malformed answer."""
    seconds = _parse_float(raw, query)
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, ValueError, OSError):  # NaN, an infinity, or past year 9999
        raise _malformed(where, query, f"a point's time is {_json(raw)}") from None


def _instant(query: str, at: datetime | None) -> dict[str, str]:
    """The parameters of an instant query, at ``at`` (None: the server's now)."""
    params = {"query": query}
    if at is not None:
        params["time"] = f"{at.timestamp():.3f}"
    return params


def _result(
    data: Mapping[str, Any], query: str, result_type: str, kind: str, expected: str, where: str
) -> list[Any]:
    """The ``result`` of an answer that must be a ``result_type``; anything else is a
    :class:`QueryError` (``kind`` and ``expected`` word its message)."""
    if data.get("resultType") != result_type:
        raise QueryError(
            f"{kind} {_short(query)!r} returned {data.get('resultType')}, expected {expected}",
            query=query,
        )
    return _list(data.get("result"), where, query)


def _list(result: object, where: str, query: str) -> list[Any]:
    """A vector's or matrix's ``result``, which the API makes a list (empty when no series)."""
    if not isinstance(result, list):
        raise _malformed(where, query, f"the result is {_json(result)}, not a list of series")
    return result


def _sample(series: object, where: str, query: str) -> tuple[Mapping[str, Any], object]:
    """The labels and the raw value of one instant-vector entry, which the API makes
    ``{"metric": {labels}, "value": [time, "value"]}``; any other shape is malformed."""
    if not isinstance(series, dict):
        raise _malformed(where, query, f"a vector entry is {_json(series)}, not a sample")
    labels = series.get("metric", {})
    if not isinstance(labels, dict):
        raise _malformed(where, query, f"a sample's metric is {_json(labels)}, not a label map")
    if "value" not in series:
        # A native histogram's sample has "histogram" instead: no single number to read.
        native = " (a native histogram?)" if "histogram" in series else ""
        raise _malformed(where, query, f"a sample has no value{native}")
    pair = series["value"]
    if not isinstance(pair, list) or len(pair) != 2:
        raise _malformed(where, query, f'a sample\'s value is {_json(pair)}, not [time, "value"]')
    return labels, pair[1]


def _no_data(query: str) -> NoDataError:
    return NoDataError(f"no values found for query {_short(query)!r}", query=query)


def _one_series(result: Sequence[Any], query: str, kind: str, expected: str) -> Any:
    """The only series of ``result``; none is :class:`NoDataError`, several are
    :class:`MultipleSeriesError` (``kind`` and ``expected`` word its message)."""
    if not result:
        raise _no_data(query)
    if len(result) > 1:
        raise MultipleSeriesError(
            f"{kind} {_short(query)!r} returned {len(result)} series where {expected} was "
            "expected (aggregate it, e.g. with sum())",
            query=query,
            series=len(result),
        )
    return result[0]


def _buckets_from_vector(result: Sequence[Any], query: str, where: str) -> tuple[Bucket, ...]:
    """The cumulative (le, count) buckets of a ``sum by (le)`` answer, sorted by ``le``.

    A count that is no count of requests (NaN, an infinity, clearly below 0) is a
    :class:`QueryError` naming the bucket, not 0: a count of 0 at ``le="0.1"`` says no
    request was faster than 100 ms, so an identical canary would be judged slower.  (A
    single value that is NaN is :class:`NoDataError`, as Flagger has it: a ratio of no
    traffic.  A bucket's NaN is no such thing: the other buckets did count requests.)
    """
    if not result:
        raise _no_data(query)
    seen: dict[float, tuple[str, float]] = {}
    for series in result:
        labels, raw = _sample(series, where, query)
        if "le" not in labels:
            raise QueryError(
                f"bucket query {_short(query)!r} returned a series without an 'le' label "
                "(expected sum by (le) (...))",
                query=query,
            )
        le = _bucket_boundary(labels["le"], where, query)
        if le in seen:
            raise MultipleSeriesError(
                f"bucket query {_short(query)!r} returned {len(result)} series with repeated "
                f"le={labels['le']} (expected one series per le: sum by (le) (...))",
                query=query,
                series=len(result),
            )
        seen[le] = (str(labels["le"]), _parse_float(raw, query))
    largest = max((c for _, c in seen.values() if math.isfinite(c)), default=0.0, key=abs)
    slack = _ROUNDING_SLACK * max(1.0, abs(largest))
    for le_text, count in seen.values():
        if not math.isfinite(count) or count < -slack:
            raise _bad_count(le_text, count, query)
    buckets = tuple((le, max(count, 0.0)) for le, (_, count) in sorted(seen.items()))
    if not math.isinf(buckets[-1][0]):
        raise QueryError(f'bucket query {_short(query)!r} has no le="+Inf" bucket', query=query)
    return buckets


def _bucket_boundary(raw: object, where: str, query: str) -> float:
    """An ``le`` label as a number; one that is no boundary (NaN, not a number, a number
    past a float's range) is a malformed answer naming it."""
    try:
        le = _parse_float(raw, query)
    except QueryError:
        le = math.nan
    if math.isnan(le):
        shown = f'"{raw}"' if isinstance(raw, str) else _json(raw)
        raise _malformed(
            where, query, f"le={_cut(shown, _MAX_JSON_IN_MESSAGE)} is no bucket boundary"
        )
    return le


def _bad_count(le_text: str, count: float, query: str) -> QueryError:
    """The error of a bucket whose count cannot be a number of requests."""
    if math.isnan(count):
        shown = "NaN"
    elif math.isinf(count):
        shown = "+Inf" if count > 0 else "-Inf"
    else:
        shown = f"negative ({count:g})"
    return QueryError(
        f'histogram bucket le="{le_text}" of query {_short(query)!r} is {shown}: a bucket\'s '
        "count is a number of requests, finite and >= 0",
        query=query,
    )
