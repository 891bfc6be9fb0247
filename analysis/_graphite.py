"""Graphite behind :class:`~analysis.MetricProvider`, with Flagger's ``graphite`` semantics.

A MetricTemplate of type ``graphite`` holds a query string of Graphite's render API, as in
Flagger's documentation::

    target=summarize(asPercent(sumSeries(...ok...), sumSeries(...all...)), '60s', 'avg')&from=-60s

Each reading is one ``GET <address>/render?<query>&format=json``, as Flagger builds it: runs
of whitespace in the query are collapsed to one space (so a multi-line YAML block works),
the query string is split into its parameters (each trimmed), ``format`` is forced to ``json``, and
``/render`` is appended to the address' own path (``http://host/graphite`` asks
``/graphite/render``). The window is the user's: ``from=`` (and ``until=``) in the query.
When the caller asks about a past tick (``at``), the request also carries Graphite's
``now=<unix s>``, against which ``from``/``until`` offsets are taken; a query that sets
``now`` itself keeps it. A Secret with ``username`` and ``password`` (both or neither)
becomes HTTP basic auth, which Graphite leaves to the web server in front of it.

Graphite answers ``[{"target": ..., "datapoints": [[value|null, ts], ...]}, ...]``, one
entry per series, points oldest first, ``null`` where a bucket has no data (the bucket of
the current second or minute is usually still empty). The metric's value is the *last
non-null* datapoint, as in Flagger: the newest number Graphite has. Unlike Flagger, which
walks every series and keeps whichever non-null point it saw last, several series is a
:class:`~analysis.MultipleSeriesError` (wrap the target in ``sumSeries()`` or similar): a
wildcard that matches two pods would otherwise judge one of them at random. No series, or
only null (or NaN) points, is :class:`~analysis.NoDataError`.

Time units: graphite-web's time parser (``render/attime.py`` of 1.1) differs from PromQL
for minutes: it knows ``s``, ``min``, ``h``, ``d``, ``w``, ``mon`` and ``y``, and refuses
``m`` (``from=-1m`` is HTTP 400 "Invalid offset unit 'm'"; ``summarize(..., '1m')`` is
HTTP 500). So this provider asks (``interval_in_seconds``) for ``{{ interval }}`` in
seconds, which both read alike: a metric ``interval: 1m`` (or Flagger's Graphite-style
``1min``) renders ``from=-60s``. What the user wrote literally is sent as written, never
rewritten; the error of a query with a literal ``<n>m`` unit says what to write instead.

``is_online`` runs Flagger's probe, ``target=test``: any answer but an error is online.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx

from analysis._http import SingleValue, VendorHTTP, short
from analysis._spec.errors import (
    AnalysisSpecError,
    BadQueryError,
    HTTPStatusError,
    MultipleSeriesError,
    NoDataError,
    QueryError,
)
from analysis._spec.provider import ProviderConfig

__all__ = ["MINUTES_HINT", "ONLINE_QUERY", "GraphiteProvider", "check_query", "render_params"]

ONLINE_QUERY = "target=test"
"""Flagger's ``IsOnline`` probe: a target that need not exist."""

MINUTES_HINT = (
    "Graphite reads minutes as 'min', not 'm' (which it refuses): write the window with "
    "{{ interval }} (rendered in seconds) or literally as from=-1min"
)

_SPACE_RE = re.compile(r"\s+")
# A PromQL-style minute count (1m, -5m, '10m') where Graphite expects 'min'.
_MINUTES_RE = re.compile(r"\d+m(?![a-z])", re.IGNORECASE)


def render_params(query: str, at: datetime | None = None) -> list[tuple[str, str]]:
    """The parameters of ``/render`` for ``query``, as Flagger builds them.

    Whitespace runs become one space, the string is split like a URL query (``+`` is a
    space, ``%xx`` decoded) and each name and value trimmed, ``format`` becomes ``json`` and, when ``at`` is given and the
    query has no ``now``, ``now`` is ``at`` in whole Unix seconds.
    """
    flat = _SPACE_RE.sub(" ", query).strip().lstrip("?")
    split = parse_qsl(flat, keep_blank_values=True)
    pairs = [(k.strip(), v.strip()) for k, v in split if k.strip() != "format"]
    pairs.append(("format", "json"))
    if at is not None and not any(k == "now" for k, _ in pairs):
        pairs.append(("now", str(int(at.timestamp()))))
    return pairs


