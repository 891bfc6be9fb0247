"""Splunk Observability Cloud (formerly SignalFx): a SignalFlow program, its last data point.

Flagger's ``splunk`` provider (pkg/metrics/providers/splunk.go) runs the template's query as a
SignalFlow program through SignalFx's Go client, over the window of **10 x the metric's
interval ending now**, with ``immediate`` set so the computation answers from history at once
instead of waiting in real time. It drops data points whose value is null, answers "no values"
when none is left, refuses an answer with points from **two or more time series** (a program
must publish one stream: sum or aggregate it), and otherwise uses **the value of the last data
point** received, i.e. the latest logical time. This provider does the same.

Where Flagger opens a websocket, this one uses SignalFlow's REST equivalent, which needs no
client library::

    POST https://stream.<realm>.signalfx.com/v2/signalflow/execute
         ?start=<ms>&stop=<ms>&immediate=true
    X-SF-Token: <sf_token_key>          Content-Type: text/plain      body: the program

answered by a Server-Sent Events stream (``text/event-stream``): ``control-message``
(``STREAM_START``, ``JOB_START``, ``END_OF_CHANNEL`` or ``CHANNEL_ABORT``), ``message``
(information such as ``FIND_MATCHED_NO_TIMESERIES``), ``metadata`` (one per time series),
``data`` (``{"logicalTimestampMs": ..., "data": [{"tsId": ..., "value": ...}]}``) and
``error``. Each event's JSON may be spread over several ``data:`` lines, as SignalFlow
pretty-prints it; :func:`sse_events` reads the stream by the SSE rules.

Errors: an ``error`` message (a program that does not compile, an unknown function) and a
``CHANNEL_ABORT`` (SignalFlow stopped the job) are :class:`~analysis.BadQueryError` with
SignalFlow's own message; HTTP errors follow :mod:`analysis._http` (400 bad parameters or
program, 401/403 a refused token).

Address: required, as in Flagger (no realm is assumed). Flagger's documentation writes the
API address, ``https://api.<realm>.signalfx.com``, and Flagger turns ``api`` into ``stream``
for SignalFlow; so does this provider (on the host's first label only). ``is_online`` asks
the API address (``stream`` turned back into ``api``) for ``GET /v2/metric?limit=1``, as
Flagger does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from analysis._http import SingleValue, VendorHTTP, short
from analysis._spec.errors import (
    BadQueryError,
    MultipleSeriesError,
    NoDataError,
    QueryError,
    UnauthorizedError,
)
from analysis._spec.provider import ProviderConfig

__all__ = ["SplunkProvider", "sse_events"]

_TITLE = "Splunk Observability (SignalFlow)"
TOKEN_KEY = "sf_token_key"
TOKEN_HEADER = "X-SF-Token"
WINDOW_INTERVALS = 10  # Flagger: the window is 10 x the metric's interval, ending now
EXECUTE_PATH = "/v2/signalflow/execute"
ONLINE_PATH = "/v2/metric"


@dataclass(frozen=True, slots=True)
class Point:
    """One value of one time series, as a ``data`` message carries it."""

    ts_id: str
    value: float
    logical_ms: int


def sse_events(text: str) -> Iterator[tuple[str, str]]:
    """(event type, data) of each complete event of a Server-Sent Events stream.

    By the SSE rules: lines end in CRLF, LF or CR; a blank line ends an event; ``:`` starts a
    comment; a field's value loses one leading space; several ``data:`` lines join with a
    newline; an event with no data is skipped; the type is ``message`` unless ``event:`` says
    otherwise; an event the stream ends in the middle of is dropped.
    """
    event = ""
    data: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            if data:
                yield event or "message", "\n".join(data)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)


def _with_host_label(address: str, old: str, new: str) -> str:
    """``address`` with its host's first label ``old`` replaced by ``new`` (api <-> stream)."""
    parts = urlsplit(address)
    host = parts.netloc
    userinfo, at, hostport = host.rpartition("@")
    if hostport.startswith(f"{old}."):
        hostport = new + hostport[len(old) :]
    return urlunsplit((parts.scheme, f"{userinfo}{at}{hostport}", parts.path, "", ""))


