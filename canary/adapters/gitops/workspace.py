"""Cached working copies of remote repositories, one per (URL, branch), reused across passes.

Each working copy is a *bare* repository in the cache directory: nothing ever edits a work tree,
so a crash at any line leaves nothing half-done to clean up. The GitSource reconciler reads a
revision as a snapshot directory (written once per commit from a private index); the
reverter builds its commit with plumbing (``commit-tree``) and pushes it by commit id.

Fetches are shallow (``--depth``) and are deepened only when a revert needs older history.
An ``asyncio.Lock`` per working copy (:meth:`Workspace.open`) keeps two passes from racing in
one clone; different repositories proceed in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import shutil
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from canary.adapters.gitops.credentials import (
    GitCredentials,
    git_auth_environment,
    redactor_for,
)
from canary.adapters.gitops.git import (
    Git,
    GitError,
    GitFailure,
    check_branch,
    check_url,
)

__all__ = ["BlobEntry", "GitRepository", "WorkingCopy", "Workspace"]

logger = logging.getLogger("canary.adapters.gitops.workspace")


@dataclass(frozen=True, slots=True)
class GitRepository:
    """Where to fetch from and push to. Credentials are left out of ``repr`` and equality."""

    url: str
    branch: str = "main"
    credentials: GitCredentials | None = field(default=None, compare=False, repr=False)

    def validated(self) -> GitRepository:
        check_url(self.url)
        check_branch(self.branch)
        return self

    @property
    def key(self) -> str:
        return f"{self.url}#{self.branch}"

    @property
    def display(self) -> str:
        """The URL and branch for messages; never contains credentials (URLs with a password
        are refused by :func:`check_url`)."""
        return f"{self.url} (branch {self.branch})"


@dataclass(frozen=True, slots=True)
class BlobEntry:
    """A file at a revision: its mode (``100644``, ``100755``, ``120000``) and blob id."""

    path: str
    mode: str
    blob: str


def _slug(repo: GitRepository) -> str:
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", repo.url.rstrip("/").rsplit("/", 1)[-1])[:40]
    digest = hashlib.sha256(repo.key.encode()).hexdigest()[:16]
    return f"{tail.strip('-.') or 'repo'}-{digest}"


class Workspace:
    """The cache of working copies under ``cache_dir``; share one per process."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        git: Git | None = None,
        network_timeout: float = 120.0,
        local_timeout: float = 30.0,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.git = git or Git()
        self.network_timeout = network_timeout
        self.local_timeout = local_timeout
        self._locks: dict[str, asyncio.Lock] = {}

    def lock_for(self, repo: GitRepository) -> asyncio.Lock:
        return self._locks.setdefault(repo.key, asyncio.Lock())

    def path_for(self, repo: GitRepository) -> Path:
        return self.cache_dir / _slug(repo)

    async def default_branch(self, url: str, credentials: GitCredentials | None = None) -> str:
        """The branch the remote's ``HEAD`` points to (for Argo CD ``targetRevision: HEAD``)."""
        check_url(url)
        state = self.cache_dir / "_remote-state"
        redact = redactor_for(credentials)
        with git_auth_environment(url, credentials, state_dir=state) as env:
            out = await self.git.run(
                "ls-remote",
                "--symref",
                url,
                "HEAD",
                env=env,
                time_limit=self.network_timeout,
                redact=redact,
            )
        for line in out.text.splitlines():
            ref, _, name = line.partition("\t")
            if ref.startswith("ref: refs/heads/") and name.strip() == "HEAD":
                return ref.removeprefix("ref: refs/heads/").strip()
        raise GitError(GitFailure.NOT_FOUND, f"{url}: the remote does not name a default branch")

    @contextlib.asynccontextmanager
    async def open(
        self, repo: GitRepository, *, network_timeout: float | None = None
    ) -> AsyncIterator[WorkingCopy]:
        """Hold the working copy of ``repo`` for one pass (exclusive within this process).
        ``network_timeout`` overrides the workspace's limit for each fetch or push."""
        repo.validated()
        async with self.lock_for(repo):
            copy = WorkingCopy(self, repo, self.path_for(repo), network_timeout=network_timeout)
            await copy.ensure()
            yield copy


