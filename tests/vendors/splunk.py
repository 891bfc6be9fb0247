"""Splunk Observability Cloud's SignalFlow REST API on loopback, as SignalFx documents it.

``POST /v2/signalflow/execute?start=<ms>&stop=<ms>&immediate=true`` with the program as a
``text/plain`` body and the access token in ``X-SF-Token`` answers a ``text/event-stream``:
control messages (``STREAM_START``, ``JOB_START``, ``END_OF_CHANNEL``), an information
message with the job's resolution, one ``metadata`` message per time series, then ``data``
messages (``{"logicalTimestampMs": ..., "data": [{"tsId": ..., "value": ...}]}``), each JSON
pretty-printed over several ``data:`` lines as SignalFlow sends it. Bad parameters are an
HTTP 400 with SignalFx's JSON error; a missing or wrong token is 401. ``GET /v2/metric`` is
the metric metadata API Flagger's ``IsOnline`` asks.

What a test sets: :attr:`value` (the last point; None: the filters match no time series,
unless :attr:`matched`, when the series exists and its points are null), :attr:`earlier`
(points before it, None for a null), :attr:`trailing_nulls` (null points after it, as for
the latest, not yet reported, periods), :attr:`series` (how many time series the program
publishes), :attr:`program_error` (an ``error`` message instead of data) and :attr:`abort`
(a ``CHANNEL_ABORT`` after the first point).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.vendors import VendorServer

EXECUTE = "/v2/signalflow/execute"
METRIC = "/v2/metric"
TOKEN = "sfx-token-9c2e41d07b"


def _sse(event: str, payload: dict[str, Any]) -> str:
    """One SSE event, its JSON pretty-printed over several ``data:`` lines."""
    lines = json.dumps(payload, indent=2).split("\n")
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


def _error(status: int, message: str, error_type: str) -> web.Response:
    return web.json_response(
        {"error": status, "errorType": error_type, "message": message}, status=status
    )


class SplunkServer(VendorServer):
    """SignalFlow's execute endpoint and the metric API; see the module docstring."""

    type = "splunk"

    def __init__(self) -> None:
        super().__init__()
        self.token = TOKEN
        self.earlier: tuple[float | None, ...] = ()
        self.series = 1
        self.program_error: str | None = None
        self.abort: str | None = None
        self.trailing_nulls = 0
        self.matched = False
        self.resolution_ms = 60_000

    # -- what a user writes ---------------------------------------------------

    def provider(self) -> dict[str, Any]:
        return {"type": "splunk", "address": self.base_url}

    def secret_data(self) -> dict[str, str] | None:
        return {"sf_token_key": self.token}

    def query(self, target: str, namespace: str) -> str:
        """Flagger's documented example turned into an error rate (%): errors / total."""
        del target, namespace  # the template names them; the controller renders it
        scope = (
            "filter('sf_service', '{{ target }}') and filter('sf_environment', '{{ namespace }}')"
        )
        return (
            f"total = data('traces.count', filter={scope}).sum().publish(enable=False)\n"
            f"errors = data('traces.count', filter={scope} and filter('sf_error', 'true'))"
            ".sum().publish(enable=False)\n"
            "((errors/total) * 100).publish()\n"
        )

    # -- the API --------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(EXECUTE, self._execute)
        app.router.add_get(METRIC, self._metric)

    def _refused(self, headers: Any) -> web.Response | None:
        token = headers.get("X-SF-Token")
        if not token:
            return _error(401, "Missing access token (X-SF-Token header)", "UNAUTHORIZED")
        if token != self.token:
            return _error(401, "Invalid access token", "UNAUTHORIZED")
        return None

    async def _metric(self, request: web.Request) -> web.Response:
        seen = await self.seen(request)
        refused = self._refused(seen.headers)
        if refused is not None:
            return refused
        failed = await self.failure_response()
        if failed is not None:
            return failed
        return web.json_response(
            {"count": 1, "results": [{"name": "traces.count", "type": "COUNTER"}]}
        )

    async def _execute(self, request: web.Request) -> web.StreamResponse:
        seen = await self.seen(request)
        refused = self._refused(seen.headers)
        if refused is not None:
            return refused
        try:
            start = int(seen.param("start") or "")
            stop = int(seen.param("stop") or "")
        except ValueError:
            return _error(
                400, "start and stop must be epoch milliseconds", "INVALID_PARAMETER_VALUE"
            )
        if start >= stop:
            return _error(400, "start must be before stop", "INVALID_PARAMETER_VALUE")
        if seen.param("immediate") not in (None, "true", "false"):
            return _error(400, "immediate must be true or false", "INVALID_PARAMETER_VALUE")
        program = seen.body.decode()
        if not program.strip():
            return _error(400, "A SignalFlow program is required", "MISSING_PROGRAM")
        failed = await self.failure_response()
        if failed is not None:
            return failed
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in self._stream(program, start, stop):
            await response.write(chunk.encode())
        await response.write_eof()
        return response

    def _stream(self, program: str, start: int, stop: int) -> list[str]:
        out = [
            _sse("control-message", {"event": "STREAM_START", "timestampMs": stop}),
            _sse(
                "control-message",
                {"event": "JOB_START", "handle": "E2pvXw7AgAA", "timestampMs": stop},
            ),
        ]
        if self.program_error is not None or ".publish(" not in program:
            message = self.program_error or "The program publishes no stream: call publish()"
            out.append(
                _sse(
                    "error",
                    {"error": 400, "errorType": "ANALYTICS_PROGRAM_ERROR", "message": message},
                )
            )
            return out
        out.append(
            _sse(
                "message",
                {
                    "logicalTimestampMs": start,
                    "message": {
                        "messageCode": "JOB_RUNNING_RESOLUTION",
                        "messageLevel": "INFO",
                        "contents": {"resolutionMs": self.resolution_ms},
                    },
                },
            )
        )
        if self.value is None and not self.matched:
            out.append(
                _sse(
                    "message",
                    {
                        "logicalTimestampMs": start,
                        "message": {
                            "messageCode": "FIND_MATCHED_NO_TIMESERIES",
                            "messageLevel": "WARNING",
                            "numInputTimeSeries": 0,
                            "contents": {"query": "sf_metric:traces.count"},
                        },
                    },
                )
            )
        else:
            ts_ids = [f"AAAAAKzEK0{chr(ord('A') + i)}" for i in range(self.series)]
            for ts_id in ts_ids:
                out.append(
                    _sse(
                        "metadata",
                        {
                            "tsId": ts_id,
                            "properties": {
                                "sf_metric": "traces.count",
                                "sf_type": "MetricTimeSeries",
                            },
                        },
                    )
                )
            values = [*self.earlier, self.value, *[None] * self.trailing_nulls]
            step = max(1, (stop - start) // len(values))
            for i, value in enumerate(values):
                logical = start + (i + 1) * step
                data = [{"tsId": t, "value": value} for t in ts_ids]
                out.append(_sse("data", {"data": data, "logicalTimestampMs": logical}))
                if self.abort is not None:
                    out.append(
                        _sse(
                            "control-message",
                            {
                                "event": "CHANNEL_ABORT",
                                "timestampMs": stop,
                                "abortInfo": {
                                    "sf_job_abortState": "FAILED",
                                    "sf_job_abortReason": self.abort,
                                },
                            },
                        )
                    )
                    return out
        out.append(_sse("control-message", {"event": "END_OF_CHANNEL", "timestampMs": stop}))
        return out
