"""Invariants of the state machine over random specs and random worlds (hypothesis).

For random analysis specs (stepWeight / stepWeights / maxWeight / threshold / iterations /
match / mirror / stepWeightPromotion / hooks / provider) and random per-tick outcomes
(pass / fail / inconclusive / no-data metrics, hook answers, canary and primary readiness,
new revisions), every run keeps these invariants:

* weights are within 0..100 and sum to 100 (every SetRoutes, and the routing object);
* failedChecks never decreases within a run;
* no Promoting (and no Promote) once failedChecks has reached the threshold;
* no Promote before maxWeight (canary) or the iterations (blue/green, A/B) are reached,
  and only on a tick whose checks all passed;
* Succeeded is reached only through Promoting then Finalising (or straight from
  Progressing with skipAnalysis); every phase change is one of Flagger's transitions (2.3);
* every decision is deterministic: the same inputs give the same decision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from canary.core import Outcome, Promote, Readiness, Routes, SetRoutes, effective_analysis
from canary.model import Canary, Phase, Strategy, parse_canary
from tests.core.harness import (
    RunResult,
    Script,
    TickRecord,
    World,
    canary_doc,
    hook,
    run,
    single_step,
)
from tests.core.harness import new_revision as new_revision_change

TICKS = 30
PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

HOOK_TYPES = (
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "rollback",
    "post-rollout",
)

# Flagger's phase transitions (reference 2.3), plus our documented Difference: a
# blue/green canary whose confirm-promotion gate opens goes back to Progressing.
ALLOWED: dict[Phase, set[Phase]] = {
    Phase.INITIALIZED: {Phase.WAITING, Phase.PROGRESSING, Phase.FAILED},
    Phase.SUCCEEDED: {Phase.WAITING, Phase.PROGRESSING, Phase.FAILED},
    Phase.FAILED: {Phase.WAITING, Phase.PROGRESSING},
    Phase.WAITING: {Phase.PROGRESSING, Phase.FAILED},
    Phase.PROGRESSING: {Phase.WAITING_PROMOTION, Phase.PROMOTING, Phase.FAILED},
    Phase.WAITING_PROMOTION: {Phase.PROGRESSING, Phase.PROMOTING, Phase.FAILED},
    Phase.PROMOTING: {Phase.FINALISING, Phase.FAILED},
    Phase.FINALISING: {Phase.SUCCEEDED, Phase.FAILED},
}


# ------------------------------------------------------------------ strategies


@st.composite
def analyses(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A random valid analysis section and provider."""
    kind = draw(st.sampled_from(["stepWeight", "stepWeights", "blue-green", "ab", "kubernetes"]))
    analysis: dict[str, Any] = {"threshold": draw(st.integers(0, 4))}
    provider = "istio"
    if kind == "stepWeight":
        analysis["stepWeight"] = draw(st.integers(1, 100))
        max_weight = draw(st.one_of(st.none(), st.integers(1, 100)))
        if max_weight is not None:
            analysis["maxWeight"] = max_weight
    elif kind == "stepWeights":
        analysis["stepWeights"] = sorted(
            draw(st.lists(st.integers(1, 100), min_size=1, max_size=5, unique=True))
        )
    elif kind in ("blue-green", "ab"):
        analysis["iterations"] = draw(st.integers(1, 4))
        if kind == "ab":
            analysis["match"] = [{"headers": {"x-canary": {"exact": "insider"}}}]
    else:
        provider = "kubernetes"
        iterations = draw(st.integers(0, 3))
        if iterations:
            analysis["iterations"] = iterations
    if provider != "kubernetes" and kind != "ab":
        analysis["mirror"] = draw(st.booleans())
    promotion = draw(st.one_of(st.just(0), st.integers(1, 100)))
    if promotion:
        analysis["stepWeightPromotion"] = promotion
    hook_types = draw(st.lists(st.sampled_from(HOOK_TYPES), unique=True, max_size=4))
    analysis["webhooks"] = [hook(t, t) for t in hook_types]
    return analysis, provider


READINESS = st.sampled_from(
    [Readiness.ok()] * 30
    + [Readiness.waiting("1 of 2 updated replicas are available")] * 6
    + [Readiness.failed("progress deadline exceeded")]
)
PRIMARY_READINESS = st.sampled_from(
    [Readiness.ok()] * 40
    + [Readiness.waiting("rolling out")] * 6
    + [Readiness.failed("ProgressDeadlineExceeded")]
)
ALWAYS_READY = st.just(Readiness.ok())
METRIC = st.sampled_from([Outcome.PASS] * 8 + [Outcome.FAIL, Outcome.INCONCLUSIVE, Outcome.NODATA])
METRIC_BY_QUALITY = {
    "clean": st.sampled_from([Outcome.PASS] * 15 + [Outcome.INCONCLUSIVE]),
    "flaky": METRIC,
    "bad": st.sampled_from([Outcome.PASS, Outcome.FAIL, Outcome.NODATA, Outcome.INCONCLUSIVE]),
}
GATE = st.sampled_from([True, True, True, False])
ROLLBACK = st.sampled_from([False] * 30 + [True])


