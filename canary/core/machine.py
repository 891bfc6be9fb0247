"""The canary state machine: one tick as a generator, and the one loop that drives it.

`decide(canary, status, observations)` decides one tick the way Flagger's
``advanceCanary`` does (reference/flagger.md 2.2, followed step by step and numbered
alike in the comments of `_advance`), without doing any of it: the result is a
`Decision` holding the new status, the actions to run before the status is written and
the effects (Events, alerts, post-rollout hooks) to run after.

Some facts cost a call with side effects (a gate's answer, the metric verdicts, the
outcome of a Git revert), so the tick asks for them only when it gets there. It is a
generator, like httpx's ``Auth.auth_flow``: it yields a `Request`, is sent the `Answer`
and carries on, and returns the `Decision`. The tick runs once, top to bottom, however
many questions it asks; asking never replays it.

`drive` is the only loop that feeds a tick its answers. It is a coroutine taking an
async ``answer`` function, because the controller's answers are network calls; the core
itself awaits nothing but that function, so it needs no event loop. `canary simulate`
and the tests answer from a script without ever suspending and run `drive` with
`run_now`. (A sync and an async copy of the loop would be the two loops this module
exists to replace; one coroutine serves both kinds of caller.)

`step` is the replay form: it answers only from ``observations.answers`` and returns a
decision that asks for the first missing answer. Replaying a tick from its final
observations, answers included, gives the same decision.

No I/O, no clock, no framework: the same inputs always give the same decision, so a run
can be replayed from recorded observations (`canary simulate`).

Where Flagger has a quirk (reference 2.17) we choose the sensible behaviour and list it
in docs/flagger-differences.md; those places are marked "Difference:".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from canary.core.actions import AlertKind, Decision
from canary.core.checks import (
    first_analysis_tick,
    pre_rollout,
    rollback_hooks,
    run_analysis,
    threshold_reached,
)
from canary.core.endings import failed_promotion, finalize_deletion, rollback
from canary.core.initialization import held, initialize
from canary.core.known_bad import known_bad_match
from canary.core.observations import Answer, Observations, Request, request_key
from canary.core.phases import IDLE, IN_RUN, RUNNING, Trigger
from canary.core.promotion import finalising, promote_now, promoting, skip_analysis
from canary.core.revert import process_git_revert
from canary.core.revisions import (
    catch_up_revision,
    restart_on_new_revision,
    retry,
    revision_changed,
    start_pending_revision,
)
from canary.core.strategies import advance
from canary.core.tick import Flow, Tick, effective_analysis
from canary.model.canary import Canary
from canary.model.status import CanaryStatus, Phase

__all__ = ["AnswerFunction", "decide", "drive", "effective_analysis", "run_now", "step"]

T = TypeVar("T")

AnswerFunction = Callable[[Request], Awaitable[Answer]]


# ------------------------------------------------------------------ driving a tick


async def drive(
    canary: Canary, status: CanaryStatus, obs: Observations, answer: AnswerFunction
) -> Decision:
    """Decide one tick, asking ``answer`` for each fact the tick needs.

    A request already answered (in ``obs.answers``, or earlier in this tick) is answered
    from there: the world is asked each question at most once per tick.
    """
    flow = decide(canary, status, obs)
    known: dict[str, Answer] = dict(obs.answers)
    asked = _resume(flow, None)
    while not isinstance(asked, Decision):
        key = request_key(asked)
        if key not in known:
            known[key] = await answer(asked)
        asked = _resume(flow, known[key])
    return asked


def step(canary: Canary, status: CanaryStatus, obs: Observations) -> Decision:
    """Decide one tick from ``obs`` alone (a replay; see the module docstring).

    When an answer is missing the decision is not final: it holds the old status and
    ``requests=(the request,)``, and no actions or effects.
    """
    flow = decide(canary, status, obs)
    asked = _resume(flow, None)
    while not isinstance(asked, Decision):
        known = obs.answer(asked)
        if known is None:
            flow.close()
            return Decision(status=status, requests=(asked,))
        asked = _resume(flow, known)
    return asked


def run_now(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (a `drive` whose answers are at hand) to its
    result, without an event loop; raise if it does suspend."""
    try:
        coroutine.send(None)
    except StopIteration as finished:
        result: T = finished.value
        return result
    coroutine.close()
    raise RuntimeError("the coroutine suspended: its answer function awaits real I/O")


def _resume(flow: Flow[Decision], answer: Answer | None) -> Request | Decision:
    """Run the tick to its next question (``answer`` answers the last one) or its end."""
    try:
        return next(flow) if answer is None else flow.send(answer)
    except StopIteration as finished:
        decision: Decision = finished.value
        return decision


# ------------------------------------------------------------------ the tick


def decide(canary: Canary, status: CanaryStatus, obs: Observations) -> Flow[Decision]:
    """One tick as a generator of requests (see the module docstring)."""
    tick = Tick(canary, status, obs)
    yield from _advance(tick)
    tick.pending_revision = _revision_pending(tick)
    return tick.decision()


def _revision_pending(t: Tick) -> bool:
    """Whether the tick ends with a new revision of the target seen but not started (the
    primary not ready, say): the Promoted condition must stop saying the last release is
    promoted in the very pass that sees it, not when the run starts."""
    if t.status.phase not in IDLE or t.status.refused or t.obs.deleting:
        return False
    return t.obs.target is not None and revision_changed(t)


