"""Progressive traffic: weights, tick counts, the analysis of one tick.

Reference: flagger.md 2.2 steps 15, 25, 27; 2.3 (tick counts); 2.6; 2.7;
checklist items 15, 16, 19 (the core's part), 23, 30 (the core's part).
"""

from __future__ import annotations

from typing import Any

import pytest

from canary.core import (
    AlertKind,
    AnalysisRequest,
    HookRequest,
    Outcome,
    Promote,
    Readiness,
    Routes,
    SetRoutes,
)
from canary.model import HookType, Phase, Severity
from tests.core.harness import (
    Script,
    canary_doc,
    finished,
    hook,
    run,
    running_status,
    running_world,
    single_step,
)


def test_reference_2_3_step_10_max_50_tick_counts() -> None:
    """Reference 2.3: tick1 scale up; tick2 pre-rollout + 10; tick3..6 20..50;
    tick7 confirm-promotion + Promote ⇒ Promoting; tick8 route 100% ⇒ Finalising; tick9 Succeeded."""
    result = run(canary_doc({"stepWeight": 10, "maxWeight": 50}), 12, until=finished)
    assert [(t.phase, t.routes.canary if t.routes else None) for t in result.ticks] == [
        (Phase.PROGRESSING, 0),
        (Phase.PROGRESSING, 10),
        (Phase.PROGRESSING, 20),
        (Phase.PROGRESSING, 30),
        (Phase.PROGRESSING, 40),
        (Phase.PROGRESSING, 50),
        (Phase.PROMOTING, 50),
        (Phase.FINALISING, 0),
        (Phase.SUCCEEDED, 0),
    ]
    assert result.first(Phase.PROMOTING) == 7
    assert result.first(Phase.FINALISING) == 8
    assert result.first(Phase.SUCCEEDED) == 9
    assert [t.tick for t in result.ticks if Promote() in t.actions] == [7]
    # tick 2 runs pre-rollout only; ticks 3..7 run the analysis
    assert [t.tick for t in result.ticks if t.analysed] == [3, 4, 5, 6, 7]


def test_reference_2_3_primary_rollout_delays_finalising() -> None:
    """tick8+: Promoting waits for the primary rollout (retriable), then routes back."""
    result = run(
        canary_doc({"stepWeight": 10, "maxWeight": 50}),
        14,
        Script(
            primary_ready={
                8: Readiness.waiting("1 old replicas are pending termination"),
                10: Readiness.ok(),
            }
        ),
        until=finished,
    )
    assert result.phases()[6:] == [
        Phase.PROMOTING,
        Phase.PROMOTING,
        Phase.PROMOTING,
        Phase.FINALISING,
        Phase.SUCCEEDED,
    ]
    assert result[8].warnings == (
        "podinfo-primary.test not ready: 1 old replicas are pending termination",
    )
    assert result[8].set_routes == ()


PROGRESSIONS: list[Any] = [
    pytest.param(
        {"stepWeight": 10, "maxWeight": 50}, [10, 20, 30, 40, 50], id="item23-step10-max50"
    ),
    pytest.param(
        {"stepWeights": [1, 2, 10, 80]}, [1, 2, 10, 80], id="item23-stepWeights-1-2-10-80"
    ),
    pytest.param({"stepWeight": 20, "maxWeight": 50}, [20, 40, 60], id="item23-overshoot-20-40-60"),
    pytest.param({"stepWeight": 30}, [30, 60, 90, 100], id="item23-step30-capped-at-100"),
    pytest.param({"stepWeight": 100}, [100], id="item23-step100"),
    pytest.param({"stepWeight": 25, "maxWeight": 100}, [25, 50, 75, 100], id="item23-step25"),
    pytest.param(
        {"stepWeights": [5, 50], "maxWeight": 20}, [5, 50], id="item23-stepWeights-define-max"
    ),
    pytest.param({"stepWeights": [10, 20, 40]}, [10, 20, 40], id="item23-stepWeights-max40"),
]


