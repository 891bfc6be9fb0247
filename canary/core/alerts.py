"""The alerts a tick sends, with everything a notifier needs to write a useful message.

Alerts are built in one place so that every alert of every kind carries the same facts
(the revisions, the images, how long the run took, the verdicts, the last failed check):
a notifier can then render any of them without asking the tick for more. They are built
from what the tick holds (the Canary, its analysis, the observations, the statuses before
and now), passed in: `canary.core.tick.Tick.alert` calls here, and this module does not
know the tick.
"""

from __future__ import annotations

from canary.core.actions import Alert, AlertKind
from canary.core.observations import Observations
from canary.core.times import parse_iso
from canary.model.canary import AnalysisSpec, Canary, Severity, Strategy
from canary.model.status import CanaryStatus


def build_alert(
    canary: Canary,
    analysis: AnalysisSpec,
    obs: Observations,
    *,
    old: CanaryStatus,
    status: CanaryStatus,
    target: str,
    kind: AlertKind,
    severity: Severity,
    message: str,
    with_metadata: bool,
    mute: bool,
    revert_commit: str,
    pull_request: str,
) -> Alert:
    """An alert about a tick as it stands now: ``old`` is the status the tick read, ``status``
    the one changed so far, ``target`` the ``Kind/name.namespace`` of the canary's target."""
    started = parse_iso(status.run_start_time)
    now = obs.now.replace(tzinfo=None)
    duration = (now - started).total_seconds() if started else None
    primary = obs.primary
    return Alert(
        kind=kind,
        severity=severity,
        message=message,
        with_metadata=with_metadata,
        canary_name=canary.name,
        namespace=canary.namespace,
        target=target,
        revision=status.current_revision,
        previous_revision=old.last_good_revision,  # a promotion moves the status's
        images=obs.target.images if obs.target else (),
        previous_images=status.previous_images or (primary.images if primary else ()),
        weight=status.canary_weight,
        failed_checks=status.failed_checks,
        threshold=analysis.threshold,
        duration_seconds=duration,
        analysis=status.analysis,
        revert_commit=revert_commit,
        pull_request=pull_request,
        failure=old.message if old.message.startswith("Halt ") else "",
        fields=metadata_fields(canary, analysis, target) if with_metadata else (),
        mute=mute,
    )


def metadata_fields(
    canary: Canary, analysis: AnalysisSpec, target: str
) -> tuple[tuple[str, str], ...]:
    """Flagger's metadata fields (Target, threshold, deadline, routing), in its order."""
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
        ("Target", target),
        ("Failed checks threshold", str(analysis.threshold)),
        ("Progress deadline", f"{canary.spec.progress_deadline_seconds}s"),
        ("Traffic routing", routing),
    )
