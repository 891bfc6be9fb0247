"""A Canary whose target KEDA scales: the real operator against the sandbox.

The cluster has the ScaledObject CRD (crds/routers/keda.yaml; no KEDA controller runs, so
the annotations and objects are what is checked). The operator initializes the Canary:
``podinfo-so-primary`` aims at ``podinfo-primary`` with the trigger queries rewritten for
the primary by ``primaryScalerQueries`` (the trigger it does not name is left alone, as
in Flagger; the automatic substitution is unit-tested in tests/adapters), and the
target's ScaledObject is paused (``autoscaling.keda.sh/paused-replicas: "0"``) while the
target runs no pods. A new image starts a run: the target's ScaledObject is resumed so
KEDA may scale the canary, the target is scaled up to ``minReplicaCount``, and once the
release is promoted the target's ScaledObject is paused again and the target is at zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from canary.adapters.kube import KubeClient
from kubesandbox import SandboxThread
from tests.e2e.support import (
    OperatorProcess,
    canary_manifest,
    deployment_manifest,
    eventually,
    start_operator,
)

pytestmark = pytest.mark.slow

NS = "default"
API_VERSION = "canary.gitops.dev/v1beta1"
KEDA = "keda.sh/v1alpha1"
PAUSED = "autoscaling.keda.sh/paused-replicas"
OUTER = 180.0
NAMED_QUERY = 'sum(rate(http_requests_total{app="podinfo-primary", route="api"}[1m]))'


def scaled_object() -> dict[str, Any]:
    def prometheus(name: str, query: str) -> dict[str, Any]:
        metadata = {"serverAddress": "http://prometheus:9090", "query": query, "threshold": "50"}
        return {"type": "prometheus", "name": name, "metadata": metadata}

    return {
        "apiVersion": KEDA,
        "kind": "ScaledObject",
        "metadata": {"name": "podinfo-so", "namespace": NS, "labels": {"app": "podinfo"}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "minReplicaCount": 2,
            "maxReplicaCount": 4,
            "triggers": [
                prometheus("api", 'sum(rate(http_requests_total{app="podinfo-canary"}[1m]))'),
                prometheus("all", 'sum(rate(http_requests_total{app="podinfo"}[1m]))'),
            ],
        },
    }


def canary() -> dict[str, Any]:
    analysis = {"interval": "10s", "threshold": 1, "iterations": 2}
    return canary_manifest(
        "podinfo",
        NS,
        analysis,
        progressDeadlineSeconds=120,
        autoscalerRef={
            "apiVersion": KEDA,
            "kind": "ScaledObject",
            "name": "podinfo-so",
            "primaryScalerQueries": {"api": NAMED_QUERY},
        },
    )


async def status(kube: KubeClient) -> dict[str, Any]:
    obj = await kube.get(API_VERSION, "Canary", "podinfo", NS)
    return dict((obj or {}).get("status") or {})


async def so_annotations(kube: KubeClient, name: str) -> dict[str, str]:
    obj = await kube.get(KEDA, "ScaledObject", name, NS)
    assert obj is not None, f"ScaledObject {name} does not exist"
    return dict(obj["metadata"].get("annotations") or {})


async def replicas(kube: KubeClient, name: str) -> int | None:
    obj = await kube.get("apps/v1", "Deployment", name, NS)
    return None if obj is None else (obj.get("spec") or {}).get("replicas")


async def test_a_keda_scaled_target_is_initialized_analysed_and_promoted(
    cluster: SandboxThread, kube: KubeClient, tmp_path: Path, operators: list[OperatorProcess]
) -> None:
    cluster.apply_manifest(deployment_manifest("podinfo", NS, "podinfo:v1", replicas=2))
    cluster.apply_manifest(scaled_object())
    cluster.apply_manifest(canary())
    op = start_operator(cluster, tmp_path, operators)

    async def phase_is(*phases: str) -> bool:
        return (await status(kube)).get("phase") in phases

    await eventually(lambda: phase_is("Initialized"), timeout=OUTER, what="initialization")
    primary_so = await kube.get(KEDA, "ScaledObject", "podinfo-so-primary", NS)
    assert primary_so is not None, op.output()
    spec = primary_so["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "podinfo-primary",
    }
    assert [t["metadata"]["query"] for t in spec["triggers"]] == [
        NAMED_QUERY,  # primaryScalerQueries, by trigger name
        # With primaryScalerQueries, a trigger it does not name keeps its query (Flagger).
        'sum(rate(http_requests_total{app="podinfo"}[1m]))',
    ]
    assert primary_so["metadata"]["ownerReferences"][0]["kind"] == "Canary"
    assert PAUSED not in (primary_so["metadata"].get("annotations") or {})
    assert (await so_annotations(kube, "podinfo-so")).get(PAUSED) == "0"
    assert await replicas(kube, "podinfo") == 0

    template = deployment_manifest("podinfo", NS, "podinfo:v2")["spec"]["template"]
    await kube.patch("apps/v1", "Deployment", "podinfo", NS, {"spec": {"template": template}})

    async def running_unpaused() -> bool:
        running = await phase_is("Progressing")
        return running and PAUSED not in await so_annotations(kube, "podinfo-so")

    await eventually(running_unpaused, timeout=OUTER, what="a run with the target's SO resumed")
    assert await replicas(kube, "podinfo") == 2  # scaled up to the ScaledObject's minimum

    await eventually(lambda: phase_is("Succeeded", "Failed"), timeout=OUTER, what="the end")
    assert (await status(kube))["phase"] == "Succeeded", op.output()
    assert (await so_annotations(kube, "podinfo-so")).get(PAUSED) == "0"
    assert await replicas(kube, "podinfo") == 0
    primary = await kube.get("apps/v1", "Deployment", "podinfo-primary", NS)
    assert primary is not None
    assert [c["image"] for c in primary["spec"]["template"]["spec"]["containers"]] == ["podinfo:v2"]
    assert "Traceback" not in op.output()
