"""Failed checks, thresholds, readiness and rollback.

Reference: flagger.md 2.2 steps 14, 18, 23; 2.7; 2.8 (handleFailedPromotion); 2.9;
5.1; checklist items 14, 16, 17, 34, 35, 42 (rollback alerts).
"""

from __future__ import annotations

import pytest

from canary.core import (
    AlertKind,
    CallHooks,
    EventType,
    Outcome,
    PauseTargetScaler,
    Promote,
    Readiness,
    ScaleMode,
    ScaleTarget,
    SetRoutes,
)
from canary.model import HookType, Phase, Severity
from tests.core.harness import (
    Script,
    canary_doc,
    fail_from,
    finished,
    run,
    running_status,
    running_world,
    single_step,
)


@pytest.mark.parametrize(
    ("threshold", "first_failure"),
    [
        pytest.param(1, 3, id="item17-threshold1-fail-from-3"),
        pytest.param(2, 3, id="item17-threshold2-fail-from-3"),
        pytest.param(2, 5, id="item17-threshold2-fail-from-5"),
        pytest.param(3, 4, id="item17-threshold3-fail-from-4"),
        pytest.param(5, 3, id="item17-threshold5-fail-from-3"),
    ],
)
def test_item17_rolls_back_on_the_tick_after_the_threshold_th_failed_check(
    threshold: int, first_failure: int
) -> None:
    """Threshold n, failing metrics from tick k → rolled back on tick k + n."""
    doc = canary_doc({"stepWeight": 10, "maxWeight": 100, "threshold": threshold})
    result = run(doc, 20, Script(metrics=fail_from(first_failure)), until=finished)
    rollback_tick = first_failure + threshold
    assert result.last.tick == rollback_tick
    assert result.last.phase is Phase.FAILED
    counts = [t.failed_checks for t in result.ticks[first_failure - 1 : rollback_tick - 1]]
    assert counts == list(range(1, threshold + 1))
    # no weight change on a failing tick
    for record in result.ticks[first_failure - 1 : rollback_tick - 1]:
        assert record.set_routes == ()


def test_item17_threshold_zero_means_one() -> None:
    doc = canary_doc({"stepWeight": 10, "threshold": 0})
    result = run(doc, 10, Script(metrics=fail_from(3)), until=finished)
    assert result.last.tick == 4 and result.last.phase is Phase.FAILED


def test_item17_failed_checks_are_cumulative_in_a_run() -> None:
    """A passing check does not reset failedChecks."""
    doc = canary_doc({"stepWeight": 10, "threshold": 2})
    result = run(doc, 12, Script(metrics={3: Outcome.FAIL, 6: Outcome.FAIL}), until=finished)
    assert [t.failed_checks for t in result.ticks[:6]] == [0, 0, 1, 1, 1, 2]
    assert result.last.tick == 7 and result.last.phase is Phase.FAILED
    assert result.canary_weights_set()[:3] == [10, 20, 30]


def test_item34_rollback_tick() -> None:
    """Checklist 34: routes 100/0 → target 0 → Failed with counters 0 → post-rollout (Failed)."""
    doc = canary_doc(
        {"stepWeight": 10, "threshold": 2},
        autoscalerRef={
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "name": "podinfo",
        },
    )
    record = single_step(doc, running_status(weight=30, failed_checks=2), running_world(70, 30))
    assert record.phase is Phase.FAILED
    moves = [
        a
        for a in record.actions
        if isinstance(a, SetRoutes | ScaleTarget | PauseTargetScaler | Promote)
    ]
    assert moves == [SetRoutes(100, 0, False), PauseTargetScaler(True), ScaleTarget(ScaleMode.ZERO)]
    assert (record.weight, record.failed_checks, record.iterations) == (0, 0, 0)
    assert record.events == (
        "Rolling back podinfo.test failed checks threshold reached 2",
        "Canary failed! Scaling down podinfo.test",
    )
    assert [e.type for e in record.decision.events] == [EventType.WARNING, EventType.WARNING]
    (alert,) = record.alerts
    assert (alert.kind, alert.severity, alert.message) == (
        AlertKind.THRESHOLD_REACHED,
        Severity.ERROR,
        "Failed checks threshold reached 2",
    )
    assert alert.failed_checks == 2 and alert.threshold == 2
    assert record.called_hooks == (CallHooks(HookType.POST_ROLLOUT, "Failed"),)
    assert record.requests == ()  # no analysis on the rollback tick
    assert record.status.last_promoted_spec == "v1"  # the primary is untouched


def test_item34_after_the_rollback_the_canary_stays_failed_and_quiet() -> None:
    result = run(canary_doc({"stepWeight": 10}), 8, Script(metrics=fail_from(3)))
    assert result.first(Phase.FAILED) == 4
    for record in result.ticks[4:]:
        assert record.phase is Phase.FAILED
        assert record.set_routes == ()
        assert record.alerts == ()
        assert not any(isinstance(a, ScaleTarget) for a in record.actions)


# ------------------------------------------------------------------ readiness (items 14, 35)


