"""The pure part of analysis's public surface: what ``canary.model`` and ``canary.core`` import.

Specs (:class:`MetricCheck`, :class:`CompareSpec`, :class:`ProviderSpec`), their
parsers, the query-template renderer, the :class:`Outcome` enum and the error
tree, and nothing that does I/O or needs numpy.  The import contracts in
pyproject.toml allow the model and the core this module and no other part of
``analysis``; ``import analysis`` (the full façade) offers the same names plus
the judges, the providers and ``evaluate``.

The ``parse_*`` functions report every problem of a spec at once
(:class:`AnalysisSpecErrors`), which is what the Canary parser shows a user; the older
``*_from_spec`` functions raise the first problem only.
"""

from analysis._spec.compare import SCATTERED, CompareSpec, parse_compare
from analysis._spec.errors import (
    AnalysisError,
    AnalysisSpecError,
    AnalysisSpecErrors,
    ProviderNotSupportedError,
    TemplateError,
    UnknownProviderError,
)
from analysis._spec.metric import MetricCheck, metric_check_from_spec, parse_metric
from analysis._spec.provider import (
    DEFAULT_PROMETHEUS_ADDRESS,
    DEFAULT_TIMEOUT_SECONDS,
    NOT_SUPPORTED_PROVIDER_TYPES,
    SUPPORTED_PROVIDER_TYPES,
    ProviderConfig,
    ProviderSpec,
    parse_provider_spec,
    provider_config,
    provider_config_from_spec,
)
from analysis._spec.templates import QueryContext, escape_regex, escape_string, render_query
from analysis._spec.vendors import VENDORS, Vendor, compare_problem, vendor
from analysis._spec.vocabulary import (
    BUILTIN_METRICS,
    FLAGGER_ONLY_PROVIDERS,
    CompareTest,
    MetricKind,
    OnMaxInconclusive,
    Outcome,
)
from analysis._spec.web import WebSpec

__all__ = [
    "BUILTIN_METRICS",
    "DEFAULT_PROMETHEUS_ADDRESS",
    "DEFAULT_TIMEOUT_SECONDS",
    "FLAGGER_ONLY_PROVIDERS",
    "NOT_SUPPORTED_PROVIDER_TYPES",
    "SCATTERED",
    "SUPPORTED_PROVIDER_TYPES",
    "VENDORS",
    "AnalysisError",
    "AnalysisSpecError",
    "AnalysisSpecErrors",
    "CompareSpec",
    "CompareTest",
    "MetricCheck",
    "MetricKind",
    "OnMaxInconclusive",
    "Outcome",
    "ProviderConfig",
    "ProviderNotSupportedError",
    "ProviderSpec",
    "QueryContext",
    "TemplateError",
    "UnknownProviderError",
    "Vendor",
    "WebSpec",
    "compare_problem",
    "escape_regex",
    "escape_string",
    "metric_check_from_spec",
    "parse_compare",
    "parse_metric",
    "parse_provider_spec",
    "provider_config",
    "provider_config_from_spec",
    "render_query",
    "vendor",
]
