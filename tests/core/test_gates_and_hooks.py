"""Gates and webhooks: when each hook type is asked, with which phase, and its effect.

Reference: flagger.md 2.12, 2.16 (golden trace); checklist items 11, 15, 31, 38 (the
core's part: the phase sent), 39, 40, 42 (gate alerts).
"""

from __future__ import annotations

from typing import Any

import pytest

from canary.core import (
    AlertKind,
    AnalysisRequest,
    CallHooks,
    HookRequest,
    Outcome,
    Promote,
    ScaleMode,
    ScaleTarget,
    SetRoutes,
)
from canary.model import HookType, Phase, Severity
from tests.core.harness import (
    Script,
    canary_doc,
    closed_until,
    fail_from,
    finished,
    hook,
    new_revision,
    run,
    running_status,
    running_world,
    single_step,
)

ALL_HOOKS = [
    hook("confirm-rollout-webhook", "confirm-rollout"),
    hook("pre-rollout-webhook", "pre-rollout"),
    hook("rollout-webhook", "rollout"),
    hook("confirm-traffic-increase-webhook", "confirm-traffic-increase"),
    hook("confirm-promotion-webhook", "confirm-promotion"),
    hook("post-rollout-webhook", "post-rollout"),
]
GOLDEN = canary_doc(
    {"stepWeight": 100, "stepWeightPromotion": 50, "webhooks": ALL_HOOKS},
    name="podinfo",
    namespace="default",
)


def golden_run() -> Any:
    return run(GOLDEN, 12, Script(before={3: new_revision("v2")}), start="fresh", until=finished)


def test_golden_trace_phases_and_weights() -> None:
    """Reference 2.16: Initializing → Initialized → Progressing(w0) → Progressing(w100) →
    Promoting(w100) → Promoting(w50) → Finalising(w0) → Succeeded."""
    result = golden_run()
    assert [(t.phase, t.weight) for t in result.ticks] == [
        (Phase.INITIALIZING, 0),
        (Phase.INITIALIZED, 0),
        (Phase.PROGRESSING, 0),
        (Phase.PROGRESSING, 100),
        (Phase.PROMOTING, 100),
        (Phase.PROMOTING, 50),
        (Phase.FINALISING, 0),
        (Phase.SUCCEEDED, 0),
    ]


def test_golden_trace_events_in_order() -> None:
    """Reference 2.16's messages, in order (the provider-check and post-rollout check Events
    come from the shell, not the core)."""
    expected = [
        "Initialization done! podinfo.default",
        "Confirm-rollout check confirm-rollout-webhook passed",
        "New revision detected! Scaling up podinfo.default",
        "Starting canary analysis for podinfo.default",
        "Pre-rollout check pre-rollout-webhook passed",
        "Confirm-traffic-increase check confirm-traffic-increase-webhook passed",
        "Advance podinfo.default canary weight 100",
        "Confirm-promotion check confirm-promotion-webhook passed",
        "Copying podinfo.default template spec to podinfo-primary.default",
        "Advance podinfo.default primary weight 50",
        "Advance podinfo.default primary weight 100",
        "Promotion completed! Scaling down podinfo.default",
    ]
    events = golden_run().events()
    positions = [events.index(message) for message in expected]
    assert positions == sorted(positions), events


def test_golden_trace_hook_call_counts() -> None:
    """Reference 2.16: confirm-rollout 1 (Initialized), pre-rollout 1, rollout 1,
    confirm-promotion 1, post-rollout 1 (Succeeded)."""
    result = golden_run()
    counts = result.hook_counts()
    assert counts["confirm-rollout"] == 1
    assert counts["pre-rollout"] == 1
    assert counts["rollout"] == 1
    assert counts["confirm-promotion"] == 1
    assert counts["post-rollout"] == 1
    ((_, confirm),) = result.hook_requests(HookType.CONFIRM_ROLLOUT)
    assert confirm.phase == "Initialized"
    (post,) = [e for t in result.ticks for e in t.called_hooks]
    assert post == CallHooks(HookType.POST_ROLLOUT, "Succeeded")


def test_golden_trace_confirm_traffic_increase_called_twice() -> None:
    assert golden_run().hook_counts()["confirm-traffic-increase"] == 2


# ------------------------------------------------------------------ confirm-rollout