@pytest.mark.parametrize(
    ("phase", "which"),
    [
        pytest.param(Phase.PROGRESSING, "canary", id="item14-canary-retriable-progressing"),
        pytest.param(Phase.PROGRESSING, "primary", id="item14-primary-retriable-progressing"),
        pytest.param(
            Phase.WAITING_PROMOTION, "canary", id="item14-canary-retriable-waiting-promotion"
        ),
        pytest.param(Phase.PROMOTING, "primary", id="item33-primary-retriable-promoting"),
        pytest.param(Phase.FINALISING, "primary", id="item14-primary-retriable-finalising"),
    ],
)
def test_item14_retriable_readiness_ends_the_tick_without_counting(
    phase: Phase, which: str
) -> None:
    doc = canary_doc({"stepWeight": 10, "threshold": 5})
    status = running_status(phase, weight=30, failed_checks=1)
    script = (
        Script(
            canary_ready=Readiness.waiting(
                "1 of 2 (readyThreshold 100%) updated replicas are available"
            )
        )
        if which == "canary"
        else Script(
            primary_ready=Readiness.waiting(
                "1 of 2 (readyThreshold 100%) updated replicas are available"
            )
        )
    )
    record = single_step(doc, status, running_world(70, 30), script)
    assert record.phase is phase
    assert (record.weight, record.failed_checks, record.iterations) == (30, 1, 0)
    assert record.set_routes == ()
    assert record.requests == ()
    name = "podinfo.test" if which == "canary" else "podinfo-primary.test"
    assert record.warnings == (
        f"{name} not ready: 1 of 2 (readyThreshold 100%) updated replicas are available",
    )
    assert record.alerts == ()


def test_item14_progress_deadline_rolls_back_with_an_error_alert() -> None:
    """Checklist 14/34: non-retriable canary readiness → rollback.
    Difference (machine.py rollback): we also alert on this path (Flagger #1663, #1816)."""
    result = run(
        canary_doc({"stepWeight": 10, "maxWeight": 50}),
        6,
        Script(
            canary_ready={3: Readiness.failed("deployment podinfo exceeded its progress deadline")}
        ),
        until=finished,
    )
    assert result.phases() == [Phase.PROGRESSING, Phase.PROGRESSING, Phase.FAILED]
    failed = result[3]
    assert failed.set_routes == (SetRoutes(100, 0, False),)
    assert ScaleTarget(ScaleMode.ZERO) in failed.actions
    assert failed.warnings[0] == (
        "Rolling back podinfo.test progress deadline exceeded deployment podinfo exceeded its progress deadline"
    )
    (alert,) = failed.alerts
    assert (alert.kind, alert.severity) == (AlertKind.PROGRESS_DEADLINE, Severity.ERROR)
    assert alert.message.startswith("Progress deadline exceeded ")
    assert not failed.analysed


def test_item42_progress_deadline_alert_message() -> None:
    record = single_step(
        canary_doc({"stepWeight": 10}),
        running_status(weight=10),
        running_world(90, 10),
        Script(canary_ready=Readiness.failed("timeout")),
    )
    assert [a.message for a in record.alerts] == ["Progress deadline exceeded timeout"]


def test_primary_never_ready_during_analysis_rolls_back() -> None:
    """Reference 2.2 step 14: non-retriable primary before promotion → rollback."""
    record = single_step(
        canary_doc({"stepWeight": 10}),
        running_status(weight=20),
        running_world(80, 20),
        Script(primary_ready=Readiness.failed("ProgressDeadlineExceeded")),
    )
    assert record.phase is Phase.FAILED
    assert record.set_routes == (SetRoutes(100, 0, False),)
    assert [a.severity for a in record.alerts] == [Severity.ERROR]


@pytest.mark.parametrize(
    "phase", [Phase.PROMOTING, Phase.FINALISING], ids=["item35-promoting", "item35-finalising"]
)
def test_item35_failed_promotion_serves_the_canary(phase: Phase) -> None:
    """Checklist 35: routes 0/100, canary kept, Failed with canaryWeight 100, error alert."""
    record = single_step(
        canary_doc({"stepWeight": 50}),
        running_status(phase, weight=100),
        running_world(0, 100),
        Script(primary_ready=Readiness.failed("ProgressDeadlineExceeded")),
    )
    assert record.phase is Phase.FAILED
    assert record.weight == 100
    assert record.set_routes == (SetRoutes(0, 100, False),)
    assert not any(isinstance(a, ScaleTarget) for a in record.actions)
    assert record.warnings == (
        "Promotion of podinfo.test failed, primary not ready: ProgressDeadlineExceeded",
    )
    (alert,) = record.alerts
    assert (alert.kind, alert.severity, alert.message) == (
        AlertKind.PROMOTION_FAILED,
        Severity.ERROR,
        "Promotion failed, primary not ready: ProgressDeadlineExceeded",
    )
    assert record.called_hooks == (CallHooks(HookType.POST_ROLLOUT, "Failed"),)


def test_item35_failed_promotion_in_a_run() -> None:
    result = run(
        canary_doc({"stepWeight": 50}),
        8,
        Script(primary_ready={5: Readiness.failed("ProgressDeadlineExceeded")}),
        until=finished,
    )
    assert result.phases() == [Phase.PROGRESSING] * 3 + [Phase.PROMOTING, Phase.FAILED]
    assert result.last.routes is not None and (
        result.last.routes.primary,
        result.last.routes.canary,
    ) == (0, 100)
    assert result.world.target_replicas == 1


def test_threshold_is_not_checked_once_promoting() -> None:
    """Reference 2.2 step 23 applies to Progressing/WaitingPromotion only."""
    record = single_step(
        canary_doc({"stepWeight": 50, "threshold": 1}),
        running_status(Phase.PROMOTING, weight=100, failed_checks=3),
        running_world(0, 100),
    )
    assert record.phase is Phase.FINALISING


def test_rollback_reason_names_the_failing_metric() -> None:
    result = run(canary_doc({"stepWeight": 10}), 6, Script(metrics=fail_from(3)), until=finished)
    assert result[3].warnings == (
        "Halt podinfo.test advancement request-success-rate fail (value 80.0)",
    )
    assert result.last.status.message.startswith(
        "Rolled back podinfo.test: failed checks threshold reached 1"
    )
