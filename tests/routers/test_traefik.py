"""The Traefik router: one weighted TraefikService ``<svc>``, as Flagger writes it, and the
simulated Traefik that follows the user's IngressRoute through it to the Services."""

from __future__ import annotations

import random
from typing import Any

import pytest

from canary.adapters.routers import RouterError, ServiceRouter, make_router
from canary.adapters.routers.builders import ORIGINAL_CONFIG_ANNOTATION, traefik
from canary.adapters.routers.traefik import TraefikRouter
from canary.core.observations import Routes
from canary.demo.traffic import (
    Snapshot,
    TraefikEntry,
    TrafficGenerator,
    TrafficRequest,
    resolve,
    traefik_rule_matches,
)
from canary.model import SpecError
from tests.routers.fakes import FakeKube
from tests.routers.support import NS, binomial_tolerance, make_canary, pod, strip_server_fields
from tests.routers.support import target as make_target

API = "traefik.io/v1alpha1"
HOST = "app.example.com"
N = 2000
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


def entry(name: str, weight: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "namespace": NS, "port": 9898}
    if weight is not None:
        out["weight"] = weight
    return out


def ingress_route(service: str = "podinfo", kind: str = "TraefikService") -> dict[str, Any]:
    """The user's IngressRoute: app.example.com -> TraefikService ``podinfo``."""
    return {
        "apiVersion": API,
        "kind": "IngressRoute",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {
            "entryPoints": ["web"],
            "routes": [
                {
                    "kind": "Rule",
                    "match": f"Host(`{HOST}`) && PathPrefix(`/`)",
                    "services": [{"name": service, "kind": kind, "port": 9898}],
                }
            ],
        },
    }


