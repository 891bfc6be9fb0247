"""One tick's working state, and the building blocks every part of the machine uses.

A tick reads the old status and the observations, and accumulates a new status, the
actions and the effects; `Tick` is that accumulator. It is mutable on purpose and lives
only inside one call of `canary.core.machine.decide`: what leaves the tick is the frozen
`Decision` built by `Tick.decision`.

The parts of the machine (initialization, revisions, checks, strategies, promotion,
endings, known-bad releases, the Git revert) are functions of a `Tick` in their own
modules. A part that needs an answer from the world is a generator, a `Flow`: it yields
the `Request` and receives the `Answer` (see `canary.core.machine`). A part that may end
the tick returns ``True`` when it has decided it (Flagger's ``return`` in advanceCanary),
and the caller returns at once: no exception unwinds a tick.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import TypeVar

from canary.core.actions import (
    Action,
    AlertKind,
    Decision,
    Effect,
    EmitEvent,
    EventType,
    SendAlert,
)
from canary.core.alerts import build_alert
from canary.core.observations import (
    AnalysisRequest,
    Answer,
    HookAnswer,
    HookRequest,
    MetricResult,
    Observations,
    Request,
    RevertAnswer,
    RevertRequest,
    Routes,
)
from canary.core.phases import Trigger, transition
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
from canary.model.status import CanaryStatus, Phase

T = TypeVar("T")

Flow = Generator[Request, Answer, T]
"""A part of the tick that may ask the world: yields requests, is sent their answers, and
returns ``T``."""

KUBERNETES = "kubernetes"


@dataclass(frozen=True, slots=True)
class HookVerdict:
    """The outcome of a group of gate or check hooks: the first that said no, if any."""

    ok: bool
    hook: str = ""
    message: str = ""


def effective_analysis(canary: Canary) -> AnalysisSpec:
    """The analysis as the tick uses it (Flagger forces iterations for `kubernetes`)."""
    analysis = canary.spec.analysis_or_default
    if canary.spec.provider == KUBERNETES and analysis.iterations < 1:
        return replace(analysis, iterations=10, match=())
    return analysis


class Tick:
    """The working state of one tick (see the module docstring)."""

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
        self.frozen = False  # a suspended tick writes nothing (checklist 37)
        # Set by the analysis when inconclusive verdicts let the weight step up: the
        # strategy may add traffic, but never promotes on this tick (what is inconclusive).
        self.hold_promotion = ""
        # Set by the machine at the end of the tick: the target has a new revision that this
        # tick saw but did not start (the Promoted condition says so, canary.core.status).
        self.pending_revision = False
        self.handled: dict[str, str] = dict(status.handled_commands)
        self.target_name = canary.spec.target_ref.name
        self.kind = canary.spec.target_ref.kind or "Deployment"
        self.id = f"{canary.name}.{canary.namespace}"
        self.target_id = f"{self.target_name}.{canary.namespace}"
        self.primary_id = f"{self.target_name}-primary.{canary.namespace}"
        self.provider = canary.spec.provider or KUBERNETES

    @property
    def at_last_step(self) -> bool:
        """Whether a passing analysis now would take the run's last step.

        A canary at ``maxWeight`` would promote; A/B testing and blue/green would
        finish their iterations.  (The strategies in canary/core/strategies.py take
        the step; this only tells the analysis that it is the last one.)
        """
        if self.analysis.strategy is Strategy.CANARY:
            return self.status.canary_weight >= self.analysis.max_weight
        return self.status.iterations >= self.analysis.iterations

    # ------------------------------------------------------------ status, actions, effects

    def set(self, **changes: object) -> None:
        self.status = self.status.with_(**changes)

    def move(self, trigger: Trigger, **changes: object) -> None:
        """Change the phase, only ever through the table (canary/core/phases.py)."""
        self.set(phase=transition(self.status.phase, trigger), **changes)

    def act(self, *actions: Action) -> None:
        self.actions.extend(actions)

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
        alert = build_alert(
            self.canary,
            self.analysis,
            self.obs,
            old=self.old,
            status=self.status,
            target=f"{self.kind}/{self.target_id}",
            kind=kind,
            severity=severity,
            message=message,
            with_metadata=with_metadata,
            mute=mute,
            revert_commit=revert_commit,
            pull_request=pull_request,
        )
        self.effects.append(SendAlert(alert))

    def requeue_within(self, seconds: float) -> None:
        """Ask for the next pass no later than ``seconds`` from now."""
        self.requeue_after = (
            seconds if self.requeue_after is None else min(self.requeue_after, seconds)
        )

    # ------------------------------------------------------------ asking the world

    def ask_hook(self, request: HookRequest) -> Flow[HookAnswer]:
        answer = yield request
        assert isinstance(answer, HookAnswer), f"{request} answered with {answer!r}"
        return answer

    def ask_metrics(self) -> Flow[tuple[MetricResult, ...]]:
        answer = yield AnalysisRequest(
            tuple(m.name for m in self.analysis.metrics), last_step=self.at_last_step
        )
        assert isinstance(answer, tuple), f"the analysis answered with {answer!r}"
        return answer

    def ask_revert(self, request: RevertRequest) -> Flow[RevertAnswer]:
        answer = yield request
        assert isinstance(answer, RevertAnswer), f"{request} answered with {answer!r}"
        return answer

    def run_hooks(self, kind: HookType, phase: Phase | None = None) -> Flow[HookVerdict]:
        """Call the hooks of one type in spec order; the first failure stops (Flagger)."""
        reported = (phase or self.status.phase).value
        for hook in self.analysis.hooks(kind):
            answer = yield from self.ask_hook(HookRequest(hook.name, kind, reported))
            if not answer.ok:
                return HookVerdict(False, hook.name, answer.message)
        return HookVerdict(True)

    def open_gate(
        self, kind: HookType, title: str, phase: Phase | None = None
    ) -> Flow[HookVerdict]:
        """A confirm gate of ``kind``: open when ``canary promote`` asked (its token is
        consumed) or when every hook of the gate says yes, with an Event naming ``title``
        either way; else the verdict of the first hook that said no."""
        promote = self.obs.commands.promote
        if promote:
            self.consume("promote", promote)
            self.event(f"{title} gate opened{self.by(promote)}")
            return HookVerdict(True)
        verdict = yield from self.run_hooks(kind, phase)
        if verdict.ok:
            for hook in self.analysis.hooks(kind):
                self.event(f"{title} check {hook.name} passed")
        return verdict

    def hold_at_gate(
        self,
        verdict: HookVerdict,
        *,
        gate: HookType,
        waiting: Phase,
        trigger: Trigger,
        approval: str,
        subject: str,
        alert: AlertKind,
    ) -> None:
        """Stay at a closed confirm gate (moving to ``waiting``); people hear of it once,
        when the wait begins, not on every tick of it."""
        if self.status.phase is not waiting:
            self.event(
                f"Halt {self.id} advancement waiting for {approval} {verdict.hook}", warning=True
            )
            self.alert(
                alert,
                Severity.WARN,
                f"{subject} is waiting for approval.",
                mute=self.hook_muted(gate, verdict.hook),
            )
        self.move(
            trigger,
            message=f"Waiting for {approval}: {gate.value} hook {verdict.hook} "
            "(or canary promote).",
        )

    def hook_muted(self, kind: HookType, name: str) -> bool:
        return any(h.mute_alert for h in self.analysis.hooks(kind) if h.name == name)

    def routes(self) -> Routes:
        # The routing object is the truth; before it exists it will be created at 100/0.
        return self.obs.routes if self.obs.routes is not None else Routes(TOTAL_WEIGHT, 0, False)

    # ------------------------------------------------------------ commands

    def consume(self, key: str, token: str | None) -> None:
        if token:
            self.handled[key] = token

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
        status = with_conditions(
            status, self.old, self.kind, self.obs.now, pending_revision=self.pending_revision
        )
        return Decision(
            status=status,
            actions=tuple(self.actions),
            effects=tuple(self.effects),
            requeue_after=self.requeue_after,
        )
