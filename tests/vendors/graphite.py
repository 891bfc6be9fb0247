"""Graphite's render API on loopback, as graphite-web 1.1 answers it.

``GET /render?target=<expr>[&target=...]&from=<t>&until=<t>&now=<t>&format=json`` answers
``[{"target": <expr>, "datapoints": [[value|null, unix s], ...]}]``: one series per
target (``series_per_target`` of them, to play a wildcard), points every ``step`` seconds
over ``[from, until)``, oldest first. The points are :attr:`points` when a test sets them,
else :attr:`value` everywhere but the newest bucket, which is still filling and so
``null``; ``value`` None gives only nulls (a metric without data in the window).

What the stand-in checks, as graphite-web and the web server in front of it do:

* HTTP basic auth with :attr:`username`/:attr:`password` (a web server's job; graphite-web
  has none): missing or wrong is 401 with ``WWW-Authenticate``;
* ``format`` must be ``json`` (graphite-web would draw a PNG otherwise: here a 400);
* ``from``/``until``/``now`` are parsed with graphite-web's own rules (``render/attime.py``):
  Unix seconds, ``now``, or an offset such as ``-30s``/``-5min``/``-2h``; the units are
  graphite's (``s``, ``min``, ``h``, ``d``, ``w``, ``mon``, ``y``), so ``-1m`` is graphite-web's
  ``400 Invalid parameters (Invalid offset unit 'm')``;
* after :meth:`query` was called, a target must name ``<namespace>.<target>``: any other
  metric does not exist, and graphite answers ``[]`` for it;
* no target at all is graphite-web's ``[]``.

A user's template (Flagger's documented example, with the namespace in the metric path):
the window is ``from=-{{ interval }}``, which the provider renders in seconds (``1m`` is
``-60s``): this server refuses ``m`` for minutes as graphite-web does.
"""

from __future__ import annotations

import base64
import math
import time
from typing import Any

from aiohttp import web

from tests.vendors import VendorServer

__all__ = ["GraphiteServer", "OffsetError", "parse_at_time"]

_UNITS = (
    ("s", 1),
    ("min", 60),
    ("h", 3600),
    ("d", 86400),
    ("w", 7 * 86400),
    ("mon", 30 * 86400),
    ("y", 365 * 86400),
)


class OffsetError(ValueError):
    """A time graphite-web would refuse; the message is graphite-web's."""


def _unit_seconds(unit: str) -> int:
    # graphite-web matches unit prefixes in this order: 's...' is seconds, 'min...' minutes.
    for prefix, seconds in _UNITS:
        if unit.startswith(prefix):
            return seconds
    raise OffsetError(f"Invalid offset unit '{unit}'")


def _parse_offset(offset: str) -> int:
    if not offset:
        return 0
    sign = 1
    if offset[0] in "+-":
        sign = -1 if offset[0] == "-" else 1
        offset = offset[1:]
    total = 0
    while offset:
        digits = len(offset) - len(offset.lstrip("0123456789"))
        if digits == 0:
            raise OffsetError(f"Invalid offset: {offset}")
        num = int(offset[:digits])
        offset = offset[digits:]
        letters = len(offset) - len(offset.lstrip("abcdefghijklmnopqrstuvwxyz"))
        unit, offset = offset[:letters], offset[letters:]
        total += num * _unit_seconds(unit)
    return sign * total


def parse_at_time(raw: str, now: float) -> float:
    """A ``from``/``until``/``now`` value in Unix seconds, by graphite-web's rules (subset)."""
    s = raw.strip().lower().replace("_", "").replace(",", "").replace(" ", "")
    if s.isdigit():
        return float(s)
    if s.startswith("now"):
        s = s[3:]
    if s and s[0] not in "+-":
        raise OffsetError(f"Unknown time reference {raw!r}")
    return now + _parse_offset(s)


class GraphiteServer(VendorServer):
    type = "graphite"

    def __init__(self, *, username: str = "flagger", password: str = "graphite-pw-5e1f") -> None:
        super().__init__()
        self.username: str | None = username
        self.password: str | None = password
        self.step = 10
        self.series_per_target = 1
        self.points: list[float | None] | None = None
        self.expected_metric: str | None = None

    # -- what a user writes ---------------------------------------------------

    def provider(self) -> dict[str, Any]:
        return {"type": "graphite", "address": self.base_url}

    def secret_data(self) -> dict[str, str] | None:
        if self.username is None or self.password is None:
            return None
        return {"username": self.username, "password": self.password}

    def query(self, target: str, namespace: str) -> str:
        self.expected_metric = f"{namespace}.{target}"
        app = "stats.timers.httpServerRequests.app.{{ namespace }}.{{ target }}"
        return (
            "target=summarize(\n"
            "  asPercent(\n"
            f"    sumSeries({app}.exception.*.method.*.outcome."
            "{CLIENT_ERROR,INFORMATIONAL,REDIRECTION,SUCCESS}.status.*.uri.*.count),\n"
            f"    sumSeries({app}.exception.*.method.*.outcome.*.status.*.uri.*.count)\n"
            "  ),\n"
            "  '{{ interval }}',\n"
            "  'avg'\n"
            ")&from=-{{ interval }}"
        )

    # -- the API ----------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/render", self._render)

    def _authorized(self, header: str | None) -> bool:
        if self.username is None or self.password is None:
            return True
        raw = f"{self.username}:{self.password}".encode()
        return header == "Basic " + base64.b64encode(raw).decode("ascii")

    async def _render(self, request: web.Request) -> web.Response:
        seen = await self.seen(request)
        if not self._authorized(seen.headers.get("Authorization")):
            return web.Response(
                status=401,
                text="401 Authorization Required",
                headers={"WWW-Authenticate": 'Basic realm="graphite"'},
            )
        failure = await self.failure_response()
        if failure is not None:
            return failure
        if seen.param("format") != "json":
            return _invalid(f"format {seen.param('format')!r}: this stand-in answers json only")
        wall = time.time()
        try:
            now = parse_at_time(seen.param("now") or "now", wall)
            until = parse_at_time(seen.param("until") or "now", now)
            start = parse_at_time(seen.param("from") or "-24h", now)
        except OffsetError as exc:
            return _invalid(str(exc))
        start, until = min(start, until), max(start, until)
        targets = [v for k, v in seen.query if k == "target"]
        body: list[dict[str, Any]] = []
        for target in targets:
            if self.expected_metric is not None and self.expected_metric not in target:
                continue  # no such metric: graphite leaves it out
            for _ in range(self.series_per_target):
                body.append({"target": target, "datapoints": self._datapoints(start, until)})
        return web.json_response(body)

    def _datapoints(self, start: float, until: float) -> list[list[Any]]:
        first = int(start // self.step * self.step) + self.step
        stamps = list(range(first, int(until) + 1, self.step))[-1000:] or [first]
        if self.points is not None:
            values = list(self.points)
            stamps = [stamps[-1] - self.step * (len(values) - 1 - i) for i in range(len(values))]
        else:
            values = [self.value] * (len(stamps) - 1) + [None]
        return [[_json_number(v), ts] for v, ts in zip(values, stamps, strict=True)]


def _json_number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _invalid(reason: str) -> web.Response:
    """graphite-web's answer to parameters it cannot read (render/views.py)."""
    return web.Response(
        status=400, text=f"Invalid parameters ({reason})", content_type="text/plain"
    )
