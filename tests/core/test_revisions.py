"""When a run starts, restarts, or does not: revision detection.

Reference: flagger.md 2.2 steps 13, 16, 17; 2.5; 2.10; 2.14; checklist items 9, 10, 11, 12.
"""

from __future__ import annotations

from typing import Any

import pytest

from canary.core import (
    AlertKind,
    HookRequest,
    Outcome,
    PauseTargetScaler,
    Readiness,
    ScaleMode,
    ScaleTarget,
    SetRoutes,
)
from canary.model import CanaryStatus, HookType, Phase, Severity
from tests.core.harness import (
    Script,
    World,
    canary_doc,
    fail_from,
    hook,
    new_revision,
    run,
    running_status,
    running_world,
    single_step,
)

CANARY = canary_doc({"stepWeight": 10, "maxWeight": 50})


def idle(
    phase: Phase, applied: str, promoted: str, configs: dict[str, str] | None = None
) -> CanaryStatus:
    return CanaryStatus(
        phase=phase,
        last_applied_spec=applied,
        last_promoted_spec=promoted,
        tracked_configs=configs or {},
    )


def idle_world(template: str, configs: dict[str, str] | None = None) -> World:
    return World(
        template_hash=template,
        tracked_configs=configs or {},
        primary_exists=True,
        primary_template="v1",
        routes=None,
    )


DETECTION: list[Any] = [
    pytest.param(
        idle(Phase.INITIALIZED, "v1", "v1"), idle_world("v2"), True, id="item9-new-template-hash"
    ),
    pytest.param(
        idle(Phase.INITIALIZED, "v1", "v1"), idle_world("v1"), False, id="item9-same-template"
    ),
    pytest.param(
        idle(Phase.SUCCEEDED, "v2", "v2"), idle_world("v3"), True, id="item9-after-success-new-hash"
    ),
    pytest.param(
        idle(Phase.SUCCEEDED, "v2", "v2"), idle_world("v2"), False, id="item9-after-success-same"
    ),
    pytest.param(
        idle(Phase.FAILED, "v2", "v1"),
        idle_world("v1"),
        False,
        id="item9-manual-rollback-to-promoted-hash",
    ),
    pytest.param(
        idle(Phase.SUCCEEDED, "v3", "v3"),
        idle_world("v1"),
        True,
        id="item9-older-hash-that-is-not-the-promoted-one",
    ),
    pytest.param(
        idle(Phase.FAILED, "v2", "v1"),
        idle_world("v2"),
        False,
        id="item10-failed-same-bad-template",
    ),
    pytest.param(
        idle(Phase.FAILED, "v2", "v1"), idle_world("v3"), True, id="item10-failed-new-template"
    ),
    pytest.param(
        idle(Phase.INITIALIZED, "v1", "v1", {"configmap/podinfo": "a"}),
        idle_world("v1", {"configmap/podinfo": "b"}),
        True,
        id="item9-tracked-configmap-changed",
    ),
    pytest.param(
        idle(Phase.INITIALIZED, "v1", "v1", {"configmap/podinfo": "a"}),
        idle_world("v1", {"configmap/podinfo": "a", "secret/podinfo": "s"}),
        True,
        id="item9-tracked-secret-added",
    ),
    pytest.param(
        idle(Phase.INITIALIZED, "v1", "v1", {"configmap/podinfo": "a", "secret/podinfo": "s"}),
        idle_world("v1", {"configmap/podinfo": "a"}),
        True,
        id="item9-tracked-secret-removed",
    ),
    pytest.param(
        idle(Phase.INITIALIZED, "v1", "v1", {"configmap/podinfo": "a"}),
        idle_world("v1", {"configmap/podinfo": "a"}),
        False,
        id="item9-tracked-configs-same",
    ),
    pytest.param(
        idle(Phase.SUCCEEDED, "", "v1"), idle_world("v1"), True, id="item9-empty-lastAppliedSpec"
    ),
]


@pytest.mark.parametrize(("status", "world", "starts"), DETECTION)
def test_item9_item10_when_a_run_starts(status: CanaryStatus, world: World, starts: bool) -> None:
    """Checklist 9/10: a run starts only on a new template hash or tracked config checksum."""
    record = single_step(CANARY, status, world)
    assert (record.phase is Phase.PROGRESSING) is starts
    assert any(a == ScaleTarget(ScaleMode.UP) for a in record.actions) is starts
    if not starts:
        assert record.phase is status.phase
        assert record.alerts == ()


def test_item10_failed_does_not_restart_on_reapplying_the_bad_template() -> None:
    """Checklist 10, over many ticks (and the bad hash stays recorded)."""
    result = run(CANARY, 8, Script(metrics=fail_from(3)))
    failed_at = result.first(Phase.FAILED)
    assert failed_at == 4
    for record in result.ticks[failed_at:]:
        assert record.phase is Phase.FAILED
        assert ScaleTarget(ScaleMode.UP) not in record.actions
        assert record.status.last_applied_spec == "v2"


def test_item10_failed_restarts_on_a_pod_template_change() -> None:
    result = run(CANARY, 7, Script(metrics=fail_from(3), before={6: new_revision("v3")}))
    assert result.phases()[:6] == [Phase.PROGRESSING] * 3 + [Phase.FAILED] * 2 + [Phase.PROGRESSING]
    assert ScaleTarget(ScaleMode.UP) in result[6].actions
    assert result[6].status.last_applied_spec == "v3"


