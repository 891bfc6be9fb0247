"""InfluxDB's v2 Flux query API on loopback, as InfluxDB 2.x documents it.

Debian has no server to run instead: its ``influxdb`` package is 1.6.7, and Flux came with
1.7 (opt-in) and 2.0; ``apt-cache policy influxdb`` shows the version.

``POST /api/v2/query?org=<org>`` with ``Authorization: Token <token>`` and either a JSON
body ``{"query": <flux>, "type": "flux", "dialect": {...}, "now": <RFC 3339>}`` or the
bare Flux text (``Content-Type: application/vnd.flux``) answers annotated CSV
(``text/csv``): the ``#datatype``/``#group``/``#default`` rows the dialect asks for, the
header ``,result,table,_start,_stop,_time,_value,_field,_measurement`` and one record per
table; :attr:`tables` tables, each with the record(s) of :attr:`records` or one record of
:attr:`value` (``long`` when it is whole, as ``count()`` gives, else ``double``). ``value``
None is an empty answer (no tables), as InfluxDB gives for a range without data.
:attr:`runtime_error` makes the answer InfluxDB's in-band error table (HTTP 200).

What it checks, as InfluxDB does: the token (401 ``{"code": "unauthorized", ...}``), the
org (none: 400; another: 404 ``organization name "x" not found``), the body (no query, a
``type`` other than flux, not JSON: 400 ``{"code": "invalid", ...}``) and, after
:meth:`query` was called, that the Flux filters name the expected namespace and target
(a filter for anything else matches no series: an empty answer). ``GET /health`` answers
``{"status": "pass", ...}``.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from tests.vendors import VendorServer

__all__ = ["InfluxDBServer"]

HEADER = ("", "result", "table", "_start", "_stop", "_time", "_value", "_field", "_measurement")
GROUP = ("false", "false", "true", "true", "false", "false", "true", "true")


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _flux_number(value: float, datatype: str) -> str:
    if datatype == "long":
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


class InfluxDBServer(VendorServer):
    type = "influxdb"

    def __init__(self, *, token: str = "influx-token-8c2d41", org: str = "canary-org") -> None:
        super().__init__()
        self.token = token
        self.org = org
        self.tables = 1
        self.records: list[float | None] | None = None
        self.runtime_error: str | None = None
        self.expected: tuple[str, str] | None = None

    # -- what a user writes ---------------------------------------------------

    def provider(self) -> dict[str, Any]:
        return {"type": "influxdb", "address": self.base_url}

    def secret_data(self) -> dict[str, str] | None:
        return {"token": self.token, "org": self.org}

    def query(self, target: str, namespace: str) -> str:
        self.expected = (target, namespace)
        return (
            'from(bucket: "default")\n'
            "  |> range(start: -{{ interval }})\n"
            '  |> filter(fn: (r) => r["_measurement"] == "istio_requests_total")\n'
            '  |> filter(fn: (r) => r["destination_workload_namespace"] == "{{ namespace }}")\n'
            '  |> filter(fn: (r) => r["destination_workload"] == "{{ target }}")\n'
            '  |> filter(fn: (r) => r["response_code"] == "500")\n'
            "  |> group()\n"
            "  |> count()\n"
            '  |> yield(name: "count")\n'
        )

    # -- the API ----------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v2/query", self._query)
        app.router.add_get("/health", self._health)

    async def _health(self, request: web.Request) -> web.Response:
        await self.seen(request)
        failure = await self.failure_response()
        if failure is not None:
            return failure
        return web.json_response(
            {"name": "influxdb", "message": "ready for queries and writes", "status": "pass",
             "checks": [], "version": "v2.7.1", "commit": "stand-in"}
        )  # fmt: skip

    async def _query(self, request: web.Request) -> web.Response:
        seen = await self.seen(request)
        if seen.headers.get("Authorization") != f"Token {self.token}":
            return _error(401, "unauthorized", "unauthorized access")
        failure = await self.failure_response()
        if failure is not None:
            return failure
        org = seen.param("org") or seen.param("orgID")
        if not org:
            return _error(400, "invalid", "Please provide either orgID or org")
        if org != self.org:
            return _error(404, "not found", f'organization name "{org}" not found')
        content_type = seen.headers.get("Content-Type", "").split(";")[0].strip()
        dialect: dict[str, Any] = {}
        now = datetime.now(UTC)
        if content_type == "application/vnd.flux":
            flux = seen.body.decode()
        elif content_type == "application/json":
            try:
                body = json.loads(seen.body)
            except ValueError as exc:
                return _error(400, "invalid", f"failed to decode request body: {exc}")
            if not isinstance(body, dict) or not isinstance(body.get("query"), str):
                return _error(400, "invalid", "failed to decode request body: query is required")
            if body.get("type", "flux") != "flux":
                return _error(400, "invalid", f"unsupported query type {body.get('type')!r}")
            flux = body["query"]
            dialect = body.get("dialect") or {}
            if body.get("now"):
                now = datetime.fromisoformat(str(body["now"]).replace("Z", "+00:00"))
        else:
            return _error(400, "invalid", f"unsupported Content-Type {content_type!r}")
        if "from(" not in flux or "range(" not in flux:
            return _error(
                400, "invalid", "compilation failed: error @1:1: expected from() |> range()"
            )
        if self.runtime_error is not None:
            return _csv(_error_table(self.runtime_error))
        if self.expected is not None:
            target, namespace = self.expected
            if f'== "{target}"' not in flux or f'== "{namespace}"' not in flux:
                return _csv("")
        annotations = [
            a for a in dialect.get("annotations", []) if a in ("datatype", "group", "default")
        ]
        return _csv(self._tables(now, annotations))

    def _tables(self, now: datetime, annotations: list[str]) -> str:
        values: list[float | None] = (
            list(self.records) if self.records is not None else [self.value]
        )
        if self.records is None and self.value is None:
            return ""
        numbers = [v for v in values if v is not None]
        whole = all(not math.isinf(v) and not math.isnan(v) and v == int(v) for v in numbers)
        datatype = "long" if whole and numbers else "double"
        start, stop = now - timedelta(minutes=1), now
        lines: list[str] = []
        if "datatype" in annotations:
            types = ("string", "long", "dateTime:RFC3339", "dateTime:RFC3339", "dateTime:RFC3339",
                     datatype, "string", "string")  # fmt: skip
            lines.append(",".join(("#datatype", *types)))
        if "group" in annotations:
            lines.append(",".join(("#group", *GROUP)))
        if "default" in annotations:
            lines.append(",".join(("#default", "count", "", "", "", "", "", "", "")))
        lines.append(",".join(HEADER))
        for table in range(self.tables):
            for i, value in enumerate(values):
                cell = "" if value is None else _flux_number(value, datatype)
                when = stop - timedelta(seconds=len(values) - 1 - i)
                lines.append(
                    ",".join(("", "", str(table), _rfc3339(start), _rfc3339(stop), _rfc3339(when),
                              cell, "_value", "istio_requests_total"))
                )  # fmt: skip
        return "\r\n".join(lines) + "\r\n\r\n"


def _error_table(message: str) -> str:
    """InfluxDB's in-band error: a table of its own with the columns error and reference."""
    quoted = '"' + message.replace('"', '""') + '"'
    rows = ["#datatype,string,string", "#group,true,true", "#default,,", ",error,reference",
            f",{quoted},"]  # fmt: skip
    return "\r\n".join(rows) + "\r\n\r\n"


def _csv(text: str) -> web.Response:
    return web.Response(status=200, text=text, content_type="text/csv")


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status)
