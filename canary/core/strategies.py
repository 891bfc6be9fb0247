"""How a run that passed its checks this tick moves on: canary, A/B testing, blue/green.

The three strategies differ only in what a successful tick buys: a canary gets more
traffic (``stepWeight`` or ``stepWeights``, optionally mirrored first), A/B testing and
blue/green one more iteration with a fixed audience. All three end at the
confirm-promotion gate, then promote (canary/core/promotion.py).
"""

from __future__ import annotations

from canary.core.actions import AlertKind, SetRoutes
from canary.core.observations import Routes
from canary.core.phases import Trigger
from canary.core.promotion import confirm_promotion, promote_now
from canary.core.tick import KUBERNETES, Flow, Tick
from canary.model.canary import TOTAL_WEIGHT, HookType, Severity, Strategy
from canary.model.status import Phase


def advance(t: Tick, routes: Routes) -> Flow[None]:
    """Steps 26-27: the strategy's next move."""
    strategy = t.analysis.strategy
    if strategy is Strategy.AB_TESTING:
        yield from run_ab(t)
    elif strategy is Strategy.BLUE_GREEN:
        yield from run_blue_green(t, routes)
    else:
        yield from run_canary(t, routes)


def run_canary(t: Tick, routes: Routes) -> Flow[None]:
    weight = routes.canary
    if (
        t.status.phase is Phase.PROGRESSING
        and not routes.mirrored
        and weight > t.status.canary_weight
    ):
        # The routing object is ahead of the status: a step was applied but its pass
        # never recorded it (a crash or a conflict). Record it and give it its interval.
        t.set(canary_weight=weight, message=f"Canary weight {weight}%.")
        t.event(f"Advance {t.id} canary weight {weight}")
        return
    step_weight = t.analysis.next_step_weight(weight)
    if t.hold_promotion and weight >= t.analysis.max_weight:
        hold_before_promotion(t, f"at canary weight {weight}%")
        return
    # confirm-traffic-increase gates every tick with a next step, the promoting one
    # included (Flagger 2.2 step 27), except while mirroring.
    if step_weight > 0 and not routes.mirrored and t.status.phase is Phase.PROGRESSING:
        if not (yield from confirm_traffic_increase(t)):
            return
    if weight < t.analysis.max_weight:
        if step_weight > 0:
            _step_traffic(t, routes, step_weight)
        return
    if (yield from confirm_promotion(t)):
        promote_now(t)


def _step_traffic(t: Tick, routes: Routes, step_weight: int) -> None:
    """One more step of traffic to the canary (or, with mirroring, mirror first)."""
    weight = routes.canary
    mirrored = False
    if t.analysis.mirror and weight == 0:
        if not routes.mirrored:
            primary, canary_w, mirrored = TOTAL_WEIGHT, 0, True
        else:
            primary, canary_w = TOTAL_WEIGHT - step_weight, step_weight
    else:
        primary = max(0, routes.primary - step_weight)
        canary_w = min(TOTAL_WEIGHT, weight + step_weight)
    t.act(SetRoutes(primary, canary_w, mirrored))
    t.set(
        canary_weight=canary_w,
        message=(
            f"Mirroring traffic to {t.target_id} before shifting weight."
            if mirrored
            else f"Canary weight {canary_w}%."
        ),
    )
    if mirrored:
        t.event(f"Start traffic mirroring for {t.id}")
    else:
        t.event(f"Advance {t.id} canary weight {canary_w}")


