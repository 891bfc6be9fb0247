"""The only place that starts a git process.

Every git call of the GitOps adapters goes through :class:`Git.run`: ``asyncio`` subprocesses
(never a blocking call in the event loop), a timeout on every call (the whole process group is
killed when it expires or when the caller is cancelled), a fixed environment (no terminal
prompts, no user or system git config, C locale so messages can be classified), and every text
that leaves (stdout, stderr, error messages, debug logs) passed through the caller's
:class:`~canary.adapters.redaction.Redactor`.

Push safety is enforced here as well as by review: :class:`Git` refuses to run a ``push`` that
could rewrite published history (a force flag, a ``+`` refspec, a deletion or a mirror push).

Exception tree::

    GitError                 kind tells what happened; message is already redacted
      kind=UNREACHABLE       DNS, refused connection, HTTP 5xx, ssh could not connect (retriable)
      kind=TIMEOUT           the call exceeded its timeout and was killed (retriable)
      kind=AUTH              401/403, bad key, missing credentials (fix the Secret)
      kind=REJECTED          push rejected because the branch moved (fetch and rebuild)
      kind=DECLINED          push refused by the server's rules: a protected branch, a
                             pre-receive hook (the message carries the server's words)
      kind=NOT_FOUND         no such repository or branch
      kind=INVALID           bad input refused before any process started
      kind=FAILED            anything else
"""

from __future__ import annotations

import enum
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from canary.adapters.process import ProcessNotFound, ProcessTimeout, run_process
from canary.adapters.redaction import Redactor
from canary.errors import ClassifiedError

__all__ = [
    "DEFAULT_TIMEOUT",
    "Git",
    "GitError",
    "GitFailure",
    "GitOutput",
    "check_branch",
    "check_relative_path",
    "check_revision",
    "check_url",
]

logger = logging.getLogger("canary.adapters.gitops.git")

DEFAULT_TIMEOUT = 60.0

#: Protocols git may use. ``ext::`` and friends (which run commands) are never allowed.
ALLOWED_PROTOCOLS = "file:git:http:https:ssh"

#: Environment variables passed through to git (proxies, CA bundles, temp dir); nothing else.
_PASSTHROUGH_ENV = (
    "PATH",
    "HOME",
    "TMPDIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
)

# Options that would let a push overwrite or delete published history. The only place these
# strings appear in the package (with _FORCED_REFSPEC): tests/gitops/test_no_force.py checks that.
_FORBIDDEN_PUSH_FLAGS = frozenset(
    {
        "-f",
        "--force",
        "--force-with-lease",
        "--force-if-includes",
        "--mirror",
        "-d",
        "--delete",
        "--prune",
        "--all",
    }
)


# A refspec starting with this character updates the destination even when it is not a
# fast-forward. Refused by the same guard.
_FORCED_REFSPEC = "+"


class GitFailure(enum.Enum):
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    AUTH = "auth"
    REJECTED = "rejected"
    DECLINED = "declined"
    NOT_FOUND = "not-found"
    INVALID = "invalid"
    FAILED = "failed"

    @property
    def retriable(self) -> bool:
        """True when the same call may succeed later without anyone fixing anything."""
        return self in (GitFailure.UNREACHABLE, GitFailure.TIMEOUT, GitFailure.REJECTED)


class GitError(ClassifiedError[GitFailure]):
    """A git call failed. ``str(error)`` is redacted and safe to log or show."""

    def __init__(self, kind: GitFailure, message: str, *, returncode: int | None = None) -> None:
        super().__init__(kind, message)
        self.returncode = returncode


@dataclass(frozen=True, slots=True)
class GitOutput:
    """The result of one git call. ``stdout`` is raw bytes; ``stderr`` is redacted text."""

    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")


