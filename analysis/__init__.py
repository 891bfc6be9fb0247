"""Metric analysis for canary-engine: query metrics, judge them, explain the verdict.

This package is independent of the controller (it never imports ``canary``)
so it can be tested, benchmarked and replayed on its own.  Its whole public
surface is re-exported here; the ``_private`` modules behind it may change.

Typical use by the controller, once per metric per tick::

    check = metric_check_from_spec(entry, path="spec.analysis.metrics[0]",
                                   template_query=template_spec_query)
    provider = make_provider(provider_config_from_spec(template_provider, secret=data))
    verdict = await evaluate(check, ctx, provider, now=now, previous=last_status)
    status_entry = verdict.to_status()       # JSON-able, includes the sequential state
    event_text = verdict.summary             # "success rate 97.2% (primary 99.6%, n=1,840), ..."

See docs/analysis.md for the ``compare`` field reference and the judges.

The I/O parts (``evaluate``, ``PrometheusProvider``, which pull in asyncio and
httpx) are loaded on first use, so pure callers such as a spec parser can
import ``analysis`` without them (and without breaking their import
contracts).  Type checkers see them through the ``TYPE_CHECKING`` imports below.
"""

import importlib
from typing import TYPE_CHECKING, Any

from analysis._builtin import BuiltinQueries, builtin_queries, observer_for
from analysis._compare import CompareResult, Window, add_histograms, add_window, decide, new_state
from analysis._errors import (
    AnalysisError,
    HTTPStatusError,
    MultipleSeriesError,
    NoDataError,
    PrometheusAPIError,
    ProviderNotSupportedError,
    ProviderUnavailableError,
    QueryError,
    QueryTimeoutError,
    SpecError,
    TemplateError,
    UnknownProviderError,
)
from analysis._model import (
    BUILTIN_METRICS,
    CompareSpec,
    CompareTest,
    Comparison,
    MetricCheck,
    MetricKind,
    OnMaxInconclusive,
    Outcome,
    QueryContext,
    SequentialState,
    Verdict,
    metric_check_from_spec,
    parse_compare,
)
from analysis._providers import (
    DEFAULT_PROMETHEUS_ADDRESS,
    DEFAULT_TIMEOUT_SECONDS,
    NOT_SUPPORTED_PROVIDER_TYPES,
    SUPPORTED_PROVIDER_TYPES,
    Bucket,
    MetricProvider,
    ProviderConfig,
    make_provider,
    provider_config_from_spec,
)
from analysis._templates import escape_regex, escape_string, render_query
from analysis._threshold import ThresholdResult, judge_threshold

if TYPE_CHECKING:
    from analysis._evaluate import MIN_WINDOW_SECONDS, evaluate, interval_seconds
    from analysis._prometheus import PrometheusProvider

_LAZY = {
    "MIN_WINDOW_SECONDS": "analysis._evaluate",
    "evaluate": "analysis._evaluate",
    "interval_seconds": "analysis._evaluate",
    "PrometheusProvider": "analysis._prometheus",
}


def __getattr__(name: str) -> Any:
    """Load the I/O parts of the façade on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "BUILTIN_METRICS",
    "DEFAULT_PROMETHEUS_ADDRESS",
    "DEFAULT_TIMEOUT_SECONDS",
    "MIN_WINDOW_SECONDS",
    "NOT_SUPPORTED_PROVIDER_TYPES",
    "SUPPORTED_PROVIDER_TYPES",
    "AnalysisError",
    "Bucket",
    "BuiltinQueries",
    "CompareResult",
    "CompareSpec",
    "CompareTest",
    "Comparison",
    "HTTPStatusError",
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
    "ProviderUnavailableError",
    "QueryContext",
    "QueryError",
    "QueryTimeoutError",
    "SequentialState",
    "SpecError",
    "TemplateError",
    "ThresholdResult",
    "UnknownProviderError",
    "Verdict",
    "Window",
    "add_histograms",
    "add_window",
    "builtin_queries",
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
    "provider_config_from_spec",
    "render_query",
]
