"""The Gloo Edge router: Upstreams for both Services and a weighted RouteTable ``<svc>``."""

from __future__ import annotations

import random
from typing import Any

import pytest

from canary.adapters.routers import RouterError, ServiceRouter, make_router
from canary.adapters.routers.builders import ORIGINAL_CONFIG_ANNOTATION, gloo
from canary.adapters.routers.gloo import GlooRouter
from canary.core.observations import Routes
from canary.demo.traffic import (
    GlooEntry,
    RequestProfile,
    Snapshot,
    TrafficGenerator,
    TrafficRequest,
    resolve,
)
from canary.model import Canary, SpecError
from tests.routers.fakes import FakeKube
from tests.routers.support import (
    NS,
    binomial_tolerance,
    make_canary,
    pod,
    strip_server_fields,
    target,
)

GATEWAY = "gateway.solo.io/v1"
GLOO = "gloo.solo.io/v1"
HOST = "app.example.com"
PRIMARY_UPSTREAM = f"{NS}-podinfo-primaryupstream-9898"
CANARY_UPSTREAM = f"{NS}-podinfo-canaryupstream-9898"
OWNER = {
    "apiVersion": "canary.gitops.dev/v1beta1",
    "kind": "Canary",
    "name": "podinfo",
    "uid": "canary-uid-1",
    "controller": True,
    "blockOwnerDeletion": True,
}
FLUX = {"kustomize.toolkit.fluxcd.io/reconcile": "disabled"}
AB = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 5,
    "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
}
UPSTREAM_REF = {
    "apiVersion": GLOO,
    "kind": "Upstream",
    "name": "podinfo-config",
    "namespace": "gloo-system",
}


def destination(name: str, weight: int) -> dict[str, Any]:
    out: dict[str, Any] = {"destination": {"upstream": {"name": name, "namespace": NS}}}
    if weight:
        out["weight"] = weight
    return out


def ab(match: list[dict[str, Any]]) -> dict[str, Any]:
    return {**AB, "match": match}


def config_upstream() -> dict[str, Any]:
    """The user's Upstream named by ``spec.upstreamRef``."""
    return {
        "apiVersion": GLOO,
        "kind": "Upstream",
        "metadata": {"name": "podinfo-config", "namespace": "gloo-system"},
        "spec": {
            "labels": {"team": "a", "kustomize.toolkit.fluxcd.io/name": "apps"},
            "connectionConfig": {"maxRequestsPerConnection": 51},
            "circuitBreakers": {"maxConnections": 100},
            "useHttp2": True,
            "kube": {"serviceName": "elsewhere", "serviceNamespace": "x", "servicePort": 1},
            "static": {"hosts": [{"addr": "ignored"}]},
        },
    }


