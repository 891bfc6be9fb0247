"""Our extension field ``metrics[].compare``: its typed form and its parser.

Field meanings, defaults and validation are documented in docs/analysis.md;
every error names the field path and what was expected, e.g.
``spec.analysis.metrics[1].compare.minSampleSize: expected a positive integer, got "abc"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

from analysis._spec.fields import Problems, read_bool, read_int, read_number, read_text, type_name
from analysis._spec.vocabulary import (
    REQUEST_DURATION,
    REQUEST_SUCCESS_RATE,
    CompareTest,
    OnInconclusive,
    OnMaxInconclusive,
    promql_seconds,
)

__all__ = [
    "COMPARE_FIELDS",
    "MAX_RETRIES",
    "SCATTERED",
    "CompareSpec",
    "parse_compare",
    "read_compare",
]


MAX_RETRIES = 100
"""The most retries ``compare.retries`` takes (a mesh or client retrying more is not sane)."""

SCATTERED = 1.5
"""Dispersion (``comparison.dispersion``) from which the events are said to scatter: the
reason a verdict that waits for more requests needs so many.  The verdict's summary,
``canary status`` and the decision report all say it from this figure."""


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
    on_max_inconclusive: OnMaxInconclusive = OnMaxInconclusive.THRESHOLD
    on_inconclusive: OnInconclusive = OnInconclusive.HOLD
    detect_increase: float = 2.0
    warmup_seconds: float | None = None
    quantile: float = 0.99
    fail_fast: bool = True
    requests_query: str | None = None
    errors_query: str | None = None
    buckets_query: str | None = None
    buckets_unit: str = "s"
    retries: int | None = None

    def warmup_for(self, interval_seconds: float) -> float:
        """``warmup`` in seconds; by default the metric's own ``interval`` (docs/analysis.md says
        why).  A warm-up shorter than the interval is one interval: the run's first window is
        a whole interval long, and a window that ends past the warm-up is judged, so
        ``warmup: 10s`` of a 30s metric would otherwise leave nothing out."""
        if self.warmup_seconds is None:
            return interval_seconds
        if self.warmup_seconds <= 0:
            return 0.0
        return max(self.warmup_seconds, interval_seconds)

    def in_warmup(self, interval_seconds: float, elapsed_seconds: float) -> bool:
        """Whether a window that ends ``elapsed_seconds`` after the run's first window began
        lies in the warm-up: the one rule the judge, its evaluation and ``canary simulate``
        share."""
        warmup = self.warmup_for(interval_seconds)
        return warmup > 0 and elapsed_seconds <= warmup

    @property
    def dispersion_start(self) -> float:
        """Where the dispersion estimate of an errorRate test starts: ``retries + 1``.

        A failed request retried ``retries`` times whose retries fail too is counted
        ``retries + 1`` times, so the errors come in clusters of up to that size: the most
        scatter retries can make (E[S^2]/E[S] <= retries + 1 for clusters of S), a
        conservative start.  Unset (or 0), the estimate starts from independent errors (1)
        and learns the scatter from the run's windows alone, which takes a few of them
        (docs/analysis.md, "Declared retries").
        """
        if self.test is not CompareTest.ERROR_RATE or not self.retries:
            return 1.0
        return float(self.retries + 1)

    def with_mesh_retries(self, attempts: int) -> CompareSpec:
        """This spec, with ``retries`` from the retry policy of the mesh in front of the
        service (a Canary's ``service.retries.attempts``) when it is an errorRate test without
        ``retries`` of its own (at most :data:`MAX_RETRIES`)."""
        if self.test is not CompareTest.ERROR_RATE or self.retries is not None or attempts <= 0:
            return self
        return replace(self, retries=min(attempts, MAX_RETRIES))

    @property
    def effective_min_difference(self) -> float:
        """``minDifference`` or its default: 0.1 points for errorRate, 0 ms for latency."""
        if self.min_difference is not None:
            return self.min_difference
        return 0.1 if self.test is CompareTest.ERROR_RATE else 0.0


COMPARE_FIELDS = frozenset(
    {
        "test",
        "alpha",
        "allowedIncrease",
        "minDifference",
        "minSampleSize",
        "maxInconclusive",
        "onMaxInconclusive",
        "onInconclusive",
        "detectIncrease",
        "warmup",
        "quantile",
        "failFast",
        "requestsQuery",
        "errorsQuery",
        "bucketsQuery",
        "bucketsUnit",
        "retries",
    }
)


def parse_compare(
    d: Mapping[str, object], path: str, *, metric_name: str | None = None
) -> CompareSpec:
    """Parse and validate a ``metrics[].compare`` mapping.

    ``metric_name`` lets ``test`` default from a builtin metric's name
    (``request-success-rate`` → ``errorRate``, ``request-duration`` → ``latency``).
    Raises :class:`~analysis.AnalysisSpecErrors` listing every problem; the first names
    the field, e.g.
    ``spec.analysis.metrics[1].compare.minSampleSize: expected a positive integer, got "abc"``.
    """
    problems = Problems()
    spec = read_compare(d, path, problems, metric_name=metric_name)
    problems.raise_all()
    assert spec is not None  # no problem means a spec
    return spec


def read_compare(
    d: object, path: str, problems: Problems, *, metric_name: str | None
) -> CompareSpec | None:
    """Record every problem of a ``compare`` value in ``problems``; the spec if it has none.

    The rules that tie fields together (which queries a test needs) run only
    when every field was valid on its own: a rule about a field that failed
    would only repeat its problem.
    """
    if not isinstance(d, Mapping):
        problems.add(path, f"expected a map, got {type_name(d)}")
        return None
    mark = len(problems)
    _check_known_fields(d, path, problems)
    test = _read_test(d, path, problems, metric_name)
    spec = _read_fields(d, path, problems, test or CompareTest.ERROR_RATE)
    if problems.since(mark):
        return None
    if spec.test is CompareTest.ERROR_RATE:
        _check_error_rate_queries(spec, path, problems, metric_name)
    else:
        _check_latency_queries(spec, path, problems, metric_name)
    return None if problems.since(mark) else spec


def _check_known_fields(d: Mapping[str, object], path: str, problems: Problems) -> None:
    """Our own extension has no room for typos: an unknown field is an error, not a warning."""
    for key in sorted("null" if k is None else str(k) for k in d if k not in COMPARE_FIELDS):
        problems.add(
            f"{path}.{key}",
            f"unknown field; expected one of {', '.join(sorted(COMPARE_FIELDS))}",
        )


def _read_test(
    d: Mapping[str, object], path: str, problems: Problems, metric_name: str | None
) -> CompareTest | None:
    raw_test = d.get("test")
    if raw_test is None:
        if metric_name == REQUEST_SUCCESS_RATE:
            return CompareTest.ERROR_RATE
        if metric_name == REQUEST_DURATION:
            return CompareTest.LATENCY
        problems.add(
            f"{path}.test",
            "expected errorRate or latency (required unless the metric is "
            "request-success-rate or request-duration)",
        )
        return None
    try:
        return CompareTest(raw_test if isinstance(raw_test, str) else "?")
    except ValueError:
        problems.add(f"{path}.test", f"expected errorRate or latency, got {type_name(raw_test)}")
        return None


def _read_fields(
    d: Mapping[str, object], path: str, problems: Problems, test: CompareTest
) -> CompareSpec:
    """Every field but ``test``, each on its own and in order; a bad one reads as its default."""
    default = CompareSpec(test=test)
    alpha = read_number(
        d,
        "alpha",
        path,
        problems,
        default.alpha,
        lo=0.0,
        hi=0.5,
        lo_open=True,
        hi_open=True,
        what="a number between 0 and 0.5 (exclusive)",
    )
    allowed_increase = read_number(
        d,
        "allowedIncrease",
        path,
        problems,
        default.allowed_increase,
        lo=1.0,
        hi=100.0,
        what="a ratio between 1.0 and 100",
    )
    min_difference = read_number(
        d, "minDifference", path, problems, None, lo=0.0, what="a number >= 0"
    )
    min_sample_size = read_int(
        d, "minSampleSize", path, problems, default.min_sample_size, lo=1, what="a positive integer"
    )
    max_inconclusive = read_int(
        d, "maxInconclusive", path, problems, default.max_inconclusive, lo=0, what="an integer >= 0"
    )
    on_max_inconclusive = _read_choice(
        d, "onMaxInconclusive", path, problems, OnMaxInconclusive, default.on_max_inconclusive
    )
    on_inconclusive = _read_choice(
        d, "onInconclusive", path, problems, OnInconclusive, default.on_inconclusive
    )
    detect_increase = read_number(
        d,
        "detectIncrease",
        path,
        problems,
        default.detect_increase,
        lo=1.0,
        lo_open=True,
        what="a ratio > 1.0",
    )
    quantile = _read_quantile(d, path, problems, default.quantile)
    return CompareSpec(
        test=test,
        alpha=alpha,
        allowed_increase=allowed_increase,
        min_difference=min_difference,
        min_sample_size=min_sample_size,
        max_inconclusive=max_inconclusive,
        on_max_inconclusive=on_max_inconclusive,
        on_inconclusive=on_inconclusive,
        detect_increase=detect_increase,
        warmup_seconds=_read_warmup(d, path, problems),
        quantile=quantile,
        fail_fast=read_bool(d, "failFast", path, problems, True),
        requests_query=read_text(d, "requestsQuery", path, problems),
        errors_query=read_text(d, "errorsQuery", path, problems),
        buckets_query=read_text(d, "bucketsQuery", path, problems),
        buckets_unit=_read_buckets_unit(d, path, problems),
        retries=_read_retries(d, path, problems),
    )


def _read_quantile(d: Mapping[str, object], path: str, problems: Problems, default: float) -> float:
    what = "a quantile in [0.5, 1)"
    return read_number(
        d, "quantile", path, problems, default, lo=0.5, hi=1.0, hi_open=True, what=what
    )


_Choice = TypeVar("_Choice", OnMaxInconclusive, OnInconclusive)


def _read_choice(
    d: Mapping[str, object],
    key: str,
    path: str,
    problems: Problems,
    choices: type[_Choice],
    default: _Choice,
) -> _Choice:
    raw = d.get(key)
    if raw is None:
        return default
    try:
        return choices(raw if isinstance(raw, str) else "?")
    except ValueError:
        expected = ", ".join(c.value for c in choices)
        problems.add(f"{path}.{key}", f"expected one of {expected}, got {type_name(raw)}")
        return default


def _read_warmup(d: Mapping[str, object], path: str, problems: Problems) -> float | None:
    """``warmup``: a duration (``0s`` turns it off); absent means the metric's ``interval``."""
    raw = d.get("warmup")
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            return promql_seconds(raw)
        except ValueError:
            pass
    problems.add(
        f"{path}.warmup", f"expected a duration such as 1m, 30s or 0s, got {type_name(raw)}"
    )
    return None


def _read_retries(d: Mapping[str, object], path: str, problems: Problems) -> int | None:
    """``retries``: how often a failed request is retried and counted again; absent, the
    Canary's ``service.retries.attempts`` (canary/model/canary.py) or none."""
    if d.get("retries") is None:
        return None
    what = f"an integer from 0 to {MAX_RETRIES}"
    retries = read_int(d, "retries", path, problems, -1, lo=0, what=what)
    if retries > MAX_RETRIES:
        problems.add(f"{path}.retries", f"expected {what}, got {retries}")
        return None
    return None if retries < 0 else retries


def _read_buckets_unit(d: Mapping[str, object], path: str, problems: Problems) -> str:
    buckets_unit = d.get("bucketsUnit", "s")
    if buckets_unit not in ("s", "ms"):
        problems.add(f"{path}.bucketsUnit", f"expected s or ms, got {type_name(buckets_unit)}")
        return "s"
    return str(buckets_unit)


def _check_error_rate_queries(
    spec: CompareSpec, path: str, problems: Problems, metric_name: str | None
) -> None:
    """errorRate counts requests and errors: both queries, or a builtin that has them."""
    requests_query, errors_query = spec.requests_query, spec.errors_query
    if (requests_query is None) != (errors_query is None):
        missing = "errorsQuery" if errors_query is None else "requestsQuery"
        problems.add(f"{path}.{missing}", "expected both requestsQuery and errorsQuery")
    elif requests_query is None and metric_name != REQUEST_SUCCESS_RATE:
        problems.add(
            f"{path}.requestsQuery",
            "expected requestsQuery and errorsQuery (counts of requests and of errors over "
            "{{ interval }}) for an errorRate test on a metric that is not "
            "request-success-rate",
        )
    if spec.buckets_query is not None:
        problems.add(f"{path}.bucketsQuery", "only allowed with test: latency")


def _check_latency_queries(
    spec: CompareSpec, path: str, problems: Problems, metric_name: str | None
) -> None:
    """latency reads a histogram: a bucket query, or the builtin request-duration's."""
    if spec.buckets_query is None and metric_name != REQUEST_DURATION:
        problems.add(
            f"{path}.bucketsQuery",
            "expected a histogram bucket query (sum by (le) (increase(..._bucket"
            "[{{ interval }}]))) for a latency test on a metric that is not request-duration",
        )
    for key, q in (("requestsQuery", spec.requests_query), ("errorsQuery", spec.errors_query)):
        if q is not None:
            problems.add(f"{path}.{key}", "only allowed with test: errorRate")
    if spec.retries is not None:
        problems.add(
            f"{path}.retries",
            "only allowed with test: errorRate (retried requests are counted again as errors; "
            "a latency histogram's scatter is measured from its windows)",
        )
