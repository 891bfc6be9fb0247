"""Builtin metrics ``request-success-rate`` and ``request-duration``, per provider.

The success-rate and duration queries are Flagger's (``pkg/metrics/observers``),
character for character after Flagger's whitespace collapse (Flagger's trailing
commas in label sets included), so dashboards and expectations carry over.  On
top of them this module derives what the statistical judge needs and Flagger
never measures: the same selectors for the primary workload, request and error
*counts* (for the error-rate test) and histogram *buckets* (for the latency
test).  Where a provider's metrics cannot give one of these (Skipper's duration
is a mean; APISIX and Knative name no primary backend), asking for it raises a
:class:`~analysis.ProviderNotSupportedError` that says why.

Providers are chosen by name as Flagger's observer factory does: ``linkerd``
anywhere in the name means Linkerd; ``appmesh*`` and ``gloo*`` by prefix;
``kubernetes`` and ``gatewayapi*`` use the HTTP observer; SMI names
(``smi:v1alpha3``, ``smi:v1alpha3:istio``) use Istio's queries, as Flagger's
default does.  Crossover and SMI names of other meshes are recognised and
reported as not supported; an unknown name is an error (Flagger silently falls
back to Istio).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from analysis._spec.errors import ProviderNotSupportedError, UnknownProviderError
from analysis._spec.templates import QueryContext, render_query
from analysis._spec.vocabulary import FLAGGER_ONLY_PROVIDERS, REQUEST_DURATION, REQUEST_SUCCESS_RATE

__all__ = ["BuiltinQueries", "builtin_queries", "observer_for"]

# Flagger's exact provider names (or prefixes) per observer, beyond istio/linkerd/nginx/http.
_EXACT = {
    "contour": "contour",
    "kuma": "kuma",
    "knative": "knative",
    "osm": "osm",
    "traefik": "traefik",
    "skipper": "skipper",
    "apisix": "apisix",
}
_PREFIX = {"appmesh": "appmesh", "gloo": "gloo"}
_IMPLEMENTED = frozenset({*_EXACT, "appmesh", "appmesh:v1beta2", "gloo"})

# Flagger's spec.provider values whose builtin queries we do not have: Crossover (its own
# observer), and whatever FLAGGER_ONLY_PROVIDERS lists that is not implemented here.
_NOT_SUPPORTED_OBSERVERS = (FLAGGER_ONLY_PROVIDERS - _IMPLEMENTED) | {"crossover"}
_SMI_RE = re.compile(r"^smi:v1alpha[123](?::(?P<mesh>.*))?$")
_SUPPORTED_NAMES = (
    "istio, linkerd, nginx, kubernetes, gatewayapi, appmesh, contour, gloo, kuma, knative, "
    "osm, traefik, skipper, apisix, smi:<version>[:istio|:linkerd]"
)


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
    if p in _EXACT:
        return _EXACT[p]
    for prefix, observer in _PREFIX.items():
        if p.startswith(prefix):
            return observer
    smi = _SMI_RE.match(p)
    if smi and smi.group("mesh") in (None, "istio"):
        return "istio"  # Flagger's observer factory has no SMI case: its default is Istio
    if smi or p in _NOT_SUPPORTED_OBSERVERS or p.split(":")[0] in _NOT_SUPPORTED_OBSERVERS:
        raise ProviderNotSupportedError(
            path,
            f"builtin metrics for provider {p!r} are not supported (supported: "
            f"{_SUPPORTED_NAMES}); use a MetricTemplate instead",
        )
    raise UnknownProviderError(
        path, f"unknown provider {p!r} for builtin metrics; expected one of {_SUPPORTED_NAMES}"
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
# Envoy cluster selectors: App Mesh by pod, the others by the cluster name each one gives the
# canary's upstream (Contour ``test_podinfo-canary_9898``, Gloo
# ``test-podinfo-canaryupstream-9898_gloo-system``, Kuma ``podinfo-canary_test_svc_9898``,
# Knative ``test/podinfo-00002``).
_APPMESH_SEL = _HTTP_SEL
_CONTOUR_SEL = 'envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+"'
_GLOO_SEL = (
    'envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"'
)
_KUMA_SEL = 'service=~"{{ target }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+"'
_KNATIVE_SEL = 'envoy_cluster_name=~"{{ namespace }}/{{ route }}"'
_OSM_SEL = (
    'destination_namespace="{{ namespace }}",destination_kind="Deployment",'
    'destination_name="{{ target }}"'
)
_TRAEFIK_SEL = 'service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd"'
# Skipper's route ids, with every non-word character of the names turned into "_".
_SKIPPER_SEL = (
    'route=~"kube(ew)?_{{ namespace }}__{{ ingress }}_canary__.*__{{ service }}_canary(_[0-9]+)?"'
)
_APISIX_SEL = 'route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+"'
# The envoy observers whose Flagger queries end their label sets with a comma.
_ENVOY_SEL = {
    "appmesh": _APPMESH_SEL,
    "contour": _CONTOUR_SEL + ",",
    "gloo": _GLOO_SEL + ",",
    "kuma": _KUMA_SEL + ",",
    "knative": _KNATIVE_SEL + ",",
}


def _ratio(metric: str, sel: str, good: str, sel_all: str | None = None) -> str:
    """``sum(rate(m{sel,good}[I])) / sum(rate(m{sel_all}[I])) * 100``."""
    i = "[{{ interval }}]"
    return (
        f"sum(rate({metric}{{{sel},{good}}}{i})) / "
        f"sum(rate({metric}{{{sel if sel_all is None else sel_all}}}{i})) * 100"
    )


def _p99(metric: str, sel: str) -> str:
    return f"histogram_quantile(0.99, sum(rate({metric}{{{sel}}}[{{{{ interval }}}}])) by (le))"


# Flagger's queries, exactly (pkg/metrics/observers/*.go after whitespace collapse).
_SUCCESS_RATE = {
    "istio": _ratio("istio_requests_total", _ISTIO_SEL, 'response_code!~"5.*"'),
    "linkerd": _ratio(
        "response_total",
        _LINKERD_SEL,
        'classification!="failure",direction="inbound"',
        _LINKERD_SEL + ',direction="inbound"',
    ),
    "nginx": _ratio("nginx_ingress_controller_requests", _NGINX_SEL, 'status!~"5.*"'),
    "http": _ratio("http_request_duration_seconds_count", _HTTP_SEL, 'status!~"5.*"'),
    **{
        name: _ratio(
            "envoy_cluster_upstream_rq",
            sel.rstrip(","),
            'envoy_response_code!~"5.*"',
            sel,
        )
        for name, sel in _ENVOY_SEL.items()
    },
    "osm": _ratio("osm_request_total", _OSM_SEL, 'response_code!~"5.*"'),
    "traefik": _ratio(
        "traefik_service_request_duration_seconds_bucket",
        _TRAEFIK_SEL,
        'code!~"5..",le="+Inf"',
        _TRAEFIK_SEL + ',le="+Inf"',
    ),
    "skipper": _ratio(
        "skipper_response_duration_seconds_bucket",
        _SKIPPER_SEL,
        'code!~"5..",le="+Inf"',
        _SKIPPER_SEL + ',le="+Inf"',
    ),
    "apisix": _ratio("apisix_http_status", _APISIX_SEL, 'code!~"5.."'),
}
_DURATION = {
    "istio": _p99("istio_request_duration_milliseconds_bucket", _ISTIO_SEL),
    "linkerd": _p99("response_latency_ms_bucket", _LINKERD_SEL + ',direction="inbound"'),
    "nginx": (
        "sum(rate(nginx_ingress_controller_response_duration_seconds_sum{"
        + _NGINX_SEL
        + "}[{{ interval }}])) / sum(rate(nginx_ingress_controller_response_duration_seconds_count{"
        + _NGINX_SEL
        + "}[{{ interval }}])) * 1000"
    ),
    "http": _p99("http_request_duration_seconds_bucket", _HTTP_SEL),
    **{
        name: _p99("envoy_cluster_upstream_rq_time_bucket", sel) for name, sel in _ENVOY_SEL.items()
    },
    "osm": _p99("osm_request_duration_ms_bucket", _OSM_SEL),
    "traefik": _p99("traefik_service_request_duration_seconds_bucket", _TRAEFIK_SEL) + " * 1000",
    "skipper": (
        "sum(rate(skipper_serve_route_duration_seconds_sum{"
        + _SKIPPER_SEL
        + "}[{{ interval }}])) / sum(rate(skipper_serve_route_duration_seconds_count{"
        + _SKIPPER_SEL
        + "}[{{ interval }}])) * 1000"
    ),
    "apisix": _p99("apisix_http_latency_bucket", 'type=~"request",' + _APISIX_SEL),
}
# Factor that turns the duration query's value into milliseconds.
_DURATION_TO_MS = {name: 1.0 for name in _DURATION} | {"http": 1000.0}

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
    **{
        name: ("envoy_cluster_upstream_rq", sel.rstrip(","), 'envoy_response_code=~"5.*"')
        for name, sel in _ENVOY_SEL.items()
    },
    "osm": ("osm_request_total", _OSM_SEL, 'response_code=~"5.*"'),
    # Flagger counts Traefik's and Skipper's requests with the +Inf bucket of a histogram.
    "traefik": (
        "traefik_service_request_duration_seconds_bucket",
        _TRAEFIK_SEL + ',le="+Inf"',
        'code=~"5.."',
    ),
    "skipper": (
        "skipper_response_duration_seconds_bucket",
        _SKIPPER_SEL + ',le="+Inf"',
        'code=~"5.."',
    ),
    "apisix": ("apisix_http_status", _APISIX_SEL, 'code=~"5.."'),
}
_BUCKET_METRIC = {
    "istio": ("istio_request_duration_milliseconds_bucket", _ISTIO_SEL, "ms"),
    "linkerd": ("response_latency_ms_bucket", _LINKERD_SEL + ',direction="inbound"', "ms"),
    "nginx": ("nginx_ingress_controller_request_duration_seconds_bucket", _NGINX_SEL, "s"),
    "http": ("http_request_duration_seconds_bucket", _HTTP_SEL, "s"),
    **{
        name: ("envoy_cluster_upstream_rq_time_bucket", sel.rstrip(","), "ms")
        for name, sel in _ENVOY_SEL.items()
    },
    "osm": ("osm_request_duration_ms_bucket", _OSM_SEL, "ms"),
    "traefik": ("traefik_service_request_duration_seconds_bucket", _TRAEFIK_SEL, "s"),
    "apisix": ("apisix_http_latency_bucket", 'type=~"request",' + _APISIX_SEL, "ms"),
}
_NO_BUCKETS = {
    "skipper": (
        "Flagger's Skipper request-duration is a mean (skipper_serve_route_duration_seconds_sum "
        "/ _count), not a histogram, so the latency test has no builtin buckets for provider "
        "skipper; give compare.bucketsQuery (and bucketsUnit) instead"
    ),
}

# How the primary is selected.  Observers not listed select it by binding ``target`` (and
# ``service``) to their ``-primary`` twins; these rewrite the canary's selector instead, and
# the context stays the canary's.
_PRIMARY_REWRITE = {
    "nginx": (_NGINX_SEL, _NGINX_PRIMARY_SEL),
    "contour": ("{{ service }}-canary_", "{{ service }}-primary_"),
    "gloo": ("{{ target }}-canaryupstream-", "{{ target }}-primaryupstream-"),
    "kuma": ("{{ target }}-canary_", "{{ target }}-primary_"),
    "traefik": ("{{ target }}-canary-", "{{ target }}-primary-"),
    "skipper": ("__{{ service }}_canary(", "__{{ service }}_primary("),
}
_NO_PRIMARY = {
    "apisix": (
        "APISIX labels its metrics by route, and Flagger's canary route carries both the "
        "primary and the canary backend: no builtin query selects the primary alone"
    ),
    "knative": (
        "Flagger's Knative queries select the latest revision by name ({{ route }}); the "
        "revision serving the rest of the traffic is not known to the query"
    ),
}
_NON_WORD = re.compile(r"[^0-9A-Za-z_]")


def _skipper_context(ctx: QueryContext) -> QueryContext:
    """Names as Skipper writes them in route ids: each non-word character becomes ``_``."""
    return replace(
        ctx,
        name=_NON_WORD.sub("_", ctx.name),
        namespace=_NON_WORD.sub("_", ctx.namespace),
        target=_NON_WORD.sub("_", ctx.target),
        service=_NON_WORD.sub("_", ctx.service_name),
        ingress=_NON_WORD.sub("_", ctx.ingress_name),
    )


@dataclass(frozen=True, slots=True)
class BuiltinQueries:
    """Rendered builtin queries for one side (canary or primary) of one canary.

    ``requests``, ``errors`` and ``buckets`` (the statistical judge's) raise
    :class:`~analysis.ProviderNotSupportedError` when the provider's metrics
    cannot give them; ``buckets_unit`` is the unit of the ``le`` bounds.
    """

    observer: str
    success_rate: str
    duration: str
    duration_to_ms: float
    requests_query: str
    errors_query: str
    buckets_query: str | None
    buckets_unit: str
    path: str = "spec.provider"
    no_buckets: str = ""

    @property
    def requests(self) -> str:
        return self.requests_query

    @property
    def errors(self) -> str:
        return self.errors_query

    @property
    def buckets(self) -> str:
        if self.buckets_query is None:
            raise ProviderNotSupportedError(self.path, self.no_buckets)
        return self.buckets_query


def builtin_queries(
    ctx: QueryContext,
    *,
    interval: str = "1m",
    primary: bool = False,
    path: str = "spec.provider",
) -> BuiltinQueries:
    """All builtin queries for ``ctx`` (its canary, or its primary with ``primary=True``).

    For the primary, ``target`` becomes ``<target>-primary`` (Istio, Linkerd, OSM, App Mesh
    and the HTTP observer's pod regex then select the primary pods); NGINX selects the
    primary ingress traffic with ``canary=""``; Contour, Gloo, Kuma, Traefik and Skipper
    select the primary's upstream, whose name has ``primary`` where the canary's has
    ``canary``.  APISIX and Knative have no primary selector (an error says why).
    """
    observer = observer_for(ctx.provider, path=path)
    if primary and observer in _NO_PRIMARY:
        raise ProviderNotSupportedError(
            path,
            f"the statistical judge needs the primary's metrics, and provider {ctx.provider!r} "
            f"has none: {_NO_PRIMARY[observer]}; give compare's own queries instead",
        )
    rewrite = _PRIMARY_REWRITE.get(observer) if primary else None
    side = ctx.for_primary() if primary and rewrite is None else ctx
    if observer == "skipper":
        side = _skipper_context(side)

    def r(template: str) -> str:
        if rewrite is not None:
            template = template.replace(*rewrite)
        return render_query(template, side, interval=interval)

    metric, sel, err = _COUNT_METRIC[observer]
    requests = f"sum(increase({metric}{{{sel}}}[{{{{ interval }}}}]))"
    errors = f"sum(increase({metric}{{{sel},{err}}}[{{{{ interval }}}}])) or vector(0)"
    bucket = _BUCKET_METRIC.get(observer)
    buckets: str | None = None
    unit = "s"
    if bucket is not None:
        bmetric, bsel, unit = bucket
        buckets = r(f"sum by (le) (increase({bmetric}{{{bsel}}}[{{{{ interval }}}}]))")
    return BuiltinQueries(
        observer=observer,
        success_rate=r(_SUCCESS_RATE[observer]),
        duration=r(_DURATION[observer]),
        duration_to_ms=_DURATION_TO_MS[observer],
        requests_query=r(requests),
        errors_query=r(errors),
        buckets_query=buckets,
        buckets_unit=unit,
        path=path,
        no_buckets=_NO_BUCKETS.get(observer, ""),
    )


def builtin_query(name: str, queries: BuiltinQueries) -> str:
    """The threshold query of builtin metric ``name``."""
    if name == REQUEST_SUCCESS_RATE:
        return queries.success_rate
    if name == REQUEST_DURATION:
        return queries.duration
    raise KeyError(name)