def test_item11_confirm_rollout_closed_means_waiting_with_one_warn_alert() -> None:
    doc = canary_doc({"stepWeight": 50, "webhooks": [hook("gate", "confirm-rollout")]})
    result = run(doc, 6, Script(hooks={"gate": closed_until(4)}))
    assert result.phases()[:4] == [Phase.WAITING] * 3 + [Phase.PROGRESSING]
    alerts = result.alerts()
    waiting = [a for a in alerts if a.kind is AlertKind.WAITING_APPROVAL]
    assert len(waiting) == 1
    assert (waiting[0].severity, waiting[0].message, waiting[0].mute) == (
        Severity.WARN,
        "Canary is waiting for approval.",
        False,
    )
    assert result[1].warnings == ("Halt podinfo.test advancement waiting for approval gate",)
    assert result[2].warnings == ()
    # no failed check, no scale-up while waiting
    assert all(t.failed_checks == 0 for t in result.ticks)
    assert [t.tick for t in result.ticks if ScaleTarget(ScaleMode.UP) in t.actions] == [4]
    # the gate is asked each tick, with the current phase
    assert [(t, r.phase) for t, r in result.hook_requests(HookType.CONFIRM_ROLLOUT)] == [
        (1, "Initialized"),
        (2, "Waiting"),
        (3, "Waiting"),
        (4, "Waiting"),
    ]


def test_confirm_rollout_mute_alert() -> None:
    doc = canary_doc(
        {"stepWeight": 50, "webhooks": [hook("gate", "confirm-rollout", muteAlert=True)]}
    )
    result = run(doc, 1, Script(hooks={"gate": False}))
    (alert,) = result[1].alerts
    assert alert.kind is AlertKind.WAITING_APPROVAL and alert.mute


def test_confirm_rollout_hooks_run_in_order_and_stop_at_the_first_no() -> None:
    doc = canary_doc(
        {"stepWeight": 50, "webhooks": [hook("a", "confirm-rollout"), hook("b", "confirm-rollout")]}
    )
    result = run(doc, 1, Script(hooks={"a": False}))
    assert [r.hook for r in result[1].hooks_asked] == ["a"]
    result = run(doc, 1, Script(hooks={"b": False}))
    assert [r.hook for r in result[1].hooks_asked] == ["a", "b"]
    assert result[1].warnings == ("Halt podinfo.test advancement waiting for approval b",)


# ------------------------------------------------------------------ confirm-promotion


def test_item31_confirm_promotion_waits_while_analysis_continues() -> None:
    doc = canary_doc({"stepWeight": 50, "webhooks": [hook("promo", "confirm-promotion")]})
    result = run(doc, 8, Script(hooks={"promo": closed_until(6)}))
    assert result.phases()[:6] == [
        Phase.PROGRESSING,
        Phase.PROGRESSING,
        Phase.PROGRESSING,
        Phase.WAITING_PROMOTION,
        Phase.WAITING_PROMOTION,
        Phase.PROMOTING,
    ]
    # analysis runs on every tick of the wait
    assert [t.tick for t in result.ticks[:6] if t.analysed] == [3, 4, 5, 6]
    waiting = [
        (t.tick, a) for t in result.ticks for a in t.alerts if a.kind is AlertKind.WAITING_PROMOTION
    ]
    assert len(waiting) == 1 and waiting[0][0] == 4
    assert (waiting[0][1].severity, waiting[0][1].message) == (
        Severity.WARN,
        "Canary promotion is waiting for approval.",
    )
    assert result[4].warnings == (
        "Halt podinfo.test advancement waiting for promotion approval promo",
    )
    assert result[5].warnings == ()
    assert [t.tick for t in result.ticks if Promote() in t.actions] == [6]


def test_item31_waiting_promotion_keeps_the_weight() -> None:
    """Difference (machine.py confirm_promotion): Flagger zeroes canaryWeight; we keep it."""
    doc = canary_doc({"stepWeight": 50, "webhooks": [hook("promo", "confirm-promotion")]})
    result = run(doc, 4, Script(hooks={"promo": False}))
    assert result[4].phase is Phase.WAITING_PROMOTION
    assert result[4].weight == 100
    assert result[4].routes is not None and result[4].routes.canary == 100


