"""The APISIX router: the user's ApisixRoute cloned into ``<route>-<svc>-canary`` with a
high priority and weighted primary/canary backends, as Flagger does, and the simulated
APISIX that prefers that clone."""

from __future__ import annotations

import random
from typing import Any

import pytest

from canary.adapters.routers import RouterError, ServiceRouter, make_router
from canary.adapters.routers.apisix import ApisixRouter
from canary.adapters.routers.builders import ORIGINAL_CONFIG_ANNOTATION, apisix
from canary.core.observations import Routes
from canary.demo.traffic import ApisixEntry, Snapshot, TrafficGenerator, TrafficRequest, resolve
from canary.model import SpecError
from tests.routers.fakes import FakeKube
from tests.routers.support import NS, binomial_tolerance, make_canary, pod, strip_server_fields
from tests.routers.support import target as make_target

API = "apisix.apache.org/v2"
HOST = "app.example.com"
N = 2000
ROUTE_REF = {"apiVersion": API, "kind": "ApisixRoute", "name": "podinfo"}
OWNER = {
    "apiVersion": "canary.gitops.dev/v1beta1",
    "kind": "Canary",
    "name": "podinfo",
    "uid": "canary-uid-1",
    "controller": True,
    "blockOwnerDeletion": True,
}
AB = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 5,
    "match": [{"headers": {"x": {"exact": "1"}}}],
}
ADMIN_RULE = {
    "name": "admin",
    "match": {"hosts": [HOST], "paths": ["/admin*"]},
    "backends": [{"serviceName": "admin", "servicePort": 80}],
}
PODINFO_RULE = {
    "name": "rule1",
    "match": {"hosts": [HOST], "paths": ["/*"], "methods": ["GET"]},
    "backends": [{"serviceName": "podinfo", "servicePort": 9898, "resolveGranularity": "service"}],
    "plugins": [{"name": "prometheus", "enable": True, "config": {}}],
}


def user_route(*rules: dict[str, Any]) -> dict[str, Any]:
    """The user's ApisixRoute ``podinfo``."""
    return {
        "apiVersion": API,
        "kind": "ApisixRoute",
        "metadata": {
            "name": "podinfo",
            "namespace": NS,
            "labels": {"app": "podinfo"},
            "annotations": {
                "team": "a",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
            },
        },
        "spec": {
            "ingressClassName": "apisix",
            "http": list(rules or (ADMIN_RULE, PODINFO_RULE)),
            "stream": [
                {
                    "name": "tcp",
                    "protocol": "TCP",
                    "match": {"ingressPort": 9100},
                    "backend": {"serviceName": "podinfo", "servicePort": 9100},
                }
            ],
        },
    }


def canary_for(**kw: Any) -> Any:
    return make_canary("apisix", routeRef=ROUTE_REF, **kw)


