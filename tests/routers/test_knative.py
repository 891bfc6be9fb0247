"""``provider: knative``: the split lives in the target Knative Service's ``spec.traffic``.

Flagger's objects (pkg/router/knative.go, pkg/canary/knative_controller.go): the primary
Revision is pinned by the ``flagger.app/primary-revision`` annotation (the latest created
Revision when the Service is taken over, and again on promotion), and the traffic is
``[{latestRevision: true, percent: c}, {revisionName: <primary>, percent: p}]``.
"""

from __future__ import annotations

import copy
import random
from collections import Counter
from typing import Any

import pytest

from canary.adapters.knative_workloads import KnativeWorkloads, revision_readiness
from canary.adapters.routers import RouterError, make_router
from canary.adapters.routers.builders import knative
from canary.adapters.routers.knative import KnativeRouter
from canary.adapters.targets import TargetServices, TargetWorkloads
from canary.core.actions import ScaleMode
from canary.core.observations import Readiness, Routes
from canary.demo.traffic import ServiceEntry, Snapshot, TrafficRequest, resolve, service_pods
from canary.demo.traffic import service_version as version_of
from canary.model import Canary, parse_canary
from canary.model.errors import SpecError
from tests.routers.fakes import FakeKube
from tests.routers.support import NS, binomial_tolerance, pod

API = knative.KNATIVE_API_VERSION
TARGET = {"apiVersion": API, "kind": "Service", "name": "podinfo"}
PIN = knative.PRIMARY_REVISION_ANNOTATION


def make_canary(
    analysis: dict[str, Any] | None = None, *, validate: bool = True, **spec: Any
) -> Canary:
    return parse_canary(
        {
            "apiVersion": "canary.gitops.dev/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": NS, "uid": "canary-uid-1"},
            "spec": {
                "provider": "knative",
                "targetRef": TARGET,
                "service": {"port": 80},
                "analysis": analysis or {"interval": "1m", "threshold": 5, "stepWeight": 10},
                **spec,
            },
        },
        check_provider=validate,
    )


