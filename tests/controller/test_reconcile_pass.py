"""One reconcile pass at a time, over fakes: what a pass writes, calls and records.

Modelled on Flagger's controller tests (``scheduler_deployment_test.go``): the real
`CanaryController` runs against `canary.testing`'s fakes (an in-memory API server,
the real workload and Service adapters over it, routers, hooks, analysis, Git and
Events in memory), and each test asserts what a user or another controller could see:
the Canary's status, the objects in the cluster, the traffic weights, the calls made.

No sleeps and no real time: a pass is awaited directly, and nothing here depends on
the timestamps the controller writes.
"""

from __future__ import annotations

from typing import Any

from canary.controller.reconcile import CanaryController
from canary.core import AlertKind, EventType, Outcome, Readiness, Routes
from canary.model import API_VERSION, Phase
from canary.ports import Conflict, Obj
from canary.testing import (
    FakeKube,
    Fakes,
    InjectedError,
    canary_manifest,
    controller,
    deployment,
    set_image,
)

NS = "test"
NAME = "podinfo"
REF = f"{NS}/{NAME}"


# ------------------------------------------------------------------ helpers


async def passes(ctl: CanaryController, count: int, name: str = NAME) -> list[float | None]:
    """Run ``count`` passes of one Canary; the requeue delay of each."""
    return [await ctl.run_pass(NS, name) for _ in range(count)]


async def initialized(*extra: Obj, **spec: Any) -> tuple[CanaryController, Fakes]:
    """A controller whose canary ``podinfo`` has finished initializing."""
    ctl, fakes = controller(deployment(), canary_manifest(**spec), *extra)
    await passes(ctl, 2)
    assert fakes.status(NAME, NS).phase is Phase.INITIALIZED
    return ctl, fakes


def image_of(kube: FakeKube, name: str) -> str:
    obj = kube.peek("apps/v1", "Deployment", name, NS)
    assert obj is not None, name
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


def replicas_of(kube: FakeKube, name: str) -> int:
    obj = kube.peek("apps/v1", "Deployment", name, NS)
    assert obj is not None, name
    return int(obj["spec"]["replicas"])


def selector_of(kube: FakeKube, service: str) -> dict[str, str]:
    obj = kube.peek("v1", "Service", service, NS)
    assert obj is not None, service
    return dict(obj["spec"]["selector"])


# ------------------------------------------------------------------ initialization


async def test_the_first_pass_creates_the_primary_and_services_and_asks_to_come_back_soon() -> None:
    ctl, fakes = controller(deployment(image="podinfo:v1"), canary_manifest())

    requeue = await ctl.run_pass(NS, NAME)

    assert fakes.status(NAME, NS).phase is Phase.INITIALIZING
    primary = fakes.kube.peek("apps/v1", "Deployment", "podinfo-primary", NS)
    assert primary is not None
    assert primary["spec"]["selector"]["matchLabels"] == {"app": "podinfo-primary"}
    assert primary["metadata"]["ownerReferences"][0]["kind"] == "Canary"
    assert image_of(fakes.kube, "podinfo-primary") == "podinfo:v1"
    assert selector_of(fakes.kube, "podinfo-primary") == {"app": "podinfo-primary"}
    assert selector_of(fakes.kube, "podinfo-canary") == {"app": "podinfo"}
    # the target keeps serving until the primary is ready: not scaled, no apex, no routes
    assert replicas_of(fakes.kube, "podinfo") == 2
    assert fakes.kube.peek("v1", "Service", "podinfo", NS) is None
    assert fakes.router("istio").routes == {}
    assert requeue is not None and 0 < requeue < 60


