"""`canary wait` decides about one release, never about the canary's phase.

canary.commands.release.judge, fed the objects the command reads (a Canary with its status,
its target and primary): each test is a state a pipeline meets, most of them a trap where
the previous release's `Succeeded` (or a Git revert that put the old template back) would
give the wrong answer.
"""

from __future__ import annotations

from typing import Any

import pytest

from canary.adapters.primary import template_hash
from canary.commands.release import Outcome, Verdict, Wanted, judge, same_revision, snapshot

V1, V2, V3 = "podinfo:v1", "podinfo:v2", "podinfo:v3"
GOOD = "main@sha1:" + "1" * 40
BAD = "main@sha1:" + "2a" * 20


def workload(image: str, name: str = "podinfo") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "test"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "podinfod", "image": image}]},
            }
        },
    }


def hash_of(image: str) -> str:
    return template_hash(workload(image)["spec"]["template"])


def canary(
    status: dict[str, Any] | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {"name": "podinfo", "namespace": "test", "annotations": annotations or {}},
        "spec": {"targetRef": {"kind": "Deployment", "name": "podinfo"}},
        "status": status or {},
    }


def promoted_status(image: str, **more: Any) -> dict[str, Any]:
    """A canary idle after promoting ``image``: the previous release's Succeeded."""
    return {
        "phase": "Succeeded",
        "lastAppliedSpec": hash_of(image),
        "lastPromotedSpec": hash_of(image),
        "lastGoodRevision": GOOD,
        "currentRevision": GOOD,
        **more,
    }


def judge_once(
    status: dict[str, Any],
    target: str | None,
    primary: str | None = None,
    wanted: Wanted | None = None,
    annotations: dict[str, str] | None = None,
    configs: dict[str, str] | None = None,
) -> Verdict:
    return judge(
        wanted or Wanted(),
        snapshot(
            canary(status, annotations),
            workload(target) if target else None,
            workload(primary, "podinfo-primary") if primary else None,
            configs,
        ),
    )


# --------------------------------------------------------------------------- default: the target's release


def test_the_previous_releases_succeeded_does_not_end_a_wait_for_a_new_image() -> None:
    verdict = judge_once(promoted_status(V1), target=V2, primary=V1)
    assert verdict.outcome is Outcome.WAITING
    assert "waiting for the controller to start analysing podinfo:v2" in verdict.why
    assert verdict.wanted.release is not None and verdict.wanted.release.images == (V2,)


def test_a_target_whose_release_is_already_promoted_ends_the_wait_at_once() -> None:
    verdict = judge_once(promoted_status(V1), target=V1, primary=V1)
    assert verdict.outcome is Outcome.PROMOTED
    assert verdict.why == "podinfo:v1 is promoted: the primary runs it"
    assert verdict.revision == GOOD


def test_the_captured_release_is_promoted_once_the_primary_runs_its_template() -> None:
    waiting = judge_once(promoted_status(V1), target=V2)
    running = judge(
        waiting.wanted,
        snapshot(
            canary({**promoted_status(V1), "phase": "Progressing", "lastAppliedSpec": hash_of(V2)}),
            workload(V2),
        ),
    )
    assert (running.outcome, running.why) == (Outcome.WAITING, "analysing podinfo:v2")
    done = judge(running.wanted, snapshot(canary(promoted_status(V2)), workload(V2)))
    assert done.outcome is Outcome.PROMOTED


def test_a_rolled_back_release_fails_with_the_reason_remembered_with_it() -> None:
    status = {
        **promoted_status(V1),
        "phase": "Failed",
        "lastAppliedSpec": hash_of(V2),
        "message": "Rolled back podinfo.test: failed checks threshold reached 1.",
        "knownBad": [
            {
                "revision": BAD,
                "images": [V2],
                "template": hash_of(V2),
                "reason": "failed checks threshold reached 1",
            }
        ],
    }
    verdict = judge_once(status, target=V2)
    assert verdict.outcome is Outcome.FAILED
    assert verdict.why == "rolled back: failed checks threshold reached 1"
    assert verdict.current_run