@dataclass(frozen=True)
class TickPlan:
    metric: Outcome
    gates: dict[str, bool]
    canary: Readiness
    primary: Readiness
    new_revision: bool


@st.composite
def tick_plans(draw: st.DrawFn, ticks: int = TICKS) -> list[TickPlan]:
    """Per-tick outcomes; one quality per run (clean, flaky or bad metrics; steady or
    unsteady workloads) so that runs reach every ending."""
    metric = METRIC_BY_QUALITY[draw(st.sampled_from(["clean", "clean", "flaky", "bad"]))]
    steady = draw(st.booleans())
    canary = ALWAYS_READY if steady else READINESS
    primary = ALWAYS_READY if steady else PRIMARY_READINESS
    plans = []
    for _ in range(ticks):
        gates = {t: draw(ROLLBACK if t == "rollback" else GATE) for t in HOOK_TYPES}
        plans.append(
            TickPlan(
                metric=draw(metric),
                gates=gates,
                canary=draw(canary),
                primary=draw(primary),
                new_revision=draw(st.sampled_from([False] * 40 + [True])),
            )
        )
    return plans


def script_for(plans: list[TickPlan]) -> Script:
    def gate(name: str) -> Callable[[int], bool]:
        return lambda tick: plans[tick - 1].gates[name]

    return Script(
        metrics=lambda tick: plans[tick - 1].metric,
        hooks={name: gate(name) for name in HOOK_TYPES},
        canary_ready=lambda tick: plans[tick - 1].canary,
        primary_ready=lambda tick: plans[tick - 1].primary,
        before={
            tick: new_revision_change(f"v{tick + 2}")
            for tick, plan in enumerate(plans, start=1)
            if plan.new_revision
        },
    )


def simulate(doc: dict[str, Any], plans: list[TickPlan]) -> RunResult:
    return run(doc, len(plans), script_for(plans), check_determinism=True)


# ------------------------------------------------------------------ checks


def check_weights(record: TickRecord) -> None:
    for routes in record.set_routes:
        assert 0 <= routes.primary <= 100 and 0 <= routes.canary <= 100, routes
        assert routes.primary + routes.canary == 100, routes
    if record.routes is not None:
        assert record.routes.primary + record.routes.canary == 100
    assert 0 <= record.weight <= 100
    assert record.failed_checks >= 0 and record.iterations >= 0


def restarted(record: TickRecord) -> bool:
    return record.has_event("New revision detected!")


def check_failed_checks_monotonic(record: TickRecord) -> None:
    before, after = record.before, record.status
    if after.failed_checks < before.failed_checks:
        assert after.phase in (Phase.FAILED, Phase.SUCCEEDED) or restarted(record), (
            f"tick {record.tick}: failedChecks {before.failed_checks} -> {after.failed_checks} "
            f"in {after.phase.value}"
        )


def check_threshold(record: TickRecord, canary: Canary) -> None:
    threshold = canary.spec.analysis_or_default.threshold
    before = record.before
    if (
        before.phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION)
        and before.failed_checks >= threshold
    ):
        assert Promote() not in record.actions, f"tick {record.tick}: promoted past the threshold"
        assert record.phase is not Phase.PROMOTING


def check_promotion_gate(record: TickRecord, canary: Canary) -> None:
    if Promote() not in record.actions or canary.spec.skips_analysis:
        return
    analysis = effective_analysis(canary)
    before = record.before
    assert before.phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION)
    strategy = analysis.strategy
    if strategy is Strategy.CANARY:
        routes = record.observations.routes or Routes(100, 0)
        assert routes.canary >= analysis.max_weight, (
            f"tick {record.tick}: promoted at canary weight {routes.canary} < {analysis.max_weight}"
        )
    elif strategy is Strategy.BLUE_GREEN:
        assert before.iterations > analysis.iterations, (
            f"tick {record.tick}: {before.iterations} iterations"
        )
    else:
        assert before.iterations >= analysis.iterations, (
            f"tick {record.tick}: {before.iterations} iterations"
        )
    # only on a tick whose checks all passed
    assert record.failed_checks == before.failed_checks
    verdicts = record.observations.answers.get("analysis")
    if verdicts is not None:
        assert isinstance(verdicts, tuple)
        assert all(v.outcome is Outcome.PASS for v in verdicts)
    for key, answer in record.observations.answers.items():
        if key.startswith("hook/rollout/"):
            assert getattr(answer, "ok", True)


def check_transition(record: TickRecord, canary: Canary) -> None:
    before, after = record.before.phase, record.phase
    if before is after:
        return
    allowed = set(ALLOWED.get(before, set()))
    if canary.spec.skips_analysis:
        allowed.add(Phase.SUCCEEDED)  # skipAnalysis: Progressing → Succeeded directly
    assert after in allowed, f"tick {record.tick}: {before.value} -> {after.value}"