async def test_a_ready_primary_takes_the_traffic_and_the_target_is_scaled_to_zero() -> None:
    ctl, fakes = controller(deployment(), canary_manifest())

    requeue = (await passes(ctl, 2))[-1]

    status = fakes.status(NAME, NS)
    assert status.phase is Phase.INITIALIZED
    assert status.canary_weight == 0
    assert selector_of(fakes.kube, "podinfo") == {"app": "podinfo-primary"}
    assert replicas_of(fakes.kube, "podinfo") == 0
    assert fakes.router("istio").routes[REF] == Routes(100, 0)
    assert fakes.events.messages(REF) == ["Initialization done! podinfo.test"]
    assert [a.kind for a in fakes.notifier.alerts] == [AlertKind.INITIALIZED]
    assert requeue == 60.0  # the analysis interval, 1m


async def test_a_primary_that_is_not_ready_keeps_the_canary_initializing() -> None:
    ctl, fakes = controller(deployment(), canary_manifest())
    fakes.workloads.set_readiness(NS, "podinfo-primary", Readiness.waiting("0 of 2 ready"))

    await passes(ctl, 3)

    assert fakes.status(NAME, NS).phase is Phase.INITIALIZING
    assert replicas_of(fakes.kube, "podinfo") == 2  # never scaled down under a sick primary
    assert fakes.kube.peek("v1", "Service", "podinfo", NS) is None
    assert any("0 of 2 ready" in m for m in fakes.events.warnings(REF))


async def test_an_idle_canary_writes_nothing_and_tells_nobody() -> None:
    ctl, fakes = await initialized()
    writes, events = len(fakes.kube.writes), len(fakes.events.recorded)
    alerts = len(fakes.notifier.alerts)

    await passes(ctl, 3)

    assert fakes.kube.writes[writes:] == []
    assert fakes.events.recorded[events:] == []
    assert len(fakes.notifier.alerts) == alerts
    assert fakes.analyzer.calls == []


# ------------------------------------------------------------------ a run


async def test_a_new_revision_scales_the_target_up_and_starts_progressing() -> None:
    ctl, fakes = await initialized()
    set_image(fakes.kube, NAME, NS, "podinfo:v2")

    await ctl.run_pass(NS, NAME)

    status = fakes.status(NAME, NS)
    assert status.phase is Phase.PROGRESSING
    assert status.canary_weight == 0
    assert replicas_of(fakes.kube, "podinfo") == 2  # the primary's replica count
    assert image_of(fakes.kube, "podinfo-primary") != "podinfo:v2"
    assert "New revision detected! Scaling up podinfo.test" in fakes.events.messages(REF)
    assert fakes.notifier.alerts[-1].kind is AlertKind.STARTED


async def test_each_passing_analysis_shifts_one_step_of_weight_to_the_canary() -> None:
    ctl, fakes = await initialized()
    set_image(fakes.kube, NAME, NS, "podinfo:v2")

    weights = []
    for _ in range(4):  # start; 10 (after the pre-rollout hooks); 20, 30 (each after analysis)
        await ctl.run_pass(NS, NAME)
        weights.append(fakes.status(NAME, NS).canary_weight)

    assert weights == [0, 10, 20, 30]
    assert fakes.router("istio").weights_set(REF) == [(90, 10), (80, 20), (70, 30)]
    assert fakes.router("istio").routes[REF] == Routes(70, 30)
    assert len(fakes.analyzer.called("analyze", REF)) == 2
    assert fakes.status(NAME, NS).analysis[0].outcome == "Pass"


async def test_promotion_copies_the_template_to_the_primary_and_scales_the_target_down() -> None:
    ctl, fakes = await initialized()
    set_image(fakes.kube, NAME, NS, "podinfo:v2")

    await passes(ctl, 7)

    status = fakes.status(NAME, NS)
    assert status.phase is Phase.SUCCEEDED
    assert image_of(fakes.kube, "podinfo-primary") == "podinfo:v2"
    assert replicas_of(fakes.kube, "podinfo") == 0
    assert fakes.router("istio").routes[REF] == Routes(100, 0)
    assert status.last_promoted_spec == status.last_applied_spec
    messages = fakes.events.messages(REF)
    assert messages.count("Copying podinfo.test template spec to podinfo-primary.test") == 1
    assert messages.count("Promotion completed! Scaling down podinfo.test") == 1
    assert fakes.workloads.methods(REF).count("promote") == 1
    assert fakes.notifier.alerts[-1].kind is AlertKind.PROMOTED


