"""Dynatrace behind :class:`~analysis.MetricProvider`, with Flagger's ``dynatrace`` semantics.

A MetricTemplate of type ``dynatrace`` holds a metric selector (e.g.
``builtin:service.response.time:filter(...):percentile(95)``) and the environment's URL in
``spec.provider.address`` (``https://<id>.live.dynatrace.com``, or a Managed
``https://<domain>/e/<env-id>``); there is no default, as in Flagger. Its Secret holds
``dynatrace_token``, an API token with the ``metrics.read`` scope, sent as
``Authorization: Api-Token <token>``.

Each reading is one call of the Metrics API v2, as Flagger makes it::

    GET {address}/api/v2/metrics/query?metricSelector=<q>&resolution=Inf&from=<ms>&to=<ms>

over ten metric intervals ending at the tick (``at``, or now); ``from``/``to`` are Unix epoch
milliseconds. ``resolution=Inf`` asks Dynatrace to fold the whole window into a single data
point per series, so the answer is
``{"result": [{"metricId": ..., "data": [{"dimensionMap": ..., "timestamps": [ms],
"values": [v]}]}]}``.

Which number is the value: the last non-null value of the only series (with
``resolution=Inf`` that is its one value; Flagger reads ``values[0]`` of the *last* series).
No series, or only null values (Dynatrace's "no data in this slot"), is
:class:`~analysis.NoDataError`. Several series (a selector that splits by a dimension, or
lists several metrics) are a :class:`~analysis.MultipleSeriesError` naming the count, where
Flagger silently reads the last one: aggregate them with ``:splitBy()``.

``is_online`` lists one metric descriptor (``GET /api/v2/metrics?pageSize=1``), Flagger's
check. Dynatrace's errors are ``{"error": {"code": 400, "message": "..."}}`` bodies,
translated by :class:`~analysis._http.VendorHTTP`; a 400 that lists
``constraintViolations`` gets them appended, since they say which parameter is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from analysis._http import SingleValue, VendorHTTP, short
from analysis._spec.errors import (
    AnalysisSpecError,
    BadQueryError,
    MultipleSeriesError,
    NoDataError,
    QueryError,
)
from analysis._spec.provider import ProviderConfig

__all__ = ["TOKEN_SCHEME", "WINDOW_INTERVALS", "DynatraceProvider"]

TOKEN_SCHEME = "Api-Token"
WINDOW_INTERVALS = 10
"""The window is this many metric intervals long (Flagger's ``fromDelta``)."""

_QUERY_PATH = "/api/v2/metrics/query"
_ONLINE_PATH = "/api/v2/metrics"
_SECRET_KEY = "dynatrace_token"


class _DynatraceHTTP(VendorHTTP):
    """VendorHTTP that adds a 400's ``constraintViolations`` (which parameter is wrong)."""

    def check_status(self, response: httpx.Response, query: str) -> None:
        try:
            super().check_status(response, query)
        except BadQueryError as exc:
            violations = _violations(response)
            if not violations:
                raise
            raise BadQueryError(
                f"{exc} ({self.clean(violations)})", query=query, status_code=exc.status_code
            ) from None


def _violations(response: httpx.Response) -> str:
    """``path: message`` of each constraint violation in a Dynatrace error body."""
    try:
        body: Any = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, Mapping) else None
    found = error.get("constraintViolations") if isinstance(error, Mapping) else None
    if not isinstance(found, list):
        return ""
    parts = [
        f"{v.get('path') or v.get('parameterLocation') or '?'}: {v.get('message', '')}"
        for v in found
        if isinstance(v, Mapping)
    ]
    return "; ".join(parts)[:300]


class DynatraceProvider(SingleValue):
    """Dynatrace's Metrics API v2; see the module docstring for the window and the value."""

    title = "Dynatrace"

    def __init__(
        self,
        config: ProviderConfig,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        token = config.secret_value(_SECRET_KEY)
        if not token:
            raise AnalysisSpecError(
                "spec.provider.secretRef",
                f"a dynatrace provider needs {_SECRET_KEY!r} in its Secret",
            )
        if not config.address:
            raise AnalysisSpecError(
                "spec.provider.address",
                "a dynatrace provider needs the environment's URL, e.g. "
                "https://abc12345.live.dynatrace.com",
            )
        self._config = config
        self._http = _DynatraceHTTP(config, self.title, client=client, transport=transport)
        self._auth = (("Authorization", f"{TOKEN_SCHEME} {token}"),)

    def window(self, at: datetime | None = None) -> tuple[int, int]:
        """``(from, to)`` in Unix milliseconds: ten intervals ending at ``at`` (None: now)."""
        end = at if at is not None else datetime.now(UTC)
        to = math.floor(end.timestamp() * 1000)
        return to - round(WINDOW_INTERVALS * self._config.interval_seconds * 1000), to

    async def run_query(self, query: str, *, at: datetime | None = None) -> float:
        start, end = self.window(at)
        params = {
            "metricSelector": query.strip(),
            "resolution": "Inf",
            "from": str(start),
            "to": str(end),
        }
        body = await self._http.get_json(
            f"{self._config.address}{_QUERY_PATH}", query=query, params=params, headers=self._auth
        )
        if not isinstance(body, Mapping):
            raise self._shape(query, "is not a JSON object")
        collections = body.get("result")
        if not isinstance(collections, list):
            raise self._shape(query, "has no 'result' list")
        series: list[Any] = []
        for collection in collections:
            data = collection.get("data") if isinstance(collection, Mapping) else None
            if not isinstance(data, list):
                raise self._shape(query, "has a result without a 'data' list")
            series.extend(data)
        if not series:
            raise NoDataError(
                f"Dynatrace found no series for selector {short(query)!r} in the last "
                f"{WINDOW_INTERVALS} intervals (no traffic yet, or a filter that matches nothing?)",
                query=query,
            )
        if len(series) > 1:
            raise MultipleSeriesError(
                f"Dynatrace returned {len(series)} series for selector {short(query)!r} where one "
                "value was expected (aggregate them, e.g. with :splitBy())",
                query=query,
                series=len(series),
            )
        only = series[0]
        values = only.get("values") if isinstance(only, Mapping) else None
        if not isinstance(values, list):
            raise self._shape(query, "has a series without a 'values' list")
        return self._last_value(values, query)

    def _last_value(self, values: Sequence[Any], query: str) -> float:
        for raw in reversed(values):
            if raw is None:
                continue
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise self._shape(query, f"has a non-numeric value {raw!r}")
            if not math.isnan(raw):
                return float(raw)
        raise NoDataError(
            f"Dynatrace returned only null values for selector {short(query)!r}", query=query
        )

    def _shape(self, query: str, what: str) -> QueryError:
        return QueryError(
            self._http.clean(
                f"Dynatrace's answer to selector {short(query)!r} {what}; expected "
                "{'result': [{'data': [{'values': [...]}]}]}"
            ),
            query=query,
        )

    async def is_online(self) -> bool:
        """Whether Dynatrace lists a metric with this token (Flagger's check)."""
        try:
            await self._http.get_json(
                f"{self._config.address}{_ONLINE_PATH}",
                query="list metrics",
                params={"pageSize": "1"},
                headers=self._auth,
            )
        except QueryError:
            return False
        return True
