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


class TestMessagesNameOnlyTheRunsRevision:
    """A `Started` message once named v2's revision for v3's run: the GitSource had applied
    v3 but still reported v2's commit. A report naming another release is never the run's."""

    @staticmethod
    def succeeded_on_v2() -> CanaryStatus:
        return CanaryStatus(
            phase=Phase.SUCCEEDED,
            last_applied_spec="v2",
            last_promoted_spec="v2",
            tracked_configs={},
            promoted_configs={},
            current_revision="main@sha1:2222",
            last_good_revision="main@sha1:2222",
        )

    def test_a_run_started_while_the_report_still_names_the_primarys_release_names_no_revision(
        self,
    ) -> None:
        from canary.core import AlertKind

        record = single_step(DOC, self.succeeded_on_v2(), world("v3", {}, "main@sha1:2222"))
        assert record.phase is Phase.PROGRESSING
        assert record.status.current_revision == ""
        (started,) = [a for a in record.alerts if a.kind is AlertKind.STARTED]
        assert started.revision == ""
        assert started.previous_revision == "main@sha1:2222"

    def test_a_run_after_a_failed_one_does_not_take_the_failed_runs_revision(self) -> None:
        from canary.core import AlertKind

        record = single_step(DOC, failed_after_rollback(), world("v4", BAD, "main@sha1:3333"))
        assert record.phase is Phase.PROGRESSING
        (started,) = [a for a in record.alerts if a.kind is AlertKind.STARTED]
        assert started.revision == "" and record.status.current_revision == ""

    def test_a_report_that_names_the_new_release_is_taken_at_once(self) -> None:
        from canary.core import AlertKind

        record = single_step(DOC, self.succeeded_on_v2(), world("v3", {}, "main@sha1:3333"))
        (started,) = [a for a in record.alerts if a.kind is AlertKind.STARTED]
        assert started.revision == "main@sha1:3333"

    def test_mid_run_the_primarys_revision_is_not_taken_and_the_new_one_is(self) -> None:
        status = running_status(weight=10, last_good_revision="main@sha1:2222", applied="v3")
        stale = running_world(90, 10, template="v3")
        stale.revision = "main@sha1:2222"
        assert single_step(DOC, status, stale).status.current_revision == ""
        caught_up = running_world(90, 10, template="v3")
        caught_up.revision = "main@sha1:3333"
        assert single_step(DOC, status, caught_up).status.current_revision == "main@sha1:3333"

    def test_a_restart_by_a_newer_revision_never_keeps_the_old_runs_name(self) -> None:
        status = running_status(weight=20, current_revision="main@sha1:2222")
        unreported = running_world(80, 20, template="v3")
        unreported.revision = None
        record = single_step(DOC, status, unreported)
        assert record.status.canary_weight == 0
        assert record.status.current_revision == ""
        lagging = running_world(80, 20, template="v3")
        lagging.revision = "main@sha1:2222"
        assert single_step(DOC, status, lagging).status.current_revision == ""