class TestCanaryApisixRoute:
    @pytest.mark.parametrize("weight", [0, 25, 100])
    def test_exact_object_at_weights(self, weight: int) -> None:
        canary = canary_for()
        obj = apisix.canary_apisix_route(canary, user_route(), None, Routes(100 - weight, weight))
        assert obj == {
            "apiVersion": API,
            "kind": "ApisixRoute",
            "metadata": {
                "name": "podinfo-podinfo-canary",
                "namespace": NS,
                "labels": {"app": "podinfo"},
                "annotations": {"team": "a"},
                "ownerReferences": [OWNER],
            },
            "spec": {
                "ingressClassName": "apisix",
                "http": [
                    {
                        "name": "rule1",
                        "priority": 10000,
                        "match": {"hosts": [HOST], "paths": ["/*"], "methods": ["GET"]},
                        "backends": [
                            {
                                "serviceName": "podinfo-primary",
                                "servicePort": 9898,
                                "resolveGranularity": "service",
                                "weight": 100 - weight,
                            },
                            {
                                "serviceName": "podinfo-canary",
                                "servicePort": 9898,
                                "resolveGranularity": "service",
                                "weight": weight,
                            },
                        ],
                        "plugins": [{"name": "prometheus", "enable": True, "config": {}}],
                    }
                ],
            },
        }
        assert apisix.read_routes(canary, obj) == Routes(100 - weight, weight)

    def test_the_name_carries_route_and_service(self) -> None:
        canary = make_canary(
            "apisix",
            name="web",
            service={"name": "frontend"},
            routeRef={**ROUTE_REF, "name": "public"},
        )
        assert apisix.canary_route_name(canary) == "public-frontend-canary"

    @pytest.mark.parametrize("weight", range(0, 101, 7))
    def test_round_trip_and_reconcile_keeps_weights(self, weight: int) -> None:
        canary = canary_for()
        obj = apisix.canary_apisix_route(canary, user_route(), None)
        assert apisix.read_routes(canary, obj) == Routes(100, 0)
        obj = apisix.canary_apisix_route(canary, user_route(), obj, Routes(100 - weight, weight))
        assert apisix.read_routes(canary, obj) == Routes(100 - weight, weight)
        assert apisix.canary_apisix_route(canary, user_route(), obj) == obj

    def test_changes_of_the_original_rule_are_synced_keeping_weights(self) -> None:
        canary = canary_for()
        obj = apisix.canary_apisix_route(canary, user_route(), None, Routes(60, 40))
        changed = user_route({**PODINFO_RULE, "match": {"hosts": [HOST], "paths": ["/v2*"]}})
        synced = apisix.canary_apisix_route(canary, changed, obj)
        assert synced["spec"]["http"][0]["match"] == {"hosts": [HOST], "paths": ["/v2*"]}
        assert apisix.read_routes(canary, synced) == Routes(60, 40)

    def test_a_route_without_the_backend_or_with_several_is_refused(self) -> None:
        canary = canary_for()
        with pytest.raises(RouterError) as err:
            apisix.canary_apisix_route(canary, user_route(ADMIN_RULE), None)
        assert err.value.field == "spec.routeRef.name"
        two = {
            **PODINFO_RULE,
            "backends": [*PODINFO_RULE["backends"], {"serviceName": "x", "servicePort": 1}],
        }
        with pytest.raises(RouterError, match="2 backends") as err:
            apisix.canary_apisix_route(canary, user_route(two), None)
        assert err.value.field == "spec.routeRef.name"

    def test_missing_weights_are_apisix_defaults(self) -> None:
        canary = canary_for()
        rule = {
            "backends": [
                {"serviceName": "podinfo-primary", "servicePort": 1},
                {"serviceName": "podinfo-canary", "servicePort": 1, "weight": 100},
            ]
        }
        assert apisix.read_routes(canary, {"spec": {"http": [rule]}}) == Routes(50, 50)
        assert apisix.read_routes(canary, {"spec": {"http": []}}) is None

    @pytest.mark.parametrize(
        ("analysis", "routes", "field"),
        [
            (AB, None, "spec.analysis.match"),
            (None, Routes(100, 0, True), "spec.analysis.mirror"),
            (
                {
                    "interval": "1m",
                    "threshold": 5,
                    "stepWeight": 10,
                    "sessionAffinity": {"cookieName": "c"},
                },
                None,
                "spec.analysis.sessionAffinity",
            ),
        ],
    )
    def test_what_apisix_cannot_do_is_refused_by_field(
        self, analysis: dict[str, Any] | None, routes: Routes | None, field: str
    ) -> None:
        canary = make_canary("apisix", analysis=analysis, routeRef=ROUTE_REF, validate=False)
        with pytest.raises(RouterError) as err:
            apisix.canary_apisix_route(canary, user_route(), None, routes)
        assert err.value.field == field


class TestParser:
    def test_route_ref_is_required(self) -> None:
        with pytest.raises(SpecError) as err:
            make_canary("apisix")
        assert [i.path for i in err.value.errors] == ["spec.routeRef"]

    @pytest.mark.parametrize(
        ("ref", "path"),
        [
            ({**ROUTE_REF, "kind": "Ingress"}, "spec.routeRef.kind"),
            ({**ROUTE_REF, "apiVersion": "apisix.apache.org/v1"}, "spec.routeRef.apiVersion"),
            ({"kind": "ApisixRoute"}, "spec.routeRef.name"),
        ],
    )
    def test_bad_route_refs_are_named_by_path(self, ref: dict[str, Any], path: str) -> None:
        with pytest.raises(SpecError) as err:
            make_canary("apisix", routeRef=ref)
        assert [i.path for i in err.value.errors] == [path]

    def test_ab_testing_is_refused(self) -> None:
        with pytest.raises(SpecError) as err:
            make_canary("apisix", routeRef=ROUTE_REF, analysis=AB)
        assert [i.path for i in err.value.errors] == ["spec.analysis.match"]