def check_query(query: str) -> None:
    """Raise :class:`~analysis.BadQueryError` for a query that cannot be a render request
    (``canary lint`` asks this offline)."""
    if not any(k == "target" for k, _ in render_params(query)):
        raise BadQueryError(
            f"Graphite query {short(query)!r} has no target: a graphite MetricTemplate's "
            "query is a render API query string, e.g. target=sumSeries(app.*.requests)"
            "&from=-60s",
            query=query,
        )


class GraphiteProvider(SingleValue):
    """Graphite's render API; see the module docstring for the window and the point used."""

    title = "Graphite"
    # {{ interval }} in seconds: Graphite refuses PromQL's "m" for minutes.
    interval_in_seconds = True

    def __init__(
        self,
        config: ProviderConfig,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not config.address:
            raise AnalysisSpecError(
                "spec.provider.address",
                "a graphite provider needs the address of graphite-web "
                "(spec.provider.address or the Secret's 'address' key)",
            )
        if (config.username is None) != (config.password is None):
            raise AnalysisSpecError(
                "spec.provider.secretRef",
                "expected both 'username' and 'password' keys in the Secret (or neither)",
            )
        self._config = config
        self._http = VendorHTTP(config, self.title, client=client, transport=transport)
        self._auth: str | None = None
        if config.username is not None and config.password is not None:
            raw = f"{config.username}:{config.password}".encode()
            self._auth = "Basic " + base64.b64encode(raw).decode("ascii")
        parts = urlsplit(config.address)
        path = parts.path.rstrip("/") + "/render"
        self._url = urlunsplit((parts.scheme, parts.netloc, path, "", ""))

    @property
    def config(self) -> ProviderConfig:
        return self._config

    @property
    def render_url(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"GraphiteProvider(address={self._http.where!r})"

    def _headers(self) -> list[tuple[str, str]]:
        headers = [("Accept", "application/json")]
        if self._auth is not None:  # never formatted into a message
            headers.append(("Authorization", self._auth))
        return headers

    async def run_query(self, query: str, *, at: datetime | None = None) -> float:
        check_query(query)
        params = render_params(query, at)
        try:
            body = await self._http.get_json(
                self._url, query=query, params=params, headers=self._headers()
            )
        except (BadQueryError, HTTPStatusError) as exc:
            if not _MINUTES_RE.search(query):
                raise
            hinted = f"{exc} ({MINUTES_HINT})"
            if isinstance(exc, BadQueryError):
                raise BadQueryError(hinted, query=query, status_code=exc.status_code) from None
            raise type(exc)(hinted, query=query, status_code=exc.status_code) from None
        return _last_value(body, query)

    async def is_online(self) -> bool:
        try:
            await self.run_query(ONLINE_QUERY)
        except NoDataError:
            return True
        except QueryError:
            return False
        return True


def _last_value(body: Any, query: str) -> float:
    """The last non-null datapoint of the only series of a render answer."""
    if not isinstance(body, list) or not all(isinstance(s, dict) for s in body):
        raise QueryError(
            f"Graphite answered query {short(query)!r} with {type(body).__name__}, "
            "not a list of series ({target, datapoints})",
            query=query,
        )
    if not body:
        raise NoDataError(f"Graphite found no series for query {short(query)!r}", query=query)
    if len(body) > 1:
        names = ", ".join(str(s.get("target")) for s in body[:3])
        raise MultipleSeriesError(
            f"Graphite query {short(query)!r} returned {len(body)} series ({names}"
            f"{', ...' if len(body) > 3 else ''}) where one was expected "
            "(aggregate them, e.g. with sumSeries())",
            query=query,
            series=len(body),
        )
    series = body[0]
    points = series.get("datapoints")
    if not isinstance(points, list):
        raise QueryError(
            f"Graphite answered query {short(query)!r} with a series without datapoints",
            query=query,
        )
    for point in reversed(points):
        value = _point_value(point, query)
        if value is not None:
            return value
    raise NoDataError(
        f"Graphite series {series.get('target')!r} of query {short(query)!r} has "
        f"{'only null datapoints' if points else 'no datapoints'} in its window",
        query=query,
    )


def _point_value(point: Any, query: str) -> float | None:
    """The value of one ``[value, timestamp]`` pair; None for null or NaN."""
    if not isinstance(point, Sequence) or isinstance(point, str) or len(point) != 2:
        raise QueryError(
            f"Graphite answered query {short(query)!r} with a datapoint {point!r}, "
            "expected [value, timestamp]",
            query=query,
        )
    raw = point[0]
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise QueryError(f"Graphite datapoint {raw!r} is not a number", query=query)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise QueryError(
            f"Graphite answered query {short(query)!r} with a non-numeric datapoint {raw!r}",
            query=query,
        ) from None
    return None if math.isnan(value) else value
