"""The git runner: timeouts that kill, error classification, input checks, the push guard."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import time
from pathlib import Path

import pytest

from canary.adapters.gitops import (
    Git,
    GitError,
    GitFailure,
    GitRepository,
    GitRevertRequest,
    PushRetryPolicy,
    Reverter,
    RevertFailed,
    Workspace,
)
from canary.adapters.gitops.git import check_branch, check_relative_path, check_url, classify


def process_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return "gone"


def process_gone(pid: int, deadline_s: float = 5.0) -> bool:
    """True once the process is dead (reaped or a zombie). SIGKILL has been sent by then;
    this only waits for the kernel to finish it, up to a deadline."""
    limit = time.monotonic() + deadline_s
    while process_state(pid) not in ("gone", "Z", "X"):
        if time.monotonic() > limit:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def hanging_git(tmp_path: Path) -> tuple[Path, Path]:
    """A fake git that starts a grandchild and hangs; returns (binary, pid file)."""
    pid_file = tmp_path / "child.pid"
    os.mkfifo(pid_file)  # opening it for writing blocks until the test reads
    script = tmp_path / "fake-git"
    script.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {pid_file}\nwait\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, pid_file


class TestTimeouts:
    async def test_a_call_over_its_limit_is_killed_with_its_children(
        self, hanging_git: tuple[Path, Path]
    ) -> None:
        binary, pid_file = hanging_git

        started = asyncio.create_task(asyncio.to_thread(pid_file.read_text))
        with pytest.raises(GitError) as info:
            await Git(binary=str(binary)).run("fetch", "origin", time_limit=1.0)
        child = int(await started)

        assert info.value.kind is GitFailure.TIMEOUT
        assert info.value.retriable
        assert "fetch origin did not finish within 1s" in str(info.value)
        assert process_gone(child)

    async def test_cancelling_the_caller_kills_the_process(
        self, hanging_git: tuple[Path, Path]
    ) -> None:
        binary, pid_file = hanging_git
        task = asyncio.create_task(Git(binary=str(binary)).run("fetch", time_limit=60))
        async with asyncio.timeout(10):
            child = int(await asyncio.to_thread(pid_file.read_text))  # the child is running

        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        assert process_gone(child)

    async def test_remote_that_never_answers_gives_a_retriable_revert_failure(
        self, tmp_path: Path
    ) -> None:
        with silent_server() as port:
            reverter = Reverter(
                Workspace(tmp_path / "cache", network_timeout=0.5),
                retry=PushRetryPolicy(attempts=1),
            )
            result = await reverter.revert(
                GitRevertRequest(
                    GitRepository(f"git://127.0.0.1:{port}/app.git"),
                    ("a.yaml",),
                    "a" * 40,
                    "b" * 40,
                    "test/podinfo",
                )
            )
        assert isinstance(result, RevertFailed)
        assert result.retriable
        assert "did not finish within 0.5s" in result.reason


def silent_server() -> _SilentServer:
    return _SilentServer()


class _SilentServer:
    """A loopback socket that completes TCP handshakes (backlog) but never says a word."""

    def __enter__(self) -> int:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


class TestClassification:
    @pytest.mark.parametrize(
        ("stderr", "kind"),
        [
            (" ! [rejected]        main -> main (fetch first)", GitFailure.REJECTED),
            (" ! [remote rejected] main -> main (non-fast-forward)", GitFailure.REJECTED),
            ("fatal: Authentication failed for 'https://x/'", GitFailure.AUTH),
            (
                "fatal: could not read Username for 'http://x': terminal prompts disabled",
                GitFailure.AUTH,
            ),
            (
                "git@x: Permission denied (publickey).\nfatal: Could not read from remote repository.",
                GitFailure.AUTH,
            ),
            (
                "fatal: unable to access 'http://x/': Failed to connect to 127.0.0.1 port 1",
                GitFailure.UNREACHABLE,
            ),
            (
                "fatal: unable to connect to 127.0.0.1:\n127.0.0.1[0: 127.0.0.1]: errno=Connection refused",
                GitFailure.UNREACHABLE,
            ),
            ("fatal: couldn't find remote ref refs/heads/nope", GitFailure.NOT_FOUND),
            ("fatal: something odd", GitFailure.FAILED),
        ],
    )
    def test_messages_map_to_kinds(self, stderr: str, kind: GitFailure) -> None:
        assert classify(stderr) is kind

    async def test_real_failure_carries_gits_own_words(self, tmp_path: Path) -> None:
        with pytest.raises(GitError) as info:
            await Git().run("rev-parse", "--verify", "nope", cwd=tmp_path)
        assert info.value.kind is GitFailure.FAILED
        assert "git rev-parse nope failed: fatal: not a git repository" in str(info.value)


class TestInputChecks:
    @pytest.mark.parametrize(
        "url",
        [
            "--upload-pack=touch /tmp/pwned",
            "ext::sh -c touch% /tmp/pwned",
            "ftp://example.test/app.git",
            "https://me:hunter2-pw@example.test/app.git",
            "relative/path",
            "",
        ],
    )
    def test_urls_git_must_not_see(self, url: str) -> None:
        with pytest.raises(GitError) as info:
            check_url(url)
        assert info.value.kind is GitFailure.INVALID
        assert "hunter2-pw" not in str(info.value)

    @pytest.mark.parametrize(
        "url",
        [
            "https://example.test/org/app.git",
            "ssh://git@example.test:2222/org/app.git",
            "git@example.test:org/app.git",
            "git://127.0.0.1:9418/app.git",
            "file:///srv/git/app.git",
            "/srv/git/app.git",
        ],
    )
    def test_supported_urls(self, url: str) -> None:
        assert check_url(url) == url

    @pytest.mark.parametrize("branch", ["-b", "a..b", "a b", "x.lock", "a/", "@", "x~1", "a:b", ""])
    def test_bad_branches(self, branch: str) -> None:
        with pytest.raises(GitError):
            check_branch(branch)

    def test_paths_are_normalised_and_kept_inside(self) -> None:
        assert check_relative_path("./deploy//app.yaml") == "deploy/app.yaml"
        assert check_relative_path(".") == ""
        for bad in ("../x", "a/../../x", "/etc/passwd", "-x", ".git/config"):
            with pytest.raises(GitError):
                check_relative_path(bad)


class TestPushGuard:
    @pytest.mark.parametrize(
        "args",
        [
            ("push", "--force", "origin", "main"),
            ("push", "-f", "origin", "main"),
            ("push", "--force-with-lease=main:abc", "origin", "main"),
            ("push", "origin", "+HEAD:refs/heads/main"),
            ("push", "origin", ":refs/heads/main"),
            ("push", "--delete", "origin", "main"),
            ("push", "--mirror", "origin"),
            # as the working copy calls it: its --git-dir comes before the subcommand
            ("--git-dir", "/cache/repo.git", "push", "--force", "origin", "main"),
            ("--git-dir", "/cache/repo.git", "push", "origin", "+abc:refs/heads/main"),
        ],
    )
    async def test_history_rewriting_pushes_are_refused_before_starting_git(
        self, args: tuple[str, ...], tmp_path: Path
    ) -> None:
        marker = tmp_path / "ran"
        script = tmp_path / "git"
        script.write_text(f"#!/bin/sh\ntouch {marker}\n")
        script.chmod(0o755)
        with pytest.raises(GitError) as info:
            await Git(binary=str(script)).run(*args)
        assert info.value.kind is GitFailure.INVALID
        assert not marker.exists()


class TestEnvironment:
    def test_user_config_and_prompts_are_shut_out(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("GIT_DIR", "/somewhere/else")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "should-not-leak")
        env = Git().base_environment()
        assert env["GIT_TERMINAL_PROMPT"] == "0"
        assert env["GIT_CONFIG_GLOBAL"] == os.devnull
        assert env["GIT_CONFIG_NOSYSTEM"] == "1"
        assert env["GIT_ALLOW_PROTOCOL"] == "file:git:http:https:ssh"
        assert "GIT_DIR" not in env and "AWS_SECRET_ACCESS_KEY" not in env