class WorkingCopy:
    """One bare repository in the cache, bound to a remote and its credentials."""

    def __init__(
        self,
        workspace: Workspace,
        repo: GitRepository,
        path: Path,
        *,
        network_timeout: float | None = None,
    ) -> None:
        self.workspace = workspace
        self.network_timeout = network_timeout or workspace.network_timeout
        self.repo = repo
        self.path = path
        self.git_dir = path / "repo.git"
        self.state_dir = path / "state"
        self.snapshots_dir = path / "snapshots"
        self.tmp_dir = path / "tmp"
        self.redact = redactor_for(repo.credentials)

    # -- plumbing ---------------------------------------------------------------------------

    async def git(
        self,
        *args: str,
        input: bytes | None = None,
        check: bool = True,
        time_limit: float | None = None,
        env: dict[str, str] | None = None,
        config: dict[str, str] | None = None,
    ) -> bytes:
        out = await self.workspace.git.run(
            "--git-dir",
            str(self.git_dir),
            *args,
            cwd=self.path,
            input=input,
            check=check,
            time_limit=self.workspace.local_timeout if time_limit is None else time_limit,
            redact=self.redact,
            env=env,
            config=config,
        )
        return out.stdout

    async def _git_status(self, *args: str) -> int:
        out = await self.workspace.git.run(
            "--git-dir",
            str(self.git_dir),
            *args,
            cwd=self.path,
            check=False,
            time_limit=self.workspace.local_timeout,
            redact=self.redact,
        )
        return out.returncode

    async def remote(self, *args: str) -> bytes:
        """A git call that talks to the remote, with credentials and the network timeout."""
        with git_auth_environment(
            self.repo.url, self.repo.credentials, state_dir=self.state_dir
        ) as env:
            try:
                out = await self.git(*args, time_limit=self.network_timeout, env=env)
            except GitError as exc:
                raise GitError(
                    exc.kind, f"{self.repo.display}: {exc.message}", returncode=exc.returncode
                ) from None
        return out

    async def ensure(self) -> None:
        """Create the bare repository on first use (and again if the cache was damaged)."""
        # Scratch files of an interrupted earlier pass are useless now (we hold the lock).
        if self.tmp_dir.exists():
            await asyncio.to_thread(shutil.rmtree, self.tmp_dir, True)
        for directory in (self.path, self.state_dir, self.snapshots_dir, self.tmp_dir):
            directory.mkdir(parents=True, exist_ok=True)
        if (self.git_dir / "HEAD").exists():
            return
        if self.git_dir.exists():
            await asyncio.to_thread(shutil.rmtree, self.git_dir)
        await self.workspace.git.run(
            "init",
            "--bare",
            "--quiet",
            str(self.git_dir),
            cwd=self.path,
            time_limit=self.workspace.local_timeout,
        )
        # Objects we create (a revert commit before its push) must never be collected.
        await self.git("config", "gc.auto", "0")
        await self.git("config", "maintenance.auto", "false")

    # -- fetching ----------------------------------------------------------------------------

    async def fetch(self, depth: int | None = 1) -> str:
        """Fetch the branch head (shallow unless ``depth`` is None); return its commit id."""
        args = ["fetch", "--quiet", "--no-tags"]
        if depth is not None and await self.is_shallow_or_empty():
            args.append(f"--depth={depth}")
        await self.remote(*args, self.repo.url, f"refs/heads/{self.repo.branch}")
        head = await self.resolve("FETCH_HEAD")
        # A local bookkeeping ref (never pushed) so the fetched objects have a name.
        await self.git("update-ref", "--no-deref", self.local_ref, head)
        return head

    @property
    def local_ref(self) -> str:
        return "refs/canary-engine/fetched"

    async def is_shallow_or_empty(self) -> bool:
        if not (self.git_dir / "refs").exists():
            return True
        out = await self.git("rev-parse", "--is-shallow-repository")
        if out.strip() == b"true":
            return True
        return await self._git_status("rev-parse", "--verify", "--quiet", self.local_ref) != 0

    async def is_shallow(self) -> bool:
        out = await self.git("rev-parse", "--is-shallow-repository")
        return out.strip() == b"true"

    async def deepen(self, by: int) -> None:
        await self.remote(
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            f"--deepen={by}",
            self.repo.url,
            f"refs/heads/{self.repo.branch}",
        )

    async def unshallow(self) -> None:
        await self.remote(
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--unshallow",
            self.repo.url,
            f"refs/heads/{self.repo.branch}",
        )

    async def ensure_history(self, head: str, revisions: Sequence[str], *, start: int = 32) -> bool:
        """Deepen until every revision is an ancestor of ``head`` (or the history is complete).
        Return whether they all are."""
        step = start
        while True:
            if all([await self.is_ancestor(rev, head) for rev in revisions]):
                return True
            if not await self.is_shallow():
                return False
            if step > 4096:
                await self.unshallow()
            else:
                await self.deepen(step)
                step *= 4

    # -- reading -----------------------------------------------------------------------------

    async def resolve(self, rev: str) -> str:
        out = await self.git(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"
        )
        return out.decode().strip()

    async def try_resolve(self, rev: str) -> str | None:
        try:
            return await self.resolve(rev)
        except GitError:
            return None

    async def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        if await self.try_resolve(ancestor) is None:
            return False
        code = await self._git_status("merge-base", "--is-ancestor", ancestor, descendant)
        return code == 0

    async def entries(self, rev: str, paths: Iterable[str]) -> dict[str, BlobEntry]:
        """The files among ``paths`` that exist at ``rev`` (directories are left out)."""
        wanted = list(paths)
        if not wanted:
            return {}
        out = await self.git("ls-tree", "-z", "--full-tree", rev, "--", *wanted)
        found: dict[str, BlobEntry] = {}
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, name = record.partition(b"\t")
            mode, kind, blob = meta.decode().split()
            path = name.decode("utf-8", errors="surrogateescape")
            if kind == "blob" and path in wanted:
                found[path] = BlobEntry(path, mode, blob)
        return found

    async def blob(self, blob: str) -> bytes:
        return await self.git("cat-file", "blob", blob)

    async def commits(self, revision_range: str, paths: Sequence[str]) -> list[tuple[str, str]]:
        """(commit id, subject) of commits in ``revision_range`` touching ``paths``, oldest first."""
        out = await self.git(
            "log", "--reverse", "--format=%H%x1f%s%x1e", revision_range, "--", *paths
        )
        result: list[tuple[str, str]] = []
        for record in out.decode("utf-8", errors="replace").split("\x1e"):
            record = record.strip()
            if record:
                sha, _, subject = record.partition("\x1f")
                result.append((sha, subject))
        return result

    async def trailers(self, revision_range: str) -> list[tuple[str, dict[str, list[str]]]]:
        """(commit id, trailers) for every commit in ``revision_range``, newest first."""
        out = await self.git("log", "--format=%H%x1f%(trailers:only,unfold)%x1e", revision_range)
        result: list[tuple[str, dict[str, list[str]]]] = []
        for record in out.decode("utf-8", errors="replace").split("\x1e"):
            record = record.strip()
            if not record:
                continue
            sha, _, text = record.partition("\x1f")
            found: dict[str, list[str]] = {}
            for line in text.splitlines():
                key, sep, value = line.partition(":")
                if sep:
                    found.setdefault(key.strip().lower(), []).append(value.strip())
            result.append((sha.strip(), found))
        return result

    async def fetch_branch(self, branch: str) -> str:
        """Fetch another branch of the same remote (shallow); return its head commit."""
        name = check_branch(branch)
        await self.remote(
            "fetch", "--quiet", "--no-tags", "--depth=1", self.repo.url, f"refs/heads/{name}"
        )
        return await self.resolve("FETCH_HEAD")

    async def grep(
        self,
        rev: str,
        needle: str,
        *,
        suffixes: tuple[str, ...] = (".yaml", ".yml"),
        max_bytes: int = 16 * 1024 * 1024,
    ) -> dict[str, str]:
        """Text files at ``rev`` whose name ends with one of ``suffixes`` and that contain
        ``needle`` (a fixed string); at most ``max_bytes`` of them in all."""
        out = await self.git(
            "grep", "-l", "-z", "--fixed-strings", "-I", "-e", needle, rev, check=False
        )
        names = []
        for record in out.split(b"\0"):
            if not record:
                continue
            name = record.decode("utf-8", errors="surrogateescape")
            path = name.split(":", 1)[1] if name.startswith(f"{rev}:") else name
            if path.endswith(suffixes):
                names.append(path)
        entries = await self.entries(rev, names) if names else {}
        contents = await self.blobs([e.blob for e in entries.values()], max_bytes=max_bytes)
        if contents is None:
            raise GitError(
                GitFailure.FAILED,
                f"the files containing {needle!r} hold more than {max_bytes} bytes; not read",
            )
        return {
            path: contents[entry.blob].decode("utf-8", "replace")
            for path, entry in sorted(entries.items())
        }

    async def blobs(self, ids: Sequence[str], *, max_bytes: int) -> dict[str, bytes] | None:
        """The contents of several blobs in one ``git cat-file --batch``; None when they hold
        more than ``max_bytes`` in all (their sizes are asked first)."""
        unique = list(dict.fromkeys(ids))
        if not unique:
            return {}
        request = ("\n".join(unique) + "\n").encode()
        sizes = await self.git("cat-file", "--batch-check=%(objectsize)", input=request)
        if sum(int(x) for x in sizes.split() if x.isdigit()) > max_bytes:
            return None
        raw = await self.git("cat-file", "--batch", input=request)
        found: dict[str, bytes] = {}
        at = 0
        for wanted in unique:
            header_end = raw.index(b"\n", at)
            sha, kind, size = raw[at:header_end].decode().split()
            if kind != "blob" or sha != wanted:
                raise GitError(GitFailure.FAILED, f"git cat-file: {wanted} is a {kind}")
            start = header_end + 1
            found[wanted] = raw[start : start + int(size)]
            at = start + int(size) + 1
        return found

    async def changed(
        self, old: str, new: str
    ) -> list[tuple[str, BlobEntry | None, BlobEntry | None]]:
        """Files that differ between two commits: (path, entry at ``old``, entry at ``new``),
        None where the file is absent. Renames are reported as a deletion and an addition."""
        out = await self.git("diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", old, new)
        fields = out.split(b"\0")
        result: list[tuple[str, BlobEntry | None, BlobEntry | None]] = []
        index = 0
        while index + 1 < len(fields):
            meta, name = fields[index].decode(), fields[index + 1]
            index += 2
            if not meta.startswith(":"):
                continue
            old_mode, new_mode, old_blob, new_blob, _status = meta[1:].split()
            path = name.decode("utf-8", errors="surrogateescape")
            before = None if set(old_blob) == {"0"} else BlobEntry(path, old_mode, old_blob)
            after = None if set(new_blob) == {"0"} else BlobEntry(path, new_mode, new_blob)
            if (before and before.mode == "160000") or (after and after.mode == "160000"):
                continue  # submodules are not files of this repository
            result.append((path, before, after))
        return result

    async def materialize(self, rev: str, dest: Path) -> None:
        """Write the tree of ``rev`` into the empty directory ``dest`` (a private copy that
        the caller may change; see :meth:`snapshot` for the shared read-only one)."""
        sha = await self.resolve(rev)
        await asyncio.to_thread(dest.mkdir, parents=True, exist_ok=True)
        await self._check_out(sha, dest, f"materialize-index-{sha[:12]}-{id(dest):x}")

    async def _check_out(self, sha: str, dest: Path, index_name: str) -> None:
        """Write the tree ``sha`` into ``dest`` through a private index file (``index_name``
        in the temporary directory, removed afterwards): the working copy's own index is
        never touched."""
        index = self.tmp_dir / index_name
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            await self.git("read-tree", sha, env=env)
            await self.git(
                "--work-tree",
                str(dest),
                "checkout-index",
                "-a",  # every file of the private index
                env=env,
                time_limit=self.network_timeout,
            )
        finally:
            with contextlib.suppress(FileNotFoundError):
                index.unlink()

    async def snapshot(self, rev: str) -> Path:
        """The tree of ``rev`` as a directory, written once and reused; older snapshots of
        this working copy are removed. Written with ``checkout-index`` from a private index
        (not ``git archive``, which would drop files marked ``export-ignore``)."""
        sha = await self.resolve(rev)
        target = self.snapshots_dir / sha
        if target.is_dir():
            return target
        partial = self.snapshots_dir / f".{sha}.partial"
        await asyncio.to_thread(shutil.rmtree, partial, True)
        partial.mkdir(parents=True)
        await self._check_out(sha, partial, f"snapshot-index-{sha[:16]}")
        await asyncio.to_thread(_publish, partial, self.snapshots_dir, sha)
        return target

    # -- writing -----------------------------------------------------------------------------

    async def hash_blob(self, content: bytes) -> str:
        out = await self.git("hash-object", "-w", "--stdin", input=content)
        return out.decode().strip()

    async def write_tree(
        self, base: str, updates: Sequence[tuple[str, str | None, str | None]]
    ) -> str:
        """A new tree: ``base``'s tree with each (path, mode, blob) set, or removed when blob
        is None. Uses a private index file; the repository itself is not touched."""
        index = self.tmp_dir / f"index-{base[:12]}-{id(updates):x}"
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            await self.git("read-tree", base, env=env)
            lines = []
            for path, mode, blob in updates:
                if blob is None:
                    lines.append(f"0 {'0' * len(base)}\t{path}")
                else:
                    lines.append(f"{mode} {blob}\t{path}")
            if lines:
                await self.git(
                    "update-index",
                    "--index-info",
                    input=("\n".join(lines) + "\n").encode(),
                    env=env,
                )
            out = await self.git("write-tree", env=env)
            return out.decode().strip()
        finally:
            with contextlib.suppress(FileNotFoundError):
                index.unlink()

    async def commit_tree(
        self, tree: str, parent: str, message: str, *, name: str, email: str
    ) -> str:
        out = await self.git(
            "commit-tree",
            tree,
            "-p",
            parent,
            "-F",
            "-",
            input=message.encode(),
            config={"user.name": name, "user.email": email, "commit.gpgsign": "false"},
            env={
                "GIT_AUTHOR_NAME": name,
                "GIT_AUTHOR_EMAIL": email,
                "GIT_COMMITTER_NAME": name,
                "GIT_COMMITTER_EMAIL": email,
            },
        )
        return out.decode().strip()

    async def push(self, commit: str, *, branch: str | None = None) -> None:
        """Fast-forward the remote branch (the repository's, or ``branch``, which is created
        when absent) to ``commit``. Never forced: when the branch moved, the server refuses
        and this raises ``GitError(kind=REJECTED)``; a protected branch gives DECLINED."""
        name = check_branch(branch) if branch is not None else self.repo.branch
        await self.remote(
            "push",
            "--quiet",
            "--porcelain",
            self.repo.url,
            f"{commit}:refs/heads/{name}",
        )

    async def remote_branch(self, branch: str) -> str | None:
        """The commit a remote branch points to, or None when it does not exist."""
        out = await self.remote(
            "ls-remote", "--heads", self.repo.url, f"refs/heads/{check_branch(branch)}"
        )
        for line in out.decode().splitlines():
            sha, _, ref = line.partition("\t")
            if ref.strip() == f"refs/heads/{branch}":
                return sha.strip()
        return None

    async def merge_file(
        self, ours: bytes, base: bytes, theirs: bytes, *, prefer_ours: bool = False
    ) -> tuple[bytes, int]:
        """3-way merge of one file's contents; returns (result, number of conflicts)."""
        work = self.tmp_dir / f"merge-{id(ours):x}"
        work.mkdir(parents=True, exist_ok=True)
        try:
            for name, content in (("ours", ours), ("base", base), ("theirs", theirs)):
                (work / name).write_bytes(content)
            args = ["merge-file", "-p", "-L", "current", "-L", "bad", "-L", "good"]
            if prefer_ours:
                args.append("--ours")
            out = await self.workspace.git.run(
                *args,
                str(work / "ours"),
                str(work / "base"),
                str(work / "theirs"),
                cwd=work,
                check=False,
                time_limit=self.workspace.local_timeout,
                redact=self.redact,
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if out.returncode < 0 or out.returncode > 127:
            raise GitError(GitFailure.FAILED, f"git merge-file failed: {out.stderr}")
        return out.stdout, out.returncode


def _publish(partial: Path, snapshots_dir: Path, sha: str) -> None:
    """Move a finished snapshot into place and drop the older ones."""
    for old in snapshots_dir.iterdir():
        if old.name != sha and not old.name.startswith("."):
            shutil.rmtree(old, ignore_errors=True)
    target = snapshots_dir / sha
    if target.exists():
        shutil.rmtree(partial, ignore_errors=True)
        return
    partial.rename(target)