class TestApisixRouter:
    async def test_walks_weights_and_never_writes_the_original(self) -> None:
        kube = FakeKube()
        kube.put(user_route())
        original = kube.peek(API, "ApisixRoute", "podinfo")
        router = make_router("apisix", kube)
        assert isinstance(router, ApisixRouter)
        canary = canary_for()
        assert [str(a) for a in router.required_apis(canary)] == [f"{API} ApisixRoute"]
        assert await router.get_routes(canary) is None
        await router.reconcile(canary)
        assert await router.get_routes(canary) == Routes(100, 0)
        for weight in (10, 60, 100, 0):
            await router.set_routes(canary, 100 - weight, weight, False)
            await router.reconcile(canary)
            assert await router.get_routes(canary) == Routes(100 - weight, weight)
        assert kube.peek(API, "ApisixRoute", "podinfo") == original
        assert {name for _, _, name in kube.writes} == {"podinfo-podinfo-canary"}

    async def test_a_missing_original_names_the_field(self) -> None:
        router = make_router("apisix", FakeKube())
        with pytest.raises(RouterError) as err:
            await router.reconcile(canary_for())
        assert err.value.field == "spec.routeRef.name"

    async def test_finalize_leaves_our_clone_to_the_collector_and_restores_a_taken_one(
        self,
    ) -> None:
        kube = FakeKube()
        kube.put(user_route())
        router = make_router("apisix", kube)
        canary = canary_for()
        await router.reconcile(canary)
        await router.finalize(canary)
        assert kube.peek(API, "ApisixRoute", "podinfo-podinfo-canary") is not None  # owned: GC

        kube = FakeKube()
        kube.put(user_route())
        before = {**user_route(), "metadata": {"name": "podinfo-podinfo-canary", "namespace": NS}}
        kube.put(before)
        router = make_router("apisix", kube)
        await router.set_routes(canary, 50, 50, False)
        taken = kube.peek(API, "ApisixRoute", "podinfo-podinfo-canary")
        assert taken is not None and ORIGINAL_CONFIG_ANNOTATION in taken["metadata"]["annotations"]
        await router.finalize(canary)
        restored = kube.peek(API, "ApisixRoute", "podinfo-podinfo-canary")
        assert restored is not None
        assert strip_server_fields(restored) == strip_server_fields(before)


# ----------------------------------------------------------------------- simulated APISIX


def request(path: str = "/", method: str = "GET", **headers: str) -> TrafficRequest:
    return TrafficRequest(1, 0, HOST, path, method, headers)


class TestApisixMatching:
    def test_path_then_priority_then_exprs(self) -> None:
        def route(name: str, rule: dict[str, Any]) -> dict[str, Any]:
            return {"metadata": {"name": name}, "spec": {"http": [rule]}}

        def rule(paths: list[str], service: str, **extra: Any) -> dict[str, Any]:
            return {
                "name": service,
                "match": {"hosts": [HOST], "paths": paths, **extra.pop("match", {})},
                "backends": [{"serviceName": service, "servicePort": 80}],
                **extra,
            }

        snapshot = Snapshot(
            NS,
            apisix_routes=(
                route("a", rule(["/*"], "catch-all")),
                route("b", rule(["/*"], "preferred", priority=5)),
                route("c", rule(["/api/*"], "api")),
                route("d", rule(["/api/v1"], "exact")),
                route(
                    "e",
                    rule(
                        ["/*"],
                        "beta",
                        priority=9,
                        match={
                            "exprs": [
                                {
                                    "subject": {"scope": "Header", "name": "x-beta"},
                                    "op": "Equal",
                                    "value": "1",
                                }
                            ]
                        },
                    ),
                ),
                route("f", rule(["/*"], "posts", priority=20, match={"methods": ["POST"]})),
            ),
        )
        rng = random.Random(0)
        entry = ApisixEntry(NS, HOST)
        assert resolve(snapshot, entry, request("/"), rng).service == "preferred"
        assert resolve(snapshot, entry, request("/api/x"), rng).service == "api"
        assert resolve(snapshot, entry, request("/api/v1"), rng).service == "exact"
        assert resolve(snapshot, entry, request("/", **{"x-beta": "1"}), rng).service == "beta"
        assert resolve(snapshot, entry, request("/", "POST"), rng).service == "posts"
        other = TrafficRequest(1, 0, "other.example.com", "/", "GET", {})
        assert resolve(snapshot, entry, other, rng).service is None


class TestApisixTraffic:
    async def test_measured_split_follows_each_step(self) -> None:
        kube = FakeKube()
        canary = canary_for()
        services = ServiceRouter(kube)
        await services.initialize(canary, make_target())
        await services.reconcile_apex(canary, make_target())
        for name in ("podinfo-primary-a", "podinfo-primary-b"):
            kube.put(pod(name, {"app": "podinfo-primary"}))
        kube.put(pod("podinfo-c", {"app": "podinfo"}))
        kube.put(user_route())
        router = make_router("apisix", kube)
        await router.reconcile(canary)
        gen = TrafficGenerator(kube, ApisixEntry(NS, HOST), seed=42)
        for weight in (0, 10, 50, 100):
            await router.set_routes(canary, 100 - weight, weight, False)
            await gen.refresh()
            window = await gen.send(N)
            assert window.routed == N and window.unrouted == window.unavailable == 0
            expected = weight / 100
            assert abs(window.canary_share - expected) <= binomial_tolerance(N, expected), (
                weight,
                window,
            )
            if weight == 0:
                assert set(window.pods) == {"podinfo-primary-a", "podinfo-primary-b"}
            if weight == 100:
                assert set(window.pods) == {"podinfo-c"}
