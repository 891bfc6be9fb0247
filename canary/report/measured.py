"""The metric series of a run, read from the metrics server for ``canary report``.

The report's model is pure; this module does its one piece of I/O: for each builtin metric of
the run (``request-success-rate``, ``request-duration``) it asks Prometheus for a range query
over the run's window, on the canary's side and on the primary's, with the very queries the
controller judges with (analysis's ``builtin_queries`` on the Canary's query context). The
window starts one metric interval before the run (the first tick's query looked that far
back) and ends at the run's end, or now for a run under way; the step gives about 90 points.

Nothing here raises: a failed query is a reason (a sentence) next to the series that could
be read, and the command prints the reasons as one line.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from analysis import (
    AnalysisError,
    NoDataError,
    PrometheusProvider,
    ProviderConfig,
    QueryContext,
    QueryError,
    builtin_queries,
)
from canary.model.duration import DurationError, parse_duration
from canary.report.model import DecisionReport, MeasuredInput, parse_time

__all__ = ["POINTS", "Fetched", "fetch_series", "metrics_server_of", "step_for"]

POINTS = 90  # about this many points per series
TIMEOUT_SECONDS = 10.0
BUILTIN_NAMES = ("request-success-rate", "request-duration")

Points = tuple[tuple[datetime, float], ...]


@dataclass(frozen=True, slots=True)
class Fetched:
    """What the metrics server gave: the series per metric, and why any are missing."""

    series: Mapping[str, MeasuredInput]
    problems: tuple[tuple[str, str], ...]  # (which series, why it is missing)

    def summary(self) -> str:
        """The problems in one line: each reason once, with the series it cost."""
        by_reason: dict[str, list[str]] = {}
        for where, why in self.problems:
            by_reason.setdefault(why, []).append(where)
        return "; ".join(f"{why} ({', '.join(where)})" for why, where in by_reason.items())


def metrics_server_of(canary: Mapping[str, Any]) -> str | None:
    """The Canary's ``spec.metricsServer``, when it names one."""
    spec = canary.get("spec")
    server = spec.get("metricsServer") if isinstance(spec, Mapping) else None
    return server.strip() if isinstance(server, str) and server.strip() else None


def step_for(seconds: float) -> float:
    """A whole number of seconds giving about :data:`POINTS` points over ``seconds``."""
    return float(max(1, math.ceil(seconds / POINTS)))


def _window(report: DecisionReport, interval: float, now: datetime) -> tuple[datetime, datetime]:
    run = report.run
    started = parse_time(run.started) if run else None
    begin = started or parse_time(report.start) or now
    end = (parse_time(run.ended) if run else None) or now
    try:
        first = begin - timedelta(seconds=interval)
    except OverflowError:  # a run "started" in the year 1 (a hand-edited status)
        first = begin
    return first, max(end, begin)


def _reason(exc: Exception) -> str:
    if isinstance(exc, NoDataError):
        return "no data"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


async def _side(
    provider: PrometheusProvider, query: str, window: tuple[datetime, datetime], step: float
) -> Points | str:
    try:
        return await provider.query_points(query, start=window[0], end=window[1], step_seconds=step)
    except (AnalysisError, QueryError) as exc:
        return _reason(exc)


def _queries(
    ctx: QueryContext, name: str, interval: str
) -> tuple[tuple[str, str, float], str | None]:
    """The canary's and the primary's query of a builtin metric, the factor to its unit, and
    why the primary has none (None when it has)."""
    canary = builtin_queries(ctx, interval=interval)
    scale = canary.duration_to_ms if name == "request-duration" else 1.0
    pick = canary.duration if name == "request-duration" else canary.success_rate
    try:
        primary = builtin_queries(ctx, interval=interval, primary=True)
    except AnalysisError as exc:
        return (pick, "", scale), _reason(exc)
    other = primary.duration if name == "request-duration" else primary.success_rate
    return (pick, other, scale), None


async def _fetch(
    address: str, wanted: Sequence[tuple[str, str]], ctx: QueryContext, report: DecisionReport
) -> Fetched:
    provider = PrometheusProvider(ProviderConfig(address=address, timeout_seconds=TIMEOUT_SECONDS))
    now = datetime.now(UTC)
    series: dict[str, MeasuredInput] = {}
    problems: list[tuple[str, str]] = []
    for name, interval in wanted:
        try:
            (canary_q, primary_q, scale), no_primary = _queries(ctx, name, interval)
            window = _window(report, parse_duration(interval), now)
        except (AnalysisError, DurationError) as exc:
            problems.append((name, _reason(exc)))
            continue
        step = step_for((window[1] - window[0]).total_seconds())
        sides = await asyncio.gather(
            _side(provider, canary_q, window, step),
            *([_side(provider, primary_q, window, step)] if primary_q else []),
        )
        found: list[Points] = []
        for side, got in zip(("canary", "primary"), (*sides, no_primary or ""), strict=False):
            if isinstance(got, str):
                problems.append((f"{name} {side}", got))
                got = ()
            found.append(tuple((at, value * scale) for at, value in got))
        if any(found):
            series[name] = (found[0], found[1] if len(found) > 1 else (), step)
    return Fetched(series, tuple(problems))


def _names(spec: Mapping[str, Any], key: str) -> str | None:
    ref = spec.get(key)
    name = ref.get("name") if isinstance(ref, Mapping) else None
    return name if isinstance(name, str) and name else None


def _context(canary: Mapping[str, Any], default_provider: str) -> QueryContext | None:
    """The Canary's names as its queries see them (``Canary.query_context``), read from the
    document as it is: a Canary this version's parser would reject still has its series."""
    meta, spec = (canary.get(k) for k in ("metadata", "spec"))
    if not isinstance(meta, Mapping) or not isinstance(spec, Mapping):
        return None
    target = _names(spec, "targetRef")
    if target is None:
        return None
    provider = spec.get("provider")
    return QueryContext(
        name=str(meta.get("name") or ""),
        namespace=str(meta.get("namespace") or ""),
        target=target,
        provider=provider if isinstance(provider, str) and provider else default_provider,
        service=_names(spec, "service"),
        ingress=_names(spec, "ingressRef"),
        route=_names(spec, "routeRef"),
    )


def _builtin(canary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The builtin metrics of the spec (no templateRef), with their intervals."""
    spec = canary.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    analysis = spec.get("analysis") or spec.get("canaryAnalysis")
    metrics = analysis.get("metrics") if isinstance(analysis, Mapping) else None
    found: list[tuple[str, str]] = []
    for m in metrics if isinstance(metrics, list) else []:
        if isinstance(m, Mapping) and m.get("name") in BUILTIN_NAMES and not m.get("templateRef"):
            interval = m.get("interval")
            found.append((str(m["name"]), interval if isinstance(interval, str) else "1m"))
    return found


def fetch_series(
    address: str, canary: Mapping[str, Any], report: DecisionReport, default_provider: str
) -> Fetched:
    """The series of the run's builtin metrics from the Prometheus at ``address``."""
    shown = {m.name for m in report.metrics}
    wanted = [(name, interval) for name, interval in _builtin(canary) if name in shown]
    ctx = _context(canary, default_provider)
    if not wanted or ctx is None or report.run is None:
        return Fetched({}, ())
    return asyncio.run(_fetch(address, wanted, ctx, report))
