"""A core Service as the target ("canary anything behind a Service"), promoted end to end.

The user runs two Deployments, ``podinfo-v1`` and ``podinfo-v2``, and releases by
pointing the Service ``podinfo`` from one to the other. The real operator, with
``provider: istio``, copies the Service to ``podinfo-canary`` (following it) and
``podinfo-primary`` (copied once, promoted at the end), leaves the Service itself
alone (no apex takeover, no primary Deployment), and walks the VirtualService's
weights. At every weight the traffic generator measures the split through the
VirtualService and the copies' selectors: within four binomial standard deviations,
the new pods on the canary side only; after promotion all traffic reaches the new pods
through the primary copy.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from canary.adapters.kube import KubeClient
from canary.adapters.routers import make_router
from canary.core.observations import Routes
from canary.demo.traffic import ServiceEntry, TrafficGenerator, TrafficRequest, Version
from canary.model import parse_canary
from kubesandbox import SandboxThread
from tests.e2e.support import OperatorProcess, eventually

pytestmark = pytest.mark.slow

NS = "default"
API = "canary.gitops.dev/v1beta1"
VS = ("networking.istio.io/v1beta1", "VirtualService", "podinfo")
OLD_IMAGE, NEW_IMAGE = "podinfo:6.0.0", "podinfo:6.1.0"
N = 1000
SIGMAS = 4.0


def deployment(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "podinfod", "image": image}]},
            },
        },
    }


def service(selects: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": NS, "labels": {"app": "podinfo"}},
        "spec": {
            "selector": {"app": selects},
            "ports": [{"name": "http", "port": 80, "targetPort": 9898}],
        },
    }


def canary() -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {
            "provider": "istio",
            "targetRef": {"apiVersion": "v1", "kind": "Service", "name": "podinfo"},
            "service": {"port": 80},
            "analysis": {"interval": "10s", "threshold": 2, "stepWeight": 25, "maxWeight": 50},
        },
    }


@pytest.fixture
def operator(cluster: SandboxThread, tmp_path: Path) -> Iterator[OperatorProcess]:
    op = OperatorProcess(cluster.kubeconfig_path, tmp_path / "operator.log", time_scale=0.1)
    op.start()
    yield op
    op.kill()
    print(op.output()[-6000:])  # shown by pytest only when the test failed


@dataclass
class Served:
    by: Counter[tuple[Version, str]] = field(default_factory=Counter)

    async def __call__(self, version: Version, pod: str, request: TrafficRequest) -> int | None:
        self.by[(version, pod)] += 1
        return None


@dataclass(frozen=True)
class Measurement:
    routes: Routes
    primary_selects: str
    share: float
    routed: int
    images: dict[str, frozenset[str]]


async def phase_of(kube: KubeClient) -> str:
    body = await kube.get(API, "Canary", "podinfo", NS)
    return str(((body or {}).get("status") or {}).get("phase") or "")


def resource_version(obj: dict[str, Any] | None) -> str | None:
    return None if obj is None else str(obj["metadata"].get("resourceVersion"))


async def test_a_service_target_is_walked_through_the_weights_and_promoted(
    cluster: SandboxThread, kube: KubeClient, operator: OperatorProcess
) -> None:
    cluster.apply_manifest(deployment("podinfo-v1", OLD_IMAGE))
    cluster.apply_manifest(deployment("podinfo-v2", NEW_IMAGE))
    cluster.apply_manifest(service("podinfo-v1"))
    cluster.apply_manifest(canary())

    async def initialized() -> bool:
        return await phase_of(kube) == "Initialized"

    await eventually(initialized, timeout=30, what="the canary to initialize")
    for name in ("podinfo-primary", "podinfo-canary"):
        copy_ = await kube.get("v1", "Service", name, NS)
        assert copy_ is not None and copy_["spec"]["selector"] == {"app": "podinfo-v1"}, name
    # The target is the apex: it keeps its own selector and gets no owner or takeover.
    target = await kube.get("v1", "Service", "podinfo", NS)
    assert target is not None and target["spec"]["selector"] == {"app": "podinfo-v1"}
    assert "ownerReferences" not in target["metadata"]
    assert not (target["metadata"].get("annotations") or {})
    # No primary workload, and the user's Deployments keep their replicas.
    assert await kube.get("apps/v1", "Deployment", "podinfo-primary", NS) is None
    for name in ("podinfo-v1", "podinfo-v2"):
        dep = await kube.get("apps/v1", "Deployment", name, NS)
        assert dep is not None and dep["spec"]["replicas"] == 2, name

    spec = parse_canary(await kube.get(API, "Canary", "podinfo", NS) or {})
    router = make_router("istio", kube)
    assert await router.get_routes(spec) == Routes(100, 0)
    backend = Served()
    gen = TrafficGenerator(kube, ServiceEntry(NS, "podinfo"), backend=backend, seed=11)

    # The release: the Service now points at the new pods.
    await kube.patch("v1", "Service", "podinfo", NS, {"spec": {"selector": {"app": "podinfo-v2"}}})

    weights: list[int] = []
    measured: dict[tuple[int, str], Measurement] = {}
    final: Measurement | None = None
    deadline = time.monotonic() + 180  # an outer limit: the run ending ends the loop
    while final is None:
        assert time.monotonic() < deadline, (weights, measured, await phase_of(kube))
        phase = await phase_of(kube)
        before = resource_version(await kube.get(*VS[:2], VS[2], NS))
        routes = await router.get_routes(spec)
        snapshot = await gen.refresh()
        vs = next(
            (v for v in snapshot.virtual_services if v["metadata"]["name"] == "podinfo"), None
        )
        primary = snapshot.services.get("podinfo-primary")
        if routes is None or vs is None or primary is None or resource_version(vs) != before:
            await asyncio.sleep(0.05)
            continue
        if not weights or weights[-1] != routes.canary:
            weights.append(routes.canary)
        key = (len(weights) - 1, primary["spec"]["selector"]["app"])
        if key in measured and phase != "Succeeded":
            await asyncio.sleep(0.05)
            continue
        backend.by.clear()
        window = await gen.send(N)
        image_of = {
            p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in snapshot.pods
        }
        images: dict[str, set[str]] = {"primary": set(), "canary": set()}
        for side, pod in backend.by:
            images[side].add(image_of.get(pod, "?"))
        m = Measurement(
            routes,
            key[1],
            window.canary_share,
            window.routed,
            {k: frozenset(v) for k, v in images.items()},
        )
        measured[key] = m
        if phase == "Succeeded":
            final = m

    context = f"weights {weights}, measured {measured}"
    assert weights == [0, 25, 50, 0], context
    assert {index for index, _ in measured} == {0, 1, 2, 3}, context
    for m in measured.values():
        p = m.routes.canary / 100
        assert m.routed == N, context
        assert abs(m.share - p) <= SIGMAS * math.sqrt(p * (1 - p) / N), (m, context)
        assert m.images["canary"] <= {NEW_IMAGE}, (m, context)
        if m.primary_selects == "podinfo-v1":
            assert m.images["primary"] == {OLD_IMAGE}, (m, context)
    assert final.routes == Routes(100, 0) and final.primary_selects == "podinfo-v2", context
    assert final.images == {"primary": frozenset({NEW_IMAGE}), "canary": frozenset()}, context

    events = [
        e
        for e in await kube.list("v1", "Event", NS)
        if (e.get("involvedObject") or {}).get("kind") == "Canary"
    ]
    messages = Counter(str(e.get("message")) for e in events)
    warnings = {str(e.get("message")) for e in events if e.get("type") == "Warning"}
    assert not warnings, messages
    for weight in (25, 50):
        assert messages[f"Advance podinfo.{NS} canary weight {weight}"] == 1, messages
    assert messages[f"Promotion completed! Scaling down podinfo.{NS}"] == 1, messages
    assert "Traceback" not in operator.output()
