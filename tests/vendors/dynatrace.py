"""Dynatrace's Metrics API v2 on loopback, as documented at docs.dynatrace.com (Environment API).

Two endpoints, the two Flagger's ``dynatrace`` provider calls, both behind an API token in
``Authorization: Api-Token <token>`` (missing: 401 "Missing authorization parameter.";
wrong: 401 "Token Authentication failed"), errors shaped
``{"error": {"code": ..., "message": ..., "constraintViolations": [...]}}``:

* ``GET /api/v2/metrics/query?metricSelector=...&resolution=...&from=...&to=...``:
  ``metricSelector`` is required and must start with a metric key; ``from``/``to``, when
  given, are Unix epoch milliseconds here (the forms Flagger sends) with ``from < to``;
  ``resolution`` is ``Inf`` or a duration such as ``5m``. Anything else is 400 "Constraints
  violated." naming the parameter. The answer is ``{"totalCount": n, "nextPageKey": null,
  "resolution": ..., "result": [{"metricId": <selector>, "data": [{"dimensions": [...],
  "dimensionMap": {...}, "timestamps": [ms], "values": [v]}]}]}``; no value is
  ``"data": []``.
* ``GET /api/v2/metrics?pageSize=1``: one metric descriptor.

By default the one series holds :attr:`value` (one point, as ``resolution=Inf`` folds the
window). A test sets :attr:`values` for the series' whole value list (None is a null
slot) or :attr:`series` for how many series the selector matches.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from tests.vendors import VendorServer

TOKEN = "dt0c01.ST2EY72KQINMH574WMNVI7YN.G3DFPBEJYMODIDAEX454M7YWBUVEFOWKPRVMWFASS64NFH52PX6BNDVFFM572RZM"
_METRIC_KEY = re.compile(r"^[A-Za-z][\w.\-]*(:[\w.\-]+)*")
_RESOLUTION = re.compile(r"^(Inf|\d+[mhdwMqy])$")


def _error(
    status: int, message: str, violations: list[dict[str, Any]] | None = None
) -> web.Response:
    error: dict[str, Any] = {"code": status, "message": message}
    if violations is not None:
        error["constraintViolations"] = violations
    return web.json_response({"error": error}, status=status)


def _violation(parameter: str, message: str) -> web.Response:
    return _error(
        400,
        "Constraints violated.",
        [{"path": parameter, "message": message, "parameterLocation": "QUERY", "location": None}],
    )


class DynatraceServer(VendorServer):
    type = "dynatrace"

    def __init__(self) -> None:
        super().__init__()
        self.values: list[float | None] | None = None
        self.series = 1

    # -- what a user writes (docs/gitbook/usage/metrics.md, "Dynatrace") --------

    def provider(self) -> dict[str, Any]:
        return {"type": "dynatrace", "address": self.base_url}

    def secret_data(self) -> dict[str, str] | None:
        return {"dynatrace_token": TOKEN}

    def query(self, target: str, namespace: str) -> str:
        return (
            'builtin:service.response.time:filter(in("dt.entity.service",entitySelector('
            f'"type(SERVICE),entityName.equals({target}),'
            "toRelationships.isNamespaceOfService(type(CLOUD_APPLICATION_NAMESPACE),"
            f'entityName.equals({namespace}))"))):splitBy():percentile(95)\n'
        )

    # -- the API -----------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v2/metrics/query", self._query)
        app.router.add_get("/api/v2/metrics", self._metrics)

    def _refused(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization")
        if not auth:
            return _error(401, "Missing authorization parameter.")
        if auth != f"Api-Token {TOKEN}":
            return _error(401, "Token Authentication failed")
        return None

    async def _metrics(self, request: web.Request) -> web.Response:
        await self.seen(request)
        answer = await self.failure_response() or self._refused(request)
        if answer is not None:
            return answer
        return web.json_response(
            {
                "totalCount": 2314,
                "nextPageKey": "___MTIzNDU2Nzg5MA___",
                "metrics": [
                    {
                        "metricId": "builtin:service.response.time",
                        "displayName": "Response time",
                        "unit": "MicroSecond",
                    }
                ],
            }
        )

    async def _query(self, request: web.Request) -> web.Response:
        await self.seen(request)
        answer = await self.failure_response() or self._refused(request)
        if answer is not None:
            return answer
        params = request.query
        selector = params.get("metricSelector", "")
        if not selector:
            return _violation("metricSelector", "must not be null")
        if not _METRIC_KEY.match(selector):
            return _error(400, f"The metric selector is invalid: {selector[:40]}")
        resolution = params.get("resolution", "120")
        if "resolution" in params and not _RESOLUTION.match(resolution):
            return _violation("resolution", "must be Inf or a duration such as 5m")
        bounds: dict[str, int] = {}
        for name in ("from", "to"):
            if name in params:
                try:
                    bounds[name] = int(params[name])
                except ValueError:
                    return _violation(name, "is not a valid timestamp")
        if "from" in bounds and "to" in bounds and bounds["from"] >= bounds["to"]:
            return _violation("from", "must be before 'to'")
        end = bounds.get("to", 0)
        return web.json_response(
            {
                "totalCount": len(self._data(end)),
                "nextPageKey": None,
                "resolution": resolution,
                "result": [
                    {
                        "metricId": selector,
                        "dataPointCountRatio": 1.0e-6,
                        "dimensionCountRatio": 1.0e-5,
                        "data": self._data(end),
                    }
                ],
            }
        )

    def _data(self, end: int) -> list[dict[str, Any]]:
        if self.values is None and self.value is None:
            return []
        values = self.values if self.values is not None else [self.value]
        return [
            {
                "dimensions": [],
                "dimensionMap": {},
                "timestamps": [end - 60_000 * (len(values) - 1 - i) for i in range(len(values))],
                "values": values,
            }
            for _ in range(self.series)
        ]
