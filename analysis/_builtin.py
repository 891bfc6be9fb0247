"""Builtin metrics ``request-success-rate`` and ``request-duration``, per provider.

The success-rate and duration queries are Flagger's, character for character
(after Flagger's whitespace collapse), so dashboards and expectations carry
over.  On top of them this module derives what the statistical judge needs and
Flagger never measures: the same selectors for the primary workload, request
and error *counts* (for the error-rate test) and histogram *buckets* (for the
latency test).

Providers are chosen by name as Flagger does (``linkerd`` anywhere in the name
means Linkerd; ``kubernetes`` and ``gatewayapi*`` use the HTTP observer).  The
other Flagger providers are recognised and reported as not supported yet; an
unknown name is an error (Flagger silently falls back to Istio).
"""

from __future__ import annotations

from dataclasses import dataclass

from analysis._spec.errors import ProviderNotSupportedError, UnknownProviderError
from analysis._spec.templates import QueryContext, render_query
from analysis._spec.vocabulary import FLAGGER_ONLY_PROVIDERS, REQUEST_DURATION, REQUEST_SUCCESS_RATE

__all__ = ["BuiltinQueries", "builtin_queries", "observer_for"]

# Flagger's spec.provider values whose builtin queries we do not have (yet): the providers
# canary-engine does not drive, and a few more Flagger observes in ways of their own.
_NOT_SUPPORTED_OBSERVERS = FLAGGER_ONLY_PROVIDERS | {
    "smi:v1alpha1",
    "smi:v1alpha2",
    "smi:v1alpha3",
    "crossover",
}


def observer_for(provider: str, *, path: str = "spec.provider") -> str:
    """Map a canary provider name to the observer whose queries apply."""
    p = provider.strip()
    if "linkerd" in p:
        return "linkerd"
    if p == "istio":
        return "istio"
    if p == "nginx":
        return "nginx"
    if p == "kubernetes" or p.startswith("gatewayapi"):
        return "http"
    if p in _NOT_SUPPORTED_OBSERVERS or p.split(":")[0] in _NOT_SUPPORTED_OBSERVERS:
        raise ProviderNotSupportedError(
            path,
            f"builtin metrics for provider {p!r} are not supported yet (supported: istio, "
            "linkerd, nginx, kubernetes, gatewayapi); use a MetricTemplate instead",
        )
    raise UnknownProviderError(
        path,
        f"unknown provider {p!r} for builtin metrics; expected istio, linkerd, nginx, "
        "kubernetes or gatewayapi",
    )


_POD_RE = "{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
_HTTP_SEL = f'kubernetes_namespace="{{{{ namespace }}}}",kubernetes_pod_name=~"{_POD_RE}"'
_ISTIO_SEL = (
    'reporter="destination",destination_workload_namespace="{{ namespace }}",'
    'destination_workload=~"{{ target }}"'
)
_LINKERD_SEL = 'namespace="{{ namespace }}",deployment=~"{{ target }}"'
_NGINX_SEL = 'namespace="{{ namespace }}",ingress="{{ ingress }}",canary!=""'
_NGINX_PRIMARY_SEL = 'namespace="{{ namespace }}",ingress="{{ ingress }}",canary=""'

# Flagger's queries, exactly (pkg/metrics/observers/*.go after whitespace collapse).
_SUCCESS_RATE = {
    "istio": (
        "sum(rate(istio_requests_total{" + _ISTIO_SEL + ',response_code!~"5.*"}[{{ interval }}])) '
        "/ sum(rate(istio_requests_total{" + _ISTIO_SEL + "}[{{ interval }}])) * 100"
    ),
    "linkerd": (
        "sum(rate(response_total{" + _LINKERD_SEL + ',classification!="failure",'
        'direction="inbound"}[{{ interval }}])) / sum(rate(response_total{'
        + _LINKERD_SEL
        + ',direction="inbound"}[{{ interval }}])) * 100'
    ),
    "nginx": (
        "sum(rate(nginx_ingress_controller_requests{" + _NGINX_SEL + ',status!~"5.*"}'
        "[{{ interval }}])) / sum(rate(nginx_ingress_controller_requests{"
        + _NGINX_SEL
        + "}[{{ interval }}])) * 100"
    ),
    "http": (
        "sum(rate(http_request_duration_seconds_count{" + _HTTP_SEL + ',status!~"5.*"}'
        "[{{ interval }}])) / sum(rate(http_request_duration_seconds_count{"
        + _HTTP_SEL
        + "}[{{ interval }}])) * 100"
    ),
}
_DURATION = {
    "istio": (
        "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{"
        + _ISTIO_SEL
        + "}[{{ interval }}])) by (le))"
    ),
    "linkerd": (
        "histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{"
        + _LINKERD_SEL
        + ',direction="inbound"}[{{ interval }}])) by (le))'
    ),
    "nginx": (
        "sum(rate(nginx_ingress_controller_response_duration_seconds_sum{"
        + _NGINX_SEL
        + "}[{{ interval }}])) / sum(rate(nginx_ingress_controller_response_duration_seconds_count{"
        + _NGINX_SEL
        + "}[{{ interval }}])) * 1000"
    ),
    "http": (
        "histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{"
        + _HTTP_SEL
        + "}[{{ interval }}])) by (le))"
    ),
}
# Factor that turns the duration query's value into milliseconds.
_DURATION_TO_MS = {"istio": 1.0, "linkerd": 1.0, "nginx": 1.0, "http": 1000.0}

