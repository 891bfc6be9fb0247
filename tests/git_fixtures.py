"""Real Git servers on loopback for tests: bare repositories, ``git daemon`` and smart HTTP.

Any test package can use these. Import the fixtures in a ``conftest.py``::

    from tests.git_fixtures import *  # noqa: F401,F403

* ``bare_repo(name, files)`` creates a bare repository (branch ``main``) with a first commit and
  returns a :class:`BareRepo`, which can commit more changes the way a developer would (a
  private clone, ``git push`` without force) and read history back.
* ``git_daemon`` serves every repository under the test's server root over ``git://`` with
  push enabled (``git daemon --enable=receive-pack``) on 127.0.0.1.
* ``git_http`` serves the same root over smart HTTP: a small threaded HTTP front on 127.0.0.1
  that checks credentials (``Authorization: Bearer <token>`` or basic auth) and runs
  ``git http-backend`` as a CGI for authorised requests (401 otherwise). It records every
  request so tests can check what reached the server. It accepts ``Bearer GIT_HTTP_TOKEN`` and
  basic auth ``tester`` / ``s3cret-Pa55word``; build a :class:`SmartHttpServer` yourself for
  other credentials (or none).
* ``BareRepo.many_commits(n, path)`` appends long histories cheaply (one ``git fast-import``).

All helpers use an isolated git configuration (the machine's global config is never read or
written) and a fixed test identity.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

__all__ = [
    "GIT_HTTP_TOKEN",
    "LOOPBACK",
    "TEST_AUTHOR",
    "BareRepo",
    "GitDaemon",
    "HttpRequestRecord",
    "SmartHttpServer",
    "bare_repo",
    "create_bare_repo",
    "free_port",
    "git_daemon",
    "git_env",
    "git_http",
    "git_server_root",
    "run_git",
]

LOOPBACK = "127.0.0.1"
TEST_AUTHOR = ("Dev Eloper", "dev@example.test")
GIT_TIMEOUT = 30


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": TEST_AUTHOR[0],
        "GIT_AUTHOR_EMAIL": TEST_AUTHOR[1],
        "GIT_COMMITTER_NAME": TEST_AUTHOR[0],
        "GIT_COMMITTER_EMAIL": TEST_AUTHOR[1],
    }
    env.update(extra or {})
    return env


def run_git(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """Run git synchronously for test setup; raise with git's stderr on failure."""
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=git_env(env),
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, *, deadline_s: float = 10.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    limit = time.monotonic() + deadline_s
    while time.monotonic() < limit:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.2):
            return
        time.sleep(0.02)  # polling a port that is not open yet; there is nothing to wait on
    raise RuntimeError(f"nothing listens on {LOOPBACK}:{port} after {deadline_s}s")