class SplunkProvider(SingleValue):
    """SignalFlow over HTTP behind :class:`~analysis.MetricProvider`; see the module docstring."""

    title = _TITLE

    def __init__(
        self,
        config: ProviderConfig,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.http = VendorHTTP(config, _TITLE, client=client, transport=transport)
        address = config.address.rstrip("/")
        self.stream_address = _with_host_label(address, "api", "stream")
        self.api_address = _with_host_label(address, "stream", "api")

    def __repr__(self) -> str:
        return f"SplunkProvider(address={self.http.where!r})"

    def _token(self, query: str) -> str:
        token = self.config.secret_value(TOKEN_KEY)
        if token is None:
            raise UnauthorizedError(
                f"{_TITLE} needs an access token: the key {TOKEN_KEY!r} of the Secret "
                "named by spec.provider.secretRef",
                query=query,
            )
        return token

    def window_ms(self, at: datetime | None) -> tuple[int, int]:
        """(start, stop) in epoch milliseconds: 10 x interval ending at ``at`` (None: now)."""
        end = at if at is not None else datetime.now(UTC)
        stop = int(end.timestamp() * 1000)
        return stop - int(WINDOW_INTERVALS * self.config.interval_seconds * 1000), stop

    async def run_query(self, query: str, *, at: datetime | None = None) -> float:
        start, stop = self.window_ms(at)
        response = await self.http.send(
            "POST",
            f"{self.stream_address}{EXECUTE_PATH}",
            query=query,
            params=[("start", str(start)), ("stop", str(stop)), ("immediate", "true")],
            headers=[
                (TOKEN_HEADER, self._token(query)),
                ("Content-Type", "text/plain"),
                ("Accept", "text/event-stream"),
            ],
            content=query.encode(),
        )
        kind = response.headers.get("Content-Type", "").split(";")[0].strip()
        if kind != "text/event-stream":
            raise QueryError(
                f"{_TITLE} answered program {short(query)!r} with {kind or 'no content type'}, "
                "not an event stream: is spec.provider.address SignalFx's API "
                "(https://api.<realm>.signalfx.com)?",
                query=query,
            )
        points, notes = self._read_stream(response.text, query)
        return self._value(points, notes, query)

    def _read_stream(self, text: str, query: str) -> tuple[list[Point], list[str]]:
        """The non-null data points of the stream, in order, and its information codes."""
        points: list[Point] = []
        notes: list[str] = []
        for event, data in sse_events(text):
            try:
                payload: Any = json.loads(data)
            except ValueError:
                raise QueryError(
                    self.http.clean(
                        f"{_TITLE} sent a {event!r} message that is not JSON for program "
                        f"{short(query)!r}: {short(data, 80)!r}"
                    ),
                    query=query,
                ) from None
            if not isinstance(payload, Mapping):
                raise QueryError(
                    f"{_TITLE} sent a {event!r} message that is not a JSON object "
                    f"for program {short(query)!r}",
                    query=query,
                )
            if event == "error":
                raise BadQueryError(
                    self.http.clean(
                        f"{_TITLE} rejected the program {short(query)!r}: {_error_text(payload)}"
                    ),
                    query=query,
                )
            if event == "control-message":
                kind = payload.get("event")
                if kind == "CHANNEL_ABORT":
                    raise BadQueryError(
                        self.http.clean(
                            f"{_TITLE} aborted the program {short(query)!r}: "
                            f"{_abort_text(payload.get('abortInfo'))}"
                        ),
                        query=query,
                    )
                if kind == "END_OF_CHANNEL":
                    break
            elif event == "message":
                info = payload.get("message")
                if isinstance(info, Mapping) and isinstance(info.get("messageCode"), str):
                    notes.append(info["messageCode"])
            elif event == "data":
                points.extend(self._points(payload, query))
        return points, notes

    def _points(self, payload: Mapping[str, Any], query: str) -> list[Point]:
        batch = payload.get("data")
        logical = payload.get("logicalTimestampMs")
        if not isinstance(batch, list):
            raise QueryError(
                f"{_TITLE} sent a data message without a data list for program {short(query)!r}",
                query=query,
            )
        points: list[Point] = []
        for datum in batch:
            if not isinstance(datum, Mapping) or "tsId" not in datum:
                raise QueryError(
                    f"{_TITLE} sent a data point without tsId for program {short(query)!r}",
                    query=query,
                )
            value = datum.get("value")
            if value is None:
                continue  # Flagger drops null values
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise QueryError(
                    self.http.clean(
                        f"{_TITLE} sent a non-numeric value {short(repr(value), 60)} for "
                        f"program {short(query)!r}"
                    ),
                    query=query,
                )
            points.append(
                Point(str(datum["tsId"]), float(value), logical if isinstance(logical, int) else 0)
            )
        return points

    def _value(self, points: list[Point], notes: list[str], query: str) -> float:
        if not points:
            why = (
                "its filters matched no time series"
                if "FIND_MATCHED_NO_TIMESERIES" in notes
                else "no data point in the window"
            )
            raise NoDataError(
                f"no values found for SignalFlow program {short(query)!r}: {why} "
                f"(last {WINDOW_INTERVALS} x {self.config.interval_seconds:g}s)",
                query=query,
            )
        series = {p.ts_id for p in points}
        if len(series) > 1:
            raise MultipleSeriesError(
                f"SignalFlow program {short(query)!r} published {len(series)} time series, "
                "expected one: aggregate it (.sum(), .mean()) before publish()",
                query=query,
                series=len(series),
            )
        value = points[-1].value
        if math.isnan(value):
            raise NoDataError(f"SignalFlow program {short(query)!r} returned NaN", query=query)
        return value

    async def is_online(self) -> bool:
        """Whether the API answers ``GET /v2/metric?limit=1`` with this token (Flagger's check)."""
        try:
            await self.http.send(
                "GET",
                f"{self.api_address}{ONLINE_PATH}",
                query="GET /v2/metric?limit=1",
                params=[("limit", "1")],
                headers=[(TOKEN_HEADER, self._token("is_online"))],
            )
        except QueryError:
            return False
        return True


def _error_text(payload: Mapping[str, Any]) -> str:
    """SignalFlow's words from an ``error`` message (``message`` and ``errorType``, or
    the ``errors`` list of older streams)."""
    parts: list[str] = []
    message = payload.get("message")
    if isinstance(message, str) and message:
        parts.append(message)
    errors = payload.get("errors")
    if isinstance(errors, list):
        for item in errors:
            if isinstance(item, Mapping):
                parts.append(str(item.get("message") or item.get("code") or item))
    kind = payload.get("errorType")
    text = "; ".join(parts) or "no message"
    return f"{text} ({kind})" if isinstance(kind, str) and kind else text


def _abort_text(info: object) -> str:
    if isinstance(info, Mapping):
        reason = info.get("sf_job_abortReason")
        state = info.get("sf_job_abortState")
        if reason or state:
            return " ".join(str(x) for x in (reason, f"({state})" if state else None) if x)
    return "no reason given"
