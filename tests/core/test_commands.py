"""Commands given as annotations: promote, promote-full, abort, retry (one-shot tokens),
and paused. Ours, not Flagger's; a token is acted on exactly once (status.handledCommands).
"""

from __future__ import annotations

from typing import Any

import pytest

from canary.core import AlertKind, Outcome, Promote, ScaleMode, ScaleTarget, SetRoutes
from canary.model import CanaryStatus, Commands, Phase, Severity
from canary.model.commands import ABORT, PROMOTE, PROMOTE_FULL, RETRY, requester
from tests.core.harness import (
    Script,
    canary_doc,
    fail_from,
    finished,
    hook,
    run,
    running_status,
    running_world,
    single_step,
    with_annotation,
)

TOKEN = "2026-03-01T12:00:00Z by alice"
OTHER = "2026-03-01T13:00:00Z by bob"


def test_commands_from_annotations_skip_handled_tokens() -> None:
    annotations = {PROMOTE: TOKEN, ABORT: TOKEN, RETRY: "", "canary.gitops.dev/paused": "True"}
    commands = Commands.from_annotations(annotations, {"promote": TOKEN})
    assert commands.promote is None
    assert commands.abort == TOKEN
    assert commands.retry is None
    assert commands.paused is True
    assert Commands.from_annotations({PROMOTE: OTHER}, {"promote": TOKEN}).promote == OTHER
    assert requester(TOKEN) == "alice" and requester("just a token") == ""


def test_flagger_prefixed_annotations_are_not_commands() -> None:
    assert Commands.from_annotations({"flagger.app/promote": TOKEN}, {}) == Commands()


@pytest.mark.parametrize(
    ("gate", "waiting_phase", "after"),
    [
        pytest.param(
            "confirm-rollout", Phase.WAITING, Phase.PROGRESSING, id="promote-opens-confirm-rollout"
        ),
        pytest.param(
            "confirm-promotion",
            Phase.WAITING_PROMOTION,
            Phase.PROMOTING,
            id="promote-opens-confirm-promotion",
        ),
    ],
)
def test_promote_opens_the_closed_gate_once(gate: str, waiting_phase: Phase, after: Phase) -> None:
    doc = canary_doc({"stepWeight": 50, "webhooks": [hook("gate", gate)]})
    result = run(
        doc, 10, Script(hooks={"gate": False}, before={5: with_annotation(PROMOTE, TOKEN)})
    )
    assert result[4].phase is waiting_phase
    assert result[5].phase is after
    assert result[5].status.handled_commands["promote"] == TOKEN
    gate_event = (
        "Confirm-rollout gate opened by alice"
        if gate == "confirm-rollout"
        else "Confirm-promotion gate opened by alice"
    )
    assert result[5].has_event(gate_event)
    # the token (still on the Canary) is not acted on again
    assert sum(t.has_event("gate opened") for t in result.ticks) == 1


def test_promote_opens_the_traffic_increase_gate() -> None:
    doc = canary_doc({"stepWeight": 20, "webhooks": [hook("cti", "confirm-traffic-increase")]})
    result = run(
        doc, 6, Script(hooks={"cti": lambda t: t < 3}, before={4: with_annotation(PROMOTE, TOKEN)})
    )
    assert [t.routes.canary if t.routes else None for t in result.ticks[:4]] == [0, 20, 20, 40]
    assert result[4].has_event("Confirm-traffic-increase gate opened by alice")


def test_a_handled_promote_token_does_not_open_the_next_runs_gate() -> None:
    doc = canary_doc({"stepWeight": 50, "webhooks": [hook("gate", "confirm-rollout")]})
    status = CanaryStatus(
        phase=Phase.SUCCEEDED,
        last_applied_spec="v2",
        last_promoted_spec="v2",
        handled_commands={"promote": TOKEN},
    )
    world = running_world(100, 0, template="v3")
    world.annotations[PROMOTE] = TOKEN
    record = single_step(doc, status, world, Script(hooks={"gate": False}))
    assert record.phase is Phase.WAITING


def test_promote_is_not_consumed_by_an_ungated_weight_increase() -> None:
    doc = canary_doc({"stepWeight": 50, "webhooks": [hook("promo", "confirm-promotion")]})
    result = run(
        doc, 6, Script(hooks={"promo": False}, before={2: with_annotation(PROMOTE, TOKEN)})
    )
    assert result.first(Phase.PROMOTING) == 4