def test_item31_threshold_still_applies_while_waiting_for_promotion() -> None:
    doc = canary_doc(
        {"stepWeight": 50, "threshold": 2, "webhooks": [hook("promo", "confirm-promotion")]}
    )
    result = run(doc, 10, Script(hooks={"promo": False}, metrics=fail_from(5)), until=finished)
    assert result.phases() == [
        Phase.PROGRESSING,
        Phase.PROGRESSING,
        Phase.PROGRESSING,
        Phase.WAITING_PROMOTION,
        Phase.WAITING_PROMOTION,
        Phase.WAITING_PROMOTION,
        Phase.FAILED,
    ]
    assert [t.failed_checks for t in result.ticks[3:6]] == [0, 1, 2]
    assert not any(Promote() in t.actions for t in result.ticks)


# ------------------------------------------------------------------ confirm-traffic-increase


def test_item40_confirm_traffic_increase_gates_each_increase() -> None:
    doc = canary_doc(
        {"stepWeight": 20, "maxWeight": 60, "webhooks": [hook("cti", "confirm-traffic-increase")]}
    )
    result = run(doc, 8, Script(hooks={"cti": lambda t: t not in (3, 4)}))
    assert result.phases()[:6] == [Phase.PROGRESSING] * 6
    assert [t.routes.canary if t.routes else None for t in result.ticks[:6]] == [
        0,
        20,
        20,
        20,
        40,
        60,
    ]
    assert result[3].warnings == (
        "Halt podinfo.test advancement waiting for traffic increase approval cti",
    )
    assert result[4].warnings == result[3].warnings
    assert all(t.failed_checks == 0 for t in result.ticks)
    assert result[2].has_event("Confirm-traffic-increase check cti passed")


def test_item40_traffic_increase_alert_once_per_wait() -> None:
    """Difference (machine.py confirm_traffic_increase): Flagger alerts on every waiting tick."""
    doc = canary_doc(
        {"stepWeight": 20, "maxWeight": 60, "webhooks": [hook("cti", "confirm-traffic-increase")]}
    )
    result = run(doc, 8, Script(hooks={"cti": lambda t: t not in (3, 4, 5)}))
    alerts = [
        (t.tick, a)
        for t in result.ticks
        for a in t.alerts
        if a.kind is AlertKind.WAITING_TRAFFIC_INCREASE
    ]
    assert [tick for tick, _ in alerts] == [3]
    assert (alerts[0][1].severity, alerts[0][1].message) == (
        Severity.WARN,
        "Canary traffic increase is waiting for approval.",
    )


def test_item40_confirm_traffic_increase_not_asked_in_waiting_promotion() -> None:
    doc = canary_doc(
        {
            "stepWeight": 50,
            "webhooks": [
                hook("cti", "confirm-traffic-increase"),
                hook("promo", "confirm-promotion"),
            ],
        }
    )
    record = single_step(
        doc, running_status(Phase.WAITING_PROMOTION, weight=100), running_world(0, 100)
    )
    assert [r.type for r in record.hooks_asked] == [HookType.CONFIRM_PROMOTION]


# ------------------------------------------------------------------ rollback hooks


def test_item39_rollback_hook_saying_yes_rolls_back() -> None:
    doc = canary_doc({"stepWeight": 10, "webhooks": [hook("rb", "rollback")]})
    result = run(doc, 6, Script(hooks={"rb": lambda t: t >= 4}), until=finished)
    assert result.phases() == [Phase.PROGRESSING] * 3 + [Phase.FAILED]
    failed = result[4]
    assert failed.set_routes == (SetRoutes(100, 0, False),)
    assert ScaleTarget(ScaleMode.ZERO) in failed.actions
    (alert,) = failed.alerts
    assert (alert.kind, alert.severity, alert.message) == (
        AlertKind.ROLLBACK_WEBHOOK,
        Severity.WARN,
        "Rolling back manual webhook invoked",
    )
    assert failed.warnings[0] == "Rolling back podinfo.test manual webhook invoked"
    assert not failed.analysed  # the rollback hook is asked before the analysis
    assert result[3].has_event("Rollback hook rb not signaling a rollback")


