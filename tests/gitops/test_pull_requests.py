"""Protected branches, pull-request mode, and pushes whose outcome is unknown.

Real parts: bare repositories with server-side hooks (a pre-receive hook that protects
``main`` the way forges do, with GitHub's words; a post-receive hook that never returns, so
the push reaches the server and the client dies waiting), served by ``git daemon`` or
file://; and loopback forge APIs following each vendor's documented pull-request endpoints
(tests/gitops/forge_servers.py).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from canary.adapters.gitops import (
    AlreadyReverted,
    GitRepository,
    GitRevertRequest,
    ManifestRef,
    Proposed,
    PullRequestSettings,
    PushRetryPolicy,
    Reverted,
    Reverter,
    RevertFailed,
    Unresolved,
    WorkloadSubject,
    Workspace,
    revert_branch,
)
from canary.adapters.gitops.forges import ForgeTarget
from tests.git_fixtures import BareRepo, GitDaemon, run_git
from tests.gitops.conftest import deployment
from tests.gitops.forge_servers import PROJECTS, ForgeServer

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is needed")

DEPLOY = "apps/podinfo.yaml"
SUBJECT = WorkloadSubject(
    ManifestRef("apps/v1", "Deployment", "test", "podinfo"), source_path="apps"
)


@pytest.fixture
def app(bare_repo: Callable[..., BareRepo]) -> BareRepo:
    return bare_repo("app", {DEPLOY: deployment("6.0.0"), "README.md": "podinfo\n"})


def request(
    url: str, good: str, bad: str, pull: PullRequestSettings | None = None
) -> GitRevertRequest:
    return GitRevertRequest(
        repository=GitRepository(url, "main"),
        good_revision=good,
        bad_revision=bad,
        canary="test/podinfo",
        reason=("request-success-rate 91% < 99%",),
        subject=SUBJECT,
        pull_request=pull,
    )


def settings(server: ForgeServer) -> PullRequestSettings:
    return PullRequestSettings(
        ForgeTarget(server.kind, server.api_url, PROJECTS[server.kind]), token=server.token
    )


@pytest.fixture(params=["github", "gitlab", "bitbucket-server"])
async def forge(request: pytest.FixtureRequest) -> AsyncIterator[ForgeServer]:
    server = ForgeServer(request.param)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class TestProtectedBranch:
    @pytest.mark.parametrize(
        "words",
        [
            "error: GH013: Repository rule violations found for refs/heads/main.",
            "Branch refs/heads/main can only be modified through pull requests.",
        ],
        ids=["github-ruleset", "bitbucket-server"],
    )
    async def test_any_refusal_by_a_hook_is_declined_not_an_unknown_push(
        self, app: BareRepo, git_daemon: GitDaemon, reverter: Reverter, words: str
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "podinfo 6.0.1")
        app.protect("main", words=words)

        result = await reverter.revert(request(git_daemon.url_for(app), good, bad))

        assert isinstance(result, RevertFailed) and not result.retriable
        assert words.rstrip(".") in result.reason
        assert "pre-receive hook declined" in result.reason
        assert revert_branch("test/podinfo", bad) in app.branches()

    async def test_a_refused_push_names_the_servers_words_keeps_the_revert_and_is_not_retried(
        self, app: BareRepo, git_daemon: GitDaemon, reverter: Reverter
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "podinfo 6.0.1")
        app.protect("main")

        result = await reverter.revert(request(git_daemon.url_for(app), good, bad))

        assert isinstance(result, RevertFailed) and not result.retriable
        assert "GH006: Protected branch update failed for refs/heads/main" in result.reason
        assert "spec.gitops.revert.mode: pullRequest" in result.reason
        side = revert_branch("test/podinfo", bad)
        assert f"kept on branch {side}" in result.reason
        assert app.head() == bad  # the branch itself is untouched
        kept = app.branches()[side]
        assert app.show(kept, DEPLOY) == deployment("6.0.0")
        assert run_git("log", "-1", "--format=%P", kept, cwd=app.path).strip() == bad

        again = await reverter.revert(request(git_daemon.url_for(app), good, bad))
        assert isinstance(again, RevertFailed) and not again.retriable
        assert app.branches()[side] == kept  # found again, not pushed twice


class TestPullRequestMode:
    async def test_the_revert_is_proposed_once_and_found_again_after_a_restart(
        self, app: BareRepo, forge: ForgeServer, reverter: Reverter, tmp_path: Path
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "podinfo 6.0.1")
        app.protect("main")

        result = await reverter.revert(request(app.file_url, good, bad, settings(forge)))

        assert isinstance(result, Proposed) and result.created
        assert result.url == forge.pull_url(1)
        side = revert_branch("test/podinfo", bad)
        assert result.branch == side and app.branches()[side] == result.commit_sha
        assert app.head() == bad
        (pull,) = forge.pulls
        assert (pull.head, pull.base) == (side, "main")
        assert pull.title.startswith("Revert podinfo to") and "test/podinfo" in pull.title
        assert "request-success-rate 91% < 99%" in pull.body
        assert app.show(side, DEPLOY) == deployment("6.0.0")

        # A controller restart: a new process, a new Git cache, the same answer.
        restarted = Reverter(Workspace(tmp_path / "other-cache"))
        again = await restarted.revert(request(app.file_url, good, bad, settings(forge)))

        assert isinstance(again, Proposed) and not again.created
        assert (again.url, again.commit_sha) == (result.url, result.commit_sha)
        assert len(forge.pulls) == 1 and len(forge.posts()) == 1

    async def test_a_merged_pull_request_ends_as_already_reverted_with_its_url(
        self, app: BareRepo, forge: ForgeServer, reverter: Reverter
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "podinfo 6.0.1")
        proposed = await reverter.revert(request(app.file_url, good, bad, settings(forge)))
        assert isinstance(proposed, Proposed)
        # A person merges it on the forge (a merge commit on main).
        work = app._work()
        run_git("fetch", "--quiet", "origin", proposed.branch, cwd=work)
        run_git("merge", "--quiet", "--no-ff", "-m", "Merge the revert", "FETCH_HEAD", cwd=work)
        run_git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=work)
        forge.merge(1)

        result = await reverter.revert(request(app.file_url, good, bad, settings(forge)))

        assert result == AlreadyReverted(proposed.commit_sha, forge.pull_url(1))

    async def test_a_declined_pull_request_is_unresolved_and_never_reopened(
        self, app: BareRepo, forge: ForgeServer, reverter: Reverter
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "podinfo 6.0.1")
        await reverter.revert(request(app.file_url, good, bad, settings(forge)))
        forge.close(1)

        result = await reverter.revert(request(app.file_url, good, bad, settings(forge)))

        assert isinstance(result, Unresolved)
        assert result.url == forge.pull_url(1) and "closed without merging" in result.reason
        assert len(forge.pulls) == 1

    async def test_a_refused_token_is_retried_and_never_shown(
        self, app: BareRepo, forge: ForgeServer, reverter: Reverter
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "podinfo 6.0.1")
        wrong = PullRequestSettings(
            ForgeTarget(forge.kind, forge.api_url, PROJECTS[forge.kind]),
            token="wrong-token-abcdef0123456789",
        )

        result = await reverter.revert(request(app.file_url, good, bad, wrong))

        assert isinstance(result, RevertFailed) and result.retriable
        assert "wrong-token-abcdef0123456789" not in repr(result)
        assert forge.pulls == []


class TestPushOutcomeUnknown:
    async def test_a_push_that_dies_after_reaching_the_server_ends_as_already_reverted(
        self, app: BareRepo, tmp_path: Path
    ) -> None:
        good = app.head()
        bad = app.commit({DEPLOY: deployment("6.0.1")}, "podinfo 6.0.1")
        # The server applies the push, then its post-receive hook never returns: the
        # client's time limit kills the push before it hears the outcome.
        app.install_hook("post-receive", "#!/bin/sh\nexec sleep 600\n")
        cache = tmp_path / "cache"
        slow = Reverter(
            Workspace(cache, network_timeout=3, local_timeout=20),
            retry=PushRetryPolicy(attempts=2, initial_delay=0.01),
        )

        first = await slow.revert(request(app.file_url, good, bad))

        assert isinstance(first, RevertFailed) and first.retriable
        assert "did not confirm" in first.reason
        landed = app.head()
        assert landed != bad  # the commit reached the server anyway
        app.remove_hook("post-receive")

        second = await slow.revert(request(app.file_url, good, bad))

        assert second == AlreadyReverted(landed)
        assert app.head() == landed  # no second commit


async def test_push_mode_on_an_open_branch_still_pushes(app: BareRepo, reverter: Reverter) -> None:
    good = app.head()
    bad = app.commit({DEPLOY: deployment("6.0.1")}, "podinfo 6.0.1")
    result = await reverter.revert(request(app.file_url, good, bad))
    assert isinstance(result, Reverted) and app.head() == result.commit_sha