# Count and bucket queries for the statistical judge (ours, same selectors).
_COUNT_METRIC = {
    "istio": ("istio_requests_total", _ISTIO_SEL, 'response_code=~"5.*"'),
    "linkerd": (
        "response_total",
        _LINKERD_SEL + ',direction="inbound"',
        'classification="failure"',
    ),
    "nginx": ("nginx_ingress_controller_requests", _NGINX_SEL, 'status=~"5.*"'),
    "http": ("http_request_duration_seconds_count", _HTTP_SEL, 'status=~"5.*"'),
}
_BUCKET_METRIC = {
    "istio": ("istio_request_duration_milliseconds_bucket", _ISTIO_SEL, "ms"),
    "linkerd": ("response_latency_ms_bucket", _LINKERD_SEL + ',direction="inbound"', "ms"),
    "nginx": ("nginx_ingress_controller_request_duration_seconds_bucket", _NGINX_SEL, "s"),
    "http": ("http_request_duration_seconds_bucket", _HTTP_SEL, "s"),
}


@dataclass(frozen=True, slots=True)
class BuiltinQueries:
    """Rendered builtin queries for one side (canary or primary) of one canary."""

    observer: str
    success_rate: str
    duration: str
    duration_to_ms: float
    requests: str
    errors: str
    buckets: str
    buckets_unit: str


def _primary_selector(observer: str, template: str) -> str:
    if observer == "nginx":
        return template.replace(_NGINX_SEL, _NGINX_PRIMARY_SEL)
    return template


def builtin_queries(
    ctx: QueryContext,
    *,
    interval: str = "1m",
    primary: bool = False,
    path: str = "spec.provider",
) -> BuiltinQueries:
    """All builtin queries for ``ctx`` (its canary, or its primary with ``primary=True``).

    For the primary, ``target`` becomes ``<target>-primary`` (Istio, Linkerd and
    the HTTP observer's pod regex then select the primary pods); NGINX selects
    the primary ingress traffic with ``canary=""`` instead of ``canary!=""``.
    """
    observer = observer_for(ctx.provider, path=path)
    side = ctx.for_primary() if primary and observer != "nginx" else ctx
    fix = (lambda t: _primary_selector(observer, t)) if primary else (lambda t: t)

    def r(template: str) -> str:
        return render_query(fix(template), side, interval=interval)

    metric, sel, err = _COUNT_METRIC[observer]
    requests = f"sum(increase({metric}{{{sel}}}[{{{{ interval }}}}]))"
    errors = f"sum(increase({metric}{{{sel},{err}}}[{{{{ interval }}}}])) or vector(0)"
    bmetric, bsel, unit = _BUCKET_METRIC[observer]
    buckets = f"sum by (le) (increase({bmetric}{{{bsel}}}[{{{{ interval }}}}]))"
    return BuiltinQueries(
        observer=observer,
        success_rate=r(_SUCCESS_RATE[observer]),
        duration=r(_DURATION[observer]),
        duration_to_ms=_DURATION_TO_MS[observer],
        requests=r(requests),
        errors=r(errors),
        buckets=r(buckets),
        buckets_unit=unit,
    )


def builtin_query(name: str, queries: BuiltinQueries) -> str:
    """The threshold query of builtin metric ``name``."""
    if name == REQUEST_SUCCESS_RATE:
        return queries.success_rate
    if name == REQUEST_DURATION:
        return queries.duration
    raise KeyError(name)