async def test_failed_checks_reaching_the_threshold_roll_back_to_the_primary() -> None:
    ctl, fakes = await initialized()
    set_image(fakes.kube, NAME, NS, "podinfo:bad")
    await passes(ctl, 2)  # started, then 10% of the traffic on the canary
    fakes.analyzer.default = Outcome.FAIL

    await passes(ctl, 3)  # threshold 2: two failed checks, then the rollback

    status = fakes.status(NAME, NS)
    assert status.phase is Phase.FAILED
    assert status.canary_weight == 0
    assert fakes.router("istio").routes[REF] == Routes(100, 0)
    assert replicas_of(fakes.kube, "podinfo") == 0
    assert image_of(fakes.kube, "podinfo-primary") == "ghcr.io/stefanprodan/podinfo:6.0.0"
    assert fakes.workloads.methods(REF).count("promote") == 0
    promoted = status.condition("Promoted")
    assert promoted is not None and promoted.status == "False"
    assert any(m.startswith("Rolling back podinfo.test") for m in fakes.events.warnings(REF))
    assert AlertKind.THRESHOLD_REACHED in [a.kind for a in fakes.notifier.alerts]


async def test_a_canary_whose_rollout_failed_for_good_is_rolled_back_at_once() -> None:
    ctl, fakes = await initialized()
    set_image(fakes.kube, NAME, NS, "podinfo:crashloop")
    await ctl.run_pass(NS, NAME)
    fakes.workloads.set_readiness(NS, NAME, Readiness.failed("progress deadline exceeded"))

    await ctl.run_pass(NS, NAME)

    assert fakes.status(NAME, NS).phase is Phase.FAILED
    assert replicas_of(fakes.kube, "podinfo") == 0
    assert fakes.analyzer.calls == []  # a canary that never became ready is not analysed
    assert any("progress deadline exceeded" in m for m in fakes.events.warnings(REF))


async def test_a_closed_confirm_rollout_gate_holds_the_revision_until_it_opens() -> None:
    gate = {"name": "approve", "type": "confirm-rollout", "url": "http://gate.test/approve"}
    analysis = {"interval": "1m", "threshold": 2, "stepWeight": 10, "maxWeight": 30}
    ctl, fakes = await initialized(analysis={**analysis, "webhooks": [gate]})
    fakes.webhooks.answer("approve", False)
    set_image(fakes.kube, NAME, NS, "podinfo:v2")

    await passes(ctl, 2)

    assert fakes.status(NAME, NS).phase is Phase.WAITING
    assert replicas_of(fakes.kube, "podinfo") == 0
    assert [a.kind for a in fakes.notifier.alerts].count(AlertKind.WAITING_APPROVAL) == 1
    assert len(fakes.webhooks.called("call", REF)) == 2  # asked on every pass

    fakes.webhooks.answer("approve", True)
    await ctl.run_pass(NS, NAME)

    assert fakes.status(NAME, NS).phase is Phase.PROGRESSING
    assert replicas_of(fakes.kube, "podinfo") == 2


# ------------------------------------------------------------------ status write conflicts


async def test_a_conflict_caused_by_metadata_alone_writes_the_same_decision_again() -> None:
    ctl, fakes = await initialized()
    set_image(fakes.kube, NAME, NS, "podinfo:v2")
    await ctl.run_pass(NS, NAME)

    def annotate(kube: FakeKube) -> None:
        kube.edit(
            API_VERSION,
            "Canary",
            NAME,
            NS,
            lambda obj: obj["metadata"].setdefault("annotations", {}).update({"team": "web"}),
        )

    fakes.kube.before("patch", annotate, kind="Canary", subresource="status")
    requeue = await ctl.run_pass(NS, NAME)

    assert requeue == 60.0
    assert fakes.status(NAME, NS).canary_weight == 10
    assert fakes.canary(NAME, NS)["metadata"]["annotations"] == {"team": "web"}
    assert fakes.router("istio").weights_set(REF) == [(90, 10)]  # the step was not repeated
    assert fakes.events.messages(REF).count("Advance podinfo.test canary weight 10") == 1


