"""How a run ends: promoted, rolled back, failed while promoting, or the Canary deleted.

Every ending resets the run's counters, fires the post-rollout hooks and consumes the
promote commands the run never needed, so the next run starts from a clean slate whatever
way this one ended. A failure also remembers the release as known-bad and schedules the
Git revert: the cluster is safe at once, Git follows.
"""

from __future__ import annotations

from canary.core.actions import (
    AlertKind,
    CallHooks,
    Finalize,
    PauseTargetScaler,
    ScaleMode,
    ScaleTarget,
    SetRoutes,
)
from canary.core.history import FAILED, SUCCEEDED, end_run
from canary.core.known_bad import remember_bad
from canary.core.phases import Trigger
from canary.core.revert import schedule_git_revert
from canary.core.tick import Tick
from canary.model.canary import TOTAL_WEIGHT, HookType, Severity
from canary.model.status import Phase


def succeed(t: Tick, trigger: Trigger) -> None:
    """The new template is the primary's: it becomes the last good revision."""
    target = t.obs.target
    promoted = set(target.images) if target else set()
    status = t.status
    at_revision = f" at revision {status.current_revision}" if status.current_revision else ""
    t.move(
        trigger,
        # A release that now passed is no longer known-bad.
        known_bad=tuple(
            k
            for k in status.known_bad
            if k.template != status.last_applied_spec
            and not (k.images and set(k.images) <= promoted)
        ),
        canary_weight=0,
        iterations=0,
        last_promoted_spec=status.last_applied_spec,
        promoted_configs=dict(status.tracked_configs),
        last_good_revision=status.current_revision or status.last_good_revision,
        message=f"Promoted {t.target_id}{at_revision}.",
    )
    end_run(t, SUCCEEDED)
    t.effects.append(CallHooks(HookType.POST_ROLLOUT, Phase.SUCCEEDED.value))
    t.drop_run_commands()


def rollback(
    t: Tick, trigger: Trigger, reason: str, *, alert_kind: AlertKind, detail: str = ""
) -> None:
    """Flagger's rollback(): traffic to primary, target to zero, phase Failed."""
    _announce_rollback(t, reason, alert_kind, detail)
    t.act(SetRoutes(TOTAL_WEIGHT, 0, False))
    t.event(f"Canary failed! Scaling down {t.id}", warning=True)
    if t.spec.autoscaler_ref is not None:
        t.act(PauseTargetScaler(True))
    t.act(ScaleTarget(ScaleMode.ZERO))
    target = t.obs.target
    t.move(
        trigger,
        canary_weight=0,
        failed_checks=0,
        iterations=0,
        last_applied_spec=target.template_hash if target else t.status.last_applied_spec,
        tracked_configs=dict(target.tracked_configs) if target else t.status.tracked_configs,
        message=f"Rolled back {t.target_id}: {reason}.",
    )
    end_run(t, FAILED, reason)
    t.effects.append(CallHooks(HookType.POST_ROLLOUT, Phase.FAILED.value))
    t.drop_run_commands()
    remember_bad(t, reason)
    schedule_git_revert(t, reason)


def _announce_rollback(t: Tick, reason: str, alert_kind: AlertKind, detail: str) -> None:
    """The Event and the alert of a rollback: Flagger's sentences, one per cause."""
    if alert_kind is AlertKind.THRESHOLD_REACHED:
        failed = t.status.failed_checks
        t.event(f"Rolling back {t.id} failed checks threshold reached {failed}", warning=True)
        t.alert(alert_kind, Severity.ERROR, f"Failed checks threshold reached {failed}")
    elif alert_kind is AlertKind.PROGRESS_DEADLINE:
        t.event(f"Rolling back {t.id} {reason}", warning=True)
        # Difference: Flagger sends no alert on this path (issues #1663, #1816).
        t.alert(
            alert_kind, Severity.ERROR, f"Progress deadline exceeded {detail or reason}".rstrip()
        )
    elif alert_kind is AlertKind.ROLLBACK_WEBHOOK:
        t.alert(alert_kind, Severity.WARN, "Rolling back manual webhook invoked")
    elif alert_kind is AlertKind.REGRESSION:
        t.event(f"Rolling back {t.id} {reason}", warning=True)
        t.alert(
            alert_kind,
            Severity.ERROR,
            f"Canary is conclusively worse than the primary: {detail or reason}",
        )
    elif alert_kind is AlertKind.ABORTED:
        t.alert(alert_kind, Severity.WARN, f"Rolling back: {reason}")


def failed_promotion(t: Tick, message: str) -> None:
    """Flagger 1.44: the primary broke while promoting; serve the canary."""
    t.event(f"Promotion of {t.target_id} failed, primary not ready: {message}", warning=True)
    t.alert(
        AlertKind.PROMOTION_FAILED,
        Severity.ERROR,
        f"Promotion failed, primary not ready: {message}",
    )
    t.act(SetRoutes(0, TOTAL_WEIGHT, False))
    target = t.obs.target
    t.move(
        Trigger.PROMOTION_FAILED,
        canary_weight=TOTAL_WEIGHT,
        failed_checks=0,
        iterations=0,
        last_applied_spec=target.template_hash if target else t.status.last_applied_spec,
        message=f"Promotion failed ({message}); all traffic is on {t.target_id}.",
    )
    end_run(t, FAILED, f"promotion failed, primary not ready: {message}")
    t.effects.append(CallHooks(HookType.POST_ROLLOUT, Phase.FAILED.value))
    t.drop_run_commands()
    remember_bad(t, f"promotion failed, primary not ready: {message}")
    schedule_git_revert(t, f"promotion failed, primary not ready: {message}")


def finalize_deletion(t: Tick) -> None:
    """Give the cluster back on deletion, if the spec asks for it (``revertOnDeletion``)."""
    if not t.spec.revert_on_deletion:
        return
    t.event(f"Terminating canary {t.id}")
    t.act(Finalize())
    t.move(Trigger.DELETED, message="Terminated: the target serves traffic again.")
    t.event(f"Terminated canary {t.id}")