@pytest.mark.parametrize(
    ("phase", "asked"),
    [
        pytest.param(Phase.PROGRESSING, True, id="item39-progressing"),
        pytest.param(Phase.WAITING_PROMOTION, True, id="item39-waiting-promotion"),
        pytest.param(Phase.PROMOTING, False, id="item39-not-promoting"),
        pytest.param(Phase.FINALISING, False, id="item39-not-finalising"),
    ],
)
def test_item39_rollback_hooks_are_asked_in_progressing_and_waiting_promotion(
    phase: Phase, asked: bool
) -> None:
    doc = canary_doc({"stepWeight": 50, "webhooks": [hook("rb", "rollback")]})
    record = single_step(
        doc, running_status(phase, weight=50), running_world(50, 50), Script(hooks={"rb": False})
    )
    expected = HookRequest("rb", HookType.ROLLBACK, phase.value)
    assert (expected in record.requests) is asked


def test_rollback_hook_not_asked_while_waiting_for_rollout_approval() -> None:
    """Reference 2.17: the rollback hook in Waiting is never reached."""
    doc = canary_doc(
        {"stepWeight": 50, "webhooks": [hook("rb", "rollback"), hook("gate", "confirm-rollout")]}
    )
    result = run(doc, 3, Script(hooks={"gate": False}))
    assert result.hook_requests(HookType.ROLLBACK) == []


# ------------------------------------------------------------------ the phase sent (item 38)


@pytest.mark.parametrize(
    ("hook_type", "phase_sent"),
    [
        pytest.param("confirm-rollout", "Initialized", id="item38-confirm-rollout-current-phase"),
        pytest.param("pre-rollout", "Progressing", id="item38-pre-rollout"),
        pytest.param("rollout", "Progressing", id="item38-rollout"),
        pytest.param(
            "confirm-traffic-increase", "Progressing", id="item38-confirm-traffic-increase"
        ),
        pytest.param("confirm-promotion", "Progressing", id="item38-confirm-promotion"),
        pytest.param("rollback", "Progressing", id="item38-rollback"),
    ],
)
def test_item38_phase_sent_with_each_hook(hook_type: str, phase_sent: str) -> None:
    doc = canary_doc({"stepWeight": 50, "webhooks": [hook("h", hook_type)]})
    result = run(doc, 5, Script(hooks={"h": hook_type != "rollback"}))
    requests = result.hook_requests(HookType(hook_type))
    assert requests, f"{hook_type} never asked"
    assert requests[0][1].phase == phase_sent


@pytest.mark.parametrize(
    ("metrics", "phase"),
    [
        pytest.param(Outcome.PASS, "Succeeded", id="item38-post-rollout-succeeded"),
        pytest.param(Outcome.FAIL, "Failed", id="item38-post-rollout-failed"),
    ],
)
def test_item38_post_rollout_after_the_run(metrics: Outcome, phase: str) -> None:
    doc = canary_doc({"stepWeight": 50, "webhooks": [hook("post", "post-rollout")]})
    result = run(doc, 8, Script(metrics=metrics), until=finished)
    calls = [(t.tick, e) for t in result.ticks for e in t.called_hooks]
    assert [e for _, e in calls] == [CallHooks(HookType.POST_ROLLOUT, phase)]
    assert calls[0][0] == result.last.tick
    # post-rollout is fired as an effect, never asked as a gate
    assert result.hook_requests(HookType.POST_ROLLOUT) == []


def test_event_hooks_are_not_asked_by_the_core() -> None:
    doc = canary_doc({"stepWeight": 50, "webhooks": [hook("ev", "event")]})
    result = run(doc, 6, until=finished)
    assert result.hook_requests(HookType.EVENT) == []
    assert result.last.phase is Phase.SUCCEEDED


def test_a_gate_answer_is_asked_once_per_tick() -> None:
    doc = canary_doc({"stepWeight": 50, "webhooks": ALL_HOOKS})
    result = run(doc, 6, until=finished)
    for record in result.ticks:
        assert len(set(record.requests)) == len(record.requests)
        assert record.steps == len(record.requests) + 1
    assert AnalysisRequest(("request-success-rate",), last_step=False) in result[3].requests


def test_item38_confirm_promotion_sends_progressing_while_waiting() -> None:
    doc = canary_doc({"stepWeight": 50, "webhooks": [hook("promo", "confirm-promotion")]})
    result = run(doc, 6, Script(hooks={"promo": closed_until(6)}))
    phases = [r.phase for _, r in result.hook_requests(HookType.CONFIRM_PROMOTION)]
    assert phases == ["Progressing", "Progressing", "Progressing"]