def _advance(t: Tick) -> Flow[None]:
    """Flagger's advanceCanary, step by step; every step that decides the tick ends it."""
    obs = t.obs
    t.set(observed_generation=obs.generation or t.status.observed_generation)
    if obs.deleting:
        finalize_deletion(t)
        return
    # 1-12. suspension, the target, and the objects every tick reconciles
    if held(t) or initialize(t):
        return
    catch_up_revision(t)
    if t.status.refused and known_bad_match(t) is None:
        t.set(refused="")  # Git moved on from the known-bad release
    # Our commands on an idle canary.
    if retry(t):
        return
    # 13. should the canary advance?
    changed = revision_changed(t)
    if t.status.phase not in RUNNING and not changed:
        yield from _settled(t)
        return
    # 14. primary readiness
    if _primary_unready(t):
        return
    # 16. a pending revision outside a run: confirm-rollout, then scale up.
    if t.status.phase not in IN_RUN:
        yield from start_pending_revision(t)
        return
    # 17. a new revision mid-run restarts the analysis; commands inside a run.
    if restart_on_new_revision(t, changed) or _run_commands(t):
        return
    # 18. canary readiness
    if _canary_unready(t):
        return
    yield from _analyse_and_advance(t)


def _analyse_and_advance(t: Tick) -> Flow[None]:
    """Steps 19-27: the run proper, once everything it needs is in place."""
    phase = t.status.phase
    # 19. skip analysis: promote at once.
    if t.spec.skips_analysis and phase is Phase.PROGRESSING:
        skip_analysis(t)
        return
    # 20. rollback hooks
    if phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION) and (yield from rollback_hooks(t)):
        return
    # 21. promoting: shift traffic back to the (now new) primary.
    if phase is Phase.PROMOTING:
        promoting(t)
        return
    # 22. finalising: scale the target down, done.
    if phase is Phase.FINALISING:
        finalising(t)
        return
    # 23. the failed-checks threshold
    if threshold_reached(t):
        return
    # 24. a pass woken early by a command or an edit acts on it (above) but takes the
    # run's next step only when its interval is due: a `canary promote` while no gate
    # waits must not advance the canary a step early. (The run's first traffic step may
    # go at once: the canary became ready.)
    routes = t.routes()
    first = first_analysis_tick(t, routes)
    if t.obs.woken and phase is Phase.PROGRESSING and not first:
        return
    # 25. the first analysis tick runs pre-rollout hooks; later ticks the analysis.
    if first:
        ended = yield from pre_rollout(t)
    else:
        ended = yield from run_analysis(t)
    if ended:
        return
    # 26-27. the strategy's next move
    yield from advance(t, routes)


def _settled(t: Tick) -> Flow[None]:
    """Step 13, nothing to do: re-sync a failed release, drop stale commands, and carry
    on with a waiting Git revert."""
    target = t.obs.target
    assert target is not None
    if t.status.phase is Phase.FAILED:
        # The known-bad template stays known-bad: re-sync so it does not re-run.
        t.set(
            last_applied_spec=target.template_hash,
            tracked_configs=dict(target.tracked_configs),
        )
    t.drop_stale_commands()
    yield from process_git_revert(t)  # a rollback's, or a known-bad comeback's


def _primary_unready(t: Tick) -> bool:
    """Step 14: wait for the primary, or end the run it broke; True when the tick ends."""
    primary = t.obs.primary
    assert primary is not None
    readiness = primary.readiness
    if t.spec.skips_analysis or readiness.ready:
        return False
    if readiness.retriable:
        t.event(f"{t.primary_id} not ready: {readiness.message}", warning=True)
        t.set(message=f"Waiting for {t.primary_id}: {readiness.message}")
    elif t.status.phase in (Phase.PROMOTING, Phase.FINALISING):
        failed_promotion(t, readiness.message)
    else:
        rollback(
            t,
            Trigger.PRIMARY_FAILED,
            f"primary not ready: {readiness.message}",
            alert_kind=AlertKind.PROGRESS_DEADLINE,
        )
    return True


def _run_commands(t: Tick) -> bool:
    """``canary abort`` and ``canary promote --full`` inside a run; True when one acted."""
    commands = t.obs.commands
    phase = t.status.phase
    if commands.abort:
        t.consume("abort", commands.abort)
        if phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION):
            t.event(f"Rolling back {t.id}: aborted{t.by(commands.abort)}", warning=True)
            rollback(
                t,
                Trigger.ABORTED,
                f"aborted{t.by(commands.abort)}",
                alert_kind=AlertKind.ABORTED,
            )
            return True
        t.event(
            f"Cannot abort {t.id} while {phase.value}: the primary is already being promoted",
            warning=True,
        )
    if commands.promote_full and phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION):
        t.consume("promoteFull", commands.promote_full)
        t.event(f"Skipping the rest of the analysis{t.by(commands.promote_full)}")
        promote_now(t)
        return True
    return False


def _canary_unready(t: Tick) -> bool:
    """Step 18: wait for the canary, or roll back past its deadline; True when the tick
    ends."""
    target = t.obs.target
    assert target is not None
    readiness = target.readiness
    if readiness.ready:
        return False
    if readiness.retriable:
        t.event(f"{t.target_id} not ready: {readiness.message}", warning=True)
        t.set(message=f"Waiting for {t.target_id}: {readiness.message}")
        return True
    rollback(
        t,
        Trigger.CANARY_FAILED,
        f"progress deadline exceeded {readiness.message}",
        alert_kind=AlertKind.PROGRESS_DEADLINE,
        detail=readiness.message,
    )
    return True
