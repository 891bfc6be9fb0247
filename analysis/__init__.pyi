"""Static view of the analysis façade for type checkers.

At run time ``__init__.py`` loads the I/O parts (``evaluate``,
``PrometheusProvider``) lazily; this stub lists every public name statically
so mypy sees precise types.  Names in ``__all__`` are re-exported.
"""

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
from analysis._evaluate import MIN_WINDOW_SECONDS, evaluate, interval_seconds
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
from analysis._prometheus import PrometheusProvider
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
