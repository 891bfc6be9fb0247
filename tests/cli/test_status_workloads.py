"""``canary status`` shows the primary and the canary: images, replicas and readiness.

The Deployments are created in the sandbox API server and given a status through the
``/status`` subresource, the way the Deployment controller would write it; the command reads
them as it reads the Canary.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from canary.adapters.kube import KubeClient
from canary.commands.show import workload_row

from .conftest import NAMESPACE, Cluster, Invoke

PRIMARY_IMAGE = "ghcr.io/stefanprodan/podinfo:6.0.0"
CANARY_IMAGE = "ghcr.io/stefanprodan/podinfo:6.0.1"
REF = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"}


def deployment(name: str, image: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "podinfo", "image": image},
                        {"name": "sidecar", "image": "envoyproxy/envoy:v1.30"},
                    ]
                },
            },
        },
    }


def rollout(replicas: int, updated: int, ready: int, available: int) -> dict[str, Any]:
    return {
        "observedGeneration": 1,
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
    }


def put(cluster: Cluster, body: dict[str, Any], status: dict[str, Any]) -> None:
    async def work(client: KubeClient) -> None:
        await client.create(body)
        name = body["metadata"]["name"]
        await client.patch(
            "apps/v1", "Deployment", name, NAMESPACE, {"status": status}, subresource="status"
        )

    cluster.run(work)


def status_json(cli: Invoke, cluster: Cluster) -> dict[str, Any]:
    result = cli(
        "status", "podinfo", "-n", NAMESPACE, "-o", "json", "--kubeconfig", cluster.kubeconfig
    )
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_status_shows_the_images_replicas_and_readiness_of_primary_and_canary(
    cli: Invoke, cluster: Cluster
) -> None:
    cluster.canary(status={"phase": "Progressing", "canaryWeight": 10})
    put(cluster, deployment("podinfo-primary", PRIMARY_IMAGE, 3), rollout(3, 3, 3, 3))
    put(cluster, deployment("podinfo", CANARY_IMAGE, 2), rollout(2, 1, 1, 1))

    result = cli("status", "podinfo", "-n", NAMESPACE, "--kubeconfig", cluster.kubeconfig)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    primary = next(line for line in lines if line.lstrip().startswith("primary "))
    canary = next(line for line in lines if line.lstrip().startswith("canary "))
    assert "podinfo-primary" in primary and PRIMARY_IMAGE in primary and "3/3" in primary
    assert "ready" in primary
    assert "podinfo " in canary and CANARY_IMAGE in canary and "1/2" in canary
    assert "waiting for rollout to finish: 1 out of 2 new replicas" in result.stdout
    assert "envoyproxy/envoy:v1.30" in result.stdout  # every container's image


def test_status_json_has_a_row_per_workload(cli: Invoke, cluster: Cluster) -> None:
    cluster.canary(status={"phase": "Succeeded"})
    put(cluster, deployment("podinfo-primary", PRIMARY_IMAGE, 2), rollout(2, 2, 2, 2))
    put(cluster, deployment("podinfo", CANARY_IMAGE, 0), rollout(0, 0, 0, 0))

    workloads = status_json(cli, cluster)["workloads"]

    assert [(w["role"], w["name"], w["found"]) for w in workloads] == [
        ("primary", "podinfo-primary", True),
        ("canary", "podinfo", True),
    ]
    primary, canary = workloads
    assert primary["images"] == [PRIMARY_IMAGE, "envoyproxy/envoy:v1.30"]
    assert (primary["replicas"], primary["readyReplicas"], primary["ready"]) == (2, 2, True)
    assert canary["images"][0] == CANARY_IMAGE
    assert (canary["replicas"], canary["message"]) == (0, "scaled to zero")


def test_status_says_when_the_primary_is_not_created_and_the_target_is_missing(
    cli: Invoke, cluster: Cluster
) -> None:
    cluster.canary(status={"phase": "Initializing"})

    primary, canary = status_json(cli, cluster)["workloads"]
    text = cli("status", "podinfo", "-n", NAMESPACE, "--kubeconfig", cluster.kubeconfig).stdout

    assert (primary["found"], canary["found"]) == (False, False)
    assert "not created yet" in primary["message"]
    assert canary["message"] == "not found"
    assert "not created yet" in text and "not found" in text


def test_a_daemonset_counts_scheduled_pods() -> None:
    daemonset = {
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "generation": 1},
        "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "agent:2"}]}}},
        "status": {
            "observedGeneration": 1,
            "desiredNumberScheduled": 4,
            "numberReady": 3,
            "updatedNumberScheduled": 4,
            "numberAvailable": 3,
        },
    }
    ref = {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent"}

    row = workload_row("canary", ref, daemonset, now=datetime.now(UTC))

    assert (row["replicas"], row["readyReplicas"], row["availableReplicas"]) == (4, 3, 3)
    assert row["images"] == ["agent:2"] and row["ready"] is False
    assert "3 of 4" in row["message"]


def test_a_workload_with_fields_of_the_wrong_type_is_shown_not_a_traceback() -> None:
    odd = {"spec": {"replicas": "three", "template": {"spec": {"containers": "x"}}}, "status": []}

    row = workload_row("primary", REF | {"name": "podinfo-primary"}, odd)

    assert row["found"] is True and row["images"] == [] and row["replicas"] == 0
