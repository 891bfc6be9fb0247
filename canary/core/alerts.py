"""The alerts a tick sends, with everything a notifier needs to write a useful message.

Alerts are built in one place so that every alert of every kind carries the same facts
(the revisions, the images, how long the run took, the verdicts, the last failed check):
a notifier can then render any of them without asking the tick for more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from canary.core.actions import Alert, AlertKind
from canary.core.times import parse_iso
from canary.model.canary import Severity, Strategy

if TYPE_CHECKING:
    from canary.core.tick import Tick


def build_alert(
    t: Tick,
    kind: AlertKind,
    severity: Severity,
    message: str,
    *,
    with_metadata: bool,
    mute: bool,
    revert_commit: str,
    pull_request: str,
) -> Alert:
    """An alert about the tick as it stands now (the status changed so far included)."""
    started = parse_iso(t.status.run_start_time)
    now = t.obs.now.replace(tzinfo=None)
    duration = (now - started).total_seconds() if started else None
    target = t.obs.target
    primary = t.obs.primary
    return Alert(
        kind=kind,
        severity=severity,
        message=message,
        with_metadata=with_metadata,
        canary_name=t.canary.name,
        namespace=t.canary.namespace,
        target=f"{t.kind}/{t.target_id}",
        revision=t.status.current_revision,
        previous_revision=t.old.last_good_revision,  # a promotion moves the status's
        images=target.images if target else (),
        previous_images=t.status.previous_images or (primary.images if primary else ()),
        weight=t.status.canary_weight,
        failed_checks=t.status.failed_checks,
        threshold=t.analysis.threshold,
        duration_seconds=duration,
        analysis=t.status.analysis,
        revert_commit=revert_commit,
        pull_request=pull_request,
        failure=t.old.message if t.old.message.startswith("Halt ") else "",
        fields=metadata_fields(t) if with_metadata else (),
        mute=mute,
    )


def metadata_fields(t: Tick) -> tuple[tuple[str, str], ...]:
    """Flagger's metadata fields (Target, threshold, deadline, routing), in its order."""
    analysis = t.analysis
    strategy = analysis.strategy
    if strategy is Strategy.AB_TESTING:
        routing = "A/B Testing"
    elif strategy is Strategy.BLUE_GREEN:
        routing = "Blue/Green"
    elif analysis.step_weights and analysis.step_weight <= 0:
        steps = ",".join(str(w) for w in analysis.step_weights)
        routing = f"Weight steps: {steps} max: {analysis.max_weight}"
    else:
        routing = f"Weight step: {analysis.step_weight} max: {analysis.max_weight}"
    return (
        ("Target", f"{t.kind}/{t.target_id}"),
        ("Failed checks threshold", str(analysis.threshold)),
        ("Progress deadline", f"{t.spec.progress_deadline_seconds}s"),
        ("Traffic routing", routing),
    )
