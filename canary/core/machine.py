"""The canary state machine: one pure function, `step`.

`step(canary, status, observations) -> Decision` decides one tick the way
Flagger's ``advanceCanary`` does (reference/flagger.md 2.2, followed step by step
and numbered alike in the comments below), without doing any of it: the result
is the new status, the actions to run before the status is written, the effects
(Events, alerts, post-rollout hooks) to run after, and possibly requests for
facts the core needs first (a gate's answer, the metric verdicts, the outcome of
a Git revert). The shell answers requests and calls `step` again; everything
else it needs arrives in `Observations`, including the time.

No I/O, no clock, no framework: the same inputs always give the same decision,
so a run can be replayed from recorded observations (`canary simulate`).

Where Flagger has a quirk (reference 2.17) we choose the sensible behaviour and
list it in docs/flagger-differences.md; those places are marked "Difference:".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from canary.core.actions import (
    Action,
    Alert,
    AlertKind,
    CallHooks,
    Decision,
    Effect,
    EmitEvent,
    EnsurePrimary,
    EventType,
    Finalize,
    PauseTargetScaler,
    Promote,
    ReconcileApex,
    ReconcilePrimaryScaler,
    ReconcileRouter,
    ReconcileServices,
    ScaleMode,
    ScaleTarget,
    SendAlert,
    SetRoutes,
)
from canary.core.observations import (
    AnalysisRequest,
    HookAnswer,
    HookRequest,
    MetricResult,
    Observations,
    Outcome,
    Request,
    RevertAnswer,
    RevertRequest,
    RevertResultKind,
    Routes,
)
from canary.core.status import with_conditions
from canary.model.canary import (
    TOTAL_WEIGHT,
    AnalysisSpec,
    Canary,
    HookType,
    Severity,
    Strategy,
)
from canary.model.commands import requester
from canary.model.status import (
    CanaryStatus,
    GitRevertStatus,
    KnownBad,
    MetricStatus,
    Phase,
    RevertState,
)
from canary.timestamps import format_time, parse_time

INIT_REQUEUE_SECONDS = 5.0
REVERT_BACKOFF_SECONDS = 5.0  # a retriable Git failure: 5 s, 10 s, 20 s ... up to 5 min
REVERT_BACKOFF_MAX_SECONDS = 300.0
KNOWN_BAD_LIMIT = 10  # failed releases remembered in status.knownBad
KUBERNETES = "kubernetes"
FAILING_OUTCOMES = frozenset({Outcome.FAIL, Outcome.NODATA, Outcome.ERROR})


def step(canary: Canary, status: CanaryStatus, obs: Observations) -> Decision:
    """Decide one tick. Pure: see the module docstring."""
    tick = _Tick(canary, status, obs)
    try:
        tick.run()
    except _NeedAnswer as need:
        return Decision(status=status, requests=(need.request,))
    return tick.decision()


# --------------------------------------------------------------------------- plumbing


class _NeedAnswer(Exception):
    def __init__(self, request: Request) -> None:
        self.request = request


class _Done(Exception):
    """Ends the tick early (Flagger's ``return`` in advanceCanary)."""


@dataclass(frozen=True, slots=True)
class _HookVerdict:
    ok: bool
    hook: str = ""
    message: str = ""


def iso(moment: datetime) -> str:
    return format_time(moment)


def parse_iso(text: str) -> datetime | None:
    """A status timestamp as a naive UTC datetime (the core compares with ``now`` naive)."""
    parsed = parse_time(text) if text else None
    return parsed.replace(tzinfo=None) if parsed is not None else None


def effective_analysis(canary: Canary) -> AnalysisSpec:
    """The analysis as the tick uses it (Flagger forces iterations for `kubernetes`)."""
    analysis = canary.spec.analysis_or_default
    if canary.spec.provider == KUBERNETES and analysis.iterations < 1:
        from dataclasses import replace

        return replace(analysis, iterations=10, match=())
    return analysis


class _Tick:
    def __init__(self, canary: Canary, status: CanaryStatus, obs: Observations) -> None:
        self.canary = canary
        self.spec = canary.spec
        self.old = status
        self.status = status
        self.obs = obs
        self.analysis = effective_analysis(canary)
        self.actions: list[Action] = []
        self.effects: list[Effect] = []
        self.requeue_after: float | None = None
        self.frozen = False
        self.handled: dict[str, str] = dict(status.handled_commands)
        self.target_name = canary.spec.target_ref.name
        self.kind = canary.spec.target_ref.kind or "Deployment"
        self.id = f"{canary.name}.{canary.namespace}"
        self.target_id = f"{self.target_name}.{canary.namespace}"
        self.primary_id = f"{self.target_name}-primary.{canary.namespace}"
        self.provider = canary.spec.provider or KUBERNETES

    # ------------------------------------------------------------ building blocks

    def event(self, message: str, warning: bool = False) -> None:
        self.effects.append(EmitEvent(EventType.WARNING if warning else EventType.NORMAL, message))

    def alert(
        self,
        kind: AlertKind,
        severity: Severity,
        message: str,
        *,
        with_metadata: bool = False,
        mute: bool = False,
        revert_commit: str = "",
        pull_request: str = "",
    ) -> None:
        started = parse_iso(self.status.run_start_time)
        now = self.obs.now.replace(tzinfo=None)
        duration = (now - started).total_seconds() if started else None
        target = self.obs.target
        primary = self.obs.primary
        self.effects.append(
            SendAlert(
                Alert(
                    kind=kind,
                    severity=severity,
                    message=message,
                    with_metadata=with_metadata,
                    canary_name=self.canary.name,
                    namespace=self.canary.namespace,
                    target=f"{self.kind}/{self.target_id}",
                    revision=self.status.current_revision,
                    previous_revision=self.old.last_good_revision,  # succeed() moves it
                    images=target.images if target else (),
                    previous_images=self.status.previous_images
                    or (primary.images if primary else ()),
                    weight=self.status.canary_weight,
                    failed_checks=self.status.failed_checks,
                    threshold=self.analysis.threshold,
                    duration_seconds=duration,
                    analysis=self.status.analysis,
                    revert_commit=revert_commit,
                    pull_request=pull_request,
                    failure=self.old.message if self.old.message.startswith("Halt ") else "",
                    fields=self.metadata_fields() if with_metadata else (),
                    mute=mute,
                )
            )
        )

    def metadata_fields(self) -> tuple[tuple[str, str], ...]:
        analysis = self.analysis
        strategy = analysis.strategy
        if strategy is Strategy.AB_TESTING:
            routing = "A/B Testing"
        elif strategy is Strategy.BLUE_GREEN:
            routing = "Blue/Green"
        elif analysis.step_weights and analysis.step_weight <= 0:
            routing = f"Weight steps: {','.join(str(w) for w in analysis.step_weights)} max: {analysis.max_weight}"
        else:
            routing = f"Weight step: {analysis.step_weight} max: {analysis.max_weight}"
        return (
            ("Target", f"{self.kind}/{self.target_id}"),
            ("Failed checks threshold", str(analysis.threshold)),
            ("Progress deadline", f"{self.spec.progress_deadline_seconds}s"),
            ("Traffic routing", routing),
        )

    def act(self, *actions: Action) -> None:
        self.actions.extend(actions)

    def set(self, **changes: object) -> None:
        self.status = self.status.with_(**changes)

    def done(self) -> None:
        raise _Done

    def ask(self, request: Request) -> object:
        answer = self.obs.answer(request)
        if answer is None:
            raise _NeedAnswer(request)
        return answer

    def run_hooks(self, kind: HookType, phase: Phase | None = None) -> _HookVerdict:
        """Call the hooks of one type in spec order; the first failure stops (Flagger)."""
        reported = (phase or self.status.phase).value
        for hook in self.analysis.hooks(kind):
            answer = self.ask(HookRequest(hook.name, kind, reported))
            assert isinstance(answer, HookAnswer)
            if not answer.ok:
                return _HookVerdict(False, hook.name, answer.message)
        return _HookVerdict(True)

    def hook_muted(self, kind: HookType, name: str) -> bool:
        return any(h.mute_alert for h in self.analysis.hooks(kind) if h.name == name)

    def routes(self) -> Routes:
        # The routing object is the truth; before it exists it will be created at 100/0.
        return self.obs.routes if self.obs.routes is not None else Routes(TOTAL_WEIGHT, 0, False)

    def consume(self, key: str, token: str | None) -> None:
        if token:
            self.handled[key] = token

    # ------------------------------------------------------------ the tick

    def run(self) -> None:
        try:
            self._run()
        except _Done:
            pass

    def _run(self) -> None:
        obs = self.obs
        self.set(observed_generation=obs.generation or self.status.observed_generation)

        if obs.deleting:
            self.finalize_deletion()
            return

        # 1. suspended: nothing at all happens (no drift correction either).
        if self.spec.suspend or obs.commands.paused:
            why = (
                "object is suspended"
                if self.spec.suspend
                else "it is paused (canary resume to continue)"
            )
            self.event(f"skipping canary run as {why}")
            self.frozen = True  # a suspended tick writes nothing (checklist 37)
            self.done()

        target = obs.target
        if target is None:
            self.event(f"{self.kind} {self.target_id} not found", warning=True)
            self.set(message=f"Waiting for the target {self.kind} {self.target_id} to exist.")
            self.done()
            return
        # 3. the selector label must be discoverable
        if target.selector_error:
            self.event(target.selector_error, warning=True)
            self.set(message=target.selector_error)
            self.done()

        phase = self.status.phase
        analysis_enabled = not self.spec.skips_analysis

        # 4. primary and canary Services
        self.act(ReconcileServices())
        # 7. the primary workload
        self.act(EnsurePrimary())
        initializing = phase in (Phase.NONE, Phase.INITIALIZING)
        if obs.primary is None:
            self.set(phase=Phase.INITIALIZING, message=f"Creating {self.primary_id}.")
            self.requeue_after = min(INIT_REQUEUE_SECONDS, self.spec.interval_seconds)
            self.done()
            return
        if initializing and analysis_enabled and not obs.primary.readiness.ready:
            if obs.primary.readiness.retriable:
                self.event(
                    f"{self.primary_id} not ready: {obs.primary.readiness.message}", warning=True
                )
                self.set(
                    phase=Phase.INITIALIZING,
                    message=f"{self.primary_id} not ready: {obs.primary.readiness.message}",
                )
                self.requeue_after = min(INIT_REQUEUE_SECONDS, self.spec.interval_seconds)
                self.done()
            # Difference: Flagger rolls back here, scaling the target to zero before the
            # apex Service ever pointed at the primary. We leave the target serving.
            message = f"{self.primary_id} failed: {obs.primary.readiness.message}"
            if self.status.message != message:
                self.event(message, warning=True)
                self.alert(
                    AlertKind.PROGRESS_DEADLINE, Severity.ERROR, f"Initialization failed, {message}"
                )
            self.set(phase=Phase.INITIALIZING, message=message)
            self.done()
        # 8. primary autoscaler
        if self.spec.autoscaler_ref is not None:
            self.act(ReconcilePrimaryScaler(init=True))
        # 9. apex Service → primary; 10. target scaled to zero at init; 11. routing objects
        self.act(ReconcileApex())
        if initializing:
            self.act(ScaleTarget(ScaleMode.ZERO))
        self.act(ReconcileRouter())

        # 12. initialized
        if initializing:
            revision = obs.revision.revision if obs.revision else ""
            self.set(
                phase=Phase.INITIALIZED,
                canary_weight=0,
                failed_checks=0,
                iterations=0,
                last_applied_spec=target.template_hash,
                last_promoted_spec=target.template_hash,
                tracked_configs=dict(target.tracked_configs),
                promoted_configs=dict(target.tracked_configs),
                current_revision=revision,
                last_good_revision=revision,
                message=f"{self.kind} {self.target_id} initialized; waiting for a new revision.",
            )
            self.event(f"Initialization done! {self.id}")
            self.alert(
                AlertKind.INITIALIZED,
                Severity.INFO,
                f"New {self.kind} detected, initialization completed.",
                with_metadata=True,
            )
            self.done()

        self.catch_up_revision()
        if self.status.refused and self.known_bad_match() is None:
            self.set(refused="")  # Git moved on from the known-bad release
        commands = obs.commands
        # Our commands on an idle canary.
        if commands.retry and (phase is Phase.FAILED or self.status.refused):
            self.consume("retry", commands.retry)
            if self.status.refused:
                self.event(
                    f"Analysing {self.target_id} although it is a known-bad release"
                    f"{self.by(commands.retry)}"
                )
                overridden = self.known_bad_match()
                self.set(known_bad=tuple(k for k in self.status.known_bad if k is not overridden))
            else:
                self.event(
                    f"Retrying the failed revision of {self.target_id}{self.by(commands.retry)}"
                )
            self.start_run(retry=True)
            return
        if commands.retry:
            self.consume("retry", commands.retry)
            self.event(
                f"Nothing to retry: {self.id} is {phase.value or 'not started'}", warning=True
            )

        # 13. should the canary advance?
        running = phase in (
            Phase.PROGRESSING,
            Phase.WAITING,
            Phase.WAITING_PROMOTION,
            Phase.PROMOTING,
            Phase.FINALISING,
        )
        changed = self.revision_changed()
        if not running:
            if phase is Phase.FAILED:
                if not changed:
                    # The known-bad template stays known-bad: re-sync so it does not re-run.
                    self.set(
                        last_applied_spec=target.template_hash,
                        tracked_configs=dict(target.tracked_configs),
                    )
                    self.drop_stale_commands()
                    self.process_git_revert()
                    self.done()
            elif not changed:
                self.drop_stale_commands()
                self.process_git_revert()  # a known-bad comeback's revert
                self.done()

        # 14. primary readiness
        if analysis_enabled and not obs.primary.readiness.ready:
            if obs.primary.readiness.retriable:
                self.event(
                    f"{self.primary_id} not ready: {obs.primary.readiness.message}", warning=True
                )
                self.set(message=f"Waiting for {self.primary_id}: {obs.primary.readiness.message}")
                self.done()
            if phase in (Phase.PROMOTING, Phase.FINALISING):
                self.failed_promotion(obs.primary.readiness.message)
            else:
                self.rollback(
                    f"primary not ready: {obs.primary.readiness.message}",
                    alert_kind=AlertKind.PROGRESS_DEADLINE,
                )
            self.done()

        # 16. a pending revision outside a run: confirm-rollout, then scale up.
        if phase not in (
            Phase.PROGRESSING,
            Phase.WAITING_PROMOTION,
            Phase.PROMOTING,
            Phase.FINALISING,
        ):
            known = self.known_bad_match()
            if known is not None and phase is not Phase.WAITING:
                self.refuse_known_bad(known)
                self.done()
            self.confirm_rollout_and_start()
            return

        # 17. a new revision mid-run restarts the analysis.
        if phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION) and changed:
            self.event(f"New revision detected! Restarting analysis for {self.target_id}")
            self.act(SetRoutes(TOTAL_WEIGHT, 0, False))
            self.reset_run(Phase.PROGRESSING, target.template_hash, dict(target.tracked_configs))
            self.set(
                current_revision=obs.revision.revision
                if obs.revision
                else self.status.current_revision,
                message=f"New revision of {self.target_id}; analysis restarted.",
            )
            self.done()

        # Commands inside a run.
        if commands.abort:
            self.consume("abort", commands.abort)
            if phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION):
                self.event(
                    f"Rolling back {self.id}: aborted{self.by(commands.abort)}", warning=True
                )
                self.rollback(f"aborted{self.by(commands.abort)}", alert_kind=AlertKind.ABORTED)
                self.done()
            self.event(
                f"Cannot abort {self.id} while {phase.value}: the primary is already being promoted",
                warning=True,
            )
        if commands.promote_full and phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION):
            self.consume("promoteFull", commands.promote_full)
            self.event(f"Skipping the rest of the analysis{self.by(commands.promote_full)}")
            self.promote_now()
            self.done()

        # 18. canary readiness
        if not target.readiness.ready:
            if target.readiness.retriable:
                self.event(f"{self.target_id} not ready: {target.readiness.message}", warning=True)
                self.set(message=f"Waiting for {self.target_id}: {target.readiness.message}")
                self.done()
            self.rollback(
                f"progress deadline exceeded {target.readiness.message}",
                alert_kind=AlertKind.PROGRESS_DEADLINE,
                detail=target.readiness.message,
            )
            self.done()

        # 19. skip analysis: promote at once.
        if self.spec.skips_analysis and phase is Phase.PROGRESSING:
            self.act(SetRoutes(TOTAL_WEIGHT, 0, False), Promote())
            if self.spec.autoscaler_ref is not None:
                self.act(ReconcilePrimaryScaler(init=False), PauseTargetScaler(True))
            self.act(ScaleTarget(ScaleMode.ZERO))
            self.succeed()
            self.event(f"Promotion completed! Canary analysis was skipped for {self.target_id}")
            self.alert(
                AlertKind.SKIPPED, Severity.INFO, "Canary analysis was skipped, promotion finished."
            )
            self.done()

        # 20. rollback hooks
        if phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION):
            for hook in self.analysis.hooks(HookType.ROLLBACK):
                answer = self.ask(HookRequest(hook.name, HookType.ROLLBACK, phase.value))
                assert isinstance(answer, HookAnswer)
                if answer.ok:
                    self.event(f"Rolling back {self.id} manual webhook invoked", warning=True)
                    self.rollback("manual webhook invoked", alert_kind=AlertKind.ROLLBACK_WEBHOOK)
                    self.done()
                self.event(f"Rollback hook {hook.name} not signaling a rollback")

        # 21. promoting: shift traffic back to the (now new) primary.
        if phase is Phase.PROMOTING:
            if self.spec.autoscaler_ref is not None:
                self.act(ReconcilePrimaryScaler(init=False))
            self.promotion_traffic_shift()
            self.done()

        # 22. finalising: scale the target down, done.
        if phase is Phase.FINALISING:
            if self.spec.autoscaler_ref is not None:
                self.act(PauseTargetScaler(True))
            self.act(ScaleTarget(ScaleMode.ZERO))
            self.succeed()
            self.event(f"Promotion completed! Scaling down {self.target_id}")
            self.alert(
                AlertKind.PROMOTED,
                Severity.INFO,
                "Canary analysis completed successfully, promotion finished.",
            )
            self.done()

        # 23. the failed-checks threshold
        if self.status.failed_checks >= self.analysis.threshold:
            self.rollback(
                f"failed checks threshold reached {self.status.failed_checks}",
                alert_kind=AlertKind.THRESHOLD_REACHED,
            )
            self.done()

        # 25. the first analysis tick runs pre-rollout hooks; later ticks the analysis.
        routes = self.routes()
        if (
            routes.canary == 0
            and self.status.iterations == 0
            and not (self.analysis.mirror and routes.mirrored)
        ):
            self.event(f"Starting canary analysis for {self.target_id}")
            verdict = self.run_hooks(HookType.PRE_ROLLOUT, Phase.PROGRESSING)
            if not verdict.ok:
                self.fail_check(
                    f"Halt {self.id} advancement pre-rollout check {verdict.hook} failed {verdict.message}".rstrip()
                )
                self.done()
            for hook in self.analysis.hooks(HookType.PRE_ROLLOUT):
                self.event(f"Pre-rollout check {hook.name} passed")
        else:
            self.run_analysis()

        # 26-27. strategy dispatch
        strategy = self.analysis.strategy
        if strategy is Strategy.AB_TESTING:
            self.run_ab(routes)
        elif strategy is Strategy.BLUE_GREEN:
            self.run_blue_green(routes)
        else:
            self.run_canary(routes)

    # ------------------------------------------------------------ detection

    def revision_changed(self) -> bool:
        """Flagger's HasTargetChanged || HaveDependenciesChanged (checklist 9)."""
        target = self.obs.target
        assert target is not None
        status = self.status
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

    def catch_up_revision(self) -> None:
        """A revision report that lags the applied spec is corrected once it arrives.

        Flux and Argo CD write their revision after applying, so a run may start
        with the previous revision's name. While the target still has the same
        template and configs, the revision seen now names it better.

        A report that leads the target (a HelmRelease's, see :class:`Revision`) only fills
        in a revision not known yet: a newer one names the next release.
        """
        target, revision = self.obs.target, self.obs.revision
        if target is None or revision is None or not revision.revision:
            return
        status = self.status
        if revision.leads:
            known = (
                status.current_revision
                if status.phase
                in (Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.PROMOTING, Phase.FINALISING)
                else status.last_good_revision
            )
            if known:
                return
        configs = dict(target.tracked_configs)
        if status.phase in (
            Phase.PROGRESSING,
            Phase.WAITING_PROMOTION,
            Phase.PROMOTING,
            Phase.FINALISING,
        ):
            if (
                target.template_hash == status.last_applied_spec
                and configs == dict(status.tracked_configs)
                and revision.revision != status.current_revision
            ):
                self.set(current_revision=revision.revision)
        elif status.phase in (Phase.INITIALIZED, Phase.SUCCEEDED):
            if (
                target.template_hash == status.last_promoted_spec
                and status.promoted_configs is not None
                and configs == dict(status.promoted_configs)
                and revision.revision != status.last_good_revision
            ):
                self.set(current_revision=revision.revision, last_good_revision=revision.revision)

    # ------------------------------------------------------------ starting a run

    def confirm_rollout_and_start(self) -> None:
        phase = self.status.phase
        commands = self.obs.commands
        if commands.abort:
            self.consume("abort", commands.abort)
            self.event(
                f"Rolling back {self.id}: aborted{self.by(commands.abort)} before it started",
                warning=True,
            )
            self.set(current_revision=self.obs.revision.revision if self.obs.revision else "")
            self.rollback(f"aborted{self.by(commands.abort)}", alert_kind=AlertKind.ABORTED)
            self.done()
        if commands.promote:
            self.consume("promote", commands.promote)
            self.event(f"Confirm-rollout gate opened{self.by(commands.promote)}")
        else:
            verdict = self.run_hooks(HookType.CONFIRM_ROLLOUT)
            if not verdict.ok:
                if phase is not Phase.WAITING:
                    self.event(
                        f"Halt {self.id} advancement waiting for approval {verdict.hook}",
                        warning=True,
                    )
                    self.alert(
                        AlertKind.WAITING_APPROVAL,
                        Severity.WARN,
                        "Canary is waiting for approval.",
                        mute=self.hook_muted(HookType.CONFIRM_ROLLOUT, verdict.hook),
                    )
                self.set(
                    phase=Phase.WAITING,
                    message=f"Waiting for approval: confirm-rollout hook {verdict.hook} (or canary promote).",
                )
                self.done()
            for hook in self.analysis.hooks(HookType.CONFIRM_ROLLOUT):
                self.event(f"Confirm-rollout check {hook.name} passed")
        self.start_run(retry=False)

    def start_run(self, *, retry: bool) -> None:
        target = self.obs.target
        assert target is not None
        revision = self.obs.revision.revision if self.obs.revision else ""
        self.event(f"New revision detected! Scaling up {self.target_id}")
        if self.status.git_revert is not None and not self.status.git_revert.state.finished:
            self.set(
                git_revert=_replace_revert(
                    self.status.git_revert,
                    state=RevertState.SUPERSEDED,
                    message="a new revision started a run before the revert was made",
                )
            )
        if self.spec.autoscaler_ref is not None:
            self.act(PauseTargetScaler(False))
        self.act(ScaleTarget(ScaleMode.UP))
        self.reset_run(Phase.PROGRESSING, target.template_hash, dict(target.tracked_configs))
        primary = self.obs.primary
        self.set(
            refused="",
            current_revision=revision,
            previous_images=primary.images if primary else (),
            run_start_time=iso(self.obs.now),
            analysis=(),
            inconclusive_checks=0,
            message=f"New revision of {self.target_id}{' (retry)' if retry else ''}: analysis starting.",
        )
        self.alert(
            AlertKind.STARTED,
            Severity.INFO,
            "New revision detected, progressing canary analysis.",
            with_metadata=True,
        )
        if self.provider == KUBERNETES and self.spec.analysis_or_default.iterations < 1:
            self.event(
                "Progressive traffic is not supported when using the kubernetes provider",
                warning=True,
            )
            self.event("Setting canaryAnalysis.iterations: 10", warning=True)
        self.done()

    def reset_run(self, phase: Phase, template_hash: str, configs: dict[str, str]) -> None:
        self.set(
            phase=phase,
            canary_weight=0,
            failed_checks=0,
            iterations=0,
            last_applied_spec=template_hash,
            tracked_configs=configs,
        )

    # ------------------------------------------------------------ analysis

    def fail_check(self, message: str) -> None:
        self.set(failed_checks=self.status.failed_checks + 1, message=message)
        self.event(message, warning=True)

    def run_analysis(self) -> None:
        """Rollout hooks, then every metric; at most one failed check per tick."""
        verdict = self.run_hooks(HookType.ROLLOUT, Phase.PROGRESSING)
        if not verdict.ok:
            self.fail_check(
                f"Halt {self.id} advancement external check {verdict.hook} failed {verdict.message}".rstrip()
            )
            self.done()
        if not self.analysis.metrics:
            return
        answer = self.ask(AnalysisRequest(tuple(m.name for m in self.analysis.metrics)))
        assert isinstance(answer, tuple)
        results: tuple[MetricResult, ...] = answer
        now = iso(self.obs.now)
        self.set(
            analysis=tuple(
                MetricStatus(
                    name=r.name,
                    outcome=r.outcome.value,
                    summary=r.summary,
                    value=r.value,
                    threshold=r.threshold,
                    primary_value=r.primary_value,
                    time=now,
                    details=r.details,
                )
                for r in results
            )
        )
        failing = [r for r in results if r.outcome in FAILING_OUTCOMES]
        conclusive = [r for r in failing if r.fail_fast]
        if conclusive:
            for result in conclusive:
                self.event(f"Halt {self.id} advancement {result.summary}", warning=True)
            self.set(failed_checks=self.status.failed_checks + 1)
            self.rollback(
                f"conclusive regression: {conclusive[0].summary}",
                alert_kind=AlertKind.REGRESSION,
            )
            self.done()
        if failing:
            for result in failing[1:]:
                self.event(f"Halt {self.id} advancement {result.summary}", warning=True)
            self.set(inconclusive_checks=0)
            self.fail_check(f"Halt {self.id} advancement {failing[0].summary}")
            self.done()
        waiting = [r for r in results if r.outcome is Outcome.INCONCLUSIVE]
        if waiting:
            first_of_streak = self.status.inconclusive_checks == 0
            self.set(inconclusive_checks=self.status.inconclusive_checks + 1)
            summary = "; ".join(r.summary for r in waiting)
            self.event(f"Halt {self.id} advancement waiting for more data: {summary}")
            self.set(message=f"Analysis inconclusive, waiting for more data: {summary}")
            if first_of_streak:
                self.alert(
                    AlertKind.INCONCLUSIVE,
                    Severity.WARN,
                    f"Canary analysis is inconclusive: {summary}",
                )
            self.done()
        self.set(inconclusive_checks=0)

    # ------------------------------------------------------------ strategies

    def confirm_promotion(self) -> bool:
        commands = self.obs.commands
        if commands.promote:
            self.consume("promote", commands.promote)
            self.event(f"Confirm-promotion gate opened{self.by(commands.promote)}")
            return True
        verdict = self.run_hooks(HookType.CONFIRM_PROMOTION, Phase.PROGRESSING)
        if verdict.ok:
            for hook in self.analysis.hooks(HookType.CONFIRM_PROMOTION):
                self.event(f"Confirm-promotion check {hook.name} passed")
            return True
        if self.status.phase is not Phase.WAITING_PROMOTION:
            self.event(
                f"Halt {self.id} advancement waiting for promotion approval {verdict.hook}",
                warning=True,
            )
            self.alert(
                AlertKind.WAITING_PROMOTION,
                Severity.WARN,
                "Canary promotion is waiting for approval.",
                mute=self.hook_muted(HookType.CONFIRM_PROMOTION, verdict.hook),
            )
        # Difference: Flagger zeroes canaryWeight and rewinds iterations here; we keep both.
        self.set(
            phase=Phase.WAITING_PROMOTION,
            message=f"Waiting for promotion approval: confirm-promotion hook {verdict.hook} (or canary promote).",
        )
        return False

    def promote_now(self) -> None:
        self.event(f"Copying {self.target_id} template spec to {self.primary_id}")
        self.act(Promote())
        self.set(
            phase=Phase.PROMOTING,
            message=f"Promoting: {self.primary_id} is rolling out the new template.",
        )

    def run_canary(self, routes: Routes) -> None:
        analysis = self.analysis
        weight = routes.canary
        if (
            self.status.phase is Phase.PROGRESSING
            and not routes.mirrored
            and weight > self.status.canary_weight
        ):
            # The routing object is ahead of the status: a step was applied but its pass
            # never recorded it (a crash or a conflict). Record it and give it its interval.
            self.set(canary_weight=weight, message=f"Canary weight {weight}%.")
            self.event(f"Advance {self.id} canary weight {weight}")
            self.done()
        step_weight = analysis.next_step_weight(weight)
        # confirm-traffic-increase gates every tick with a next step, the promoting one
        # included (Flagger 2.2 step 27), except while mirroring.
        if step_weight > 0 and not routes.mirrored and self.status.phase is Phase.PROGRESSING:
            if not self.confirm_traffic_increase():
                self.done()
        if weight < analysis.max_weight:
            if step_weight <= 0:
                self.done()
            mirrored = False
            if analysis.mirror and weight == 0:
                if not routes.mirrored:
                    primary, canary_w, mirrored = TOTAL_WEIGHT, 0, True
                else:
                    primary, canary_w = TOTAL_WEIGHT - step_weight, step_weight
            else:
                primary = max(0, routes.primary - step_weight)
                canary_w = min(TOTAL_WEIGHT, weight + step_weight)
            self.act(SetRoutes(primary, canary_w, mirrored))
            self.set(
                canary_weight=canary_w,
                message=(
                    f"Mirroring traffic to {self.target_id} before shifting weight."
                    if mirrored
                    else f"Canary weight {canary_w}%."
                ),
            )
            if mirrored:
                self.event(f"Start traffic mirroring for {self.id}")
            else:
                self.event(f"Advance {self.id} canary weight {canary_w}")
            self.done()
        if not self.confirm_promotion():
            self.done()
        self.promote_now()
        self.done()

    def confirm_traffic_increase(self) -> bool:
        commands = self.obs.commands
        if not self.analysis.hooks(HookType.CONFIRM_TRAFFIC_INCREASE):
            return True
        if commands.promote:
            self.consume("promote", commands.promote)
            self.event(f"Confirm-traffic-increase gate opened{self.by(commands.promote)}")
            return True
        verdict = self.run_hooks(HookType.CONFIRM_TRAFFIC_INCREASE, Phase.PROGRESSING)
        if verdict.ok:
            for hook in self.analysis.hooks(HookType.CONFIRM_TRAFFIC_INCREASE):
                self.event(f"Confirm-traffic-increase check {hook.name} passed")
            return True
        message = (
            f"Waiting for traffic increase approval: confirm-traffic-increase hook {verdict.hook}."
        )
        self.event(
            f"Halt {self.id} advancement waiting for traffic increase approval {verdict.hook}",
            warning=True,
        )
        # Difference: Flagger alerts on every waiting tick; we alert once per wait.
        if self.status.message != message:
            self.alert(
                AlertKind.WAITING_TRAFFIC_INCREASE,
                Severity.WARN,
                "Canary traffic increase is waiting for approval.",
                mute=self.hook_muted(HookType.CONFIRM_TRAFFIC_INCREASE, verdict.hook),
            )
        self.set(message=message)
        return False

    def run_ab(self, routes: Routes) -> None:
        n = self.analysis.iterations
        if n > self.status.iterations:
            self.act(SetRoutes(0, TOTAL_WEIGHT, False))
            iterations = self.status.iterations + 1
            self.set(
                canary_weight=TOTAL_WEIGHT,
                iterations=iterations,
                message=f"A/B iteration {iterations}/{n}.",
            )
            self.event(f"Advance {self.id} canary iteration {iterations}/{n}")
            self.done()
        if not self.confirm_promotion():
            self.done()
        self.promote_now()

    def run_blue_green(self, routes: Routes) -> None:
        n = self.analysis.iterations
        kubernetes = self.provider == KUBERNETES
        if n > self.status.iterations:
            if not kubernetes and self.analysis.mirror and not routes.mirrored:
                self.act(SetRoutes(TOTAL_WEIGHT, 0, True))
                self.event(f"Start traffic mirroring for {self.id}")
            iterations = self.status.iterations + 1
            self.set(iterations=iterations, message=f"Blue/green iteration {iterations}/{n}.")
            self.event(f"Advance {self.id} canary iteration {iterations}/{n}")
            self.done()
        if n == self.status.iterations:
            if not self.confirm_promotion():
                self.done()
            if not kubernetes:
                if self.analysis.mirror:
                    self.event("Stop traffic mirroring and route all traffic to canary")
                else:
                    self.event("Routing all traffic to canary")
                self.act(SetRoutes(0, TOTAL_WEIGHT, False))
                self.set(canary_weight=TOTAL_WEIGHT)
            # Difference: the gate is passed; keep the phase Progressing.
            self.set(
                phase=Phase.PROGRESSING,
                iterations=n + 1,
                message="All traffic on the new version; promoting next.",
            )
            self.done()
        self.promote_now()

    def promotion_traffic_shift(self) -> None:
        routes = self.routes()
        if self.provider == KUBERNETES:
            self.set(phase=Phase.FINALISING, canary_weight=0, message="Finalising the promotion.")
            return
        promotion_step = self.analysis.step_weight_promotion
        if promotion_step <= 0:
            self.event("Routing all traffic to primary")
            self.act(SetRoutes(TOTAL_WEIGHT, 0, False))
            self.set(
                phase=Phase.FINALISING,
                canary_weight=0,
                message="All traffic back on the promoted primary.",
            )
            return
        primary = min(TOTAL_WEIGHT, routes.primary + promotion_step)
        canary_w = max(0, TOTAL_WEIGHT - primary)
        self.act(SetRoutes(primary, canary_w, False))
        self.event(f"Advance {self.id} primary weight {primary}")
        if primary >= TOTAL_WEIGHT:
            self.set(
                phase=Phase.FINALISING,
                canary_weight=0,
                message="All traffic back on the promoted primary.",
            )
        else:
            self.set(canary_weight=canary_w, message=f"Promoting: primary weight {primary}%.")

    # ------------------------------------------------------------ endings

    def succeed(self) -> None:
        target = self.obs.target
        promoted = set(target.images) if target else set()
        self.set(
            known_bad=tuple(
                k
                for k in self.status.known_bad
                if k.template != self.status.last_applied_spec
                and not (k.images and set(k.images) <= promoted)
            ),
            phase=Phase.SUCCEEDED,
            canary_weight=0,
            iterations=0,
            last_promoted_spec=self.status.last_applied_spec,
            promoted_configs=dict(self.status.tracked_configs),
            last_good_revision=self.status.current_revision or self.status.last_good_revision,
            message=f"Promoted {self.target_id}"
            + (
                f" at revision {self.status.current_revision}"
                if self.status.current_revision
                else ""
            )
            + ".",
        )
        self.effects.append(CallHooks(HookType.POST_ROLLOUT, Phase.SUCCEEDED.value))
        self.drop_run_commands()

    def rollback(self, reason: str, *, alert_kind: AlertKind, detail: str = "") -> None:
        """Flagger's rollback(): traffic to primary, target to zero, phase Failed."""
        if alert_kind is AlertKind.THRESHOLD_REACHED:
            self.event(
                f"Rolling back {self.id} failed checks threshold reached {self.status.failed_checks}",
                warning=True,
            )
            self.alert(
                alert_kind,
                Severity.ERROR,
                f"Failed checks threshold reached {self.status.failed_checks}",
            )
        elif alert_kind is AlertKind.PROGRESS_DEADLINE:
            self.event(f"Rolling back {self.id} {reason}", warning=True)
            # Difference: Flagger sends no alert on this path (issues #1663, #1816).
            self.alert(
                alert_kind,
                Severity.ERROR,
                f"Progress deadline exceeded {detail or reason}".rstrip(),
            )
        elif alert_kind is AlertKind.ROLLBACK_WEBHOOK:
            self.alert(alert_kind, Severity.WARN, "Rolling back manual webhook invoked")
        elif alert_kind is AlertKind.REGRESSION:
            self.event(f"Rolling back {self.id} {reason}", warning=True)
            self.alert(
                alert_kind,
                Severity.ERROR,
                f"Canary is conclusively worse than the primary: {reason}",
            )
        elif alert_kind is AlertKind.ABORTED:
            self.alert(alert_kind, Severity.WARN, f"Rolling back: {reason}")
        self.act(SetRoutes(TOTAL_WEIGHT, 0, False))
        self.event(f"Canary failed! Scaling down {self.id}", warning=True)
        if self.spec.autoscaler_ref is not None:
            self.act(PauseTargetScaler(True))
        self.act(ScaleTarget(ScaleMode.ZERO))
        target = self.obs.target
        self.set(
            phase=Phase.FAILED,
            canary_weight=0,
            failed_checks=0,
            iterations=0,
            last_applied_spec=target.template_hash if target else self.status.last_applied_spec,
            tracked_configs=dict(target.tracked_configs) if target else self.status.tracked_configs,
            message=f"Rolled back {self.target_id}: {reason}.",
        )
        self.effects.append(CallHooks(HookType.POST_ROLLOUT, Phase.FAILED.value))
        self.drop_run_commands()
        self.remember_bad(reason)
        self.schedule_git_revert(reason)

    # ------------------------------------------------------------ known-bad releases

    def remember_bad(self, reason: str) -> None:
        """Record the failed release (bounded, newest last) so it is not analysed again."""
        target = self.obs.target
        if target is None:
            return
        primary = self.obs.primary
        before = set(self.status.previous_images or (primary.images if primary else ()))
        entry = KnownBad(
            revision=self.status.current_revision,
            images=tuple(i for i in target.images if i not in before),
            template=target.template_hash,
            failed_at=iso(self.obs.now),
            reason=reason[:300],
        )
        kept = [k for k in self.status.known_bad if k.template != entry.template]
        self.set(known_bad=(*kept, entry)[-KNOWN_BAD_LIMIT:])

    def known_bad_match(self) -> KnownBad | None:
        """The known-bad release the target's current revision brings back, if any."""
        target = self.obs.target
        if target is None:
            return None
        images = set(target.images)
        for entry in reversed(self.status.known_bad):
            # Every image the failed run introduced is back (a fix that keeps one of them,
            # a sidecar say, with a new main image is a new release).
            if entry.template == target.template_hash or (
                entry.images and set(entry.images) <= images
            ):
                return entry
        return None

    def refuse_known_bad(self, known: KnownBad) -> None:
        """Do not analyse a release that already failed: say so, and leave Git to a person.

        Not reverting it again is deliberate: the one who brought it back may be a person
        who wants it analysed (``canary retry``); image automation is kept from the tag by
        the exclusion written after the first revert (docs/gitops.md)."""
        target = self.obs.target
        assert target is not None
        again = set(known.images) if set(known.images) <= set(target.images) else set()
        what = f"image {', '.join(sorted(again))}" if again else "this template"
        why = (
            f"{what} failed its analysis in revision {known.revision or 'unknown'}"
            f" at {known.failed_at}: {known.reason}"
        )
        refused = f"Not analysing {self.target_id}: {why}. Run canary retry to analyse it anyway."
        revision = self.obs.revision.revision if self.obs.revision else ""
        self.set(
            refused=refused,
            last_applied_spec=target.template_hash,
            tracked_configs=dict(target.tracked_configs),
            current_revision=revision or self.status.current_revision,
            message=refused,
        )
        self.event(refused, warning=True)
        self.alert(
            AlertKind.KNOWN_BAD,
            Severity.WARN,
            f"Known-bad release not analysed: {why}. Git declares it again"
            + (f" in revision {revision}" if revision else "")
            + "; traffic stays on the primary. Revert it in Git, or run canary retry to "
            "analyse it on purpose.",
        )

    def failed_promotion(self, message: str) -> None:
        """Flagger 1.44: the primary broke while promoting; serve the canary."""
        self.event(
            f"Promotion of {self.target_id} failed, primary not ready: {message}", warning=True
        )
        self.alert(
            AlertKind.PROMOTION_FAILED,
            Severity.ERROR,
            f"Promotion failed, primary not ready: {message}",
        )
        self.act(SetRoutes(0, TOTAL_WEIGHT, False))
        target = self.obs.target
        self.set(
            phase=Phase.FAILED,
            canary_weight=TOTAL_WEIGHT,
            failed_checks=0,
            iterations=0,
            last_applied_spec=target.template_hash if target else self.status.last_applied_spec,
            message=f"Promotion failed ({message}); all traffic is on {self.target_id}.",
        )
        self.effects.append(CallHooks(HookType.POST_ROLLOUT, Phase.FAILED.value))
        self.drop_run_commands()
        self.remember_bad(f"promotion failed, primary not ready: {message}")
        self.schedule_git_revert(f"promotion failed, primary not ready: {message}")

    def finalize_deletion(self) -> None:
        if not self.spec.revert_on_deletion:
            self.done()
        self.event(f"Terminating canary {self.id}")
        self.act(Finalize())
        self.set(phase=Phase.TERMINATED, message="Terminated: the target serves traffic again.")
        self.event(f"Terminated canary {self.id}")

    # ------------------------------------------------------------ GitOps revert

    def schedule_git_revert(self, reason: str) -> None:
        good = self.status.last_good_revision
        bad = self.status.current_revision
        details = [reason]
        for metric in self.status.analysis:
            if metric.outcome != Outcome.PASS.value:
                details.append(f"{metric.name}: {metric.summary}")
        text = "; ".join(details)
        if not self.spec.gitops.revert:
            revert = GitRevertStatus(
                RevertState.SKIPPED, good, bad, text, message="spec.gitops.revert is false"
            )
        elif not bad:
            revert = GitRevertStatus(
                RevertState.SKIPPED,
                good,
                bad,
                text,
                message="the Git revision of the target is unknown (no GitSource, Flux or Argo CD manages it)",
            )
        elif not good:
            revert = GitRevertStatus(
                RevertState.SKIPPED, good, bad, text, message="no good revision is known yet"
            )
        elif good == bad:
            revert = GitRevertStatus(
                RevertState.SKIPPED,
                good,
                bad,
                text,
                message="the failed revision is the last good one",
            )
        else:
            known = self.status.known_bad[-1:] if self.status.known_bad else ()
            images = known[0].images if known and known[0].revision == bad else ()
            revert = GitRevertStatus(RevertState.PENDING, good, bad, text, images=images)
            self.requeue_after = 0.0
        self.set(git_revert=revert)

    def revert_due(self, revert: GitRevertStatus) -> bool:
        """Whether a waiting revert should be tried now: a retriable failure backs off
        (5 s doubling to 5 min, on the controller's clock), an open pull request is
        looked at once per analysis interval."""
        if revert.state is RevertState.PENDING or not revert.last_attempt_time:
            return True
        last = parse_iso(revert.last_attempt_time)
        if last is None:
            return True
        if revert.state is RevertState.PROPOSED:
            wait = float(self.spec.interval_seconds)
        else:
            wait = min(
                REVERT_BACKOFF_SECONDS * 2 ** max(0, revert.attempts - 1),
                REVERT_BACKOFF_MAX_SECONDS,
            )
        elapsed = (self.obs.now.replace(tzinfo=None) - last).total_seconds()
        if elapsed >= wait:
            return True
        remaining = wait - elapsed
        self.requeue_after = (
            remaining if self.requeue_after is None else min(self.requeue_after, remaining)
        )
        return False

    def process_git_revert(self) -> None:
        revert = self.status.git_revert
        if revert is None or revert.state not in (
            RevertState.PENDING,
            RevertState.FAILED,
            RevertState.PROPOSED,
        ):
            return
        if revert.state is RevertState.FAILED and not revert.retriable:
            return
        if not self.revert_due(revert):
            return
        answer = self.ask(
            RevertRequest(revert.good_revision, revert.bad_revision, revert.reason, revert.images)
        )
        assert isinstance(answer, RevertAnswer)
        now = iso(self.obs.now)
        attempts = revert.attempts + 1
        files = answer.files or revert.files
        if answer.kind is RevertResultKind.FAILED:
            self.set(
                git_revert=_replace_revert(
                    revert,
                    state=RevertState.FAILED,
                    message=answer.message,
                    attempts=attempts,
                    last_attempt_time=now,
                    retriable=answer.retriable,
                    files=files,
                )
            )
            self.event(
                f"Git revert of {revert.bad_revision} failed (attempt {attempts}): {answer.message}",
                warning=True,
            )
            if revert.state is not RevertState.FAILED:
                then = (
                    "retrying at a growing interval until it works"
                    if answer.retriable
                    else "it will not be retried: act on Git, then canary retry or a new revision"
                )
                self.alert(
                    AlertKind.REVERT_FAILED,
                    Severity.ERROR,
                    f"Git revert failed: {answer.message}. Traffic stays on the primary; {then}.",
                    pull_request=revert.pull_request,
                )
            return
        if answer.kind is RevertResultKind.PROPOSED:
            # A pull request seen before (a poll, or a forge outage in between) is no news.
            changed = revert.pull_request != answer.url
            self.set(
                git_revert=_replace_revert(
                    revert,
                    state=RevertState.PROPOSED,
                    commit=answer.commit,
                    message=answer.message,
                    attempts=attempts if changed else revert.attempts,
                    last_attempt_time=now,
                    retriable=True,
                    pull_request=answer.url,
                    files=files,
                )
            )
            if changed:
                self.event(
                    f"Opened pull request {answer.url} to revert {self.target_id} in Git to "
                    f"{revert.good_revision}"
                )
                self.alert(
                    AlertKind.REVERT_PROPOSED,
                    Severity.WARN,
                    f"Git revert proposed in pull request {answer.url}: the branch is protected; "
                    "merge it to bring Git back to the last good revision "
                    f"{revert.good_revision}.",
                    revert_commit=answer.commit,
                    pull_request=answer.url,
                )
            return
        if answer.kind is RevertResultKind.UNRESOLVED:
            self.set(
                git_revert=_replace_revert(
                    revert,
                    state=RevertState.UNRESOLVED,
                    message=answer.message,
                    attempts=attempts,
                    last_attempt_time=now,
                    retriable=False,
                    pull_request=answer.url or revert.pull_request,
                    files=files,
                )
            )
            self.event(
                f"Git revert of {revert.bad_revision} not possible: {answer.message}", warning=True
            )
            self.alert(
                AlertKind.REVERT_FAILED,
                Severity.ERROR,
                f"Git revert not possible: {answer.message}. Traffic stays on the primary; "
                "Git still declares the failed version until a person acts.",
                pull_request=answer.url or revert.pull_request,
            )
            return
        state = {
            RevertResultKind.REVERTED: RevertState.REVERTED,
            RevertResultKind.ALREADY_REVERTED: RevertState.ALREADY_REVERTED,
            RevertResultKind.SUPERSEDED: RevertState.SUPERSEDED,
        }[answer.kind]
        pull_request = answer.url or revert.pull_request
        self.set(
            git_revert=_replace_revert(
                revert,
                state=state,
                commit=answer.commit,
                message=answer.message,
                attempts=attempts,
                last_attempt_time=now,
                pull_request=pull_request,
                files=files,
            )
        )
        if state is RevertState.REVERTED or (
            state is RevertState.ALREADY_REVERTED and (answer.commit or pull_request)
        ):
            # REVERTED, or our own commit pushed by a pass whose status write never happened
            # (the alert that pass would have sent goes out now), or our pull request merged.
            merged = f" (pull request {pull_request} merged)" if pull_request else ""
            self.event(
                f"Reverted {self.target_id} in Git to {revert.good_revision}"
                + (f": commit {answer.commit}" if answer.commit else "")
                + merged
            )
            self.alert(
                AlertKind.REVERTED,
                Severity.INFO,
                f"Git reverted to the last good revision {revert.good_revision}.",
                revert_commit=answer.commit,
                pull_request=pull_request,
            )
        elif state is RevertState.ALREADY_REVERTED:
            self.event(f"Git already holds the revert of {revert.bad_revision}")
        else:
            self.event(f"Git revert of {revert.bad_revision} not needed: {answer.message}")

    # ------------------------------------------------------------ commands

    def by(self, token: str) -> str:
        who = requester(token)
        return f" by {who}" if who else ""

    def drop_run_commands(self) -> None:
        """A finished run consumes promote tokens that never met a gate."""
        commands = self.obs.commands
        self.consume("promote", commands.promote)
        self.consume("promoteFull", commands.promote_full)

    def drop_stale_commands(self) -> None:
        commands = self.obs.commands
        for key, token in (
            ("promote", commands.promote),
            ("promoteFull", commands.promote_full),
            ("abort", commands.abort),
        ):
            if token:
                self.consume(key, token)
                self.event(f"Ignoring {key}: nothing is running for {self.id}", warning=True)

    # ------------------------------------------------------------ result

    def decision(self) -> Decision:
        if self.frozen:
            return Decision(status=self.old, effects=tuple(self.effects))
        status = self.status.with_(handled_commands=self.handled)
        status = with_conditions(status, self.old, self.kind, self.obs.now)
        return Decision(
            status=status,
            actions=tuple(self.actions),
            effects=tuple(self.effects),
            requeue_after=self.requeue_after,
        )


def _replace_revert(revert: GitRevertStatus, **changes: object) -> GitRevertStatus:
    return replace(revert, **changes)  # type: ignore[arg-type]
