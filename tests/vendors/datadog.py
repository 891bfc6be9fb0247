"""Datadog's v1 metrics API on loopback, as documented at docs.datadoghq.com/api/latest/metrics.

Two endpoints, the two Flagger's ``datadog`` provider calls:

* ``GET /api/v1/query?from=<unix s>&to=<unix s>&query=<q>`` ("query timeseries points"):
  needs ``DD-API-KEY`` and ``DD-APPLICATION-KEY`` (else 403 ``{"errors": ["Forbidden"]}``)
  and all three parameters, ``from``/``to`` as integers with ``from < to`` (else 400
  ``{"errors": [...]}``). It answers ``{"status": "ok", "res_type": "time_series",
  "series": [{"pointlist": [[ms, value], ...], ...}], ...}`` with the window split into
  buckets, oldest first; no value is ``"series": []``.
* ``GET /api/v1/validate``: needs a valid ``DD-API-KEY``; answers ``{"valid": true}``.

By default every bucket holds :attr:`value`. A test that cares which bucket a client reads
sets :attr:`points` (one entry per bucket, None for an empty bucket) and
:attr:`more_series` (further series after the first, as a grouped query answers).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.vendors import VendorServer

API_KEY = "dd-api-5f0c1e2d3b4a69788796a5b4c3d2e1f0"
APPLICATION_KEY = "dd-app-0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3"
FORBIDDEN = {"errors": ["Forbidden"]}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"errors": [message]}, status=status)


class DatadogServer(VendorServer):
    type = "datadog"
    buckets = 10

    def __init__(self) -> None:
        super().__init__()
        self.points: list[float | None] | None = None
        self.more_series: list[list[float | None]] = []

    # -- what a user writes (docs/gitbook/usage/metrics.md, "Datadog") ---------

    def provider(self) -> dict[str, Any]:
        return {"type": "datadog", "address": self.base_url}

    def secret_data(self) -> dict[str, str] | None:
        return {"datadog_api_key": API_KEY, "datadog_application_key": APPLICATION_KEY}

    def query(self, target: str, namespace: str) -> str:
        return (
            "100 - (\n"
            "  sum:istio.mesh.request.count{\n"
            "    reporter:destination,\n"
            f"    destination_workload_namespace:{namespace},\n"
            f"    destination_workload:{target},\n"
            "    !response_code:404\n"
            "  }.as_count()\n"
            "  /\n"
            "  sum:istio.mesh.request.count{\n"
            "    reporter:destination,\n"
            f"    destination_workload_namespace:{namespace},\n"
            f"    destination_workload:{target}\n"
            "  }.as_count()\n"
            ") * 100\n"
        )

    # -- the API -----------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/query", self._query)
        app.router.add_get("/api/v1/validate", self._validate)

    async def _validate(self, request: web.Request) -> web.Response:
        await self.seen(request)
        failure = await self.failure_response()
        if failure is not None:
            return failure
        if request.headers.get("DD-API-KEY") != API_KEY:
            return web.json_response(FORBIDDEN, status=403)
        return web.json_response({"valid": True})

    async def _query(self, request: web.Request) -> web.Response:
        await self.seen(request)
        failure = await self.failure_response()
        if failure is not None:
            return failure
        if (
            request.headers.get("DD-API-KEY") != API_KEY
            or request.headers.get("DD-APPLICATION-KEY") != APPLICATION_KEY
        ):
            return web.json_response(FORBIDDEN, status=403)
        params = request.query
        for name in ("from", "to", "query"):
            if not params.get(name):
                return _error(400, f"Missing required parameter '{name}'")
        try:
            start, end = int(params["from"]), int(params["to"])
        except ValueError:
            return _error(400, "Parameters 'from' and 'to' must be integers (Unix seconds)")
        if start >= end:
            return _error(400, "'from' must be before 'to'")
        query = params["query"]
        return web.json_response(
            {
                "status": "ok",
                "res_type": "time_series",
                "resp_version": 1,
                "query": query,
                "from_date": start * 1000,
                "to_date": end * 1000,
                "group_by": [],
                "message": "",
                "series": self._series(query, start, end),
            }
        )

    def _series(self, query: str, start: int, end: int) -> list[dict[str, Any]]:
        if self.points is None and self.value is None:
            return []
        first = self.points if self.points is not None else [self.value] * self.buckets
        step_ms = (end - start) * 1000 // max(len(first), 1)
        return [
            {
                "metric": query,
                "display_name": query,
                "expression": query,
                "scope": "*",
                "tag_set": [],
                "aggr": "sum",
                "query_index": 0,
                "interval": step_ms // 1000,
                "length": len(values),
                "start": start * 1000,
                "end": end * 1000,
                "unit": None,
                "pointlist": [[float(start * 1000 + i * step_ms), v] for i, v in enumerate(values)],
            }
            for values in [first, *self.more_series]
        ]