async def test_a_conflict_caused_by_a_spec_change_is_decided_again_without_a_second_step() -> None:
    ctl, fakes = await initialized()
    set_image(fakes.kube, NAME, NS, "podinfo:v2")
    await ctl.run_pass(NS, NAME)

    def edit_spec(kube: FakeKube) -> None:
        kube.edit(
            API_VERSION,
            "Canary",
            NAME,
            NS,
            lambda obj: obj["spec"].update({"progressDeadlineSeconds": 900}),
        )

    fakes.kube.before("patch", edit_spec, kind="Canary", subresource="status")
    requeue = await ctl.run_pass(NS, NAME)

    assert requeue == 0.0  # run again at once, on the new spec
    assert fakes.status(NAME, NS).canary_weight == 0  # nothing recorded ...
    assert "Advance podinfo.test canary weight 10" not in fakes.events.messages(REF)  # nor told

    await ctl.run_pass(NS, NAME)

    # ... and the next pass records the step the routes already took instead of taking another
    assert fakes.status(NAME, NS).canary_weight == 10
    assert fakes.router("istio").weights_set(REF) == [(90, 10)]


async def test_a_status_write_that_keeps_conflicting_runs_no_effects() -> None:
    ctl, fakes = await initialized()
    set_image(fakes.kube, NAME, NS, "podinfo:v2")
    events, alerts = len(fakes.events.recorded), len(fakes.notifier.alerts)
    fakes.kube.fail(
        "patch",
        kind="Canary",
        subresource="status",
        error=Conflict("stale", status=409),
        times=None,
    )

    requeue = await ctl.run_pass(NS, NAME)

    assert requeue == 0.0
    assert fakes.status(NAME, NS).phase is Phase.INITIALIZED
    assert fakes.events.recorded[events:] == []  # no Event and no alert for an unrecorded step
    assert len(fakes.notifier.alerts) == alerts
    assert len(fakes.kube.calls_of("patch", "Canary")) >= 2  # it did try again


# ------------------------------------------------------------------ failures stay contained


async def test_a_router_error_leaves_a_warning_and_the_status_as_it_was_until_a_retry() -> None:
    ctl, fakes = await initialized()
    set_image(fakes.kube, NAME, NS, "podinfo:v2")
    await ctl.run_pass(NS, NAME)
    fakes.router("istio").fail("set_routes", InjectedError("VirtualService admission denied"))

    requeue = await ctl.run_pass(NS, NAME)

    assert requeue is not None and requeue < 60  # retried sooner than the interval
    assert fakes.status(NAME, NS).canary_weight == 0
    assert fakes.events.warnings(REF)[-1] == "SetRoutes failed: VirtualService admission denied"
    assert "Advance podinfo.test canary weight 10" not in fakes.events.messages(REF)

    await ctl.run_pass(NS, NAME)

    assert fakes.status(NAME, NS).canary_weight == 10


async def test_a_router_error_of_one_canary_touches_no_other_canary() -> None:
    ctl, fakes = controller(
        deployment(),
        canary_manifest(),
        deployment("backend"),
        canary_manifest("backend"),
    )
    for name in (NAME, "backend"):
        await passes(ctl, 2, name)
        set_image(fakes.kube, name, NS, f"{name}:v2")
    fakes.router("istio").fail("set_routes", canary=REF, times=None)

    before = len(fakes.kube.calls)
    await passes(ctl, 3)
    during = fakes.kube.calls[before:]
    await passes(ctl, 3, "backend")

    assert fakes.status(NAME, NS).phase is Phase.PROGRESSING
    assert fakes.status(NAME, NS).canary_weight == 0
    assert fakes.status("backend", NS).canary_weight == 20
    assert fakes.router("istio").routes["test/backend"] == Routes(80, 20)
    assert not [c for c in during if c.name.startswith("backend")]
    assert fakes.events.warnings("test/backend") == []


