"""Known-bad releases and the newer revert answers (ours).

A release that failed is remembered (``status.knownBad``); when image automation (or a
person) brings its image back, the core does not analyse it again and says why (an Event,
the KnownBad condition, an alert), leaving Git to a person. ``canary retry`` overrides the
memory on purpose. The pull-request
answers (Proposed, then merged), an unresolvable revert, and the backoff of a retriable
failure are covered here too.
"""

from __future__ import annotations

import itertools
from typing import Any

from canary.core import (
    AlertKind,
    Outcome,
    RevertAnswer,
    RevertResultKind,
    ScaleMode,
    ScaleTarget,
)
from canary.model import Phase, RevertState, Severity
from canary.model.commands import RETRY
from tests.core.harness import (
    Script,
    World,
    canary_doc,
    fail_from,
    new_revision,
    run,
    set_world,
    with_annotation,
)

GOOD, BAD = "main@sha1:1111111", "main@sha1:2222222"
COMEBACK, AGAIN = "main@sha1:3333333", "main@sha1:4444444"
CANARY = canary_doc({"stepWeight": 50})
ROLLBACK_TICK = 4
BAD_IMAGE = "ghcr.io/stefanprodan/podinfo:v2"


def failed_run(ticks: int, script: Script | None = None, doc: Any = CANARY) -> Any:
    script = script or Script()
    script.metrics = fail_from(3)
    return run(doc, ticks, script, world=World(revision=GOOD), new_git_revision=BAD)


def reverted_then(*changes: tuple[int, Any]) -> Script:
    """After the rollback: the revert converges (the target is v1 again), then ``changes``."""
    before = {ROLLBACK_TICK + 2: set_world(template_hash="v1", revision="main@sha1:9999999")}
    before.update(dict(changes))
    return Script(before=before)


def test_the_failed_release_is_remembered_with_its_images() -> None:
    result = failed_run(ROLLBACK_TICK)
    (known,) = result[ROLLBACK_TICK].status.known_bad
    assert (known.revision, known.images, known.template) == (BAD, (BAD_IMAGE,), "v2")
    assert "failed checks threshold reached" in known.reason
    assert known.failed_at == result[ROLLBACK_TICK].now.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_known_bad_image_coming_back_is_not_analysed_and_git_is_left_to_a_person() -> None:
    comeback = ROLLBACK_TICK + 4
    script = reverted_then((comeback, new_revision("v2", revision=COMEBACK)))
    result = failed_run(comeback + 3, script)

    refused = result[comeback]
    assert refused.phase is Phase.FAILED
    assert ScaleTarget(ScaleMode.UP) not in refused.actions
    assert refused.warnings[0].startswith("Not analysing podinfo.test: image " + BAD_IMAGE)
    assert f"failed its analysis in revision {BAD}" in refused.warnings[0]
    assert "Run canary retry to analyse it anyway" in refused.warnings[0]
    known_bad = refused.status.condition("KnownBad")
    assert known_bad is not None and (known_bad.status, known_bad.reason) == (
        "True",
        "KnownBadRelease",
    )
    (alert,) = refused.alerts
    assert (alert.kind, alert.severity) == (AlertKind.KNOWN_BAD, Severity.WARN)
    assert f"Git declares it again in revision {COMEBACK}" in alert.message
    assert refused.status.current_revision == COMEBACK
    # No second revert behind a person's back, and no new analysis on the following ticks.
    assert not any(t.reverts_asked for t in result.ticks[comeback - 1 :])
    assert all(ScaleTarget(ScaleMode.UP) not in t.actions for t in result.ticks[comeback - 1 :])
    assert all(t.alerts == () for t in result.ticks[comeback:])


def test_the_refusal_ends_when_git_moves_on() -> None:
    comeback = ROLLBACK_TICK + 4
    script = reverted_then(
        (comeback, new_revision("v2", revision=COMEBACK)),
        (comeback + 2, new_revision("v1", revision="main@sha1:7777777")),  # a person reverts
    )
    result = failed_run(comeback + 3, script)
    assert result[comeback].status.refused
    assert result[comeback + 2].status.refused == ""
    assert result[comeback + 2].status.condition("KnownBad") is None


def test_canary_retry_analyses_a_known_bad_release_on_purpose() -> None:
    comeback = ROLLBACK_TICK + 4
    script = reverted_then(
        (comeback, new_revision("v2", revision=COMEBACK)),
        (comeback + 2, with_annotation(RETRY, "2026-03-01T12:00:00Z by alice")),
    )
    result = failed_run(comeback + 3, script)

    retried = result[comeback + 2]
    assert retried.phase is Phase.PROGRESSING
    assert ScaleTarget(ScaleMode.UP) in retried.actions
    assert retried.events[0] == (
        "Analysing podinfo.test although it is a known-bad release by alice"
    )
    assert retried.status.refused == ""
    assert retried.status.condition("KnownBad") is None
    assert retried.status.known_bad == ()  # the memory is overridden on purpose


def test_a_promoted_release_is_forgotten() -> None:
    """v2 failed once, then a retry promoted it: it is not known-bad any more."""
    script = Script(
        metrics=lambda t: Outcome.FAIL if t == 3 else Outcome.PASS,
        before={6: with_annotation(RETRY, "2026-03-01T12:00:00Z by alice")},
    )
    result = run(CANARY, 12, script, world=World(revision=GOOD), new_git_revision=BAD)
    assert [k.images for k in result[ROLLBACK_TICK].status.known_bad] == [(BAD_IMAGE,)]
    assert result.first(Phase.SUCCEEDED) is not None
    assert result.last.status.known_bad == ()