@pytest.mark.parametrize(("analysis", "weights"), PROGRESSIONS)
def test_item23_weight_progressions(analysis: dict[str, Any], weights: list[int]) -> None:
    """Checklist 23: advance while canaryWeight < maxWeight (overshoot allowed), then promote."""
    result = run(canary_doc(analysis), len(weights) + 6, until=finished)
    assert result.canary_weights_set()[: len(weights)] == weights
    for record in result.ticks:
        for routes in record.set_routes:
            assert routes.primary + routes.canary == 100
    promote_tick = len(weights) + 2
    assert result.first(Phase.PROMOTING) == promote_tick
    assert result[promote_tick - 1].routes == Routes(100 - weights[-1], weights[-1], False)
    assert result.first(Phase.SUCCEEDED) == promote_tick + 2


def test_item15_first_analysis_tick_runs_pre_rollout_only_then_advances() -> None:
    """Checklist 15: weight 0 and iterations 0 → pre-rollout hooks (+ event), then advance."""
    doc = canary_doc(
        {"stepWeight": 10, "webhooks": [hook("pre", "pre-rollout"), hook("load", "rollout")]}
    )
    record = single_step(doc, running_status(weight=0), running_world(100, 0))
    assert record.requests == (HookRequest("pre", HookType.PRE_ROLLOUT, "Progressing"),)
    assert record.events == (
        "Starting canary analysis for podinfo.test",
        "Pre-rollout check pre passed",
        "Advance podinfo.test canary weight 10",
    )
    assert record.set_routes == (SetRoutes(90, 10, False),)


def test_item15_failing_pre_rollout_counts_a_failed_check_and_is_retried() -> None:
    doc = canary_doc({"stepWeight": 10, "threshold": 3, "webhooks": [hook("pre", "pre-rollout")]})
    result = run(doc, 4, Script(hooks={"pre": {2: False, 3: False}}))
    assert [t.failed_checks for t in result.ticks] == [0, 1, 2, 2]
    assert [len(t.set_routes) for t in result.ticks] == [0, 0, 0, 1]
    assert result[2].warnings == (
        "Halt podinfo.test advancement pre-rollout check pre failed pre said no (403)",
    )
    assert [tick for tick, _ in result.hook_requests(HookType.PRE_ROLLOUT)] == [2, 3, 4]


def test_item16_later_ticks_run_rollout_hooks_then_metrics() -> None:
    doc = canary_doc(
        {"stepWeight": 10, "webhooks": [hook("load", "rollout"), hook("smoke", "rollout")]}
    )
    record = single_step(doc, running_status(weight=10), running_world(90, 10))
    assert record.requests == (
        HookRequest("load", HookType.ROLLOUT, "Progressing"),
        HookRequest("smoke", HookType.ROLLOUT, "Progressing"),
        AnalysisRequest(("request-success-rate",), last_step=False),
    )
    assert record.set_routes == (SetRoutes(80, 20, False),)


def test_item16_a_failing_rollout_hook_stops_the_tick_before_metrics() -> None:
    doc = canary_doc(
        {
            "stepWeight": 10,
            "threshold": 5,
            "webhooks": [hook("load", "rollout"), hook("smoke", "rollout")],
        }
    )
    record = single_step(
        doc,
        running_status(weight=10, failed_checks=1),
        running_world(90, 10),
        Script(hooks={"load": False}),
    )
    assert record.requests == (HookRequest("load", HookType.ROLLOUT, "Progressing"),)
    assert record.failed_checks == 2
    assert record.set_routes == ()
    assert record.warnings == (
        "Halt podinfo.test advancement external check load failed load said no (403)",
    )


METRICS = [
    {"name": "request-success-rate", "thresholdRange": {"min": 99}},
    {"name": "request-duration", "thresholdRange": {"max": 500}},
]


