"""The App Mesh routers (``appmesh`` = v1beta1, ``appmesh:v1beta2``), as Flagger writes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from canary.adapters.routers import RouterError, ServiceRouter, make_router
from canary.adapters.routers.appmesh import AppMeshRouter
from canary.adapters.routers.builders import ORIGINAL_CONFIG_ANNOTATION, appmesh
from canary.core.observations import Routes
from canary.demo.traffic import RequestProfile, ServiceEntry, TrafficGenerator
from canary.model import Canary
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
V1 = "appmesh.k8s.aws/v1beta1"
V2 = "appmesh.k8s.aws/v1beta2"
MESH = {"meshName": "global"}
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
    "match": [
        {"headers": {"x-user": {"exact": "beta"}}},
        {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
    ],
}
PORT = {"port": 9898, "protocol": "http"}


def meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NS, **extra, "ownerReferences": [OWNER]}


def v1_targets(canary: int, primary: int) -> list[dict[str, Any]]:
    return [
        {"virtualNodeName": "podinfo-canary", "weight": canary},
        {"virtualNodeName": "podinfo-primary", "weight": primary},
    ]


def v2_targets(canary: int, primary: int) -> list[dict[str, Any]]:
    return [
        {"virtualNodeRef": {"name": "podinfo-canary"}, "weight": canary},
        {"virtualNodeRef": {"name": "podinfo-primary"}, "weight": primary},
    ]


def ab(provider: str, **service: Any) -> Canary:
    return make_canary(provider, service=service, analysis=AB)


# ===================================================================== v1beta1


class TestV1beta1Objects:
    @pytest.mark.parametrize("weight", [0, 25, 100])
    def test_exact_virtual_service_at_weights(self, weight: int) -> None:
        canary = make_canary("appmesh", service=MESH)
        vs = appmesh.virtual_service(
            canary, "apex", None, Routes(100 - weight, weight), version="v1beta1"
        )
        assert vs == {
            "apiVersion": V1,
            "kind": "VirtualService",
            "metadata": meta("podinfo.test"),
            "spec": {
                "meshName": "global",
                "virtualRouter": {"name": "podinfo", "listeners": [{"portMapping": PORT}]},
                "routes": [
                    {
                        "name": "podinfo",
                        "http": {
                            "match": {"prefix": "/"},
                            "action": {"weightedTargets": v1_targets(weight, 100 - weight)},
                        },
                    }
                ],
            },
        }
        assert appmesh.read_routes(canary, vs, version="v1beta1") == Routes(100 - weight, weight)

    def test_canary_virtual_service_sends_everything_to_the_canary(self) -> None:
        canary = make_canary("appmesh", service=MESH)
        vs = appmesh.virtual_service(canary, "canary", None, Routes(100, 0), version="v1beta1")
        assert vs["metadata"]["name"] == "podinfo-canary.test"
        assert vs["spec"]["virtualRouter"]["name"] == "podinfo-canary"
        (route,) = vs["spec"]["routes"]
        assert route["name"] == "podinfo-canary"
        assert route["http"]["action"]["weightedTargets"] == v1_targets(100, 0)

    @pytest.mark.parametrize(
        ("role", "name", "host"),
        [
            ("apex", "podinfo", "podinfo-primary.test"),
            ("primary", "podinfo-primary", "podinfo-primary.test"),
            ("canary", "podinfo-canary", "podinfo-canary.test"),
        ],
    )
    def test_exact_virtual_nodes(self, role: appmesh.Role, name: str, host: str) -> None:
        canary = make_canary("appmesh", service={**MESH, "backends": ["backend.test"]})
        assert appmesh.virtual_node(canary, role, None, version="v1beta1") == {
            "apiVersion": V1,
            "kind": "VirtualNode",
            "metadata": meta(name),
            "spec": {
                "meshName": "global",
                "listeners": [{"portMapping": PORT}],
                "serviceDiscovery": {"dns": {"hostName": host}},
                "backends": [{"virtualService": {"virtualServiceName": "backend.test"}}],
            },
        }

    def test_retries_prefix_grpc_and_gateway_annotations(self) -> None:
        canary = make_canary(
            "appmesh",
            service={
                **MESH,
                "portName": "grpc-web",
                "hosts": ["app.example.com", "www.example.com"],
                "timeout": "30s",
                "retries": {"attempts": 3, "perTryTimeout": "5s", "retryOn": "gateway-error,5xx"},
                "match": [{"uri": {"prefix": "/api"}}],
            },
        )
        vs = appmesh.virtual_service(canary, "apex", None, version="v1beta1")
        assert vs["metadata"]["annotations"] == {
            "gateway.appmesh.k8s.aws/expose": "true",
            "gateway.appmesh.k8s.aws/domain": "app.example.com,www.example.com,",
            "gateway.appmesh.k8s.aws/timeout": "30s",
            "gateway.appmesh.k8s.aws/retries": "3",
        }
        assert vs["spec"]["virtualRouter"]["listeners"] == [
            {"portMapping": {"port": 9898, "protocol": "grpc"}}
        ]
        http = vs["spec"]["routes"][0]["http"]
        assert http["match"] == {"prefix": "/api"}
        assert http["retryPolicy"] == {
            "perRetryTimeoutMillis": 5000,
            "maxRetries": 3,
            "httpRetryEvents": ["gateway-error", "5xx"],
        }
        assert "timeout" not in http  # v1beta1 routes have no timeout
        canary_vs = appmesh.virtual_service(canary, "canary", None, version="v1beta1")
        assert "annotations" not in canary_vs["metadata"]

    def test_default_retry_policy(self) -> None:
        canary = make_canary("appmesh", service={**MESH, "retries": {}})
        http = appmesh.virtual_service(canary, "apex", None, version="v1beta1")["spec"]["routes"][0]
        assert http["http"]["retryPolicy"] == {
            "perRetryTimeoutMillis": 250,
            "maxRetries": 1,
            "httpRetryEvents": ["gateway-error"],
        }

    def test_ab_testing_routes(self) -> None:
        canary = ab("appmesh", **MESH)
        vs = appmesh.virtual_service(canary, "apex", None, Routes(0, 100), version="v1beta1")
        assert vs["spec"]["routes"] == [
            {
                "name": "podinfo-a",
                "priority": 10,
                "http": {
                    "match": {
                        "prefix": "/",
                        "headers": [
                            {"name": "x-user", "match": {"exact": "beta"}},
                            {
                                "name": "cookie",
                                "match": {"regex": "^(.*?;)?(canary=always)(;.*)?$"},
                            },
                        ],
                    },
                    "action": {"weightedTargets": v1_targets(100, 0)},
                },
            },
            {
                "name": "podinfo-b",
                "priority": 20,
                "http": {
                    "match": {"prefix": "/"},
                    "action": {
                        "weightedTargets": [{"virtualNodeName": "podinfo-primary", "weight": 100}]
                    },
                },
            },
        ]
        assert appmesh.read_routes(canary, vs, version="v1beta1") == Routes(0, 100)
        # the -canary service never gets the A/B form
        canary_vs = appmesh.virtual_service(canary, "canary", None, version="v1beta1")
        assert len(canary_vs["spec"]["routes"]) == 1

    def test_mesh_name_is_required(self) -> None:
        with pytest.raises(RouterError) as err:
            appmesh.virtual_node(
                make_canary("appmesh", validate=False), "apex", None, version="v1beta1"
            )
        assert err.value.field == "spec.service.meshName"
        with pytest.raises(Exception, match=r"spec\.service\.meshName"):
            make_canary("appmesh")


# ===================================================================== v1beta2


class TestV1beta2Objects:
    @pytest.mark.parametrize("weight", [0, 25, 100])
    def test_exact_virtual_router_at_weights(self, weight: int) -> None:
        canary = make_canary("appmesh:v1beta2")
        vr = appmesh.virtual_router(canary, "apex", None, Routes(100 - weight, weight))
        assert vr == {
            "apiVersion": V2,
            "kind": "VirtualRouter",
            "metadata": meta("podinfo"),
            "spec": {
                "listeners": [{"portMapping": PORT}],
                "routes": [
                    {
                        "name": "podinfo",
                        "httpRoute": {
                            "match": {"prefix": "/"},
                            "action": {"weightedTargets": v2_targets(weight, 100 - weight)},
                        },
                    }
                ],
            },
        }
        assert appmesh.read_routes(canary, vr, version="v1beta2") == Routes(100 - weight, weight)

    def test_exact_virtual_services(self) -> None:
        canary = make_canary("appmesh:v1beta2")
        roles: tuple[tuple[Literal["apex", "canary"], str], ...] = (
            ("apex", "podinfo"),
            ("canary", "podinfo-canary"),
        )
        for role, name in roles:
            assert appmesh.virtual_service(canary, role, None, version="v1beta2") == {
                "apiVersion": V2,
                "kind": "VirtualService",
                "metadata": meta(name),
                "spec": {"provider": {"virtualRouter": {"virtualRouterRef": {"name": name}}}},
            }

    def test_exact_virtual_nodes(self) -> None:
        canary = make_canary(
            "appmesh:v1beta2",
            service={"targetPort": 8080, "timeout": "1m", "backends": ["arn:aws:appmesh:x", "db"]},
        )
        listener = {
            "portMapping": {"port": 8080, "protocol": "http"},
            "timeout": {"http": {"perRequest": {"unit": "ms", "value": 60000}}},
        }
        backends = [
            {"virtualService": {"virtualServiceARN": "arn:aws:appmesh:x"}},
            {"virtualService": {"virtualServiceRef": {"name": "db"}}},
        ]
        roles: tuple[tuple[appmesh.Role, str], ...] = (
            ("primary", "podinfo-primary"),
            ("canary", "podinfo"),
        )
        for role, pods in roles:
            name = f"podinfo-{role}"
            node = appmesh.virtual_node(
                canary, role, None, version="v1beta2", selector=("app", "podinfo")
            )
            assert node == {
                "apiVersion": V2,
                "kind": "VirtualNode",
                "metadata": meta(name),
                "spec": {
                    "listeners": [listener],
                    "serviceDiscovery": {"dns": {"hostname": f"{name}.test.svc.cluster.local."}},
                    "podSelector": {"matchLabels": {"app": pods}},
                    "backends": backends,
                },
            }
        with pytest.raises(RouterError):
            appmesh.virtual_node(canary, "apex", None, version="v1beta2")

    def test_route_timeout_and_retries(self) -> None:
        canary = make_canary(
            "appmesh:v1beta2", service={"timeout": "15s", "retries": {"attempts": 2}}
        )
        http = appmesh.virtual_router(canary, "apex", None)["spec"]["routes"][0]["httpRoute"]
        assert http["timeout"] == {"perRequest": {"unit": "ms", "value": 15000}}
        assert http["retryPolicy"] == {
            "perRetryTimeout": {"unit": "ms", "value": 250},
            "maxRetries": 2,
            "httpRetryEvents": ["gateway-error"],
        }

    def test_ab_testing_routes(self) -> None:
        canary = ab("appmesh:v1beta2")
        vr = appmesh.virtual_router(canary, "apex", None, Routes(0, 100))
        first, second = vr["spec"]["routes"]
        assert (first["name"], first["priority"], second["name"], second["priority"]) == (
            "podinfo-a",
            10,
            "podinfo-b",
            20,
        )
        assert first["httpRoute"]["match"]["headers"][0] == {
            "name": "x-user",
            "match": {"exact": "beta"},
        }
        assert first["httpRoute"]["action"]["weightedTargets"] == v2_targets(100, 0)
        assert second["httpRoute"]["action"]["weightedTargets"] == [
            {"virtualNodeRef": {"name": "podinfo-primary"}, "weight": 100}
        ]
        assert appmesh.read_routes(canary, vr, version="v1beta2") == Routes(0, 100)

    def test_webhook_fields_are_kept(self) -> None:
        canary = make_canary("appmesh:v1beta2")
        current = appmesh.virtual_router(canary, "apex", None, Routes(70, 30))
        current["spec"]["meshRef"] = {"name": "global", "uid": "u-1"}
        current["spec"]["awsName"] = "podinfo_test"
        rebuilt = appmesh.virtual_router(canary, "apex", current)
        assert rebuilt["spec"]["meshRef"] == {"name": "global", "uid": "u-1"}
        assert rebuilt["spec"]["awsName"] == "podinfo_test"
        assert appmesh.read_routes(canary, rebuilt, version="v1beta2") == Routes(70, 30)


class TestRefusals:
    @pytest.mark.parametrize("provider", ["appmesh", "appmesh:v1beta2"])
    def test_mirroring_is_refused(self, provider: str) -> None:
        version = "v1beta1" if provider == "appmesh" else "v1beta2"
        canary = make_canary(provider, service=MESH)
        with pytest.raises(RouterError) as err:
            appmesh.virtual_service(canary, "apex", None, Routes(100, 0, True), version=version)
        assert err.value.field == "spec.analysis.mirror"

    @pytest.mark.parametrize(
        ("match", "field"),
        [
            ({"uri": {"prefix": "/beta"}}, "spec.analysis.match[0]"),
            ({"sourceLabels": {"app": "x"}}, "spec.analysis.match[0]"),
            (
                {"headers": {"x-user": {"exact": "beta", "invert": True}}},
                "spec.analysis.match[0].headers.x-user",
            ),
            ({"headers": {"x-user": {}}}, "spec.analysis.match[0].headers.x-user"),
        ],
    )
    def test_matches_app_mesh_cannot_express(self, match: dict[str, Any], field: str) -> None:
        analysis = {**AB, "match": [match]}
        canary = make_canary("appmesh:v1beta2", analysis=analysis)
        with pytest.raises(RouterError) as err:
            appmesh.virtual_router(canary, "apex", None)
        assert err.value.field == field

    def test_session_affinity_is_refused(self) -> None:
        sticky = {
            "interval": "1m",
            "threshold": 5,
            "stepWeight": 10,
            "sessionAffinity": {"cookieName": "c"},
        }
        canary = make_canary("appmesh:v1beta2", analysis=sticky, validate=False)
        with pytest.raises(RouterError) as err:
            appmesh.virtual_router(canary, "apex", None)
        assert err.value.field == "spec.analysis.sessionAffinity"

    def test_unknown_version(self) -> None:
        with pytest.raises(RouterError):
            AppMeshRouter(FakeKube(), version="v1")


# ===================================================================== routers


PROVIDERS = {
    "appmesh": (V1, "VirtualService", "podinfo.test"),
    "appmesh:v1beta2": (V2, "VirtualRouter", "podinfo"),
}


class TestAppMeshRouter:
    @pytest.mark.parametrize("provider", list(PROVIDERS))
    async def test_walks_weights_and_reconcile_keeps_them(self, provider: str) -> None:
        kube = FakeKube()
        kube.put(target())
        router = make_router(provider, kube)
        assert isinstance(router, AppMeshRouter)
        canary = make_canary(provider, service=MESH)
        await router.reconcile(canary)
        api, kind, name = PROVIDERS[provider]
        assert kube.peek(api, kind, name) is not None
        assert await router.get_routes(canary) == Routes(100, 0)
        for weight in (25, 100, 0, 60):
            await router.set_routes(canary, 100 - weight, weight, False)
            await router.reconcile(canary)
            assert await router.get_routes(canary) == Routes(100 - weight, weight)

    async def test_v1beta1_objects_and_required_apis(self) -> None:
        kube = FakeKube()
        router = make_router("appmesh", kube)
        canary = make_canary("appmesh", service=MESH)
        assert [str(a) for a in router.required_apis(canary)] == [
            f"{V1} VirtualNode",
            f"{V1} VirtualService",
        ]
        await router.reconcile(canary)
        for name in ("podinfo", "podinfo-primary", "podinfo-canary"):
            assert kube.peek(V1, "VirtualNode", name) is not None, name
        for name in ("podinfo.test", "podinfo-canary.test"):
            assert kube.peek(V1, "VirtualService", name) is not None, name

    async def test_v1beta2_objects_select_pods_by_the_target_label(self) -> None:
        kube = FakeKube()
        kube.put(target(labels={"app.kubernetes.io/name": "web"}))
        router = make_router("appmesh:v1beta2", kube)
        canary = make_canary("appmesh:v1beta2")
        assert [str(a) for a in router.required_apis(canary)] == [
            f"{V2} VirtualNode",
            f"{V2} VirtualRouter",
            f"{V2} VirtualService",
        ]
        await router.reconcile(canary)
        primary = kube.peek(V2, "VirtualNode", "podinfo-primary")
        node = kube.peek(V2, "VirtualNode", "podinfo-canary")
        assert primary is not None and node is not None
        assert primary["spec"]["podSelector"] == {
            "matchLabels": {"app.kubernetes.io/name": "web-primary"}
        }
        assert node["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "web"}}
        assert kube.peek(V2, "VirtualNode", "podinfo") is None
        for name in ("podinfo", "podinfo-canary"):
            assert kube.peek(V2, "VirtualRouter", name) is not None, name
            assert kube.peek(V2, "VirtualService", name) is not None, name

    async def test_takeover_and_finalize(self) -> None:
        kube = FakeKube()
        kube.put(target())
        original = {
            "apiVersion": V2,
            "kind": "VirtualService",
            "metadata": {"name": "podinfo", "namespace": NS},
            "spec": {"provider": {"virtualNode": {"virtualNodeRef": {"name": "podinfo-v1"}}}},
        }
        kube.put(original)
        router = make_router("appmesh:v1beta2", kube)
        canary = make_canary("appmesh:v1beta2")
        await router.reconcile(canary)
        taken = kube.peek(V2, "VirtualService", "podinfo")
        assert taken is not None and ORIGINAL_CONFIG_ANNOTATION in taken["metadata"]["annotations"]
        await router.finalize(canary)
        restored = kube.peek(V2, "VirtualService", "podinfo")
        assert restored is not None
        assert strip_server_fields(restored) == strip_server_fields(original)


# ============================================================ simulated data plane


async def mesh(
    provider: str, analysis: dict[str, Any] | None = None
) -> tuple[FakeKube, Canary, Any]:
    kube = FakeKube()
    kube.put(target())
    canary = make_canary(provider, service=MESH, analysis=analysis)
    services = ServiceRouter(kube)
    await services.initialize(canary, target())
    await services.reconcile_apex(canary, target())
    kube.put(pod("podinfo-primary-a", {"app": "podinfo-primary"}))
    kube.put(pod("podinfo-c", {"app": "podinfo"}))
    router = make_router(provider, kube)
    await router.reconcile(canary)
    return kube, canary, router


class TestSimulatedAppMesh:
    @pytest.mark.parametrize("provider", list(PROVIDERS))
    async def test_measured_split_follows_each_weight(self, provider: str) -> None:
        kube, canary, router = await mesh(provider)
        gen = TrafficGenerator(kube, ServiceEntry(NS, "podinfo"), seed=5)
        n = 2000
        for weight in (0, 25, 100):
            await router.set_routes(canary, 100 - weight, weight, False)
            await gen.refresh()
            window = await gen.send(n)
            assert window.routed == n and window.unrouted == window.unavailable == 0
            p = weight / 100
            assert abs(window.canary_share - p) <= binomial_tolerance(n, p), (weight, window)

    @pytest.mark.parametrize("provider", list(PROVIDERS))
    async def test_ab_only_requests_with_every_header_reach_the_canary(self, provider: str) -> None:
        kube, canary, router = await mesh(provider, AB)
        await router.set_routes(canary, 0, 100, False)
        profiles = (
            RequestProfile(1, headers={"x-user": "beta"}, cookies={"canary": "always"}),
            RequestProfile(1, headers={"x-user": "beta"}),
            RequestProfile(1),
        )
        gen = TrafficGenerator(kube, ServiceEntry(NS, "podinfo"), seed=11, profiles=profiles)
        await gen.refresh()
        window = await gen.send(1500)
        assert window.routed == 1500
        # Flagger puts every match entry's headers in one route: all are required.
        assert 0.25 < window.canary_share < 0.42, window


def test_sandbox_crds_serve_what_the_routers_write() -> None:
    docs = {
        d["metadata"]["name"]: d
        for d in yaml.safe_load_all((ROOT / "crds" / "routers" / "appmesh.yaml").read_text())
        if d
    }
    served = {
        name: {v["name"] for v in doc["spec"]["versions"] if v["served"]}
        for name, doc in docs.items()
    }
    assert served == {
        "virtualnodes.appmesh.k8s.aws": {"v1beta1", "v1beta2"},
        "virtualservices.appmesh.k8s.aws": {"v1beta1", "v1beta2"},
        "virtualrouters.appmesh.k8s.aws": {"v1beta2"},
    }
    for doc in docs.values():
        assert sum(1 for v in doc["spec"]["versions"] if v["storage"]) == 1
