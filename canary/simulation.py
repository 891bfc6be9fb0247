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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from analysis import (
    AnalysisError,
    CompareTest,
    ThresholdResult,
    builtin_queries,
    compare_problem,
    interval_seconds,
    judge_threshold,
)
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
    MetricTemplate,
    parse_canary,
    parse_metric_template,
)
from canary.model.errors import SpecError, SpecIssue
from canary.timestamps import format_time, parse_time

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULT_PROVIDER = "kubernetes"  # the controller's --default-provider unless set (settings.py)
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
RELEASE_KEYS = ("template", "revision")
DEFAULT_TICKS = 30
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
        problem = _metric_value_problem(value)
        if problem is not None:
            issues.append(SpecIssue(f"{path}.metrics.{name}", problem))
    release = raw.get("release")
    if release is not None and not isinstance(release, Mapping):
        issues.append(SpecIssue(f"{path}.release", "expected an object with template and revision"))
        release = None
    if release is not None:
        _unknown_keys(release, RELEASE_KEYS, f"{path}.release", issues)
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


def _metric_value_problem(value: Any) -> str | None:
    """Why a scripted metric value is not one of docs/simulate.md's, or None when it is.

    Why NaN and infinities are refused: they are not among the documented values, and each
    had a meaning nobody wrote down (``.nan`` played no data, ``.inf`` an impossible reading,
    an Error). A query that answers nothing or fails has its own words, ``nodata`` and
    ``error``, which say so in the scenario.
    """
    if value is None or (isinstance(value, str) and value in METRIC_WORDS):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value):
            return None
        written = ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
        return (
            f"expected a finite number, got {written}: script nodata for a query that "
            "answers nothing, error for one that fails"
        )
    return (
        f"expected a number, null, nodata, error, inconclusive, warmup or regression, got {value!r}"
    )


def parse_scenario(doc: Any) -> Scenario:
    """Parse a scenario document; raise `SpecError` naming every bad field."""
    issues: list[SpecIssue] = []
    if not isinstance(doc, Mapping):
        raise SpecError([SpecIssue("", "a scenario must be a YAML mapping")])
    _unknown_keys(doc, SCENARIO_KEYS, "", issues)
    ticks = doc.get("ticks", DEFAULT_TICKS)
    ticks_ok = isinstance(ticks, int) and not isinstance(ticks, bool) and 1 <= ticks <= 10_000
    if not ticks_ok:
        issues.append(
            SpecIssue("ticks", f"expected a number of ticks between 1 and 10000, got {ticks!r}")
        )
        ticks = DEFAULT_TICKS
    start = _start(doc, issues)
    defaults = _moment(doc.get("defaults") or {}, "defaults", issues)
    # A step is checked against the ticks only when they are valid (one error, not two).
    steps = _steps(doc, ticks if ticks_ok else None, "ticks" in doc, issues)
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
    doc: Mapping[str, Any], ticks: int | None, ticks_written: bool, issues: list[SpecIssue]
) -> list[tuple[int, int, Moment]]:
    """The ``steps`` list as (from, to, moment), inclusive; a bad step is an issue.

    ``ticks`` is None when the scenario's own ``ticks`` is invalid (reported already): the
    steps are then not checked against it.
    """
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
        span = _step_span(raw, path, ticks, ticks_written, issues)
        if span is not None:
            steps.append((*span, _moment(raw, path, issues, step=True)))
    return steps


def _tick_numbers(raw: Mapping[str, Any], path: str, issues: list[SpecIssue]) -> bool:
    """Whether the step's ``at``, ``from`` and ``to`` (those it has) are tick numbers; each
    that is not is named (``true`` is not tick 1)."""
    good = True
    for key in ("at", "from", "to"):
        value = raw.get(key)
        if key in raw and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            issues.append(SpecIssue(f"{path}.{key}", f"expected a tick number >= 1, got {value!r}"))
            good = False
    return good