def confirm_traffic_increase(t: Tick) -> Flow[bool]:
    """The confirm-traffic-increase gate (or ``canary promote``); True when it is open."""
    if not t.analysis.hooks(HookType.CONFIRM_TRAFFIC_INCREASE):
        return True
    verdict = yield from t.open_gate(
        HookType.CONFIRM_TRAFFIC_INCREASE, "Confirm-traffic-increase", Phase.PROGRESSING
    )
    if verdict.ok:
        return True
    message = (
        f"Waiting for traffic increase approval: confirm-traffic-increase hook {verdict.hook}."
    )
    t.event(
        f"Halt {t.id} advancement waiting for traffic increase approval {verdict.hook}",
        warning=True,
    )
    # Difference: Flagger alerts on every waiting tick; we alert once per wait.
    if t.status.message != message:
        t.alert(
            AlertKind.WAITING_TRAFFIC_INCREASE,
            Severity.WARN,
            "Canary traffic increase is waiting for approval.",
            mute=t.hook_muted(HookType.CONFIRM_TRAFFIC_INCREASE, verdict.hook),
        )
    t.set(message=message)
    return False


def hold_before_promotion(t: Tick, where: str) -> None:
    """An inconclusive tick that may step up never promotes (nor finishes the iterations):
    at the last step it holds and waits for a conclusive verdict."""
    summary = t.hold_promotion
    t.event(f"Halt {t.id} advancement {where}: an inconclusive analysis does not promote")
    t.set(message=f"Analysis inconclusive {where}, waiting for more data to promote: {summary}")


def _last_iteration_held(t: Tick, n: int) -> bool:
    """True (and held) when an inconclusive tick would finish the run's iterations.

    The last step is the one the analysis was told of (`Tick.at_last_step`): the judge
    counts its holds there and ends them with `onMaxInconclusive`. Holding a step sooner,
    where the judge lets the step advance without counting, held the canary for ever."""
    if t.hold_promotion and t.at_last_step:
        hold_before_promotion(t, f"at iteration {t.status.iterations}/{n}")
        return True
    return False


def run_ab(t: Tick) -> Flow[None]:
    n = t.analysis.iterations
    if _last_iteration_held(t, n):
        return
    if n > t.status.iterations:
        t.act(SetRoutes(0, TOTAL_WEIGHT, False))
        iterations = t.status.iterations + 1
        t.set(
            canary_weight=TOTAL_WEIGHT,
            iterations=iterations,
            message=f"A/B iteration {iterations}/{n}.",
        )
        t.event(f"Advance {t.id} canary iteration {iterations}/{n}")
        return
    if (yield from confirm_promotion(t)):
        promote_now(t)


def run_blue_green(t: Tick, routes: Routes) -> Flow[None]:
    n = t.analysis.iterations
    kubernetes = t.provider == KUBERNETES
    if _last_iteration_held(t, n):
        return
    if n > t.status.iterations:
        if not kubernetes and t.analysis.mirror and not routes.mirrored:
            t.act(SetRoutes(TOTAL_WEIGHT, 0, True))
            t.event(f"Start traffic mirroring for {t.id}")
        iterations = t.status.iterations + 1
        t.set(iterations=iterations, message=f"Blue/green iteration {iterations}/{n}.")
        t.event(f"Advance {t.id} canary iteration {iterations}/{n}")
        return
    if n < t.status.iterations:  # the traffic switched on the last tick: promote
        promote_now(t)
        return
    if not (yield from confirm_promotion(t)):
        return
    if not kubernetes:
        if t.analysis.mirror:
            t.event("Stop traffic mirroring and route all traffic to canary")
        else:
            t.event("Routing all traffic to canary")
        t.act(SetRoutes(0, TOTAL_WEIGHT, False))
        t.set(canary_weight=TOTAL_WEIGHT)
    # Difference: the gate is passed; keep the phase Progressing.
    t.move(
        Trigger.SWITCHED_TO_CANARY,
        iterations=n + 1,
        # the kubernetes provider routes nothing: the primary keeps the traffic until the
        # promotion copies the new version into it
        message=(
            f"Iterations done ({n}/{n}); promoting next."
            if kubernetes
            else "All traffic on the new version; promoting next."
        ),
    )
    if kubernetes:
        t.event(f"Iterations of {t.id} done ({n}/{n}), promoting next")
