"""Metric analysis for canary-engine: query metrics, judge them, explain the verdict.

This package is independent of the controller (it never imports ``canary``)
so it can be tested, benchmarked and replayed on its own.  Its whole public
surface is re-exported here; the ``_private`` modules behind it may change.

It has two parts.  The pure part (:mod:`analysis.spec`, implemented in
``analysis._spec``) holds the specs, their parsers, the query templates, the
:class:`Outcome` enum and the errors: no I/O, no numpy.  ``canary.model`` parses
every metric of a Canary with it and ``canary.core`` shares its ``Outcome``;
the import contracts in pyproject.toml allow them nothing else of ``analysis``.
The rest judges (``_threshold``, ``_compare`` and ``_stats`` with numpy) and
fetches (``_providers``, ``_prometheus`` with httpx, ``_evaluate`` with asyncio).

Typical use by the controller, once per metric per tick::

    check = canary_metric.check                  # parse_metric(), run by the Canary parser
    check = check.with_template_query(template.query)      # if it has a templateRef
    config = provider_config(template.provider, secret=data)  # a parsed ProviderSpec
    verdict = await evaluate(check, ctx, make_provider(config), now=now, previous=last_status)
    status_entry = verdict.to_status()       # JSON-able, includes the sequential state
    event_text = verdict.summary             # "success rate 97.2% (primary 99.6%, n=1,840), ..."

See docs/analysis.md for the ``compare`` field reference and the judges.

The numeric and I/O parts (the compare judge with numpy, ``evaluate`` with
asyncio, ``PrometheusProvider`` with httpx) are loaded on first use, so pure
callers can import ``analysis`` and ``analysis.spec`` without them (importing
``analysis.spec`` runs this file too).  Type checkers see them through the
``TYPE_CHECKING`` imports below.
"""

import importlib
from typing import TYPE_CHECKING, Any

from analysis._builtin import BuiltinQueries, builtin_queries, observer_for
from analysis._providers import KubeReader, MetricProvider, make_provider
from analysis._spec.errors import (
    AnalysisError,
    AnalysisSpecError,
    AnalysisSpecErrors,
    BadQueryError,
    HTTPStatusError,
    MultipleSeriesError,
    NoDataError,
    PrometheusAPIError,
    ProviderNotSupportedError,
    ProviderUnavailableError,
    QueryError,
    QueryTimeoutError,
    TemplateError,
    UnauthorizedError,
    UnknownProviderError,
)
from analysis._spec.vocabulary import Bucket
from analysis._threshold import ThresholdResult, judge_threshold
from analysis._verdict import Comparison, SequentialState, Verdict
from analysis.spec import (
    BUILTIN_METRICS,
    DEFAULT_PROMETHEUS_ADDRESS,
    DEFAULT_TIMEOUT_SECONDS,
    FLAGGER_ONLY_PROVIDERS,
    NOT_SUPPORTED_PROVIDER_TYPES,
    SCATTERED,
    SUPPORTED_PROVIDER_TYPES,
    VENDORS,
    CompareSpec,
    CompareTest,
    MetricCheck,
    MetricKind,
    OnMaxInconclusive,
    Outcome,
    ProviderConfig,
    ProviderSpec,
    QueryContext,
    Vendor,
    WebSpec,
    compare_problem,
    escape_regex,
    escape_string,
    metric_check_from_spec,
    parse_compare,
    parse_metric,
    parse_provider_spec,
    provider_config,
    provider_config_from_spec,
    render_query,
    vendor,
)

if TYPE_CHECKING:
    from analysis._compare import (
        CompareResult,
        Window,
        add_histograms,
        add_window,
        decide,
        new_state,
    )
    from analysis._evaluate import MIN_WINDOW_SECONDS, evaluate, interval_seconds
    from analysis._prometheus import PrometheusProvider

_LAZY = {
    "CompareResult": "analysis._compare",
    "Window": "analysis._compare",
    "add_histograms": "analysis._compare",
    "add_window": "analysis._compare",
    "decide": "analysis._compare",
    "new_state": "analysis._compare",
    "MIN_WINDOW_SECONDS": "analysis._evaluate",
    "evaluate": "analysis._evaluate",
    "interval_seconds": "analysis._evaluate",
    "PrometheusProvider": "analysis._prometheus",
}


def __getattr__(name: str) -> Any:
    """Load the numeric and I/O parts of the façade on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "BUILTIN_METRICS",
    "DEFAULT_PROMETHEUS_ADDRESS",
    "DEFAULT_TIMEOUT_SECONDS",
    "FLAGGER_ONLY_PROVIDERS",
    "MIN_WINDOW_SECONDS",
    "NOT_SUPPORTED_PROVIDER_TYPES",
    "SCATTERED",
    "SUPPORTED_PROVIDER_TYPES",
    "VENDORS",
    "AnalysisError",
    "AnalysisSpecError",
    "AnalysisSpecErrors",
    "BadQueryError",
    "Bucket",
    "BuiltinQueries",
    "CompareResult",
    "CompareSpec",
    "CompareTest",
    "Comparison",
    "HTTPStatusError",
    "KubeReader",
    "MetricCheck",
    "MetricKind",
    "MetricProvider",
    "MultipleSeriesError",
    "NoDataError",
    "OnMaxInconclusive",
    "Outcome",
    "PrometheusAPIError",
    "PrometheusProvider",
    "ProviderConfig",
    "ProviderNotSupportedError",
    "ProviderSpec",
    "ProviderUnavailableError",
    "QueryContext",
    "QueryError",
    "QueryTimeoutError",
    "SequentialState",
    "TemplateError",
    "ThresholdResult",
    "UnauthorizedError",
    "UnknownProviderError",
    "Vendor",
    "Verdict",
    "WebSpec",
    "Window",
    "add_histograms",
    "add_window",
    "builtin_queries",
    "compare_problem",
    "decide",
    "escape_regex",
    "escape_string",
    "evaluate",
    "interval_seconds",
    "judge_threshold",
    "make_provider",
    "metric_check_from_spec",
    "new_state",
    "observer_for",
    "parse_compare",
    "parse_metric",
    "parse_provider_spec",
    "provider_config",
    "provider_config_from_spec",
    "render_query",
    "vendor",
]
