"""The Kuma router: one cluster-scoped TrafficRoute per canary, as Flagger writes it."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.adapters.routers import RouterError, ServiceRouter, make_router
from canary.adapters.routers.builders import ORIGINAL_CONFIG_ANNOTATION, kuma
from canary.adapters.routers.kuma import KumaRouter
from canary.core.observations import Routes
from canary.demo.traffic import ServiceEntry, Snapshot, TrafficGenerator, TrafficRequest, resolve
from tests.routers.fakes import FakeKube
from tests.routers.support import (
    NS,
    binomial_tolerance,
    make_canary,
    pod,
    strip_server_fields,
    target,
)

ROOT = Path(__file__).resolve().parents[2]
API = "kuma.io/v1alpha1"
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


def expected_route(primary: int, canary: int, *, mesh: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "TrafficRoute",
        "mesh": mesh,
        "metadata": {
            "name": "podinfo",
            "annotations": {
                "9898.service.kuma.io": "http",
                "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
            },
            "ownerReferences": [OWNER],
        },
        "spec": {
            "sources": [{"match": {"kuma.io/service": "*"}}],
            "destinations": [{"match": {"kuma.io/service": "podinfo_test_svc_9898"}}],
            "conf": {
                "split": [
                    {
                        "weight": primary,
                        "destination": {"kuma.io/service": "podinfo-primary_test_svc_9898"},
                    },
                    {
                        "weight": canary,
                        "destination": {"kuma.io/service": "podinfo-canary_test_svc_9898"},
                    },
                ]
            },
        },
    }


class TestTrafficRoute:
    @pytest.mark.parametrize("weight", [0, 25, 100])
    def test_exact_object_at_weights(self, weight: int) -> None:
        canary = make_canary("kuma")
        route = kuma.traffic_route(canary, None, Routes(100 - weight, weight))
        assert route == expected_route(100 - weight, weight)
        assert kuma.read_routes(canary, route) == Routes(100 - weight, weight)

    def test_new_route_starts_on_the_primary_and_reconcile_keeps_weights(self) -> None:
        canary = make_canary("kuma")
        first = kuma.traffic_route(canary, None)
        assert first == expected_route(100, 0)
        moved = kuma.traffic_route(canary, first, Routes(60, 40))
        assert kuma.read_routes(canary, kuma.traffic_route(canary, moved)) == Routes(60, 40)

    def test_mesh_from_the_canary_annotation(self) -> None:
        canary = dataclasses.replace(make_canary("kuma"), annotations={"kuma.io/mesh": "payments"})
        assert kuma.traffic_route(canary, None)["mesh"] == "payments"

    def test_apex_annotations_replace_the_protocol_default(self) -> None:
        canary = make_canary(
            "kuma", service={"apex": {"annotations": {"9898.service.kuma.io/protocol": "http"}}}
        )
        annotations = kuma.traffic_route(canary, None)["metadata"]["annotations"]
        assert annotations == {
            "9898.service.kuma.io/protocol": "http",
            "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
        }

    def test_ab_and_mirroring_are_refused_naming_the_field(self) -> None:
        with pytest.raises(RouterError) as err:
            kuma.traffic_route(make_canary("kuma", analysis=AB, validate=False), None)
        assert err.value.field == "spec.analysis.match"
        with pytest.raises(RouterError) as err:
            kuma.traffic_route(make_canary("kuma"), None, Routes(100, 0, True))
        assert err.value.field == "spec.analysis.mirror"

    def test_mirror_flag_and_session_affinity_are_refused(self) -> None:
        mirrored = {"interval": "1m", "threshold": 5, "iterations": 5, "mirror": True}
        sticky = {
            "interval": "1m",
            "threshold": 5,
            "stepWeight": 10,
            "sessionAffinity": {"cookieName": "c"},
        }
        for analysis, field in ((mirrored, "mirror"), (sticky, "sessionAffinity")):
            canary = make_canary("kuma", analysis=analysis, validate=False)
            with pytest.raises(RouterError) as err:
                kuma.traffic_route(canary, None)
            assert err.value.field == f"spec.analysis.{field}"

    def test_an_existing_route_keeps_its_mesh(self) -> None:
        canary = dataclasses.replace(make_canary("kuma"), annotations={"kuma.io/mesh": "payments"})
        current = expected_route(100, 0, mesh="default")
        assert kuma.traffic_route(canary, current, Routes(50, 50))["mesh"] == "default"

    def test_the_canary_parser_refuses_ab_testing(self) -> None:
        with pytest.raises(Exception, match=r"spec\.analysis\.match"):
            make_canary("kuma", analysis=AB)

    def test_service_tags(self) -> None:
        assert kuma.service_tag("podinfo-primary", "test", 9898) == "podinfo-primary_test_svc_9898"
        assert kuma.parse_service_tag("my_app_test_svc_80") == ("my_app", "test", 80)
        assert kuma.parse_service_tag("podinfo") is None

    def test_relative_weights_and_zero_everywhere(self) -> None:
        canary = make_canary("kuma")
        route = expected_route(3, 1)
        assert kuma.read_routes(canary, route) == Routes(75, 25)
        with pytest.raises(RouterError, match="no weight"):
            kuma.read_routes(canary, expected_route(0, 0))
        assert kuma.read_routes(canary, None) is None


class TestKumaRouter:
    async def test_walks_weights_cluster_scoped(self) -> None:
        kube = FakeKube()
        router = make_router("kuma", kube)
        assert isinstance(router, KumaRouter)
        canary = make_canary("kuma")
        assert [str(api) for api in router.required_apis(canary)] == [f"{API} TrafficRoute"]
        await router.reconcile(canary)
        stored = kube.peek(API, "TrafficRoute", "podinfo", namespace="")
        assert stored is not None and "namespace" not in stored["metadata"]
        assert await router.get_routes(canary) == Routes(100, 0)
        for weight in (25, 100, 0):
            await router.set_routes(canary, 100 - weight, weight, False)
            await router.reconcile(canary)
            assert await router.get_routes(canary) == Routes(100 - weight, weight)

    async def test_finalize_deletes_its_own_route(self) -> None:
        kube = FakeKube()
        router = make_router("kuma", kube)
        canary = make_canary("kuma")
        await router.reconcile(canary)
        await router.finalize(canary)
        assert kube.peek(API, "TrafficRoute", "podinfo", namespace="") is None

    async def test_takeover_and_finalize_restores(self) -> None:
        kube = FakeKube()
        original = {
            "apiVersion": API,
            "kind": "TrafficRoute",
            "mesh": "default",
            "metadata": {"name": "podinfo"},
            "spec": {
                "sources": [{"match": {"kuma.io/service": "*"}}],
                "destinations": [{"match": {"kuma.io/service": "podinfo_test_svc_9898"}}],
                "conf": {"destination": {"kuma.io/service": "podinfo_test_svc_9898"}},
            },
        }
        kube.put(original)
        router = make_router("kuma", kube)
        canary = make_canary("kuma")
        await router.set_routes(canary, 70, 30, False)
        taken = kube.peek(API, "TrafficRoute", "podinfo", namespace="")
        assert taken is not None and ORIGINAL_CONFIG_ANNOTATION in taken["metadata"]["annotations"]
        assert "ownerReferences" not in taken["metadata"]
        await router.finalize(canary)
        restored = kube.peek(API, "TrafficRoute", "podinfo", namespace="")
        assert restored is not None
        assert strip_server_fields(restored) == strip_server_fields(original)


class TestSimulatedKumaDataPlane:
    async def test_measured_split_follows_each_weight(self) -> None:
        kube = FakeKube()
        canary = make_canary("kuma")
        services = ServiceRouter(kube)
        await services.initialize(canary, target())
        await services.reconcile_apex(canary, target())
        kube.put(pod("podinfo-primary-a", {"app": "podinfo-primary"}))
        kube.put(pod("podinfo-c", {"app": "podinfo"}))
        router = make_router("kuma", kube)
        await router.reconcile(canary)
        gen = TrafficGenerator(kube, ServiceEntry(NS, "podinfo"), seed=7)
        n = 2000
        for weight in (0, 25, 100):
            await router.set_routes(canary, 100 - weight, weight, False)
            await gen.refresh()
            window = await gen.send(n)
            assert window.routed == n and window.unrouted == window.unavailable == 0
            p = weight / 100
            assert abs(window.canary_share - p) <= binomial_tolerance(n, p), (weight, window)

    def test_the_most_specific_route_wins_and_other_namespaces_do_not_route(self) -> None:
        canary = make_canary("kuma")
        mine = kuma.traffic_route(canary, None, Routes(0, 100))
        catch_all = {
            "metadata": {"name": "route-all"},
            "spec": {
                "destinations": [{"match": {"kuma.io/service": "*"}}],
                "conf": {"destination": {"kuma.io/service": "*"}},
            },
        }
        services = {
            name: {"metadata": {"name": name}}
            for name in ("podinfo", "podinfo-primary", "podinfo-canary")
        }
        snapshot = Snapshot(NS, services=services, traffic_routes=(catch_all, mine))
        request = TrafficRequest(1, 0, "podinfo")
        rng = random.Random(1)
        got = resolve(snapshot, ServiceEntry(NS, "podinfo"), request, rng)
        assert (got.service, got.via) == ("podinfo-canary", "TrafficRoute/podinfo")
        other = resolve(snapshot, ServiceEntry(NS, "other"), request, rng)
        assert (other.service, other.via) == ("other", "TrafficRoute/route-all")


def test_sandbox_crd_is_cluster_scoped_and_keeps_the_mesh() -> None:
    doc = yaml.safe_load((ROOT / "crds" / "routers" / "kuma.yaml").read_text())
    assert doc["spec"]["scope"] == "Cluster"
    (version,) = doc["spec"]["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    props = version["schema"]["openAPIV3Schema"]["properties"]
    assert props["mesh"] == {"type": "string"}
    assert props["spec"]["x-kubernetes-preserve-unknown-fields"] is True
