"""Builtin metrics of Flagger's other providers: Flagger's exact queries, and what compare derives.

The expected strings are what Flagger sends (``pkg/metrics/observers/*.go`` rendered with
Flagger's test model, then whitespace-collapsed as its Prometheus client does); ours are the
same tokens in the compact spelling of the rest of the module (see ``_compact``).
"""

from __future__ import annotations

import re

import pytest

from analysis import (
    ProviderNotSupportedError,
    QueryContext,
    UnknownProviderError,
    builtin_queries,
    observer_for,
)
from canary.commands.promql import check_expressions, find_promtool

# Flagger's observer tests use this model: every name "podinfo", namespace "default".
FLAGGER = QueryContext(
    name="podinfo",
    namespace="default",
    target="podinfo",
    provider="",
    service="podinfo",
    ingress="podinfo",
    route="podinfo",
)
# Distinct names, to see which one each selector uses.
NAMED = QueryContext(
    name="app",
    namespace="shop",
    target="web",
    provider="",
    service="web-svc",
    ingress="web-ing",
    route="web-00002",
)

_POD = 'kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"'
_SKIPPER_ROUTE = 'route=~"kube(ew)?_default__podinfo_canary__.*__podinfo_canary(_[0-9]+)?"'
_OSM = 'destination_namespace="default", destination_kind="Deployment", destination_name="podinfo"'
_TRAEFIK = 'service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd"'
_APISIX = 'route=~"default_podinfo-podinfo-canary_.+"'


def _envoy(sel: str) -> tuple[str, str]:
    return (
        f' sum( rate( envoy_cluster_upstream_rq{{ {sel} envoy_response_code!~"5.*" }}[1m] ) ) '
        f"/ sum( rate( envoy_cluster_upstream_rq{{ {sel} }}[1m] ) ) * 100",
        f" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{{ {sel} }}"
        "[1m] ) ) by (le) )",
    )


def _trailing(sel: str) -> tuple[str, str]:
    """Flagger's Contour/Gloo/Kuma/Knative queries: the label set ends with a comma."""
    return _envoy(sel + ",")


_APPMESH_SR = (
    f' sum( rate( envoy_cluster_upstream_rq{{ {_POD}, envoy_response_code!~"5.*" }}[1m] ) ) '
    f"/ sum( rate( envoy_cluster_upstream_rq{{ {_POD} }}[1m] ) ) * 100"
)
_APPMESH_RD = (
    f" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{{ {_POD} }}[1m] )"
    " ) by (le) )"
)

# provider -> (Flagger's success-rate query, Flagger's request-duration query)
FLAGGER_QUERIES: dict[str, tuple[str, str]] = {
    "appmesh": (_APPMESH_SR, _APPMESH_RD),
    "appmesh:v1beta2": (_APPMESH_SR, _APPMESH_RD),
    "contour": _trailing('envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+"'),
    "gloo": _trailing(
        'envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"'
    ),
    "kuma": _trailing('service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+"'),
    "knative": _trailing('envoy_cluster_name=~"default/podinfo"'),
    "osm": (
        f' sum( rate( osm_request_total{{ {_OSM}, response_code!~"5.*" }}[1m] ) ) / sum( rate( '
        f"osm_request_total{{ {_OSM} }}[1m] ) ) * 100",
        f" histogram_quantile( 0.99, sum( rate( osm_request_duration_ms_bucket{{ {_OSM} }}[1m] ) )"
        " by (le) )",
    ),
    "traefik": (
        f' sum( rate( traefik_service_request_duration_seconds_bucket{{ {_TRAEFIK}, code!~"5..", '
        f'le="+Inf" }}[1m] ) ) / sum( rate( traefik_service_request_duration_seconds_bucket{{ '
        f'{_TRAEFIK}, le="+Inf" }}[1m] ) ) * 100',
        f" histogram_quantile( 0.99, sum( rate( traefik_service_request_duration_seconds_bucket{{ "
        f"{_TRAEFIK} }}[1m] ) ) by (le) ) * 1000",
    ),
    "skipper": (
        f'sum(rate(skipper_response_duration_seconds_bucket{{{_SKIPPER_ROUTE},code!~"5..",'
        f'le="+Inf"}}[1m])) / sum(rate(skipper_response_duration_seconds_bucket{{{_SKIPPER_ROUTE},'
        'le="+Inf"}[1m])) * 100',
        f"sum(rate(skipper_serve_route_duration_seconds_sum{{{_SKIPPER_ROUTE}}}[1m])) / "
        f"sum(rate(skipper_serve_route_duration_seconds_count{{{_SKIPPER_ROUTE}}}[1m])) * 1000",
    ),
    "apisix": (
        f' sum( rate( apisix_http_status{{ {_APISIX}, code!~"5.." }}[1m] ) ) / sum( rate( '
        f"apisix_http_status{{ {_APISIX} }}[1m] ) ) * 100",
        f' histogram_quantile( 0.99, sum( rate( apisix_http_latency_bucket{{ type=~"request", '
        f"{_APISIX} }}[1m] ) ) by (le) )",
    ),
}