class TestRouteTable:
    @pytest.mark.parametrize("weight", [0, 25, 100])
    def test_exact_object_at_weights(self, weight: int) -> None:
        canary = make_canary("gloo")
        table = gloo.route_table(canary, None, Routes(100 - weight, weight))
        assert table == {
            "apiVersion": GATEWAY,
            "kind": "RouteTable",
            "metadata": {
                "name": "podinfo",
                "namespace": NS,
                "annotations": FLUX,
                "ownerReferences": [OWNER],
            },
            "spec": {
                "routes": [
                    {
                        "routeAction": {
                            "multi": {
                                "destinations": [
                                    destination(PRIMARY_UPSTREAM, 100 - weight),
                                    destination(CANARY_UPSTREAM, weight),
                                ]
                            }
                        },
                        "inheritablePathMatchers": True,
                    }
                ]
            },
        }
        assert gloo.read_routes(canary, table) == Routes(100 - weight, weight)

    def test_upstream_names(self) -> None:
        canary = make_canary("gloo", service={"name": "web", "port": 80})
        assert gloo.upstream_name(canary, "primary") == f"{NS}-web-primaryupstream-80"
        assert gloo.upstream_name(canary, "canary") == f"{NS}-web-canaryupstream-80"

    def test_ab_matchers_then_primary_route(self) -> None:
        canary = make_canary("gloo", analysis=AB)
        table = gloo.route_table(canary, None, Routes(0, 100))
        assert table["spec"]["routes"] == [
            {
                "matchers": [{"headers": [{"name": "x-canary", "value": "insider"}]}],
                "routeAction": {
                    "multi": {
                        "destinations": [
                            destination(PRIMARY_UPSTREAM, 0),
                            destination(CANARY_UPSTREAM, 100),
                        ]
                    }
                },
                "inheritablePathMatchers": True,
            },
            {
                "routeAction": {
                    "multi": {
                        "destinations": [
                            destination(PRIMARY_UPSTREAM, 100),
                            destination(CANARY_UPSTREAM, 0),
                        ]
                    }
                },
                "inheritablePathMatchers": True,
            },
        ]
        assert gloo.read_routes(canary, table) == Routes(0, 100)
        assert gloo.read_routes(canary, gloo.route_table(canary, table, Routes(100, 0))) == Routes(
            100, 0
        )

    def test_ab_regex_prefix_suffix_and_methods(self) -> None:
        canary = make_canary(
            "gloo",
            analysis=ab(
                [
                    {
                        "headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}},
                        "method": {"exact": "POST"},
                    },
                    {"headers": {"x-b": {"prefix": "be.ta"}, "x-a": {"suffix": "z"}}},
                ]
            ),
        )
        matchers = gloo.route_table_spec(canary, Routes(0, 100))["routes"][0]["matchers"]
        assert matchers == [
            {
                "headers": [
                    {"name": "cookie", "value": "^(.*?;)?(canary=always)(;.*)?$", "regex": True}
                ],
                "methods": ["POST"],
            },
            {
                "headers": [
                    {"name": "x-a", "value": ".*z", "regex": True},
                    {"name": "x-b", "value": r"be\.ta.*", "regex": True},
                ]
            },
        ]

    @pytest.mark.parametrize(
        ("match", "field"),
        [
            ([{"uri": {"prefix": "/beta"}}], "spec.analysis.match[0].uri"),
            ([{"headers": {"x": {"present": True}}}], "spec.analysis.match[0].headers.x"),
            ([{"method": {"regex": "P.*"}}], "spec.analysis.match[0].method"),
        ],
    )
    def test_unsupported_matches_are_refused_naming_the_field(
        self, match: list[dict[str, Any]], field: str
    ) -> None:
        canary = make_canary("gloo", analysis=ab(match), validate=False)
        with pytest.raises(RouterError) as err:
            gloo.route_table(canary, None, Routes(0, 100))
        assert err.value.field == field

    def test_mirroring_and_session_affinity_are_refused(self) -> None:
        with pytest.raises(RouterError) as err:
            gloo.route_table(make_canary("gloo"), None, Routes(100, 0, True))
        assert err.value.field == "spec.analysis.mirror"
        sticky = make_canary(
            "gloo",
            analysis={"interval": "1m", "stepWeight": 10, "sessionAffinity": {"cookieName": "c"}},
            validate=False,
        )
        with pytest.raises(RouterError) as err:
            gloo.route_table(sticky, None, Routes(90, 10))
        assert err.value.field == "spec.analysis.sessionAffinity"

    def test_reconcile_keeps_the_weights(self) -> None:
        canary = make_canary("gloo")
        written = gloo.route_table(canary, None, Routes(65, 35))
        assert gloo.route_table(canary, written, None) == written

    def test_read_routes_as_percentages(self) -> None:
        canary = make_canary("gloo")
        table = {
            "spec": {
                "routes": [
                    {
                        "routeAction": {
                            "multi": {
                                "destinations": [
                                    {**destination(PRIMARY_UPSTREAM, 0), "weight": 1},
                                    {**destination(CANARY_UPSTREAM, 0), "weight": 1},
                                ]
                            }
                        }
                    }
                ]
            }
        }
        assert gloo.read_routes(canary, table) == Routes(50, 50)
        assert gloo.read_routes(canary, {"spec": {}}) is None