_CLASSIFIERS: tuple[tuple[GitFailure, re.Pattern[str]], ...] = (
    (
        GitFailure.REJECTED,
        re.compile(
            r"\[rejected\]|\(fetch first\)|non-fast-forward|\[remote rejected\].*(?:non-fast-forward|"
            r"cannot lock ref|failed to update ref)|Updates were rejected",
            re.I,
        ),
    ),
    (
        GitFailure.DECLINED,
        re.compile(
            r"\[remote rejected\]|hook declined|protected branch|GH006|"
            r"not allowed to (?:push|force push)|pre-receive hook",
            re.I,
        ),
    ),
    (
        GitFailure.AUTH,
        re.compile(
            r"Authentication failed|returned error: 40[13]|could not read (?:Username|Password)|"
            r"terminal prompts disabled|Permission denied \(|Host key verification failed|"
            r"invalid credentials|HTTP Basic: Access denied|access denied",
            re.I,
        ),
    ),
    (
        GitFailure.NOT_FOUND,
        re.compile(
            r"couldn't find remote ref|does not appear to be a git repository|"
            r"repository '.*' not found|returned error: 404|No such file or directory|"
            r"Remote branch .* not found|not a valid repository name|unable to find remote helper",
            re.I,
        ),
    ),
    (
        GitFailure.UNREACHABLE,
        re.compile(
            r"Could not resolve host|Connection refused|Failed to connect|unable to connect|"
            r"Connection timed out|Operation timed out|Connection reset|Network is unreachable|"
            r"No route to host|returned error: 5\d\d|Could not read from remote repository|"
            r"the remote end hung up|early EOF|SSL|TLS|Empty reply from server|"
            r"ssh: connect to host|Temporary failure in name resolution",
            re.I,
        ),
    ),
)


def classify(stderr: str) -> GitFailure:
    for kind, pattern in _CLASSIFIERS:
        if pattern.search(stderr):
            return kind
    return GitFailure.FAILED


_SHA_RE = re.compile(r"^[0-9a-f]{7,64}$")


def check_revision(rev: str, *, what: str = "revision") -> str:
    """A commit id in hex (7 to 64 digits), lower-cased. Anything else is refused, so a value
    from a status field can never become a git option or a revision expression."""
    text = rev.strip().lower()
    if not _SHA_RE.match(text):
        raise GitError(GitFailure.INVALID, f"{what}: expected a hexadecimal commit id, got {rev!r}")
    return text


_BAD_BRANCH = re.compile(
    r"(^[-/.])|(\.\.)|([\x00-\x20~^:?*\[\\\x7f])|(@\{)|(/$)|(\.lock$)|(//)|(\.$)"
)


def check_branch(branch: str) -> str:
    if not branch or _BAD_BRANCH.search(branch) or branch == "@":
        raise GitError(GitFailure.INVALID, f"branch: expected a valid branch name, got {branch!r}")
    return branch


def check_relative_path(path: str, *, what: str = "path") -> str:
    """A repository-relative POSIX path without ``..``; ``""`` or ``"."`` means the root."""
    text = path.strip().replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    text = text.strip("/") if text not in ("", ".") else ""
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if (
        any(p == ".." for p in parts)
        or path.startswith("/")
        or (parts and parts[0].startswith("-"))
    ):
        raise GitError(
            GitFailure.INVALID,
            f"{what}: expected a path inside the repository, got {path!r}",
        )
    if parts and parts[0] == ".git":
        raise GitError(GitFailure.INVALID, f"{what}: {path!r} is inside .git")
    return "/".join(parts)


def check_url(url: str) -> str:
    """Refuse URLs git must not see: options, unknown transports, and embedded passwords."""
    text = url.strip()
    if not text or text.startswith("-") or any(c in text for c in "\x00\n\r"):
        raise GitError(GitFailure.INVALID, f"url: expected a repository URL, got {url!r}")
    if "://" in text:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in ("file", "git", "http", "https", "ssh", "git+ssh", "ssh+git"):
            raise GitError(
                GitFailure.INVALID,
                f"url: scheme {scheme!r} is not supported (expected file, git, http, https or ssh)",
            )
        if parts.password is not None:
            raise GitError(
                GitFailure.INVALID,
                "url: contains a password; put credentials in the Secret named by "
                "secretRef, never in the URL",
            )
        return text
    if text.startswith("/") or re.match(r"^[\w.-]+@[\w.-]+:", text) or re.match(r"^[\w.-]+:", text):
        if "::" in text:
            raise GitError(GitFailure.INVALID, f"url: transport syntax is not supported: {url!r}")
        return text
    raise GitError(GitFailure.INVALID, f"url: expected a repository URL, got {url!r}")


def _check_push(args: Sequence[str]) -> None:
    rest = list(args)
    while rest and rest[0] in ("--git-dir", "-C", "--work-tree"):
        rest = rest[2:]  # the working copy's own options come first (WorkingCopy.git)
    if not rest or rest[0] != "push":
        return
    for arg in rest[1:]:
        flag = arg.split("=", 1)[0]
        if (
            flag in _FORBIDDEN_PUSH_FLAGS
            or arg.startswith(_FORCED_REFSPEC)
            or (f":{_FORCED_REFSPEC}" in arg)
        ):
            raise GitError(
                GitFailure.INVALID,
                f"refusing to run git push with {arg!r}: published history is never rewritten",
            )
        if arg.startswith(":"):
            raise GitError(GitFailure.INVALID, f"refusing to delete a remote ref with {arg!r}")