def test_a_new_image_is_analysed_although_an_older_one_failed() -> None:
    script = reverted_then((ROLLBACK_TICK + 4, new_revision("v3", revision=COMEBACK)))
    result = failed_run(ROLLBACK_TICK + 5, script)
    started = result[ROLLBACK_TICK + 4]
    assert started.phase is Phase.PROGRESSING
    assert started.status.refused == ""


# ------------------------------------------------------------ pull requests, unresolved, backoff

PR = "https://git.example.com/acme/fleet/pull/7"


def test_a_proposed_revert_alerts_once_is_polled_and_ends_when_merged() -> None:
    answers = {
        ROLLBACK_TICK + 1: RevertAnswer(
            RevertResultKind.PROPOSED, commit="abc1234", url=PR, files=("apps/podinfo.yaml",)
        ),
        ROLLBACK_TICK + 2: RevertAnswer(RevertResultKind.PROPOSED, commit="abc1234", url=PR),
        ROLLBACK_TICK + 3: RevertAnswer(
            RevertResultKind.ALREADY_REVERTED, commit="def5678", url=PR
        ),
    }
    result = failed_run(ROLLBACK_TICK + 4, Script(reverts=answers))

    proposed = result[ROLLBACK_TICK + 1]
    revert = proposed.status.git_revert
    assert revert is not None
    assert (revert.state, revert.pull_request, revert.files) == (
        RevertState.PROPOSED,
        PR,
        ("apps/podinfo.yaml",),
    )
    cond = proposed.status.condition("GitReverted")
    assert cond is not None and (cond.status, cond.reason) == ("Unknown", "PullRequestOpen")
    (alert,) = proposed.alerts
    assert (alert.kind, alert.pull_request) == (AlertKind.REVERT_PROPOSED, PR)
    assert proposed.events == (f"Opened pull request {PR} to revert podinfo.test in Git to {GOOD}",)
    polled = result[ROLLBACK_TICK + 2]
    assert polled.reverts_asked and polled.alerts == () and polled.events == ()
    merged = result[ROLLBACK_TICK + 3]
    revert = merged.status.git_revert
    assert revert is not None and revert.state is RevertState.ALREADY_REVERTED
    cond = merged.status.condition("GitReverted")
    assert cond is not None and (cond.status, cond.reason) == ("True", "PullRequestMerged")
    (alert,) = merged.alerts
    assert (alert.kind, alert.pull_request, alert.revert_commit) == (
        AlertKind.REVERTED,
        PR,
        "def5678",
    )
    assert not result[ROLLBACK_TICK + 4].reverts_asked


def test_an_unresolvable_revert_is_said_with_a_warning_and_an_alert_and_not_retried() -> None:
    answer = RevertAnswer(
        RevertResultKind.UNRESOLVED,
        message="Deployment podinfo renders the same at the good and the bad revision",
        files=("apps/podinfo.yaml",),
    )
    result = failed_run(ROLLBACK_TICK + 3, Script(reverts=answer))
    record = result[ROLLBACK_TICK + 1]
    revert = record.status.git_revert
    assert revert is not None and revert.state is RevertState.UNRESOLVED
    assert revert.files == ("apps/podinfo.yaml",)
    cond = record.status.condition("GitReverted")
    assert cond is not None and (cond.status, cond.reason) == ("False", "Unresolved")
    assert record.warnings == (
        f"Git revert of {BAD} not possible: Deployment podinfo renders the same at the good "
        "and the bad revision",
    )
    (alert,) = record.alerts
    assert (alert.kind, alert.severity) == (AlertKind.REVERT_FAILED, Severity.ERROR)
    assert [t.tick for t in result.ticks if t.reverts_asked] == [ROLLBACK_TICK + 1]


def test_a_retriable_failure_backs_off_on_the_controllers_clock() -> None:
    failing = RevertAnswer(RevertResultKind.FAILED, message="remote: repository not found")
    # Ticks every 10 s (the shortest interval): attempts wait 5, 10, 20, 40, 80 s (rounded up
    # to the next tick), not one attempt per tick.
    fast = canary_doc({"stepWeight": 50, "interval": "10s"})
    result = failed_run(ROLLBACK_TICK + 20, Script(reverts=failing), doc=fast)
    times = [t.now for t in result.ticks if t.reverts_asked]
    waits = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert waits[:5] == [10, 10, 20, 40, 80]
    waiting = next(t for t in result.ticks[ROLLBACK_TICK:] if not t.reverts_asked)
    assert waiting.decision.requeue_after is not None and waiting.decision.requeue_after > 0


# ------------------------------------------------------------ a revision that leads its target


def test_a_leading_revision_is_not_credited_to_the_target_it_has_not_made_yet() -> None:
    """A HelmRelease carries the next release's revision before helm-controller changed the
    Deployment: while idle, the last good revision must stay the one the target runs."""
    world = World(revision=GOOD, revision_leads=True)
    script = Script(
        before={
            2: set_world(revision="main@sha1:5555555"),  # the HelmRelease moved on...
            4: new_revision("v2", revision="main@sha1:5555555"),  # ...then the Deployment
        }
    )
    result = run(CANARY, 5, script, world=world, start="initialized")
    assert [t.status.last_good_revision for t in result.ticks[:3]] == [GOOD, GOOD, GOOD]
    started = result[4]
    assert started.phase is Phase.PROGRESSING
    assert started.status.current_revision == "main@sha1:5555555"
    assert started.status.last_good_revision == GOOD