def test_a_git_revert_that_put_the_old_template_back_is_not_taken_for_a_promotion() -> None:
    # The wait captured v2; v2 failed; the revert converged (the target runs v1 again, and
    # the Failed status re-synced lastAppliedSpec to v1). v1 is promoted, v2 is not.
    captured = judge_once(promoted_status(V1), target=V2).wanted
    after_revert = {
        **promoted_status(V1),
        "phase": "Failed",
        "knownBad": [{"images": [V2], "template": hash_of(V2), "reason": "error rate 12%"}],
    }
    verdict = judge(captured, snapshot(canary(after_revert), workload(V1), workload(V1)))
    assert verdict.outcome is Outcome.FAILED
    assert "error rate 12%" in verdict.why


def test_a_newer_release_replacing_the_waited_one_is_followed() -> None:
    captured = judge_once(promoted_status(V1), target=V2).wanted
    verdict = judge(captured, snapshot(canary(promoted_status(V1)), workload(V3)))
    assert verdict.outcome is Outcome.WAITING
    assert verdict.wanted.followed == (V2,)
    assert verdict.wanted.release is not None and verdict.wanted.release.images == (V3,)


def test_a_target_put_back_to_the_promoted_release_before_the_analysis_supersedes_the_wait() -> (
    None
):
    captured = judge_once(promoted_status(V1), target=V2).wanted
    verdict = judge(captured, snapshot(canary(promoted_status(V1)), workload(V1)))
    assert verdict.outcome is Outcome.SUPERSEDED


def test_a_config_only_change_is_not_promoted_until_the_primary_has_its_configs() -> None:
    status = promoted_status(V1, promotedConfigs={"configmap/app": "old"})
    pending = judge_once(status, target=V1, configs={"configmap/app": "new"})
    assert pending.outcome is Outcome.WAITING
    promoted = judge_once(
        {**status, "promotedConfigs": {"configmap/app": "new"}},
        target=V1,
        configs={"configmap/app": "new"},
    )
    assert promoted.outcome is Outcome.PROMOTED


def test_configs_that_cannot_be_read_leave_the_template_to_decide() -> None:
    status = promoted_status(V1, promotedConfigs={"configmap/app": "old"})
    assert judge_once(status, target=V1, configs=None).outcome is Outcome.PROMOTED


def test_a_requested_retry_not_yet_taken_keeps_a_failed_release_waiting() -> None:
    from canary.model.commands import RETRY

    status = {**promoted_status(V1), "phase": "Failed", "lastAppliedSpec": hash_of(V2)}
    token = "2024-05-01T12:00:00Z by ci"
    asked = judge_once(status, target=V2, annotations={RETRY: token})
    assert asked.outcome is Outcome.WAITING
    taken = {**status, "handledCommands": {"retry": token}}
    assert judge_once(taken, target=V2, annotations={RETRY: token}).outcome is Outcome.FAILED


def test_a_refused_known_bad_release_fails_at_once() -> None:
    refused = "Not analysing podinfo.test: image podinfo:v2 failed its analysis"
    status = {**promoted_status(V1), "lastAppliedSpec": hash_of(V2), "refused": refused}
    verdict = judge_once(status, target=V2)
    assert (verdict.outcome, verdict.why) == (Outcome.FAILED, refused)


# --------------------------------------------------------------------------- --image


def test_an_image_not_in_the_target_yet_is_waited_for() -> None:
    verdict = judge_once(promoted_status(V1), target=V1, primary=V1, wanted=Wanted(image=V2))
    assert verdict.outcome is Outcome.WAITING
    assert verdict.why == "waiting for podinfo:v2 to reach the target (it runs podinfo:v1)"
    assert verdict.wanted.release is None


def test_an_image_the_primary_runs_is_promoted_even_when_the_target_moved_on() -> None:
    status = {**promoted_status(V2), "phase": "Progressing", "lastAppliedSpec": hash_of(V3)}
    verdict = judge_once(status, target=V3, primary=V2, wanted=Wanted(image=V2))
    assert verdict.outcome is Outcome.PROMOTED