class TestUpstreams:
    def test_exact_upstream_with_the_service_selector(self) -> None:
        canary = make_canary("gloo")
        svc = {"spec": {"selector": {"app": "podinfo-primary"}}}
        up = gloo.upstream(canary, "primary", None, service=svc)
        assert up == {
            "apiVersion": GLOO,
            "kind": "Upstream",
            "metadata": {"name": PRIMARY_UPSTREAM, "namespace": NS, "ownerReferences": [OWNER]},
            "spec": {
                "kube": {
                    "serviceName": "podinfo-primary",
                    "serviceNamespace": NS,
                    "servicePort": 9898,
                    "selector": {"app": "podinfo-primary"},
                }
            },
        }
        canary_up = gloo.upstream(canary, "canary", None)
        assert canary_up is not None
        assert canary_up["spec"]["kube"] == {
            "serviceName": "podinfo-canary",
            "serviceNamespace": NS,
            "servicePort": 9898,
        }

    def test_upstream_ref_settings_are_copied(self) -> None:
        canary = make_canary("gloo", upstreamRef=UPSTREAM_REF)
        up = gloo.upstream(
            canary, "canary", None, config=config_upstream(), include_label_prefixes=("team",)
        )
        assert up is not None
        assert up["metadata"]["labels"] == {"team": "a"}
        assert up["spec"] == {
            "labels": {"team": "a", "kustomize.toolkit.fluxcd.io/name": "apps"},
            "circuitBreakers": {"maxConnections": 100},
            "connectionConfig": {"maxRequestsPerConnection": 51},
            "useHttp2": True,
            "kube": {"serviceName": "podinfo-canary", "serviceNamespace": NS, "servicePort": 9898},
        }

    def test_an_upstream_someone_else_owns_is_left_alone(self) -> None:
        canary = make_canary("gloo")
        theirs = {"metadata": {"name": PRIMARY_UPSTREAM}, "spec": {"static": {}}}
        assert gloo.upstream(canary, "primary", theirs) is None

    def test_parser_checks_the_upstream_ref(self) -> None:
        with pytest.raises(SpecError) as err:
            make_canary(
                "gloo", upstreamRef={"apiVersion": "v1", "kind": "Service", "name": "podinfo"}
            )
        fields = {issue.path for issue in err.value.issues}
        assert fields == {"spec.upstreamRef.kind", "spec.upstreamRef.apiVersion"}
        with pytest.raises(SpecError) as err:
            make_canary("gloo", upstreamRef={"kind": "Upstream"})
        assert {issue.path for issue in err.value.issues} == {"spec.upstreamRef.name"}
        ref = make_canary("gloo", upstreamRef=UPSTREAM_REF).spec.upstream_ref
        assert ref is not None and (ref.namespace, ref.name) == ("gloo-system", "podinfo-config")


class TestGlooRouter:
    async def test_walks_weights_and_reconcile_keeps_them(self) -> None:
        kube = FakeKube()
        router = make_router("gloo", kube)
        assert isinstance(router, GlooRouter)
        canary = make_canary("gloo")
        assert [str(a) for a in router.required_apis(canary)] == [
            f"{GATEWAY} RouteTable",
            f"{GLOO} Upstream",
        ]
        await ServiceRouter(kube).initialize(canary, target())
        await router.reconcile(canary)
        assert await router.get_routes(canary) == Routes(100, 0)
        primary = kube.peek(GLOO, "Upstream", PRIMARY_UPSTREAM)
        assert primary is not None
        assert primary["spec"]["kube"]["selector"] == {"app": "podinfo-primary"}
        assert kube.peek(GLOO, "Upstream", CANARY_UPSTREAM) is not None
        for weight in (25, 50, 100, 0):
            await router.set_routes(canary, 100 - weight, weight, False)
            await router.reconcile(canary)
            assert await router.get_routes(canary) == Routes(100 - weight, weight)
        writes = len(kube.writes)
        await router.reconcile(canary)
        assert len(kube.writes) == writes  # nothing written when in step

    async def test_upstream_ref_is_read_and_a_missing_one_names_the_field(self) -> None:
        kube = FakeKube()
        router = GlooRouter(kube)
        canary = make_canary("gloo", upstreamRef=UPSTREAM_REF)
        with pytest.raises(RouterError) as err:
            await router.reconcile(canary)
        assert err.value.field == "spec.upstreamRef"
        kube.put(config_upstream())
        await router.reconcile(canary)
        up = kube.peek(GLOO, "Upstream", CANARY_UPSTREAM)
        assert up is not None and up["spec"]["connectionConfig"] == {"maxRequestsPerConnection": 51}

    async def test_takeover_and_finalize(self) -> None:
        kube = FakeKube()
        original = {
            "apiVersion": GATEWAY,
            "kind": "RouteTable",
            "metadata": {"name": "podinfo", "namespace": NS},
            "spec": {"routes": [{"routeAction": {"single": {"upstream": {"name": "old"}}}}]},
        }
        kube.put(original)
        router = GlooRouter(kube)
        canary = make_canary("gloo")
        await router.set_routes(canary, 70, 30, False)
        taken = kube.peek(GATEWAY, "RouteTable", "podinfo")
        assert taken is not None
        assert ORIGINAL_CONFIG_ANNOTATION in taken["metadata"]["annotations"]
        await router.finalize(canary)
        restored = kube.peek(GATEWAY, "RouteTable", "podinfo")
        assert restored is not None
        assert strip_server_fields(restored) == strip_server_fields(original)


