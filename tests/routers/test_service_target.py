"""``targetRef: {apiVersion: v1, kind: Service}``: Flagger's ServiceController.

``<target>-canary`` follows the target Service, ``<target>-primary`` is copied once and
takes the target's spec on promotion; the Services of Deployment targets are not made.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from canary.adapters.service_workloads import (
    ServiceTargetWorkloads,
    copied_service,
    promoted_service,
    spec_hash,
)
from canary.adapters.targets import TargetServices, TargetWorkloads
from canary.adapters.workloads import WorkloadOptions
from canary.core.actions import ScaleMode
from canary.model import Canary, parse_canary
from canary.model.errors import SpecError
from tests.routers.fakes import FakeKube
from tests.routers.support import NS

OWNER = {
    "apiVersion": "canary.gitops.dev/v1beta1",
    "kind": "Canary",
    "name": "podinfo",
    "uid": "canary-uid-1",
    "controller": True,
    "blockOwnerDeletion": True,
}


def make_canary(provider: str = "istio", **spec: Any) -> Canary:
    return parse_canary(
        {
            "apiVersion": "canary.gitops.dev/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": NS, "uid": "canary-uid-1"},
            "spec": {
                "provider": provider,
                "targetRef": {"apiVersion": "v1", "kind": "Service", "name": "podinfo"},
                "service": {"port": 80, **spec.pop("service", {})},
                "analysis": {"interval": "1m", "threshold": 2, "stepWeight": 10},
                **spec,
            },
        }
    )


def service(
    selector: str = "podinfo-v1", *, cluster_ip: str = "10.0.0.10", node_port: int | None = None
) -> dict[str, Any]:
    port: dict[str, Any] = {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 9898}
    if node_port:
        port["nodePort"] = node_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "podinfo",
            "namespace": NS,
            "uid": "uid-target",
            "resourceVersion": "7",
            "labels": {"app": "podinfo", "toolkit.fluxcd.io/name": "apps"},
            "annotations": {
                "team": "a",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
            },
        },
        "spec": {
            "type": "NodePort" if node_port else "ClusterIP",
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "selector": {"app": selector},
            "ports": [port],
        },
    }


class TestBuilders:
    def test_a_new_copy_is_the_target_without_server_fields(self) -> None:
        copy_ = copied_service(make_canary(), service(node_port=30080), "podinfo-canary", None)
        assert copy_ == {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "podinfo-canary",
                "namespace": NS,
                "ownerReferences": [OWNER],
                "labels": {"app": "podinfo", "toolkit.fluxcd.io/name": "apps"},
                "annotations": {"team": "a"},
            },
            "spec": {
                "type": "NodePort",
                "selector": {"app": "podinfo-v1"},
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 9898}],
            },
        }

    def test_an_update_keeps_the_copys_ips_node_ports_and_identity(self) -> None:
        current = copied_service(make_canary(), service(), "podinfo-canary", None)
        current["metadata"].update(resourceVersion="3", uid="uid-copy")
        current["spec"].update(clusterIP="10.0.0.99", clusterIPs=["10.0.0.99"])
        current["spec"]["ports"][0]["nodePort"] = 31000
        target = service("podinfo-v2", node_port=30080)
        updated = copied_service(make_canary(), target, "podinfo-canary", current)
        assert updated["metadata"]["resourceVersion"] == "3"
        assert updated["metadata"]["uid"] == "uid-copy"
        assert updated["spec"]["clusterIP"] == "10.0.0.99"
        assert updated["spec"]["clusterIPs"] == ["10.0.0.99"]
        assert updated["spec"]["ports"][0]["nodePort"] == 31000
        assert updated["spec"]["selector"] == {"app": "podinfo-v2"}

    def test_headless_stays_headless(self) -> None:
        copy_ = copied_service(make_canary(), service(cluster_ip="None"), "podinfo-primary", None)
        assert copy_["spec"]["clusterIP"] == "None" and "clusterIPs" not in copy_["spec"]

    def test_promotion_filters_metadata_and_keeps_the_primary(self) -> None:
        primary = copied_service(make_canary(), service(), "podinfo-primary", None)
        primary["metadata"].update(resourceVersion="5", uid="uid-primary")
        primary["spec"].update(clusterIP="10.0.0.50", clusterIPs=["10.0.0.50"])
        before = copy.deepcopy(primary)
        promoted = promoted_service(primary, service("podinfo-v2"), include_label_prefixes=("app",))
        assert primary == before
        assert promoted["metadata"] == {
            "name": "podinfo-primary",
            "namespace": NS,
            "ownerReferences": [OWNER],
            "labels": {"app": "podinfo"},
            "resourceVersion": "5",
            "uid": "uid-primary",
        }
        assert promoted["spec"]["selector"] == {"app": "podinfo-v2"}
        assert promoted["spec"]["clusterIP"] == "10.0.0.50"

    def test_the_revision_is_the_spec(self) -> None:
        assert spec_hash(service()) == spec_hash(service())
        assert spec_hash(service()) != spec_hash(service("podinfo-v2"))
        relabelled = service()
        relabelled["metadata"]["labels"] = {}
        assert spec_hash(relabelled) == spec_hash(service())


class TestWorkloads:
    async def test_initialize_promote_and_nothing_to_scale(self) -> None:
        kube = FakeKube()
        kube.put(service())
        canary = make_canary()
        workloads = TargetWorkloads(kube, WorkloadOptions())
        assert isinstance(workloads.of(canary), ServiceTargetWorkloads)

        target, primary = await workloads.observe(canary)
        assert primary is None and target is not None and target.readiness.ready
        first = target.template_hash
        await workloads.ensure_primary(canary)
        for name in ("podinfo-primary", "podinfo-canary"):
            copy_ = kube.peek("v1", "Service", name, NS)
            assert copy_ is not None and copy_["spec"]["selector"] == {"app": "podinfo-v1"}
            assert copy_["metadata"]["ownerReferences"] == [OWNER]
        writes = len(kube.writes)
        await workloads.ensure_primary(canary)  # nothing differs: nothing written
        assert len(kube.writes) == writes

        # A new revision: the canary copy follows, the primary waits for promotion.
        kube.put(service("podinfo-v2"))
        target, primary = await workloads.observe(canary)
        assert target is not None and target.template_hash != first and primary is not None
        await workloads.ensure_primary(canary)
        selector = {
            name: (kube.peek("v1", "Service", name, NS) or {})["spec"]["selector"]["app"]
            for name in ("podinfo-primary", "podinfo-canary")
        }
        assert selector == {"podinfo-primary": "podinfo-v1", "podinfo-canary": "podinfo-v2"}

        await workloads.promote(canary)
        promoted = kube.peek("v1", "Service", "podinfo-primary", NS)
        assert promoted is not None and promoted["spec"]["selector"] == {"app": "podinfo-v2"}
        assert promoted["metadata"]["ownerReferences"] == [OWNER]
        assert "toolkit.fluxcd.io/name" not in promoted["metadata"]["labels"]

        writes = len(kube.writes)
        for mode in ScaleMode:
            await workloads.scale_target(canary, mode)
        await workloads.reconcile_primary_scaler(canary, True)
        await workloads.finalize(canary)
        assert len(kube.writes) == writes
        target_now = kube.peek("v1", "Service", "podinfo", NS)
        assert target_now is not None and target_now["spec"]["selector"] == {"app": "podinfo-v2"}

    async def test_the_services_of_deployments_are_not_made(self) -> None:
        kube = FakeKube()
        kube.put(service())
        services = TargetServices(kube)
        target = kube.peek("v1", "Service", "podinfo", NS)
        assert target is not None
        await services.initialize(make_canary(), target)
        await services.reconcile_apex(make_canary(), target)
        await services.finalize(make_canary(), target)
        assert kube.writes == []

    async def test_a_foreign_primary_is_refused(self) -> None:
        kube = FakeKube()
        kube.put(service())
        foreign = copied_service(make_canary(), service(), "podinfo-primary", None)
        foreign["metadata"]["ownerReferences"] = [{**OWNER, "uid": "other"}]
        kube.put(foreign)
        with pytest.raises(Exception, match="controlled by another owner"):
            await ServiceTargetWorkloads(kube).ensure_primary(make_canary())

    async def test_missing_target(self) -> None:
        kube = FakeKube()
        assert await ServiceTargetWorkloads(kube).observe(make_canary()) == (None, None)
        with pytest.raises(Exception, match="not found"):
            await ServiceTargetWorkloads(kube).ensure_primary(make_canary())


class TestSpec:
    def test_kind_service_defaults_to_core_v1(self) -> None:
        doc = {
            "apiVersion": "canary.gitops.dev/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": NS},
            "spec": {
                "provider": "kubernetes",
                "targetRef": {"kind": "Service", "name": "podinfo"},
                "service": {"port": 80},
            },
        }
        assert parse_canary(doc).spec.target_ref.api_version == "v1"

    @pytest.mark.parametrize(
        ("spec", "field"),
        [
            ({"service": {"name": "other"}}, "spec.service.name"),
            (
                {
                    "autoscalerRef": {
                        "apiVersion": "autoscaling/v2",
                        "kind": "HorizontalPodAutoscaler",
                        "name": "podinfo",
                    }
                },
                "spec.autoscalerRef",
            ),
        ],
    )
    def test_refusals_name_the_field(self, spec: dict[str, Any], field: str) -> None:
        with pytest.raises(SpecError) as caught:
            make_canary(**spec)
        assert field in str(caught.value)

    def test_other_api_versions_are_refused(self) -> None:
        with pytest.raises(SpecError, match=r"spec\.targetRef\.apiVersion"):
            parse_canary(
                {
                    "apiVersion": "canary.gitops.dev/v1beta1",
                    "kind": "Canary",
                    "metadata": {"name": "podinfo", "namespace": NS},
                    "spec": {
                        "targetRef": {"apiVersion": "v2", "kind": "Service", "name": "podinfo"},
                        "service": {"port": 80},
                    },
                }
            )
