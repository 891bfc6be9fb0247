"""Initialization, the tick cadence, a missing target, deletion.

Reference: flagger.md 2.2 steps 1-12, 2.4, 2.15; checklist items 5, 8, 3 (the core's part).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from canary.core import (
    AlertKind,
    EnsurePrimary,
    EventType,
    Finalize,
    PauseTargetScaler,
    Readiness,
    ReconcileApex,
    ReconcilePrimaryScaler,
    ReconcileRouter,
    ReconcileServices,
    Routes,
    ScaleMode,
    ScaleTarget,
    SetRoutes,
)
from canary.model import CanaryStatus, Phase, Severity
from tests.core.harness import (
    World,
    canary_doc,
    run,
    running_status,
    running_world,
    single_step,
)

HPA = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "podinfo"}


def test_first_tick_creates_services_and_primary_and_requeues_soon() -> None:
    result = run(canary_doc({"stepWeight": 10}), 1, start="fresh")
    first = result[1]
    assert first.phase is Phase.INITIALIZING
    assert first.actions == (ReconcileServices(), EnsurePrimary())
    assert first.decision.requeue_after == 5.0
    assert first.status.condition("Promoted") is not None


def test_item8_initialization_order() -> None:
    """Checklist 8: services → primary (ready) → scaler (target's paused) → apex → target 0 → routes → Initialized."""
    result = run(canary_doc({"stepWeight": 10}, autoscalerRef=HPA), 2, start="fresh")
    second = result[2]
    assert second.phase is Phase.INITIALIZED
    assert second.actions == (
        ReconcileServices(),
        EnsurePrimary(),
        ReconcilePrimaryScaler(init=True),
        PauseTargetScaler(True),
        ReconcileApex(),
        ScaleTarget(ScaleMode.ZERO),
        ReconcileRouter(),
    )
    assert second.routes == Routes(100, 0, False)
    assert second.events == ("Initialization done! podinfo.test",)
    (alert,) = second.alerts
    assert (alert.kind, alert.severity, alert.message) == (
        AlertKind.INITIALIZED,
        Severity.INFO,
        "New Deployment detected, initialization completed.",
    )
    assert alert.with_metadata
    assert dict(alert.fields) == {
        "Target": "Deployment/podinfo.test",
        "Failed checks threshold": "1",
        "Progress deadline": "600s",
        "Traffic routing": "Weight step: 10 max: 100",
    }


def test_item8_initialized_status_records_the_promoted_template() -> None:
    """Checklist 7: lastPromotedSpec := lastAppliedSpec on Initialized."""
    world = World(revision="main@sha1:aaa", tracked_configs={"configmap/podinfo": "c1"})
    result = run(canary_doc({"stepWeight": 10}), 2, start="fresh", world=world)
    status = result[2].status
    assert status.last_applied_spec == "v1" and status.last_promoted_spec == "v1"
    assert dict(status.tracked_configs) == {"configmap/podinfo": "c1"}
    assert status.current_revision == status.last_good_revision == "main@sha1:aaa"
    assert (status.canary_weight, status.failed_checks, status.iterations) == (0, 0, 0)


def test_item8_waits_for_the_primary_before_scaling_the_target_down() -> None:
    """Zero downtime: the apex and the target are left alone until the primary is ready."""
    world = World(
        primary_exists=True,
        primary_readiness=Readiness.waiting("0 of 1 updated replicas are available"),
    )
    record = single_step(canary_doc({"stepWeight": 10}), CanaryStatus(), world)
    assert record.phase is Phase.INITIALIZING
    assert record.actions == (ReconcileServices(), EnsurePrimary())
    assert record.decision.events[0].type is EventType.WARNING
    assert record.events == (
        "podinfo-primary.test not ready: 0 of 1 updated replicas are available",
    )
    assert record.decision.requeue_after == 5.0


def test_skip_analysis_does_not_wait_for_the_primary_at_init() -> None:
    """Reference 2.4: with skipAnalysis the readiness wait is skipped."""
    world = World(primary_exists=True, primary_readiness=Readiness.waiting("rolling out"))
    record = single_step(canary_doc({"stepWeight": 10}, skipAnalysis=True), CanaryStatus(), world)
    assert record.phase is Phase.INITIALIZED


def test_primary_that_can_never_become_ready_at_init_is_reported_and_waits() -> None:
    """Difference from Flagger: no rollback before the primary ever served (see item 8 test)."""
    world = World(
        primary_exists=True, primary_readiness=Readiness.failed("ProgressDeadlineExceeded")
    )
    record = single_step(canary_doc({"stepWeight": 10}), CanaryStatus(), world)
    assert record.phase is Phase.INITIALIZING
    assert any(a.severity is Severity.ERROR for a in record.alerts)


def test_idle_canary_only_corrects_drift() -> None:
    """Reference 2.2 step 13: no new revision → no run; objects are still reconciled."""
    result = run(canary_doc({"stepWeight": 10}), 3, start="initialized")
    for record in result.ticks:
        assert record.phase is Phase.INITIALIZED
        assert record.actions == (
            ReconcileServices(),
            EnsurePrimary(),
            ReconcileApex(),
            ReconcileRouter(),
        )
        assert record.events == ()
        assert record.alerts == ()
        assert record.requests == ()


def test_missing_target_is_a_warning_and_nothing_else() -> None:
    world = running_world()
    world.target_exists = False
    record = single_step(canary_doc({"stepWeight": 10}), running_status(weight=10), world)
    assert record.actions == ()
    assert record.events == ("Deployment podinfo.test not found",)
    assert record.phase is Phase.PROGRESSING and record.weight == 10


def test_item3_missing_selector_label_stops_progress() -> None:
    """Checklist 3 (the core's part): a selector problem is a warning and no progress."""
    world = running_world(90, 10)
    world.selector_error = "selector label app, name or app.kubernetes.io/name not found in podinfo"
    record = single_step(canary_doc({"stepWeight": 10}), running_status(weight=10), world)
    assert record.actions == ()
    assert record.warnings == (world.selector_error,)
    assert record.status.message == world.selector_error
    assert record.requests == ()


@pytest.mark.parametrize(
    ("interval", "seconds"),
    [
        pytest.param("1m", 60, id="item5-1m"),
        pytest.param("15s", 15, id="item5-15s"),
        pytest.param("2s", 10, id="item5-under-10s-is-10s"),
    ],
)
def test_item5_ticks_follow_the_analysis_interval(interval: str, seconds: int) -> None:
    """Checklist 5: the loop runs at analysis.interval (min 10s)."""
    result = run(canary_doc({"stepWeight": 10, "interval": interval}), 4)
    gaps = [b.now - a.now for a, b in zip(result.ticks, result.ticks[1:], strict=False)]
    assert gaps == [timedelta(seconds=seconds)] * 3


def test_item5_default_interval_without_analysis_is_60s() -> None:
    result = run(canary_doc(None), 2, start="initialized")
    assert result[2].now - result[1].now == timedelta(seconds=60)


def test_deletion_with_revert_on_deletion_finalizes() -> None:
    world = running_world(90, 10)
    world.deleting = True
    record = single_step(
        canary_doc({"stepWeight": 10}, revertOnDeletion=True), running_status(weight=10), world
    )
    assert record.actions == (Finalize(),)
    assert record.events == ("Terminating canary podinfo.test", "Terminated canary podinfo.test")
    assert record.phase is Phase.TERMINATED


def test_deletion_without_revert_on_deletion_does_nothing() -> None:
    world = running_world(90, 10)
    world.deleting = True
    record = single_step(canary_doc({"stepWeight": 10}), running_status(weight=10), world)
    assert record.actions == ()
    assert record.phase is Phase.PROGRESSING


def test_item8_broken_primary_at_init_leaves_the_target_serving() -> None:
    world = World(
        primary_exists=True, primary_readiness=Readiness.failed("ProgressDeadlineExceeded")
    )
    record = single_step(canary_doc({"stepWeight": 10}), CanaryStatus(), world)
    assert ScaleTarget(ScaleMode.ZERO) not in record.actions
    assert not any(isinstance(a, SetRoutes) for a in record.actions)
