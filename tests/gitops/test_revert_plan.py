"""The pure revert planner: per-file verdicts, the overall decision, and the commit message."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from canary.adapters.gitops import (
    AlreadyReverted,
    GitRepository,
    GitRevertRequest,
    RevertFailed,
    Superseded,
    UndoneCommit,
    Unresolved,
)
from canary.adapters.gitops.revert import (
    FileState,
    PlannedRevert,
    RevertFacts,
    plan_revert,
    revert_message,
)

GOOD = "1" * 40
BAD = "2" * 40
HEAD = "3" * 40
REQ = GitRevertRequest(
    repository=GitRepository("file:///srv/app.git"),
    files=("a.yaml", "b.yaml"),
    good_revision=GOOD,
    bad_revision=BAD,
    canary="test/podinfo",
    reason=("error-rate 7% > 1%",),
)


def facts(*files: FileState, previous: str | None = None) -> RevertFacts:
    return RevertFacts(
        head=HEAD,
        good=GOOD,
        bad=BAD,
        files=files,
        undone=(UndoneCommit(BAD, "bump"),),
        newer=(UndoneCommit("4" * 40, "fix"),),
        previous_revert=previous,
    )


class TestDecision:
    def test_head_still_at_bad_restores_good(self) -> None:
        plan = plan_revert(REQ, facts(FileState("a.yaml", b"v1", b"v2", b"v2")))
        assert isinstance(plan, PlannedRevert)
        assert [(c.path, c.content) for c in plan.changes] == [("a.yaml", b"v1")]

    def test_file_created_after_good_is_deleted(self) -> None:
        plan = plan_revert(REQ, facts(FileState("a.yaml", None, b"new", b"new")))
        assert isinstance(plan, PlannedRevert)
        assert plan.changes[0].content is None

    def test_file_deleted_after_good_is_restored_with_its_mode(self) -> None:
        state = FileState("a.yaml", b"old", None, None, good_mode="100755")
        plan = plan_revert(REQ, facts(state))
        assert isinstance(plan, PlannedRevert)
        assert (plan.changes[0].content, plan.changes[0].mode) == (b"old", "100755")

    def test_clean_merge_with_later_edits_uses_the_merge(self) -> None:
        state = FileState("a.yaml", b"g", b"b", b"h", merged=b"merged", conflicts=0)
        plan = plan_revert(REQ, facts(state))
        assert isinstance(plan, PlannedRevert)
        assert plan.changes[0].content == b"merged"

    def test_previous_revert_commit_wins_over_everything(self) -> None:
        plan = plan_revert(REQ, facts(FileState("a.yaml", b"v1", b"v2", b"v2"), previous="9" * 40))
        assert plan == AlreadyReverted("9" * 40)

    def test_content_back_at_good_is_already_reverted(self) -> None:
        assert plan_revert(REQ, facts(FileState("a.yaml", b"v1", b"v2", b"v1"))) == AlreadyReverted(
            None
        )

    def test_identical_good_and_bad_means_nothing_to_revert(self) -> None:
        plan = plan_revert(REQ, facts(FileState("a.yaml", b"v1", b"v1", b"v3")))
        assert isinstance(plan, Unresolved)

    def test_conflict_fully_resolved_by_head_is_superseded(self) -> None:
        state = FileState("a.yaml", b"g", b"b", b"fix", conflicts=1, merged_ours=b"fix")
        plan = plan_revert(REQ, facts(state))
        assert isinstance(plan, Superseded)
        assert plan.newer_commits == (UndoneCommit("4" * 40, "fix"),)

    def test_deleted_after_bad_is_superseded(self) -> None:
        assert isinstance(
            plan_revert(REQ, facts(FileState("a.yaml", b"g", b"b", None))), Superseded
        )

    def test_partial_conflict_inside_a_file_needs_a_person(self) -> None:
        state = FileState("a.yaml", b"g", b"b", b"h", conflicts=1, merged_ours=b"partly")
        plan = plan_revert(REQ, facts(state))
        assert isinstance(plan, RevertFailed) and not plan.retriable
        assert "a.yaml" in plan.reason

    def test_superseded_file_next_to_a_revertable_one_needs_a_person(self) -> None:
        plan = plan_revert(
            REQ,
            facts(
                FileState("a.yaml", b"g", b"b", b"fix", conflicts=1, merged_ours=b"fix"),
                FileState("b.yaml", b"g2", b"b2", b"b2"),
            ),
        )
        assert isinstance(plan, RevertFailed) and not plan.retriable
        assert "a.yaml" in plan.reason and "b.yaml" in plan.reason


contents = st.sampled_from([None, b"A", b"B", b"C"])


class TestPlanProperties:
    @given(good=contents, bad=contents, head=contents)
    def test_never_plans_an_empty_or_unrelated_change(
        self, good: bytes | None, bad: bytes | None, head: bytes | None
    ) -> None:
        state = FileState("a.yaml", good, bad, head, merged=head, conflicts=1, merged_ours=head)
        plan = plan_revert(REQ, facts(state))
        if isinstance(plan, PlannedRevert):
            assert good != bad
            assert all(c.content != head for c in plan.changes)
            assert plan.changes[0].content == good  # only head == bad leads here
        if good == bad:
            assert isinstance(plan, Unresolved)

    @given(good=contents, bad=contents, head=contents)
    def test_same_facts_same_answer(
        self, good: bytes | None, bad: bytes | None, head: bytes | None
    ) -> None:
        state = FileState("a.yaml", good, bad, head)
        assert plan_revert(REQ, facts(state)) == plan_revert(REQ, facts(state))


class TestMessage:
    def test_trailers_close_the_message_one_per_undone_commit(self) -> None:
        f = RevertFacts(
            HEAD,
            GOOD,
            BAD,
            (FileState("a.yaml", b"v1", b"v2", b"v2"),),
            (UndoneCommit("5" * 40, "first"), UndoneCommit(BAD, "second")),
            (),
        )
        plan = plan_revert(REQ, f)
        assert isinstance(plan, PlannedRevert)
        last_paragraph = plan.message.strip().split("\n\n")[-1].splitlines()
        assert last_paragraph == [
            "Canary: test/podinfo",
            f"Canary-Good-Revision: {GOOD}",
            f"Canary-Bad-Revision: {BAD}",
            f"Canary-Reverts: {'5' * 40}",
            f"Canary-Reverts: {BAD}",
        ]

    def test_reason_lines_are_flattened_and_listed(self) -> None:
        req = GitRevertRequest(
            repository=REQ.repository,
            files=("a.yaml",),
            good_revision=GOOD,
            bad_revision=BAD,
            canary="test/podinfo",
            reason=("latency p99\n 900ms > 500ms", "  ", "error rate 3%"),
        ).validated()
        f = facts(FileState("a.yaml", b"v1", b"v2", b"v2"))
        message = revert_message(req, f, plan_changes(req, f))
        assert "- latency p99 900ms > 500ms\n- error rate 3%\n" in message
        assert message.startswith(f"Revert podinfo to {GOOD[:7]}: canary test/podinfo failed\n\n")


def plan_changes(req: GitRevertRequest, f: RevertFacts) -> tuple:  # type: ignore[type-arg]
    plan = plan_revert(req, f)
    assert isinstance(plan, PlannedRevert)
    return plan.changes
