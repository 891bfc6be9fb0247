"""skipAnalysis and suspend (and our `paused` annotation).

Reference: flagger.md 2.2 steps 1 and 19, 2.13; checklist items 36, 37.
"""

from __future__ import annotations

from typing import Any

import pytest

from canary.core import (
    AlertKind,
    CallHooks,
    Outcome,
    Promote,
    Readiness,
    ScaleMode,
    ScaleTarget,
    SetRoutes,
)
from canary.model import HookType, Phase, Severity
from canary.model.commands import PAUSED
from tests.core.harness import (
    Script,
    canary_doc,
    finished,
    hook,
    new_revision,
    run,
    running_status,
    running_world,
    single_step,
    with_annotation,
    without_annotation,
)

HOOKS = [hook("pre", "pre-rollout"), hook("load", "rollout"), hook("post", "post-rollout")]


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(
            canary_doc({"stepWeight": 10, "webhooks": HOOKS}, skipAnalysis=True),
            id="item36-skipAnalysis",
        ),
        pytest.param(canary_doc(None), id="item36-no-analysis-section"),
    ],
)
def test_item36_skip_analysis_promotes_in_one_tick_after_readiness(doc: dict[str, Any]) -> None:
    result = run(doc, 5, Script(metrics=Outcome.FAIL), until=finished)
    assert result.phases() == [Phase.PROGRESSING, Phase.SUCCEEDED]
    assert ScaleTarget(ScaleMode.UP) in result[1].actions
    done = result[2]
    moves = [a for a in done.actions if isinstance(a, SetRoutes | Promote | ScaleTarget)]
    assert moves == [SetRoutes(100, 0, False), Promote(), ScaleTarget(ScaleMode.ZERO)]
    assert done.requests == ()  # no hooks, no metrics
    assert done.called_hooks == (CallHooks(HookType.POST_ROLLOUT, "Succeeded"),)
    assert done.has_event("Promotion completed! Canary analysis was skipped for podinfo.test")
    (alert,) = done.alerts
    assert (alert.kind, alert.severity, alert.message) == (
        AlertKind.SKIPPED,
        Severity.INFO,
        "Canary analysis was skipped, promotion finished.",
    )
    assert done.status.last_promoted_spec == "v2"


def test_item36_skip_analysis_waits_for_canary_readiness() -> None:
    doc = canary_doc({"stepWeight": 10}, skipAnalysis=True)
    result = run(
        doc,
        6,
        Script(
            canary_ready={
                2: Readiness.waiting("0 of 1 updated replicas are available"),
                3: Readiness.ok(),
            }
        ),
        until=finished,
    )
    assert result.phases() == [Phase.PROGRESSING, Phase.PROGRESSING, Phase.SUCCEEDED]
    assert result[2].actions.count(Promote()) == 0


def test_item36_skip_analysis_still_rolls_back_a_canary_that_cannot_start() -> None:
    doc = canary_doc({"stepWeight": 10}, skipAnalysis=True)
    result = run(
        doc, 4, Script(canary_ready={2: Readiness.failed("progress deadline")}), until=finished
    )
    assert result.last.phase is Phase.FAILED


def test_item36_skip_analysis_flipped_mid_run_promotes_at_once() -> None:
    """Reference 2.13: skipAnalysis can be flipped at any time."""
    doc = canary_doc({"stepWeight": 10}, skipAnalysis=True)
    record = single_step(doc, running_status(weight=30, failed_checks=0), running_world(70, 30))
    assert record.phase is Phase.SUCCEEDED
    assert Promote() in record.actions


def test_item36_skip_analysis_still_asks_confirm_rollout() -> None:
    doc = canary_doc(
        {"stepWeight": 10, "webhooks": [hook("gate", "confirm-rollout")]}, skipAnalysis=True
    )
    result = run(doc, 3, Script(hooks={"gate": lambda t: t >= 2}), until=finished)
    assert result.phases() == [Phase.WAITING, Phase.PROGRESSING, Phase.SUCCEEDED]


SUSPENDED_STATES: list[Any] = [
    pytest.param(
        running_status(weight=30, failed_checks=1), running_world(70, 30), id="item37-progressing"
    ),
    pytest.param(
        running_status(Phase.PROMOTING, weight=100), running_world(0, 100), id="item37-promoting"
    ),
    pytest.param(
        running_status(Phase.FAILED, applied="v2"),
        running_world(100, 0, template="v3"),
        id="item37-failed-new-revision",
    ),
]


@pytest.mark.parametrize(("status", "world"), SUSPENDED_STATES)
def test_item37_suspend_does_nothing(status: Any, world: Any) -> None:
    doc = canary_doc({"stepWeight": 10, "webhooks": HOOKS}, suspend=True)
    record = single_step(
        doc, status, world, Script(metrics=Outcome.FAIL, primary_ready=Readiness.failed("x"))
    )
    assert record.actions == ()
    assert record.requests == ()
    assert record.alerts == ()
    assert record.events == ("skipping canary run as object is suspended",)
    after, before = record.status, record.before
    assert (after.phase, after.canary_weight, after.failed_checks, after.iterations) == (
        before.phase,
        before.canary_weight,
        before.failed_checks,
        before.iterations,
    )
    assert after.last_applied_spec == before.last_applied_spec


def test_item37_suspended_run_stays_put_for_many_ticks() -> None:
    doc = canary_doc({"stepWeight": 10}, suspend=True)
    result = run(doc, 5, init_with=canary_doc({"stepWeight": 10}))
    assert all(t.phase is Phase.INITIALIZED for t in result.ticks)
    assert all(not t.actions and not t.requests for t in result.ticks)


def test_item37_suspended_canary_does_not_even_initialize() -> None:
    result = run(canary_doc({"stepWeight": 10}, suspend=True), 3, start="fresh")
    assert all(t.phase is Phase.NONE and not t.actions for t in result.ticks)


def test_item37_suspend_writes_no_status() -> None:
    doc = canary_doc({"stepWeight": 10}, suspend=True)
    status = running_status(
        weight=30, message="Canary weight 30%.", last_transition_time="2026-03-01T11:00:00Z"
    )
    record = single_step(doc, status, running_world(70, 30))
    assert record.status == record.before


def test_paused_annotation_pauses_and_resumes() -> None:
    """Ours: canary.gitops.dev/paused=true holds the canary like suspend, until removed."""
    doc = canary_doc({"stepWeight": 10, "maxWeight": 30})
    result = run(
        doc, 8, Script(before={3: with_annotation(PAUSED, "true"), 5: without_annotation(PAUSED)})
    )
    assert [t.routes.canary if t.routes else None for t in result.ticks[:6]] == [
        0,
        10,
        10,
        10,
        20,
        30,
    ]
    assert result[3].events == ("skipping canary run as it is paused (canary resume to continue)",)
    assert result[3].actions == () and result[4].actions == ()


def test_suspend_hides_a_new_revision_until_resumed() -> None:
    doc = canary_doc({"stepWeight": 10}, suspend=True)
    result = run(
        doc,
        3,
        Script(before={1: new_revision("v3")}),
        start="initialized",
        init_with=canary_doc({"stepWeight": 10}),
    )
    assert all(t.phase is Phase.INITIALIZED for t in result.ticks)
    assert all(t.status.last_applied_spec == "v1" for t in result.ticks)
