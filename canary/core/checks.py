"""The analysis of a run: hooks that check, metrics that judge, and what failing costs.

A tick records at most one failed check, whatever failed (a webhook, one metric or
several), as Flagger does; the failed-checks threshold then rolls the run back on a later
tick. Only a conclusive statistical regression rolls back at once: waiting for more
failures would only expose more users to a release already shown to be worse.
"""

from __future__ import annotations

from canary.core.actions import AlertKind
from canary.core.endings import rollback
from canary.core.history import record_tick
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
    """The verdicts into ``status.analysis`` (the last tick's) and the run's history."""
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
                flags=r.flags,
            )
            for r in results
        ),
        analysis_history=record_tick(
            t.status.analysis_history,
            results,
            revision=t.status.current_revision,
            run_started=t.status.run_start_time,
            now=now,
            weight=t.routes().canary,
        ),
    )


def _judge(t: Tick, results: tuple[MetricResult, ...]) -> bool:
    """A conclusive regression rolls back, a failure is one failed check, an inconclusive
    verdict waits for more data (or, where the metric allows it, lets the weight step up
    without promoting); advisory metrics are only reported. True when the tick ends there."""
    _report_advisory(t, [r for r in results if r.advisory])
    binding = [r for r in results if not r.advisory]
    failing = [r for r in binding if r.outcome in FAILING_OUTCOMES]
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
            detail=conclusive[0].summary,
        )
        return True
    if failing:
        for result in failing[1:]:
            t.event(f"Halt {t.id} advancement {result.summary}", warning=True)
        t.set(inconclusive_checks=0, stalled="")
        fail_check(t, f"Halt {t.id} advancement {failing[0].summary}")
        return True
    waiting = [r for r in binding if r.outcome is Outcome.INCONCLUSIVE]
    if not waiting:
        t.set(inconclusive_checks=0, stalled="")
        return False
    return _hold(t, waiting)


def _hold(t: Tick, waiting: list[MetricResult]) -> bool:
    """Inconclusive verdicts: warm-up holds silently, a stall holds and says so, the rest
    waits for data; True when the tick holds (False: the weight may step up, and
    `Tick.hold_promotion` keeps the strategy from promoting)."""
    inconclusive = [r for r in waiting if not r.warming_up]
    if not inconclusive:
        _warming_up(t, waiting)
        return True
    stalled = [r for r in inconclusive if r.stalled]
    first_of_streak = t.status.inconclusive_checks == 0
    t.set(inconclusive_checks=t.status.inconclusive_checks + 1)
    if stalled:
        _stall(t, stalled)
        return True
    t.set(stalled="")
    advances = len(inconclusive) == len(waiting) and all(r.may_advance for r in inconclusive)
    summary = (
        "; ".join(r.summary for r in inconclusive) if advances else _held(waiting, inconclusive)
    )
    if first_of_streak:  # one alert per streak of inconclusive ticks
        t.alert(
            AlertKind.INCONCLUSIVE,
            Severity.WARN,
            f"Canary analysis is inconclusive: {summary}",
        )
    if advances:
        t.event(f"Analysis of {t.id} inconclusive, the weight may step up (not promote): {summary}")
        t.set(message=f"Analysis inconclusive, stepping up to collect data: {summary}")
        t.hold_promotion = summary
        return False
    t.event(f"Halt {t.id} advancement waiting for more data: {summary}")
    t.set(message=f"Analysis inconclusive, waiting for more data: {summary}")
    return True


def _held(waiting: list[MetricResult], inconclusive: list[MetricResult]) -> str:
    """Why a held tick holds. A verdict that may advance (``onInconclusive: advance``) does
    not hold the step, and its summary says it steps up: where another metric holds it
    (warming up, or inconclusive without advance), those are named, and the ones that may
    advance only said to wait for them, lest the Event claim a step-up that never happens."""
    advancing = [r for r in inconclusive if r.may_advance]
    if not advancing:
        return "; ".join(r.summary for r in inconclusive)
    holding = [_named(r) for r in inconclusive if not r.may_advance]
    holding += [f"{r.name} warming up" for r in waiting if r.warming_up]
    names = ", ".join(r.name for r in advancing)
    waits = "waits" if len(advancing) == 1 else "wait"
    them = "it" if len(holding) == 1 else "them"
    return (
        f"{'; '.join(holding)}; {names} inconclusive, {waits} for {them} (onInconclusive: advance)"
    )


def _named(result: MetricResult) -> str:
    """A verdict's summary that names its metric once."""
    named = result.summary.startswith(result.name)
    return result.summary if named else f"{result.name}: {result.summary}"


def _warming_up(t: Tick, warming: list[MetricResult]) -> None:
    """The canary is warming up: verdicts are observed, not acted on; one Event per run."""
    names = ", ".join(r.name for r in warming)
    t.set(stalled="", message=f"Warming up: {names} observed, not judged yet.")
    runs = t.old.analysis_history
    run = runs[-1] if runs and runs[-1].open else None
    if run is None or not any(v.flags.warming_up for tick in run.ticks for v in tick.verdicts):
        t.event(f"Analysis of {t.id} warming up: {names} observed, not judged yet")


def _stall(t: Tick, stalled: list[MetricResult]) -> None:
    """The inconclusive budget is spent with nothing to fall back on: hold, say what is
    needed (the AnalysisStalled condition and the message), and alert once per stall."""
    needs = "; ".join(_stall_need(r) for r in stalled)
    text = (
        f"{needs}; waiting for more traffic, or `canary promote --full` to promote "
        "or `canary abort` to roll back"
    )
    t.event(f"Halt {t.id} advancement analysis stalled: {needs}", warning=True)
    t.set(stalled=text, message=f"Analysis stalled: {text}")
    if not t.old.stalled:  # one alert per stall
        t.alert(AlertKind.ANALYSIS_STALLED, Severity.WARN, f"Canary analysis is stalled: {text}")


def _stall_need(result: MetricResult) -> str:
    """What a stalled metric lacks, in its judge's words (the judge knows what is missing:
    ``too little data: 40 of 100 requests on the smaller side ...``, and how many checks it
    has held for), with the primary's requests, which its words leave out."""
    summary = _named(result)
    if result.primary_samples is None:
        return summary
    return f"{summary} (the primary: {result.primary_samples:,} requests)"


def _report_advisory(t: Tick, advisory: list[MetricResult]) -> None:
    """Advisory (``dryRun``) metrics are reported, never acted on: an Event when one stops
    passing or changes its outcome, none while it stays the same. A warm-up verdict is
    stored as Inconclusive but is no outcome: the first verdict after it is news, whatever
    it is."""
    before = {m.name: m.outcome for m in t.old.analysis if not m.flags.warming_up}
    for result in advisory:
        if result.outcome is Outcome.PASS or result.warming_up:
            continue
        if before.get(result.name) == result.outcome.value:
            continue
        t.event(
            f"Advisory metric {result.name} (dryRun, not acted on) of {t.id}: "
            f"{result.outcome.value}: {result.summary}"
        )