class Git:
    """Runs the git CLI. One instance can be shared by every repository and task.

    ``isolate_config`` (the default) hides the user's and the system's git config, so settings
    such as ``commit.gpgsign`` or ``pull.rebase`` cannot change what the controller does.
    """

    def __init__(
        self,
        *,
        binary: str = "git",
        timeout: float = DEFAULT_TIMEOUT,
        isolate_config: bool = True,
    ) -> None:
        self.binary = binary
        self.timeout = timeout
        self.isolate_config = isolate_config

    def base_environment(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in _PASSTHROUGH_ENV if k in os.environ}
        env.setdefault("PATH", os.defpath)
        env.update(
            {
                "LC_ALL": "C",
                "LANG": "C",
                "GIT_TERMINAL_PROMPT": "0",
                "GCM_INTERACTIVE": "never",
                "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS,
                "GIT_PROTOCOL_FROM_USER": "0",
                "GIT_OPTIONAL_LOCKS": "0",
                # Paths are file names, never glob patterns or pathspec magic.
                "GIT_LITERAL_PATHSPECS": "1",
            }
        )
        if self.isolate_config:
            env["GIT_CONFIG_NOSYSTEM"] = "1"
            env["GIT_CONFIG_GLOBAL"] = os.devnull
        return env

    async def run(
        self,
        *args: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
        time_limit: float | None = None,
        check: bool = True,
        redact: Redactor | None = None,
        config: Mapping[str, str] | None = None,
    ) -> GitOutput:
        """Run ``git <config -c pairs> <args>``; raise :class:`GitError` on failure when
        ``check`` is true (the default). ``env`` is added to the fixed base environment."""
        redactor = redact or Redactor()
        _check_push(args)
        limit = self.timeout if time_limit is None else time_limit
        argv: list[str] = [self.binary]
        for key, value in (config or {}).items():
            argv += ["-c", f"{key}={value}"]
        argv += list(args)
        full_env = self.base_environment()
        if env:
            full_env.update(env)
        shown = redactor(_describe_call(args))
        logger.debug("git %s (cwd=%s, timeout=%ss)", shown, cwd, limit)
        try:
            out = await run_process(argv, env=full_env, time_limit=limit, cwd=cwd, input=input)
        except ProcessTimeout:
            raise GitError(
                GitFailure.TIMEOUT, f"git {shown} did not finish within {limit:g}s and was stopped"
            ) from None
        except ProcessNotFound as exc:
            raise GitError(
                GitFailure.FAILED,
                f"cannot run git: {self.binary!r} or the directory {str(cwd)!r} does not exist",
            ) from exc
        stdout, stderr_b = out.stdout, out.stderr
        stderr = redactor(stderr_b.decode("utf-8", errors="replace")).strip()
        returncode = out.returncode
        result = GitOutput(tuple(args), returncode, stdout, stderr)
        if returncode != 0 and check:
            # A push with --porcelain writes its per-ref verdicts ("[remote rejected] ...
            # (pre-receive hook declined)") to stdout; they classify the failure too.
            said = stderr
            if _subcommand(args) == "push":
                said = f"{stderr}\n{redactor(stdout.decode('utf-8', 'replace'))}".strip()
            kind = classify(said)
            detail = _last_lines(stderr) or f"exit status {returncode}"
            if kind is GitFailure.DECLINED:
                detail = _server_words(said) or detail
            raise GitError(kind, f"git {shown} failed: {detail}", returncode=returncode)
        return result


def _subcommand(args: Sequence[str]) -> str:
    rest = list(args)
    while rest and rest[0] in ("--git-dir", "-C", "--work-tree"):
        rest = rest[2:]
    return rest[0] if rest else ""


def _describe_call(args: Sequence[str]) -> str:
    """The subcommand and its first argument, without the ``--git-dir <path>`` prefix."""
    rest = list(args)
    while rest and rest[0] in ("--git-dir", "-C", "--work-tree"):
        rest = rest[2:]
    words = [rest[0]] if rest else []
    words += [a for a in rest[1:] if not a.startswith("-")][:1]
    return " ".join(words)


def _server_words(text: str) -> str:
    """What the server said about a refused push: its ``remote:`` lines and the refusal."""
    lines = [
        line.strip().removeprefix("remote:").strip().replace("\t", " ")
        for line in text.splitlines()
        if line.strip().startswith("remote:") or "[remote rejected]" in line
    ]
    return "; ".join(line for line in lines if line)[:1000]


def _last_lines(text: str, count: int = 4) -> str:
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("hint:")
    ]
    return "; ".join(lines[-count:])
