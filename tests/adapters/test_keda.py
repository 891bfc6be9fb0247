"""KEDA ScaledObjects as ``spec.autoscalerRef`` (canary/adapters/scalers.py).

The pure part is checked with exact objects: the ``<so>-primary`` ScaledObject (target
aimed at ``<target>-primary``, queries rewritten by name or by Flagger's substitution,
replica overrides, the KEDA HPA name, the pause annotations left behind) and the pause
patches. The I/O part runs against the sandbox API server with the ScaledObject CRD of
crds/routers/keda.yaml, through `KubeWorkloads` as the controller calls it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.adapters.kube import KubeClient
from canary.adapters.primary import scale_up_replicas
from canary.adapters.scalers import (
    PAUSED_REPLICAS_ANNOTATION,
    is_scaled_object,
    pause_patch,
    primary_query,
    primary_scaled_object,
    primary_triggers,
    scaled_object_differs,
    scaling_bounds,
)
from canary.adapters.workloads import KubeWorkloads, WorkloadError
from canary.core.actions import ScaleMode
from canary.model.canary import Canary
from tests.adapters.builders import canary as build_canary
from tests.adapters.builders import deployment
from tests.adapters.conftest import NAMESPACE, make_canary

ROOT = Path(__file__).resolve().parents[2]
KEDA = "keda.sh/v1alpha1"
OWNER = {
    "apiVersion": "canary.gitops.dev/v1beta1",
    "kind": "Canary",
    "name": "podinfo",
    "uid": "canary-uid-1",
    "controller": True,
    "blockOwnerDeletion": True,
}


def scaled_object(**spec: Any) -> dict[str, Any]:
    """The target's ScaledObject, as a user writes it (a Prometheus trigger)."""
    return {
        "apiVersion": KEDA,
        "kind": "ScaledObject",
        "metadata": {
            "name": "podinfo-so",
            "namespace": "test",
            "labels": {"app": "podinfo", "kustomize.toolkit.fluxcd.io/name": "apps"},
            "annotations": {
                "team": "web",
                PAUSED_REPLICAS_ANNOTATION: "0",
                "autoscaling.keda.sh/paused": "true",
            },
            "uid": "so-uid",
            "resourceVersion": "7",
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "pollingInterval": 10,
            "cooldownPeriod": 20,
            "minReplicaCount": 1,
            "maxReplicaCount": 3,
            "triggers": [
                {
                    "type": "prometheus",
                    "name": "requests",
                    "metadata": {
                        "serverAddress": "http://prometheus.monitoring:9090",
                        "query": 'sum(rate(http_requests_total{app="podinfo-canary"}[2m]))',
                        "threshold": "100",
                    },
                },
                {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}},
            ],
            **spec,
        },
    }


def keda_canary(**autoscaler: Any) -> Canary:
    return build_canary(
        autoscaler={"apiVersion": KEDA, "kind": "ScaledObject", "name": "podinfo-so", **autoscaler}
    )


class TestQueries:
    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ('rate(x{app="podinfo"}[1m])', 'rate(x{app="podinfo-primary"}[1m])'),
            ('rate(x{app="podinfo-canary"}[1m])', 'rate(x{app="podinfo-primary"}[1m])'),
            (
                'rate(x{app="podinfo-canary", svc="podinfo"}[1m])',
                'rate(x{app="podinfo-primary", svc="podinfo-primary"}[1m])',
            ),
            # a difference from Flagger: never podinfo-primary-primary
            ('rate(x{app="podinfo-primary"}[1m])', 'rate(x{app="podinfo-primary"}[1m])'),
            ('rate(x{app="other"}[1m])', 'rate(x{app="other"}[1m])'),
        ],
    )
    def test_the_automatic_rewrite_aims_at_the_primary(self, query: str, expected: str) -> None:
        assert primary_query(query, "podinfo") == expected

    def test_named_queries_replace_only_the_triggers_they_name(self) -> None:
        triggers: list[dict[str, Any]] = [
            {"type": "prometheus", "name": "a", "metadata": {"query": "qa"}},
            {"type": "prometheus", "name": "b", "metadata": {"query": "podinfo"}},
            {"type": "prometheus", "metadata": {"query": "podinfo"}},
            {"type": "prometheus", "name": "c"},
        ]
        queries = {"a": "primary-a", "c": "primary-c"}
        assert primary_triggers(triggers, "podinfo", queries) == [
            {"type": "prometheus", "name": "a", "metadata": {"query": "primary-a"}},
            {"type": "prometheus", "name": "b", "metadata": {"query": "podinfo"}},
            {"type": "prometheus", "metadata": {"query": "podinfo"}},
            {"type": "prometheus", "name": "c", "metadata": {"query": "primary-c"}},
        ]
        assert triggers[0]["metadata"] == {"query": "qa"}  # the input is not changed


