"""The Promoted condition (Flagger's, reference 1.2) and our GitReverted condition.

Checklist item 6: phases and the Promoted condition's status/reason/message exactly as in
reference 1.2, reason = phase; `kubectl wait --for=condition=Promoted` works after success.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from canary.core.status import promoted_condition, with_conditions
from canary.model import CanaryStatus, Condition, GitRevertStatus, Phase, RevertState
from tests.core.harness import NOW0, Script, World, canary_doc, fail_from, finished, run

PROMOTED_TABLE: list[Any] = [
    pytest.param(
        Phase.NONE,
        "Unknown",
        "Initializing",
        "New Deployment detected, starting initialization.",
        id="item6-none",
    ),
    pytest.param(
        Phase.INITIALIZING,
        "Unknown",
        "Initializing",
        "New Deployment detected, starting initialization.",
        id="item6-initializing",
    ),
    pytest.param(
        Phase.INITIALIZED,
        "True",
        "Initialized",
        "Deployment initialization completed.",
        id="item6-initialized",
    ),
    pytest.param(Phase.WAITING, "Unknown", "Waiting", "Waiting for approval.", id="item6-waiting"),
    pytest.param(
        Phase.WAITING_PROMOTION,
        "Unknown",
        "WaitingPromotion",
        "Waiting for approval.",
        id="item6-waiting-promotion",
    ),
    pytest.param(
        Phase.PROGRESSING,
        "Unknown",
        "Progressing",
        "New revision detected, progressing canary analysis.",
        id="item6-progressing",
    ),
    pytest.param(
        Phase.PROMOTING,
        "Unknown",
        "Promoting",
        "Canary analysis completed, starting primary rolling update.",
        id="item6-promoting",
    ),
    pytest.param(
        Phase.FINALISING,
        "Unknown",
        "Finalising",
        "Canary analysis completed, routing all traffic to primary.",
        id="item6-finalising",
    ),
    pytest.param(
        Phase.SUCCEEDED,
        "True",
        "Succeeded",
        "Canary analysis completed successfully, promotion finished.",
        id="item6-succeeded",
    ),
    pytest.param(
        Phase.FAILED,
        "False",
        "Failed",
        "Canary analysis failed, Deployment scaled to zero.",
        id="item6-failed",
    ),
    # Difference (canary/core/status.py): Flagger falls through to the initialization message.
    pytest.param(
        Phase.TERMINATING,
        "Unknown",
        "Terminating",
        "Canary is being deleted, restoring the target.",
        id="difference-terminating",
    ),
    pytest.param(
        Phase.TERMINATED,
        "Unknown",
        "Terminated",
        "Canary deleted, the target serves traffic again.",
        id="difference-terminated",
    ),
]


@pytest.mark.parametrize(("phase", "status", "reason", "message"), PROMOTED_TABLE)
def test_item6_promoted_condition_per_phase(
    phase: Phase, status: str, reason: str, message: str
) -> None:
    assert promoted_condition(phase, "Deployment") == (status, reason, message)


def test_item6_kind_appears_in_messages() -> None:
    assert (
        promoted_condition(Phase.FAILED, "DaemonSet")[2]
        == "Canary analysis failed, DaemonSet scaled to zero."
    )
    assert (
        promoted_condition(Phase.INITIALIZED, "DaemonSet")[2]
        == "DaemonSet initialization completed."
    )


def promoted(status: CanaryStatus) -> Condition:
    found = status.condition("Promoted")
    assert found is not None
    return found


def test_item6_condition_follows_a_whole_run() -> None:
    result = run(
        canary_doc({"stepWeight": 50}),
        10,
        start="fresh",
        script=Script(before={3: lambda w: w.new_revision("v2")}),
        until=finished,
    )
    seen = [
        (t.phase.value, promoted(t.status).status, promoted(t.status).reason) for t in result.ticks
    ]
    assert seen == [
        ("Initializing", "Unknown", "Initializing"),
        ("Initialized", "True", "Initialized"),
        ("Progressing", "Unknown", "Progressing"),
        ("Progressing", "Unknown", "Progressing"),
        ("Progressing", "Unknown", "Progressing"),
        ("Promoting", "Unknown", "Promoting"),
        ("Finalising", "Unknown", "Finalising"),
        ("Succeeded", "True", "Succeeded"),
    ]


def test_item6_failed_run_condition_is_false() -> None:
    result = run(canary_doc({"stepWeight": 50}), 6, Script(metrics=fail_from(3)), until=finished)
    assert promoted(result.last.status).status == "False"
    assert promoted(result.last.status).reason == "Failed"


def test_transition_time_kept_while_the_condition_status_is_unchanged() -> None:
    """Reference 1.2: lastTransitionTime is kept when the status does not change."""
    result = run(canary_doc({"stepWeight": 50}), 8, until=finished)
    progressing = promoted(result[1].status)
    promoting = promoted(result[4].status)
    assert promoting.reason == "Promoting"
    assert promoting.last_transition_time == progressing.last_transition_time
    assert promoting.last_update_time == result[4].now.strftime("%Y-%m-%dT%H:%M:%SZ")
    succeeded = promoted(result.last.status)
    assert succeeded.last_transition_time == result.last.now.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_unchanged_condition_is_kept_as_is() -> None:
    result = run(canary_doc({"stepWeight": 10}), 4)
    assert result[3].phase is result[4].phase is Phase.PROGRESSING
    assert promoted(result[4].status) == promoted(result[3].status)


def test_status_last_transition_time_moves_only_when_something_changes() -> None:
    old = with_conditions(CanaryStatus(phase=Phase.INITIALIZED), CanaryStatus(), "Deployment", NOW0)
    assert old.last_transition_time == "2026-03-01T12:00:00Z"
    later = NOW0 + timedelta(minutes=5)
    same = with_conditions(old, old, "Deployment", later)
    assert same.last_transition_time == old.last_transition_time
    assert same.conditions == old.conditions
    moved = with_conditions(old.with_(phase=Phase.PROGRESSING), old, "Deployment", later)
    assert moved.last_transition_time == "2026-03-01T12:05:00Z"


def test_other_conditions_are_preserved() -> None:
    extra = Condition("Ready", "True", "Fine", "all good")
    status = with_conditions(CanaryStatus(conditions=(extra,)), CanaryStatus(), "Deployment", NOW0)
    assert extra in status.conditions


REVERT_TABLE: list[Any] = [
    pytest.param(RevertState.PENDING, "Unknown", "Pending", id="pending"),
    pytest.param(RevertState.REVERTED, "True", "Reverted", id="reverted"),
    pytest.param(RevertState.ALREADY_REVERTED, "True", "AlreadyReverted", id="already-reverted"),
    pytest.param(RevertState.FAILED, "False", "RevertFailed", id="failed"),
    pytest.param(RevertState.SUPERSEDED, "False", "Superseded", id="superseded"),
    pytest.param(RevertState.SKIPPED, "False", "Skipped", id="skipped"),
]


@pytest.mark.parametrize(("state", "status", "reason"), REVERT_TABLE)
def test_git_reverted_condition(state: RevertState, status: str, reason: str) -> None:
    revert = GitRevertStatus(state, "good", "bad", commit="abc", message="why", attempts=2)
    new = with_conditions(
        CanaryStatus(phase=Phase.FAILED, git_revert=revert), CanaryStatus(), "Deployment", NOW0
    )
    found = new.condition("GitReverted")
    assert found is not None
    assert (found.status, found.reason) == (status, reason)
    assert found.message


def test_no_git_reverted_condition_without_a_revert() -> None:
    new = with_conditions(CanaryStatus(phase=Phase.FAILED), CanaryStatus(), "Deployment", NOW0)
    assert new.condition("GitReverted") is None


def test_status_round_trips_through_its_dict_form() -> None:
    result = run(
        canary_doc({"stepWeight": 50}),
        6,
        Script(metrics=fail_from(3)),
        world=World(revision="r1"),
        new_git_revision="r2",
    )
    assert result.last.status.git_revert is not None
    for record in result.ticks:
        assert CanaryStatus.from_dict(record.status.to_dict()) == record.status