class TestTraefikService:
    @pytest.mark.parametrize("weight", [0, 25, 100])
    def test_exact_object_at_weights(self, weight: int) -> None:
        canary = make_canary(
            "traefik", service={"apex": {"labels": {"team": "a"}, "annotations": {"x": "y"}}}
        )
        services = [entry("podinfo-primary", 100 - weight)]
        if weight:
            services.append(entry("podinfo-canary", weight))
        obj = traefik.traefik_service(canary, None, Routes(100 - weight, weight))
        assert obj == {
            "apiVersion": API,
            "kind": "TraefikService",
            "metadata": {
                "name": "podinfo",
                "namespace": NS,
                "labels": {"team": "a"},
                "annotations": {"x": "y", "kustomize.toolkit.fluxcd.io/reconcile": "disabled"},
                "ownerReferences": [OWNER],
            },
            "spec": {"weighted": {"services": services}},
        }
        assert traefik.read_routes(canary, obj) == Routes(100 - weight, weight)

    def test_reconcile_creates_primary_only_and_keeps_weights(self) -> None:
        canary = make_canary("traefik")
        first = traefik.traefik_service(canary, None)
        assert first["spec"]["weighted"]["services"] == [entry("podinfo-primary", 100)]
        written = traefik.traefik_service(canary, first, Routes(35, 65))
        assert traefik.traefik_service(canary, written, None) == written
        assert traefik.read_routes(canary, written) == Routes(35, 65)

    @pytest.mark.parametrize("weight", range(0, 101, 7))
    def test_round_trip(self, weight: int) -> None:
        canary = make_canary("traefik")
        obj = traefik.traefik_service(canary, None, None)
        obj = traefik.traefik_service(canary, obj, Routes(100 - weight, weight))
        assert traefik.read_routes(canary, obj) == Routes(100 - weight, weight)

    def test_weights_are_relative_and_a_missing_one_is_traefiks_default(self) -> None:
        canary = make_canary("traefik")
        relative = {
            "spec": {
                "weighted": {"services": [entry("podinfo-primary", 3), entry("podinfo-canary", 1)]}
            }
        }
        assert traefik.read_routes(canary, relative) == Routes(75, 25)
        # Flagger leaves a zero primary weight out; Traefik then weighs the primary 1.
        flagger_at_100 = {
            "spec": {
                "weighted": {
                    "services": [entry("podinfo-primary", None), entry("podinfo-canary", 100)]
                }
            }
        }
        assert traefik.read_routes(canary, flagger_at_100) == Routes(1, 99)
        assert traefik.read_routes(canary, {"spec": {"weighted": {"services": []}}}) is None
        assert traefik.read_routes(canary, None) is None

    def test_bad_weights_are_router_errors(self) -> None:
        canary = make_canary("traefik")
        with pytest.raises(RouterError, match="not a whole number"):
            traefik.read_routes(
                canary,
                {"spec": {"weighted": {"services": [{"name": "podinfo-primary", "weight": "x"}]}}},
            )
        zero = {"spec": {"weighted": {"services": [entry("podinfo-primary", 0)]}}}
        with pytest.raises(RouterError, match="no weight"):
            traefik.read_routes(canary, zero)

    @pytest.mark.parametrize(
        ("analysis", "routes", "field"),
        [
            (AB, None, "spec.analysis.match"),
            (
                {"interval": "1m", "threshold": 5, "iterations": 2, "mirror": True},
                None,
                "spec.analysis.mirror",
            ),
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
    def test_what_traefik_cannot_do_is_refused_by_field(
        self, analysis: dict[str, Any] | None, routes: Routes | None, field: str
    ) -> None:
        canary = make_canary("traefik", analysis=analysis, validate=False)
        with pytest.raises(RouterError) as err:
            traefik.traefik_service(canary, None, routes)
        assert err.value.field == field

    def test_the_parser_refuses_ab_testing(self) -> None:
        with pytest.raises(SpecError) as err:
            make_canary("traefik", analysis=AB)
        assert [i.path for i in err.value.errors] == ["spec.analysis.match"]


class TestTraefikRouter:
    async def test_walks_weights_and_reconcile_keeps_them(self) -> None:
        kube = FakeKube()
        router = make_router("traefik", kube)
        assert isinstance(router, TraefikRouter)
        canary = make_canary("traefik")
        assert [str(a) for a in router.required_apis(canary)] == [f"{API} TraefikService"]
        await router.reconcile(canary)
        assert await router.get_routes(canary) == Routes(100, 0)
        for weight in (10, 60, 100, 0):
            await router.set_routes(canary, 100 - weight, weight, False)
            await router.reconcile(canary)
            assert await router.get_routes(canary) == Routes(100 - weight, weight)
        writes = len(kube.writes)
        await router.reconcile(canary)
        assert len(kube.writes) == writes  # nothing changed, nothing written

    async def test_takeover_and_finalize(self) -> None:
        kube = FakeKube()
        original = {
            "apiVersion": API,
            "kind": "TraefikService",
            "metadata": {"name": "podinfo", "namespace": NS, "labels": {"app": "podinfo"}},
            "spec": {"weighted": {"services": [{"name": "podinfo-v1", "port": 80, "weight": 1}]}},
        }
        kube.put(original)
        router = make_router("traefik", kube)
        canary = make_canary("traefik")
        await router.set_routes(canary, 70, 30, False)
        taken = kube.peek(API, "TraefikService", "podinfo")
        assert taken is not None and ORIGINAL_CONFIG_ANNOTATION in taken["metadata"]["annotations"]
        assert "ownerReferences" not in taken["metadata"]
        await router.finalize(canary)
        restored = kube.peek(API, "TraefikService", "podinfo")
        assert restored is not None
        assert strip_server_fields(restored) == strip_server_fields(original)


# ---------------------------------------------------------------------- simulated Traefik


def request(path: str = "/", host: str = HOST, **headers: str) -> TrafficRequest:
    return TrafficRequest(1, 0, host, path, "GET", headers)


class TestTraefikRules:
    @pytest.mark.parametrize(
        ("rule", "matches"),
        [
            (f"Host(`{HOST}`)", True),
            ("Host(`other.example.com`, `app.example.com`)", True),
            (f"Host(`{HOST}`) && PathPrefix(`/api`)", False),
            (f"Host(`{HOST}`) && (PathPrefix(`/api`) || Path(`/`))", True),
            (f"Host(`{HOST}`) && !Header(`x-beta`, `1`)", True),
            (f"Host(`{HOST}`) && Headers(`x-beta`, `1`)", False),
            ("HostRegexp(`^app\\..*$`)", True),
            ("Host(`app.example.com`) &&", False),  # unreadable: matches nothing
            ("Unknown(`x`)", False),
        ],
    )
    def test_rules(self, rule: str, matches: bool) -> None:
        assert traefik_rule_matches(rule, request()) is matches

    def test_the_longest_rule_wins_unless_a_priority_is_set(self) -> None:
        def route(
            name: str, match: str, service: str, priority: int | None = None
        ) -> dict[str, Any]:
            r: dict[str, Any] = {"match": match, "services": [{"name": service, "port": 80}]}
            if priority is not None:
                r["priority"] = priority
            return {"metadata": {"name": name}, "spec": {"routes": [r]}}

        routes = (
            route("a", f"Host(`{HOST}`)", "short"),
            route("b", f"Host(`{HOST}`) && PathPrefix(`/`)", "long"),
        )
        snapshot = Snapshot(NS, ingress_routes=routes)
        rng = random.Random(1)
        assert resolve(snapshot, TraefikEntry(NS, HOST), request(), rng).service == "long"
        routes = (route("a", f"Host(`{HOST}`)", "short", priority=1000), routes[1])
        snapshot = Snapshot(NS, ingress_routes=routes)
        assert resolve(snapshot, TraefikEntry(NS, HOST), request(), rng).service == "short"

    def test_mirroring_traefik_service_sends_copies(self) -> None:
        mirror = {
            "metadata": {"name": "podinfo"},
            "spec": {
                "mirroring": {
                    "name": "podinfo-primary",
                    "port": 80,
                    "mirrors": [{"name": "podinfo-canary", "port": 80, "percent": 50}],
                }
            },
        }
        snapshot = Snapshot(NS, ingress_routes=(ingress_route(),), traefik_services=(mirror,))
        rng = random.Random(3)
        results = [resolve(snapshot, TraefikEntry(NS, HOST), request(), rng) for _ in range(N)]
        assert {r.service for r in results} == {"podinfo-primary"}
        share = sum(r.mirrors == ("podinfo-canary",) for r in results) / N
        assert abs(share - 0.5) <= binomial_tolerance(N, 0.5)


class TestTraefikTraffic:
    async def test_measured_split_follows_each_step(self) -> None:
        kube = FakeKube()
        canary = make_canary("traefik")
        services = ServiceRouter(kube)
        await services.initialize(canary, make_target())
        await services.reconcile_apex(canary, make_target())
        for name in ("podinfo-primary-a", "podinfo-primary-b"):
            kube.put(pod(name, {"app": "podinfo-primary"}))
        kube.put(pod("podinfo-c", {"app": "podinfo"}))
        kube.put(ingress_route())
        router = make_router("traefik", kube)
        await router.reconcile(canary)
        gen = TrafficGenerator(kube, TraefikEntry(NS, HOST), seed=42)
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
            if weight == 100:
                assert set(window.pods) == {"podinfo-c"}
            if weight == 0:
                assert set(window.pods) == {"podinfo-primary-a", "podinfo-primary-b"}
