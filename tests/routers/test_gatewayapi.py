"""The Gateway API router (v1, v1beta1) and Linkerd through GAMMA."""

from __future__ import annotations

import json
from typing import Any

import pytest

from canary.adapters.routers import GatewayAPIRouter, RouterError, make_router
from canary.adapters.routers.builders import (
    FLUX_RECONCILE_ANNOTATION,
    ORIGINAL_CONFIG_ANNOTATION,
    SessionCookies,
    gateway,
    seeded_cookie_factory,
)
from canary.core.observations import Routes
from tests.routers.fakes import FakeKube
from tests.routers.support import NS, make_canary, strip_server_fields

HR = "gateway.networking.k8s.io/v1"
GATEWAY = {"name": "gateway", "namespace": "istio-ingress"}
PATH_ROOT = {"path": {"type": "PathPrefix", "value": "/"}}


def backend(name: str, weight: int, **extra: Any) -> dict[str, Any]:
    return {"group": "", "kind": "Service", "name": name, "port": 9898, "weight": weight, **extra}


def gw_canary(provider: str = "gatewayapi:v1", **kw: Any) -> Any:
    service = {"gatewayRefs": [GATEWAY], **kw.pop("service", {})}
    return make_canary(provider, service=service, **kw)


class TestHTTPRoute:
    @pytest.mark.parametrize("weight", [0, 45, 100])
    def test_exact_object_at_weight(self, weight: int) -> None:
        canary = gw_canary(service={"hosts": ["www.example.com"], "timeout": "30s"})
        route = gateway.http_route(canary, None, Routes(100 - weight, weight))
        assert route == {
            "apiVersion": HR,
            "kind": "HTTPRoute",
            "metadata": {
                "name": "podinfo",
                "namespace": NS,
                "annotations": {FLUX_RECONCILE_ANNOTATION: "disabled"},
                "ownerReferences": [
                    {
                        "apiVersion": "canary.gitops.dev/v1beta1",
                        "kind": "Canary",
                        "name": "podinfo",
                        "uid": "canary-uid-1",
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "parentRefs": [GATEWAY],
                "hostnames": ["www.example.com"],
                "rules": [
                    {
                        "matches": [PATH_ROOT],
                        "backendRefs": [
                            backend("podinfo-primary", 100 - weight),
                            backend("podinfo-canary", weight),
                        ],
                        "timeouts": {"request": "30s"},
                    }
                ],
            },
        }
        assert gateway.read_routes(canary, route) == Routes(100 - weight, weight)

    def test_v1beta1(self) -> None:
        route = gateway.http_route(gw_canary("gatewayapi:v1beta1"), None, version="v1beta1")
        assert route["apiVersion"] == "gateway.networking.k8s.io/v1beta1"

    def test_matches_translated_from_istio_shape(self) -> None:
        match = [
            {"uri": {"exact": "/login"}, "method": {"exact": "POST"}},
            {
                "uri": {"regex": "/api/v[0-9]+"},
                "headers": {"x-b": {"regex": "b.*"}, "x-a": {"exact": "1"}},
            },
            {"uri": {"prefix": "/static"}, "queryParams": {"debug": {"exact": "true"}}},
        ]
        rules = gateway.http_route(gw_canary(service={"match": match}), None)["spec"]["rules"]
        assert rules[0]["matches"] == [
            {"path": {"type": "Exact", "value": "/login"}, "method": "POST"},
            {
                "path": {"type": "RegularExpression", "value": "/api/v[0-9]+"},
                "headers": [
                    {"type": "Exact", "name": "x-a", "value": "1"},
                    {"type": "RegularExpression", "name": "x-b", "value": "b.*"},
                ],
            },
            {
                "path": {"type": "PathPrefix", "value": "/static"},
                "queryParams": [{"type": "Exact", "name": "debug", "value": "true"}],
            },
        ]

    @pytest.mark.parametrize(
        ("match", "field"),
        [
            ({"uri": {"suffix": ".js"}}, "spec.service.match[0].uri"),
            ({"headers": {"x": {"prefix": "a"}}}, "spec.service.match[0].headers.x"),
            ({"sourceLabels": {"app": "x"}}, "spec.service.match[0].sourceLabels"),
        ],
    )
    def test_untranslatable_match_names_the_field(self, match: dict[str, Any], field: str) -> None:
        with pytest.raises(RouterError) as err:
            gateway.http_route(gw_canary(service={"match": [match]}), None)
        assert err.value.field == field

    def test_filters_from_the_service(self) -> None:
        service = {
            "headers": {
                "request": {"set": {"x-b": "2", "x-a": "1"}, "remove": ["x-c"]},
                "response": {"add": {"x-served-by": "canary-engine"}},
            },
            "rewrite": {"uri": "/", "type": "ReplacePrefixMatch", "authority": "internal"},
            "mirror": [{"backendRef": {"name": "shadow", "port": 8080}}],
            "corsPolicy": {
                "allowOrigins": [{"exact": "https://example.com"}],
                "allowMethods": ["GET"],
                "maxAge": "24h",
                "allowCredentials": True,
            },
            "backendTimeout": "10s",
        }
        rule = gateway.http_route(gw_canary(service=service), None)["spec"]["rules"][0]
        assert rule["filters"] == [
            {
                "type": "RequestHeaderModifier",
                "requestHeaderModifier": {
                    "set": [{"name": "x-a", "value": "1"}, {"name": "x-b", "value": "2"}],
                    "remove": ["x-c"],
                },
            },
            {
                "type": "ResponseHeaderModifier",
                "responseHeaderModifier": {
                    "add": [{"name": "x-served-by", "value": "canary-engine"}]
                },
            },
            {
                "type": "URLRewrite",
                "urlRewrite": {
                    "hostname": "internal",
                    "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"},
                },
            },
            {
                "type": "RequestMirror",
                "requestMirror": {"backendRef": {"name": "shadow", "port": 8080}},
            },
            {
                "type": "CORS",
                "cors": {
                    "allowOrigins": ["https://example.com"],
                    "allowMethods": ["GET"],
                    "maxAge": 86400,
                    "allowCredentials": True,
                },
            },
        ]
        assert rule["timeouts"] == {"backendRequest": "10s"}

    def test_full_path_rewrite_is_the_default(self) -> None:
        rule = gateway.http_route(gw_canary(service={"rewrite": {"uri": "/v2"}}), None)["spec"][
            "rules"
        ][0]
        assert rule["filters"] == [
            {
                "type": "URLRewrite",
                "urlRewrite": {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/v2"}},
            }
        ]

    def test_without_gateway_refs(self) -> None:
        canary = make_canary("gatewayapi:v1", validate=False)
        with pytest.raises(RouterError) as err:
            gateway.http_route(canary, None)
        assert err.value.field == "spec.service.gatewayRefs"


class TestRoutingStates:
    def test_mirror_filter_only_while_mirrored(self) -> None:
        canary = gw_canary(
            analysis={"interval": "1m", "threshold": 5, "iterations": 5, "mirror": True}
        )
        on = gateway.http_route(canary, None, Routes(100, 0, True))
        assert on["spec"]["rules"][0]["filters"] == [
            {
                "type": "RequestMirror",
                "requestMirror": {
                    "backendRef": {
                        "group": "",
                        "kind": "Service",
                        "name": "podinfo-canary",
                        "port": 9898,
                    }
                },
            }
        ]
        assert gateway.read_routes(canary, on) == Routes(100, 0, True)
        off = gateway.http_route(canary, on, Routes(0, 100, False))
        assert "filters" not in off["spec"]["rules"][0]
        assert gateway.read_routes(canary, off) == Routes(0, 100, False)

    def test_ab_second_rule_keeps_the_rest_on_the_primary(self) -> None:
        analysis = {
            "interval": "1m",
            "threshold": 5,
            "iterations": 5,
            "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
        }
        canary = gw_canary(analysis=analysis, service={"match": [{"uri": {"prefix": "/api"}}]})
        route = gateway.http_route(canary, None, Routes(0, 100))
        assert route["spec"]["rules"] == [
            {
                "matches": [
                    {
                        "path": {"type": "PathPrefix", "value": "/api"},
                        "headers": [{"type": "Exact", "name": "x-canary", "value": "insider"}],
                    }
                ],
                "backendRefs": [backend("podinfo-primary", 0), backend("podinfo-canary", 100)],
            },
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                "backendRefs": [backend("podinfo-primary", 100)],
            },
        ]
        assert gateway.read_routes(canary, route) == Routes(0, 100)

    def test_session_affinity_lifecycle(self) -> None:
        analysis = {
            "interval": "1m",
            "threshold": 5,
            "stepWeight": 10,
            "sessionAffinity": {"cookieName": "flagger-cookie", "maxAge": 600},
        }
        canary = gw_canary(analysis=analysis)
        factory = seeded_cookie_factory(11)
        step = gateway.http_route(canary, None, Routes(90, 10), new_cookie=factory)
        cookie = gateway.read_cookies(canary, step).canary
        value = cookie.split("=", 1)[1]
        sticky, weighted = step["spec"]["rules"]
        assert sticky == {
            "matches": [
                {
                    "headers": [
                        {
                            "type": "RegularExpression",
                            "name": "Cookie",
                            "value": f".*flagger-cookie.*{value}.*",
                        }
                    ]
                }
            ],
            "backendRefs": [backend("podinfo-primary", 0), backend("podinfo-canary", 100)],
        }
        assert weighted["backendRefs"][1] == backend(
            "podinfo-canary",
            10,
            filters=[
                {
                    "type": "ResponseHeaderModifier",
                    "responseHeaderModifier": {
                        "add": [{"name": "Set-Cookie", "value": f"{cookie}; Max-Age=600"}]
                    },
                }
            ],
        )
        assert gateway.read_routes(canary, step) == Routes(90, 10)
        assert gateway.http_route(canary, step)["spec"] == step["spec"]  # reconcile keeps it

        done = gateway.http_route(canary, step, Routes(100, 0), new_cookie=factory)
        expiring, weighted = done["spec"]["rules"]
        assert expiring["filters"] == [
            {
                "type": "ResponseHeaderModifier",
                "responseHeaderModifier": {
                    "add": [{"name": "Set-Cookie", "value": f"{cookie}; Max-Age=-1"}]
                },
            }
        ]
        assert gateway.read_cookies(canary, done) == SessionCookies(previous=cookie)
        assert gateway.read_routes(canary, done) == Routes(100, 0)

    def test_set_cookie_merges_into_the_response_modifier(self) -> None:
        analysis = {
            "interval": "1m",
            "threshold": 5,
            "stepWeight": 10,
            "sessionAffinity": {"cookieName": "c"},
        }
        canary = gw_canary(
            analysis=analysis, service={"headers": {"response": {"set": {"x": "1"}}}}
        )
        step = gateway.http_route(canary, None, Routes(90, 10), new_cookie=seeded_cookie_factory(2))
        done = gateway.http_route(canary, step, Routes(100, 0))
        modifiers = [
            f for f in done["spec"]["rules"][0]["filters"] if f["type"] == "ResponseHeaderModifier"
        ]
        assert len(modifiers) == 1
        assert modifiers[0]["responseHeaderModifier"]["set"] == [{"name": "x", "value": "1"}]
        assert modifiers[0]["responseHeaderModifier"]["add"][0]["name"] == "Set-Cookie"


class TestLinkerd:
    def test_service_parent_ref(self) -> None:
        canary = make_canary("linkerd")
        route = gateway.http_route(canary, None, mesh=True, version="v1beta1")
        assert route["apiVersion"] == "gateway.networking.k8s.io/v1beta1"
        assert route["spec"]["parentRefs"] == [
            {"group": "", "kind": "Service", "name": "podinfo", "port": 9898}
        ]

    def test_explicit_refs_win(self) -> None:
        ref = {"name": "podinfo", "kind": "Service", "group": "core", "port": 9898}
        canary = make_canary("linkerd", service={"gatewayRefs": [ref]})
        assert gateway.http_route(canary, None, mesh=True)["spec"]["parentRefs"] == [ref]

    async def test_factory_and_no_mirroring(self) -> None:
        kube = FakeKube()
        router = make_router("linkerd", kube)
        assert isinstance(router, GatewayAPIRouter)
        canary = make_canary("linkerd")
        await router.set_routes(canary, 80, 20, False)
        stored = kube.peek("gateway.networking.k8s.io/v1beta1", "HTTPRoute", "podinfo")
        assert stored is not None and stored["apiVersion"] == "gateway.networking.k8s.io/v1beta1"
        assert await router.get_routes(canary) == Routes(80, 20)
        with pytest.raises(RouterError) as err:
            await router.set_routes(canary, 100, 0, True)
        assert err.value.field == "spec.analysis.mirror"


class TestGatewayAPIRouter:
    @pytest.mark.parametrize("provider", ["gatewayapi:v1", "gatewayapi:v1beta1"])
    async def test_walks_weights(self, provider: str) -> None:
        kube = FakeKube()
        router = make_router(provider, kube)
        canary = gw_canary(provider)
        await router.reconcile(canary)
        for weight in (0, 10, 50, 100):
            await router.set_routes(canary, 100 - weight, weight, False)
            assert await router.get_routes(canary) == Routes(100 - weight, weight)
        stored = kube.peek(
            f"gateway.networking.k8s.io/{provider.split(':')[1]}", "HTTPRoute", "podinfo"
        )
        assert stored is not None

    async def test_reconcile_keeps_weights_and_mirroring(self) -> None:
        kube = FakeKube()
        router = make_router("gatewayapi:v1", kube)
        canary = gw_canary(
            analysis={"interval": "1m", "threshold": 5, "iterations": 5, "mirror": True}
        )
        await router.set_routes(canary, 100, 0, True)
        await router.reconcile(
            gw_canary(
                service={"timeout": "9s"},
                analysis={"interval": "1m", "threshold": 5, "iterations": 5, "mirror": True},
            )
        )
        assert await router.get_routes(canary) == Routes(100, 0, True)
        stored = kube.peek(HR, "HTTPRoute", "podinfo")
        assert stored is not None and stored["spec"]["rules"][0]["timeouts"] == {"request": "9s"}

    async def test_takeover_and_finalize(self) -> None:
        kube = FakeKube()
        original = {
            "apiVersion": HR,
            "kind": "HTTPRoute",
            "metadata": {"name": "podinfo", "namespace": NS},
            "spec": {
                "parentRefs": [GATEWAY],
                "rules": [{"backendRefs": [{"name": "podinfo", "port": 9898}]}],
            },
        }
        kube.put(original)
        router = make_router("gatewayapi:v1", kube)
        canary = gw_canary()
        await router.reconcile(canary)
        taken = kube.peek(HR, "HTTPRoute", "podinfo")
        assert taken is not None
        assert (
            json.loads(taken["metadata"]["annotations"][ORIGINAL_CONFIG_ANNOTATION])["spec"]
            == original["spec"]
        )
        await router.set_routes(canary, 10, 90, False)
        await router.finalize(canary)
        restored = kube.peek(HR, "HTTPRoute", "podinfo")
        assert restored is not None
        assert strip_server_fields(restored) == strip_server_fields(original)


class TestReadingForeignWeights:
    def rule(self, primary: int | None, canary_weight: int | None) -> dict[str, Any]:
        refs = []
        for name, weight in (("podinfo-primary", primary), ("podinfo-canary", canary_weight)):
            ref: dict[str, Any] = {"name": name, "port": 9898}
            if weight is not None:
                ref["weight"] = weight
            refs.append(ref)
        return {"spec": {"rules": [{"backendRefs": refs}]}}

    def test_relative_weights_read_as_percentages(self) -> None:
        canary = gw_canary()
        assert gateway.read_routes(canary, self.rule(3, 1)) == Routes(75, 25)
        assert gateway.read_routes(canary, self.rule(None, None)) == Routes(
            50, 50
        )  # default weight 1

    def test_zero_weights_are_an_error_and_reconcile_starts_over(self) -> None:
        canary = gw_canary()
        broken = self.rule(0, 0)
        with pytest.raises(RouterError, match="no weight"):
            gateway.read_routes(canary, broken)
        fixed = gateway.http_route(
            canary,
            {"apiVersion": HR, "kind": "HTTPRoute", "metadata": {"name": "podinfo"}, **broken},
        )
        assert gateway.read_routes(canary, fixed) == Routes(100, 0)
