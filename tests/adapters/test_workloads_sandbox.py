"""`KubeWorkloads` actions and observations against the sandbox API server (no simulator).

These tests check what each action leaves in the cluster — objects, owners, labels,
references — and that repeating an action changes nothing. Readiness as pods come up
is covered with the workload simulator in test_workloads_rollout.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from canary.adapters.configtracker import config_refs
from canary.adapters.kube import KubeClient
from canary.adapters.primary import REVISION_ANNOTATION, SCALE_TO_ZERO_KEY, template_hash
from canary.adapters.workloads import KubeWorkloads, WorkloadError
from canary.core.actions import ScaleMode
from canary.ports import Conflict, Obj
from tests.adapters.builders import daemonset, deployment, pod_template
from tests.adapters.conftest import NAMESPACE, make_canary, minimal_crd

CONFIGURED_POD = {
    "volumes": [
        {"name": "cfg", "configMap": {"name": "podinfo-config"}},
        {"name": "tls", "secret": {"secretName": "podinfo-tls"}},
        {"name": "opt", "configMap": {"name": "maybe", "optional": True}},
        {"name": "shared", "configMap": {"name": "shared-config"}},
    ],
    "imagePullSecrets": [{"name": "registry"}],
    "containers": [
        {
            "name": "podinfo",
            "image": "ghcr.io/stefanprodan/podinfo:6.0.0",
            "envFrom": [{"secretRef": {"name": "registry"}}],
        }
    ],
}


async def seed_configs(kube: KubeClient) -> None:
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "podinfo-config",
                "namespace": NAMESPACE,
                "labels": {"app": "podinfo"},
            },
            "data": {"color": "blue"},
        }
    )
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": "podinfo-tls", "namespace": NAMESPACE},
            "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"},
        }
    )
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "shared-config",
                "namespace": NAMESPACE,
                "annotations": {"canary.gitops.dev/config-tracking": "disabled"},
            },
            "data": {"x": "1"},
        }
    )
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "registry", "namespace": NAMESPACE},
            "data": {".dockerconfigjson": "e30="},
        }
    )


async def seed_target(kube: KubeClient, replicas: int = 3, **template: Any) -> Obj:
    await seed_configs(kube)
    target = deployment(
        replicas=replicas,
        labels={"app": "podinfo", "kustomize.toolkit.fluxcd.io/name": "apps"},
        template=pod_template(labels={"app": "podinfo"}, spec=CONFIGURED_POD, **template),
    )
    return await kube.create(target)


async def get(kube: KubeClient, kind: str, name: str) -> Obj:
    api = {
        "Deployment": "apps/v1",
        "DaemonSet": "apps/v1",
        "HorizontalPodAutoscaler": "autoscaling/v2",
    }.get(kind, "v1")
    obj = await kube.get(api, kind, name, NAMESPACE)
    assert obj is not None, f"{kind} {name} does not exist"
    return obj


def version(obj: Obj) -> str:
    return str(obj["metadata"]["resourceVersion"])


class TestEnsurePrimary:
    async def test_creates_the_clone_and_primary_configs_owned_by_the_canary(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        target = await seed_target(kube)
        canary = await make_canary(kube)
        await workloads.ensure_primary(canary)

        primary = await get(kube, "Deployment", "podinfo-primary")
        owner = primary["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["uid"], owner["controller"]) == ("Canary", canary.uid, True)
        assert primary["spec"]["selector"]["matchLabels"] == {"app": "podinfo-primary"}
        assert primary["spec"]["replicas"] == 3
        assert primary["metadata"]["labels"] == {"app": "podinfo-primary"}
        refs = {r.key for r in config_refs(primary["spec"]["template"]["spec"])}
        assert refs == {
            "configmap/podinfo-config-primary",
            "secret/podinfo-tls-primary",
            "configmap/maybe",
            "configmap/shared-config",
            "secret/registry",
        }
        config_copy = await get(kube, "ConfigMap", "podinfo-config-primary")
        assert config_copy["data"] == {"color": "blue"}
        assert config_copy["metadata"]["ownerReferences"][0]["uid"] == canary.uid
        secret_copy = await get(kube, "Secret", "podinfo-tls-primary")
        assert secret_copy["type"] == "kubernetes.io/tls"
        for untracked in ("shared-config-primary", "registry-primary"):
            assert await kube.get("v1", "ConfigMap", untracked, NAMESPACE) is None
            assert await kube.get("v1", "Secret", untracked, NAMESPACE) is None
        assert version(await get(kube, "Deployment", "podinfo")) == version(target)

    async def test_repeating_it_writes_nothing(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        await seed_target(kube)
        canary = await make_canary(kube)
        await workloads.ensure_primary(canary)
        before = version(await get(kube, "Deployment", "podinfo-primary"))
        await workloads.ensure_primary(canary)
        assert version(await get(kube, "Deployment", "podinfo-primary")) == before

    async def test_missing_mandatory_config_is_an_error_naming_it(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        await seed_target(kube)
        await kube.delete("v1", "Secret", "podinfo-tls", NAMESPACE)
        canary = await make_canary(kube)
        with pytest.raises(WorkloadError, match=r"Secret podinfo-tls\.test not found"):
            await workloads.ensure_primary(canary)
        assert await kube.get("apps/v1", "Deployment", "podinfo-primary", NAMESPACE) is None

    async def test_target_without_selector_label_is_refused(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        await kube.create(
            deployment(selector={"tier": "web"}, template=pod_template(labels={"tier": "web"}))
        )
        canary = await make_canary(kube)
        with pytest.raises(WorkloadError, match="must contain one of"):
            await workloads.ensure_primary(canary)

    async def test_missing_target(self, kube: KubeClient, workloads: KubeWorkloads) -> None:
        canary = await make_canary(kube)
        with pytest.raises(WorkloadError, match=r"Deployment podinfo\.test not found"):
            await workloads.ensure_primary(canary)

    async def test_a_primary_owned_by_another_canary_is_not_taken_over(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        await seed_target(kube)
        first = await make_canary(kube, "first")
        second = await make_canary(kube, "second")
        await workloads.ensure_primary(first)
        with pytest.raises(WorkloadError, match="controlled by another owner"):
            await workloads.ensure_primary(second)
        with pytest.raises(WorkloadError, match="controlled by another owner"):
            await workloads.promote(second)


class TestObserve:
    async def test_missing_target_and_primary(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        canary = await make_canary(kube)
        assert await workloads.observe(canary) == (None, None)

    async def test_reports_revision_images_and_tracked_configs(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        target = await seed_target(kube)
        canary = await make_canary(kube)
        observed, primary = await workloads.observe(canary)
        assert primary is None
        assert observed is not None
        assert observed.template_hash == template_hash(target["spec"]["template"])
        assert observed.images == ("ghcr.io/stefanprodan/podinfo:6.0.0",)
        assert set(observed.tracked_configs) == {"configmap/podinfo-config", "secret/podinfo-tls"}
        assert observed.selector_error == ""

    async def test_config_change_changes_only_its_checksum(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        await seed_target(kube)
        canary = await make_canary(kube)
        before, _ = await workloads.observe(canary)
        await kube.patch(
            "v1", "ConfigMap", "podinfo-config", NAMESPACE, {"data": {"color": "green"}}
        )
        await kube.patch("v1", "ConfigMap", "shared-config", NAMESPACE, {"data": {"x": "2"}})
        after, _ = await workloads.observe(canary)
        assert before is not None and after is not None
        assert after.template_hash == before.template_hash
        assert (
            after.tracked_configs["configmap/podinfo-config"]
            != before.tracked_configs["configmap/podinfo-config"]
        )
        assert (
            after.tracked_configs["secret/podinfo-tls"]
            == before.tracked_configs["secret/podinfo-tls"]
        )

    async def test_missing_config_is_reported_not_raised(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        await seed_target(kube)
        await kube.delete("v1", "ConfigMap", "podinfo-config", NAMESPACE)
        canary = await make_canary(kube)
        snapshot = await workloads.observe_details(canary)
        assert snapshot.target is not None
        assert "configmap/podinfo-config" not in snapshot.target.tracked_configs
        assert snapshot.config_errors == (
            "ConfigMap podinfo-config.test not found (referenced by Deployment podinfo.test)",
        )

    async def test_tracking_can_be_switched_off(self, kube: KubeClient) -> None:
        from canary.adapters.workloads import WorkloadOptions
        from tests.adapters.conftest import install_canary_crd

        await install_canary_crd(kube)
        await seed_target(kube)
        canary = await make_canary(kube)
        untracked = KubeWorkloads(kube, WorkloadOptions(config_tracking=False))
        observed, _ = await untracked.observe(canary)
        assert observed is not None and observed.tracked_configs == {}
        await untracked.ensure_primary(canary)
        primary = await get(kube, "Deployment", "podinfo-primary")
        assert "configmap/podinfo-config" in {
            r.key for r in config_refs(primary["spec"]["template"]["spec"])
        }

    async def test_selector_error_is_observed(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        await kube.create(
            deployment(selector={"tier": "web"}, template=pod_template(labels={"tier": "web"}))
        )
        canary = await make_canary(kube)
        observed, _ = await workloads.observe(canary)
        assert observed is not None and "spec.selector.matchLabels" in observed.selector_error


class TestScale:
    async def test_zero_then_up_to_the_primarys_replicas(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        await seed_target(kube, replicas=3)
        canary = await make_canary(kube)
        await workloads.ensure_primary(canary)
        await workloads.scale_target(canary, ScaleMode.ZERO)
        zeroed = await get(kube, "Deployment", "podinfo")
        assert zeroed["spec"]["replicas"] == 0
        await workloads.scale_target(canary, ScaleMode.ZERO)
        assert version(await get(kube, "Deployment", "podinfo")) == version(zeroed)

        await kube.patch(
            "apps/v1", "Deployment", "podinfo-primary", NAMESPACE, {"spec": {"replicas": 4}}
        )
        await workloads.scale_target(canary, ScaleMode.UP)
        assert (await get(kube, "Deployment", "podinfo"))["spec"]["replicas"] == 4

    async def test_up_with_an_autoscaler_uses_its_minimum(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        await seed_target(kube, replicas=0)
        await kube.create(hpa())
        canary = await make_canary(
            kube,
            autoscalerRef={
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "name": "podinfo",
            },
        )
        await workloads.scale_target(canary, ScaleMode.UP)
        assert (await get(kube, "Deployment", "podinfo"))["spec"]["replicas"] == 2

    async def test_up_leaves_a_running_target_alone(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        target = await seed_target(kube, replicas=2)
        canary = await make_canary(kube)
        await workloads.scale_target(canary, ScaleMode.UP)
        assert version(await get(kube, "Deployment", "podinfo")) == version(target)

    async def test_daemonset_zero_and_up_through_a_node_selector(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        await kube.create(daemonset("agent", template=pod_template(labels={"app": "agent"})))
        canary = await make_canary(kube, "agent", target="agent", kind="DaemonSet")
        before, _ = await workloads.observe(canary)
        await workloads.scale_target(canary, ScaleMode.ZERO)
        zeroed = await get(kube, "DaemonSet", "agent")
        assert zeroed["spec"]["template"]["spec"]["nodeSelector"] == {SCALE_TO_ZERO_KEY: "true"}
        during, _ = await workloads.observe(canary)
        assert (
            before is not None
            and during is not None
            and during.template_hash == before.template_hash
        )

        await workloads.ensure_primary(canary)
        primary = await get(kube, "DaemonSet", "agent-primary")
        assert "nodeSelector" not in primary["spec"]["template"]["spec"]

        await workloads.scale_target(canary, ScaleMode.UP)
        restored = await get(kube, "DaemonSet", "agent")
        assert not restored["spec"]["template"]["spec"].get("nodeSelector")

    async def test_zero_on_a_missing_target_is_already_true(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        canary = await make_canary(kube)
        await workloads.scale_target(canary, ScaleMode.ZERO)
        with pytest.raises(WorkloadError):
            await workloads.scale_target(canary, ScaleMode.UP)


class TestPromote:
    async def test_copies_template_and_configs_and_is_idempotent(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        await seed_target(kube)
        canary = await make_canary(kube)
        await workloads.ensure_primary(canary)
        first = await get(kube, "Deployment", "podinfo-primary")

        new_image = "ghcr.io/stefanprodan/podinfo:6.1.0"
        patch = {
            "spec": {
                "replicas": 5,
                "template": {"spec": {"containers": [{"name": "podinfo", "image": new_image}]}},
            }
        }
        await kube.patch(
            "apps/v1", "Deployment", "podinfo", NAMESPACE, patch, patch_type="strategic"
        )
        await kube.patch(
            "v1", "ConfigMap", "podinfo-config", NAMESPACE, {"data": {"color": "green"}}
        )
        await workloads.promote(canary)

        promoted = await get(kube, "Deployment", "podinfo-primary")
        assert promoted["spec"]["template"]["spec"]["containers"][0]["image"] == new_image
        assert promoted["spec"]["replicas"] == 5
        assert promoted["metadata"]["generation"] > first["metadata"]["generation"]
        old_revision = first["spec"]["template"]["metadata"]["annotations"][REVISION_ANNOTATION]
        assert (
            promoted["spec"]["template"]["metadata"]["annotations"][REVISION_ANNOTATION]
            != old_revision
        )
        assert (await get(kube, "ConfigMap", "podinfo-config-primary"))["data"] == {
            "color": "green"
        }

        await workloads.promote(canary)
        assert version(await get(kube, "Deployment", "podinfo-primary")) == version(promoted)

    async def test_config_only_change_rolls_the_primary(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        await seed_target(kube)
        canary = await make_canary(kube)
        await workloads.ensure_primary(canary)
        first = await get(kube, "Deployment", "podinfo-primary")
        await kube.patch("v1", "Secret", "podinfo-tls", NAMESPACE, {"data": {"tls.key": "bmV3"}})
        await workloads.promote(canary)
        promoted = await get(kube, "Deployment", "podinfo-primary")
        assert promoted["metadata"]["generation"] > first["metadata"]["generation"]
        assert (await get(kube, "Secret", "podinfo-tls-primary"))["data"]["tls.key"] == "bmV3"

    async def test_replicas_are_not_copied_with_an_autoscaler(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        await seed_target(kube, replicas=2)
        await kube.create(hpa())
        canary = await make_canary(
            kube,
            autoscalerRef={
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "name": "podinfo",
            },
        )
        await workloads.ensure_primary(canary)
        await kube.patch("apps/v1", "Deployment", "podinfo", NAMESPACE, {"spec": {"replicas": 7}})
        await workloads.promote(canary)
        assert (await get(kube, "Deployment", "podinfo-primary"))["spec"]["replicas"] == 2

    async def test_a_concurrent_change_is_retried_on_a_fresh_read(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        await seed_target(kube)
        canary = await make_canary(kube)
        await workloads.ensure_primary(canary)
        await kube.patch("apps/v1", "Deployment", "podinfo", NAMESPACE, {"spec": {"replicas": 6}})
        racing = RacingKube(kube)
        await KubeWorkloads(racing).promote(canary)
        promoted = await get(kube, "Deployment", "podinfo-primary")
        assert racing.conflicts == 1
        assert promoted["spec"]["replicas"] == 6
        # Promotion is absolute: the write that won is ours, made on top of the racer's.
        assert "raced" not in promoted["metadata"]["annotations"]

    async def test_promoting_without_a_primary_creates_it(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        await seed_target(kube)
        canary = await make_canary(kube)
        await workloads.promote(canary)
        assert (await get(kube, "Deployment", "podinfo-primary"))["spec"]["selector"][
            "matchLabels"
        ] == {"app": "podinfo-primary"}


class RacingKube:
    """The real client, except that someone else edits the primary right before our first PUT."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.conflicts = 0
        self.raced = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.kube, name)

    async def replace(self, obj: Obj) -> Obj:
        if not self.raced and obj["metadata"]["name"] == "podinfo-primary":
            self.raced = True
            await self.kube.patch(
                "apps/v1",
                "Deployment",
                "podinfo-primary",
                NAMESPACE,
                {"metadata": {"annotations": {"raced": "yes"}}},
            )
        try:
            return await self.kube.replace(obj)
        except Conflict:
            self.conflicts += 1
            raise


