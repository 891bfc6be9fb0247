"""New Relic behind :class:`~analysis.MetricProvider`, with Flagger's ``newrelic`` semantics.

A MetricTemplate of type ``newrelic`` holds an NRQL ``SELECT`` that yields one number; its
Secret holds ``newrelic_account_id`` and ``newrelic_query_key``. As in Flagger, each reading
is one call of New Relic's Insights query API::

    GET {address}/v1/accounts/{newrelic_account_id}/query?nrql=<query> SINCE <s> seconds ago
    X-Query-Key: <newrelic_query_key>

with the address defaulting to ``https://insights-api.newrelic.com`` (EU accounts use
``https://insights-api.eu.newrelic.com``). The window is in the NRQL itself: Flagger appends
``SINCE <interval seconds> seconds ago`` to the template's query, and so does this provider
when it reads "now". When the caller asks about a past tick (``at``), the window is the same
length but absolute, ``SINCE <ms> UNTIL <ms>`` (NRQL takes Unix epoch milliseconds), so a
replayed tick reads the data it would have read then.

Which number is the value: Insights answers ``{"results": [{"result": 1.23}]}`` for an
arithmetic ``SELECT`` such as Flagger's documented error-rate query, which is what Flagger
reads (``results[0].result``). A bare aggregate is named for its function instead
(``{"count": 42}``, ``{"average": 0.2}``, ``{"percentiles": {"95": 0.31}}``), which Flagger
cannot read; here the first value of the only result is used then, so such a query works
too. A null value or no result is :class:`~analysis.NoDataError` (NRQL's answer on no
events); several results (``SELECT a, b``) are :class:`~analysis.MultipleSeriesError` where
Flagger reports "no values"; a ``FACET`` or ``TIMESERIES`` answer (no ``results``) is a
:class:`~analysis.QueryError` saying why.

``is_online`` runs ``SELECT count(*) FROM Metric`` through the same endpoint, as Flagger
checks the key with a query of its own. New Relic's errors are ``{"error": "..."}`` bodies,
translated by :class:`~analysis._http.VendorHTTP`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from analysis._http import SingleValue, VendorHTTP, short
from analysis._spec.errors import (
    AnalysisSpecError,
    MultipleSeriesError,
    NoDataError,
    QueryError,
)
from analysis._spec.provider import ProviderConfig

__all__ = ["QUERY_KEY_HEADER", "NewRelicProvider"]

QUERY_KEY_HEADER = "X-Query-Key"
_SECRET_KEYS = ("newrelic_account_id", "newrelic_query_key")
_ONLINE_QUERY = "SELECT count(*) FROM Metric"


class NewRelicProvider(SingleValue):
    """New Relic's Insights query API; see the module docstring for the window and value."""

    title = "New Relic"

    def __init__(
        self,
        config: ProviderConfig,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        account = config.secret_value(_SECRET_KEYS[0])
        query_key = config.secret_value(_SECRET_KEYS[1])
        missing = [k for k, v in zip(_SECRET_KEYS, (account, query_key), strict=True) if not v]
        if missing:
            raise AnalysisSpecError(
                "spec.provider.secretRef",
                f"a newrelic provider needs {' and '.join(repr(k) for k in missing)} in its Secret",
            )
        assert account is not None and query_key is not None
        self._config = config
        self._http = VendorHTTP(config, self.title, client=client, transport=transport)
        self._url = f"{config.address}/v1/accounts/{quote(account.strip(), safe='')}/query"
        self._auth = ((QUERY_KEY_HEADER, query_key),)

    def nrql(self, query: str, at: datetime | None = None) -> str:
        """``query`` with its window: Flagger's ``SINCE <s> seconds ago``, or absolute at ``at``."""
        seconds = max(1, int(self._config.interval_seconds))  # Flagger truncates
        body = query.strip()
        if at is None:
            return f"{body} SINCE {seconds} seconds ago"
        end_ms = math.floor(at.astimezone(UTC).timestamp() * 1000)
        return f"{body} SINCE {end_ms - seconds * 1000} UNTIL {end_ms}"

    async def _ask(self, query: str, nrql: str) -> Any:
        return await self._http.get_json(
            self._url, query=query, params={"nrql": nrql}, headers=self._auth
        )

    async def run_query(self, query: str, *, at: datetime | None = None) -> float:
        body = await self._ask(query, self.nrql(query, at))
        if not isinstance(body, Mapping):
            raise self._shape(query, "is not a JSON object")
        results = body.get("results")
        if results is None and ("facets" in body or "timeSeries" in body):
            raise QueryError(
                f"New Relic answered query {short(query)!r} with FACET or TIMESERIES data; "
                "a metric needs one number: remove FACET/TIMESERIES from the NRQL",
                query=query,
            )
        if not isinstance(results, list):
            raise self._shape(query, "has no 'results' list")
        if not results:
            raise NoDataError(
                f"New Relic returned no result for query {short(query)!r}", query=query
            )
        if len(results) > 1:
            raise MultipleSeriesError(
                f"New Relic returned {len(results)} results for query {short(query)!r} where "
                "one value was expected (SELECT a single expression)",
                query=query,
                series=len(results),
            )
        return self._value(results[0], query)

    def _value(self, result: object, query: str) -> float:
        if not isinstance(result, Mapping) or not result:
            raise self._shape(query, f"has a result that is not an object with a value: {result!r}")
        raw = result["result"] if "result" in result else next(iter(result.values()))
        if isinstance(raw, Mapping) and len(raw) == 1:  # {"percentiles": {"95": 0.31}}
            raw = next(iter(raw.values()))
        if raw is None:
            raise NoDataError(
                f"New Relic returned null for query {short(query)!r} (no events in the window?)",
                query=query,
            )
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise self._shape(query, f"has a non-numeric value {raw!r}")
        if math.isnan(raw):
            raise NoDataError(f"New Relic returned NaN for query {short(query)!r}", query=query)
        return float(raw)

    def _shape(self, query: str, what: str) -> QueryError:
        return QueryError(
            self._http.clean(
                f"New Relic's answer to query {short(query)!r} {what}; expected "
                "{'results': [{'result': <number>}]}"
            ),
            query=query,
        )

    async def is_online(self) -> bool:
        """Whether New Relic answers a query with this key and account, as Flagger checks."""
        try:
            await self._ask(_ONLINE_QUERY, self.nrql(_ONLINE_QUERY))
        except QueryError:
            return False
        return True
