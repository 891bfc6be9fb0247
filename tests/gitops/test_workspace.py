"""The Git cache: reuse across passes, snapshots, self-repair and the remote's default branch."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable

import pytest

from canary.adapters.gitops import GitError, GitFailure, GitRepository, Workspace
from tests.git_fixtures import BareRepo, GitDaemon


@pytest.fixture
def app(bare_repo: Callable[..., BareRepo]) -> BareRepo:
    return bare_repo("app", {"a.yaml": "one\n"})


class TestWorkingCopy:
    async def test_one_clone_per_url_and_branch_reused_across_passes(
        self, app: BareRepo, workspace: Workspace
    ) -> None:
        repo = GitRepository(app.file_url, "main")
        async with workspace.open(repo) as first:
            head1 = await first.fetch()
            snap1 = await first.snapshot(head1)
        head2 = app.commit({"a.yaml": "two\n"}, "two")
        async with workspace.open(repo) as second:
            assert second.path == first.path
            assert await second.fetch() == head2
            snap2 = await second.snapshot(head2)
        assert (snap2 / "a.yaml").read_text() == "two\n"
        assert not snap1.exists()  # the older snapshot was cleaned up
        assert len(list(workspace.cache_dir.iterdir())) == 1

    async def test_snapshot_keeps_export_ignored_files(
        self, bare_repo: Callable[..., BareRepo], workspace: Workspace
    ) -> None:
        repo = bare_repo(
            "attrs", {".gitattributes": "deploy/* export-ignore\n", "deploy/app.yaml": "x: 1\n"}
        )
        async with workspace.open(GitRepository(repo.file_url)) as copy:
            tree = await copy.snapshot(await copy.fetch())
        assert (tree / "deploy" / "app.yaml").read_text() == "x: 1\n"

    async def test_passes_on_one_repository_take_turns(
        self, app: BareRepo, workspace: Workspace
    ) -> None:
        repo = GitRepository(app.file_url, "main")
        inside: list[int] = []
        overlaps: list[int] = []

        async def hold(n: int) -> None:
            async with workspace.open(repo) as copy:
                inside.append(n)
                overlaps.append(len(inside))
                await copy.fetch()
                inside.remove(n)

        await asyncio.gather(*(hold(n) for n in range(4)))
        assert overlaps == [1, 1, 1, 1]

    async def test_a_damaged_cache_is_rebuilt(self, app: BareRepo, workspace: Workspace) -> None:
        repo = GitRepository(app.file_url, "main")
        async with workspace.open(repo) as copy:
            await copy.fetch()
        (copy.git_dir / "HEAD").unlink()

        async with workspace.open(repo) as again:
            assert await again.fetch() == app.head()

    async def test_missing_branch_is_not_found(self, app: BareRepo, workspace: Workspace) -> None:
        with pytest.raises(GitError) as info:
            async with workspace.open(GitRepository(app.file_url, "nope")) as copy:
                await copy.fetch()
        assert info.value.kind is GitFailure.NOT_FOUND
        assert "branch nope" in str(info.value)


class TestDefaultBranch:
    async def test_reads_the_remote_head(
        self, bare_repo: Callable[..., BareRepo], git_daemon: GitDaemon, workspace: Workspace
    ) -> None:
        trunk = bare_repo("trunk", {"a": "1"}, branch="trunk")
        assert await workspace.default_branch(git_daemon.url_for(trunk)) == "trunk"

    async def test_unreachable_remote(self, workspace: Workspace) -> None:
        from tests.git_fixtures import free_port

        with pytest.raises(GitError) as info:
            await workspace.default_branch(f"git://127.0.0.1:{free_port()}/x.git")
        assert info.value.kind is GitFailure.UNREACHABLE


def test_cache_dir_can_be_removed_between_runs(app: BareRepo, workspace: Workspace) -> None:
    async def once() -> str:
        async with workspace.open(GitRepository(app.file_url)) as copy:
            return await copy.fetch()

    assert asyncio.run(once()) == app.head()
    shutil.rmtree(workspace.cache_dir)
    assert asyncio.run(once()) == app.head()