def test_an_image_remembered_as_known_bad_fails() -> None:
    status = {
        **promoted_status(V1),
        "knownBad": [{"images": [V2], "template": "x", "reason": "latency 900ms > 500ms"}],
    }
    verdict = judge_once(status, target=V1, primary=V1, wanted=Wanted(image=V2))
    assert verdict.outcome is Outcome.FAILED
    assert "latency 900ms > 500ms" in verdict.why


def test_an_image_dropped_from_the_target_before_its_promotion_is_superseded() -> None:
    captured = judge_once(promoted_status(V1), target=V2, wanted=Wanted(image=V2)).wanted
    assert captured.release is not None
    verdict = judge(captured, snapshot(canary(promoted_status(V1)), workload(V3)))
    assert verdict.outcome is Outcome.SUPERSEDED
    assert "no longer runs podinfo:v2" in verdict.why


# --------------------------------------------------------------------------- --revision


def test_a_revision_given_as_a_short_commit_is_promoted_when_it_is_the_last_good_one() -> None:
    verdict = judge_once(promoted_status(V1), target=None, wanted=Wanted(revision="1111111"))
    assert verdict.outcome is Outcome.PROMOTED
    assert verdict.revision == GOOD


def test_a_revision_not_yet_in_the_status_is_waited_for_even_if_the_canary_succeeded() -> None:
    verdict = judge_once(promoted_status(V1), target=None, wanted=Wanted(revision=BAD))
    assert verdict.outcome is Outcome.WAITING
    assert verdict.why.startswith(f"waiting for {BAD} to reach the canary (at {GOOD})")


def test_a_revision_rolled_back_fails_and_its_verdicts_are_the_statuss() -> None:
    status = {
        **promoted_status(V1),
        "phase": "Failed",
        "currentRevision": BAD,
        "message": "Rolled back podinfo.test: failed checks threshold reached 2.",
    }
    verdict = judge_once(status, target=None, wanted=Wanted(revision=BAD[-40:][:12]))
    assert verdict.outcome is Outcome.FAILED
    assert verdict.why == "rolled back: failed checks threshold reached 2"
    assert verdict.current_run


def test_a_revision_restarted_by_a_newer_one_is_followed_to_it() -> None:
    newer = "main@sha1:" + "3" * 40
    status = {
        **promoted_status(V1),
        "phase": "Progressing",
        "currentRevision": newer,
        "analysisHistory": [
            {"revision": BAD, "started": "t1", "ended": "t2", "result": "Restarted"},
            {"revision": newer, "started": "t2"},
        ],
    }
    verdict = judge_once(status, target=None, wanted=Wanted(revision=BAD))
    assert verdict.outcome is Outcome.WAITING
    assert verdict.wanted.revision == newer and verdict.wanted.followed == (BAD,)


def test_a_status_naming_no_revision_says_to_wait_by_image() -> None:
    status = {**promoted_status(V1), "lastGoodRevision": "", "currentRevision": ""}
    verdict = judge_once(status, target=None, wanted=Wanted(revision="abcdef1"))
    assert "wait with --image" in verdict.why


@pytest.mark.parametrize(
    ("recorded", "wanted", "same"),
    [
        (GOOD, GOOD, True),
        (GOOD, "1111111", True),
        (GOOD, "sha1:" + "1" * 40, True),
        (GOOD, "refs/heads/main@sha1:1111111", True),
        (GOOD, "release@sha1:1111111", False),  # another branch
        (GOOD, "111111", False),  # shorter than 7: too ambiguous
        (GOOD, "2222222", False),
        ("", "1111111", False),
        ("v1.2.3", "v1.2.3", True),
    ],
)
def test_revisions_are_compared_as_commits(recorded: str, wanted: str, same: bool) -> None:
    assert same_revision(recorded, wanted) is same
