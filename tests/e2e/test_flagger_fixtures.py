"""Drop-in for Flagger: every Canary of tests/fixtures/flagger runs its first tick, unrefused.

The fixtures are Flagger's manifests as its documentation and tutorials write them, one
family of providers and targets per file. Each Canary is converted as `canary convert`
converts it (its apiVersion, and the provider it ran on under Flagger), lint-checked by
tests/cli/test_convert.py, and here applied to the sandbox in a namespace of its own with
what its file holds besides (the user's Ingress, ApisixRoute, Knative Service,
ScaledObject, MetricTemplates ...) and a podinfo Deployment for its target. One operator
(`canary run`) then initializes every one of them: the controller took each manifest,
the router of its provider wrote its objects, and nothing was refused (no ``SpecValid`` or
``RouterReady`` condition set to False). A Knative stand-in plays Knative's controller for
the Knative Service target (no Knative runs in the sandbox).
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any

import pytest

from canary.adapters.kube import KubeClient
from canary.model.convert import convert_document
from canary.model.schema import parse_documents
from kubesandbox import SandboxThread
from tests.e2e.knative_serving import KnativeServing
from tests.e2e.support import (
    CANARY_API,
    OperatorProcess,
    deployment_manifest,
    eventually,
    start_operator,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted((ROOT / "tests" / "fixtures" / "flagger").glob("*.yaml"))
OURS = ("canary.gitops.dev/v1beta1", "flagger.app/v1beta1")
OUTER = 180.0  # generous: the condition ends the wait
REFUSALS = ("SpecValid", "RouterReady")


def fixture_canaries() -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """(label, converted Canary, the file's other objects converted) for every Canary."""
    found = []
    for path in FIXTURES:
        docs = [convert_document(doc)[0] for _, doc in parse_documents(path.read_text(), str(path))]
        canaries = [d for d in docs if d.get("kind") == "Canary"]
        others = [d for d in docs if d.get("kind") != "Canary"]
        for canary in canaries:
            found.append((f"{path.stem}/{canary['metadata']['name']}", canary, others))
    return found


def placed(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out.setdefault("metadata", {})["namespace"] = namespace
    return out


def objects_for(canary: dict[str, Any], others: list[dict[str, Any]], namespace: str) -> list[Any]:
    """The namespace, the Canary's target workload, its file's other objects, the Canary."""
    spec = canary["spec"]
    target = spec["targetRef"]
    objects: list[Any] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        deployment_manifest("podinfo", namespace, "podinfo:6.0.0"),
    ]
    if target.get("kind") == "Deployment" and target["name"] != "podinfo":
        objects.append(deployment_manifest(target["name"], namespace, "podinfo:6.0.0"))
    autoscaler = spec.get("autoscalerRef") or {}
    if autoscaler.get("kind") == "HorizontalPodAutoscaler":
        objects.append(hpa(autoscaler["name"], target["name"], namespace))
    objects += [placed(o, namespace) for o in others if o.get("kind") != "Namespace"]
    objects.append(placed(canary, namespace))
    return objects


def hpa(name: str, target: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                }
            ],
        },
    }


def refusals(status: dict[str, Any]) -> list[str]:
    return [
        f"{c.get('type')}: {c.get('message')}"
        for c in status.get("conditions") or ()
        if c.get("type") in REFUSALS and c.get("status") == "False"
    ]


async def test_every_flagger_canary_is_initialized_without_a_refusal(
    cluster: SandboxThread, kube: KubeClient, tmp_path: Path, operators: list[OperatorProcess]
) -> None:
    cases = fixture_canaries()
    assert len(cases) >= 15, [label for label, _, _ in cases]
    where: dict[str, str] = {}
    knative: list[str] = []
    for number, (label, canary, others) in enumerate(cases):
        namespace = f"fixture-{number}"
        where[label] = namespace
        for obj in objects_for(canary, others, namespace):
            cluster.apply_manifest(obj)
        if canary["spec"].get("provider") == "knative":
            knative.append(namespace)
    start_operator(cluster, tmp_path, operators)

    async def statuses() -> dict[str, dict[str, Any]]:
        found = {}
        for label, canary, _ in cases:
            obj = await kube.get(CANARY_API, "Canary", canary["metadata"]["name"], where[label])
            found[label] = dict((obj or {}).get("status") or {})
        return found

    last: dict[str, dict[str, Any]] = {}

    async def all_initialized() -> bool:
        nonlocal last
        last = await statuses()
        refused = {label: refusals(s) for label, s in last.items() if refusals(s)}
        assert refused == {}, refused  # a refusal is final: fail at once, naming it
        return all(s.get("phase") == "Initialized" for s in last.values())

    async with contextlib.AsyncExitStack() as stack:
        for namespace in knative:
            await stack.enter_async_context(KnativeServing(kube, namespace).running())
        try:
            await eventually(all_initialized, timeout=OUTER, what="every Canary to initialize")
        except AssertionError as exc:
            waiting = {
                label: (s.get("phase"), s.get("message"))
                for label, s in last.items()
                if s.get("phase") != "Initialized"
            }
            raise AssertionError(f"{exc}\nnot initialized: {waiting}") from None
