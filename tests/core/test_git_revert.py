"""Rollback by reverting Git (ours): the revert request after a rollback, its answers,
status.gitRevert and the GitReverted condition, and which revisions start a run afterwards.
"""

from __future__ import annotations

from typing import Any

import pytest

from canary.core import (
    AlertKind,
    MetricResult,
    Outcome,
    RevertAnswer,
    RevertRequest,
    RevertResultKind,
    ScaleMode,
    ScaleTarget,
)
from canary.model import Phase, RevertState, Severity
from tests.core.harness import (
    Script,
    World,
    canary_doc,
    fail_from,
    new_revision,
    run,
    set_world,
)

GOOD, BAD = "main@sha1:1111111", "main@sha1:2222222"
CANARY = canary_doc({"stepWeight": 50})
ROLLBACK_TICK = 4  # metrics fail from tick 3, threshold 1


def failed_run(
    ticks: int,
    script: Script | None = None,
    doc: dict[str, Any] | None = None,
    revision: str | None = GOOD,
    bad: str | None = BAD,
) -> Any:
    script = script or Script()
    script.metrics = fail_from(3)
    return run(doc or CANARY, ticks, script, world=World(revision=revision), new_git_revision=bad)


def condition(record: Any) -> tuple[str, str]:
    found = record.status.condition("GitReverted")
    assert found is not None
    return found.status, found.reason


def test_rollback_schedules_a_revert_and_asks_for_it_on_the_next_pass() -> None:
    result = failed_run(6)
    rollback = result[ROLLBACK_TICK]
    assert rollback.phase is Phase.FAILED
    revert = rollback.status.git_revert
    assert revert is not None
    assert (revert.state, revert.good_revision, revert.bad_revision) == (
        RevertState.PENDING,
        GOOD,
        BAD,
    )
    assert "failed checks threshold reached 1" in revert.reason
    assert "request-success-rate" in revert.reason  # the failing metric explains the revert
    assert rollback.decision.requeue_after == 0.0  # revert right away
    assert condition(rollback) == ("Unknown", "Pending")
    assert rollback.reverts_asked == ()
    # the next pass asks for the revert, once
    nxt = result[ROLLBACK_TICK + 1]
    assert nxt.now == rollback.now
    # ... with the failed release's images, to keep image automation away from them
    assert revert.images == ("ghcr.io/stefanprodan/podinfo:v2",)
    assert nxt.reverts_asked == (RevertRequest(GOOD, BAD, revert.reason, revert.images),)
    assert result[ROLLBACK_TICK + 2].reverts_asked == ()


def test_the_revert_reason_quotes_each_failing_metric_once_named_once() -> None:
    """The rollback's reason, then each failing metric's finding: the judge's summary
    already starts with the metric's name (``request-success-rate fail ...``), so the
    name is not put before it again."""
    revert = failed_run(ROLLBACK_TICK)[ROLLBACK_TICK].status.git_revert
    assert revert is not None
    assert revert.reason == (
        "failed checks threshold reached 1; request-success-rate fail (value 80.0)"
    )


def test_a_conclusive_rollbacks_revert_reason_does_not_repeat_its_finding() -> None:
    """A conclusive regression's reason already quotes the finding: only the findings it
    does not quote follow, and a summary without the metric's name gets it, once."""
    duration = "request-duration"
    metrics = [
        {"name": "request-success-rate", "thresholdRange": {"min": 99}},
        {"name": duration, "thresholdRange": {"max": 500}},
    ]
    worse = "request-success-rate: canary worse than the primary"

    def results(tick: int, names: tuple[str, ...]) -> tuple[MetricResult, ...] | None:
        if tick < 3:
            return None
        return (
            MetricResult(names[0], Outcome.FAIL, worse, fail_fast=True),
            MetricResult(duration, Outcome.FAIL, "p99 900ms > 500ms"),
        )

    result = run(
        canary_doc({"stepWeight": 50, "threshold": 5, "metrics": metrics}),
        3,
        Script(results=results),
        world=World(revision=GOOD),
        new_git_revision=BAD,
    )
    assert result[3].phase is Phase.FAILED
    revert = result[3].status.git_revert
    assert revert is not None
    assert revert.reason == (f"conclusive regression: {worse}; {duration}: p99 900ms > 500ms")


