"""Revisions and configs after a Git revert, and revision reports that lag the apply.

Found by the GitOps end-to-end loop: (A) Flux and Argo CD write their revision
after applying, so a run may start with the previous revision's name; (B) a
revert that restores a tracked ConfigMap must not start a run of the good
version (Flagger compares only the template with lastPromotedSpec).
"""

from __future__ import annotations

from canary.core import ScaleMode, ScaleTarget
from canary.model import CanaryStatus, Phase
from tests.core.harness import World, canary_doc, running_status, running_world, single_step

DOC = canary_doc({"stepWeight": 10, "threshold": 2})
GOOD, BAD = {"configmap/settings": "good"}, {"configmap/settings": "bad"}


def failed_after_rollback() -> CanaryStatus:
    return CanaryStatus(
        phase=Phase.FAILED,
        last_applied_spec="v3",
        last_promoted_spec="v2",
        tracked_configs=BAD,
        promoted_configs=GOOD,
        current_revision="main@sha1:3333",
        last_good_revision="main@sha1:2222",
    )


def world(template: str, configs: dict[str, str], revision: str) -> World:
    return World(
        template_hash=template,
        tracked_configs=dict(configs),
        primary_exists=True,
        revision=revision,
    )


class TestRevertConverged:
    def test_the_reverted_template_and_configs_start_no_run(self) -> None:
        record = single_step(DOC, failed_after_rollback(), world("v2", GOOD, "main@sha1:4444"))
        assert record.phase is Phase.FAILED
        assert ScaleTarget(ScaleMode.UP) not in record.decision.actions

    def test_a_config_nobody_ran_yet_still_starts_a_run(self) -> None:
        record = single_step(
            DOC,
            failed_after_rollback(),
            world("v2", {"configmap/settings": "new"}, "main@sha1:5555"),
        )
        assert record.phase is Phase.PROGRESSING
        assert ScaleTarget(ScaleMode.UP) in record.decision.actions
        assert record.status.current_revision == "main@sha1:5555"

    def test_a_status_without_promoted_configs_keeps_flaggers_rule(self) -> None:
        status = failed_after_rollback().with_(promoted_configs=None)
        record = single_step(DOC, status, world("v2", GOOD, "main@sha1:4444"))
        assert record.phase is Phase.PROGRESSING  # the configs differ from the failed run's


class TestLaggingRevisionReports:
    def test_a_run_learns_the_revision_once_the_report_catches_up(self) -> None:
        status = running_status(
            weight=10, current_revision="main@sha1:1111", last_good_revision="main@sha1:1111"
        )
        w = running_world(90, 10)
        w.revision = "main@sha1:2222"
        record = single_step(DOC, status, w)
        assert record.status.current_revision == "main@sha1:2222"
        assert record.status.last_good_revision == "main@sha1:1111"

    def test_an_idle_canary_follows_commits_that_leave_its_target_alone(self) -> None:
        status = CanaryStatus(
            phase=Phase.SUCCEEDED,
            last_applied_spec="v2",
            last_promoted_spec="v2",
            tracked_configs={},
            promoted_configs={},
            current_revision="main@sha1:2222",
            last_good_revision="main@sha1:2222",
        )
        record = single_step(DOC, status, world("v2", {}, "main@sha1:2bbb"))
        assert record.phase is Phase.SUCCEEDED
        assert record.status.last_good_revision == "main@sha1:2bbb"

    def test_a_new_revision_mid_run_records_its_revision(self) -> None:
        status = running_status(weight=20, current_revision="main@sha1:2222")
        w = running_world(80, 20, template="v3")
        w.revision = "main@sha1:3333"
        record = single_step(DOC, status, w)
        assert record.phase is Phase.PROGRESSING and record.status.canary_weight == 0
        assert record.status.current_revision == "main@sha1:3333"


def test_the_promotion_alert_names_the_images_the_primary_ran_before() -> None:
    from canary.core import AlertKind
    from tests.core.harness import run

    result = run(DOC, 30, until=lambda t: t.phase is Phase.SUCCEEDED)
    promoted = next(a for a in result.alerts() if a.kind is AlertKind.PROMOTED)
    assert promoted.images and promoted.previous_images
    assert promoted.previous_images != promoted.images
