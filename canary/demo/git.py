"""The Git side of ``canary demo``: a local bare repository and a developer's clone of it.

The demo shows the whole GitOps loop, so releases must really be commits that a GitSource
fetches, and the rollback must really be a commit canary-engine pushes. This module keeps
a bare repository (the "server", refusing non-fast-forward pushes like a protected branch)
and a working clone where a demo developer commits each release and pushes it, and reads
the history back for the summary (``git log``, the revert commit's trailers).

Every git call runs as an asyncio subprocess with a private configuration (the user's
``~/.gitconfig`` and the system's are never read) and a fixed identity.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from canary.errors import CanaryError

__all__ = ["Commit", "DemoGitError", "DemoRepository"]

DEVELOPER = ("Demo Developer", "developer@demo.local")


class DemoGitError(CanaryError, RuntimeError):
    """A git command failed; the message has the command and git's own words."""


@dataclass(frozen=True, slots=True)
class Commit:
    sha: str
    subject: str
    author: str

    @property
    def short(self) -> str:
        return self.sha[:7]


class DemoRepository:
    """``<root>/demo.git`` (bare, branch ``main``) and ``<root>/work`` (a clone to commit in)."""

    def __init__(self, root: Path, *, author: tuple[str, str] = DEVELOPER) -> None:
        self.root = root
        self.bare = root / "demo.git"
        self.work = root / "work"
        self.author = author

    @property
    def url(self) -> str:
        return self.bare.resolve().as_uri()  # file:///...

    def _env(self) -> dict[str, str]:
        name, email = self.author
        home = self.root / ".home"
        home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(
            HOME=str(home),
            GIT_CONFIG_GLOBAL=os.devnull,
            GIT_CONFIG_NOSYSTEM="1",
            GIT_TERMINAL_PROMPT="0",
            GIT_AUTHOR_NAME=name,
            GIT_AUTHOR_EMAIL=email,
            GIT_COMMITTER_NAME=name,
            GIT_COMMITTER_EMAIL=email,
            LC_ALL="C",
        )
        return env

    async def git(self, *args: str, cwd: Path | None = None, timeout: float = 30.0) -> str:
        """Run ``git args`` (in the working clone by default); its stdout, or :class:`DemoGitError`."""
        proc = await asyncio.create_subprocess_exec(
            "git",
            *args,
            cwd=str(cwd or self.work),
            env=self._env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise DemoGitError(f"git {' '.join(args)}: timed out after {timeout:g}s") from None
        if proc.returncode != 0:
            raise DemoGitError(
                f"git {' '.join(args)} failed ({proc.returncode}): {err.decode(errors='replace').strip()}"
            )
        return out.decode(errors="replace")

    async def create(self, content: Path, message: str) -> Commit:
        """A new bare repository whose first commit holds the files under ``content``."""
        for path in (self.bare, self.work):
            if path.exists():
                shutil.rmtree(path)
        self.root.mkdir(parents=True, exist_ok=True)
        await self.git(
            "init", "--quiet", "--bare", "--initial-branch=main", str(self.bare), cwd=self.root
        )
        await self.git("config", "receive.denyNonFastForwards", "true", cwd=self.bare)
        await self.git("config", "receive.denyDeletes", "true", cwd=self.bare)
        await self.git("clone", "--quiet", self.url, str(self.work), cwd=self.root)
        await self.git("checkout", "--quiet", "-B", "main")
        shutil.copytree(content, self.work, dirs_exist_ok=True)
        return await self.commit_all(message)

    async def commit_all(self, message: str) -> Commit:
        """Commit every change in the working clone and push it (never forced)."""
        await self.git("add", "--all")
        await self.git("commit", "--quiet", "--no-verify", "--no-gpg-sign", "-m", message)
        await self.git("push", "--quiet", "origin", "HEAD:refs/heads/main")
        return await self.head()

    async def pull(self) -> None:
        """Bring the clone up to the server's branch (fast-forward only)."""
        await self.git("pull", "--quiet", "--ff-only", "origin", "main")

    async def edit(self, path: str, old: str, new: str) -> None:
        """Replace ``old`` with ``new`` in a file of the working clone (``old`` must be there)."""
        file = self.work / path
        text = file.read_text()
        if old not in text:
            raise DemoGitError(f"{path} does not contain {old!r}")
        file.write_text(text.replace(old, new))

    async def head(self, ref: str = "HEAD") -> Commit:
        return (await self.log(ref, limit=1))[0]

    async def log(self, ref: str = "main", *, limit: int | None = None) -> list[Commit]:
        """Commits of the server's ``ref``, newest first."""
        args = ["log", "--format=%H%x1f%s%x1f%an", *([f"-{limit}"] if limit else []), ref]
        out = await self.git(*args, cwd=self.bare if ref == "main" else self.work)
        commits = []
        for line in out.splitlines():
            sha, subject, author = [*line.split("\x1f"), "", ""][:3]
            commits.append(Commit(sha, subject, author))
        return commits

    async def oneline(self) -> str:
        """``git log --oneline`` of the server's ``main``."""
        return await self.git("log", "--oneline", "main", cwd=self.bare)

    async def trailers(self, sha: str) -> Mapping[str, list[str]]:
        """The trailers of a commit (``Canary-Bad-Revision`` -> [sha], ...)."""
        out = await self.git("log", "-1", "--format=%(trailers:only,unfold)", sha, cwd=self.bare)
        found: dict[str, list[str]] = {}
        for line in out.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                found.setdefault(key.strip(), []).append(value.strip())
        return found

    async def message(self, sha: str) -> str:
        return await self.git("log", "-1", "--format=%B", sha, cwd=self.bare)