def test_promote_full_skips_the_rest_of_the_analysis() -> None:
    doc = canary_doc({"stepWeight": 10})
    result = run(doc, 8, Script(before={3: with_annotation(PROMOTE_FULL, TOKEN)}), until=finished)
    assert result[3].phase is Phase.PROMOTING
    assert Promote() in result[3].actions
    assert result[3].events == (
        "Skipping the rest of the analysis by alice",
        "Copying podinfo.test template spec to podinfo-primary.test",
    )
    assert not result[3].analysed
    assert result.last.phase is Phase.SUCCEEDED
    assert result.last.status.handled_commands["promoteFull"] == TOKEN


def test_abort_rolls_back_a_running_analysis() -> None:
    doc = canary_doc({"stepWeight": 10})
    result = run(doc, 6, Script(before={3: with_annotation(ABORT, TOKEN)}), until=finished)
    aborted = result[3]
    assert aborted.phase is Phase.FAILED
    assert aborted.set_routes == (SetRoutes(100, 0, False),)
    assert ScaleTarget(ScaleMode.ZERO) in aborted.actions
    assert aborted.warnings[0] == "Rolling back podinfo.test: aborted by alice"
    (alert,) = aborted.alerts
    assert (alert.kind, alert.severity, alert.message) == (
        AlertKind.ABORTED,
        Severity.WARN,
        "Rolling back: aborted by alice",
    )
    assert aborted.status.handled_commands["abort"] == TOKEN


def test_abort_cannot_stop_a_promotion() -> None:
    world = running_world(0, 100)
    world.annotations[ABORT] = TOKEN
    record = single_step(
        canary_doc({"stepWeight": 50}), running_status(Phase.PROMOTING, weight=100), world
    )
    assert record.phase is Phase.FINALISING
    assert record.has_event(
        "Cannot abort podinfo.test while Promoting: the primary is already being promoted"
    )
    assert record.status.handled_commands["abort"] == TOKEN


@pytest.mark.parametrize(
    ("key", "annotation"),
    [
        pytest.param("promote", PROMOTE, id="promote"),
        pytest.param("promoteFull", PROMOTE_FULL, id="promoteFull"),
        pytest.param("abort", ABORT, id="abort"),
    ],
)
def test_commands_on_an_idle_canary_are_dropped_once(key: str, annotation: str) -> None:
    doc = canary_doc({"stepWeight": 10})
    result = run(
        doc, 3, Script(before={1: with_annotation(annotation, TOKEN)}), start="initialized"
    )
    assert result[1].warnings == (f"Ignoring {key}: nothing is running for podinfo.test",)
    assert result[1].status.handled_commands[key] == TOKEN
    assert result[2].events == () and result[3].events == ()
    assert all(t.phase is Phase.INITIALIZED for t in result.ticks)


def test_retry_restarts_the_failed_revision() -> None:
    doc = canary_doc({"stepWeight": 50})
    result = run(
        doc,
        12,
        Script(
            metrics=lambda t: Outcome.FAIL if t == 3 else Outcome.PASS,
            before={6: with_annotation(RETRY, TOKEN)},
        ),
    )
    assert result.phases()[:6] == [Phase.PROGRESSING] * 3 + [
        Phase.FAILED,
        Phase.FAILED,
        Phase.PROGRESSING,
    ]
    retry = result[6]
    assert ScaleTarget(ScaleMode.UP) in retry.actions
    assert retry.events[0] == "Retrying the failed revision of podinfo.test by alice"
    assert retry.status.message.endswith("(retry): analysis starting.")
    assert retry.status.handled_commands["retry"] == TOKEN
    assert result.first(Phase.SUCCEEDED) == 11


def test_retry_is_acted_on_once() -> None:
    doc = canary_doc({"stepWeight": 50})
    result = run(doc, 12, Script(metrics=fail_from(3), before={6: with_annotation(RETRY, TOKEN)}))
    starts = [t.tick for t in result.ticks if ScaleTarget(ScaleMode.UP) in t.actions]
    assert starts == [1, 6]
    assert result.last.phase is Phase.FAILED


def test_a_new_retry_token_retries_again() -> None:
    doc = canary_doc({"stepWeight": 50})
    result = run(
        doc,
        12,
        Script(
            metrics=fail_from(3),
            before={6: with_annotation(RETRY, TOKEN), 10: with_annotation(RETRY, OTHER)},
        ),
    )
    starts = [t.tick for t in result.ticks if ScaleTarget(ScaleMode.UP) in t.actions]
    assert starts == [1, 6, 10]


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(running_status(weight=10), id="progressing"),
        pytest.param(
            CanaryStatus(phase=Phase.SUCCEEDED, last_applied_spec="v2", last_promoted_spec="v2"),
            id="succeeded",
        ),
    ],
)
def test_retry_when_nothing_failed_is_dropped(status: Any) -> None:
    world = running_world(90, 10)
    world.annotations[RETRY] = TOKEN
    record = single_step(canary_doc({"stepWeight": 10}), status, world)
    assert any(e.startswith("Nothing to retry: podinfo.test is") for e in record.warnings)
    assert record.status.handled_commands["retry"] == TOKEN
    assert ScaleTarget(ScaleMode.UP) not in record.actions


