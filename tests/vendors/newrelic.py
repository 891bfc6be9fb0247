"""New Relic's Insights query API on loopback, as documented at docs.newrelic.com.

One endpoint, the one Flagger's ``newrelic`` provider calls ("Query Insights event data via
API"): ``GET /v1/accounts/{account_id}/query?nrql=<NRQL>`` with the account's query key in
``X-Query-Key``. A missing or wrong key, or a key of another account, is 401
``{"error": "..."}``; a missing ``nrql`` or one that is not NRQL (``SELECT ...`` or
``FROM ...``) is 400 ``{"error": "NRQL Syntax Error: ..."}``.

The answer is ``{"results": [{<key>: value}], "metadata": {...}}``: ``result`` is the key of
an arithmetic ``SELECT`` such as Flagger's documented error-rate query (set
:attr:`result_key` to ``count``, ``average`` ... for a bare aggregate). No value is
``{"results": [{"result": null}]}``, NRQL's answer when a ratio has no events. A test that
needs another body sets :attr:`results` (the whole ``results`` list).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from tests.vendors import VendorServer

ACCOUNT_ID = "3141592"
QUERY_KEY = "NRIQ-7fQk2Lw9Zx4Vb8Nm1Pq6Rs3Tu5Yh0Jc"
_NRQL_START = re.compile(r"^\s*(SELECT|FROM)\s", re.IGNORECASE)
_SINCE = re.compile(r"\bSINCE\s+(?P<since>.+?)(?:\s+UNTIL\s+(?P<until>\S+))?\s*$", re.IGNORECASE)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class NewRelicServer(VendorServer):
    type = "newrelic"

    def __init__(self) -> None:
        super().__init__()
        self.result_key = "result"
        self.results: list[Any] | None = None

    # -- what a user writes (docs/gitbook/usage/metrics.md, "New Relic") --------

    def provider(self) -> dict[str, Any]:
        return {"type": "newrelic", "address": self.base_url}

    def secret_data(self) -> dict[str, str] | None:
        return {"newrelic_account_id": ACCOUNT_ID, "newrelic_query_key": QUERY_KEY}

    def query(self, target: str, namespace: str) -> str:
        return (
            "SELECT\n"
            "    filter(sum(nginx_ingress_controller_requests), WHERE status >= '500') /\n"
            "    sum(nginx_ingress_controller_requests) * 100\n"
            "FROM Metric\n"
            "WHERE metricName = 'nginx_ingress_controller_requests'\n"
            f"AND ingress = '{target}' AND  namespace = '{namespace}'\n"
        )

    # -- the API -----------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/accounts/{account}/query", self._query)

    async def _query(self, request: web.Request) -> web.Response:
        await self.seen(request)
        failure = await self.failure_response()
        if failure is not None:
            return failure
        if request.headers.get("X-Query-Key") != QUERY_KEY:
            return _error(401, "Invalid query key")
        if request.match_info["account"] != ACCOUNT_ID:
            return _error(401, "Invalid query key for this account")
        nrql = request.query.get("nrql", "")
        if not nrql:
            return _error(400, "Missing nrql parameter")
        if not _NRQL_START.match(nrql):
            return _error(
                400, f"NRQL Syntax Error: Error at line 1 position 1, unexpected {nrql[:12]!r}"
            )
        window = _SINCE.search(nrql)
        results = self.results if self.results is not None else [{self.result_key: self.value}]
        return web.json_response(
            {
                "results": results,
                "metadata": {
                    "eventTypes": ["Metric"],
                    "eventType": "Metric",
                    "openEnded": window is None or window["until"] is None,
                    "rawSince": window["since"].upper() if window else "60 MINUTES AGO",
                    "rawUntil": (window["until"] if window and window["until"] else "NOW"),
                    "messages": [],
                    "contents": [
                        {"function": "alias" if self.result_key == "result" else self.result_key}
                    ],
                },
                "performanceStats": {"inspectedCount": 1840, "wallClockTime": 12},
            }
        )