@dataclass
class BareRepo:
    """A bare repository on disk plus a private clone used to make commits like a developer."""

    path: Path
    branch: str = "main"
    _clone: Path | None = None
    _unpushed: bool = False

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def file_url(self) -> str:
        return self.path.as_uri()

    def _work(self) -> Path:
        if self._clone is None:
            self._clone = self.path.parent / f".{self.name}.work"
            if self._clone.exists():
                shutil.rmtree(self._clone)
            run_git("clone", "--quiet", "--branch", self.branch, str(self.path), str(self._clone))
        elif not self._unpushed:
            run_git("fetch", "--quiet", "origin", cwd=self._clone)
            run_git("merge", "--quiet", "--ff-only", f"origin/{self.branch}", cwd=self._clone)
        return self._clone

    def commit(
        self,
        files: Mapping[str, str | None],
        message: str,
        *,
        author: tuple[str, str] = TEST_AUTHOR,
        push: bool = True,
    ) -> str:
        """Write (or delete, for None) files, commit, push without force; return the sha.
        With ``push=False`` the commit stays in the private clone until a later commit pushes."""
        work = self._work()
        for rel, content in files.items():
            target = work / rel
            if content is None:
                run_git("rm", "--quiet", "-r", "--", rel, cwd=work)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content, encoding="utf-8")
                run_git("add", "--", rel, cwd=work)
        env = {
            "GIT_AUTHOR_NAME": author[0],
            "GIT_AUTHOR_EMAIL": author[1],
        }
        run_git("commit", "--quiet", "--allow-empty", "-m", message, cwd=work, env=env)
        sha = run_git("rev-parse", "HEAD", cwd=work).strip()
        if push:
            run_git("push", "--quiet", "origin", f"HEAD:refs/heads/{self.branch}", cwd=work)
        self._unpushed = not push
        return sha

    def install_hook(self, name: str, script: str) -> None:
        """A server-side hook (``pre-receive``, ``post-receive``, ...) of the bare repository,
        run by every push that reaches it (git daemon, smart HTTP or file://)."""
        hook = self.path / "hooks" / name
        hook.write_text(script, encoding="utf-8")
        hook.chmod(0o755)

    def remove_hook(self, name: str) -> None:
        (self.path / "hooks" / name).unlink(missing_ok=True)

    def protect(
        self,
        branch: str = "main",
        *,
        allow: str = TEST_AUTHOR[1],
        words: str = "error: GH006: Protected branch update failed for refs/heads/{branch}.",
    ) -> None:
        """Branch protection as forges enforce it: a pre-receive hook refuses updates of
        ``branch`` except commits committed by ``allow`` (an admin), with the forge's
        ``words`` (GitHub's GH006 by default)."""
        self.install_hook(
            "pre-receive",
            f"""#!/bin/sh
while read old new ref; do
  if [ "$ref" = "refs/heads/{branch}" ]; then
    who=$(git log -1 --format=%ce "$new")
    if [ "$who" != "{allow}" ]; then
      echo "{words.format(branch=branch)}" >&2
      echo "error: Changes must be made through a pull request." >&2
      exit 1
    fi
  fi
done
exit 0
""",
        )

    def branches(self) -> dict[str, str]:
        """Every branch of the bare repository and its commit."""
        out = run_git(
            "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads", cwd=self.path
        )
        return dict(line.split(" ", 1) for line in out.splitlines() if line.strip())

    def many_commits(self, count: int, path: str, *, subject: str = "history") -> str:
        """Append ``count`` commits that each rewrite ``path`` (one ``git fast-import`` run, so
        long histories are cheap) and push them; return the last sha."""
        work = self._work()
        name, email = TEST_AUTHOR
        chunks = []
        for i in range(count):
            message = f"{subject} {i}\n"
            content = f"{subject} {i}\n"
            chunks.append(
                f"commit refs/heads/{self.branch}\n"
                f"committer {name} <{email}> {1_700_000_000 + i} +0000\n"
                f"data {len(message)}\n{message}"
                + (f"from refs/heads/{self.branch}^0\n" if i == 0 else "")
                + f"M 100644 inline {path}\ndata {len(content)}\n{content}\n"
            )
        proc = subprocess.run(
            ["git", "fast-import", "--quiet", "--force"],
            cwd=work,
            env=git_env(),
            input="".join(chunks),
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"git fast-import failed: {proc.stderr}")
        run_git("checkout", "--quiet", self.branch, cwd=work)
        run_git("reset", "--quiet", "--hard", self.branch, cwd=work)
        run_git("push", "--quiet", "origin", f"HEAD:refs/heads/{self.branch}", cwd=work)
        self._unpushed = False
        return run_git("rev-parse", "HEAD", cwd=work).strip()

    def head(self) -> str:
        return run_git("rev-parse", f"refs/heads/{self.branch}", cwd=self.path).strip()

    def log(self) -> list[tuple[str, str]]:
        """(sha, subject) of every commit on the branch, newest first."""
        out = run_git("log", "--format=%H%x1f%s", self.branch, cwd=self.path)
        return [tuple(line.split("\x1f", 1)) for line in out.splitlines() if line]  # type: ignore[misc]

    def message(self, rev: str) -> str:
        return run_git("log", "-1", "--format=%B", rev, cwd=self.path)

    def trailers(self, rev: str) -> list[tuple[str, str]]:
        out = run_git("log", "-1", "--format=%(trailers:only,unfold)", rev, cwd=self.path)
        pairs = []
        for line in out.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                pairs.append((key.strip(), value.strip()))
        return pairs

    def show(self, rev: str, path: str) -> str | None:
        proc = subprocess.run(
            ["git", "show", f"{rev}:{path}"],
            cwd=self.path,
            env=git_env(),
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
        return proc.stdout if proc.returncode == 0 else None

    def all_commits(self) -> set[str]:
        """Every commit reachable from any ref of the bare repository."""
        out = run_git("rev-list", "--all", cwd=self.path)
        return set(out.split())

    def author_of(self, rev: str) -> tuple[str, str]:
        out = run_git("log", "-1", "--format=%an%x1f%ae", rev, cwd=self.path).strip()
        name, _, email = out.partition("\x1f")
        return name, email


def create_bare_repo(
    root: Path,
    name: str,
    files: Mapping[str, str],
    *,
    branch: str = "main",
    message: str = "initial",
) -> BareRepo:
    path = root / (name if name.endswith(".git") else f"{name}.git")
    run_git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(path))
    run_git("config", "http.receivepack", "true", cwd=path)
    run_git("config", "receive.denyNonFastForwards", "true", cwd=path)
    repo = BareRepo(path, branch)
    seed = root / f".{path.name}.seed"
    run_git("init", "--quiet", f"--initial-branch={branch}", str(seed))
    for rel, content in files.items():
        (seed / rel).parent.mkdir(parents=True, exist_ok=True)
        (seed / rel).write_text(content, encoding="utf-8")
    run_git("add", "--all", cwd=seed)
    run_git("commit", "--quiet", "--allow-empty", "-m", message, cwd=seed)
    run_git("push", "--quiet", str(path), f"HEAD:refs/heads/{branch}", cwd=seed)
    shutil.rmtree(seed)
    return repo


