"""Promotion: the gate, Promote, the traffic shift back, Finalising, Succeeded.

Reference: flagger.md 1.2 (SetStatusPhase), 2.2 steps 21-22, 2.6 (runPromotionTrafficShift),
2.8, 2.16; checklist items 7, 32, 33.
"""

from __future__ import annotations

from typing import Any

import pytest

from canary.core import (
    AlertKind,
    CallHooks,
    Promote,
    Readiness,
    ReconcilePrimaryScaler,
    Routes,
    ScaleMode,
    ScaleTarget,
    SetRoutes,
)
from canary.model import HookType, Phase, Severity
from tests.core.harness import (
    Script,
    World,
    canary_doc,
    finished,
    hook,
    run,
    running_status,
    running_world,
    single_step,
)

HPA = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "podinfo"}


def test_item32_promote_tick() -> None:
    doc = canary_doc({"stepWeight": 50, "webhooks": [hook("promo", "confirm-promotion")]})
    record = single_step(doc, running_status(weight=100), running_world(0, 100))
    assert record.phase is Phase.PROMOTING
    assert record.actions.count(Promote()) == 1
    assert record.events == (
        "Confirm-promotion check promo passed",
        "Copying podinfo.test template spec to podinfo-primary.test",
    )
    assert record.set_routes == ()  # the canary keeps serving while the primary rolls
    assert record.weight == 100


def test_item33_promoting_waits_for_the_primary_then_routes_back() -> None:
    doc = canary_doc({"stepWeight": 50}, autoscalerRef=HPA)
    status = running_status(Phase.PROMOTING, weight=100)
    waiting = single_step(
        doc, status, running_world(0, 100), Script(primary_ready=Readiness.waiting("rolling out"))
    )
    assert waiting.phase is Phase.PROMOTING and waiting.set_routes == ()
    ready = single_step(doc, status, running_world(0, 100))
    assert ready.phase is Phase.FINALISING
    assert ReconcilePrimaryScaler(init=False) in ready.actions
    assert ready.set_routes == (SetRoutes(100, 0, False),)
    assert ready.events == ("Routing all traffic to primary",)
    assert ready.weight == 0


@pytest.mark.parametrize(
    ("promotion_step", "start_canary", "primaries"),
    [
        pytest.param(50, 100, [50, 100], id="item33-2.16-step50"),
        pytest.param(30, 50, [80, 100], id="item33-step30-from-50"),
        pytest.param(10, 70, [40, 50, 60, 70, 80, 90, 100], id="item33-step10-from-70"),
        pytest.param(100, 100, [100], id="item33-step100"),
    ],
)
def test_item33_step_weight_promotion(
    promotion_step: int, start_canary: int, primaries: list[int]
) -> None:
    doc = canary_doc({"stepWeight": 10, "stepWeightPromotion": promotion_step})
    world = running_world(100 - start_canary, start_canary)
    status = running_status(Phase.PROMOTING, weight=start_canary)
    seen: list[int] = []
    phases: list[Phase] = []
    for _ in primaries:
        record = single_step(doc, status, world)
        (routes,) = record.set_routes
        assert routes.primary + routes.canary == 100
        seen.append(routes.primary)
        phases.append(record.phase)
        assert record.has_event(f"Advance podinfo.test primary weight {routes.primary}")
        status = record.status
    assert seen == primaries
    assert phases == [Phase.PROMOTING] * (len(primaries) - 1) + [Phase.FINALISING]


def test_item33_finalising_to_succeeded() -> None:
    doc = canary_doc({"stepWeight": 50}, autoscalerRef=HPA)
    world = running_world(100, 0)
    status = running_status(
        Phase.FINALISING, weight=0, iterations=2, current_revision="r2", last_good_revision="r1"
    )
    record = single_step(doc, status, world)
    assert record.phase is Phase.SUCCEEDED
    assert ScaleTarget(ScaleMode.ZERO) in record.actions
    assert record.set_routes == ()
    assert record.events == ("Promotion completed! Scaling down podinfo.test",)
    (alert,) = record.alerts
    assert (alert.kind, alert.severity, alert.message) == (
        AlertKind.PROMOTED,
        Severity.INFO,
        "Canary analysis completed successfully, promotion finished.",
    )
    assert record.called_hooks == (CallHooks(HookType.POST_ROLLOUT, "Succeeded"),)
    status_after = record.status
    assert (status_after.canary_weight, status_after.iterations) == (0, 0)
    assert status_after.last_promoted_spec == "v2"
    assert status_after.last_good_revision == "r2"