def check_succeeded_path(result: RunResult) -> None:
    """Succeeded only after Promoting then Finalising in the same run (or skipAnalysis)."""
    history: list[Phase] = [result.init[-1].phase] if result.init else []
    for record in result.ticks:
        if record.phase is Phase.SUCCEEDED and record.before.phase is not Phase.SUCCEEDED:
            if result.canary.spec.skips_analysis and record.before.phase is Phase.PROGRESSING:
                pass
            else:
                run_phases = history[_run_start(history) :]
                assert Phase.PROMOTING in run_phases and Phase.FINALISING in run_phases
                assert run_phases.index(Phase.PROMOTING) < run_phases.index(Phase.FINALISING)
        history.append(record.phase)


def _run_start(history: list[Phase]) -> int:
    """Index of the first phase of the current run (after the last idle phase)."""
    idle = (Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED, Phase.WAITING)
    for index in range(len(history) - 1, -1, -1):
        if history[index] in idle:
            return index + 1
    return 0


def check_run(result: RunResult) -> None:
    for record in result.ticks:
        check_weights(record)
        check_failed_checks_monotonic(record)
        check_threshold(record, result.canary)
        check_promotion_gate(record, result.canary)
        check_transition(record, result.canary)
    check_succeeded_path(result)


# ------------------------------------------------------------------ properties


@PROPERTY_SETTINGS
@given(analyses(), tick_plans())
def test_invariants_hold_in_random_runs(
    spec: tuple[dict[str, Any], str], plans: list[TickPlan]
) -> None:
    analysis, provider = spec
    result = simulate(canary_doc(analysis, provider=provider), plans)
    check_run(result)
    for phase in (Phase.PROMOTING, Phase.SUCCEEDED, Phase.FAILED, Phase.WAITING_PROMOTION):
        if phase in result.phases():
            event(f"reached {phase.value}")


@PROPERTY_SETTINGS
@given(analyses(), tick_plans())
def test_runs_are_deterministic(spec: tuple[dict[str, Any], str], plans: list[TickPlan]) -> None:
    analysis, provider = spec
    doc = canary_doc(analysis, provider=provider)
    first = simulate(doc, plans)
    second = simulate(doc, plans)
    assert [r.decision for r in first.ticks] == [r.decision for r in second.ticks]
    assert [r.requests for r in first.ticks] == [r.requests for r in second.ticks]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(analyses(), st.lists(READINESS, min_size=6, max_size=6))
def test_skip_analysis_goes_straight_to_succeeded(
    spec: tuple[dict[str, Any], str], readiness: list[Readiness]
) -> None:
    analysis, provider = spec
    doc = canary_doc(analysis, provider=provider, skipAnalysis=True)
    result = run(doc, len(readiness), Script(canary_ready=lambda t: readiness[t - 1]))
    check_run(result)
    assert Phase.PROMOTING not in result.phases()
    assert Phase.FINALISING not in result.phases()
    assert Phase.WAITING_PROMOTION not in result.phases()


@st.composite
def mid_run_states(draw: st.DrawFn) -> tuple[dict[str, Any], str, Routes, Phase, int, int]:
    spec = draw(analyses())
    canary_weight = draw(st.integers(0, 100))
    mirrored = draw(st.booleans()) and canary_weight == 0
    phase = draw(
        st.sampled_from(
            [Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.PROMOTING, Phase.FINALISING]
        )
    )
    iterations = draw(st.integers(0, 6))
    failed = draw(st.integers(0, 5))
    return (
        spec[0],
        spec[1],
        Routes(100 - canary_weight, canary_weight, mirrored),
        phase,
        iterations,
        failed,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mid_run_states(), METRIC, GATE)
def test_weights_stay_valid_from_any_mid_run_state(
    state: tuple[dict[str, Any], str, Routes, Phase, int, int], metric: Outcome, gate: bool
) -> None:
    """From any routes on or off the step path, every SetRoutes is within 0..100 and sums to 100."""
    analysis, provider, routes, phase, iterations, failed = state
    doc = canary_doc(analysis, provider=provider)
    canary = parse_canary(doc)
    world = World(template_hash="v2", primary_exists=True, primary_template="v1", routes=routes)
    status_doc = {
        "phase": phase.value,
        "canaryWeight": routes.canary,
        "failedChecks": failed,
        "iterations": iterations,
        "lastAppliedSpec": "v2",
        "lastPromotedSpec": "v1",
    }
    from canary.model import CanaryStatus

    record = single_step(
        canary,
        CanaryStatus.from_dict(status_doc),
        world,
        Script(metrics=metric, hooks={t: gate if t != "rollback" else False for t in HOOK_TYPES}),
    )
    check_weights(record)
    check_threshold(record, canary)
    check_promotion_gate(record, canary)
    check_transition(record, canary)
    for routes_set in record.set_routes:
        assert isinstance(routes_set, SetRoutes)