def _compact(flagger: str) -> str:
    """Flagger's collapsed query in the module's spelling: no blanks but ``a / b * 100``."""
    q = re.sub(r"\s+", "", flagger)
    q = q.replace(")/sum(", ") / sum(").replace(")*100", ") * 100").replace(")*1000", ") * 1000")
    return q.replace("histogram_quantile(0.99,", "histogram_quantile(0.99, ").replace(
        ")by(le)", ") by (le)"
    )


def _with(ctx: QueryContext, provider: str) -> QueryContext:
    return QueryContext(
        name=ctx.name,
        namespace=ctx.namespace,
        target=ctx.target,
        provider=provider,
        service=ctx.service,
        ingress=ctx.ingress,
        route=ctx.route,
    )


class TestFlaggerQueries:
    @pytest.mark.parametrize("provider", sorted(FLAGGER_QUERIES))
    def test_success_rate_and_duration_are_flaggers(self, provider: str) -> None:
        sr, rd = FLAGGER_QUERIES[provider]
        q = builtin_queries(_with(FLAGGER, provider))
        assert q.success_rate == _compact(sr)
        assert q.duration == _compact(rd)
        assert q.duration_to_ms == 1.0  # every one of these answers in milliseconds

    @pytest.mark.parametrize(
        ("provider", "observer"),
        [
            ("appmesh", "appmesh"),
            ("appmesh:v1beta2", "appmesh"),
            ("gloo", "gloo"),
            ("contour", "contour"),
            ("kuma", "kuma"),
            ("knative", "knative"),
            ("osm", "osm"),
            ("traefik", "traefik"),
            ("skipper", "skipper"),
            ("apisix", "apisix"),
            ("smi:v1alpha1", "istio"),
            ("smi:v1alpha2", "istio"),
            ("smi:v1alpha3", "istio"),
            ("smi:v1alpha3:istio", "istio"),
            ("smi:v1alpha3:linkerd", "linkerd"),
        ],
    )
    def test_observer_of_each_flagger_provider_name(self, provider: str, observer: str) -> None:
        assert observer_for(provider) == observer

    @pytest.mark.parametrize(
        "provider", ["crossover", "smi:v1alpha3:crossover", "smi:v1alpha2:osm"]
    )
    def test_providers_without_builtin_queries(self, provider: str) -> None:
        with pytest.raises(ProviderNotSupportedError, match="not supported"):
            observer_for(provider)

    def test_unknown_names_are_still_errors(self) -> None:
        with pytest.raises(UnknownProviderError):
            observer_for("smi")
        with pytest.raises(UnknownProviderError):
            observer_for("contour2")

    def test_selectors_use_flaggers_names(self) -> None:
        def sr(provider: str) -> str:
            return builtin_queries(_with(NAMED, provider)).success_rate

        assert 'envoy_cluster_name=~"shop_web-svc-canary_' in sr("contour")  # service
        assert 'envoy_cluster_name=~"shop-web-canaryupstream-' in sr("gloo")  # target
        assert 'service=~"web-canary_shop_svc_' in sr("kuma")
        assert 'envoy_cluster_name=~"shop/web-00002"' in sr("knative")  # route
        assert 'service=~"shop-web-canary-[0-9a-zA-Z-]+@kubernetescrd"' in sr("traefik")
        assert 'route=~"shop_web-00002-web-canary_.+"' in sr("apisix")
        assert "kube(ew)?_shop__web_ing_canary__.*__web_svc_canary(_[0-9]+)?" in sr("skipper")

    def test_skipper_turns_non_word_characters_into_underscores(self) -> None:
        ctx = QueryContext(
            name="a.b",
            namespace="my-ns",
            target="t",
            provider="skipper",
            service="s.v",
            ingress="i-1",
        )
        assert 'route=~"kube(ew)?_my_ns__i_1_canary__.*__s_v_canary(_[0-9]+)?"' in (
            builtin_queries(ctx).success_rate
        )

    def test_names_in_regex_matchers_are_escaped(self) -> None:
        ctx = QueryContext(name="c", namespace="n", target="a.b", provider="gloo")
        assert 'envoy_cluster_name=~"n-a\\\\.b-canaryupstream-' in builtin_queries(ctx).requests