# ---------------------------------------------------------------- the simulated data plane

N = 2000
PRIMARY_PODS = {"podinfo-primary-a", "podinfo-primary-b"}
CANARY_PODS = {"podinfo-c"}


def virtual_service() -> dict[str, Any]:
    """The user's Gloo VirtualService for the host, delegating / to the RouteTable."""
    return {
        "apiVersion": GATEWAY,
        "kind": "VirtualService",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {
            "virtualHost": {
                "domains": [HOST],
                "routes": [
                    {
                        "matchers": [{"prefix": "/"}],
                        "delegateAction": {"ref": {"name": "podinfo", "namespace": NS}},
                    }
                ],
            }
        },
    }


async def cluster(analysis: dict[str, Any] | None = None) -> tuple[FakeKube, Canary, GlooRouter]:
    kube = FakeKube()
    canary = make_canary("gloo", analysis=analysis)
    services = ServiceRouter(kube)
    await services.initialize(canary, target())
    await services.reconcile_apex(canary, target())
    for name in sorted(PRIMARY_PODS):
        kube.put(pod(name, {"app": "podinfo-primary"}))
    for name in sorted(CANARY_PODS):
        kube.put(pod(name, {"app": "podinfo"}))
    kube.put(virtual_service())
    router = GlooRouter(kube)
    await router.reconcile(canary)
    return kube, canary, router


class TestTrafficThroughGloo:
    async def test_measured_split_follows_each_step(self) -> None:
        kube, canary, router = await cluster()
        gen = TrafficGenerator(kube, GlooEntry(NS, HOST), seed=11)
        for weight in (0, 10, 50, 100):
            await router.set_routes(canary, 100 - weight, weight, False)
            await gen.refresh()
            window = await gen.send(N)
            assert window.routed == N and window.unrouted == window.unavailable == 0
            expected = weight / 100
            assert abs(window.canary_share - expected) <= binomial_tolerance(N, expected), window
            if weight == 0:
                assert set(window.pods) == PRIMARY_PODS
            if weight == 100:
                assert set(window.pods) == CANARY_PODS

    async def test_ab_sends_matching_requests_only(self) -> None:
        kube, canary, router = await cluster(AB)
        await router.set_routes(canary, 0, 100, False)
        profiles = (
            RequestProfile(weight=1, headers={"X-Canary": "insider"}),
            RequestProfile(weight=1),
        )
        gen = TrafficGenerator(kube, GlooEntry(NS, HOST), profiles=profiles, seed=5)
        await gen.refresh()
        window = await gen.send(400)
        assert window.routed == 400
        assert abs(window.canary_share - 0.5) <= binomial_tolerance(400, 0.5)
        snapshot = gen.snapshot
        assert snapshot is not None
        rng = random.Random(1)
        for headers, wanted in (
            ({"x-canary": "insider"}, "podinfo-canary"),
            ({}, "podinfo-primary"),
        ):
            request = TrafficRequest(1, 1, HOST, headers=headers)
            assert resolve(snapshot, GlooEntry(NS, HOST), request, rng).service == wanted

    def test_missing_upstream_or_host_routes_nowhere(self) -> None:
        canary = make_canary("gloo")
        table = gloo.route_table(canary, None, Routes(50, 50))
        snapshot = Snapshot(NS, gloo_virtual_services=(virtual_service(),), route_tables=(table,))
        rng = random.Random(0)
        request = TrafficRequest(1, 1, HOST)
        assert resolve(snapshot, GlooEntry(NS, HOST), request, rng).service is None
        assert resolve(snapshot, GlooEntry(NS, "other.example.com"), request, rng).service is None
