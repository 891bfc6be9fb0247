"""Frozen data the analysis package exchanges with its caller.

The controller describes one ``analysis.metrics[]`` entry as a
:class:`MetricCheck`, the canary's names as a :class:`QueryContext`, and gets a
:class:`Verdict` back.  Verdicts round-trip through ``to_status()`` /
``from_status()`` because the Canary status is the controller's only memory:
the sequential test's running evidence (:class:`SequentialState`) travels
inside the stored verdict and is handed back on the next tick.

Parsing of our extension field ``metrics[].compare`` lives here too
(:func:`parse_compare`); every error names the field path and what was expected.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from analysis._errors import SpecError

__all__ = [
    "BUILTIN_METRICS",
    "CompareSpec",
    "CompareTest",
    "Comparison",
    "MetricCheck",
    "MetricKind",
    "OnMaxInconclusive",
    "Outcome",
    "QueryContext",
    "SequentialState",
    "Verdict",
    "metric_check_from_spec",
    "parse_compare",
]

REQUEST_SUCCESS_RATE = "request-success-rate"
REQUEST_DURATION = "request-duration"
BUILTIN_METRICS: frozenset[str] = frozenset({REQUEST_SUCCESS_RATE, REQUEST_DURATION})

#: A PromQL range duration (``30s``, ``1m``, ``1h30m``, ``1d``, ``1w``, ``1y``): the one
#: spelling of it in ``analysis`` (canary's Go-style durations are in canary.model.duration).
PROMQL_DURATION_RE = re.compile(r"^(?:[0-9]+(?:ms|s|m|h|d|w|y))+$")


class Outcome(enum.StrEnum):
    """What a check concluded.  The string values are part of the status API."""

    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"
    NODATA = "NoData"
    ERROR = "Error"


class CompareTest(enum.StrEnum):
    """Which canary-vs-primary test a ``compare`` block runs."""

    ERROR_RATE = "errorRate"
    LATENCY = "latency"


class OnMaxInconclusive(enum.StrEnum):
    """What a check becomes once it has been inconclusive ``maxInconclusive`` times in a row."""

    FAIL = "fail"
    PASS = "pass"


class MetricKind(enum.StrEnum):
    """Where a metric's query comes from."""

    BUILTIN = "builtin"
    TEMPLATE = "template"
    INLINE = "inline"


@dataclass(frozen=True, slots=True)
class QueryContext:
    """The names a query template can refer to (Flagger's template functions).

    ``service``, ``ingress`` and ``route`` default to ``target`` as in Flagger.
    ``provider`` is the canary's mesh/ingress provider (``spec.provider`` or the
    controller default); it chooses the builtin queries.
    """

    name: str
    namespace: str
    target: str
    provider: str
    service: str | None = None
    ingress: str | None = None
    route: str | None = None

    @property
    def service_name(self) -> str:
        return self.service or self.target

    @property
    def ingress_name(self) -> str:
        return self.ingress or self.target

    @property
    def route_name(self) -> str:
        return self.route or self.target

    def for_primary(self) -> QueryContext:
        """The same context with ``target`` and ``service`` bound to their ``-primary`` twins."""
        return replace(
            self,
            target=f"{self.target}-primary",
            service=f"{self.service_name}-primary",
            ingress=self.ingress_name,
            route=self.route_name,
        )


@dataclass(frozen=True, slots=True)
class CompareSpec:
    """Our extension ``metrics[].compare``: judge the canary against the primary.

    Field meanings, defaults and validation are documented in docs/analysis.md.
    """

    test: CompareTest
    alpha: float = 0.01
    allowed_increase: float = 1.1
    min_difference: float | None = None
    min_sample_size: int = 100
    max_inconclusive: int = 5
    on_max_inconclusive: OnMaxInconclusive = OnMaxInconclusive.FAIL
    quantile: float = 0.99
    fail_fast: bool = True
    requests_query: str | None = None
    errors_query: str | None = None
    buckets_query: str | None = None
    buckets_unit: str = "s"

    @property
    def effective_min_difference(self) -> float:
        """``minDifference`` or its default: 0.1 points for errorRate, 0 ms for latency."""
        if self.min_difference is not None:
            return self.min_difference
        return 0.1 if self.test is CompareTest.ERROR_RATE else 0.0