ANSWERS: list[Any] = [
    pytest.param(
        RevertAnswer(RevertResultKind.REVERTED, commit="abc1234"),
        RevertState.REVERTED,
        ("True", "Reverted"),
        [AlertKind.REVERTED],
        f"Reverted podinfo.test in Git to {GOOD}: commit abc1234",
        id="reverted",
    ),
    pytest.param(
        # our own commit, pushed by a pass whose status write was lost: announced now
        RevertAnswer(RevertResultKind.ALREADY_REVERTED, commit="abc1234"),
        RevertState.ALREADY_REVERTED,
        ("True", "AlreadyReverted"),
        [AlertKind.REVERTED],
        f"Reverted podinfo.test in Git to {GOOD}: commit abc1234",
        id="already-reverted-by-us",
    ),
    pytest.param(
        RevertAnswer(RevertResultKind.ALREADY_REVERTED),  # Git holds the content already
        RevertState.ALREADY_REVERTED,
        ("True", "AlreadyReverted"),
        [],
        f"Git already holds the revert of {BAD}",
        id="already-reverted-content",
    ),
    pytest.param(
        RevertAnswer(RevertResultKind.SUPERSEDED, message="a newer commit changed the files"),
        RevertState.SUPERSEDED,
        ("False", "Superseded"),
        [],
        f"Git revert of {BAD} not needed: a newer commit changed the files",
        id="superseded",
    ),
    pytest.param(
        RevertAnswer(RevertResultKind.FAILED, message="push rejected"),
        RevertState.FAILED,
        ("False", "RevertFailed"),
        [AlertKind.REVERT_FAILED],
        f"Git revert of {BAD} failed (attempt 1): push rejected",
        id="failed",
    ),
]


@pytest.mark.parametrize(("answer", "state", "cond", "alerts", "event"), ANSWERS)
def test_revert_answers_update_status_and_condition(
    answer: RevertAnswer,
    state: RevertState,
    cond: tuple[str, str],
    alerts: list[AlertKind],
    event: str,
) -> None:
    result = failed_run(ROLLBACK_TICK + 1, Script(reverts=answer))
    record = result[ROLLBACK_TICK + 1]
    revert = record.status.git_revert
    assert revert is not None
    assert revert.state is state
    assert revert.attempts == 1
    assert revert.last_attempt_time == record.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert revert.commit == answer.commit
    assert condition(record) == cond
    assert [a.kind for a in record.alerts] == alerts
    assert record.events == (event,)
    assert record.phase is Phase.FAILED


def test_reverted_alert() -> None:
    result = failed_run(
        ROLLBACK_TICK + 1, Script(reverts=RevertAnswer(RevertResultKind.REVERTED, commit="abc1234"))
    )
    (alert,) = result[ROLLBACK_TICK + 1].alerts
    assert alert.severity is Severity.INFO
    assert alert.revert_commit == "abc1234"
    assert alert.message == f"Git reverted to the last good revision {GOOD}."


def test_a_failed_revert_is_retried_and_alerts_once() -> None:
    answers = {
        ROLLBACK_TICK + 1: RevertAnswer(RevertResultKind.FAILED, message="push rejected"),
        ROLLBACK_TICK + 2: RevertAnswer(RevertResultKind.FAILED, message="push rejected"),
        ROLLBACK_TICK + 3: RevertAnswer(RevertResultKind.REVERTED, commit="abc1234"),
    }
    result = failed_run(ROLLBACK_TICK + 5, Script(reverts=answers))
    asked = [t.tick for t in result.ticks if t.reverts_asked]
    assert asked == [ROLLBACK_TICK + 1, ROLLBACK_TICK + 2, ROLLBACK_TICK + 3]
    failed_alerts = [
        t.tick for t in result.ticks for a in t.alerts if a.kind is AlertKind.REVERT_FAILED
    ]
    assert failed_alerts == [ROLLBACK_TICK + 1]
    final = result[ROLLBACK_TICK + 3].status.git_revert
    assert final is not None and final.state is RevertState.REVERTED and final.attempts == 3
    error = result[ROLLBACK_TICK + 1].alerts[0]
    assert error.severity is Severity.ERROR


