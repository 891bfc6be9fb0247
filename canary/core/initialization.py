"""The start of every tick: whether it may act at all, and the objects a canary needs.

Flagger's advanceCanary steps 1-12. Every tick, not only the first, makes sure the
Services, the primary, its autoscaler, the apex Service and the routing objects exist
and are right: actions are idempotent, and reconciling them each time repairs drift (a
deleted Service, an edited routing object) without a special path. Until the primary is
ready the target keeps serving; only then is it scaled to zero and the canary Initialized.
"""

from __future__ import annotations

from canary.core.actions import (
    AlertKind,
    EnsurePrimary,
    PauseTargetScaler,
    ReconcileApex,
    ReconcilePrimaryScaler,
    ReconcileRouter,
    ReconcileServices,
    ScaleMode,
    ScaleTarget,
)
from canary.core.observations import TargetObservation
from canary.core.phases import NOT_INITIALIZED, Trigger
from canary.core.tick import Tick
from canary.model.canary import Severity

INIT_REQUEUE_SECONDS = 5.0


def held(t: Tick) -> bool:
    """Steps 1-3: True when the tick cannot act (suspended, no target, no selector)."""
    obs = t.obs
    # 1. suspended: nothing at all happens (no drift correction either).
    if t.spec.suspend or obs.commands.paused:
        why = (
            "object is suspended" if t.spec.suspend else "it is paused (canary resume to continue)"
        )
        t.event(f"skipping canary run as {why}")
        t.frozen = True
        return True
    target = obs.target
    if target is None:
        t.event(f"{t.kind} {t.target_id} not found", warning=True)
        t.set(message=f"Waiting for the target {t.kind} {t.target_id} to exist.")
        return True
    # 3. the selector label must be discoverable
    if target.selector_error:
        t.event(target.selector_error, warning=True)
        t.set(message=target.selector_error)
        return True
    return False


def initialize(t: Tick) -> bool:
    """Steps 4-12: True when the tick ends here (initializing, or just initialized)."""
    target = t.obs.target
    assert target is not None
    initializing = t.status.phase in NOT_INITIALIZED
    # 4. primary and canary Services; 7. the primary workload
    t.act(ReconcileServices())
    t.act(EnsurePrimary())
    if _waiting_for_primary(t, initializing):
        return True
    # 8. primary autoscaler; at initialization the target's is paused (a KEDA ScaledObject
    # would scale the target back up; a no-op for an HPA)
    if t.spec.autoscaler_ref is not None:
        t.act(ReconcilePrimaryScaler(init=True))
        if initializing:
            t.act(PauseTargetScaler(True))
    # 9. apex Service → primary; 10. target scaled to zero at init; 11. routing objects
    t.act(ReconcileApex())
    if initializing:
        t.act(ScaleTarget(ScaleMode.ZERO))
    t.act(ReconcileRouter())
    if not initializing:
        return False
    # 12. initialized
    _initialized(t, target)
    return True


def _waiting_for_primary(t: Tick, initializing: bool) -> bool:
    """The primary does not exist, or (before it serves) is not ready: True to wait."""
    primary = t.obs.primary
    if primary is None:
        t.move(Trigger.PRIMARY_ABSENT, message=f"Creating {t.primary_id}.")
        t.requeue_after = min(INIT_REQUEUE_SECONDS, t.spec.interval_seconds)
        return True
    readiness = primary.readiness
    if not initializing or t.spec.skips_analysis or readiness.ready:
        return False
    if readiness.retriable:
        t.event(f"{t.primary_id} not ready: {readiness.message}", warning=True)
        t.move(Trigger.PRIMARY_NOT_READY, message=f"{t.primary_id} not ready: {readiness.message}")
        t.requeue_after = min(INIT_REQUEUE_SECONDS, t.spec.interval_seconds)
        return True
    # Difference: Flagger rolls back here, scaling the target to zero before the
    # apex Service ever pointed at the primary. We leave the target serving.
    message = f"{t.primary_id} failed: {readiness.message}"
    if t.status.message != message:  # tell people once
        t.event(message, warning=True)
        t.alert(AlertKind.PROGRESS_DEADLINE, Severity.ERROR, f"Initialization failed, {message}")
    t.move(Trigger.PRIMARY_NOT_READY, message=message)
    return True


def _initialized(t: Tick, target: TargetObservation) -> None:
    """The primary serves the target's template: the baseline every run compares with."""
    revision = t.obs.revision.revision if t.obs.revision else ""
    t.move(
        Trigger.INITIALIZED,
        canary_weight=0,
        failed_checks=0,
        iterations=0,
        last_applied_spec=target.template_hash,
        last_promoted_spec=target.template_hash,
        tracked_configs=dict(target.tracked_configs),
        promoted_configs=dict(target.tracked_configs),
        current_revision=revision,
        last_good_revision=revision,
        message=f"{t.kind} {t.target_id} initialized; waiting for a new revision.",
    )
    t.event(f"Initialization done! {t.id}")
    t.alert(
        AlertKind.INITIALIZED,
        Severity.INFO,
        f"New {t.kind} detected, initialization completed.",
        with_metadata=True,
    )
