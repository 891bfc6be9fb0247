"""``provider: knative`` end to end: the real operator promotes a new Knative Revision.

The sandbox has no Knative, so `KnativeServing` plays its controller (Revisions, their
Deployments, the Service's status); the sandbox's workload simulator runs the Revisions'
pods. The operator pins the first Revision as the primary
(``flagger.app/primary-revision``), a new template makes a new Revision, and the weights
walk through the Service's ``spec.traffic`` (25, 50), then the new Revision is pinned and
gets 100%. At every weight the traffic generator, resolving requests through the
Knative Service's traffic as Knative's networking layer does, measures the split: within
four binomial standard deviations of the weight, the new image on the canary side only.
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
from tests.e2e.knative_serving import API as KNATIVE
from tests.e2e.knative_serving import KnativeServing
from tests.e2e.support import OperatorProcess, eventually

pytestmark = pytest.mark.slow

NS = "default"
API = "canary.gitops.dev/v1beta1"
PIN = "flagger.app/primary-revision"
OLD_IMAGE, NEW_IMAGE = "podinfo:6.0.0", "podinfo:6.1.0"
N = 1000
SIGMAS = 4.0


def ksvc(image: str = OLD_IMAGE) -> dict[str, Any]:
    return {
        "apiVersion": KNATIVE,
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {
            "template": {
                "spec": {"containers": [{"image": image, "ports": [{"containerPort": 9898}]}]}
            }
        },
    }


def canary() -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {
            "provider": "knative",
            "targetRef": {"apiVersion": KNATIVE, "kind": "Service", "name": "podinfo"},
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
    pinned: str
    latest: str
    share: float
    routed: int
    images: dict[str, frozenset[str]]

    @property
    def expected(self) -> float:
        # Once the new Revision is pinned, both entries name it: everything is primary.
        return 0.0 if self.pinned == self.latest else self.routes.canary / 100


async def phase_of(kube: KubeClient) -> str:
    body = await kube.get(API, "Canary", "podinfo", NS)
    return str(((body or {}).get("status") or {}).get("phase") or "")


async def test_a_new_revision_is_walked_through_the_weights_and_promoted(
    cluster: SandboxThread, kube: KubeClient, operator: OperatorProcess
) -> None:
    async with KnativeServing(kube, NS).running():
        cluster.apply_manifest(ksvc())

        async def first_ready() -> bool:
            obj = await kube.get(KNATIVE, "Service", "podinfo", NS)
            return ((obj or {}).get("status") or {}).get("latestReadyRevisionName") == (
                "podinfo-00001"
            )

        await eventually(first_ready, timeout=20, what="the first Revision to be ready")
        cluster.apply_manifest(canary())

        async def initialized() -> bool:
            return await phase_of(kube) == "Initialized"

        await eventually(initialized, timeout=30, what="the canary to initialize")
        obj = await kube.get(KNATIVE, "Service", "podinfo", NS)
        assert obj is not None and obj["metadata"]["annotations"][PIN] == "podinfo-00001"
        assert obj["spec"]["traffic"] == [
            {"latestRevision": True, "percent": 0},
            {"revisionName": "podinfo-00001", "latestRevision": False, "percent": 100},
        ]
        # No primary workload and no Services: the Knative Service is the routing object.
        assert await kube.get("v1", "Service", "podinfo-primary", NS) is None
        assert await kube.get("v1", "Service", "podinfo", NS) is None

        spec = parse_canary(await kube.get(API, "Canary", "podinfo", NS) or {})
        router = make_router("knative", kube)
        backend = Served()
        gen = TrafficGenerator(kube, ServiceEntry(NS, "podinfo"), backend=backend, seed=7)
        assert await router.get_routes(spec) == Routes(100, 0)

        patch = {"spec": {"template": ksvc(NEW_IMAGE)["spec"]["template"]}}
        await kube.patch(KNATIVE, "Service", "podinfo", NS, patch)

        weights: list[int] = []
        measured: dict[tuple[int, str], Measurement] = {}
        deadline = time.monotonic() + 180  # an outer limit: the run ending ends the loop
        final: Measurement | None = None
        while final is None:
            assert time.monotonic() < deadline, (weights, measured, await phase_of(kube))
            phase = await phase_of(kube)
            before = await kube.get(KNATIVE, "Service", "podinfo", NS)
            routes = await router.get_routes(spec)
            snapshot = await gen.refresh()
            in_snapshot = next(
                (k for k in snapshot.knative_services if k["metadata"]["name"] == "podinfo"),
                None,
            )
            version = (before or {}).get("metadata", {}).get("resourceVersion")
            if routes is None or in_snapshot is None:
                await asyncio.sleep(0.05)
                continue
            if in_snapshot["metadata"]["resourceVersion"] != version:
                continue  # the object moved while it was read: measure again
            if not weights or weights[-1] != routes.canary:
                weights.append(routes.canary)
            pinned = in_snapshot["metadata"]["annotations"][PIN]
            latest = in_snapshot["status"]["latestReadyRevisionName"]
            key = (len(weights) - 1, pinned)
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
                pinned,
                latest,
                window.canary_share,
                window.routed,
                {k: frozenset(v) for k, v in images.items()},
            )
            measured[key] = m
            if phase == "Succeeded":
                final = m

        context = f"weights {weights}, measured {measured}"
        assert weights == [0, 25, 50, 0], context
        for m in measured.values():
            p = m.expected
            assert m.routed == N, context
            assert abs(m.share - p) <= SIGMAS * math.sqrt(p * (1 - p) / N), (m, context)
            assert m.images["canary"] <= {NEW_IMAGE}, (m, context)
            if m.pinned == "podinfo-00001":
                assert m.images["primary"] == {OLD_IMAGE}, (m, context)
        assert {index for index, _ in measured} == {0, 1, 2, 3}, context
        # Promoted: the new Revision pinned, with all the traffic.
        assert final.routes == Routes(100, 0) and final.pinned == "podinfo-00002", context
        assert final.images == {"primary": frozenset({NEW_IMAGE}), "canary": frozenset()}
        obj = await kube.get(KNATIVE, "Service", "podinfo", NS)
        assert obj is not None and obj["spec"]["traffic"] == [
            {"latestRevision": True, "percent": 0},
            {"revisionName": "podinfo-00002", "latestRevision": False, "percent": 100},
        ]

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