class GitDaemon:
    """``git daemon`` on 127.0.0.1 serving ``root`` with push enabled."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> GitDaemon:
        self.proc = subprocess.Popen(
            [
                "git",
                "daemon",
                f"--listen={LOOPBACK}",
                f"--port={self.port}",
                f"--base-path={self.root}",
                "--export-all",
                "--enable=receive-pack",
                "--reuseaddr",
                "--informative-errors",
                str(self.root),
            ],
            env=git_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, proc=self.proc)
        return self

    def url_for(self, repo: BareRepo) -> str:
        return f"git://{LOOPBACK}:{self.port}/{repo.path.relative_to(self.root).as_posix()}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@dataclass
class HttpRequestRecord:
    method: str
    path: str
    authorization: str | None
    status: int


@dataclass
class SmartHttpServer:
    """An HTTP front for ``git http-backend`` on 127.0.0.1 that requires credentials.

    ``tokens`` are accepted as ``Authorization: Bearer <token>``; ``users`` maps a user name to
    a password for basic auth (a token as the password works the same). With neither, every
    request is allowed.
    """

    root: Path
    tokens: set[str] = field(default_factory=set)
    users: dict[str, str] = field(default_factory=dict)
    requests: list[HttpRequestRecord] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url_for(self, repo: BareRepo) -> str:
        return f"http://{LOOPBACK}:{self.port}/git/{repo.path.relative_to(self.root).as_posix()}"

    def authorised(self, header: str | None) -> bool:
        if not self.tokens and not self.users:
            return True
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip() in self.tokens
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return self.users.get(user) == password or password in self.tokens
        return False

    def start(self) -> SmartHttpServer:
        server = ThreadingHTTPServer((LOOPBACK, 0), _make_handler(self))
        server.daemon_threads = True
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="git-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def record(self, entry: HttpRequestRecord) -> None:
        with self._lock:
            self.requests.append(entry)


def _make_handler(front: SmartHttpServer) -> type[BaseHTTPRequestHandler]:
    backend = Path(run_git("--exec-path").strip()) / "git-http-backend"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return  # keep test output clean

        def do_GET(self) -> None:
            self.serve()

        def do_POST(self) -> None:
            self.serve()

        def read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def serve(self) -> None:
            auth = self.headers.get("Authorization")
            body = self.read_body()
            path, _, query = self.path.partition("?")
            if not front.authorised(auth):
                front.record(HttpRequestRecord(self.command, self.path, auth, 401))
                self.reply(
                    401,
                    [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Type", "text/plain")],
                    b"authentication required\n",
                )
                return
            if not path.startswith("/git/"):
                front.record(HttpRequestRecord(self.command, self.path, auth, 404))
                self.reply(404, [("Content-Type", "text/plain")], b"not found\n")
                return
            env = {
                "PATH": os.environ.get("PATH", os.defpath),
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": os.devnull,
                "GIT_PROJECT_ROOT": str(front.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "GATEWAY_INTERFACE": "CGI/1.1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path[len("/git") :],
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_ADDR": LOOPBACK,
                "REMOTE_USER": "tester",
                "SERVER_PROTOCOL": "HTTP/1.1",
            }
            if self.headers.get("Content-Encoding"):
                env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
            if self.headers.get("Git-Protocol"):
                env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
            proc = subprocess.run(
                [str(backend)],
                input=body,
                env=env,
                capture_output=True,
                timeout=GIT_TIMEOUT,
                check=False,
            )
            head, sep, payload = proc.stdout.partition(b"\r\n\r\n")
            if not sep:
                head, sep, payload = proc.stdout.partition(b"\n\n")
            status = 200
            headers: list[tuple[str, str]] = []
            for line in head.decode("latin-1").splitlines():
                key, _, value = line.partition(":")
                if key.lower() == "status":
                    status = int(value.strip().split()[0])
                elif key:
                    headers.append((key.strip(), value.strip()))
            front.record(HttpRequestRecord(self.command, self.path, auth, status))
            self.reply(status, headers, payload)

    return Handler


# -- pytest fixtures -----------------------------------------------------------------------


@pytest.fixture
def git_server_root(tmp_path: Path) -> Path:
    root = tmp_path / "srv"
    root.mkdir()
    return root


@pytest.fixture
def bare_repo(git_server_root: Path) -> Callable[..., BareRepo]:
    """Factory: ``bare_repo("app", {"deploy/app.yaml": "..."})`` → :class:`BareRepo`."""

    def make(name: str, files: Mapping[str, str], *, branch: str = "main") -> BareRepo:
        return create_bare_repo(git_server_root, name, files, branch=branch)

    return make


@pytest.fixture
def git_daemon(git_server_root: Path) -> Iterator[GitDaemon]:
    daemon = GitDaemon(git_server_root).start()
    try:
        yield daemon
    finally:
        daemon.stop()


GIT_HTTP_TOKEN = "tok-3f9c2a71d4e8b6a0c5f1e2d3"


@pytest.fixture
def git_http(git_server_root: Path) -> Iterator[SmartHttpServer]:
    """Smart HTTP that accepts ``Authorization: Bearer GIT_HTTP_TOKEN`` and basic auth as
    ``tester`` / ``s3cret-Pa55word``."""
    server = SmartHttpServer(
        git_server_root, tokens={GIT_HTTP_TOKEN}, users={"tester": "s3cret-Pa55word"}
    ).start()
    try:
        yield server
    finally:
        server.stop()
