"""Datadog behind :class:`~analysis.MetricProvider`, with Flagger's ``datadog`` semantics.

A MetricTemplate of type ``datadog`` holds a Datadog metrics query; its Secret holds
``datadog_api_key`` and ``datadog_application_key``, sent as the ``DD-API-KEY`` and
``DD-APPLICATION-KEY`` headers. The address defaults to ``https://api.datadoghq.com``
(other Datadog sites, e.g. ``https://api.datadoghq.eu``, go in ``spec.provider.address``
or the Secret's ``address`` key).

Each reading is one call of the v1 "query timeseries points" API,
``GET /api/v1/query?from=<unix s>&to=<unix s>&query=<q>``, over a window of ten metric
intervals ending at the tick (``at``, or now), exactly Flagger's window. Datadog answers
every series as a ``pointlist`` of ``[timestamp ms, value]`` rollup buckets, oldest first.

Which number is the metric's value, and why: the *oldest* point of the *first* series, as
in Flagger. The newest bucket is still being filled while the window ends in it, so a count
or rate there is almost always too low; the oldest bucket is complete. Flagger reads a
``null`` point (a bucket without data) as 0, which would pass an error-rate check on no
data at all; here null points are skipped, so the value is the oldest point that has one,
and a series of only nulls (or no series) is :class:`~analysis.NoDataError`. Several series
(a query grouped ``by {...}``) are read like Flagger: the first one counts.

``is_online`` calls Datadog's documented key check ``GET /api/v1/validate``, as Flagger does.
Errors are Datadog's ``{"errors": ["..."]}`` bodies, translated by
:class:`~analysis._http.VendorHTTP`; a 200 answer with ``"status": "error"`` is the
query's own error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from analysis._http import SingleValue, VendorHTTP, short
from analysis._spec.errors import AnalysisSpecError, BadQueryError, NoDataError, QueryError
from analysis._spec.provider import ProviderConfig

__all__ = ["API_KEY_HEADER", "APPLICATION_KEY_HEADER", "WINDOW_INTERVALS", "DatadogProvider"]

API_KEY_HEADER = "DD-API-KEY"
APPLICATION_KEY_HEADER = "DD-APPLICATION-KEY"
WINDOW_INTERVALS = 10
"""The window is this many metric intervals long (Flagger's ``fromDelta``)."""

_QUERY_PATH = "/api/v1/query"
_VALIDATE_PATH = "/api/v1/validate"
_SECRET_KEYS = ("datadog_api_key", "datadog_application_key")


class DatadogProvider(SingleValue):
    """Datadog's v1 query API; see the module docstring for the window and the point used."""

    title = "Datadog"

    def __init__(
        self,
        config: ProviderConfig,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        api_key = config.secret_value(_SECRET_KEYS[0])
        application_key = config.secret_value(_SECRET_KEYS[1])
        missing = [
            k for k, v in zip(_SECRET_KEYS, (api_key, application_key), strict=True) if not v
        ]
        if missing:
            raise AnalysisSpecError(
                "spec.provider.secretRef",
                f"a datadog provider needs {' and '.join(repr(k) for k in missing)} in its Secret",
            )
        assert api_key is not None and application_key is not None
        self._config = config
        self._http = VendorHTTP(config, self.title, client=client, transport=transport)
        self._auth = ((API_KEY_HEADER, api_key), (APPLICATION_KEY_HEADER, application_key))

    def window(self, at: datetime | None = None) -> tuple[int, int]:
        """``(from, to)`` in Unix seconds: ten intervals ending at ``at`` (None: now)."""
        end = at if at is not None else datetime.now(UTC)
        to = math.floor(end.timestamp())
        return to - round(WINDOW_INTERVALS * self._config.interval_seconds), to

    async def run_query(self, query: str, *, at: datetime | None = None) -> float:
        start, end = self.window(at)
        params = {"from": str(start), "to": str(end), "query": query}
        body = await self._http.get_json(
            f"{self._config.address}{_QUERY_PATH}", query=query, params=params, headers=self._auth
        )
        if not isinstance(body, Mapping):
            raise self._shape(query, "is not a JSON object")
        if body.get("status") == "error":
            said = self._http.clean(str(body.get("error") or body.get("message") or "no reason"))
            raise BadQueryError(
                self._http.clean(f"Datadog rejected the query {short(query)!r}: {said}"),
                query=query,
                status_code=200,
            )
        series = body.get("series")
        if not isinstance(series, list):
            raise self._shape(query, "has no 'series' list")
        if not series:
            raise NoDataError(
                f"Datadog found no series for query {short(query)!r} in the last "
                f"{WINDOW_INTERVALS} intervals (no traffic yet, or a tag that matches nothing?)",
                query=query,
            )
        first = series[0]
        points = first.get("pointlist") if isinstance(first, Mapping) else None
        if not isinstance(points, list):
            raise self._shape(query, "has a series without a 'pointlist'")
        return self._oldest_value(points, query)

    def _oldest_value(self, points: Sequence[Any], query: str) -> float:
        for point in points:
            if not isinstance(point, list | tuple) or len(point) < 2:
                raise self._shape(query, f"has a point that is not [timestamp, value]: {point!r}")
            raw = point[1]
            if raw is None:
                continue
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise self._shape(query, f"has a non-numeric value {raw!r}")
            if math.isnan(raw):
                continue
            return float(raw)
        raise NoDataError(
            f"Datadog returned only empty (null) points for query {short(query)!r}", query=query
        )

    def _shape(self, query: str, what: str) -> QueryError:
        return QueryError(
            self._http.clean(
                f"Datadog's answer to query {short(query)!r} {what}; expected the v1 "
                "timeseries shape {'series': [{'pointlist': [[ms, value], ...]}]}"
            ),
            query=query,
        )

    async def is_online(self) -> bool:
        """Whether Datadog accepts the API key (``GET /api/v1/validate``), as Flagger checks."""
        try:
            body = await self._http.get_json(
                f"{self._config.address}{_VALIDATE_PATH}", query="validate", headers=self._auth
            )
        except QueryError:
            return False
        return not (isinstance(body, Mapping) and body.get("valid") is False)