@dataclass(frozen=True, slots=True)
class MetricCheck:
    """One ``analysis.metrics[]`` entry, resolved (template query and provider type known).

    ``query`` is the inline ``metrics[].query`` or the referenced MetricTemplate's
    ``spec.query``; ``None`` for builtin metrics.  ``min``/``max`` come from
    ``thresholdRange``; ``threshold`` is the deprecated single bound.
    """

    name: str
    interval: str = "1m"
    min: float | None = None
    max: float | None = None
    threshold: float | None = None
    query: str | None = None
    kind: MetricKind = MetricKind.BUILTIN
    template: str | None = None
    variables: tuple[tuple[str, str], ...] = ()
    compare: CompareSpec | None = None
    path: str = "spec.analysis.metrics[0]"

    @property
    def variables_map(self) -> dict[str, str]:
        return dict(self.variables)


@dataclass(frozen=True, slots=True)
class SequentialState:
    """Running evidence of a sequential test, stored in the Canary status between ticks.

    ``log_lr`` holds, per alternative of the mixture grid, the log likelihood
    ratio summed over all windows so far.  Totals are for reporting and for the
    minimum-sample guard.  ``window_end`` is where the next window starts, so
    windows never overlap and none is skipped, however irregular the ticks.
    """

    window_end: datetime
    log_lr: tuple[float, ...]
    canary_requests: float = 0.0
    canary_events: float = 0.0
    primary_requests: float = 0.0
    primary_events: float = 0.0
    max_log_lambda: float = 0.0
    windows: int = 0
    inconclusive: int = 0
    hist_le: tuple[float, ...] = ()
    canary_hist: tuple[float, ...] = ()
    primary_hist: tuple[float, ...] = ()

    def to_status(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "windowEnd": _iso(self.window_end),
            "logLR": list(self.log_lr),
            "canary": [_num(self.canary_requests), _num(self.canary_events)],
            "primary": [_num(self.primary_requests), _num(self.primary_events)],
            "maxLogLambda": self.max_log_lambda,
            "windows": self.windows,
            "inconclusive": self.inconclusive,
        }
        if self.hist_le:
            d["hist"] = {
                "le": [("+Inf" if math.isinf(x) else _num(x)) for x in self.hist_le],
                "canary": [_num(x) for x in self.canary_hist],
                "primary": [_num(x) for x in self.primary_hist],
            }
        return d

    @classmethod
    def from_status(cls, d: Mapping[str, Any]) -> SequentialState:
        try:
            hist = d.get("hist") or {}
            return cls(
                window_end=_parse_iso(str(d["windowEnd"])),
                log_lr=tuple(float(x) for x in d["logLR"]),
                canary_requests=float(d["canary"][0]),
                canary_events=float(d["canary"][1]),
                primary_requests=float(d["primary"][0]),
                primary_events=float(d["primary"][1]),
                max_log_lambda=float(d.get("maxLogLambda", 0.0)),
                windows=int(d.get("windows", 0)),
                inconclusive=int(d.get("inconclusive", 0)),
                hist_le=tuple(float(x) for x in hist.get("le", ())),
                canary_hist=tuple(float(x) for x in hist.get("canary", ())),
                primary_hist=tuple(float(x) for x in hist.get("primary", ())),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise SpecError("status.state", f"cannot restore sequential state: {exc}") from None


@dataclass(frozen=True, slots=True)
class Comparison:
    """The numbers behind a canary-vs-primary verdict."""

    test: CompareTest
    canary_value: float | None
    primary_value: float | None
    difference: float | None
    ratio: float | None
    p_value: float
    likelihood_ratio: float
    canary_samples: int
    primary_samples: int
    interval: tuple[float, float] | None = None
    canary_events: int = 0
    primary_events: int = 0

    def to_status(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "test": self.test.value,
            "canary": _num(self.canary_value),
            "primary": _num(self.primary_value),
            "difference": _num(self.difference),
            "ratio": _num(self.ratio),
            "pValue": _num(self.p_value),
            "likelihoodRatio": _num(self.likelihood_ratio),
            "canarySamples": self.canary_samples,
            "primarySamples": self.primary_samples,
            "canaryEvents": self.canary_events,
            "primaryEvents": self.primary_events,
        }
        if self.interval is not None:
            d["interval"] = [_num(self.interval[0]), _num(self.interval[1])]
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_status(cls, d: Mapping[str, Any]) -> Comparison:
        interval = d.get("interval")
        return cls(
            test=CompareTest(d["test"]),
            canary_value=_opt_float(d.get("canary")),
            primary_value=_opt_float(d.get("primary")),
            difference=_opt_float(d.get("difference")),
            ratio=_opt_float(d.get("ratio")),
            p_value=float(d.get("pValue", 1.0)),
            likelihood_ratio=float(d.get("likelihoodRatio", 1.0)),
            canary_samples=int(d.get("canarySamples", 0)),
            primary_samples=int(d.get("primarySamples", 0)),
            interval=(float(interval[0]), float(interval[1])) if interval else None,
            canary_events=int(d.get("canaryEvents", 0)),
            primary_events=int(d.get("primaryEvents", 0)),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """The result of one check of one metric at one tick.

    ``summary`` is the sentence for Events and notifications.  ``conclusive``
    marks a statistical FAIL that should roll back at once (``compare.failFast``)
    instead of counting as one failed check.  ``state`` is the sequential test's
    evidence, to be handed back through ``previous`` on the next tick.
    """

    metric: str
    outcome: Outcome
    summary: str
    evaluated_at: datetime
    judge: str = "threshold"
    value: float | None = None
    unit: str = ""
    min: float | None = None
    max: float | None = None
    query: str | None = None
    comparison: Comparison | None = None
    conclusive: bool = False
    error: str | None = None
    state: SequentialState | None = field(default=None, compare=False)

    @property
    def failed_check(self) -> bool:
        """True when Flagger would count a failed check (Fail, NoData, Error)."""
        return self.outcome in (Outcome.FAIL, Outcome.NODATA, Outcome.ERROR)

    def to_status(self) -> dict[str, Any]:
        """A compact JSON-able dict for the Canary status (``from_status`` restores it)."""
        d: dict[str, Any] = {
            "metric": self.metric,
            "outcome": self.outcome.value,
            "summary": self.summary,
            "evaluatedAt": _iso(self.evaluated_at),
            "judge": self.judge,
            "value": _num(self.value),
            "unit": self.unit or None,
            "min": _num(self.min),
            "max": _num(self.max),
            "query": self.query,
            "conclusive": self.conclusive or None,
            "error": self.error,
        }
        if self.comparison is not None:
            d["comparison"] = self.comparison.to_status()
        if self.state is not None:
            d["state"] = self.state.to_status()
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_status(cls, d: Mapping[str, Any]) -> Verdict:
        """Rebuild a verdict stored by :meth:`to_status`; a bad dict is a ``SpecError``."""
        try:
            comparison = d.get("comparison")
            state = d.get("state")
            return cls(
                metric=str(d["metric"]),
                outcome=Outcome(d["outcome"]),
                summary=str(d.get("summary", "")),
                evaluated_at=_parse_iso(str(d["evaluatedAt"])),
                judge=str(d.get("judge", "threshold")),
                value=_opt_float(d.get("value")),
                unit=str(d.get("unit", "")),
                min=_opt_float(d.get("min")),
                max=_opt_float(d.get("max")),
                query=d.get("query"),
                comparison=Comparison.from_status(comparison) if comparison else None,
                conclusive=bool(d.get("conclusive", False)),
                error=d.get("error"),
                state=SequentialState.from_status(state) if state else None,
            )
        except SpecError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise SpecError("status", f"cannot restore a verdict: {exc}") from None


# -- helpers ------------------------------------------------------------------


def _iso(t: datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_iso(s: str) -> datetime:
    t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _num(x: float | None) -> float | int | str | None:
    """JSON-safe number at full precision (replay needs it); integral floats become ints."""
    if x is None:
        return None
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if float(x).is_integer() and abs(x) < 2**53:
        return int(x)
    return float(x)


def _opt_float(x: object) -> float | None:
    if x is None:
        return None
    if isinstance(x, str):
        special = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
        return special[x] if x in special else float(x)
    return float(x)  # type: ignore[arg-type]


# -- parsing --------------------------------------------------------------------


def _type_name(v: object) -> str:
    return f'"{v}"' if isinstance(v, str) else repr(v)


def _get_number(
    d: Mapping[str, object],
    key: str,
    path: str,
    default: float | None,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    what: str = "a number",
) -> float | None:
    if key not in d or d[key] is None:
        return default
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise SpecError(f"{path}.{key}", f"expected {what}, got {_type_name(v)}")
    x = float(v)
    if lo is not None and (x < lo or (lo_open and x == lo)):
        raise SpecError(f"{path}.{key}", f"expected {what}, got {_type_name(v)}")
    if hi is not None and (x > hi or (hi_open and x == hi)):
        raise SpecError(f"{path}.{key}", f"expected {what}, got {_type_name(v)}")
    return x


def _get_int(
    d: Mapping[str, object], key: str, path: str, default: int, *, lo: int, what: str
) -> int:
    if key not in d or d[key] is None:
        return default
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise SpecError(f"{path}.{key}", f"expected {what}, got {_type_name(v)}")
    return v


def _get_str(d: Mapping[str, object], key: str, path: str) -> str | None:
    if key not in d or d[key] is None:
        return None
    v = d[key]
    if not isinstance(v, str) or not v.strip():
        raise SpecError(f"{path}.{key}", f"expected a non-empty string, got {_type_name(v)}")
    return v


_COMPARE_FIELDS = frozenset(
    {
        "test",
        "alpha",
        "allowedIncrease",
        "minDifference",
        "minSampleSize",
        "maxInconclusive",
        "onMaxInconclusive",
        "quantile",
        "failFast",
        "requestsQuery",
        "errorsQuery",
        "bucketsQuery",
        "bucketsUnit",
    }
)


def parse_compare(
    d: Mapping[str, object], path: str, *, metric_name: str | None = None
) -> CompareSpec:
    """Parse and validate a ``metrics[].compare`` mapping.

    ``metric_name`` lets ``test`` default from a builtin metric's name
    (``request-success-rate`` → ``errorRate``, ``request-duration`` → ``latency``).
    Errors name the field, e.g.
    ``spec.analysis.metrics[1].compare.minSampleSize: expected a positive integer, got "abc"``.
    """
    if not isinstance(d, Mapping):
        raise SpecError(path, f"expected a map, got {_type_name(d)}")
    unknown = sorted(str(k) for k in d if k not in _COMPARE_FIELDS)
    if unknown:
        raise SpecError(
            f"{path}.{unknown[0]}",
            f"unknown field; expected one of {', '.join(sorted(_COMPARE_FIELDS))}",
        )
    raw_test = d.get("test")
    if raw_test is None:
        if metric_name == REQUEST_SUCCESS_RATE:
            test = CompareTest.ERROR_RATE
        elif metric_name == REQUEST_DURATION:
            test = CompareTest.LATENCY
        else:
            raise SpecError(
                f"{path}.test",
                "expected errorRate or latency (required unless the metric is "
                "request-success-rate or request-duration)",
            )
    else:
        try:
            test = CompareTest(str(raw_test)) if isinstance(raw_test, str) else CompareTest("?")
        except ValueError:
            raise SpecError(
                f"{path}.test", f"expected errorRate or latency, got {_type_name(raw_test)}"
            ) from None

    alpha = _get_number(
        d,
        "alpha",
        path,
        0.01,
        lo=0.0,
        hi=0.5,
        lo_open=True,
        hi_open=True,
        what="a number between 0 and 0.5 (exclusive)",
    )
    allowed = _get_number(d, "allowedIncrease", path, 1.1, lo=1.0, what="a ratio >= 1.0")
    min_diff = _get_number(d, "minDifference", path, None, lo=0.0, what="a number >= 0")
    min_n = _get_int(d, "minSampleSize", path, 100, lo=1, what="a positive integer")
    max_inc = _get_int(d, "maxInconclusive", path, 5, lo=0, what="an integer >= 0")
    raw_on = d.get("onMaxInconclusive", "fail")
    try:
        on_max = OnMaxInconclusive(raw_on if isinstance(raw_on, str) else "?")
    except ValueError:
        raise SpecError(
            f"{path}.onMaxInconclusive", f"expected fail or pass, got {_type_name(raw_on)}"
        ) from None
    quantile = _get_number(
        d,
        "quantile",
        path,
        0.99,
        lo=0.5,
        hi=1.0,
        hi_open=True,
        what="a quantile in [0.5, 1)",
    )
    fail_fast = d.get("failFast", True)
    if not isinstance(fail_fast, bool):
        raise SpecError(f"{path}.failFast", f"expected true or false, got {_type_name(fail_fast)}")
    requests_query = _get_str(d, "requestsQuery", path)
    errors_query = _get_str(d, "errorsQuery", path)
    buckets_query = _get_str(d, "bucketsQuery", path)
    buckets_unit = d.get("bucketsUnit", "s")
    if buckets_unit not in ("s", "ms"):
        raise SpecError(f"{path}.bucketsUnit", f"expected s or ms, got {_type_name(buckets_unit)}")
    builtin = metric_name in BUILTIN_METRICS
    if test is CompareTest.ERROR_RATE:
        if (requests_query is None) != (errors_query is None):
            missing = "errorsQuery" if errors_query is None else "requestsQuery"
            raise SpecError(f"{path}.{missing}", "expected both requestsQuery and errorsQuery")
        if requests_query is None and metric_name != REQUEST_SUCCESS_RATE:
            raise SpecError(
                f"{path}.requestsQuery",
                "expected requestsQuery and errorsQuery (counts of requests and of errors over "
                "{{ interval }}) for an errorRate test on a metric that is not "
                "request-success-rate",
            )
        if buckets_query is not None:
            raise SpecError(f"{path}.bucketsQuery", "only allowed with test: latency")
    else:
        if buckets_query is None and metric_name != REQUEST_DURATION:
            raise SpecError(
                f"{path}.bucketsQuery",
                "expected a histogram bucket query (sum by (le) (increase(..._bucket"
                "[{{ interval }}]))) for a latency test on a metric that is not request-duration",
            )
        for key, q in (("requestsQuery", requests_query), ("errorsQuery", errors_query)):
            if q is not None:
                raise SpecError(f"{path}.{key}", "only allowed with test: errorRate")
    del builtin
    assert alpha is not None and allowed is not None and quantile is not None
    return CompareSpec(
        test=test,
        alpha=alpha,
        allowed_increase=allowed,
        min_difference=min_diff,
        min_sample_size=min_n,
        max_inconclusive=max_inc,
        on_max_inconclusive=on_max,
        quantile=quantile,
        fail_fast=fail_fast,
        requests_query=requests_query,
        errors_query=errors_query,
        buckets_query=buckets_query,
        buckets_unit=str(buckets_unit),
    )


def metric_check_from_spec(
    entry: Mapping[str, object],
    *,
    path: str,
    template_query: str | None = None,
    template_name: str | None = None,
) -> MetricCheck:
    """Build a :class:`MetricCheck` from one ``spec.analysis.metrics[]`` mapping.

    ``template_query`` is the ``spec.query`` of the MetricTemplate named by
    ``templateRef`` (the caller fetched it).  A metric with a ``templateRef``
    uses the template even if its name is a builtin one (Flagger would run both).
    """
    if not isinstance(entry, Mapping):
        raise SpecError(path, f"expected a map, got {_type_name(entry)}")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError(f"{path}.name", f"expected a non-empty string, got {_type_name(name)}")
    interval = entry.get("interval") or "1m"
    if not isinstance(interval, str) or not PROMQL_DURATION_RE.match(interval):
        raise SpecError(
            f"{path}.interval", f"expected a duration such as 1m or 30s, got {_type_name(interval)}"
        )
    lo = hi = None
    tr = entry.get("thresholdRange")
    if tr is not None:
        if not isinstance(tr, Mapping):
            raise SpecError(f"{path}.thresholdRange", "expected a map with min and/or max")
        lo = _get_number(tr, "min", f"{path}.thresholdRange", None)
        hi = _get_number(tr, "max", f"{path}.thresholdRange", None)
        if lo is not None and hi is not None and lo > hi:
            raise SpecError(f"{path}.thresholdRange", f"expected min <= max, got {lo:g} > {hi:g}")
    threshold = _get_number(entry, "threshold", path, None)
    variables: list[tuple[str, str]] = []
    raw_vars = entry.get("templateVariables") or {}
    if not isinstance(raw_vars, Mapping):
        raise SpecError(f"{path}.templateVariables", "expected a map of string to string")
    for k, v in raw_vars.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise SpecError(
                f"{path}.templateVariables.{k}", f"expected a string, got {_type_name(v)}"
            )
        variables.append((k, v))
    inline = entry.get("query")
    if inline is not None and (not isinstance(inline, str) or not inline.strip()):
        raise SpecError(
            f"{path}.query", f"expected a non-empty query string, got {_type_name(inline)}"
        )
    if template_query is not None:
        kind, query = MetricKind.TEMPLATE, template_query
    elif isinstance(inline, str):
        kind, query = MetricKind.INLINE, inline
    elif name in BUILTIN_METRICS:
        kind, query = MetricKind.BUILTIN, None
    else:
        raise SpecError(
            path,
            f"metric {name!r} has no usable query: expected a builtin name "
            "(request-success-rate, request-duration), a templateRef or a query",
        )
    compare = None
    raw_compare = entry.get("compare")
    if raw_compare is not None:
        if not isinstance(raw_compare, Mapping):
            raise SpecError(f"{path}.compare", f"expected a map, got {_type_name(raw_compare)}")
        compare = parse_compare(
            raw_compare, f"{path}.compare", metric_name=name if kind is MetricKind.BUILTIN else None
        )
    return MetricCheck(
        name=name,
        interval=interval,
        min=lo,
        max=hi,
        threshold=threshold,
        query=query,
        kind=kind,
        template=template_name,
        variables=tuple(variables),
        compare=compare,
        path=path,
    )