def test_promotion_run_with_revisions_records_the_good_revision() -> None:
    world = World(revision="r1")
    result = run(
        canary_doc({"stepWeight": 50}), 8, world=world, new_git_revision="r2", until=finished
    )
    assert result.init[-1].status.last_good_revision == "r1"
    assert result[1].status.current_revision == "r2"
    assert result.last.phase is Phase.SUCCEEDED
    assert result.last.status.last_good_revision == "r2"
    assert result.world.primary_template == "v2"


STATUS_PHASES: list[Any] = [
    pytest.param(Phase.SUCCEEDED, 0, 0, id="item7-succeeded-zeroes"),
    pytest.param(Phase.FAILED, 0, 0, id="item7-failed-zeroes"),
    pytest.param(Phase.PROMOTING, 50, 0, id="item7-promoting-keeps-weight"),
    pytest.param(
        Phase.WAITING_PROMOTION, 50, 0, id="item7-difference-waiting-promotion-keeps-weight"
    ),
]


@pytest.mark.parametrize(("phase", "weight", "iterations"), STATUS_PHASES)
def test_item7_set_status_phase_zeroes(phase: Phase, weight: int, iterations: int) -> None:
    """Checklist 7: any phase but Progressing/Waiting/Promoting zeroes canaryWeight and iterations
    (Difference in machine.py confirm_promotion: WaitingPromotion keeps both)."""
    gates = [hook("promo", "confirm-promotion")] if phase is Phase.WAITING_PROMOTION else []
    doc = canary_doc({"stepWeight": 50, "maxWeight": 50, "threshold": 1, "webhooks": gates})
    scripts = {
        Phase.SUCCEEDED: (running_status(Phase.FINALISING, weight=50), Script()),
        Phase.FAILED: (running_status(weight=50, failed_checks=1), Script()),
        Phase.PROMOTING: (running_status(weight=50), Script()),
        Phase.WAITING_PROMOTION: (running_status(weight=50), Script(hooks={"promo": False})),
    }
    status, script = scripts[phase]
    record = single_step(doc, status, running_world(50, 50), script)
    assert record.phase is phase
    assert (record.weight, record.iterations) == (weight, iterations)


def test_item7_initialized_and_succeeded_set_last_promoted_spec() -> None:
    result = run(canary_doc({"stepWeight": 50}), 8, start="fresh", until=finished)
    assert result[2].status.last_promoted_spec == "v1"
    result = run(canary_doc({"stepWeight": 50}), 8, until=finished)
    assert [t.status.last_promoted_spec for t in result.ticks] == ["v1"] * 5 + ["v2"]


def test_no_promotion_before_max_weight() -> None:
    result = run(canary_doc({"stepWeight": 10, "maxWeight": 50}), 6)
    assert not any(Promote() in t.actions for t in result.ticks)
    assert result.world.routes == Routes(50, 50, False)


def test_succeeded_canary_is_idle_afterwards() -> None:
    result = run(canary_doc({"stepWeight": 50}), 10)
    assert result.first(Phase.SUCCEEDED) == 6
    for record in result.ticks[6:]:
        assert record.phase is Phase.SUCCEEDED
        assert record.alerts == () and record.requests == ()


@pytest.mark.parametrize(
    "analysis",
    [
        pytest.param({"stepWeight": 50}, id="canary"),
        pytest.param({"iterations": 2}, id="blue-green"),
        pytest.param({"iterations": 2, "mirror": True}, id="blue-green-mirror"),
        pytest.param({"stepWeight": 25, "mirror": True}, id="canary-mirror"),
    ],
)
def test_full_run_ends_with_all_traffic_on_the_primary(analysis: dict[str, Any]) -> None:
    result = run(canary_doc(analysis), 20, until=finished)
    assert result.last.phase is Phase.SUCCEEDED
    assert result.world.routes == Routes(100, 0, False)
    assert result.world.target_replicas == 0
    assert result.world.primary_template == "v2"
