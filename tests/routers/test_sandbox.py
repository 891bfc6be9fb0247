"""The routers against the sandbox API server, with the routing CRDs of crds/routers applied.

Real HTTP, real API semantics (served versions, resourceVersion preconditions,
server-populated fields), the real `KubeClient`, and the sandbox's workload
simulator creating the pods the traffic generator sends requests to.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.adapters.kube import KubeClient, connect
from canary.adapters.routers import ServiceRouter, make_router
from canary.adapters.routers.builders import gateway, ingress, istio, seeded_cookie_factory, smi
from canary.core.observations import Routes
from canary.demo.traffic import (
    Entry,
    GatewayEntry,
    IngressEntry,
    ServiceEntry,
    TrafficGenerator,
    service_pods,
)
from canary.model import Canary
from kubesandbox import Sandbox
from tests.routers.support import NS, binomial_tolerance, make_canary, target
from tests.routers.support import ingress as make_ingress

ROOT = Path(__file__).resolve().parents[2]
CRDS = sorted((ROOT / "crds" / "routers").glob("*.yaml"))
REF = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo"}
GW = {"gatewayRefs": [{"name": "gw"}], "hosts": ["app.example.com"]}
MIRROR_BG = {"interval": "1m", "threshold": 5, "iterations": 5, "mirror": True, "mirrorWeight": 20}
AB = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 5,
    "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
}


@pytest.fixture
async def sandbox_kube(tmp_path: Path) -> AsyncIterator[KubeClient]:
    sandbox = await Sandbox.start(speed=10.0)
    kube: KubeClient | None = None
    try:
        kube = await connect(
            str(sandbox.write_kubeconfig(tmp_path / "kubeconfig")), request_timeout=10.0
        )
        await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        for path in CRDS:
            for doc in yaml.safe_load_all(path.read_text()):
                if doc:
                    await kube.create(doc)
        yield kube
    finally:
        if kube is not None:
            await kube.aclose()
        await sandbox.stop()


def expected_object(provider: str, canary: Canary, routes: Routes) -> dict[str, Any]:
    """What the pure builder says the routing object is, at these routes."""
    factory = seeded_cookie_factory(0)
    if provider == "nginx":
        return ingress.canary_ingress(canary, make_ingress(), None, routes)
    if provider == "istio":
        return istio.virtual_service(canary, None, routes, new_cookie=factory)
    if provider.startswith("gatewayapi"):
        return gateway.http_route(
            canary, None, routes, version=provider.split(":")[1], new_cookie=factory
        )
    if provider == "linkerd":
        return gateway.http_route(canary, None, routes, version="v1beta1", mesh=True)
    return smi.traffic_split(canary, None, routes, provider=smi.SmiProvider.parse(provider))


def locate(provider: str) -> tuple[str, str, str]:
    if provider == "nginx":
        return "networking.k8s.io/v1", "Ingress", "podinfo-canary"
    if provider == "istio":
        return "networking.istio.io/v1beta1", "VirtualService", "podinfo"
    if provider.startswith("gatewayapi"):
        return f"gateway.networking.k8s.io/{provider.split(':')[1]}", "HTTPRoute", "podinfo"
    if provider == "linkerd":
        return "gateway.networking.k8s.io/v1beta1", "HTTPRoute", "podinfo"
    return f"split.smi-spec.io/{provider.split(':')[1]}", "TrafficSplit", "podinfo"


def canary_for(provider: str, analysis: dict[str, Any] | None = None) -> Canary:
    service = GW if provider.startswith("gatewayapi") else {}
    extra: dict[str, Any] = {"ingressRef": REF} if provider == "nginx" else {}
    return make_canary(provider, service=service, analysis=analysis, **extra)


MESH_PROVIDERS = [
    "nginx", "istio", "gatewayapi:v1", "gatewayapi:v1beta1", "linkerd", "smi:v1alpha1", "smi:v1alpha2", "smi:v1alpha3",
]  # fmt: skip


class TestObjectsInTheSandbox:
    @pytest.mark.parametrize("provider", MESH_PROVIDERS)
    async def test_exact_objects_and_read_back(
        self, sandbox_kube: KubeClient, provider: str
    ) -> None:
        kube = sandbox_kube
        await kube.create(make_ingress())
        canary = canary_for(provider)
        router = make_router(provider, kube, new_cookie=seeded_cookie_factory(0))
        await router.reconcile(canary)
        api_version, kind, name = locate(provider)
        cases: list[tuple[dict[str, Any] | None, Routes]] = [
            (None, Routes(100, 0)),
            (None, Routes(70, 30)),
            (None, Routes(0, 100)),
        ]
        if provider in ("istio", "gatewayapi:v1", "gatewayapi:v1beta1"):
            cases.append((MIRROR_BG, Routes(100, 0, True)))
        if provider in ("nginx", "istio", "gatewayapi:v1", "linkerd"):
            cases.append((AB, Routes(0, 100)))
        for analysis, routes in cases:
            current = canary_for(provider, analysis)
            await router.set_routes(current, routes.primary, routes.canary, routes.mirrored)
            stored = await kube.get(api_version, kind, name, NS)
            assert stored is not None
            expected = expected_object(provider, current, routes)
            assert stored["spec"] == expected["spec"], (provider, routes)
            assert stored["metadata"]["ownerReferences"] == expected["metadata"]["ownerReferences"]
            assert await router.get_routes(current) == routes
        original = await kube.get("networking.k8s.io/v1", "Ingress", "podinfo", NS)
        assert original is not None and original["metadata"]["generation"] == 1  # never written

    async def test_reconcile_writes_nothing_when_in_step(self, sandbox_kube: KubeClient) -> None:
        router = make_router("istio", sandbox_kube)
        canary = canary_for("istio")
        await router.reconcile(canary)
        await router.set_routes(canary, 60, 40, False)
        before = await sandbox_kube.get(
            "networking.istio.io/v1beta1", "VirtualService", "podinfo", NS
        )
        await router.reconcile(canary)
        after = await sandbox_kube.get(
            "networking.istio.io/v1beta1", "VirtualService", "podinfo", NS
        )
        assert before is not None and after is not None
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

    async def test_services_and_istio_takeover_finalize(self, sandbox_kube: KubeClient) -> None:
        kube = sandbox_kube
        user_vs = {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "podinfo", "namespace": NS, "labels": {"team": "web"}},
            "spec": {
                "hosts": ["podinfo"],
                "http": [{"route": [{"destination": {"host": "podinfo"}}]}],
            },
        }
        user_svc = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "podinfo", "namespace": NS},
            "spec": {"selector": {"app": "podinfo"}, "ports": [{"name": "http", "port": 9898}]},
        }
        await kube.create(user_vs)
        await kube.create(user_svc)
        canary = make_canary("istio", revertOnDeletion=True)
        services = ServiceRouter(kube)
        router = make_router("istio", kube)
        await services.initialize(canary, target())
        await services.reconcile_apex(canary, target())
        await router.reconcile(canary)
        await router.set_routes(canary, 50, 50, False)
        apex = await kube.get("v1", "Service", "podinfo", NS)
        assert apex is not None and apex["spec"]["selector"] == {"app": "podinfo-primary"}
        assert await router.get_routes(canary) == Routes(50, 50)

        await router.finalize(canary)
        await services.finalize(canary, target())
        vs = await kube.get("networking.istio.io/v1", "VirtualService", "podinfo", NS)
        assert vs is not None
        assert vs["spec"] == user_vs["spec"]
        assert vs["metadata"].get("labels") == {"team": "web"}
        assert not vs["metadata"].get("annotations")
        apex = await kube.get("v1", "Service", "podinfo", NS)
        assert apex is not None and apex["spec"]["selector"] == {"app": "podinfo"}


# ---------------------------------------------------------------------------- traffic


async def wait_for_pods(
    gen: TrafficGenerator, services: dict[str, int], within: float = 15.0
) -> None:
    """Refresh until each Service has the wanted number of ready pods (or fail)."""
    deadline = time.monotonic() + within
    while True:
        snap = await gen.refresh()
        counts = {s: len(service_pods(snap, s)) for s in services}
        if counts == services:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"pods not ready within {within}s: {counts}")
        await asyncio.sleep(0.05)


def primary_deployment() -> dict[str, Any]:
    deploy = target(labels={"app": "podinfo-primary"})
    deploy["metadata"]["name"] = "podinfo-primary"
    deploy["spec"]["replicas"] = 2
    return deploy


ENTRIES: dict[str, Entry] = {
    "kubernetes": ServiceEntry(NS, "podinfo-canary"),
    "nginx": IngressEntry(NS, "podinfo"),
    "istio": ServiceEntry(NS, "podinfo"),
    "gatewayapi:v1": GatewayEntry(NS, "gw", "app.example.com"),
    "gatewayapi:v1beta1": GatewayEntry(NS, "gw", "app.example.com"),
    "linkerd": ServiceEntry(NS, "podinfo"),
    "smi:v1alpha1": ServiceEntry(NS, "podinfo"),
    "smi:v1alpha2": ServiceEntry(NS, "podinfo"),
    "smi:v1alpha3": ServiceEntry(NS, "podinfo"),
}


class TestCanaryWalksItsWeights:
    N = 1500

    @pytest.mark.parametrize("provider", list(ENTRIES))
    async def test_measured_split_matches_each_step(
        self, sandbox_kube: KubeClient, provider: str
    ) -> None:
        kube = sandbox_kube
        deploy = target()
        deploy["spec"]["replicas"] = 1
        await kube.create(deploy)
        await kube.create(primary_deployment())
        await kube.create(make_ingress())
        analysis = (
            {"interval": "1m", "threshold": 1, "iterations": 3}
            if provider == "kubernetes"
            else None
        )
        canary = canary_for(provider, analysis)
        services = ServiceRouter(kube)
        await services.initialize(canary, target())
        await services.reconcile_apex(canary, target())
        router = make_router(provider, kube)
        await router.reconcile(canary)
        gen = TrafficGenerator(kube, ENTRIES[provider], seed=7, gateway_version="v1")
        await wait_for_pods(gen, {"podinfo-primary": 2, "podinfo-canary": 1})

        if (
            provider == "kubernetes"
        ):  # blue/green: the apex stays on the primary, analysis traffic hits -canary
            window = await gen.send(200)
            assert (window.primary, window.canary) == (0, 200)
            apex = await TrafficGenerator(kube, ServiceEntry(NS, "podinfo"), seed=1).send(200)
            assert (apex.primary, apex.canary) == (200, 0)
            return

        for weight in (0, 5, 25, 50, 100):
            await router.set_routes(canary, 100 - weight, weight, False)
            await gen.refresh()
            window = await gen.send(self.N)
            assert window.routed == self.N, window
            share = weight / 100
            assert abs(window.canary_share - share) <= binomial_tolerance(self.N, share), (
                provider,
                weight,
                window,
            )