class TestCompareDerivations:
    """Primary selectors, counts (error-rate test) and buckets (latency test)."""

    @pytest.mark.parametrize(
        ("provider", "canary_sel", "primary_sel"),
        [
            (
                "appmesh",
                'kubernetes_namespace="shop",kubernetes_pod_name=~"web-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"',
                'kubernetes_pod_name=~"web-primary-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"',
            ),
            (
                "contour",
                'envoy_cluster_name=~"shop_web-svc-canary_[0-9a-zA-Z-]+"',
                'envoy_cluster_name=~"shop_web-svc-primary_[0-9a-zA-Z-]+"',
            ),
            (
                "gloo",
                'envoy_cluster_name=~"shop-web-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"',
                'envoy_cluster_name=~"shop-web-primaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"',
            ),
            (
                "kuma",
                'service=~"web-canary_shop_svc_[0-9a-zA-Z-]+"',
                'service=~"web-primary_shop_svc_[0-9a-zA-Z-]+"',
            ),
        ],
    )
    def test_envoy_counts_and_buckets(
        self, provider: str, canary_sel: str, primary_sel: str
    ) -> None:
        q = builtin_queries(_with(NAMED, provider), interval="45s")
        assert q.requests == f"sum(increase(envoy_cluster_upstream_rq{{{canary_sel}}}[45s]))"
        assert q.errors == (
            f'sum(increase(envoy_cluster_upstream_rq{{{canary_sel},envoy_response_code=~"5.*"}}'
            "[45s])) or vector(0)"
        )
        assert q.buckets == (
            f"sum by (le) (increase(envoy_cluster_upstream_rq_time_bucket{{{canary_sel}}}[45s]))"
        )
        assert q.buckets_unit == "ms"
        p = builtin_queries(_with(NAMED, provider), interval="45s", primary=True)
        for text in (p.requests, p.errors, p.buckets, p.success_rate, p.duration):
            assert primary_sel in text
            assert "canary" not in text

    def test_osm(self) -> None:
        q = builtin_queries(_with(NAMED, "osm"), interval="45s", primary=True)
        sel = 'destination_namespace="shop",destination_kind="Deployment",destination_name="web-primary"'
        assert q.requests == f"sum(increase(osm_request_total{{{sel}}}[45s]))"
        assert q.errors == (
            f'sum(increase(osm_request_total{{{sel},response_code=~"5.*"}}[45s])) or vector(0)'
        )
        assert q.buckets == f"sum by (le) (increase(osm_request_duration_ms_bucket{{{sel}}}[45s]))"
        assert q.buckets_unit == "ms"

    def test_traefik_counts_with_the_inf_bucket(self) -> None:
        q = builtin_queries(_with(NAMED, "traefik"), interval="45s")
        sel = 'service=~"shop-web-canary-[0-9a-zA-Z-]+@kubernetescrd"'
        metric = "traefik_service_request_duration_seconds_bucket"
        assert q.requests == f'sum(increase({metric}{{{sel},le="+Inf"}}[45s]))'
        assert q.errors == (
            f'sum(increase({metric}{{{sel},le="+Inf",code=~"5.."}}[45s])) or vector(0)'
        )
        assert q.buckets == f"sum by (le) (increase({metric}{{{sel}}}[45s]))"
        assert q.buckets_unit == "s"
        p = builtin_queries(_with(NAMED, "traefik"), interval="45s", primary=True)
        assert 'service=~"shop-web-primary-[0-9a-zA-Z-]+@kubernetescrd"' in p.requests

    def test_skipper_counts_but_has_no_buckets(self) -> None:
        q = builtin_queries(_with(NAMED, "skipper"), interval="45s")
        route = 'route=~"kube(ew)?_shop__web_ing_canary__.*__web_svc_canary(_[0-9]+)?"'
        metric = "skipper_response_duration_seconds_bucket"
        assert q.requests == f'sum(increase({metric}{{{route},le="+Inf"}}[45s]))'
        assert q.errors == (
            f'sum(increase({metric}{{{route},le="+Inf",code=~"5.."}}[45s])) or vector(0)'
        )
        with pytest.raises(ProviderNotSupportedError, match=r"mean.*compare\.bucketsQuery"):
            _ = q.buckets
        p = builtin_queries(_with(NAMED, "skipper"), interval="45s", primary=True)
        assert "__web_svc_primary(_[0-9]+)?" in p.requests

    def test_apisix_buckets_and_no_primary(self) -> None:
        q = builtin_queries(_with(NAMED, "apisix"), interval="45s")
        sel = 'route=~"shop_web-00002-web-canary_.+"'
        assert q.errors == (
            f'sum(increase(apisix_http_status{{{sel},code=~"5.."}}[45s])) or vector(0)'
        )
        assert q.buckets == (
            f'sum by (le) (increase(apisix_http_latency_bucket{{type=~"request",{sel}}}[45s]))'
        )
        assert q.buckets_unit == "ms"
        with pytest.raises(ProviderNotSupportedError, match="both the primary and the canary"):
            builtin_queries(_with(NAMED, "apisix"), primary=True)

    def test_knative_has_no_primary(self) -> None:
        assert builtin_queries(_with(NAMED, "knative")).buckets_unit == "ms"
        with pytest.raises(ProviderNotSupportedError, match="latest revision"):
            builtin_queries(_with(NAMED, "knative"), primary=True)


ALL_PROVIDERS = [
    *sorted(FLAGGER_QUERIES),
    "istio",
    "linkerd",
    "nginx",
    "kubernetes",
    "smi:v1alpha3:istio",
]


@pytest.mark.skipif(find_promtool() is None, reason="promtool is not installed")
def test_every_rendered_query_parses_with_promtool() -> None:
    """Prometheus' own parser accepts every query, Flagger's trailing commas included."""
    promtool = find_promtool()
    assert promtool is not None
    queries: list[str] = []
    for provider in ALL_PROVIDERS:
        for primary in (False, True):
            try:
                q = builtin_queries(_with(NAMED, provider), interval="30s", primary=primary)
            except ProviderNotSupportedError:
                assert primary and provider in ("apisix", "knative")
                continue
            queries += [q.success_rate, q.duration, q.requests, q.errors]
            if q.buckets_query is not None:
                queries.append(q.buckets)
    assert len(queries) > 100
    problems = check_expressions(promtool, queries)
    assert [(q, p) for q, p in zip(queries, problems, strict=True) if p is not None] == []
