"""Revisions: noticing a new one, naming it, and starting (or restarting) its run.

A "revision" is what the primary does not run yet: a new pod template, or a change in a
tracked ConfigMap or Secret (Flagger's HasTargetChanged || HaveDependenciesChanged). It is
named by the Git revision the shell reports, which may lag the target (Flux and Argo CD
write it after applying) or lead it (a HelmRelease); the name is corrected as reports
arrive, but a leading report never names a target it has not made.
"""

from __future__ import annotations

from canary.core.actions import (
    AlertKind,
    PauseTargetScaler,
    ScaleMode,
    ScaleTarget,
    SetRoutes,
)
from canary.core.endings import rollback
from canary.core.history import RESTARTED, end_run
from canary.core.known_bad import known_bad_match, refuse_known_bad
from canary.core.phases import ANALYSING, IN_RUN, Trigger
from canary.core.revert import replace_revert
from canary.core.tick import KUBERNETES, Flow, Tick
from canary.core.times import iso
from canary.model.canary import TOTAL_WEIGHT, HookType, Severity
from canary.model.status import Phase, RevertState


def revision_changed(t: Tick) -> bool:
    """Flagger's HasTargetChanged || HaveDependenciesChanged (checklist 9)."""
    target = t.obs.target
    assert target is not None
    status = t.status
    if not status.last_applied_spec:
        return True
    configs = dict(target.tracked_configs)
    if (
        target.template_hash == status.last_promoted_spec
        and status.promoted_configs is not None
        and dict(status.promoted_configs) == configs
    ):
        # Exactly what the primary runs (a manual rollback, or our Git revert
        # converging): never a run. Flagger compares the template only, so a
        # reverted ConfigMap would start a run of the good version.
        return False
    template_changed = (
        target.template_hash != status.last_applied_spec
        and target.template_hash != status.last_promoted_spec
    )
    configs_changed = bool(status.tracked_configs or target.tracked_configs) and dict(
        status.tracked_configs
    ) != dict(target.tracked_configs)
    return template_changed or configs_changed


def catch_up_revision(t: Tick) -> None:
    """A revision report that lags the applied spec is corrected once it arrives.

    Flux and Argo CD write their revision after applying, so a run may start
    with the previous revision's name. While the target still has the same
    template and configs, the revision seen now names it better.

    A report that leads the target (a HelmRelease's, see :class:`Revision`) only fills
    in a revision not known yet: a newer one names the next release.
    """
    target, revision = t.obs.target, t.obs.revision
    if target is None or revision is None or not revision.revision:
        return
    status = t.status
    in_run = status.phase in IN_RUN
    if revision.leads:
        known = status.current_revision if in_run else status.last_good_revision
        if known:
            return
    configs = dict(target.tracked_configs)
    if in_run:
        if (
            target.template_hash == status.last_applied_spec
            and configs == dict(status.tracked_configs)
            and revision.revision != status.current_revision
            and not names_another_release(t, revision.revision)
            and not any(
                r.revision == revision.revision for r in status.analysis_history if not r.open
            )
        ):
            t.set(current_revision=revision.revision)
    elif status.phase in (Phase.INITIALIZED, Phase.SUCCEEDED):
        if (
            target.template_hash == status.last_promoted_spec
            and status.promoted_configs is not None
            and configs == dict(status.promoted_configs)
            and revision.revision != status.last_good_revision
        ):
            t.set(current_revision=revision.revision, last_good_revision=revision.revision)


def names_another_release(t: Tick, revision: str) -> bool:
    """Whether a revision report names a release the target is not: the primary's, the
    run's before this one or a known-bad one, while the target's template (or configs)
    differ from that release's. Flux and Argo CD write their revision after applying, so
    right after an apply the report still names the release before: the run's revision is
    then unknown until the report catches up, and no message names the wrong one."""
    target, status = t.obs.target, t.status
    if target is None or not revision:
        return False
    configs = dict(target.tracked_configs)
    releases = (
        (status.last_good_revision, status.last_promoted_spec, status.promoted_configs),
        (status.current_revision, status.last_applied_spec, status.tracked_configs),
        *((k.revision, k.template, None) for k in status.known_bad),
    )
    return any(
        name == revision
        and template
        and (
            template != target.template_hash
            or (made_with is not None and dict(made_with) != configs)
        )
        for name, template, made_with in releases
    )


def run_revision(t: Tick) -> str:
    """The revision of the run starting now: the report, unless it names another release."""
    reported = t.obs.revision.revision if t.obs.revision else ""
    return "" if names_another_release(t, reported) else reported


def retry(t: Tick) -> bool:
    """``canary retry`` on a failed run or a refused release; True when a run started."""
    commands = t.obs.commands
    if not commands.retry:
        return False
    t.consume("retry", commands.retry)
    phase = t.status.phase
    if phase is not Phase.FAILED and not t.status.refused:
        t.event(f"Nothing to retry: {t.id} is {phase.value or 'not started'}", warning=True)
        return False
    if not t.status.refused and _nothing_new(t):
        return False
    if t.status.refused:
        t.event(f"Analysing {t.target_id} although it is a known-bad release{t.by(commands.retry)}")
        overridden = known_bad_match(t)
        t.set(known_bad=tuple(k for k in t.status.known_bad if k is not overridden))
    else:
        t.event(f"Retrying the failed revision of {t.target_id}{t.by(commands.retry)}")
    start_run(t, retry=True)
    return True