@pytest.mark.parametrize(
    ("outcomes", "failed", "advances"),
    [
        pytest.param([Outcome.PASS, Outcome.PASS], 0, True, id="item16-all-pass-advance"),
        pytest.param([Outcome.FAIL, Outcome.PASS], 1, False, id="item16-one-fails"),
        pytest.param([Outcome.FAIL, Outcome.FAIL], 1, False, id="item16-two-fail-count-once"),
        pytest.param(
            [Outcome.PASS, Outcome.NODATA], 1, False, id="item19-no-data-is-a-failed-check"
        ),
        pytest.param(
            [Outcome.ERROR, Outcome.PASS], 1, False, id="item19-query-error-is-a-failed-check"
        ),
        pytest.param(
            [Outcome.INCONCLUSIVE, Outcome.PASS], 0, False, id="inconclusive-waits-without-counting"
        ),
        pytest.param(
            [Outcome.INCONCLUSIVE, Outcome.FAIL], 1, False, id="fail-wins-over-inconclusive"
        ),
    ],
)
def test_item16_metric_outcomes(outcomes: list[Outcome], failed: int, advances: bool) -> None:
    """Checklist 16/19: the first failure adds exactly 1 and ends the tick without advancing."""
    doc = canary_doc({"stepWeight": 10, "threshold": 5, "metrics": METRICS})
    record = single_step(
        doc, running_status(weight=10), running_world(90, 10), Script(metrics=outcomes)
    )
    assert record.failed_checks == failed
    assert bool(record.set_routes) is advances
    assert [m.outcome for m in record.status.analysis] == [o.value for o in outcomes]


def test_inconclusive_alerts_once_per_streak() -> None:
    """Ours: an inconclusive verdict waits for data, warns once per streak, never counts."""
    doc = canary_doc({"stepWeight": 10, "maxWeight": 30})
    result = run(
        doc,
        8,
        Script(metrics={3: Outcome.INCONCLUSIVE, 4: Outcome.INCONCLUSIVE, 6: Outcome.INCONCLUSIVE}),
    )
    inconclusive = [
        (t.tick, a.severity)
        for t in result.ticks
        for a in t.alerts
        if a.kind is AlertKind.INCONCLUSIVE
    ]
    assert inconclusive == [(3, Severity.WARN), (6, Severity.WARN)]
    assert all(t.failed_checks == 0 for t in result.ticks)
    assert result.canary_weights_set()[:3] == [10, 20, 30]


def test_weights_are_read_back_from_the_routing_object() -> None:
    """Reference 2.2 step 15 (checklist 30, the core's part): routes, not status, are the truth."""
    record = single_step(
        canary_doc({"stepWeight": 20}), running_status(weight=40), running_world(60, 40)
    )
    assert record.set_routes == (SetRoutes(40, 60, False),)
    assert record.weight == 60


def test_a_routing_object_ahead_of_the_status_is_recorded_before_the_next_step() -> None:
    """Difference: a step applied by a pass whose status write was lost (a crash, a
    conflict) gets its own interval instead of a second step at once."""
    doc = canary_doc({"stepWeight": 20})
    record = single_step(doc, running_status(weight=10), running_world(70, 30))
    assert record.set_routes == ()
    assert record.weight == 30
    following = single_step(doc, record.status, running_world(70, 30))
    assert following.set_routes == (SetRoutes(50, 50, False),)


def test_missing_routing_object_counts_as_100_0() -> None:
    world = running_world()
    world.routes = None
    record = single_step(canary_doc({"stepWeight": 10}), running_status(weight=0), world)
    assert record.has_event("Starting canary analysis")
    assert record.set_routes == (SetRoutes(90, 10, False),)


def test_no_metrics_means_no_analysis_request() -> None:
    doc = canary_doc({"stepWeight": 50, "metrics": []})
    result = run(doc, 6, until=finished)
    assert not any(t.analysed for t in result.ticks)
    assert result.last.phase is Phase.SUCCEEDED


def test_weight_advance_event_and_status() -> None:
    record = single_step(
        canary_doc({"stepWeight": 10}), running_status(weight=10), running_world(90, 10)
    )
    assert record.events == ("Advance podinfo.test canary weight 20",)
    assert record.weight == 20
    assert record.status.message == "Canary weight 20%."