def test_finished_run_consumes_unused_promote_tokens() -> None:
    """A promote token that never met a gate is dropped when the run ends."""
    doc = canary_doc({"stepWeight": 50})
    result = run(
        doc,
        8,
        Script(metrics=fail_from(3), before={3: with_annotation(PROMOTE, TOKEN)}),
        until=finished,
    )
    assert result.last.phase is Phase.FAILED
    assert result.last.status.handled_commands.get("promote") == TOKEN


def test_abort_while_waiting_for_approval_rejects_the_revision_without_starting_it() -> None:
    doc = canary_doc({"stepWeight": 50, "webhooks": [hook("gate", "confirm-rollout")]})
    result = run(
        doc, 6, Script(hooks={"gate": lambda t: t >= 4}, before={2: with_annotation(ABORT, TOKEN)})
    )
    assert result[2].status.handled_commands.get("abort") == TOKEN
    assert not any(ScaleTarget(ScaleMode.UP) in t.actions for t in result.ticks)


class TestWokenPasses:
    """A pass woken early by a change (`canary promote`, an edit) acts on it, but the run's
    next analysis step waits for its interval."""

    def test_promote_while_no_gate_waits_does_not_advance_a_step_early(self) -> None:
        doc = canary_doc({"stepWeight": 10, "maxWeight": 50})
        world = running_world(90, 10)
        world.annotations[PROMOTE] = TOKEN
        world.woken = True
        record = single_step(doc, running_status(weight=10), world)
        assert record.set_routes == () and record.weight == 10
        assert not record.analysed
        assert record.phase is Phase.PROGRESSING

    def test_the_same_pass_on_its_interval_analyses_and_steps(self) -> None:
        doc = canary_doc({"stepWeight": 10, "maxWeight": 50})
        world = running_world(90, 10)
        world.annotations[PROMOTE] = TOKEN
        record = single_step(doc, running_status(weight=10), world)
        assert record.analysed
        assert [r.canary for r in record.set_routes] == [20]

    def test_a_woken_pass_still_aborts(self) -> None:
        doc = canary_doc({"stepWeight": 10, "maxWeight": 50})
        world = running_world(90, 10)
        world.annotations[ABORT] = TOKEN
        world.woken = True
        record = single_step(doc, running_status(weight=10), world)
        assert record.phase is Phase.FAILED or any(r.canary == 0 for r in record.set_routes)

    def test_a_woken_pass_opens_the_waiting_promotion_gate(self) -> None:
        doc = canary_doc(
            {"stepWeight": 50, "maxWeight": 50, "webhooks": [hook("promo", "confirm-promotion")]}
        )
        world = running_world(50, 50)
        world.annotations[PROMOTE] = TOKEN
        world.woken = True
        record = single_step(
            doc,
            running_status(Phase.WAITING_PROMOTION, weight=50),
            world,
            Script(hooks={"promo": False}),
        )
        assert record.phase is Phase.PROMOTING


def test_retry_after_the_revert_converged_is_refused_naming_the_revert() -> None:
    from canary.model.status import GitRevertStatus, RevertState

    doc = canary_doc({"stepWeight": 50})
    revert = GitRevertStatus(
        state=RevertState.REVERTED,
        good_revision="main@sha1:1111111",
        bad_revision="main@sha1:2222222",
        commit="abcdef0123456789",
    )
    status = CanaryStatus(
        phase=Phase.FAILED, last_applied_spec="v1", last_promoted_spec="v1", git_revert=revert
    )
    world = running_world(100, 0, template="v1")  # the GitSource applied the revert
    world.annotations[RETRY] = TOKEN
    record = single_step(doc, status, world)
    assert record.phase is Phase.FAILED
    assert ScaleTarget(ScaleMode.UP) not in record.actions
    assert record.warnings[0].startswith(
        "Nothing to retry: its revision main@sha1:2222222 was reverted in Git by abcdef012345"
    )
    assert "git revert abcdef012345" in record.status.message
    assert record.status.handled_commands["retry"] == TOKEN  # acted on once: refused
