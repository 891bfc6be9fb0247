"""Issue 12 end to end: the controller reads the cluster from watch caches.

The real operator (`canary run` as a process, with a user of its own so the sandbox's audit
log tells its requests apart) against the sandbox:

* an idle canary's passes make no API call at all (counted on the audit log while the
  controller's own pass counter shows the passes happening);
* a target deleted behind the controller's back is noticed, and so is its re-creation;
* an object the controller owns, changed behind its back (the primary's Service selector),
  is put right on the next pass.
"""

from __future__ import annotations

import asyncio
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from canary.adapters.kube import KubeClient
from kubesandbox import SandboxThread
from tests.e2e.support import OperatorProcess, eventually, start_operator

pytestmark = pytest.mark.slow

API = "canary.gitops.dev/v1beta1"
NS = "default"
OPERATOR = "operator"


def deployment(name: str = "podinfo", image: str = "podinfo:v1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def canary(name: str = "podinfo") -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Canary",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 9898},
            "analysis": {"interval": "10s", "threshold": 1, "iterations": 1},
        },
    }


def passes(op: OperatorProcess, name: str = "podinfo") -> int:
    """The operator's own count of passes for one Canary (its duration histogram)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{op.port}/metrics", timeout=5) as response:
        text = response.read().decode()
    pattern = (
        rf'canary_engine_canary_duration_seconds_count{{name="{name}",namespace="{NS}"}} (\S+)'
    )
    match = re.search(pattern, text)
    return int(float(match.group(1))) if match else 0


def operator_calls(cluster: SandboxThread, since: int) -> list[str]:
    """The controller's requests after audit entry ``since``, but its long-lived watches."""
    return [
        f"{e.verb} {e.path}"
        for e in cluster.audit[since:]
        if e.user == OPERATOR and e.verb != "watch"
    ]


async def phase_of(kube: KubeClient, name: str = "podinfo") -> str:
    obj = await kube.get(API, "Canary", name, NS)
    return str(((obj or {}).get("status") or {}).get("phase") or "")


async def initialized(kube: KubeClient, name: str = "podinfo") -> None:
    async def done() -> bool:
        return await phase_of(kube, name) == "Initialized"

    await eventually(done, timeout=60, what=f"{name} to initialize")


async def test_an_idle_canary_costs_no_api_call(
    cluster: SandboxThread, kube: KubeClient, tmp_path: Path, operators: list[OperatorProcess]
) -> None:
    cluster.apply_manifest(deployment())
    cluster.apply_manifest(canary())
    op = start_operator(cluster, tmp_path, operators, user=OPERATOR)
    await initialized(kube)

    # Let the first passes after initialization settle, then watch several idle passes.
    async def settled() -> bool:
        return passes(op) >= 3

    await eventually(settled, timeout=60, what="three passes")
    mark, before = len(cluster.audit), passes(op)

    async def idle_passes() -> bool:
        return passes(op) >= before + 4

    await eventually(idle_passes, timeout=60, what="four idle passes")

    assert operator_calls(cluster, mark) == []
    assert await phase_of(kube) == "Initialized"


async def test_a_target_deleted_and_recreated_behind_the_controllers_back_is_noticed(
    cluster: SandboxThread, kube: KubeClient, tmp_path: Path, operators: list[OperatorProcess]
) -> None:
    cluster.apply_manifest(deployment())
    cluster.apply_manifest(canary())
    start_operator(cluster, tmp_path, operators, user=OPERATOR)
    await initialized(kube)

    await kube.delete("apps/v1", "Deployment", "podinfo", NS)

    async def missing() -> bool:
        obj = await kube.get(API, "Canary", "podinfo", NS)
        message = str(((obj or {}).get("status") or {}).get("message") or "")
        return "Waiting for the target Deployment podinfo.default to exist" in message

    await eventually(missing, timeout=60, what="the canary to notice the missing target")

    cluster.apply_manifest(deployment(image="podinfo:v2"))

    async def running_again() -> bool:
        return await phase_of(kube) in ("Progressing", "Succeeded")

    await eventually(running_again, timeout=60, what="the canary to analyse the new target")


async def test_an_owned_object_changed_behind_the_controllers_back_is_put_right(
    cluster: SandboxThread, kube: KubeClient, tmp_path: Path, operators: list[OperatorProcess]
) -> None:
    cluster.apply_manifest(deployment())
    cluster.apply_manifest(canary())
    start_operator(cluster, tmp_path, operators, user=OPERATOR)
    await initialized(kube)
    service = await kube.get("v1", "Service", "podinfo-primary", NS)
    assert service is not None
    wanted = dict(service["spec"]["selector"])

    await kube.patch(
        "v1", "Service", "podinfo-primary", NS, {"spec": {"selector": {"app": "somebody-else"}}}
    )

    async def repaired() -> bool:
        fresh = await kube.get("v1", "Service", "podinfo-primary", NS)
        return fresh is not None and fresh["spec"]["selector"] == wanted

    await eventually(repaired, timeout=60, what="the primary Service's selector put right")
    await asyncio.sleep(0)


async def test_two_shards_each_handle_only_their_canaries(
    cluster: SandboxThread, kube: KubeClient, tmp_path: Path, operators: list[OperatorProcess]
) -> None:
    for name, shard in (("alpha", "shard1"), ("beta", "shard2"), ("gamma", "shard2")):
        cluster.apply_manifest(deployment(name))
        body = canary(name)
        body["metadata"]["labels"] = {"sharding.fluxcd.io/key": shard}
        cluster.apply_manifest(body)
    for shard in ("shard1", "shard2"):
        start_operator(
            cluster,
            tmp_path,
            operators,
            "--watch-label-selector",
            f"sharding.fluxcd.io/key={shard}",
            user=f"operator-{shard}",
        )
    for name in ("alpha", "beta", "gamma"):
        await initialized(kube, name)

    writers: dict[str, set[str]] = {}
    for entry in cluster.audit:
        if entry.resource == "canaries" and entry.subresource == "status" and entry.verb == "patch":
            writers.setdefault(entry.name, set()).add(entry.user)
    assert writers == {
        "alpha": {"operator-shard1"},
        "beta": {"operator-shard2"},
        "gamma": {"operator-shard2"},
    }