class TestPrimaryScaledObject:
    def test_the_exact_primary_scaled_object(self) -> None:
        source = scaled_object()
        canary = keda_canary()
        ref = canary.spec.autoscaler_ref
        assert ref is not None
        assert primary_scaled_object(source, canary, ref) == {
            "apiVersion": KEDA,
            "kind": "ScaledObject",
            "metadata": {
                "name": "podinfo-so-primary",
                "namespace": "test",
                "labels": {"app": "podinfo"},
                "annotations": {"team": "web"},
                "ownerReferences": [OWNER],
            },
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "podinfo-primary",
                },
                "pollingInterval": 10,
                "cooldownPeriod": 20,
                "minReplicaCount": 1,
                "maxReplicaCount": 3,
                "triggers": [
                    {
                        "type": "prometheus",
                        "name": "requests",
                        "metadata": {
                            "serverAddress": "http://prometheus.monitoring:9090",
                            "query": 'sum(rate(http_requests_total{app="podinfo-primary"}[2m]))',
                            "threshold": "100",
                        },
                    },
                    {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}},
                ],
            },
        }
        assert source == scaled_object()  # the source is not changed

    def test_overrides_named_queries_replicas_and_the_keda_hpa_name(self) -> None:
        canary = keda_canary(
            primaryScalerQueries={"requests": 'sum(rate(x{app="podinfo-primary"}[5m]))'},
            primaryScalerReplicas={"minReplicas": 2, "maxReplicas": 9},
        )
        source = scaled_object(
            advanced={"horizontalPodAutoscalerConfig": {"name": "podinfo-hpa"}},
            fallback={"failureThreshold": 3, "replicas": 2},
        )
        ref = canary.spec.autoscaler_ref
        assert ref is not None
        spec = primary_scaled_object(source, canary, ref)["spec"]
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 9)
        assert spec["triggers"][0]["metadata"]["query"] == 'sum(rate(x{app="podinfo-primary"}[5m]))'
        assert spec["advanced"] == {
            "horizontalPodAutoscalerConfig": {"name": "podinfo-hpa-primary"}
        }
        assert spec["fallback"] == {"failureThreshold": 3, "replicas": 2}

    def test_include_label_prefixes_filter_labels_and_annotations(self) -> None:
        canary = keda_canary()
        ref = canary.spec.autoscaler_ref
        assert ref is not None
        meta = primary_scaled_object(scaled_object(), canary, ref, include_label_prefixes=("app",))[
            "metadata"
        ]
        assert meta["labels"] == {"app": "podinfo"}
        assert "annotations" not in meta

    def test_differs_only_on_the_spec(self) -> None:
        canary = keda_canary()
        ref = canary.spec.autoscaler_ref
        assert ref is not None
        desired = primary_scaled_object(scaled_object(), canary, ref)
        existing = {**desired, "metadata": {"name": "x", "labels": {"other": "1"}}}
        assert not scaled_object_differs(existing, desired)
        assert scaled_object_differs(
            {**existing, "spec": {**desired["spec"], "maxReplicaCount": 4}}, desired
        )


class TestPause:
    def test_pausing_sets_paused_replicas_to_zero(self) -> None:
        unpaused = {"metadata": {"annotations": {"team": "web"}}}
        assert pause_patch(unpaused, True) == {
            "metadata": {"annotations": {"autoscaling.keda.sh/paused-replicas": "0"}}
        }
        assert pause_patch({"metadata": {}}, True) == {
            "metadata": {"annotations": {"autoscaling.keda.sh/paused-replicas": "0"}}
        }
        other = {"metadata": {"annotations": {PAUSED_REPLICAS_ANNOTATION: "2"}}}
        assert pause_patch(other, True) == {
            "metadata": {"annotations": {"autoscaling.keda.sh/paused-replicas": "0"}}
        }

    def test_resuming_removes_the_annotation(self) -> None:
        paused = {"metadata": {"annotations": {PAUSED_REPLICAS_ANNOTATION: "0", "team": "web"}}}
        assert pause_patch(paused, False) == {
            "metadata": {"annotations": {"autoscaling.keda.sh/paused-replicas": None}}
        }

    def test_nothing_to_write_when_already_as_asked(self) -> None:
        paused = {"metadata": {"annotations": {PAUSED_REPLICAS_ANNOTATION: "0"}}}
        assert pause_patch(paused, True) is None
        assert pause_patch({"metadata": {"annotations": {"team": "web"}}}, False) is None


def test_scale_up_uses_the_scaled_objects_min_replica_count() -> None:
    target = deployment(replicas=0)
    assert scale_up_replicas(target, None, scaling_bounds(scaled_object(minReplicaCount=4))) == 4
    assert scale_up_replicas(target, None, scaling_bounds(scaled_object(minReplicaCount=0))) == 1


