"""The reverter against real bare repositories served by git daemon, smart HTTP and file://."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from canary.adapters.gitops import (
    AlreadyReverted,
    CommitIdentity,
    Git,
    GitCredentials,
    GitRepository,
    GitRevertRequest,
    ManifestRef,
    PushRetryPolicy,
    Reverted,
    Reverter,
    RevertFailed,
    Superseded,
    Unresolved,
    WorkloadSubject,
    Workspace,
)
from tests.git_fixtures import GIT_HTTP_TOKEN, BareRepo, GitDaemon, SmartHttpServer, run_git
from tests.gitops.conftest import configmap, deployment

DEPLOY = "deploy/podinfo.yaml"
CONFIG = "deploy/config.yaml"
REASON = (
    "request-success-rate: 91.3% < 99% (failed checks 5 of threshold 5)",
    "request-duration: 812ms > 500ms",
)


def request(
    url: str,
    good: str,
    bad: str,
    files: tuple[str, ...] = (DEPLOY,),
    *,
    credentials: GitCredentials | None = None,
    author: CommitIdentity = CommitIdentity(),
) -> GitRevertRequest:
    return GitRevertRequest(
        repository=GitRepository(url, "main", credentials),
        files=files,
        good_revision=good,
        bad_revision=bad,
        canary="test/podinfo",
        reason=REASON,
        author=author,
    )


def ancestors(repo: BareRepo) -> list[str]:
    return run_git("rev-list", "main", cwd=repo.path).split()


@pytest.fixture
def app(bare_repo: Callable[..., BareRepo]) -> BareRepo:
    return bare_repo(
        "app",
        {DEPLOY: deployment("6.0.0"), CONFIG: configmap("blue"), "README.md": "podinfo\n"},
    )


class TestSingleBadCommit:
    async def test_restores_the_file_and_pushes_one_commit_over_git_daemon(
        self, app: BareRepo, git_daemon: GitDaemon, reverter: Reverter
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "bump podinfo to 6.0.1")

        result = await reverter.revert(request(git_daemon.url_for(app), good, bad))

        assert isinstance(result, Reverted)
        assert app.head() == result.commit_sha
        assert app.show("main", DEPLOY) == deployment("6.0.0")
        assert [c.sha for c in result.reverted_commits] == [bad]
        assert result.files == (DEPLOY,)
        # history is only appended to
        assert ancestors(app)[1:] == [bad, good]

    async def test_commit_message_says_what_why_and_which_commits(
        self, app: BareRepo, git_daemon: GitDaemon, reverter: Reverter
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "bump podinfo to 6.0.1")
        identity = CommitIdentity("Release Bot", "release-bot@example.test")

        result = await reverter.revert(request(git_daemon.url_for(app), good, bad, author=identity))

        assert isinstance(result, Reverted)
        message = app.message(result.commit_sha)
        subject = message.splitlines()[0]
        assert subject == f"Revert podinfo to {good[:7]}: canary test/podinfo failed"
        for reason in REASON:
            assert reason in message
        assert f"{bad[:12]} bump podinfo to 6.0.1" in message
        assert app.trailers(result.commit_sha) == [
            ("Canary", "test/podinfo"),
            ("Canary-Good-Revision", good),
            ("Canary-Bad-Revision", bad),
            ("Canary-Reverts", bad),
        ]
        assert app.author_of(result.commit_sha) == ("Release Bot", "release-bot@example.test")

    async def test_later_unrelated_edit_in_the_same_file_survives(
        self, app: BareRepo, git_daemon: GitDaemon, reverter: Reverter
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "bump podinfo")
        app.commit({DEPLOY: deployment("6.0.1", log_level="debug")}, "debug logging")

        result = await reverter.revert(request(git_daemon.url_for(app), good, bad))

        assert isinstance(result, Reverted)
        assert app.show("main", DEPLOY) == deployment("6.0.0", log_level="debug")


class TestLiteralPaths:
    async def test_a_file_name_with_glob_characters_is_just_a_name(
        self, app: BareRepo, reverter: Reverter
    ) -> None:
        odd, plain = "deploy/app[1].yaml", "deploy/app1.yaml"
        good = app.commit({odd: "v: 1\n", plain: "v: 1\n"}, "two apps")
        bad = app.commit({odd: "v: 2\n", plain: "v: 2\n"}, "bump both")

        result = await reverter.revert(request(app.file_url, good, bad, (odd,)))

        assert isinstance(result, Reverted)
        assert (app.show("main", odd), app.show("main", plain)) == ("v: 1\n", "v: 2\n")


class TestSeveralBadCommits:
    async def test_only_the_targets_files_go_back_and_history_is_kept(
        self, app: BareRepo, git_http: SmartHttpServer, reverter: Reverter
    ) -> None:
        good = app.head()
        c1 = app.commit(
            {DEPLOY: deployment("6.0.1"), "README.md": "podinfo v6.0.1\n"}, "bump image and docs"
        )
        c2 = app.commit(
            {CONFIG: configmap("green"), "other/service.yaml": "kind: x\n"}, "green + other app"
        )
        c3 = app.commit({"docs/notes.md": "notes\n"}, "unrelated docs")
        bad = app.commit({DEPLOY: deployment("6.0.1", replicas=3)}, "scale to 3")
        before = ancestors(app)

        result = await reverter.revert(
            request(
                git_http.url_for(app),
                good,
                bad,
                (DEPLOY, CONFIG),
                credentials=GitCredentials(token=GIT_HTTP_TOKEN),
            )
        )

        assert isinstance(result, Reverted)
        assert app.show("main", DEPLOY) == deployment("6.0.0")
        assert app.show("main", CONFIG) == configmap("blue")
        # unrelated changes from the same commits stay
        assert app.show("main", "README.md") == "podinfo v6.0.1\n"
        assert app.show("main", "other/service.yaml") == "kind: x\n"
        assert app.show("main", "docs/notes.md") == "notes\n"
        assert [c.sha for c in result.reverted_commits] == [c1, c2, bad]
        reverts = [v for k, v in app.trailers(result.commit_sha) if k == "Canary-Reverts"]
        assert reverts == [c1, c2, bad]
        assert c3 not in reverts
        # every commit ever made is still there, the revert is a plain child of the old head
        assert ancestors(app) == [result.commit_sha, *before]
        assert app.all_commits() == set(ancestors(app))

    async def test_files_created_after_good_are_deleted_and_deleted_ones_restored(
        self, app: BareRepo, git_daemon: GitDaemon, reverter: Reverter
    ) -> None:
        good = app.head()
        hpa = "deploy/hpa.yaml"
        bad = app.commit(
            {CONFIG: None, hpa: "kind: HorizontalPodAutoscaler\n"}, "swap config for hpa"
        )

        result = await reverter.revert(request(git_daemon.url_for(app), good, bad, (CONFIG, hpa)))

        assert isinstance(result, Reverted)
        assert app.show("main", CONFIG) == configmap("blue")
        assert app.show("main", hpa) is None
        message = app.message(result.commit_sha)
        assert f"{hpa}: deleted" in message
        assert f"{CONFIG}: restored" in message


class TestPushRace:
    async def test_rejected_push_is_rebuilt_on_the_new_head(
        self, app: BareRepo, git_daemon: GitDaemon, tmp_path: Path
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "bump podinfo")
        other = app.path.parent / ".other-client"
        run_git("clone", "--quiet", str(app.path), str(other))
        pushed: list[str] = []

        def other_client_pushes() -> None:
            (other / "README.md").write_text("edited concurrently\n")
            run_git("commit", "--quiet", "-am", "concurrent edit", cwd=other)
            run_git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=other)
            pushed.append(run_git("rev-parse", "HEAD", cwd=other).strip())

        git = RacingGit(other_client_pushes)
        reverter = Reverter(
            Workspace(tmp_path / "cache", git=git), retry=PushRetryPolicy(initial_delay=0.01)
        )

        result = await reverter.revert(request(git_daemon.url_for(app), good, bad))

        assert isinstance(result, Reverted)
        assert result.attempts == 2
        assert git.pushes == 2
        history = ancestors(app)
        assert history[0] == result.commit_sha
        assert history[1] == pushed[0]  # rebuilt on top of the concurrent commit
        assert bad in history and good in history
        assert app.show("main", "README.md") == "edited concurrently\n"
        assert app.show("main", DEPLOY) == deployment("6.0.0")

    async def test_a_concurrent_manual_revert_makes_ours_unnecessary(
        self, app: BareRepo, git_daemon: GitDaemon, tmp_path: Path
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "bump podinfo")
        git = RacingGit(lambda: app.commit({DEPLOY: deployment("6.0.0")}, "manual revert"))
        reverter = Reverter(
            Workspace(tmp_path / "cache", git=git), retry=PushRetryPolicy(initial_delay=0.01)
        )

        result = await reverter.revert(request(git_daemon.url_for(app), good, bad))

        assert result == AlreadyReverted(None)
        assert app.log()[0][1] == "manual revert"

    async def test_gives_up_after_bounded_attempts_when_the_branch_keeps_moving(
        self, app: BareRepo, git_daemon: GitDaemon, tmp_path: Path
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "bump podinfo")
        counter = iter(range(100))
        git = RacingGit(
            lambda: app.commit({"README.md": f"edit {next(counter)}\n"}, "busy"), every_push=True
        )
        delays: list[float] = []

        async def record_sleep(delay: float) -> None:
            delays.append(delay)

        reverter = Reverter(
            Workspace(tmp_path / "cache", git=git),
            retry=PushRetryPolicy(attempts=3, initial_delay=0.1, multiplier=2.0, jitter=0.0),
            sleep=record_sleep,
        )

        result = await reverter.revert(request(git_daemon.url_for(app), good, bad))

        assert isinstance(result, RevertFailed)
        assert result.retriable
        assert git.pushes == 3
        assert delays == [0.1, 0.2]  # exponential backoff between attempts
        assert app.show("main", DEPLOY) == deployment("6.0.1")


class RacingGit(Git):
    """Runs ``before_push`` (another client pushing) just before our push reaches the server."""

    def __init__(self, before_push: Callable[[], Any], *, every_push: bool = False) -> None:
        super().__init__()
        self.before_push = before_push
        self.every_push = every_push
        self.pushes = 0

    async def run(self, *args: str, **kwargs: Any) -> Any:
        if "push" in args:
            self.pushes += 1
            if self.pushes == 1 or self.every_push:
                await asyncio.to_thread(self.before_push)
        return await super().run(*args, **kwargs)


class TestRestartSafety:
    async def test_second_call_after_a_restart_finds_the_commit_and_does_nothing(
        self, app: BareRepo, git_daemon: GitDaemon, tmp_path: Path
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "bump podinfo")
        url = git_daemon.url_for(app)
        first = await Reverter(Workspace(tmp_path / "cache-1")).revert(request(url, good, bad))
        assert isinstance(first, Reverted)
        # someone commits on top; then the controller restarts with an empty cache
        app.commit({"README.md": "later\n"}, "later change")
        head = app.head()

        second = await Reverter(Workspace(tmp_path / "cache-2")).revert(request(url, good, bad))

        assert second == AlreadyReverted(first.commit_sha)
        assert app.head() == head
        assert sum(1 for _, s in app.log() if s.startswith("Revert podinfo")) == 1

    async def test_same_call_twice_in_one_process_reuses_the_working_copy(
        self, app: BareRepo, git_daemon: GitDaemon, reverter: Reverter
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "bump podinfo")
        req = request(git_daemon.url_for(app), good, bad)

        first, second = await reverter.revert(req), await reverter.revert(req)

        assert isinstance(first, Reverted)
        assert second == AlreadyReverted(first.commit_sha)
        assert len(app.log()) == 3

    async def test_concurrent_calls_make_one_commit(
        self, app: BareRepo, git_daemon: GitDaemon, reverter: Reverter
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "bump podinfo")
        req = request(git_daemon.url_for(app), good, bad)

        results = await asyncio.gather(*(reverter.revert(req) for _ in range(3)))

        reverted = [r for r in results if isinstance(r, Reverted)]
        assert len(reverted) == 1
        assert results.count(AlreadyReverted(reverted[0].commit_sha)) == 2
        assert len(app.log()) == 3


class TestNothingToUndo:
    async def test_a_newer_fix_on_the_same_lines_supersedes_the_revert(
        self, app: BareRepo, git_daemon: GitDaemon, reverter: Reverter
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "bump podinfo")
        fix = app.commit({DEPLOY: deployment("6.0.2")}, "fix: podinfo 6.0.2")

        result = await reverter.revert(request(git_daemon.url_for(app), good, bad))

        assert isinstance(result, Superseded)
        assert [c.sha for c in result.newer_commits] == [fix]
        assert app.head() == fix

    async def test_partly_superseded_change_is_a_conflict_for_a_person(
        self, app: BareRepo, git_daemon: GitDaemon, reverter: Reverter
    ) -> None:
        good = app.head()
        bad = app.commit(
            {DEPLOY: deployment("6.0.1"), CONFIG: configmap("green")}, "bump podinfo + green"
        )
        fix = app.commit({DEPLOY: deployment("6.0.2")}, "fix image only")

        result = await reverter.revert(
            request(git_daemon.url_for(app), good, bad, (DEPLOY, CONFIG))
        )

        assert isinstance(result, RevertFailed)
        assert not result.retriable
        assert "conflict" in result.reason and DEPLOY in result.reason and CONFIG in result.reason
        assert app.head() == fix

    async def test_already_equal_content_counts_as_reverted(
        self, app: BareRepo, git_daemon: GitDaemon, reverter: Reverter
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "bump podinfo")
        manual = app.commit({DEPLOY: deployment("6.0.0")}, "manual revert")

        result = await reverter.revert(request(git_daemon.url_for(app), good, bad))

        assert result == AlreadyReverted(None)
        assert app.head() == manual

    async def test_files_unchanged_between_good_and_bad(
        self, app: BareRepo, git_daemon: GitDaemon, reverter: Reverter
    ) -> None:
        good = app.head()
        bad = app.commit({"README.md": "only docs\n"}, "docs")

        result = await reverter.revert(request(git_daemon.url_for(app), good, bad))

        assert isinstance(result, Unresolved)
        assert DEPLOY in result.reason
        assert app.head() == bad


class TestFailures:
    async def test_unreachable_remote_is_retriable(self, reverter: Reverter) -> None:
        from tests.git_fixtures import free_port

        url = f"http://127.0.0.1:{free_port()}/git/app.git"
        result = await reverter.revert(request(url, "a" * 40, "b" * 40))

        assert isinstance(result, RevertFailed)
        assert result.retriable
        assert "127.0.0.1" in result.reason

    async def test_unknown_bad_revision_needs_a_person(
        self, app: BareRepo, reverter: Reverter
    ) -> None:
        good = app.head()
        result = await reverter.revert(request(app.file_url, good, "c0ffee" * 6 + "abcd"))

        assert isinstance(result, RevertFailed)
        assert not result.retriable
        assert "not in the history of branch main" in result.reason

    @pytest.mark.parametrize(
        ("field", "value", "expected"),
        [
            ("bad_revision", "--upload-pack=touch /tmp/x", "bad revision"),
            ("good_revision", "HEAD~1", "good revision"),
            ("files", ("../etc/passwd",), "files[0]"),
            ("canary", "podinfo", "canary"),
        ],
    )
    async def test_bad_input_is_refused_before_running_git(
        self, app: BareRepo, reverter: Reverter, field: str, value: Any, expected: str
    ) -> None:
        req = request(app.file_url, app.head(), app.head())
        values: dict[str, Any] = {
            "repository": req.repository,
            "files": req.files,
            "good_revision": req.good_revision,
            "bad_revision": req.bad_revision,
            "canary": req.canary,
        }
        values[field] = value

        result = await reverter.revert(GitRevertRequest(**values))

        assert isinstance(result, RevertFailed)
        assert not result.retriable
        assert expected in result.reason
        assert not (reverter.workspace.cache_dir).exists()


class TestShallowHistory:
    async def test_deepens_until_the_good_revision_is_reachable(
        self, app: BareRepo, git_daemon: GitDaemon, tmp_path: Path
    ) -> None:
        good = app.many_commits(40, "old.txt", subject="old history")
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "bump podinfo")
        app.many_commits(12, "README.md", subject="edit")
        reverter = Reverter(
            Workspace(tmp_path / "cache"),
            retry=PushRetryPolicy(history_depth=2, initial_delay=0.01),
        )

        result = await reverter.revert(request(git_daemon.url_for(app), good, bad))

        assert isinstance(result, Reverted)
        assert app.show("main", DEPLOY) == deployment("6.0.0")
        assert app.show("main", "README.md") == "edit 11\n"
        assert len(app.log()) == 1 + 40 + 1 + 12 + 1
        cache_repo = next((tmp_path / "cache").glob("*/repo.git"))
        assert (cache_repo / "shallow").exists()  # never cloned the whole history


class TestSubject:
    # Both orders: the moved file sorts after the old one, and before it.
    @pytest.mark.parametrize("moved", ["deploy/z/podinfo.yaml", "apps/podinfo/deployment.yaml"])
    async def test_a_manifest_moved_by_the_bad_change_is_reverted_as_a_move(
        self, app: BareRepo, reverter: Reverter, moved: str
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: None, moved: deployment("6.0.1")}, "move and bump podinfo")
        subject = WorkloadSubject(ManifestRef("apps/v1", "Deployment", "test", "podinfo"))

        result = await reverter.revert(
            replace(request(app.file_url, good, bad, ()), subject=subject)
        )

        assert isinstance(result, Reverted)
        assert app.show("main", DEPLOY) == deployment("6.0.0")
        assert app.show("main", moved) is None  # never declared twice
        assert set(result.files) == {moved, DEPLOY}

    async def test_unknown_revision_is_reported(self, app: BareRepo, reverter: Reverter) -> None:
        subject = WorkloadSubject(ManifestRef("apps/v1", "Deployment", "test", "podinfo"))
        result = await reverter.revert(
            replace(request(app.file_url, app.head(), "f" * 40, ()), subject=subject)
        )
        assert isinstance(result, RevertFailed) and not result.retriable
        assert f"bad revision {'f' * 40} is not in the history of branch main" == result.reason
