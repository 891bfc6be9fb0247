"""The analysis of a run: hooks that check, metrics that judge, and what failing costs.

A tick records at most one failed check, whatever failed (a webhook, one metric or
several), as Flagger does; the failed-checks threshold then rolls the run back on a later
tick. Only a conclusive statistical regression rolls back at once: waiting for more
failures would only expose more users to a release already shown to be worse.
"""

from __future__ import annotations

from canary.core.actions import AlertKind
from canary.core.endings import rollback
from canary.core.observations import HookRequest, MetricResult, Outcome, Routes
from canary.core.phases import Trigger
from canary.core.tick import Flow, Tick
from canary.core.times import iso
from canary.model.canary import HookType, Severity
from canary.model.status import MetricStatus, Phase

FAILING_OUTCOMES = frozenset({Outcome.FAIL, Outcome.NODATA, Outcome.ERROR})


def fail_check(t: Tick, message: str) -> None:
    t.set(failed_checks=t.status.failed_checks + 1, message=message)
    t.event(message, warning=True)


def rollback_hooks(t: Tick) -> Flow[bool]:
    """Step 20: a rollback webhook that says yes rolls back; True when it did."""
    phase = t.status.phase
    for hook in t.analysis.hooks(HookType.ROLLBACK):
        answer = yield from t.ask_hook(HookRequest(hook.name, HookType.ROLLBACK, phase.value))
        if answer.ok:
            t.event(f"Rolling back {t.id} manual webhook invoked", warning=True)
            rollback(
                t,
                Trigger.ROLLBACK_REQUESTED,
                "manual webhook invoked",
                alert_kind=AlertKind.ROLLBACK_WEBHOOK,
            )
            return True
        t.event(f"Rollback hook {hook.name} not signaling a rollback")
    return False


def threshold_reached(t: Tick) -> bool:
    """Step 23: too many failed checks roll back; True when they did."""
    if t.status.failed_checks < t.analysis.threshold:
        return False
    rollback(
        t,
        Trigger.ANALYSIS_FAILED,
        f"failed checks threshold reached {t.status.failed_checks}",
        alert_kind=AlertKind.THRESHOLD_REACHED,
    )
    return True


def first_analysis_tick(t: Tick, routes: Routes) -> bool:
    """No traffic has reached the canary yet: the run's first analysis tick."""
    return (
        routes.canary == 0
        and t.status.iterations == 0
        and not (t.analysis.mirror and routes.mirrored)
    )


def pre_rollout(t: Tick) -> Flow[bool]:
    """Step 25, first tick: the pre-rollout hooks; True when one failed (a failed check)."""
    t.event(f"Starting canary analysis for {t.target_id}")
    verdict = yield from t.run_hooks(HookType.PRE_ROLLOUT, Phase.PROGRESSING)
    if not verdict.ok:
        halt = f"Halt {t.id} advancement pre-rollout check {verdict.hook} failed"
        fail_check(t, f"{halt} {verdict.message}".rstrip())
        return True
    for hook in t.analysis.hooks(HookType.PRE_ROLLOUT):
        t.event(f"Pre-rollout check {hook.name} passed")
    return False


def run_analysis(t: Tick) -> Flow[bool]:
    """Step 25, later ticks: rollout hooks, then every metric; True when the tick ends."""
    verdict = yield from t.run_hooks(HookType.ROLLOUT, Phase.PROGRESSING)
    if not verdict.ok:
        halt = f"Halt {t.id} advancement external check {verdict.hook} failed"
        fail_check(t, f"{halt} {verdict.message}".rstrip())
        return True
    if not t.analysis.metrics:
        return False
    results = yield from t.ask_metrics()
    _record_verdicts(t, results)
    return _judge(t, results)


def _record_verdicts(t: Tick, results: tuple[MetricResult, ...]) -> None:
    now = iso(t.obs.now)
    t.set(
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


def _judge(t: Tick, results: tuple[MetricResult, ...]) -> bool:
    """A conclusive regression rolls back, a failure is one failed check, an inconclusive
    verdict waits for more data; True when the tick ends there."""
    failing = [r for r in results if r.outcome in FAILING_OUTCOMES]
    conclusive = [r for r in failing if r.fail_fast]
    if conclusive:
        for result in conclusive:
            t.event(f"Halt {t.id} advancement {result.summary}", warning=True)
        t.set(failed_checks=t.status.failed_checks + 1)
        rollback(
            t,
            Trigger.ANALYSIS_FAILED,
            f"conclusive regression: {conclusive[0].summary}",
            alert_kind=AlertKind.REGRESSION,
        )
        return True
    if failing:
        for result in failing[1:]:
            t.event(f"Halt {t.id} advancement {result.summary}", warning=True)
        t.set(inconclusive_checks=0)
        fail_check(t, f"Halt {t.id} advancement {failing[0].summary}")
        return True
    waiting = [r for r in results if r.outcome is Outcome.INCONCLUSIVE]
    if waiting:
        _wait_for_data(t, waiting)
        return True
    t.set(inconclusive_checks=0)
    return False


def _wait_for_data(t: Tick, waiting: list[MetricResult]) -> None:
    first_of_streak = t.status.inconclusive_checks == 0
    t.set(inconclusive_checks=t.status.inconclusive_checks + 1)
    summary = "; ".join(r.summary for r in waiting)
    t.event(f"Halt {t.id} advancement waiting for more data: {summary}")
    t.set(message=f"Analysis inconclusive, waiting for more data: {summary}")
    if first_of_streak:  # one alert per streak of inconclusive ticks
        t.alert(
            AlertKind.INCONCLUSIVE,
            Severity.WARN,
            f"Canary analysis is inconclusive: {summary}",
        )
