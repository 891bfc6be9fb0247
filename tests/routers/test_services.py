"""The apex, primary and canary Services, and the `kubernetes` provider (blue/green only)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from canary.adapters.routers import KubernetesRouter, RouterError, ServiceRouter, make_router
from canary.adapters.routers.builders import (
    FLUX_RECONCILE_ANNOTATION,
    KUBECTL_LAST_APPLIED_ANNOTATION,
    ORIGINAL_CONFIG_ANNOTATION,
    services,
)
from canary.core.observations import Routes
from tests.routers.fakes import FakeKube
from tests.routers.support import NS, make_canary, strip_server_fields, target

OWNER = {
    "apiVersion": "canary.gitops.dev/v1beta1",
    "kind": "Canary",
    "name": "podinfo",
    "uid": "canary-uid-1",
    "controller": True,
    "blockOwnerDeletion": True,
}


class TestSelectorLabel:
    @pytest.mark.parametrize(
        ("labels", "expected"),
        [
            ({"app": "podinfo"}, ("app", "podinfo")),
            ({"name": "podinfo", "tier": "web"}, ("name", "podinfo")),
            ({"app.kubernetes.io/name": "podinfo"}, ("app.kubernetes.io/name", "podinfo")),
            ({"name": "n", "app": "a"}, ("app", "a")),  # app comes first
        ],
    )
    def test_first_known_label_in_match_labels(
        self, labels: dict[str, str], expected: tuple[str, str]
    ) -> None:
        assert services.selector_label(target(labels=labels)) == expected

    def test_missing_label_names_the_target_ref(self) -> None:
        with pytest.raises(RouterError) as err:
            services.selector_label(target(labels={"tier": "web"}))
        assert err.value.field == "spec.targetRef"
        assert "app, name, app.kubernetes.io/name" in str(err.value)


class TestGeneratedServices:
    def test_primary_canary_and_apex_exactly(self) -> None:
        canary = make_canary("kubernetes", service={"port": 80, "targetPort": 9898})
        primary = services.primary_service(canary, target(), None)
        assert primary == {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "podinfo-primary",
                "namespace": NS,
                "labels": {"app": "podinfo-primary"},
                "annotations": {FLUX_RECONCILE_ANNOTATION: "disabled"},
                "ownerReferences": [OWNER],
            },
            "spec": {
                "type": "ClusterIP",
                "selector": {"app": "podinfo-primary"},
                "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 9898}],
            },
        }
        canary_svc = services.canary_service(canary, target(), None)
        assert canary_svc["metadata"]["name"] == "podinfo-canary"
        assert canary_svc["spec"]["selector"] == {"app": "podinfo"}
        apex = services.apex_service(canary, target(), None)
        assert apex["metadata"]["name"] == "podinfo"
        assert apex["metadata"]["labels"] == {"app": "podinfo"}
        assert apex["spec"]["selector"] == {"app": "podinfo-primary"}

    def test_port_defaults_port_name_and_app_protocol(self) -> None:
        canary = make_canary(
            "kubernetes", service={"port": 9898, "portName": "grpc", "appProtocol": "grpc"}
        )
        ports = services.service_ports(canary, target())
        assert ports == [
            {
                "name": "grpc",
                "protocol": "TCP",
                "port": 9898,
                "targetPort": 9898,
                "appProtocol": "grpc",
            }
        ]

    def test_headless_and_traffic_distribution(self) -> None:
        canary = make_canary(
            "kubernetes", service={"headless": True, "trafficDistribution": "PreferClose"}
        )
        spec = services.canary_service(canary, target(), None)["spec"]
        assert spec["clusterIP"] == "None"
        assert spec["trafficDistribution"] == "PreferClose"

    def test_service_metadata_from_spec(self) -> None:
        canary = make_canary(
            "kubernetes",
            service={
                "apex": {"labels": {"team": "a"}, "annotations": {"note": "apex"}},
                "primary": {"labels": {"app": "ignored", "tier": "p"}},
                "canary": {"annotations": {"note": "canary"}},
            },
        )
        apex = services.apex_service(canary, target(), None)["metadata"]
        assert apex["labels"] == {"team": "a", "app": "podinfo"}
        assert apex["annotations"] == {"note": "apex", FLUX_RECONCILE_ANNOTATION: "disabled"}
        primary = services.primary_service(canary, target(), None)["metadata"]
        assert primary["labels"] == {
            "app": "podinfo-primary",
            "tier": "p",
        }  # the selector label wins
        assert (
            services.canary_service(canary, target(), None)["metadata"]["annotations"]["note"]
            == "canary"
        )

    def test_port_discovery_skips_service_port_and_sidecars(self) -> None:
        containers: list[dict[str, Any]] = [
            {
                "name": "app",
                "ports": [
                    {"name": "http", "containerPort": 9898},
                    {"name": "metrics", "containerPort": 9797},
                    {"containerPort": 8080},
                ],
            },
            {"name": "istio-proxy", "ports": [{"name": "http-envoy-prom", "containerPort": 15090}]},
            {"name": "envoy", "ports": [{"containerPort": 9901}]},
            {"name": "sidecar", "ports": [{"containerPort": 7070}]},
        ]
        canary = make_canary(
            "kubernetes", service={"port": 80, "targetPort": 9898, "portDiscovery": True}
        )
        ports = services.service_ports(canary, target(containers=containers))
        assert [(p["name"], p["port"], p["targetPort"]) for p in ports] == [
            ("http", 80, 9898),
            ("metrics", 9797, 9797),
            ("tcp-app-2", 8080, 8080),
            ("tcp-sidecar-0", 7070, 7070),
        ]

    def test_no_discovery_unless_asked(self) -> None:
        containers = [{"name": "app", "ports": [{"name": "metrics", "containerPort": 9797}]}]
        canary = make_canary("kubernetes")
        assert len(services.service_ports(canary, target(containers=containers))) == 1


class TestTakeOverApex:
    def existing_apex(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "podinfo",
                "namespace": NS,
                "resourceVersion": "7",
                "labels": {"owner": "user"},
                "annotations": {"user": "note"},
            },
            "spec": {
                "type": "NodePort",
                "clusterIP": "10.0.0.1",
                "selector": {"app": "podinfo"},
                "ports": [
                    {
                        "name": "http",
                        "protocol": "TCP",
                        "port": 9898,
                        "targetPort": 9898,
                        "nodePort": 30080,
                    }
                ],
            },
        }

    def test_selector_rewritten_node_ports_and_metadata_kept(self) -> None:
        canary = make_canary("kubernetes")
        current = self.existing_apex()
        apex = services.apex_service(canary, target(), current)
        assert apex["spec"]["selector"] == {"app": "podinfo-primary"}
        assert apex["spec"]["ports"][0]["nodePort"] == 30080
        assert apex["spec"]["type"] == "NodePort"
        assert apex["spec"]["clusterIP"] == "10.0.0.1"
        assert apex["metadata"]["labels"] == {"owner": "user"}
        assert "ownerReferences" not in apex["metadata"]
        record = json.loads(apex["metadata"]["annotations"][ORIGINAL_CONFIG_ANNOTATION])
        assert record["spec"]["selector"] == {"app": "podinfo"}
        assert record["labels"] == {"owner": "user"}
        assert apex["metadata"]["annotations"]["user"] == "note"

    def test_restore_from_our_record(self) -> None:
        canary = make_canary("kubernetes")
        original = self.existing_apex()
        taken = services.apex_service(canary, target(), original)
        restored = services.restored_apex_service(canary, taken)
        assert restored is not None
        assert restored["spec"]["selector"] == {"app": "podinfo"}
        assert restored["spec"]["ports"] == original["spec"]["ports"]
        assert restored["metadata"]["annotations"] == {"user": "note"}
        assert restored["metadata"]["labels"] == {"owner": "user"}

    def test_restore_prefers_kubectl_last_applied(self) -> None:
        canary = make_canary("kubernetes")
        original = self.existing_apex()
        original["metadata"]["annotations"][KUBECTL_LAST_APPLIED_ANNOTATION] = json.dumps(
            {
                "spec": {
                    "selector": {"app": "from-kubectl"},
                    "ports": [{"name": "http", "port": 9898}],
                }
            }
        )
        taken = services.apex_service(canary, target(), original)
        restored = services.restored_apex_service(canary, taken)
        assert restored is not None
        assert restored["spec"]["selector"] == {"app": "from-kubectl"}
        assert restored["spec"]["ports"] == [{"name": "http", "port": 9898, "nodePort": 30080}]

    def test_owned_apex_is_not_restored(self) -> None:
        canary = make_canary("kubernetes")
        created = services.apex_service(canary, target(), None)
        assert services.restored_apex_service(canary, created) is None

    def test_owned_service_metadata_managed_but_unmanaged_keys_kept(self) -> None:
        canary = make_canary(
            "kubernetes",
            service={
                "apex": {"annotations": {"mine": "1"}},
                "unmanagedMetadata": {"annotations": ["external-dns/hostname"], "labels": ["keep"]},
            },
        )
        created = services.apex_service(canary, target(), None)
        created["metadata"]["annotations"]["external-dns/hostname"] = "x.example.com"
        created["metadata"]["annotations"]["stray"] = "y"
        created["metadata"]["labels"]["keep"] = "k"
        updated = services.apex_service(canary, target(), created)
        assert updated["metadata"]["annotations"] == {
            "mine": "1",
            FLUX_RECONCILE_ANNOTATION: "disabled",
            "external-dns/hostname": "x.example.com",
        }
        assert updated["metadata"]["labels"] == {"app": "podinfo", "keep": "k"}


class TestServiceRouter:
    async def test_initialize_then_apex_creates_three_owned_services(self) -> None:
        kube = FakeKube()
        router = ServiceRouter(kube)
        canary = make_canary("istio")
        await router.initialize(canary, target())
        assert sorted(name for _, _, name in kube.writes) == ["podinfo-canary", "podinfo-primary"]
        await router.reconcile_apex(canary, target())
        for name in ("podinfo", "podinfo-primary", "podinfo-canary"):
            svc = kube.peek("v1", "Service", name)
            assert svc is not None
            assert svc["metadata"]["ownerReferences"] == [OWNER]

    async def test_second_pass_writes_nothing(self) -> None:
        kube = FakeKube()
        router = ServiceRouter(kube)
        canary = make_canary("istio")
        await router.initialize(canary, target())
        await router.reconcile_apex(canary, target())
        writes = len(kube.writes)
        await router.initialize(canary, target())
        await router.reconcile_apex(canary, target())
        assert len(kube.writes) == writes

    async def test_port_change_updates_services(self) -> None:
        kube = FakeKube()
        router = ServiceRouter(kube)
        await router.initialize(make_canary("istio"), target())
        await router.initialize(make_canary("istio", service={"port": 8080}), target())
        svc = kube.peek("v1", "Service", "podinfo-canary")
        assert svc is not None
        assert svc["spec"]["ports"][0]["port"] == 8080

    async def test_takeover_and_finalize_restore_the_apex(self) -> None:
        kube = FakeKube()
        original = TestTakeOverApex().existing_apex()
        kube.put(original)
        router = ServiceRouter(kube)
        canary = make_canary("kubernetes", revertOnDeletion=True)
        await router.reconcile_apex(canary, target())
        taken = kube.peek("v1", "Service", "podinfo")
        assert taken is not None
        assert taken["spec"]["selector"] == {"app": "podinfo-primary"}
        await router.finalize(canary, target())
        restored = kube.peek("v1", "Service", "podinfo")
        assert restored is not None
        assert strip_server_fields(restored) == strip_server_fields(original)

    async def test_finalize_without_record_selects_the_target_pods(self) -> None:
        kube = FakeKube()
        apex = TestTakeOverApex().existing_apex()
        apex["spec"]["selector"] = {"app": "podinfo-primary"}
        kube.put(apex)
        await ServiceRouter(kube).finalize(make_canary("kubernetes"), target())
        restored = kube.peek("v1", "Service", "podinfo")
        assert restored is not None
        assert restored["spec"]["selector"] == {"app": "podinfo"}


class TestKubernetesProvider:
    async def test_routes_report_primary_only_once_the_apex_exists(self) -> None:
        kube = FakeKube()
        router = make_router("kubernetes", kube)
        assert isinstance(router, KubernetesRouter)
        canary = make_canary(
            "kubernetes", analysis={"interval": "1m", "threshold": 1, "iterations": 5}
        )
        assert await router.get_routes(canary) is None
        await ServiceRouter(kube).reconcile_apex(canary, target())
        await router.set_routes(canary, 0, 100, False)  # blue/green switch: nothing to shift
        assert await router.get_routes(canary) == Routes(100, 0)
        assert [w for w in kube.writes if w[2] == "podinfo"] == [("create", "Service", "podinfo")]

    async def test_mirroring_is_refused(self) -> None:
        router = make_router("kubernetes", FakeKube())
        with pytest.raises(RouterError) as err:
            await router.set_routes(make_canary("kubernetes"), 100, 0, True)
        assert err.value.field == "spec.analysis.mirror"

    async def test_bad_weights_are_refused(self) -> None:
        router = make_router("kubernetes", FakeKube())
        with pytest.raises(RouterError, match="add up to 100"):
            await router.set_routes(make_canary("kubernetes"), 60, 60, False)