def _nothing_new(t: Tick) -> bool:
    """A retry after Git was reverted (or the target put back by hand) would run the
    promoted template against itself and report a promotion of nothing: refuse it, naming
    the revert, and say how to release the failed revision again. True when refused."""
    target = t.obs.target
    if target is None or target.template_hash != t.status.last_promoted_spec:
        return False
    revert = t.status.git_revert
    if revert is not None and revert.commit:
        why = (
            f"its revision {revert.bad_revision} was reverted in Git by {revert.commit[:12]} "
            f"and {t.target_id} runs the promoted template again; to release it again, "
            f"revert the revert in Git (git revert {revert.commit[:12]})"
        )
    else:
        why = f"{t.target_id} runs the promoted template again: there is nothing new to analyse"
    t.event(f"Nothing to retry: {why}", warning=True)
    t.set(message=f"Retry refused: {why}.")
    return True


def start_pending_revision(t: Tick) -> Flow[None]:
    """Step 16: a revision outside a run is refused if known-bad, else it passes the
    confirm-rollout gate and its run starts."""
    known = known_bad_match(t)
    if known is not None and t.status.phase is not Phase.WAITING:
        refuse_known_bad(t, known)
        return
    yield from confirm_rollout_and_start(t)


def confirm_rollout_and_start(t: Tick) -> Flow[None]:
    commands = t.obs.commands
    if commands.abort:
        t.consume("abort", commands.abort)
        t.event(
            f"Rolling back {t.id}: aborted{t.by(commands.abort)} before it started",
            warning=True,
        )
        t.set(current_revision=t.obs.revision.revision if t.obs.revision else "")
        rollback(t, Trigger.ABORTED, f"aborted{t.by(commands.abort)}", alert_kind=AlertKind.ABORTED)
        return
    verdict = yield from t.open_gate(HookType.CONFIRM_ROLLOUT, "Confirm-rollout")
    if not verdict.ok:
        t.hold_at_gate(
            verdict,
            gate=HookType.CONFIRM_ROLLOUT,
            waiting=Phase.WAITING,
            trigger=Trigger.GATE_CLOSED,
            approval="approval",
            subject="Canary",
            alert=AlertKind.WAITING_APPROVAL,
        )
        return
    start_run(t, retry=False)


def start_run(t: Tick, *, retry: bool) -> None:
    """Scale the target up and start counting: the run's first tick."""
    revision = run_revision(t)
    t.event(f"New revision detected! Scaling up {t.target_id}")
    revert = t.status.git_revert
    if revert is not None and not revert.state.finished:
        t.set(
            git_revert=replace_revert(
                revert,
                state=RevertState.SUPERSEDED,
                message="a new revision started a run before the revert was made",
            )
        )
    if t.spec.autoscaler_ref is not None:
        t.act(PauseTargetScaler(False))
    t.act(ScaleTarget(ScaleMode.UP))
    end_run(t, RESTARTED, "a new run started")
    _reset_run(t, Trigger.RETRIED if retry else Trigger.RUN_STARTED)
    primary = t.obs.primary
    t.set(
        refused="",
        current_revision=revision,
        previous_images=primary.images if primary else (),
        run_start_time=iso(t.obs.now),
        analysis=(),
        inconclusive_checks=0,
        message=f"New revision of {t.target_id}{' (retry)' if retry else ''}: analysis starting.",
    )
    t.alert(
        AlertKind.STARTED,
        Severity.INFO,
        "New revision detected, progressing canary analysis.",
        with_metadata=True,
    )
    if t.provider == KUBERNETES and t.spec.analysis_or_default.iterations < 1:
        t.event(
            "Progressive traffic is not supported when using the kubernetes provider",
            warning=True,
        )
        t.event("Setting canaryAnalysis.iterations: 10", warning=True)


def restart_on_new_revision(t: Tick, changed: bool) -> bool:
    """Step 17: a new revision mid-analysis restarts the run; True when it did."""
    if t.status.phase not in ANALYSING or not changed:
        return False
    t.event(f"New revision detected! Restarting analysis for {t.target_id}")
    t.act(SetRoutes(TOTAL_WEIGHT, 0, False))
    new_revision = run_revision(t)  # never the run's before: its revision names another release
    end_run(t, RESTARTED, f"new revision {new_revision}".rstrip())
    _reset_run(t, Trigger.REVISION_CHANGED)
    t.set(
        current_revision=new_revision,
        # The new revision's evidence starts from nothing: the last verdicts (and the
        # compare judge's running state inside them) were the old revision's.
        analysis=(),
        inconclusive_checks=0,
        message=f"New revision of {t.target_id}; analysis restarted.",
    )
    return True


def _reset_run(t: Tick, trigger: Trigger) -> None:
    target = t.obs.target
    assert target is not None
    t.move(
        trigger,
        canary_weight=0,
        failed_checks=0,
        iterations=0,
        last_applied_spec=target.template_hash,
        tracked_configs=dict(target.tracked_configs),
    )