def ksvc(
    *,
    pinned: str | None = "podinfo-00001",
    latest: str = "podinfo-00002",
    ready: str | None = None,
    traffic: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A Knative Service as Knative keeps it: the user's template, Knative's status."""
    obj: dict[str, Any] = {
        "apiVersion": API,
        "kind": "Service",
        "metadata": {
            "name": "podinfo",
            "namespace": NS,
            "labels": {"team": "a"},
            "annotations": {"owner": "me", **({PIN: pinned} if pinned else {})},
        },
        "spec": {
            "template": {"spec": {"containers": [{"image": "podinfo:6.1.0"}]}},
            **({"traffic": traffic} if traffic is not None else {}),
        },
        "status": {
            "latestCreatedRevisionName": latest,
            "latestReadyRevisionName": ready or latest,
        },
    }
    return obj


def revision(name: str, *, ready: str = "True", reason: str = "") -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Revision",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"containers": [{"image": f"podinfo:{name}"}]},
        "status": {"conditions": [{"type": "Ready", "status": ready, "reason": reason}]},
    }


# ============================================================================ builder


class TestKnativeService:
    @pytest.mark.parametrize("weight", [0, 25, 100])
    def test_exact_object_at_weights(self, weight: int) -> None:
        current = ksvc()
        obj = knative.knative_service(make_canary(), current, Routes(100 - weight, weight))
        expected = copy.deepcopy(current)
        expected["spec"]["traffic"] = [
            {"latestRevision": True, "percent": weight},
            {"revisionName": "podinfo-00001", "latestRevision": False, "percent": 100 - weight},
        ]
        # Only spec.traffic changes: no owner, no Flux or takeover annotations on the
        # user's own Service (Flux must keep applying its template).
        assert obj == expected
        assert knative.read_routes(make_canary(), obj) == Routes(100 - weight, weight)

    def test_the_input_is_not_changed(self) -> None:
        current = ksvc()
        before = copy.deepcopy(current)
        knative.knative_service(make_canary(), current, Routes(50, 50))
        assert current == before

    def test_reconcile_keeps_the_weights_and_starts_at_100_0(self) -> None:
        canary = make_canary()
        assert knative.read_routes(canary, knative.knative_service(canary, ksvc())) == Routes(
            100, 0
        )
        at_30 = knative.knative_service(canary, ksvc(), Routes(70, 30))
        assert knative.knative_service(canary, at_30) == at_30

    def test_the_users_traffic_is_not_ours_until_written(self) -> None:
        canary = make_canary()
        users = ksvc(traffic=[{"latestRevision": True, "percent": 100}])
        # Knative's default entry follows the latest Revision: that is the canary side.
        assert knative.read_routes(canary, users) == Routes(0, 100)
        tagged = ksvc(traffic=[{"revisionName": "other", "percent": 100}])
        assert knative.read_routes(canary, tagged) is None
        assert knative.read_routes(canary, knative.knative_service(canary, tagged)) == Routes(
            100, 0
        )

    def test_an_entry_without_name_or_flag_follows_the_latest(self) -> None:
        obj = ksvc(traffic=[{"percent": 40}, {"revisionName": "podinfo-00001", "percent": 60}])
        assert knative.read_routes(make_canary(), obj) == Routes(60, 40)

    def test_no_routes_before_the_service_is_pinned(self) -> None:
        assert knative.read_routes(make_canary(), None) is None
        assert knative.read_routes(make_canary(), ksvc(pinned=None)) is None

    def test_zero_zero_is_an_error_and_reconcile_starts_over(self) -> None:
        zero = ksvc(
            traffic=[
                {"latestRevision": True, "percent": 0},
                {"revisionName": "podinfo-00001", "percent": 0},
            ]
        )
        with pytest.raises(RouterError, match="no weight"):
            knative.read_routes(make_canary(), zero)
        rebuilt = knative.knative_service(make_canary(), zero)
        assert knative.read_routes(make_canary(), rebuilt) == Routes(100, 0)

    def test_refuses_a_missing_or_unpinned_service(self) -> None:
        with pytest.raises(RouterError, match="not found"):
            knative.knative_service(make_canary(), None)
        with pytest.raises(RouterError, match=PIN):
            knative.knative_service(make_canary(), ksvc(pinned=None))

    @pytest.mark.parametrize(
        ("analysis", "field"),
        [
            (
                {"iterations": 2, "match": [{"headers": {"x-canary": {"exact": "1"}}}]},
                "spec.analysis.match",
            ),
            ({"iterations": 2, "mirror": True}, "spec.analysis.mirror"),
            (
                {"stepWeight": 10, "sessionAffinity": {"cookieName": "c"}},
                "spec.analysis.sessionAffinity",
            ),
        ],
    )
    def test_refusals_name_the_field(self, analysis: dict[str, Any], field: str) -> None:
        canary = make_canary({"interval": "1m", **analysis}, validate=False)
        with pytest.raises(RouterError) as caught:
            knative.knative_service(canary, ksvc(), Routes(100, 0))
        assert caught.value.field == field
        with pytest.raises(SpecError, match=field.replace(".", r"\.")):
            make_canary({"interval": "1m", **analysis})

    def test_restored_service_gives_the_traffic_back_to_the_latest(self) -> None:
        obj = knative.restored_service(ksvc(traffic=[{"latestRevision": True, "percent": 0}]))
        assert obj is not None
        assert obj["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]
        assert knative.restored_service(None) is None


# ============================================================================ router


class TestKnativeRouter:
    async def test_walks_the_weights_and_reads_them_back(self) -> None:
        kube = FakeKube()
        kube.put(ksvc())
        router = make_router("knative", kube)
        assert isinstance(router, KnativeRouter)
        canary = make_canary()
        assert [str(api) for api in router.required_apis(canary)] == [
            f"{API} Service",
            f"{API} Revision",
        ]
        await router.reconcile(canary)
        assert await router.get_routes(canary) == Routes(100, 0)
        for weight in (25, 50, 0):
            await router.set_routes(canary, 100 - weight, weight, False)
            assert await router.get_routes(canary) == Routes(100 - weight, weight)
        writes = len(kube.writes)
        await router.reconcile(canary)  # nothing differs: nothing written
        assert len(kube.writes) == writes
        stored = kube.peek(API, "Service", "podinfo", NS)
        assert stored is not None and stored["metadata"]["annotations"]["owner"] == "me"
        assert "ownerReferences" not in stored["metadata"]

    async def test_refuses_bad_weights_and_mirroring(self) -> None:
        kube = FakeKube()
        kube.put(ksvc())
        router = KnativeRouter(kube)
        with pytest.raises(RouterError):
            await router.set_routes(make_canary(), 60, 60, False)
        with pytest.raises(RouterError) as caught:
            await router.set_routes(make_canary(), 50, 50, True)
        assert caught.value.field == "spec.analysis.mirror"

    async def test_finalize_restores_the_default_traffic(self) -> None:
        kube = FakeKube()
        kube.put(ksvc())
        router = KnativeRouter(kube)
        await router.set_routes(make_canary(), 75, 25, False)
        await router.finalize(make_canary())
        stored = kube.peek(API, "Service", "podinfo", NS)
        assert stored is not None
        assert stored["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]


# ============================================================================ workloads


class TestKnativeWorkloads:
    async def test_pins_observes_and_promotes_revisions(self) -> None:
        kube = FakeKube()
        kube.put(ksvc(pinned=None, latest="podinfo-00001"))
        kube.put(revision("podinfo-00001"))
        workloads = KnativeWorkloads(kube)
        canary = make_canary()

        target, primary = await workloads.observe(canary)
        assert primary is None and target is not None and target.readiness.ready
        first_revision = target.template_hash
        assert target.images == ("podinfo:6.1.0",)

        await workloads.ensure_primary(canary)
        stored = kube.peek(API, "Service", "podinfo", NS)
        assert stored is not None and stored["metadata"]["annotations"][PIN] == "podinfo-00001"
        target, primary = await workloads.observe(canary)
        assert primary is not None and primary.readiness.ready
        assert primary.images == ("podinfo:podinfo-00001",)

        # Knative creates a new Revision from a new template: a new revision, not ready yet.
        stored["status"]["latestCreatedRevisionName"] = "podinfo-00002"
        kube.put(stored)
        kube.put(revision("podinfo-00002", ready="Unknown"))
        target, _ = await workloads.observe(canary)
        assert target is not None and target.template_hash != first_revision
        assert not target.readiness.ready and target.readiness.retriable
        await workloads.ensure_primary(canary)  # already pinned: unchanged
        pinned = kube.peek(API, "Service", "podinfo", NS)
        assert pinned is not None and pinned["metadata"]["annotations"][PIN] == "podinfo-00001"

        await KnativeRouter(kube).set_routes(canary, 50, 50, False)
        await workloads.promote(canary)
        promoted = kube.peek(API, "Service", "podinfo", NS)
        assert promoted is not None and promoted["metadata"]["annotations"][PIN] == "podinfo-00002"
        # The primary's entry follows the pin, weights kept: the primary runs the new version.
        assert promoted["spec"]["traffic"] == [
            {"latestRevision": True, "percent": 50},
            {"revisionName": "podinfo-00002", "latestRevision": False, "percent": 50},
        ]
        assert await KnativeRouter(kube).get_routes(canary) == Routes(50, 50)

        for mode in ScaleMode:
            await workloads.scale_target(canary, mode)  # Knative scales Revisions itself
        await workloads.finalize(canary)
        unpinned = kube.peek(API, "Service", "podinfo", NS)
        assert unpinned is not None and PIN not in unpinned["metadata"]["annotations"]

    async def test_a_service_without_a_revision_cannot_be_pinned(self) -> None:
        kube = FakeKube()
        kube.put(ksvc(pinned=None, latest=""))
        target, primary = await KnativeWorkloads(kube).observe(make_canary())
        assert target is not None and not target.readiness.ready and primary is None
        with pytest.raises(Exception, match="no Revision yet"):
            await KnativeWorkloads(kube).ensure_primary(make_canary())

    def test_revision_readiness(self) -> None:
        assert revision_readiness("r", revision("r"), NS) == Readiness.ok()
        assert revision_readiness("r", None, NS).retriable
        waiting = revision_readiness("r", revision("r", ready="False", reason="Deploying"), NS)
        assert not waiting.ready and waiting.retriable and "Deploying" in waiting.message
        failed = revision_readiness(
            "r", revision("r", ready="False", reason="ProgressDeadlineExceeded"), NS
        )
        assert not failed.ready and not failed.retriable

    async def test_the_target_kind_picks_the_workloads_and_no_services_are_made(self) -> None:
        kube = FakeKube()
        kube.put(ksvc(pinned=None, latest="podinfo-00001"))
        canary = make_canary()
        workloads = TargetWorkloads(kube)
        assert isinstance(workloads.of(canary), KnativeWorkloads)
        await workloads.ensure_primary(canary)
        services = TargetServices(kube)
        target = kube.peek(API, "Service", "podinfo", NS)
        assert target is not None
        await services.initialize(canary, target)
        await services.reconcile_apex(canary, target)
        await services.finalize(canary, target)
        assert [w for w in kube.writes if w[1] == "Service"] == [("replace", "Service", "podinfo")]
        assert kube.peek("v1", "Service", "podinfo-primary", NS) is None

    async def test_conflicting_canaries_match_the_knative_group_only(self) -> None:
        kube = FakeKube()
        for name, ref in (
            ("other", TARGET),
            ("core", {"apiVersion": "v1", "kind": "Service", "name": "podinfo"}),
        ):
            kube.put(
                {
                    "apiVersion": "canary.gitops.dev/v1beta1",
                    "kind": "Canary",
                    "metadata": {"name": name, "namespace": NS},
                    "spec": {"targetRef": ref},
                }
            )
        assert await KnativeWorkloads(kube).find_conflicting_canaries(make_canary()) == ["other"]


# ============================================================================ the spec


class TestSpec:
    @pytest.mark.parametrize(
        ("provider", "target", "extra", "field"),
        [
            ("istio", TARGET, {}, "spec.provider"),
            (
                "knative",
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                {},
                "spec.targetRef",
            ),
            (
                "knative",
                TARGET,
                {
                    "autoscalerRef": {
                        "apiVersion": "autoscaling/v2",
                        "kind": "HorizontalPodAutoscaler",
                        "name": "p",
                    }
                },
                "spec.autoscalerRef",
            ),
        ],
    )
    def test_knative_target_and_provider_go_together(
        self, provider: str, target: dict[str, Any], extra: dict[str, Any], field: str
    ) -> None:
        doc = {
            "apiVersion": "canary.gitops.dev/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": NS},
            "spec": {
                "provider": provider,
                "targetRef": target,
                "service": {"port": 80},
                "analysis": {"interval": "1m", "threshold": 2, "stepWeight": 10},
                **extra,
            },
        }
        with pytest.raises(SpecError) as caught:
            parse_canary(doc)
        assert field in str(caught.value)

    def test_a_valid_knative_canary(self) -> None:
        canary = make_canary()
        assert knative.is_knative_target(canary)
        assert canary.spec.target_ref.api_version == API


# ============================================================================ traffic


class TestTrafficSimulator:
    def snapshot(self, obj: dict[str, Any]) -> Snapshot:
        label = "serving.knative.dev/revision"
        return Snapshot(
            NS,
            pods=(
                pod("podinfo-00001-deployment-a", {label: "podinfo-00001"}),
                pod("podinfo-00001-deployment-b", {label: "podinfo-00001"}),
                pod("podinfo-00002-deployment-a", {label: "podinfo-00002"}),
            ),
            knative_services=(obj,),
        )

    @pytest.mark.parametrize("weight", [0, 25, 100])
    def test_measured_split_follows_the_percents(self, weight: int) -> None:
        obj = knative.knative_service(make_canary(), ksvc(), Routes(100 - weight, weight))
        snapshot = self.snapshot(obj)
        rng = random.Random(7)
        n = 2000
        versions: Counter[str] = Counter()
        for i in range(n):
            resolution = resolve(
                snapshot, ServiceEntry(NS, "podinfo"), TrafficRequest(i, 0, "podinfo"), rng
            )
            assert resolution.service is not None
            assert resolution.via == "KnativeService/podinfo"
            versions[version_of(snapshot, resolution.service)] += 1
        share = versions["canary"] / n
        assert abs(share - weight / 100) <= binomial_tolerance(n, weight / 100)
        assert service_pods(snapshot, "podinfo-00002") == ["podinfo-00002-deployment-a"]
        assert len(service_pods(snapshot, "podinfo-00001")) == 2

    def test_latest_means_the_latest_ready_revision(self) -> None:
        # The new Revision is created but not ready: Knative still sends "latest" to the old.
        obj = knative.knative_service(make_canary(), ksvc(ready="podinfo-00001"), Routes(50, 50))
        snapshot = self.snapshot(obj)
        rng = random.Random(1)
        served = {
            resolve(
                snapshot, ServiceEntry(NS, "podinfo"), TrafficRequest(i, 0, "podinfo"), rng
            ).service
            for i in range(200)
        }
        assert served == {"podinfo-00001"}
