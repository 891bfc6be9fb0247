"""`KubeWorkloads` with the sandbox's workload simulator: readiness as pods come and go.

The simulator plays the Deployment, ReplicaSet and DaemonSet controllers and the
kubelet, so readiness here comes from real status updates (observedGeneration,
updated/available replicas, the Available and Progressing conditions). Every wait
polls an observation with a deadline.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from canary.adapters.kube import KubeClient
from canary.adapters.workloads import KubeWorkloads
from canary.core.actions import ScaleMode
from canary.core.observations import PrimaryObservation, TargetObservation
from canary.model.canary import Canary
from tests.adapters.builders import daemonset, deployment, pod_template
from tests.adapters.conftest import NAMESPACE, eventually, make_canary

READY_AFTER = "sandbox.canary.gitops.dev/ready-after"
BEHAVIOUR = "sandbox.canary.gitops.dev/behaviour"

Observed = tuple[TargetObservation | None, PrimaryObservation | None]


def observer(workloads: KubeWorkloads, canary: Canary, **kwargs: Any) -> Any:
    async def probe() -> Observed:
        return await workloads.observe(canary, **kwargs)

    return probe


def primary_ready(observed: Observed) -> bool:
    return observed[1] is not None and observed[1].readiness.ready


def target_ready(observed: Observed) -> bool:
    return observed[0] is not None and observed[0].readiness.ready


async def create_target(
    kube: KubeClient, replicas: int = 2, annotations: dict[str, str] | None = None
) -> None:
    template = pod_template(labels={"app": "podinfo"}, annotations=annotations)
    await kube.create(deployment(replicas=replicas, template=template))


class TestPrimaryReadiness:
    async def test_primary_becomes_ready_as_its_pods_do(self, sim_kube: KubeClient) -> None:
        workloads = KubeWorkloads(sim_kube)
        await create_target(sim_kube, annotations={READY_AFTER: "2s"})
        canary = await make_canary(sim_kube)
        await workloads.ensure_primary(canary)

        _, primary = await workloads.observe(canary)
        assert primary is not None and not primary.readiness.ready
        assert primary.readiness.retriable
        assert primary.readiness.message.startswith("waiting for rollout to finish")

        _, primary = await eventually(observer(workloads, canary), primary_ready)
        assert primary is not None and primary.images == ("ghcr.io/stefanprodan/podinfo:6.0.0",)
        status = (await sim_kube.get("apps/v1", "Deployment", "podinfo-primary", NAMESPACE) or {})[
            "status"
        ]
        assert status["availableReplicas"] == 2


class TestScaling:
    async def test_zero_and_back_up_to_the_primarys_size(self, sim_kube: KubeClient) -> None:
        workloads = KubeWorkloads(sim_kube)
        await create_target(sim_kube, replicas=3)
        canary = await make_canary(sim_kube)
        await workloads.ensure_primary(canary)
        await eventually(
            observer(workloads, canary), lambda o: primary_ready(o) and target_ready(o)
        )

        await workloads.scale_target(canary, ScaleMode.ZERO)

        async def target_status() -> dict[str, Any]:
            obj = await sim_kube.get("apps/v1", "Deployment", "podinfo", NAMESPACE)
            return (obj or {}).get("status") or {}

        await eventually(target_status, lambda s: not s.get("replicas"))
        observed, _ = await workloads.observe(canary)
        assert observed is not None and observed.readiness.ready

        await workloads.scale_target(canary, ScaleMode.UP)
        await eventually(target_status, lambda s: s.get("availableReplicas") == 3)
        observed, _ = await eventually(observer(workloads, canary), target_ready)
        assert observed is not None


class TestPromotion:
    async def test_the_primary_rolls_to_the_new_template(self, sim_kube: KubeClient) -> None:
        workloads = KubeWorkloads(sim_kube)
        await create_target(sim_kube)
        canary = await make_canary(sim_kube)
        await workloads.ensure_primary(canary)
        await eventually(observer(workloads, canary), primary_ready)

        new_image = "ghcr.io/stefanprodan/podinfo:6.1.0"
        patch = {
            "spec": {
                "template": {
                    "metadata": {"annotations": {READY_AFTER: "1s"}},
                    "spec": {"containers": [{"name": "podinfo", "image": new_image}]},
                }
            }
        }
        await sim_kube.patch(
            "apps/v1", "Deployment", "podinfo", NAMESPACE, patch, patch_type="strategic"
        )
        await workloads.promote(canary)

        _, primary = await workloads.observe(canary)
        assert primary is not None and primary.images == (new_image,)
        assert not primary.readiness.ready

        await eventually(observer(workloads, canary), primary_ready)
        replica_sets = await sim_kube.list(
            "apps/v1", "ReplicaSet", NAMESPACE, label_selector="app=podinfo-primary"
        )
        live = [rs for rs in replica_sets if rs["spec"].get("replicas")]
        assert [rs["spec"]["template"]["spec"]["containers"][0]["image"] for rs in live] == [
            new_image
        ]


class TestNeverReady:
    async def test_canary_deadline_makes_it_final(self, sim_kube: KubeClient) -> None:
        workloads = KubeWorkloads(sim_kube)
        await create_target(sim_kube, replicas=1, annotations={BEHAVIOUR: "never-ready"})
        canary = await make_canary(sim_kube, progressDeadlineSeconds=5)

        def unavailable(observed: Observed) -> bool:
            return (
                observed[0] is not None
                and "updated replicas are available" in observed[0].readiness.message
            )

        observed, _ = await eventually(observer(workloads, canary), unavailable)
        assert observed is not None and observed.readiness.retriable
        later = datetime.now(UTC) + timedelta(seconds=6)
        observed, _ = await workloads.observe(canary, now=later)
        assert observed is not None
        assert not observed.readiness.ready and not observed.readiness.retriable

    async def test_the_deployments_own_deadline_is_final(self, sim_kube: KubeClient) -> None:
        workloads = KubeWorkloads(sim_kube)
        template = pod_template(labels={"app": "podinfo"}, annotations={BEHAVIOUR: "never-ready"})
        await sim_kube.create(
            deployment(replicas=1, template=template, extra_spec={"progressDeadlineSeconds": 1})
        )
        canary = await make_canary(sim_kube)

        def final(observed: Observed) -> bool:
            return observed[0] is not None and not observed[0].readiness.retriable

        observed, _ = await eventually(observer(workloads, canary), final)
        assert observed is not None
        assert observed.readiness.message == 'deployment "podinfo" exceeded its progress deadline'


class TestDaemonSet:
    async def test_primary_daemonset_runs_on_every_node_and_target_empties(
        self, sim_kube: KubeClient
    ) -> None:
        workloads = KubeWorkloads(sim_kube)
        await sim_kube.create(daemonset("agent", template=pod_template(labels={"app": "agent"})))
        canary = await make_canary(sim_kube, "agent", target="agent", kind="DaemonSet")
        await workloads.ensure_primary(canary)
        await eventually(
            observer(workloads, canary), lambda o: primary_ready(o) and target_ready(o)
        )
        primary = await sim_kube.get("apps/v1", "DaemonSet", "agent-primary", NAMESPACE)
        assert primary is not None and primary["status"]["numberAvailable"] >= 1

        await workloads.scale_target(canary, ScaleMode.ZERO)

        async def target_pods() -> list[Any]:
            return await sim_kube.list("v1", "Pod", NAMESPACE, label_selector="app=agent")

        await eventually(target_pods, lambda pods: pods == [])
        await eventually(observer(workloads, canary), target_ready)
