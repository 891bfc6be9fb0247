"""A thin async client of Prometheus' HTTP API, the one metric provider implemented.

It exists so the controller never blocks its event loop on a metric query and
never sees an httpx exception: every call has a timeout, every failure is
translated into the tree of :mod:`analysis._spec.errors`, and results are reduced to
exactly the shape the caller asked for (one number, one series of samples, or
one histogram).  Unlike Flagger, several series where one value is expected is
an error naming the query and the series count, not a silent pick of the last.
"""

from __future__ import annotations

import base64
import math
import ssl
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from analysis._spec.errors import (
    HTTPStatusError,
    MultipleSeriesError,
    NoDataError,
    PrometheusAPIError,
    ProviderUnavailableError,
    QueryError,
    QueryTimeoutError,
)
from analysis._spec.provider import ProviderConfig
from analysis._spec.vocabulary import Bucket

__all__ = ["PrometheusProvider", "safe_address"]

_MAX_BODY_IN_MESSAGE = 300


def safe_address(address: str) -> str:
    """``address`` without any ``user:password@`` part, fit for messages."""
    parts = urlsplit(address)
    if parts.username is None and parts.password is None:
        return address
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _short(query: str, limit: int = 200) -> str:
    q = " ".join(query.split())
    return q if len(q) <= limit else q[: limit - 3] + "..."


def _parse_float(raw: object, query: str) -> float:
    try:
        return float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise QueryError(
            f"query {_short(query)!r} returned a non-numeric value {raw!r}", query=query
        ) from None


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

    @property
    def config(self) -> ProviderConfig:
        return self._config

    def __repr__(self) -> str:
        return f"PrometheusProvider(address={safe_address(self._base)!r})"

    # -- HTTP plumbing -------------------------------------------------------

    def _headers(self) -> list[tuple[str, str]]:
        headers = list(self._config.headers)
        if self._config.token:
            headers.append(("Authorization", f"Bearer {self._config.token}"))
        elif self._config.username is not None and self._config.password is not None:
            raw = f"{self._config.username}:{self._config.password}".encode()
            headers.append(("Authorization", "Basic " + base64.b64encode(raw).decode("ascii")))
        headers.append(("Accept", "application/json"))
        return headers

    def _verify(self) -> ssl.SSLContext | bool:
        if self._config.insecure_skip_verify:
            return False
        if self._config.ca_file or self._config.ca_data:
            return ssl.create_default_context(
                cafile=self._config.ca_file, cadata=self._config.ca_data
            )
        return True

    async def _get(self, path: str, params: Mapping[str, str], query: str) -> Any:
        url = f"{self._base}{path}"
        timeout = httpx.Timeout(self._config.timeout_seconds)
        where = safe_address(self._base)
        try:
            if self._client is not None:
                response = await self._client.get(
                    url, params=params, headers=self._headers(), timeout=timeout
                )
            else:
                async with httpx.AsyncClient(
                    verify=self._verify(), transport=self._transport, timeout=timeout
                ) as client:
                    response = await client.get(url, params=params, headers=self._headers())
        except httpx.TimeoutException:
            raise QueryTimeoutError(
                f"Prometheus at {where} did not answer within "
                f"{self._config.timeout_seconds:g}s (query {_short(query)!r})",
                query=query,
            ) from None
        except httpx.HTTPError as exc:
            raise ProviderUnavailableError(
                f"cannot reach Prometheus at {where}: {type(exc).__name__}", query=query
            ) from None
        return self._decode(response, query)

    def _decode(self, response: httpx.Response, query: str) -> Any:
        body: Any = None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "error":
            error_type = str(body.get("errorType", ""))
            error = str(body.get("error", ""))
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
        data = await self._get("/api/v1/query", _instant(query, at), query)
        result_type = data.get("resultType")
        result = data.get("result")
        if result_type == "scalar":
            value = _parse_float(result[1] if isinstance(result, list) else None, query)
        elif result_type == "vector" and isinstance(result, list):
            series = _one_series(result, query, "query", "one value")
            value = _parse_float(series.get("value", [None, None])[1], query)
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
        except QueryError:
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
        params = {
            "query": query,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{step_seconds:g}",
        }
        data = await self._get("/api/v1/query_range", params, query)
        result = _result(data, query, "matrix", "range query", "a matrix")
        series = _one_series(result, query, "range query", "one")
        points = []
        for pair in series.get("values", []):
            value = _parse_float(
                pair[1] if isinstance(pair, list) and len(pair) > 1 else None, query
            )
            if not math.isnan(value):
                when = datetime.fromtimestamp(_parse_float(pair[0], query), UTC)
                points.append((when, value))
        if not points:
            raise NoDataError(f"query {_short(query)!r} returned only NaN", query=query)
        return tuple(points)

    async def query_buckets(self, query: str, *, at: datetime | None = None) -> tuple[Bucket, ...]:
        data = await self._get("/api/v1/query", _instant(query, at), query)
        expected = "an instant vector grouped by (le)"
        return _buckets_from_vector(_result(data, query, "vector", "bucket query", expected), query)


def _instant(query: str, at: datetime | None) -> dict[str, str]:
    """The parameters of an instant query, at ``at`` (None: the server's now)."""
    params = {"query": query}
    if at is not None:
        params["time"] = f"{at.timestamp():.3f}"
    return params


def _result(
    data: Mapping[str, Any], query: str, result_type: str, kind: str, expected: str
) -> list[Any]:
    """The ``result`` of an answer that must be a ``result_type``; anything else is a
    :class:`QueryError` (``kind`` and ``expected`` word its message)."""
    result = data.get("result")
    if data.get("resultType") != result_type or not isinstance(result, list):
        raise QueryError(
            f"{kind} {_short(query)!r} returned {data.get('resultType')}, expected {expected}",
            query=query,
        )
    return result


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


def _buckets_from_vector(result: Sequence[Any], query: str) -> tuple[Bucket, ...]:
    if not result:
        raise _no_data(query)
    seen: dict[float, float] = {}
    for series in result:
        labels = series.get("metric", {})
        if "le" not in labels:
            raise QueryError(
                f"bucket query {_short(query)!r} returned a series without an 'le' label "
                "(expected sum by (le) (...))",
                query=query,
            )
        le = _parse_float(labels["le"], query)
        if le in seen:
            raise MultipleSeriesError(
                f"bucket query {_short(query)!r} returned {len(result)} series with repeated "
                f"le={labels['le']} (expected one series per le: sum by (le) (...))",
                query=query,
                series=len(result),
            )
        count = _parse_float(series.get("value", [None, None])[1], query)
        seen[le] = 0.0 if math.isnan(count) else count
    buckets = tuple(sorted(seen.items()))
    if not math.isinf(buckets[-1][0]):
        raise QueryError(f'bucket query {_short(query)!r} has no le="+Inf" bucket', query=query)
    return buckets