async def test_an_api_outage_while_creating_the_primary_is_reported_and_retried() -> None:
    ctl, fakes = controller(deployment(), canary_manifest())
    fakes.kube.fail("create", kind="Deployment")

    requeue = await ctl.run_pass(NS, NAME)

    assert requeue is not None and requeue < 60
    assert fakes.status(NAME, NS).phase is Phase.NONE  # nothing recorded
    assert fakes.kube.peek("apps/v1", "Deployment", "podinfo-primary", NS) is None
    assert fakes.events.warnings(REF)[-1].startswith("EnsurePrimary failed:")

    await ctl.run_pass(NS, NAME)

    assert fakes.status(NAME, NS).phase is Phase.INITIALIZING
    assert fakes.kube.peek("apps/v1", "Deployment", "podinfo-primary", NS) is not None


async def test_an_invalid_spec_is_reported_once_and_nothing_is_created() -> None:
    broken = canary_manifest()
    broken["spec"]["targetRef"] = {"kind": "Deployment"}  # no name
    ctl, fakes = controller(deployment(), broken)

    await passes(ctl, 2)

    status = fakes.status(NAME, NS)
    condition = status.condition("SpecValid")
    assert condition is not None and condition.status == "False"
    assert "spec.targetRef.name" in condition.message
    assert [(e.type, e.message.split(":")[0]) for e in fakes.events.recorded] == [
        (EventType.WARNING, "Invalid Canary spec")
    ]
    assert {(c.kind, c.subresource) for c in fakes.kube.writes} == {("Canary", "status")}


async def test_a_second_canary_on_the_same_target_waits_and_changes_nothing() -> None:
    ctl, fakes = await initialized()
    fakes.kube.clock.advance(60)
    fakes.kube.seed(canary_manifest("podinfo-rival", target=NAME))
    before = len(fakes.kube.calls)

    await passes(ctl, 2, "podinfo-rival")

    rival = fakes.status("podinfo-rival", NS)
    assert rival.phase is Phase.NONE
    assert rival.message.startswith("Canary podinfo already manages Deployment podinfo.test")
    writes = [c for c in fakes.kube.calls[before:] if c.writes]
    assert [(c.verb, c.name, c.subresource) for c in writes] == [
        ("patch", "podinfo-rival", "status")
    ]
    assert len(fakes.events.warnings("test/podinfo-rival")) == 1
    assert fakes.status(NAME, NS).phase is Phase.INITIALIZED


# ------------------------------------------------------------------ leadership and deletion


async def test_a_standby_replica_reads_nothing_and_writes_nothing() -> None:
    ctl, fakes = controller(deployment(), canary_manifest())
    fakes.leader.step_down()

    requeue = await ctl.run_pass(NS, NAME)

    assert requeue is not None and requeue > 0
    assert fakes.kube.calls == []
    assert fakes.workloads.calls == [] and fakes.events.recorded == []


async def test_a_deleted_canary_gives_the_target_and_the_apex_back_then_lets_go() -> None:
    apex = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {"selector": {"app": "podinfo"}, "ports": [{"name": "http", "port": 9898}]},
    }
    ctl, fakes = await initialized(apex, revertOnDeletion=True)
    assert fakes.canary(NAME, NS)["metadata"]["finalizers"] == ["finalizer.canary.gitops.dev"]
    assert selector_of(fakes.kube, "podinfo") == {"app": "podinfo-primary"}  # taken over

    assert await fakes.kube.delete(API_VERSION, "Canary", NAME, NS)
    requeue = await ctl.run_pass(NS, NAME)

    assert requeue is None  # nothing more to do for it
    assert fakes.kube.peek(API_VERSION, "Canary", NAME, NS) is None  # the finalizer let go
    assert replicas_of(fakes.kube, "podinfo") == 2
    assert selector_of(fakes.kube, "podinfo") == {"app": "podinfo"}
    assert fakes.router("istio").methods(REF)[-1] == "finalize"
    assert "Terminated canary podinfo.test" in fakes.events.messages(REF)