def hpa(max_replicas: int = 4) -> Obj:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "podinfo", "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "minReplicas": 2,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 99},
                    },
                }
            ],
        },
    }


class TestPrimaryScaler:
    async def test_created_at_init_and_updated_only_afterwards(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        await seed_target(kube)
        await kube.create(hpa())
        canary = await make_canary(
            kube,
            autoscalerRef={
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "name": "podinfo",
                "primaryScalerReplicas": {"minReplicas": 3},
            },
        )
        await workloads.reconcile_primary_scaler(canary, init=True)
        created = await get(kube, "HorizontalPodAutoscaler", "podinfo-primary")
        assert created["spec"]["scaleTargetRef"]["name"] == "podinfo-primary"
        assert (created["spec"]["minReplicas"], created["spec"]["maxReplicas"]) == (3, 4)
        assert created["metadata"]["ownerReferences"][0]["uid"] == canary.uid

        await kube.patch(
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            "podinfo",
            NAMESPACE,
            {"spec": {"maxReplicas": 8}},
        )
        await workloads.reconcile_primary_scaler(canary, init=True)
        assert version(await get(kube, "HorizontalPodAutoscaler", "podinfo-primary")) == version(
            created
        )
        await workloads.reconcile_primary_scaler(canary, init=False)
        updated = await get(kube, "HorizontalPodAutoscaler", "podinfo-primary")
        assert updated["spec"]["maxReplicas"] == 8
        await workloads.reconcile_primary_scaler(canary, init=False)
        assert version(await get(kube, "HorizontalPodAutoscaler", "podinfo-primary")) == version(
            updated
        )

    async def test_missing_target_autoscaler_is_an_error(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        canary = await make_canary(
            kube,
            autoscalerRef={
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "name": "podinfo",
            },
        )
        with pytest.raises(WorkloadError, match=r"HorizontalPodAutoscaler podinfo\.test not found"):
            await workloads.reconcile_primary_scaler(canary, init=True)

    async def test_without_autoscaler_nothing_happens(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        canary = await make_canary(kube)
        await workloads.reconcile_primary_scaler(canary, init=True)
        await workloads.pause_target_scaler(canary, True)
        assert await kube.list("autoscaling/v2", "HorizontalPodAutoscaler", NAMESPACE) == []


class TestFinalize:
    async def test_target_gets_the_primarys_replicas_back(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        await seed_target(kube, replicas=3)
        canary = await make_canary(kube)
        await workloads.ensure_primary(canary)
        await workloads.scale_target(canary, ScaleMode.ZERO)
        await workloads.finalize(canary)
        assert (await get(kube, "Deployment", "podinfo"))["spec"]["replicas"] == 3

    async def test_without_primary_the_target_is_scaled_up(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        await seed_target(kube, replicas=0)
        canary = await make_canary(kube)
        await workloads.finalize(canary)
        assert (await get(kube, "Deployment", "podinfo"))["spec"]["replicas"] == 1


class TestConflictingCanaries:
    async def test_lists_other_canaries_with_the_same_target(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        mine = await make_canary(kube, "mine")
        await make_canary(kube, "also-podinfo")
        await make_canary(kube, "other", target="other")
        await make_canary(kube, "agent", target="podinfo", kind="DaemonSet")
        assert await workloads.find_conflicting_canaries(mine) == ["also-podinfo"]
        alone = await make_canary(kube, "alone", target="alone")
        assert await workloads.find_conflicting_canaries(alone) == []

    async def test_flagger_canaries_are_reported_when_flaggers_api_exists(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        mine = await make_canary(kube, "mine")
        await kube.create(minimal_crd("flagger.app", "Canary", "canaries"))
        await kube.create(
            {
                "apiVersion": "flagger.app/v1beta1",
                "kind": "Canary",
                "metadata": {"name": "legacy", "namespace": NAMESPACE},
                "spec": {
                    "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"}
                },
            }
        )
        assert await workloads.find_conflicting_canaries(mine) == ["flagger.app/legacy"]
