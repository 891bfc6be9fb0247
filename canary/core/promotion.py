"""Promotion: the confirm-promotion gate, copying the template, and handing traffic back.

Promotion is a run's second half, and it cannot be undone by rolling back: once the
template is copied, the primary itself is changing. So it has its own gate, and its own
phases: Promoting while the primary rolls out the new template (traffic moves back to it,
at once or in ``stepWeightPromotion`` steps), Finalising once all traffic is on it, then
Succeeded when the target is scaled down.
"""

from __future__ import annotations

from canary.core.actions import (
    AlertKind,
    PauseTargetScaler,
    Promote,
    ReconcilePrimaryScaler,
    ScaleMode,
    ScaleTarget,
    SetRoutes,
)
from canary.core.endings import succeed
from canary.core.phases import Trigger
from canary.core.tick import KUBERNETES, Flow, Tick
from canary.model.canary import TOTAL_WEIGHT, HookType, Severity
from canary.model.status import Phase


def confirm_promotion(t: Tick) -> Flow[bool]:
    """The confirm-promotion gate (or ``canary promote``); True when it is open."""
    verdict = yield from t.open_gate(
        HookType.CONFIRM_PROMOTION, "Confirm-promotion", Phase.PROGRESSING
    )
    if verdict.ok:
        return True
    # Difference: Flagger zeroes canaryWeight and rewinds iterations here; we keep both.
    t.hold_at_gate(
        verdict,
        gate=HookType.CONFIRM_PROMOTION,
        waiting=Phase.WAITING_PROMOTION,
        trigger=Trigger.PROMOTION_WITHHELD,
        approval="promotion approval",
        subject="Canary promotion",
        alert=AlertKind.WAITING_PROMOTION,
    )
    return False


def promote_now(t: Tick) -> None:
    t.event(f"Copying {t.target_id} template spec to {t.primary_id}")
    t.act(Promote())
    t.move(
        Trigger.PROMOTION_STARTED,
        message=f"Promoting: {t.primary_id} is rolling out the new template.",
    )


def skip_analysis(t: Tick) -> None:
    """Step 19, ``skipAnalysis``: promote at once, no gate, no hooks, no metrics."""
    t.act(SetRoutes(TOTAL_WEIGHT, 0, False), Promote())
    if t.spec.autoscaler_ref is not None:
        t.act(ReconcilePrimaryScaler(init=False), PauseTargetScaler(True))
    t.act(ScaleTarget(ScaleMode.ZERO))
    succeed(t, Trigger.ANALYSIS_SKIPPED)
    t.event(f"Promotion completed! Canary analysis was skipped for {t.target_id}")
    t.alert(AlertKind.SKIPPED, Severity.INFO, "Canary analysis was skipped, promotion finished.")


def promoting(t: Tick) -> None:
    """Step 21: the primary runs the new template; shift traffic back to it."""
    if t.spec.autoscaler_ref is not None:
        t.act(ReconcilePrimaryScaler(init=False))
    if t.provider == KUBERNETES:
        t.move(Trigger.TRAFFIC_ON_PRIMARY, canary_weight=0, message="Finalising the promotion.")
        return
    promotion_step = t.analysis.step_weight_promotion
    if promotion_step <= 0:
        t.event("Routing all traffic to primary")
        t.act(SetRoutes(TOTAL_WEIGHT, 0, False))
        t.move(
            Trigger.TRAFFIC_ON_PRIMARY,
            canary_weight=0,
            message="All traffic back on the promoted primary.",
        )
        return
    primary = min(TOTAL_WEIGHT, t.routes().primary + promotion_step)
    canary_w = max(0, TOTAL_WEIGHT - primary)
    t.act(SetRoutes(primary, canary_w, False))
    t.event(f"Advance {t.id} primary weight {primary}")
    if primary >= TOTAL_WEIGHT:
        t.move(
            Trigger.TRAFFIC_ON_PRIMARY,
            canary_weight=0,
            message="All traffic back on the promoted primary.",
        )
    else:
        t.set(canary_weight=canary_w, message=f"Promoting: primary weight {primary}%.")


def finalising(t: Tick) -> None:
    """Step 22: all traffic is on the primary; scale the target down, done."""
    if t.spec.autoscaler_ref is not None:
        t.act(PauseTargetScaler(True))
    t.act(ScaleTarget(ScaleMode.ZERO))
    succeed(t, Trigger.PROMOTION_FINISHED)
    t.event(f"Promotion completed! Scaling down {t.target_id}")
    t.alert(
        AlertKind.PROMOTED,
        Severity.INFO,
        "Canary analysis completed successfully, promotion finished.",
    )
