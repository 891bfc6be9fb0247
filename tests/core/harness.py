"""A simulated world for the pure core, and a tick loop that drives the core in it.

The harness plays the imperative shell in miniature, with no I/O at all:

* `World` holds what the shell would observe: the target's pod-template hash,
  tracked configs and readiness, whether the primary exists and is ready, the
  routing object's weights (changed only by `SetRoutes`/`ReconcileRouter`
  actions, and read back from there, as Flagger reads them back), the Git
  revision, the Canary's annotations (commands) and deletion.
* `Script` says how the world answers, per tick: metric outcomes, hook answers
  per hook name, canary/primary readiness, Git revert outcomes, and arbitrary
  changes to the world before a tick (a new template, an annotation, ...).
* `run` loops: observe → `drive` the tick, answering its requests from the
  script → apply its actions → next tick at ``now + interval`` (or
  ``now + requeue_after`` when the decision asks for it). Every tick is kept as
  a `TickRecord` (phase, routes, counters, actions, Events, alerts and every
  request asked), so tests can assert tick counts and hook call counts. Each
  tick is then replayed with `step` from its final observations, which must
  give the same decision (the core is deterministic).

Ticks are numbered from 1. By default `run` first initializes the canary (the
ticks until ``Initialized``, kept in `RunResult.init`), then changes the target
to a new revision (template ``v2``), so tick 1 is the tick that detects it,
like "tick1" in reference/flagger.md 2.3. ``start="fresh"`` records the
initialization ticks too; ``start="initialized"`` starts idle without a change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import yaml

from canary.core import (
    Action,
    Alert,
    AnalysisRequest,
    Answer,
    CallHooks,
    Decision,
    EnsurePrimary,
    EventType,
    HookAnswer,
    HookRequest,
    MetricResult,
    Observations,
    Outcome,
    PrimaryObservation,
    Promote,
    Readiness,
    ReconcileRouter,
    Request,
    RevertAnswer,
    RevertRequest,
    RevertResultKind,
    Revision,
    Routes,
    ScaleMode,
    ScaleTarget,
    SetRoutes,
    TargetObservation,
    drive,
    run_now,
    step,
)
from canary.model import Canary, CanaryStatus, Commands, HookType, Phase, parse_canary

NOW0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)

# ------------------------------------------------------------------ building canaries


def hook(name: str, type_: str, **extra: Any) -> dict[str, Any]:
    """One ``analysis.webhooks[]`` entry."""
    return {"name": name, "type": type_, "url": f"http://hooks.test/{name}", **extra}


DEFAULT_METRICS: list[dict[str, Any]] = [
    {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"},
]


def canary_doc(
    analysis: Mapping[str, Any] | None = None,
    *,
    name: str = "podinfo",
    namespace: str = "test",
    provider: str | None = "istio",
    **spec: Any,
) -> dict[str, Any]:
    """A Canary manifest (a dict); ``analysis`` gets a default metric unless it names its own.

    ``analysis=None`` leaves the section out (Flagger: no analysis = skip analysis).
    Extra keyword arguments become spec fields (``skipAnalysis=True``).
    """
    body: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "service": {"port": 9898},
    }
    if provider is not None:
        body["provider"] = provider
    if analysis is not None:
        section = dict(analysis)
        section.setdefault("interval", "1m")
        section.setdefault("metrics", DEFAULT_METRICS)
        body["analysis"] = section
    body.update(spec)
    return {
        "apiVersion": "canary.gitops.dev/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def load_canary(source: Canary | Mapping[str, Any] | str) -> Canary:
    """A parsed Canary from a `Canary`, a manifest dict or YAML text."""
    if isinstance(source, Canary):
        return source
    if isinstance(source, str):
        doc = yaml.safe_load(source)
        assert isinstance(doc, dict), "the YAML must hold one Canary object"
        return parse_canary(doc)
    return parse_canary(source)


# ------------------------------------------------------------------ the world


@dataclass
class World:
    """What the shell would observe; changed by actions and by the script."""

    template_hash: str = "v1"
    images: tuple[str, ...] = ("ghcr.io/stefanprodan/podinfo:6.0.0",)
    tracked_configs: dict[str, str] = field(default_factory=dict)
    target_exists: bool = True
    target_readiness: Readiness = field(default_factory=Readiness.ok)
    selector_error: str = ""
    target_replicas: int = 1
    primary_exists: bool = False
    primary_readiness: Readiness = field(default_factory=Readiness.ok)
    primary_template: str = ""
    primary_images: tuple[str, ...] = ()
    routes: Routes | None = None
    revision: str | None = None
    revision_leads: bool = False  # the report comes from a HelmRelease (it leads the target)
    annotations: dict[str, str] = field(default_factory=dict)
    deleting: bool = False
    generation: int = 1
    woken: bool = False  # the pass was woken early by a change (a command, an edit)
    applied: list[Action] = field(default_factory=list)

    def new_revision(
        self, template_hash: str, image_tag: str = "", revision: str | None = None
    ) -> None:
        """The target changes (what a GitOps reconciler applying a new commit does)."""
        self.template_hash = template_hash
        self.images = (f"ghcr.io/stefanprodan/podinfo:{image_tag or template_hash}",)
        if revision is not None:
            self.revision = revision

    def observe(self, now: datetime, status: CanaryStatus) -> Observations:
        target = (
            TargetObservation(
                template_hash=self.template_hash,
                readiness=self.target_readiness,
                tracked_configs=dict(self.tracked_configs),
                images=self.images,
                selector_error=self.selector_error,
            )
            if self.target_exists
            else None
        )
        primary = (
            PrimaryObservation(readiness=self.primary_readiness, images=self.primary_images)
            if self.primary_exists
            else None
        )
        return Observations(
            now=now,
            target=target,
            primary=primary,
            routes=self.routes,
            revision=Revision(self.revision, "GitSource test/apps", leads=self.revision_leads)
            if self.revision
            else None,
            commands=Commands.from_annotations(self.annotations, status.handled_commands),
            deleting=self.deleting,
            generation=self.generation,
            woken=self.woken,
        )

    def apply(self, action: Action) -> None:
        self.applied.append(action)
        if isinstance(action, EnsurePrimary) and not self.primary_exists:
            self.primary_exists = True
            self.primary_template = self.template_hash
            self.primary_images = self.images
        elif isinstance(action, ReconcileRouter) and self.routes is None:
            self.routes = Routes(100, 0, False)
        elif isinstance(action, SetRoutes):
            self.routes = Routes(action.primary, action.canary, action.mirrored)
        elif isinstance(action, ScaleTarget):
            self.target_replicas = 0 if action.mode is ScaleMode.ZERO else 1
        elif isinstance(action, Promote):
            self.primary_template = self.template_hash
            self.primary_images = self.images


# ------------------------------------------------------------------ the script

HookPlan = bool | Mapping[int, bool] | Callable[[int], bool]
MetricPlan = (
    Outcome
    | Sequence[Outcome]
    | Mapping[int, Outcome | Sequence[Outcome]]
    | Callable[[int], Outcome | Sequence[Outcome]]
)
ReadinessPlan = Readiness | Mapping[int, Readiness] | Callable[[int], Readiness] | None
RevertPlan = (
    RevertAnswer | Mapping[int, RevertAnswer] | Callable[[int, RevertRequest], RevertAnswer]
)


def _at(plan: Any, tick: int, default: Any) -> Any:
    if callable(plan) and not isinstance(plan, Outcome | Readiness | RevertAnswer):
        return plan(tick)
    if isinstance(plan, Mapping):
        return plan.get(tick, default)
    return plan


def fail_from(tick: int, outcome: Outcome = Outcome.FAIL) -> Callable[[int], Outcome]:
    """Metrics pass before ``tick`` and give ``outcome`` from it on."""
    return lambda t: outcome if t >= tick else Outcome.PASS


def closed_until(tick: int) -> Callable[[int], bool]:
    """A gate that says no before ``tick`` and yes from it on."""
    return lambda t: t >= tick


@dataclass
class Script:
    """How the world answers, per tick (ticks are numbered from 1)."""

    metrics: MetricPlan = Outcome.PASS
    # by hook name; default yes, except rollback hooks (yes would mean "roll back")
    hooks: Mapping[str, HookPlan] = field(default_factory=dict)
    canary_ready: ReadinessPlan = None  # None: keep the world's readiness
    primary_ready: ReadinessPlan = None
    reverts: RevertPlan = field(
        default_factory=lambda: RevertAnswer(RevertResultKind.REVERTED, commit="c0ffee1")
    )
    before: Mapping[int, Callable[[World], None]] = field(default_factory=dict)
    # Whole metric results per tick (flags, samples, ...), where an Outcome is not enough;
    # None (or a tick it returns None for) falls back to ``metrics``.
    results: Callable[[int, tuple[str, ...]], tuple[MetricResult, ...] | None] | None = None

    def hook_answer(self, request: HookRequest, tick: int) -> HookAnswer:
        default = request.type is not HookType.ROLLBACK
        ok = bool(_at(self.hooks.get(request.hook, default), tick, default))
        return HookAnswer(ok, "" if ok else f"{request.hook} said no (403)")

    def metric_answer(self, request: AnalysisRequest, tick: int) -> tuple[MetricResult, ...]:
        given = self.results(tick, request.metrics) if self.results is not None else None
        if given is not None:
            return given
        plan = _at(self.metrics, tick, Outcome.PASS)
        outcomes: Sequence[Outcome] = (
            [plan] * len(request.metrics) if isinstance(plan, Outcome) else list(plan)
        )
        results = []
        for index, name in enumerate(request.metrics):
            outcome = outcomes[index] if index < len(outcomes) else Outcome.PASS
            value = 99.9 if outcome is Outcome.PASS else 80.0
            results.append(
                MetricResult(
                    name=name,
                    outcome=outcome,
                    summary=f"{name} {outcome.value.lower()} (value {value})",
                    value=None if outcome in (Outcome.NODATA, Outcome.ERROR) else value,
                    threshold=">= 99",
                )
            )
        return tuple(results)

    def revert_answer(self, request: RevertRequest, tick: int) -> RevertAnswer:
        plan = self.reverts
        if isinstance(plan, RevertAnswer):
            return plan
        if isinstance(plan, Mapping):
            answer = plan.get(tick)
            assert answer is not None, f"no revert answer scripted for tick {tick}"
            return answer
        return plan(tick, request)


# ------------------------------------------------------------------ records


@dataclass(frozen=True)
class TickRecord:
    tick: int
    now: datetime
    before: CanaryStatus
    decision: Decision
    observations: Observations  # the final ones, answers included
    requests: tuple[Request, ...]  # every request asked, in order
    routes: Routes | None  # the routing object after the actions ran
    steps: int  # times the tick was resumed: once to start, once per answer

    @property
    def status(self) -> CanaryStatus:
        return self.decision.status

    @property
    def phase(self) -> Phase:
        return self.decision.status.phase

    @property
    def weight(self) -> int:
        return self.decision.status.canary_weight

    @property
    def failed_checks(self) -> int:
        return self.decision.status.failed_checks

    @property
    def iterations(self) -> int:
        return self.decision.status.iterations

    @property
    def actions(self) -> tuple[Action, ...]:
        return self.decision.actions

    @property
    def set_routes(self) -> tuple[SetRoutes, ...]:
        return tuple(a for a in self.decision.actions if isinstance(a, SetRoutes))

    @property
    def events(self) -> tuple[str, ...]:
        return tuple(e.message for e in self.decision.events)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(e.message for e in self.decision.events if e.type is EventType.WARNING)

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return self.decision.alerts

    @property
    def hooks_asked(self) -> tuple[HookRequest, ...]:
        return tuple(r for r in self.requests if isinstance(r, HookRequest))

    @property
    def called_hooks(self) -> tuple[CallHooks, ...]:
        return tuple(e for e in self.decision.effects if isinstance(e, CallHooks))

    @property
    def analysed(self) -> bool:
        return any(isinstance(r, AnalysisRequest) for r in self.requests)

    @property
    def reverts_asked(self) -> tuple[RevertRequest, ...]:
        return tuple(r for r in self.requests if isinstance(r, RevertRequest))

    def has_event(self, fragment: str) -> bool:
        return any(fragment in e for e in self.events)


@dataclass
class RunResult:
    canary: Canary
    world: World
    init: list[TickRecord]
    ticks: list[TickRecord]

    def __getitem__(self, tick: int) -> TickRecord:
        """The record of tick ``tick`` (1-based)."""
        assert 1 <= tick <= len(self.ticks), f"tick {tick} not run (ran {len(self.ticks)})"
        return self.ticks[tick - 1]

    @property
    def last(self) -> TickRecord:
        return self.ticks[-1]

    @property
    def status(self) -> CanaryStatus:
        return self.ticks[-1].status if self.ticks else self.init[-1].status

    def phases(self) -> list[Phase]:
        return [t.phase for t in self.ticks]

    def first(self, phase: Phase) -> int | None:
        """The first tick that ended in ``phase``."""
        return next((t.tick for t in self.ticks if t.phase is phase), None)

    def routes(self) -> list[tuple[int, int] | None]:
        return [(t.routes.primary, t.routes.canary) if t.routes else None for t in self.ticks]

    def canary_weights_set(self) -> list[int]:
        """The canary weight of every SetRoutes, in order."""
        return [a.canary for t in self.ticks for a in t.set_routes]

    def events(self) -> list[str]:
        return [e for t in self.ticks for e in t.events]

    def alerts(self) -> list[Alert]:
        return [a for t in self.ticks for a in t.alerts]

    def hook_counts(self) -> Counter[str]:
        """How often each hook type was called: gates/checks asked, post-rollout fired."""
        counts: Counter[str] = Counter()
        for record in self.ticks:
            for request in record.hooks_asked:
                counts[request.type.value] += 1
            for effect in record.called_hooks:
                counts[effect.type.value] += 1
        return counts

    def hook_requests(self, type_: HookType) -> list[tuple[int, HookRequest]]:
        return [(t.tick, r) for t in self.ticks for r in t.hooks_asked if r.type is type_]


# ------------------------------------------------------------------ the loop


def decide(
    canary: Canary,
    status: CanaryStatus,
    obs: Observations,
    script: Script,
    tick: int,
) -> tuple[Decision, Observations, tuple[Request, ...], int]:
    """One tick, driven by `canary.core.drive` with the script's answers.

    Returns the decision, the observations with every answer added (so the tick can be
    replayed with `step`), the requests in the order asked, and how many times the tick
    was resumed (once to start, once per answer).
    """
    asked: list[Request] = []
    answered = obs

    async def answer(request: Request) -> Answer:
        nonlocal answered
        assert request not in asked, f"request asked twice in one tick: {request}"
        asked.append(request)
        given: Answer
        if isinstance(request, HookRequest):
            given = script.hook_answer(request, tick)
        elif isinstance(request, AnalysisRequest):
            given = script.metric_answer(request, tick)
        else:
            given = script.revert_answer(request, tick)
        answered = answered.with_answer(request, given)
        return given

    decision = run_now(drive(canary, status, obs, answer))
    assert decision.final, "drive returned a decision that still asks"
    return decision, answered, tuple(asked), len(asked) + 1


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def advance(self, decision: Decision, interval: int) -> None:
        seconds = decision.requeue_after if decision.requeue_after is not None else interval
        self.now += timedelta(seconds=max(0.0, seconds))


def _tick(
    canary: Canary,
    status: CanaryStatus,
    world: World,
    script: Script,
    clock: Clock,
    tick: int,
    *,
    apply_plan: bool,
    check_determinism: bool,
) -> TickRecord:
    if apply_plan:
        change = script.before.get(tick)
        if change is not None:
            change(world)
        canary_ready = _at(script.canary_ready, tick, None)
        if canary_ready is not None:
            world.target_readiness = canary_ready
        primary_ready = _at(script.primary_ready, tick, None)
        if primary_ready is not None:
            world.primary_readiness = primary_ready
    obs = world.observe(clock.now, status)
    decision, final_obs, asked, steps = decide(canary, status, obs, script, tick)
    if check_determinism:
        again = step(canary, status, final_obs)
        assert again == decision, f"tick {tick}: the same inputs gave another decision"
        unanswered = step(canary, status, obs)
        if asked:
            assert unanswered == Decision(status=status, requests=asked[:1]), (
                f"tick {tick}: without answers, step must ask the first question"
            )
        else:
            assert unanswered == decision
    for action in decision.actions:
        world.apply(action)
    record = TickRecord(
        tick=tick,
        now=clock.now,
        before=status,
        decision=decision,
        observations=final_obs,
        requests=asked,
        routes=world.routes,
        steps=steps,
    )
    clock.advance(decision, canary.spec.interval_seconds)
    return record


Start = Literal["new-revision", "initialized", "fresh"]


def initialize(
    canary: Canary, world: World, clock: Clock, status: CanaryStatus | None = None
) -> tuple[CanaryStatus, list[TickRecord]]:
    """Run ticks until the canary is Initialized (primary ready, routes created)."""
    status = status or CanaryStatus()
    records: list[TickRecord] = []
    for index in range(1, 6):
        record = _tick(
            canary,
            status,
            world,
            Script(),
            clock,
            -index,
            apply_plan=False,
            check_determinism=False,
        )
        records.append(record)
        status = record.status
        if status.phase is Phase.INITIALIZED:
            return status, records
    raise AssertionError(f"not initialized after 5 ticks: {[r.phase for r in records]}")


def run(
    canary: Canary | Mapping[str, Any] | str,
    ticks: int,
    script: Script | None = None,
    *,
    start: Start = "new-revision",
    world: World | None = None,
    status: CanaryStatus | None = None,
    new_template: str = "v2",
    new_git_revision: str | None = None,
    until: Callable[[TickRecord], bool] | None = None,
    check_determinism: bool = True,
    init_with: Canary | Mapping[str, Any] | str | None = None,
) -> RunResult:
    """Drive the core for ``ticks`` ticks in a simulated world (see the module docstring).

    ``init_with`` initializes with another spec (e.g. before the canary is suspended).
    """
    parsed = load_canary(canary)
    script = script or Script()
    world = world or World()
    clock = Clock(NOW0)
    init: list[TickRecord] = []
    current = status or CanaryStatus()
    if start != "fresh" and current.phase in (Phase.NONE, Phase.INITIALIZING):
        init_canary = load_canary(init_with) if init_with is not None else parsed
        current, init = initialize(init_canary, world, clock, current)
    if start == "new-revision":
        world.new_revision(new_template, revision=new_git_revision)
    records: list[TickRecord] = []
    for tick in range(1, ticks + 1):
        record = _tick(
            parsed,
            current,
            world,
            script,
            clock,
            tick,
            apply_plan=True,
            check_determinism=check_determinism,
        )
        records.append(record)
        current = record.status
        if until is not None and until(record):
            break
    return RunResult(parsed, world, init, records)


def ended(*phases: Phase) -> Callable[[TickRecord], bool]:
    """An ``until`` for `run`: stop after the first tick that ends in one of ``phases``."""
    return lambda record: record.phase in phases


def finished(record: TickRecord) -> bool:
    return record.phase in (Phase.SUCCEEDED, Phase.FAILED)


def with_annotation(key: str, value: str) -> Callable[[World], None]:
    def change(world: World) -> None:
        world.annotations[key] = value

    return change


def without_annotation(key: str) -> Callable[[World], None]:
    def change(world: World) -> None:
        world.annotations.pop(key, None)

    return change


def set_world(**changes: Any) -> Callable[[World], None]:
    """A script change that sets World attributes (``set_world(template_hash="v3")``)."""

    def change(world: World) -> None:
        for key, value in changes.items():
            assert hasattr(world, key), key
            setattr(world, key, value)

    return change


def new_revision(template_hash: str, revision: str | None = None) -> Callable[[World], None]:
    def change(world: World) -> None:
        world.new_revision(template_hash, revision=revision)

    return change


def single_step(
    canary: Canary | Mapping[str, Any] | str,
    status: CanaryStatus,
    world: World,
    script: Script | None = None,
    *,
    now: datetime = NOW0,
) -> TickRecord:
    """One tick from a given status (for table tests that set the status directly)."""
    parsed = load_canary(canary)
    return _tick(
        parsed,
        status,
        world,
        script or Script(),
        Clock(now),
        1,
        apply_plan=True,
        check_determinism=True,
    )


def running_status(
    phase: Phase = Phase.PROGRESSING,
    *,
    weight: int = 0,
    failed_checks: int = 0,
    iterations: int = 0,
    applied: str = "v2",
    promoted: str = "v1",
    **extra: Any,
) -> CanaryStatus:
    """A status in the middle of a run of template ``applied`` (primary at ``promoted``)."""
    return CanaryStatus(
        phase=phase,
        canary_weight=weight,
        failed_checks=failed_checks,
        iterations=iterations,
        last_applied_spec=applied,
        last_promoted_spec=promoted,
        **extra,
    )


def running_world(
    primary: int = 100, canary: int = 0, mirrored: bool = False, template: str = "v2"
) -> World:
    """A world matching `running_status`: primary ready, routes as given."""
    return World(
        template_hash=template,
        primary_exists=True,
        primary_template="v1",
        routes=Routes(primary, canary, mirrored),
    )


__all__ = [
    "NOW0",
    "Clock",
    "RunResult",
    "Script",
    "TickRecord",
    "World",
    "canary_doc",
    "closed_until",
    "decide",
    "ended",
    "fail_from",
    "finished",
    "hook",
    "initialize",
    "load_canary",
    "new_revision",
    "run",
    "running_status",
    "running_world",
    "set_world",
    "single_step",
    "with_annotation",
    "without_annotation",
]