def test_the_model_accepts_a_scaled_object_autoscaler() -> None:
    assert is_scaled_object(keda_canary().spec.autoscaler_ref)
    assert not is_scaled_object(
        build_canary(
            autoscaler={
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "name": "x",
            }
        ).spec.autoscaler_ref
    )


# ----------------------------------------------------------------------------- sandbox


async def install_keda_crd(kube: KubeClient) -> None:
    for doc in yaml.safe_load_all((ROOT / "crds" / "routers" / "keda.yaml").read_text()):
        if doc:
            await kube.create(doc)


async def get_so(kube: KubeClient, name: str) -> dict[str, Any]:
    obj = await kube.get(KEDA, "ScaledObject", name, NAMESPACE)
    assert obj is not None, f"ScaledObject {name} does not exist"
    return obj


async def setup(kube: KubeClient, **autoscaler: Any) -> Canary:
    await install_keda_crd(kube)
    await kube.create(deployment(replicas=0))
    source = scaled_object(minReplicaCount=2)
    source["metadata"] = {
        "name": "podinfo-so",
        "namespace": NAMESPACE,
        "labels": {"app": "podinfo"},
    }
    await kube.create(source)
    return await make_canary(
        kube,
        autoscalerRef={
            "apiVersion": KEDA,
            "kind": "ScaledObject",
            "name": "podinfo-so",
            **autoscaler,
        },
    )


class TestSandbox:
    async def test_primary_created_at_init_and_updated_only_afterwards(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        canary = await setup(kube, primaryScalerReplicas={"maxReplicas": 5})
        await workloads.reconcile_primary_scaler(canary, init=True)
        created = await get_so(kube, "podinfo-so-primary")
        assert created["spec"]["scaleTargetRef"]["name"] == "podinfo-primary"
        assert created["spec"]["maxReplicaCount"] == 5
        query = created["spec"]["triggers"][0]["metadata"]["query"]
        assert query == 'sum(rate(http_requests_total{app="podinfo-primary"}[2m]))'
        assert created["metadata"]["ownerReferences"][0]["uid"] == canary.uid

        await kube.patch(
            KEDA, "ScaledObject", "podinfo-so", NAMESPACE, {"spec": {"pollingInterval": 5}}
        )
        await workloads.reconcile_primary_scaler(canary, init=True)
        unchanged = await get_so(kube, "podinfo-so-primary")
        assert unchanged["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        await workloads.reconcile_primary_scaler(canary, init=False)
        updated = await get_so(kube, "podinfo-so-primary")
        assert updated["spec"]["pollingInterval"] == 5
        await workloads.reconcile_primary_scaler(canary, init=False)
        again = await get_so(kube, "podinfo-so-primary")
        assert again["metadata"]["resourceVersion"] == updated["metadata"]["resourceVersion"]

    async def test_pause_and_resume_the_targets_scaled_object(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        canary = await setup(kube)
        await workloads.pause_target_scaler(canary, True)
        paused = await get_so(kube, "podinfo-so")
        assert paused["metadata"]["annotations"] == {PAUSED_REPLICAS_ANNOTATION: "0"}
        await workloads.pause_target_scaler(canary, True)
        same = await get_so(kube, "podinfo-so")
        assert same["metadata"]["resourceVersion"] == paused["metadata"]["resourceVersion"]
        await workloads.pause_target_scaler(canary, False)
        assert not (await get_so(kube, "podinfo-so"))["metadata"].get("annotations")

    async def test_scale_up_reads_min_replica_count(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        canary = await setup(kube)
        await workloads.scale_target(canary, ScaleMode.UP)
        target = await kube.get("apps/v1", "Deployment", "podinfo", NAMESPACE)
        assert target is not None and target["spec"]["replicas"] == 2

    async def test_finalize_resumes_the_target_scaler(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        canary = await setup(kube)
        await workloads.pause_target_scaler(canary, True)
        await workloads.finalize(canary)
        assert not (await get_so(kube, "podinfo-so"))["metadata"].get("annotations")

    async def test_a_missing_scaled_object_is_an_error(
        self, kube: KubeClient, workloads: KubeWorkloads
    ) -> None:
        await install_keda_crd(kube)
        canary = await make_canary(
            kube, autoscalerRef={"apiVersion": KEDA, "kind": "ScaledObject", "name": "nope"}
        )
        with pytest.raises(WorkloadError, match=r"ScaledObject nope\.test not found"):
            await workloads.reconcile_primary_scaler(canary, init=True)
        with pytest.raises(WorkloadError, match=r"ScaledObject nope\.test not found"):
            await workloads.pause_target_scaler(canary, True)
        await workloads.finalize(canary)  # deletion is never blocked by it
