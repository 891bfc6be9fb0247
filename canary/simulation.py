"""`canary simulate`: run the real state machine against a scripted world.

A scenario says, tick by tick, what the world looks like: whether the primary
and the canary are ready, what each metric measures, how each webhook answers,
when a new revision is committed, which commands a person gives. The simulator
plays the cluster: it applies the core's actions (routes, scaling, promotion)
to a small model of the workloads, answers the core's requests from the
scenario, and records one row per tick. The decisions are made by the core
itself (`canary.core.drive`, the loop the controller runs too), so what `simulate`
shows is what the controller would do; metric values are judged by the same
threshold judge the controller uses.

The scenario format and the JSON output are documented in docs/simulate.md and
kept stable: other tools read them.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from analysis import AnalysisError, ThresholdResult, interval_seconds, judge_threshold
from canary.core import (
    AnalysisRequest,
    Answer,
    CallHooks,
    Decision,
    EmitEvent,
    EnsurePrimary,
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
    SendAlert,
    SetRoutes,
    TargetObservation,
    drive,
    run_now,
    threshold_text,
)
from canary.model import (
    Canary,
    CanaryStatus,
    Commands,
    MetricSpec,
    MetricStatus,
    parse_canary,
)
from canary.model.errors import SpecError, SpecIssue
from canary.timestamps import format_time, parse_time

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
READINESS_WORDS = {"ready", "not-ready", "failed"}
HOOK_WORDS = {"pass", "fail"}
REVERT_WORDS = {"reverted", "already", "superseded", "failed"}
METRIC_WORDS = ("nodata", "error", "inconclusive", "warmup", "regression")
JUDGE_WORDS = ("inconclusive", "warmup", "regression")  # the statistical judge's alone
COMMAND_KEYS = ("promote", "promoteFull", "abort", "retry", "paused")
SCENARIO_KEYS = ("name", "ticks", "start", "revision", "defaults", "steps")
MOMENT_KEYS = (
    "primary",
    "canary",
    "metrics",
    "hooks",
    "release",
    "commands",
    "spec",
    "git",
    "primaryRollout",
)
STEP_KEYS = ("at", "from", "to", "note")
INCONCLUSIVE_KEY = "scriptedInconclusive"  # the count kept in a scripted verdict's details
FALLBACK_KEY = "scriptedFallback"  # set in the details of a verdict onMaxInconclusive decided
STARTED_KEY = "scriptedStarted"  # where a compare metric's run began, kept as the judge keeps it


# --------------------------------------------------------------------------- scenario


@dataclass(frozen=True, slots=True)
class Moment:
    """What the scenario says for one tick (every field optional)."""

    primary: str | None = None
    canary: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    hooks: Mapping[str, str] = field(default_factory=dict)
    release: Mapping[str, str] | None = None
    commands: Mapping[str, str] = field(default_factory=dict)
    spec: Mapping[str, Any] | None = None
    git: str | None = None
    primary_rollout: int | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    ticks: int
    start: datetime
    defaults: Moment
    revision: str
    steps: tuple[tuple[int, int, Moment], ...]  # (from, to, moment), inclusive

    def moment(self, tick: int) -> Moment:
        """The defaults overlaid with every step covering this tick, in file order."""
        merged = self.defaults
        for first, last, moment in self.steps:
            if first <= tick <= last:
                merged = _overlay(merged, moment)
        return merged


def _overlay(base: Moment, top: Moment) -> Moment:
    return Moment(
        primary=top.primary or base.primary,
        canary=top.canary or base.canary,
        metrics={**base.metrics, **top.metrics},
        hooks={**base.hooks, **top.hooks},
        release=top.release or base.release,
        commands={**base.commands, **top.commands},
        spec=top.spec or base.spec,
        git=top.git or base.git,
        primary_rollout=top.primary_rollout
        if top.primary_rollout is not None
        else base.primary_rollout,
    )


def _unknown_keys(
    raw: Mapping[Any, Any], known: Sequence[str], path: str, issues: list[SpecIssue]
) -> None:
    """A key the scenario format does not have is an error, not silently nothing: a
    misspelt ``metrics`` would otherwise script no metric at all (every check NoData)."""
    for key in raw:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        where = f"{path}.{key}" if path else str(key)
        issues.append(SpecIssue(where, f"unknown field; {hint}expected one of {', '.join(known)}"))


def _moment(raw: Any, path: str, issues: list[SpecIssue], *, step: bool = False) -> Moment:
    if not isinstance(raw, Mapping):
        issues.append(SpecIssue(path, "expected an object"))
        return Moment()
    _unknown_keys(raw, (*MOMENT_KEYS, *STEP_KEYS) if step else MOMENT_KEYS, path, issues)

    def word(key: str, allowed: set[str]) -> str | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or value not in allowed:
            issues.append(
                SpecIssue(
                    f"{path}.{key}", f"expected one of {', '.join(sorted(allowed))}, got {value!r}"
                )
            )
            return None
        return value

    def mapping(key: str) -> Mapping[str, Any]:
        value = raw.get(key) or {}
        if not isinstance(value, Mapping):
            issues.append(SpecIssue(f"{path}.{key}", "expected an object"))
            return {}
        return value

    _unknown_keys(mapping("commands"), COMMAND_KEYS, f"{path}.commands", issues)
    hooks = {str(k): str(v) for k, v in mapping("hooks").items()}
    for name, answer in hooks.items():
        if answer not in HOOK_WORDS:
            issues.append(
                SpecIssue(f"{path}.hooks.{name}", f"expected pass or fail, got {answer!r}")
            )
    metrics = dict(mapping("metrics"))
    for name, value in metrics.items():
        ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool))
        ok = ok or (isinstance(value, str) and value in METRIC_WORDS)
        if not ok:
            issues.append(
                SpecIssue(
                    f"{path}.metrics.{name}",
                    f"expected a number, null, nodata, error, inconclusive, warmup or regression, got {value!r}",
                )
            )
    release = raw.get("release")
    if release is not None and not isinstance(release, Mapping):
        issues.append(SpecIssue(f"{path}.release", "expected an object with template and revision"))
        release = None
    rollout = raw.get("primaryRollout")
    if rollout is not None and (not isinstance(rollout, int) or rollout < 0):
        issues.append(
            SpecIssue(f"{path}.primaryRollout", f"expected a number of ticks >= 0, got {rollout!r}")
        )
        rollout = None
    spec = raw.get("spec")
    if spec is not None and not isinstance(spec, Mapping):
        issues.append(
            SpecIssue(f"{path}.spec", "expected an object (merged into the Canary's spec)")
        )
        spec = None
    return Moment(
        primary=word("primary", READINESS_WORDS),
        canary=word("canary", READINESS_WORDS),
        metrics=metrics,
        hooks=hooks,
        release={str(k): str(v) for k, v in release.items()} if release else None,
        commands={str(k): str(v) for k, v in mapping("commands").items()},
        spec=dict(spec) if spec else None,
        git=word("git", REVERT_WORDS),
        primary_rollout=rollout,
    )


def parse_scenario(doc: Any) -> Scenario:
    """Parse a scenario document; raise `SpecError` naming every bad field."""
    issues: list[SpecIssue] = []
    if not isinstance(doc, Mapping):
        raise SpecError([SpecIssue("", "a scenario must be a YAML mapping")])
    _unknown_keys(doc, SCENARIO_KEYS, "", issues)
    ticks = doc.get("ticks", 30)
    if not isinstance(ticks, int) or not 1 <= ticks <= 10_000:
        issues.append(
            SpecIssue("ticks", f"expected a number of ticks between 1 and 10000, got {ticks!r}")
        )
        ticks = 30
    start = _start(doc, issues)
    defaults = _moment(doc.get("defaults") or {}, "defaults", issues)
    steps = _steps(doc, ticks, issues)
    revision = str(doc.get("revision") or "main@sha1:1111111")
    if issues:
        raise SpecError(issues)
    return Scenario(
        name=str(doc.get("name") or "scenario"),
        ticks=ticks,
        start=start,
        defaults=defaults,
        revision=revision,
        steps=tuple(steps),
    )


def _start(doc: Mapping[str, Any], issues: list[SpecIssue]) -> datetime:
    if "start" not in doc:
        return DEFAULT_START
    raw_start = doc["start"]
    try:
        start = (
            raw_start
            if isinstance(raw_start, datetime)
            else datetime.fromisoformat(str(raw_start).replace("Z", "+00:00"))
        )
    except ValueError:
        issues.append(
            SpecIssue("start", f"expected an ISO time like 2026-01-01T00:00:00Z, got {raw_start!r}")
        )
        return DEFAULT_START
    return start.replace(tzinfo=UTC) if start.tzinfo is None else start


def _steps(
    doc: Mapping[str, Any], ticks: int, issues: list[SpecIssue]
) -> list[tuple[int, int, Moment]]:
    """The ``steps`` list as (from, to, moment), inclusive; a bad step is an issue."""
    steps: list[tuple[int, int, Moment]] = []
    raw_steps = doc.get("steps") or []
    if not isinstance(raw_steps, list):
        issues.append(SpecIssue("steps", "expected a list"))
        raw_steps = []
    for index, raw in enumerate(raw_steps):
        path = f"steps[{index}]"
        if not isinstance(raw, Mapping):
            issues.append(SpecIssue(path, "expected an object"))
            continue
        if "at" in raw and ("from" in raw or "to" in raw):
            both = ", ".join(k for k in ("from", "to") if k in raw)
            issues.append(
                SpecIssue(
                    path, f"expected `at: N` or `from: N` / `to: M`, not both ({both} with at)"
                )
            )
            continue
        if "at" in raw:
            first = last = raw["at"]
        else:
            first, last = raw.get("from", 1), raw.get("to", ticks)
        if not all(isinstance(v, int) and v >= 1 for v in (first, last)) or first > last:
            issues.append(
                SpecIssue(
                    path,
                    f"expected `at: N` or `from: N` / `to: M` with 1 <= N <= M, got {first!r}..{last!r}",
                )
            )
            continue
        steps.append((first, last, _moment(raw, path, issues, step=True)))
    return steps


# --------------------------------------------------------------------------- world


@dataclass
class World:
    """The simulated cluster the core acts on."""

    template: str = "v1"
    revision: str = ""
    primary_template: str | None = None
    primary_not_ready_ticks: int = 0
    routes: Routes | None = None
    target_replicas: int = 1
    git_log: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TickRecord:
    tick: int
    time: datetime
    decision: Decision
    routes: Routes | None
    requests: tuple[str, ...]
    metrics: tuple[MetricResult, ...]

    def to_json(self) -> dict[str, Any]:
        status = self.decision.status
        routes = self.routes or Routes(100, 0, False)
        return {
            "tick": self.tick,
            "time": format_time(self.time),
            "phase": status.phase.value,
            "primaryWeight": routes.primary,
            "canaryWeight": routes.canary,
            "mirrored": routes.mirrored,
            "failedChecks": status.failed_checks,
            "iterations": status.iterations,
            "actions": [describe_action(a) for a in self.decision.actions],
            "events": [
                {"type": e.type.value, "message": e.message}
                for e in self.decision.effects
                if isinstance(e, EmitEvent)
            ],
            "alerts": [
                {
                    "kind": a.alert.kind.value,
                    "severity": a.alert.severity.value,
                    "message": a.alert.message,
                }
                for a in self.decision.effects
                if isinstance(a, SendAlert) and not a.alert.mute
            ],
            "hooksCalled": list(self.requests),
            "metrics": [
                {
                    "name": m.name,
                    "outcome": m.outcome.value,
                    "summary": m.summary,
                    **m.flags.to_dict(),
                    **({"fallback": True} if m.details.get(FALLBACK_KEY) is True else {}),
                }
                for m in self.metrics
            ],
            "inconclusiveChecks": status.inconclusive_checks,
            "stalled": status.stalled,
            "gitRevert": status.git_revert.to_dict() if status.git_revert else None,
            "revision": status.current_revision,
            "lastGoodRevision": status.last_good_revision,
            "message": status.message,
        }


def describe_action(action: object) -> str:
    if isinstance(action, SetRoutes):
        return (
            f"SetRoutes({action.primary}/{action.canary}{', mirrored' if action.mirrored else ''})"
        )
    if isinstance(action, ScaleTarget):
        return f"ScaleTarget({action.mode.value})"
    return type(action).__name__


# --------------------------------------------------------------------------- judging


def judge_metric(
    metric: MetricSpec,
    raw: Any,
    previous: MetricStatus | None = None,
    *,
    now: datetime,
    last_step: bool = True,
) -> MetricResult:
    """Judge a scripted value exactly as the controller judges a queried one.

    ``previous`` is the metric's last verdict of the run (``status.analysis``), where a
    compare metric keeps its count of inconclusive checks in a row, as the judge keeps it
    in its stored state: ``compare.maxInconclusive`` and ``onMaxInconclusive`` then apply
    to scripted ``inconclusive`` values as the judge applies them. ``last_step`` says
    whether a passing tick would promote (the analysis request's own flag): with
    ``onInconclusive: advance``, only there does an inconclusive check count. A ``dryRun``
    metric's result is advisory.

    A compare metric's checks inside its warm-up (``compare.warmup`` from where the run's
    first window began: ``now`` minus the metric's interval at the first check whose query
    answered, the judge's own clock) are warm-up checks whatever is scripted, as the judge
    observes and does not judge them; only a failed query (``nodata``, ``error``) is still a
    failed check, and before the first answer it starts no clock (the judge stores no
    evidence for it).
    """
    started = _run_started(metric, previous, now)
    failed = _failed_query(raw)
    if started is not None and _warming_up(metric, started, now) and not failed:
        result = _warm_up(metric, raw, previous, seconds=(now - started).total_seconds())
    else:
        result = _judge_scripted(metric, raw, previous, last_step)
    if started is not None and not (failed and _kept_start(previous) is None):
        result = replace(result, details={**result.details, STARTED_KEY: format_time(started)})
    return replace(result, advisory=metric.dry_run)


def _interval(metric: MetricSpec) -> float | None:
    try:
        return interval_seconds(metric.interval)
    except AnalysisError:
        return None  # the Canary's parser has reported it


def _run_started(
    metric: MetricSpec, previous: MetricStatus | None, now: datetime
) -> datetime | None:
    """Where a compare metric's run began (None: not a compare metric): kept in the verdict's
    details from the run's first check on, where it is ``now`` minus the metric's interval."""
    period = _interval(metric)
    if metric.compare is None or period is None:
        return None
    started = _kept_start(previous)
    return started if started is not None else now - timedelta(seconds=period)


def _kept_start(previous: MetricStatus | None) -> datetime | None:
    kept = previous.details.get(STARTED_KEY) if previous is not None else None
    return parse_time(kept) if isinstance(kept, str) else None


def _warming_up(metric: MetricSpec, started: datetime, now: datetime) -> bool:
    """The judge's own rule (``CompareSpec.in_warmup``): the window that ends ``now`` ends
    within ``compare.warmup`` of the run's start."""
    period = _interval(metric)
    if metric.compare is None or period is None:
        return False
    return metric.compare.in_warmup(period, (now - started).total_seconds())


def _failed_query(raw: Any) -> bool:
    return raw is None or raw in ("nodata", "error") or (isinstance(raw, float) and math.isnan(raw))


def _warm_up(
    metric: MetricSpec, raw: Any, previous: MetricStatus | None, *, seconds: float
) -> MetricResult:
    """A check inside the warm-up: observed, not judged; the inconclusive count does not move.
    A scripted number outside the metric's thresholdRange is reported, not acted on."""
    name = metric.name
    summary = f"{name}: warming up ({seconds:.0f}s observed, not judged)"
    if isinstance(raw, int | float):
        judged = _by_threshold(metric, float(raw))
        if judged.outcome is not Outcome.PASS:
            summary += f"; {judged.summary} (not acted on during the warm-up)"
    return MetricResult(
        name,
        Outcome.INCONCLUSIVE,
        summary,
        details=previous.details if previous is not None else {},
        warming_up=True,
    )


def _judge_scripted(
    metric: MetricSpec, raw: Any, previous: MetricStatus | None, last_step: bool
) -> MetricResult:
    name = metric.name
    # A failed query leaves the judge's stored state (its inconclusive count) as it was.
    kept = previous.details if previous is not None and metric.compare is not None else {}
    if raw is None or raw == "nodata" or (isinstance(raw, float) and math.isnan(raw)):
        return MetricResult(
            name, Outcome.NODATA, f"no values found for metric {name}", details=kept
        )
    if raw == "error":
        return MetricResult(
            name, Outcome.ERROR, f"metric {name} query failed (scripted)", details=kept
        )
    if raw == "warmup":  # scripted past the Canary's warm-up: a longer one than it says
        return MetricResult(
            name,
            Outcome.INCONCLUSIVE,
            f"{name}: warming up, observed but not judged yet (scripted)",
            details=previous.details if previous is not None else {},
            warming_up=True,
        )
    if raw == "inconclusive":
        return _inconclusive(metric, _inconclusive_count(previous), last_step)
    if raw == "regression" and metric.compare is not None:
        # The judge's FAIL: conclusive (a rollback at once) unless the metric's failFast is off.
        fail_fast = metric.compare.fail_fast
        return MetricResult(
            name,
            Outcome.FAIL,
            f"{name}: canary worse than the primary (scripted)",
            fail_fast=fail_fast,
        )
    if isinstance(raw, str):  # a judge's word for a metric without compare (check_scenario)
        return MetricResult(
            name, Outcome.ERROR, f"{name}: {raw} scripted, but the metric has no compare block"
        )
    result = _by_threshold(metric, float(raw))
    return MetricResult(
        name,
        result.outcome,
        result.summary,
        value=result.value,
        threshold=threshold_text(result.min, result.max),
    )


def _by_threshold(metric: MetricSpec, value: float) -> ThresholdResult:
    """A value judged by the metric's ``thresholdRange`` (or ``threshold``), as the controller
    judges a queried one; without bounds, it passes."""
    rng = metric.threshold_range
    return judge_threshold(
        metric.name,
        value,
        min=rng.min if rng else None,
        max=rng.max if rng else None,
        threshold=metric.threshold,
    )


def _inconclusive_count(previous: MetricStatus | None) -> int:
    """The inconclusive checks in a row before this one (kept in the verdict's details)."""
    count = previous.details.get(INCONCLUSIVE_KEY) if previous is not None else None
    return count if isinstance(count, int) and not isinstance(count, bool) else 0


def _inconclusive(metric: MetricSpec, before: int, last_step: bool) -> MetricResult:
    """A scripted inconclusive check after ``before`` in a row, as the compare judge decides
    it (``_scarce`` in analysis/_compare.py): with ``onInconclusive: advance`` and a step
    left, the weight may step up and nothing is counted; otherwise the check counts, holds
    within ``maxInconclusive``, and past it ``onMaxInconclusive`` decides."""
    name, spec = metric.name, metric.compare
    if spec is None:  # only the compare judge is ever inconclusive, and it keeps no budget here
        return MetricResult(
            name,
            Outcome.INCONCLUSIVE,
            f"{name}: not enough data yet (scripted)",
            details={INCONCLUSIVE_KEY: before + 1},
        )
    if spec.on_inconclusive == "advance" and not last_step:
        return MetricResult(
            name,
            Outcome.INCONCLUSIVE,
            f"{name}: not enough data yet; stepping up for more traffic "
            "(onInconclusive: advance, scripted)",
            details={INCONCLUSIVE_KEY: before},
            may_advance=True,
        )
    count = before + 1
    details = {INCONCLUSIVE_KEY: count}
    budget = spec.max_inconclusive
    if count <= budget:
        return MetricResult(
            name,
            Outcome.INCONCLUSIVE,
            f"{name}: not enough data yet (inconclusive {count} of {budget}, scripted)",
            details=details,
        )
    spent = (
        f"{name}: still inconclusive after {count} check{'' if count == 1 else 's'} "
        f"(maxInconclusive {budget}, scripted)"
    )
    fallback = spec.on_max_inconclusive
    rng = metric.threshold_range
    bounds = threshold_text(rng.min, rng.max) if rng else ""
    decided = {**details, FALLBACK_KEY: True}
    if fallback == "pass":
        return MetricResult(name, Outcome.PASS, f"{spent}, onMaxInconclusive pass", details=decided)
    if fallback == "fail":
        return MetricResult(name, Outcome.FAIL, f"{spent}, onMaxInconclusive fail", details=decided)
    if fallback == "threshold" and bounds:
        # The threshold check ran first and passed (a failing one would have been the
        # verdict), so the metric's thresholdRange decides: passed.
        return MetricResult(
            name,
            Outcome.PASS,
            f"{spent}, thresholdRange decides: within {bounds}",
            threshold=bounds,
            details=decided,
        )
    return MetricResult(
        name,
        Outcome.INCONCLUSIVE,
        f"{spent}; holding (onMaxInconclusive {fallback.value})",
        details=details,
        stalled=True,
    )


# --------------------------------------------------------------------------- running


def _merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _readiness(word: str | None, what: str) -> Readiness:
    if word == "not-ready":
        return Readiness.waiting(
            f"waiting for rollout to finish: 0 of 1 updated replicas are available ({what})"
        )
    if word == "failed":
        return Readiness.failed(f"{what} exceeded its progress deadline")
    return Readiness.ok()


def simulate(canary_doc: Mapping[str, Any], scenario: Scenario) -> list[TickRecord]:
    """Run the scenario; return one record per tick."""
    canary = parse_canary(canary_doc)
    doc: dict[str, Any] = dict(canary_doc)
    world = World(revision=scenario.revision)
    status = CanaryStatus()
    now = scenario.start
    records: list[TickRecord] = []
    for tick in range(1, scenario.ticks + 1):
        moment = scenario.moment(tick)
        if moment.spec is not None:
            patched = _merge(doc, {"spec": moment.spec})
            if patched != doc:
                doc = patched
                canary = parse_canary(doc)
        if moment.release is not None:
            template = moment.release.get("template", world.template)
            revision = moment.release.get("revision", world.revision)
            if (template, revision) != (world.template, world.revision):
                world.template, world.revision = template, revision
                world.git_log.append(revision)
        annotations = {
            f"canary.gitops.dev/{_command_key(k)}": v for k, v in moment.commands.items()
        }
        commands = Commands.from_annotations(annotations, status.handled_commands)
        primary_ready = moment.primary
        if world.primary_not_ready_ticks > 0:
            primary_ready = "not-ready"
            world.primary_not_ready_ticks -= 1
        obs = Observations(
            now=now,
            target=TargetObservation(
                template_hash=f"template-{world.template}",
                readiness=_readiness(moment.canary, canary.spec.target_ref.name),
                images=(f"{canary.spec.target_ref.name}:{world.template}",),
            ),
            primary=PrimaryObservation(
                _readiness(primary_ready, f"{canary.spec.target_ref.name}-primary"),
                images=(f"{canary.spec.target_ref.name}:{world.primary_template}",),
            )
            if world.primary_template is not None
            else None,
            routes=world.routes,
            revision=Revision(world.revision, "scenario"),
            commands=commands,
            generation=1,
        )
        answers = _ScriptedAnswers(canary, moment, world, now, {m.name: m for m in status.analysis})
        decision = run_now(drive(canary, status, obs, answers))
        asked = answers.asked
        for effect in decision.effects:
            if isinstance(effect, CallHooks):
                analysis = canary.spec.analysis_or_default
                asked.extend(f"{effect.type.value}/{h.name}" for h in analysis.hooks(effect.type))
        _apply(decision, world, moment)
        status = decision.status
        records.append(TickRecord(tick, now, decision, world.routes, tuple(asked), answers.metrics))
        delay = (
            decision.requeue_after
            if decision.requeue_after is not None
            else canary.spec.interval_seconds
        )
        now = now + timedelta(seconds=max(delay, 1.0))
    return records


@dataclass
class _ScriptedAnswers:
    """The scenario answering one tick's requests, keeping what the tick asked for the
    record: the hooks called and the metric verdicts."""

    canary: Canary
    moment: Moment
    world: World
    now: datetime
    previous: Mapping[str, MetricStatus] = field(default_factory=dict)  # status.analysis
    asked: list[str] = field(default_factory=list)
    metrics: tuple[MetricResult, ...] = ()

    async def __call__(self, request: Request) -> Answer:
        if isinstance(request, HookRequest):
            self.asked.append(f"{request.type.value}/{request.hook}")
            ok = self.moment.hooks.get(request.hook, "pass") == "pass"
            return HookAnswer(ok, "" if ok else "gate closed (scripted)")
        if isinstance(request, AnalysisRequest):
            analysis = self.canary.spec.analysis_or_default
            self.metrics = tuple(
                judge_metric(
                    m,
                    self.moment.metrics.get(m.name, "nodata"),
                    self.previous.get(m.name),
                    now=self.now,
                    last_step=request.last_step,
                )
                for m in analysis.metrics
            )
            return self.metrics
        return _revert_answer(self.moment.git, request, self.world)


def _command_key(key: str) -> str:
    return {"promoteFull": "promote-full"}.get(key, key)


def _revert_answer(word: str | None, request: RevertRequest, world: World) -> RevertAnswer:
    if word == "failed":
        return RevertAnswer(RevertResultKind.FAILED, message="remote unreachable (scripted)")
    if word == "already":
        return RevertAnswer(RevertResultKind.ALREADY_REVERTED, commit="0" * 40)
    if word == "superseded":
        return RevertAnswer(
            RevertResultKind.SUPERSEDED, message="a newer commit changed the same lines (scripted)"
        )
    commit = f"revert-of-{request.bad_revision}"
    world.git_log.append(commit)
    return RevertAnswer(RevertResultKind.REVERTED, commit=commit)


def _apply(decision: Decision, world: World, moment: Moment) -> None:
    for action in decision.actions:
        if isinstance(action, EnsurePrimary) and world.primary_template is None:
            world.primary_template = world.template
        elif isinstance(action, ReconcileRouter) and world.routes is None:
            world.routes = Routes(100, 0, False)
        elif isinstance(action, SetRoutes):
            world.routes = Routes(action.primary, action.canary, action.mirrored)
        elif isinstance(action, ScaleTarget):
            world.target_replicas = 0 if action.mode is ScaleMode.ZERO else 1
        elif isinstance(action, Promote):
            world.primary_template = world.template
            world.primary_not_ready_ticks = moment.primary_rollout or 0


def check_scenario(canary_doc: Mapping[str, Any], scenario: Scenario) -> None:
    """Raise `SpecError` for scripted metrics the Canary cannot have asked for.

    The Canary is replayed tick by tick as :func:`simulate` patches it (a step's ``spec``),
    so a metric a step adds, or a ``compare`` block a step removes, is judged where it
    applies. A name that is never one of the Canary's metrics would be scripted for nothing
    while the real metric gets no data; ``inconclusive``, ``warmup`` and ``regression`` are
    what the statistical judge says, and a metric without ``compare`` never says them.
    """
    doc: dict[str, Any] = dict(canary_doc)
    canary = parse_canary(doc)
    ever: set[str] = set()
    words: dict[str, str] = {}
    for tick in range(1, scenario.ticks + 1):
        moment = scenario.moment(tick)
        if moment.spec is not None:
            patched = _merge(doc, {"spec": moment.spec})
            if patched != doc:
                doc, canary = patched, parse_canary(patched)
        metrics = {m.name: m for m in canary.spec.analysis_or_default.metrics}
        ever.update(metrics)
        for name, value in moment.metrics.items():
            metric = metrics.get(name)
            if value in JUDGE_WORDS and metric is not None and metric.compare is None:
                words.setdefault(_scripted_at(scenario, tick, name), str(value))
    issues = [
        SpecIssue(
            where,
            f"{value} is a word of the statistical judge, and this metric has no compare "
            "block here: a threshold check passes, fails or has no data",
        )
        for where, value in words.items()
    ]
    for path, moment in [("defaults", scenario.defaults)] + [
        (f"steps[{i}]", m) for i, (_, _, m) in enumerate(scenario.steps)
    ]:
        for name in moment.metrics:
            if name not in ever:
                close = difflib.get_close_matches(name, sorted(ever), n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                issues.append(
                    SpecIssue(
                        f"{path}.metrics.{name}",
                        "the Canary has no metric of that name; "
                        f"{hint}its metrics: {', '.join(sorted(ever)) or 'none'}",
                    )
                )
    if issues:
        raise SpecError(issues)


def _scripted_at(scenario: Scenario, tick: int, name: str) -> str:
    """Where the scenario scripts metric ``name`` for ``tick``: the last step covering it
    that names the metric (steps apply in file order), else the defaults."""
    where = f"defaults.metrics.{name}"
    for index, (first, last, moment) in enumerate(scenario.steps):
        if first <= tick <= last and name in moment.metrics:
            where = f"steps[{index}].metrics.{name}"
    return where


def load_canary_doc(docs: list[Any]) -> Mapping[str, Any]:
    """Pick the Canary out of a multi-document file (the caller names the file)."""
    for doc in docs:
        if isinstance(doc, Mapping) and doc.get("kind") == "Canary":
            return doc
    kinds = sorted({str(d.get("kind")) for d in docs if isinstance(d, Mapping)})
    found = f"found {', '.join(kinds)}" if kinds else "found no Kubernetes object"
    raise SpecError([SpecIssue("", f"no document of kind Canary; {found}")])