@pytest.mark.parametrize(
    ("doc", "revision", "bad", "message"),
    [
        pytest.param(
            canary_doc({"stepWeight": 50}, gitops={"revert": False}),
            GOOD,
            BAD,
            "spec.gitops.revert is false",
            id="revert-false",
        ),
        pytest.param(
            CANARY, None, None, "the Git revision of the target is unknown", id="unknown-revision"
        ),
        pytest.param(
            CANARY, GOOD, GOOD, "the failed revision is the last good one", id="same-revision"
        ),
    ],
)
def test_revert_skipped(
    doc: dict[str, Any], revision: str | None, bad: str | None, message: str
) -> None:
    result = failed_run(ROLLBACK_TICK + 3, doc=doc, revision=revision, bad=bad)
    revert = result[ROLLBACK_TICK].status.git_revert
    assert revert is not None and revert.state is RevertState.SKIPPED
    assert message in revert.message
    assert condition(result[ROLLBACK_TICK]) == ("False", "Skipped")
    assert result[ROLLBACK_TICK].decision.requeue_after is None
    assert not any(t.reverts_asked for t in result.ticks)


def test_after_the_revert_the_known_bad_hash_does_not_start_a_run() -> None:
    result = failed_run(ROLLBACK_TICK + 4)
    for record in result.ticks[ROLLBACK_TICK:]:
        assert record.phase is Phase.FAILED
        assert ScaleTarget(ScaleMode.UP) not in record.actions


def test_the_reverted_template_equal_to_the_primary_does_not_start_a_run() -> None:
    """The GitOps reconciler applies the revert: the target is the promoted template again."""
    script = Script(
        before={ROLLBACK_TICK + 2: set_world(template_hash="v1", revision="main@sha1:3333333")}
    )
    result = failed_run(ROLLBACK_TICK + 5, script)
    assert all(t.phase is Phase.FAILED for t in result.ticks[ROLLBACK_TICK - 1 :])


def test_a_new_hash_after_the_revert_starts_a_run() -> None:
    script = Script(before={ROLLBACK_TICK + 3: new_revision("v3", revision="main@sha1:4444444")})
    result = failed_run(ROLLBACK_TICK + 4, script)
    started = result[ROLLBACK_TICK + 3]
    assert started.phase is Phase.PROGRESSING
    assert ScaleTarget(ScaleMode.UP) in started.actions
    assert started.status.current_revision == "main@sha1:4444444"
    assert started.status.last_good_revision == GOOD
    revert = started.status.git_revert
    assert revert is not None and revert.state is RevertState.REVERTED  # a finished revert stays


def test_a_new_revision_before_the_revert_supersedes_it() -> None:
    script = Script(
        reverts=RevertAnswer(RevertResultKind.FAILED, message="offline"),
        before={ROLLBACK_TICK + 2: new_revision("v3", revision="main@sha1:5555555")},
    )
    result = failed_run(ROLLBACK_TICK + 3, script)
    started = result[ROLLBACK_TICK + 2]
    assert started.phase is Phase.PROGRESSING
    revert = started.status.git_revert
    assert revert is not None and revert.state is RevertState.SUPERSEDED
    assert condition(started) == ("False", "Superseded")
    assert not started.reverts_asked


def test_a_non_retriable_revert_failure_is_not_retried() -> None:
    conflict = RevertAnswer(
        RevertResultKind.FAILED,
        message="conflict: deploy/podinfo.yaml changed again",
        retriable=False,
    )
    result = failed_run(ROLLBACK_TICK + 3, Script(reverts=conflict))
    asked = [t.tick for t in result.ticks if t.reverts_asked]
    assert asked == [ROLLBACK_TICK + 1]
    (alert,) = result[ROLLBACK_TICK + 1].alerts
    assert "retrying" not in alert.message