def _step_span(
    raw: Mapping[str, Any],
    path: str,
    ticks: int | None,
    ticks_written: bool,
    issues: list[SpecIssue],
) -> tuple[int, int] | None:
    """The ticks a step covers (inclusive), or None after naming what is wrong.

    Why a step that starts past the last tick is an error: it applies to no tick, so its
    release or metrics would be silently nothing (``at: 9`` in a 5-tick scenario ran a
    release that never came, exit 0). A range that only ends past the last tick still
    applies to the ticks there are. The messages quote only what the step says: a ``to``
    the user left out (the last tick) is not shown as if written.
    """
    if "at" in raw and ("from" in raw or "to" in raw):
        both = ", ".join(k for k in ("from", "to") if k in raw)
        issues.append(
            SpecIssue(path, f"expected `at: N` or `from: N` / `to: M`, not both ({both} with at)")
        )
        return None
    if not _tick_numbers(raw, path, issues):
        return None
    last_tick = ticks if ticks is not None else DEFAULT_TICKS
    first: int = raw["at"] if "at" in raw else raw.get("from", 1)
    last: int = raw["at"] if "at" in raw else raw.get("to", last_tick)
    if "from" in raw and "to" in raw and first > last:
        issues.append(SpecIssue(path, f"from: {first} is after to: {last}"))
        return None
    if ticks is not None and first > ticks:
        key = "at" if "at" in raw else "from"
        how_many = "" if ticks_written else f" (ticks is not set; {DEFAULT_TICKS} is the default)"
        issues.append(
            SpecIssue(
                f"{path}.{key}",
                f"tick {first} is past the last tick: the scenario has {ticks} ticks{how_many}",
            )
        )
        return None
    return first, last


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
    query_problem: str | None = None,
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

    ``query_problem`` is why the controller cannot render this metric's compare queries for
    the Canary (:func:`compare_query_problem`): then no scripted value is judged by the
    statistical judge, as the controller's never runs (see :func:`_unqueryable`).
    """
    if query_problem is not None:
        return replace(_unqueryable(metric, raw, query_problem), advisory=metric.dry_run)
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
    return raw is None or raw in ("nodata", "error")


def _carried(previous: MetricStatus | None) -> Mapping[str, Any]:
    """The judge's stored state carried over a check it did not decide (a failed query, a
    threshold check that did not pass, a warm-up check): the inconclusive count and the
    run's start stay, as ``evaluate`` carries the state over such a check. Not the mark of a
    check the ``onMaxInconclusive`` fallback decided: this one was not, and the JSON's
    ``fallback`` would say it was."""
    if previous is None:
        return {}
    return {k: v for k, v in previous.details.items() if k != FALLBACK_KEY}


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
        name, Outcome.INCONCLUSIVE, summary, details=_carried(previous), warming_up=True
    )


def _judge_scripted(
    metric: MetricSpec, raw: Any, previous: MetricStatus | None, last_step: bool
) -> MetricResult:
    name = metric.name
    # A check the judge did not decide leaves its stored state (the inconclusive count) as it
    # was: a failed query, and below, a threshold check that did not pass.
    kept = _carried(previous) if metric.compare is not None else {}
    if raw is None or raw == "nodata":
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
            details=_carried(previous),
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
    # A number within the bounds is the compare judge deciding (its count starts again); one
    # outside them is the threshold check's verdict, which the judge's state is carried over.
    return MetricResult(
        name,
        result.outcome,
        result.summary,
        value=result.value,
        threshold=threshold_text(result.min, result.max),
        details=kept if result.outcome is not Outcome.PASS else {},
    )


def _by_threshold(metric: MetricSpec, value: float) -> ThresholdResult:
    """A value judged by the metric's ``thresholdRange`` (or ``threshold``), as the controller
    judges a queried one (``_judged`` in analysis/_evaluate.py: a metric of a template or a
    query is a custom one, whose deprecated ``threshold`` is a maximum whatever its name);
    without bounds, it passes."""
    check = metric.check
    if metric.is_builtin:
        return judge_threshold(
            metric.name, value, min=check.min, max=check.max, threshold=check.threshold
        )
    return judge_threshold(
        f"custom:{metric.name}",
        value,
        min=check.min,
        max=check.max,
        threshold=check.threshold,
        label=metric.name,
        unit="",
    )


def _bounded(metric: MetricSpec) -> bool:
    """Whether the metric has a threshold check (``_has_bounds`` in analysis/_evaluate.py): a
    ``thresholdRange``, or the deprecated ``threshold``, which the controller counts too."""
    check = metric.check
    return check.min is not None or check.max is not None or check.threshold is not None


def _bounds_text(metric: MetricSpec) -> str:
    """The metric's bounds as the controller applies them (``>= 95``), the deprecated
    ``threshold`` included: read off the threshold judge's result, whose bounds do not
    depend on the value judged."""
    judged = _by_threshold(metric, 0.0)
    return threshold_text(judged.min, judged.max)


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
    # The judge falls back to the threshold check when the metric has one, the deprecated
    # `threshold` included (`has_threshold`, from `_has_bounds`).
    bounds = _bounds_text(metric) if _bounded(metric) else ""
    check = metric.check
    decider = "thresholdRange" if check.min is not None or check.max is not None else "threshold"
    decided = {**details, FALLBACK_KEY: True}
    if fallback == "pass":
        return MetricResult(name, Outcome.PASS, f"{spent}, onMaxInconclusive pass", details=decided)
    if fallback == "fail":
        return MetricResult(name, Outcome.FAIL, f"{spent}, onMaxInconclusive fail", details=decided)
    if fallback == "threshold" and bounds:
        # The threshold check ran first and passed (a failing one would have been the
        # verdict), so the metric's thresholdRange (or threshold) decides: passed.
        return MetricResult(
            name,
            Outcome.PASS,
            f"{spent}, {decider} decides: within {bounds}",
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


# --------------------------------------------------------------------------- the controller's errors

TemplateKey = tuple[str, str]  # (namespace, name) of a MetricTemplate
Templates = Mapping[TemplateKey, MetricTemplate | SpecError]


def load_metric_templates(docs: Sequence[Any]) -> dict[TemplateKey, MetricTemplate | SpecError]:
    """The MetricTemplates of the Canary's file, parsed as the controller parses them (an
    invalid one kept as its error, which the controller reports on each check of a metric
    that refers to it).

    Why the simulator reads them: a template's provider decides whether the controller can
    run a metric's ``compare`` test at all (``compare_problem``); without it, a Datadog
    template under an errorRate test was judged by its scripted values and promoted, where
    the controller fails every check of it.
    """
    templates: dict[TemplateKey, MetricTemplate | SpecError] = {}
    for doc in docs:
        if not isinstance(doc, Mapping) or doc.get("kind") != "MetricTemplate":
            continue
        meta = doc.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        key = (str(meta.get("namespace") or "default"), str(meta.get("name") or ""))
        try:
            templates[key] = parse_metric_template(doc)
        except SpecError as exc:
            templates[key] = exc
    return templates


def template_error(canary: Canary, metric: MetricSpec, templates: Templates) -> MetricResult | None:
    """The Error the controller returns, before any query, for a metric whose MetricTemplate
    (one of ``templates``) it cannot use: invalid, or of a provider the metric's ``compare``
    test cannot run on (``compare_problem``, which canary/adapters/analysis.py asks). None
    when the template can be used, or is not among ``templates`` (it may be in the cluster:
    the scenario's values then stand for its answers)."""
    ref = metric.template_ref
    if ref is None:
        return None
    namespace = ref.namespace or canary.namespace
    found = templates.get((namespace, ref.name))
    if found is None:
        return None
    if isinstance(found, SpecError):
        return MetricResult(
            metric.name, Outcome.ERROR, f"MetricTemplate {namespace}/{ref.name} is invalid: {found}"
        )
    compare = metric.check.compare
    problem = compare_problem(found.provider.type, compare.test.value) if compare else None
    if problem is None:
        return None
    return MetricResult(
        metric.name,
        Outcome.ERROR,
        f"metric {metric.name} (MetricTemplate {namespace}/{ref.name}): {problem}",
    )


def compare_query_problem(canary: Canary, metric: MetricSpec) -> str | None:
    """Why the controller cannot render the compare judge's queries of ``metric`` for this
    Canary, or None when it can.

    A compare test without its own queries (``requestsQuery`` and ``errorsQuery``, or
    ``bucketsQuery``) runs on the builtin ones, for the canary and for the primary, which
    the controller renders with :func:`analysis.builtin_queries` on every check
    (``_render_side`` in analysis/_evaluate.py). Knative and APISIX name no primary series,
    Skipper's duration has no histogram: the function raises, and every check is an Error.
    The same function decides here.
    """
    spec = metric.check.compare
    if spec is None:
        return None
    latency = spec.test is CompareTest.LATENCY
    if latency and spec.buckets_query is not None:
        return None
    if not latency and spec.requests_query is not None and spec.errors_query is not None:
        return None
    ctx = canary.query_context(canary.spec.provider or DEFAULT_PROVIDER)
    try:
        for primary in (False, True):
            queries = builtin_queries(ctx, interval=metric.interval, primary=primary)
            if latency:
                queries.buckets  # noqa: B018 - raises where the provider has no histogram
    except AnalysisError as exc:
        return str(exc)
    return None


def _unqueryable(metric: MetricSpec, raw: Any, problem: str) -> MetricResult:
    """A check of a compare metric whose queries the controller cannot render.

    The controller's ``evaluate`` runs the threshold check first, when the metric has one,
    and a check that did not pass is the verdict unless the run is in its warm-up. With no
    window ever added, the judge's run never starts: each check is the run's first, inside
    the warm-up unless ``compare.warmup`` is 0s. Otherwise the compare judge is asked, and
    rendering its queries fails: an Error, whatever is scripted (a judge's word included: the
    judge never answers). No state is kept, as the controller keeps none.
    """
    name, spec, period = metric.name, metric.check.compare, _interval(metric)
    first_in_warmup = spec is not None and period is not None and spec.in_warmup(period, period)
    if _bounded(metric) and not first_in_warmup and raw not in JUDGE_WORDS:
        judged = _judge_scripted(metric, raw, None, last_step=True)
        if judged.outcome is not Outcome.PASS:
            return judged
    return MetricResult(name, Outcome.ERROR, f"Metric query failed for {name}: {problem}")


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


def simulate(
    canary_doc: Mapping[str, Any], scenario: Scenario, *, templates: Templates | None = None
) -> list[TickRecord]:
    """Run the scenario; return one record per tick.

    ``templates`` are the MetricTemplates the Canary's metrics may refer to
    (:func:`load_metric_templates`), for the errors the controller gives where it cannot use
    one; a metric whose template is not among them is judged on the scenario's values.
    """
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
        answers = _ScriptedAnswers(
            canary, moment, world, now, {m.name: m for m in status.analysis}, templates or {}
        )
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
    templates: Templates = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    metrics: tuple[MetricResult, ...] = ()

    async def __call__(self, request: Request) -> Answer:
        if isinstance(request, HookRequest):
            self.asked.append(f"{request.type.value}/{request.hook}")
            ok = self.moment.hooks.get(request.hook, "pass") == "pass"
            return HookAnswer(ok, "" if ok else "gate closed (scripted)")
        if isinstance(request, AnalysisRequest):
            analysis = self.canary.spec.analysis_or_default
            self.metrics = tuple(self._judged(m, request.last_step) for m in analysis.metrics)
            return self.metrics
        return _revert_answer(self.moment.git, request, self.world)

    def _judged(self, metric: MetricSpec, last_step: bool) -> MetricResult:
        """One metric's verdict: the controller's Error where it cannot use the metric's
        template, else the scenario's value judged as the controller judges a queried one."""
        refused = template_error(self.canary, metric, self.templates)
        if refused is not None:
            return replace(refused, advisory=metric.dry_run)
        return judge_metric(
            metric,
            self.moment.metrics.get(metric.name, "nodata"),
            self.previous.get(metric.name),
            now=self.now,
            last_step=last_step,
            query_problem=compare_query_problem(self.canary, metric),
        )


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
                doc, canary = patched, _patched_canary(patched, scenario, tick)
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


def _patched_canary(doc: Mapping[str, Any], scenario: Scenario, tick: int) -> Canary:
    """The Canary with the scenario's ``spec`` merged in at ``tick``; its errors named where the
    scenario wrote them.

    Why: the error is the scenario's, and it is reported under the scenario's file, where
    ``spec.analysis.metrics[0].compare.alfa`` named no place in it. A field the step's
    ``spec`` holds is named in the step (``steps[0].spec.analysis.metrics[0].compare.alfa``);
    one that is wrong only with the Canary's own fields (a step that changes a compare
    ``test`` its queries do not fit) is named in the Canary, after the step that merged it.
    """
    try:
        return parse_canary(doc)
    except SpecError as exc:
        where, patch = _spec_at(scenario, tick)
        issues = [
            SpecIssue(f"{where}{issue.path.removeprefix('spec')}", issue.message, issue.severity)
            if _in_patch(patch, issue.path)
            else SpecIssue(
                where, f"merged into the Canary's spec at tick {tick}: {issue}", issue.severity
            )
            for issue in exc.issues
        ]
        raise SpecError(issues) from None


def _spec_at(scenario: Scenario, tick: int) -> tuple[str, Mapping[str, Any]]:
    """Where the ``spec`` merged at ``tick`` is written (the last step covering it that has
    one, as :meth:`Scenario.moment` overlays them, else the defaults), and that ``spec``."""
    where, patch = "defaults.spec", scenario.defaults.spec or {}
    for index, (first, last, moment) in enumerate(scenario.steps):
        if first <= tick <= last and moment.spec:
            where, patch = f"steps[{index}].spec", moment.spec
    return where, patch


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _in_patch(patch: Mapping[str, Any], path: str) -> bool:
    """Whether the field at ``path`` (``spec.analysis.metrics[0].compare.alfa``) is one the
    scenario's ``spec`` patch writes."""
    node: Any = {"spec": patch}
    for key, index in _PATH_PART.findall(path):
        if key:
            if not isinstance(node, Mapping) or key not in node:
                return False
            node = node[key]
        elif isinstance(node, list) and int(index) < len(node):
            node = node[int(index)]
        else:
            return False
    return bool(path)


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