def test_item11_starting_a_run() -> None:
    """Checklist 11: gate → scale target up → Progressing with counters 0 → end of tick."""
    doc = canary_doc(
        {
            "stepWeight": 10,
            "webhooks": [hook("gate", "confirm-rollout"), hook("pre", "pre-rollout")],
        },
        autoscalerRef={
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "name": "podinfo",
        },
    )
    status = idle(Phase.SUCCEEDED, "v1", "v1").with_(failed_checks=2, iterations=3, canary_weight=0)
    world = idle_world("v2")
    world.revision = "main@sha1:bbb"
    record = single_step(doc, status, world)
    assert record.phase is Phase.PROGRESSING
    # only the gate was asked: the scale-up tick does no analysis (reference 2.2 step 16)
    assert record.requests == (HookRequest("gate", HookType.CONFIRM_ROLLOUT, "Succeeded"),)
    ups = [a for a in record.actions if isinstance(a, ScaleTarget | PauseTargetScaler)]
    assert ups == [PauseTargetScaler(False), ScaleTarget(ScaleMode.UP)]
    assert not any(isinstance(a, SetRoutes) for a in record.actions)
    assert (record.weight, record.failed_checks, record.iterations) == (0, 0, 0)
    assert record.status.last_applied_spec == "v2"
    assert record.status.current_revision == "main@sha1:bbb"
    assert record.status.run_start_time == "2026-03-01T12:00:00Z"
    assert record.events == (
        "Confirm-rollout check gate passed",
        "New revision detected! Scaling up podinfo.test",
    )
    (alert,) = record.alerts
    assert (alert.kind, alert.severity, alert.message) == (
        AlertKind.STARTED,
        Severity.INFO,
        "New revision detected, progressing canary analysis.",
    )
    assert alert.with_metadata


def test_item12_new_revision_mid_run_restarts_without_leaving_progressing() -> None:
    """Checklist 12 / reference 2.10: routes 100/0, counters 0, still Progressing, no re-scale."""
    result = run(
        CANARY,
        7,
        Script(metrics={4: Outcome.FAIL}, before={5: new_revision("v3")}),
    )
    assert [r.canary for r in (t.routes for t in result.ticks[:4]) if r] == [0, 10, 20, 20]
    assert result[4].failed_checks == 1
    restart = result[5]
    assert restart.phase is Phase.PROGRESSING
    assert restart.set_routes == (SetRoutes(100, 0, False),)
    assert (restart.weight, restart.failed_checks, restart.iterations) == (0, 0, 0)
    assert restart.status.last_applied_spec == "v3"
    assert not any(isinstance(a, ScaleTarget) for a in restart.actions)
    assert restart.events == ("New revision detected! Restarting analysis for podinfo.test",)
    assert restart.requests == ()
    # the next tick starts the analysis again from weight 0
    assert result[6].has_event("Starting canary analysis for podinfo.test")
    assert result[6].routes is not None and result[6].routes.canary == 10


def test_item12_new_revision_while_waiting_for_promotion_restarts_in_progressing() -> None:
    doc = canary_doc(
        {"stepWeight": 10, "maxWeight": 50, "webhooks": [hook("promo", "confirm-promotion")]}
    )
    world = running_world(50, 50, template="v3")
    record = single_step(
        doc, running_status(Phase.WAITING_PROMOTION, weight=50, failed_checks=1), world
    )
    assert record.phase is Phase.PROGRESSING
    assert record.set_routes == (SetRoutes(100, 0, False),)
    assert (record.weight, record.failed_checks) == (0, 0)


@pytest.mark.parametrize(
    "phase", [Phase.PROMOTING, Phase.FINALISING], ids=["promoting", "finalising"]
)
def test_new_revision_during_promotion_waits_for_the_end(phase: Phase) -> None:
    """Reference 2.10: in Promoting/Finalising a change is not detected until Succeeded."""
    world = running_world(0, 100, template="v3")
    record = single_step(CANARY, running_status(phase, weight=100), world)
    assert record.phase in (Phase.FINALISING, Phase.SUCCEEDED)
    assert not record.has_event("New revision detected")
    assert record.status.last_applied_spec == "v2"


def test_a_change_during_promotion_runs_after_success() -> None:
    result = run(CANARY, 12, Script(before={8: new_revision("v3")}))
    assert result.phases()[6:11] == [
        Phase.PROMOTING,
        Phase.FINALISING,
        Phase.SUCCEEDED,
        Phase.PROGRESSING,
        Phase.PROGRESSING,
    ]
    assert result[9].status.last_promoted_spec == "v2"
    assert result[10].status.last_applied_spec == "v3"


def test_tracked_config_change_mid_run_restarts() -> None:
    world = running_world(80, 20)
    world.tracked_configs = {"configmap/podinfo": "new"}
    status = running_status(weight=20, tracked_configs={"configmap/podinfo": "old"})
    record = single_step(CANARY, status, world)
    assert record.has_event("New revision detected! Restarting analysis")
    assert dict(record.status.tracked_configs) == {"configmap/podinfo": "new"}


def test_revert_to_the_promoted_template_mid_run_is_not_a_new_revision() -> None:
    """hasCanaryRevisionChanged uses HasTargetChanged: the promoted hash never counts."""
    world = running_world(80, 20, template="v1")
    record = single_step(CANARY, running_status(weight=20), world)
    assert not record.has_event("New revision detected")


def test_new_revision_in_failed_is_not_lost_while_the_primary_is_briefly_unready() -> None:
    result = run(
        CANARY,
        8,
        Script(
            metrics=fail_from(3),
            before={6: new_revision("v3")},
            primary_ready={6: Readiness.waiting("rolling"), 7: Readiness.ok()},
        ),
    )
    assert result[5].phase is Phase.FAILED
    assert Phase.PROGRESSING in result.phases()[5:]
