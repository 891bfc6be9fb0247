"""Revert a failed canary's change in Git, so the reconciler converges to the last good version.

After a failed run the traffic is already back on the primary; this module makes Git agree.
It finds the part of the change between the last good and the bad revision that made the
target what it is (:mod:`.attribution`: render both revisions as the owner renders them and
keep every part of the bad change that leaves the target alone — an overlay's ``images:``
line, a patch, a base manifest, a values file), and reverse-applies exactly that onto the
*current* branch head with a 3-way merge. Unrelated changes, in the same files or elsewhere,
survive; files created after the good revision are deleted and deleted ones restored. The
commit is pushed without force; when the push is rejected because the branch moved,
everything is recomputed from the new head.

The work splits in three:

* gather (I/O): fetch, deepen the shallow history as needed, attribute the change, read the
  files at head, run ``git merge-file`` where both sides changed, list the commits
  involved, and look for an earlier revert commit with our trailers -> :class:`RevertFacts`;
* plan (pure): :func:`plan_revert` decides Reverted / AlreadyReverted / Superseded /
  Unresolved / RevertFailed and builds the commit message (:func:`revert_message`);
* execute (I/O): write the tree with a private index, ``commit-tree``, then either push to
  the branch, or (pull-request mode, :class:`PullRequestSettings`) push a side branch and
  open a pull request through the forge's API (:mod:`.forges`).

Restart safety: a revert commit carries the trailers ``Canary: <ns>/<name>`` and
``Canary-Bad-Revision: <sha>``; finding one after the bad revision means the job is done
(:class:`AlreadyReverted`), so a controller killed between the push and its status update
never makes a second commit — including a push that died after reaching the server. Files
already equal to the good revision also count as done. In pull-request mode the side branch
and the pull request are found again by name.

Results never contain a credential: every message passes through the repository's redactor.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from canary.adapters.gitops.attribution import Attribution, Unattributable, attribute
from canary.adapters.gitops.credentials import redactor_for
from canary.adapters.gitops.forges import (
    ForgeClient,
    ForgeError,
    ForgeTarget,
    NewPullRequest,
    PullRequest,
)
from canary.adapters.gitops.git import (
    GitError,
    GitFailure,
    check_relative_path,
    check_revision,
)
from canary.adapters.gitops.kustomize import Kustomize
from canary.adapters.gitops.subjects import Subject
from canary.adapters.gitops.workspace import BlobEntry, GitRepository, WorkingCopy, Workspace
from canary.adapters.redaction import Redactor

__all__ = [
    "DEFAULT_IDENTITY",
    "TRAILER_BAD",
    "TRAILER_CANARY",
    "TRAILER_GOOD",
    "TRAILER_REVERTS",
    "AlreadyReverted",
    "CommitIdentity",
    "FileState",
    "GitRevertRequest",
    "PlannedRevert",
    "Proposed",
    "PullRequestSettings",
    "PushRetryPolicy",
    "RevertFacts",
    "RevertFailed",
    "RevertResult",
    "Reverted",
    "Reverter",
    "Superseded",
    "UndoneCommit",
    "Unresolved",
    "plan_revert",
    "revert_branch",
    "revert_message",
]

logger = logging.getLogger("canary.adapters.gitops.revert")

TRAILER_CANARY = "Canary"
TRAILER_REVERTS = "Canary-Reverts"
TRAILER_GOOD = "Canary-Good-Revision"
TRAILER_BAD = "Canary-Bad-Revision"

_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class CommitIdentity:
    """Author and committer of revert commits."""

    name: str = "canary-engine"
    email: str = "canary-engine@users.noreply.local"

    def validated(self, where: str = "commitAuthor") -> CommitIdentity:
        for key, value in (("name", self.name), ("email", self.email)):
            if not value.strip() or any(c in value for c in "<>\n\r\x00"):
                raise ValueError(
                    f"{where}.{key}: expected a single line without '<' or '>', got {value!r}"
                )
        if "@" not in self.email:
            raise ValueError(f"{where}.email: expected an e-mail address, got {self.email!r}")
        return self


DEFAULT_IDENTITY = CommitIdentity()


@dataclass(frozen=True, slots=True)
class PullRequestSettings:
    """Pull-request mode: where the forge is, and how to authenticate to its API."""

    forge: ForgeTarget
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    branch_prefix: str = "canary-engine/revert"


def revert_branch(canary: str, bad_revision: str, prefix: str = "canary-engine/revert") -> str:
    """The side branch of a revert: named after the canary and the bad revision."""
    namespace, _, name = canary.partition("/")
    return f"{prefix}/{namespace}/{name}/{bad_revision[:12]}"


@dataclass(frozen=True, slots=True)
class GitRevertRequest:
    """What to revert, where, and why.

    ``subject`` says how the owner makes the target from the repository (rendering a path,
    a HelmRelease, an Argo CD Application; :mod:`.subjects`): the reverter restores exactly
    the part of the change that altered it. ``files`` are repository-relative files or
    directories whose changes are always restored whole (``spec.gitops.paths``); with no
    subject, only they are. ``reason`` lines say why the canary failed, e.g.
    ``"request-success-rate 91.2% < 99% (5 failed checks, threshold 5)"``. ``target`` names
    the workload in the commit subject (defaults to the canary's name). ``pull_request``
    selects pull-request mode.
    """

    repository: GitRepository
    files: tuple[str, ...] = ()
    good_revision: str = ""
    bad_revision: str = ""
    canary: str = ""
    reason: tuple[str, ...] = ()
    target: str | None = None
    author: CommitIdentity = DEFAULT_IDENTITY
    subject: Subject | None = None
    pull_request: PullRequestSettings | None = None

    def validated(self) -> GitRevertRequest:
        """Normalise and check every field; raise ValueError or GitError naming the field."""
        self.repository.validated()
        namespace, sep, name = self.canary.partition("/")
        if not sep or not _NAME_RE.match(namespace) or not _NAME_RE.match(name):
            raise ValueError(f"canary: expected '<namespace>/<name>', got {self.canary!r}")
        if not self.files and self.subject is None:
            raise ValueError("files: expected a subject or at least one repository-relative file")
        files = tuple(
            dict.fromkeys(
                check_relative_path(f, what=f"files[{i}]") for i, f in enumerate(self.files)
            )
        )
        if "" in files:
            raise ValueError("files: the repository root is not a file")
        target = self.target or name
        if not re.match(r"^[\w.-]{1,253}$", target):
            raise ValueError(f"target: expected an object name, got {self.target!r}")
        return replace(
            self,
            files=files,
            good_revision=check_revision(self.good_revision, what="good revision"),
            bad_revision=check_revision(self.bad_revision, what="bad revision"),
            reason=tuple(_one_line(r) for r in self.reason if _one_line(r)),
            target=target,
            author=self.author.validated(),
        )


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:500]


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UndoneCommit:
    sha: str
    subject: str


@dataclass(frozen=True, slots=True)
class Reverted:
    """A revert commit was pushed to the branch."""

    commit_sha: str
    reverted_commits: tuple[UndoneCommit, ...]
    files: tuple[str, ...] = ()
    attempts: int = 1
    kind: Literal["Reverted"] = "Reverted"


@dataclass(frozen=True, slots=True)
class Proposed:
    """Pull-request mode: the revert commit is on ``branch`` and the pull request at ``url``
    is open; the branch itself is unchanged until someone merges it."""

    commit_sha: str
    url: str
    branch: str
    files: tuple[str, ...] = ()
    created: bool = True
    kind: Literal["Proposed"] = "Proposed"


@dataclass(frozen=True, slots=True)
class AlreadyReverted:
    """Git already holds the revert: our commit (``commit_sha``) or equal content (None).
    ``url`` is the merged pull request, in pull-request mode."""

    commit_sha: str | None
    url: str = ""
    kind: Literal["AlreadyReverted"] = "AlreadyReverted"


@dataclass(frozen=True, slots=True)
class Superseded:
    """The target's files changed again after the bad revision on the same lines (for
    example someone committed a fix); reverting would undo that, so nothing was done."""

    reason: str
    newer_commits: tuple[UndoneCommit, ...]
    kind: Literal["Superseded"] = "Superseded"


@dataclass(frozen=True, slots=True)
class Unresolved:
    """The change that made the target bad cannot be isolated in Git (``reason`` says why,
    ``files`` where), or a person declined the revert's pull request. Nothing was
    committed; a person has to act."""

    reason: str
    files: tuple[str, ...] = ()
    url: str = ""
    kind: Literal["Unresolved"] = "Unresolved"


@dataclass(frozen=True, slots=True)
class RevertFailed:
    """The revert could not be made now. ``retriable``: trying again later may succeed
    without anyone changing Git (remote unreachable or refusing the credentials, a push
    whose outcome is unknown, the branch kept moving); False means a person has to act (a
    conflict, a protected branch in push mode, a wrong revision)."""

    reason: str
    retriable: bool
    files: tuple[str, ...] = ()
    kind: Literal["RevertFailed"] = "RevertFailed"


RevertResult = Reverted | Proposed | AlreadyReverted | Superseded | Unresolved | RevertFailed


# -- facts and the pure plan ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileState:
    """One file at the good, bad and current head revisions (None: absent), plus the 3-way
    merge outcome when both sides changed it."""

    path: str
    good: bytes | None
    bad: bytes | None
    head: bytes | None
    good_mode: str = "100644"
    head_mode: str = "100644"
    merged: bytes | None = None
    conflicts: int = 0
    merged_ours: bytes | None = None


def needs_text_merge(good: bytes | None, bad: bytes | None, head: bytes | None) -> bool:
    return (
        good != bad
        and head != good
        and head != bad
        and good is not None
        and bad is not None
        and head is not None
    )


@dataclass(frozen=True, slots=True)
class RevertFacts:
    """Everything :func:`plan_revert` needs, gathered from one working copy at one head."""

    head: str
    good: str
    bad: str
    files: tuple[FileState, ...]
    undone: tuple[UndoneCommit, ...]
    newer: tuple[UndoneCommit, ...]
    previous_revert: str | None = None
    notes: Mapping[str, str] = field(default_factory=dict)  # path -> what is restored


@dataclass(frozen=True, slots=True)
class FileChange:
    path: str
    mode: str
    content: bytes | None  # None: delete


@dataclass(frozen=True, slots=True)
class PlannedRevert:
    changes: tuple[FileChange, ...]
    message: str
    undone: tuple[UndoneCommit, ...]


FileVerdict = Literal["untouched", "already", "restore", "superseded", "conflict"]


def _verdict(state: FileState) -> tuple[FileVerdict, FileChange | None]:
    if state.good == state.bad:
        return "untouched", None
    if state.head == state.good:
        return "already", None
    if state.head == state.bad:
        mode = state.good_mode if state.good is not None else state.head_mode
        return "restore", FileChange(state.path, mode, state.good)
    if not needs_text_merge(state.good, state.bad, state.head):
        # One side is absent and the head moved on: a newer change (or deletion) wins.
        return "superseded", None
    if state.conflicts == 0 and state.merged is not None:
        if state.merged == state.head:
            return "already", None
        return "restore", FileChange(state.path, state.head_mode, state.merged)
    if state.merged_ours is not None and state.merged_ours == state.head:
        return "superseded", None
    return "conflict", None


def plan_revert(request: GitRevertRequest, facts: RevertFacts) -> RevertResult | PlannedRevert:
    """Decide what to do. Pure: same facts, same answer."""
    if facts.previous_revert is not None:
        return AlreadyReverted(facts.previous_revert)
    verdicts = [(_verdict(state), state.path) for state in facts.files]
    by_kind: dict[FileVerdict, list[str]] = {}
    changes: list[FileChange] = []
    for (kind, change), path in verdicts:
        by_kind.setdefault(kind, []).append(path)
        if change is not None:
            changes.append(change)
    if set(by_kind) <= {"untouched"}:
        return Unresolved(
            f"{', '.join(s.path for s in facts.files) or 'the files'} are identical at the "
            f"good revision {facts.good[:12]} and the bad revision {facts.bad[:12]}; the "
            "failure did not come from these files",
            tuple(s.path for s in facts.files),
        )
    if "conflict" in by_kind:
        return RevertFailed(
            f"conflict: {', '.join(by_kind['conflict'])} changed again after the bad revision "
            f"{facts.bad[:12]} and the change cannot be undone automatically; "
            "restore the good version by hand",
            retriable=False,
        )
    if "superseded" in by_kind:
        if "restore" in by_kind:
            return RevertFailed(
                f"conflict: {', '.join(by_kind['superseded'])} changed again after the bad "
                f"revision {facts.bad[:12]} but {', '.join(by_kind['restore'])} still hold the "
                "bad change; a partial revert could mix versions, so resolve it by hand",
                retriable=False,
            )
        newer = ", ".join(c.sha[:12] for c in facts.newer) or "a later change"
        return Superseded(
            f"{', '.join(by_kind['superseded'])} changed again after the bad revision "
            f"{facts.bad[:12]} ({newer}); keeping the newer change",
            facts.newer,
        )
    if not changes:
        return AlreadyReverted(None)
    message = revert_message(request, facts, tuple(changes))
    return PlannedRevert(tuple(changes), message, facts.undone)


def revert_message(
    request: GitRevertRequest, facts: RevertFacts, changes: Sequence[FileChange]
) -> str:
    """The commit message: subject, why, what it undoes, and machine-readable trailers."""
    target = request.target or request.canary.partition("/")[2]
    lines = [
        f"Revert {target} to {facts.good[:7]}: canary {request.canary} failed",
        "",
        f"Canary {request.canary} failed its analysis of revision {facts.bad[:12]}.",
        f"canary-engine restores what made {target} differ from the last good revision "
        f"{facts.good[:12]}; other changes, in these files or elsewhere, and later changes "
        "are kept.",
        "",
        "Failed checks:",
    ]
    lines += [f"- {reason}" for reason in request.reason] or ["- (no details were given)"]
    lines += ["", "Undoes:"]
    lines += [f"- {c.sha[:12]} {c.subject}" for c in facts.undone] or [
        "- the difference between the good and the bad revision in these files"
    ]
    lines += ["", "Files:"]
    states = {s.path: s for s in facts.files}
    for change in changes:
        state = states.get(change.path)
        if change.content is None:
            what = "deleted (created after the good revision)"
        elif state is not None and state.head is None:
            what = "restored (deleted after the good revision)"
        else:
            what = facts.notes.get(change.path, "restored")
        lines.append(f"- {change.path}: {what}")
    lines += [
        "",
        f"{TRAILER_CANARY}: {request.canary}",
        f"{TRAILER_GOOD}: {facts.good}",
        f"{TRAILER_BAD}: {facts.bad}",
    ]
    lines += [f"{TRAILER_REVERTS}: {c.sha}" for c in facts.undone]
    return "\n".join(lines) + "\n"


# -- the reverter (I/O) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PushRetryPolicy:
    """Push retries when the branch moved, and how much history to fetch at first."""

    attempts: int = 5
    initial_delay: float = 0.5
    max_delay: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.25
    history_depth: int = 32

    def delay(self, attempt: int, rnd: float) -> float:
        base = min(self.max_delay, self.initial_delay * self.multiplier ** max(0, attempt - 1))
        return base * (1.0 + self.jitter * (2.0 * rnd - 1.0))


def _retriable(kind: GitFailure) -> bool:
    """Whether a Git failure during a revert is worth trying again without a person.

    Unlike :attr:`GitFailure.retriable`, refused credentials and a repository that is "not
    found" are retried too: forges answer 404 for a private repository when the token is
    wrong, and Secrets get rotated and remotes come back; the status says what is wrong
    meanwhile. Only a refusal by the server's rules (a protected branch) and invalid input
    wait for a person."""
    return kind not in (GitFailure.DECLINED, GitFailure.INVALID)


_HINTS = {
    GitFailure.AUTH: " (the remote refused the credentials: check the Secret)",
    GitFailure.NOT_FOUND: (
        " (the repository or branch was not found: check the URL, and that the token can read "
        "it, as forges answer 'not found' for a private repository when the token is wrong)"
    ),
}


ForgeFactory = Callable[[PullRequestSettings], ForgeClient]


def _default_forge(settings: PullRequestSettings) -> ForgeClient:
    return ForgeClient(
        settings.forge,
        token=settings.token,
        username=settings.username,
        password=settings.password,
    )


@dataclass
class Reverter:
    """Makes revert commits (and pull requests). Share one per process: it holds no state of
    its own beyond the :class:`Workspace`'s cache and locks."""

    workspace: Workspace
    retry: PushRetryPolicy = field(default_factory=PushRetryPolicy)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    jitter_source: Callable[[], float] = random.random
    kustomize: Kustomize = field(default_factory=Kustomize)
    forges: ForgeFactory = _default_forge

    async def revert(self, request: GitRevertRequest) -> RevertResult:
        credentials = request.repository.credentials
        redact = redactor_for(credentials)
        if request.pull_request is not None:
            settings = request.pull_request
            redact = redact.merge(
                redactor_for(None, *(v for v in (settings.token, settings.password) if v))
            )
        try:
            checked = request.validated()
        except (GitError, ValueError) as exc:
            return RevertFailed(redact(f"invalid revert request: {exc}"), retriable=False)
        try:
            async with self.workspace.open(checked.repository) as copy:
                result = await self._revert(copy, checked)
        except GitError as exc:
            result = RevertFailed(
                redact(str(exc) + _HINTS.get(exc.kind, "")), retriable=_retriable(exc.kind)
            )
        except ForgeError as exc:
            result = RevertFailed(redact(exc.message), retriable=exc.kind.retriable)
        except OSError as exc:
            # The cache's own paths are not the user's business: the error, not the path.
            why = exc.strerror or type(exc).__name__
            result = RevertFailed(redact(f"local error in the Git cache: {why}"), retriable=True)
        result = _redacted(result, redact)
        logger.info(
            "revert %s for canary %s in %s: %s",
            checked.bad_revision[:12],
            checked.canary,
            checked.repository.display,
            _summary(result),
        )
        return result

    async def _revert(self, copy: WorkingCopy, request: GitRevertRequest) -> RevertResult:
        branch = request.repository.branch
        if request.pull_request is not None:
            known = await self._known_pull_request(copy, request)
            if known is not None:
                return known
        for attempt in range(1, self.retry.attempts + 1):
            facts = await self.gather(copy, request)
            if not isinstance(facts, RevertFacts):
                return facts
            plan = plan_revert(request, facts)
            if request.pull_request is not None:
                return await self._propose(copy, request, facts, plan)
            if not isinstance(plan, PlannedRevert):
                return plan
            commit = await self._commit(copy, request, facts, plan)
            try:
                await copy.push(commit)
            except GitError as exc:
                if exc.kind is GitFailure.DECLINED:
                    return await self._declined(copy, request, commit, exc, plan)
                if exc.kind is not GitFailure.REJECTED:
                    # The push may have reached the server before the connection or the
                    # process died. Retriable: the next attempt finds the commit by its
                    # trailers (AlreadyReverted) or pushes again.
                    return RevertFailed(
                        f"the push of revert commit {commit[:12]} to {branch} did not confirm "
                        f"({exc.message}){_HINTS.get(exc.kind, '')}; the next attempt checks "
                        "whether it landed",
                        retriable=_retriable(exc.kind),
                        files=tuple(c.path for c in plan.changes),
                    )
                if attempt == self.retry.attempts:
                    break
                delay = self.retry.delay(attempt, self.jitter_source())
                logger.info(
                    "push of revert to %s rejected (branch moved); retrying on the new head "
                    "in %.2fs (attempt %d of %d)",
                    branch,
                    delay,
                    attempt + 1,
                    self.retry.attempts,
                )
                await self.sleep(delay)
                continue
            return Reverted(
                commit_sha=commit,
                reverted_commits=plan.undone,
                files=tuple(c.path for c in plan.changes),
                attempts=attempt,
            )
        return RevertFailed(
            f"push to {branch} was rejected {self.retry.attempts} times because the branch "
            "kept moving; will try again later",
            retriable=True,
        )

    async def _declined(
        self,
        copy: WorkingCopy,
        request: GitRevertRequest,
        commit: str,
        exc: GitError,
        plan: PlannedRevert,
    ) -> RevertResult:
        """A protected branch (or a hook) refused the push: keep the commit on a side branch
        so nothing is lost, and tell the user how to get it merged."""
        branch = request.repository.branch
        side = revert_branch(request.canary, request.bad_revision)
        kept = f"the revert commit {commit[:12]} could not be kept anywhere"
        try:
            existing = await copy.remote_branch(side)
            if existing is None:
                await copy.push(commit, branch=side)
                kept = f"the revert commit {commit[:12]} is kept on branch {side}"
            else:
                kept = f"a revert commit is kept on branch {side} ({existing[:12]})"
        except GitError as side_exc:
            kept += f" (pushing branch {side} failed too: {side_exc.message})"
        return RevertFailed(
            f"the server refused the push to {branch}: {exc.message}. {kept}; merge it, or set "
            "spec.gitops.revert.mode: pullRequest so that canary-engine opens a pull request",
            retriable=False,
            files=tuple(c.path for c in plan.changes),
        )

    async def _known_pull_request(
        self, copy: WorkingCopy, request: GitRevertRequest
    ) -> RevertResult | None:
        """Pull-request mode, on every pass after the first: the side branch and its pull
        request already exist, so their state is the answer (no fetch of the history, no
        attribution). None when there is no pull request yet."""
        settings = request.pull_request
        assert settings is not None
        side = revert_branch(request.canary, request.bad_revision, settings.branch_prefix)
        async with self.forges(settings) as forge:
            pull = await forge.find(side, request.repository.branch)
        if pull is None:
            return None
        commit = await copy.remote_branch(side) or ""
        if pull.state == "open":
            return Proposed(commit, pull.url, side, (), created=False)
        if pull.state == "merged":
            return AlreadyReverted(commit or None, pull.url)
        return Unresolved(
            f"the revert's pull request {pull.url} was closed without merging; Git still holds "
            "the bad revision. Merge a fix, or run canary retry to analyse the revision again",
            (),
            pull.url,
        )

    async def _propose(
        self,
        copy: WorkingCopy,
        request: GitRevertRequest,
        facts: RevertFacts,
        plan: RevertResult | PlannedRevert,
    ) -> RevertResult:
        """Pull-request mode: the branch is left alone; the revert goes to a side branch
        and a pull request, both found again by name on every later pass."""
        settings = request.pull_request
        assert settings is not None
        side = revert_branch(request.canary, request.bad_revision, settings.branch_prefix)
        spec_of = _pull_request_spec(request, facts, side)
        async with self.forges(settings) as forge:
            if not isinstance(plan, PlannedRevert):
                if isinstance(plan, AlreadyReverted):
                    merged = await forge.find(side, request.repository.branch)
                    url = merged.url if merged is not None else ""
                    return replace(plan, url=url)
                return plan
            existing = await copy.remote_branch(side)
            if existing is None:
                commit = await self._commit(copy, request, facts, plan)
                await copy.push(commit, branch=side)
            else:
                commit = existing
            pull, created = await forge.ensure(spec_of)
        return _pull_request_result(pull, commit, side, plan, created)

    async def files_containing(
        self, repository: GitRepository, needle: str, *, branch: str | None = None
    ) -> dict[str, str]:
        """Text files at the head of the branch (or of ``branch``) that contain ``needle``:
        {repository-relative path: text}. Raises :class:`GitError`."""
        async with self.workspace.open(repository) as copy:
            head = await copy.fetch(depth=1) if branch is None else await copy.fetch_branch(branch)
            return await copy.grep(head, needle)

    async def commit_edit(
        self,
        repository: GitRepository,
        needle: str,
        edit: Callable[[Mapping[str, str]], Mapping[str, str]],
        message: str,
        *,
        author: CommitIdentity = DEFAULT_IDENTITY,
        branch: str | None = None,
    ) -> str | None:
        """Commit an edit on top of the branch head (or of the side ``branch``), pushed
        without force. ``edit`` gets the YAML files that contain ``needle`` at the head and
        returns the files to change with their new text; it is computed again on the new head
        whenever the branch moved, so a concurrent change is never overwritten. None when
        there is nothing to change. Raises GitError."""
        async with self.workspace.open(repository) as copy:
            for attempt in range(1, self.retry.attempts + 1):
                head = (
                    await copy.fetch(depth=1) if branch is None else await copy.fetch_branch(branch)
                )
                current = await copy.grep(head, needle)
                wanted = await asyncio.to_thread(edit, current)
                entries = await copy.entries(head, list(wanted))
                updates: list[tuple[str, str | None, str | None]] = []
                for path, text in wanted.items():
                    if current.get(path) == text:
                        continue
                    mode = entries[path].mode if path in entries else "100644"
                    updates.append((path, mode, await copy.hash_blob(text.encode("utf-8"))))
                if not updates:
                    return None
                tree = await copy.write_tree(head, updates)
                commit = await copy.commit_tree(
                    tree, head, message, name=author.name, email=author.email
                )
                try:
                    await copy.push(commit, branch=branch)
                except GitError as exc:
                    if exc.kind is not GitFailure.REJECTED or attempt == self.retry.attempts:
                        raise
                    await self.sleep(self.retry.delay(attempt, self.jitter_source()))
                    continue
                return commit
        return None

    async def gather(
        self, copy: WorkingCopy, request: GitRevertRequest
    ) -> RevertFacts | RevertFailed | Unresolved:
        """Fetch and read everything the plan needs (see :class:`RevertFacts`)."""
        revisions = await self._revisions(copy, request)
        if isinstance(revisions, RevertFailed):
            return revisions
        head, good, bad = revisions
        previous = await self._find_previous(copy, request, bad, head)
        if previous is not None:
            return RevertFacts(head, good, bad, (), (), (), previous_revert=previous)
        if request.subject is None:
            found = Attribution({}, {}, {})
            files = request.files
        else:
            attributed = await self._attribute(copy, request, request.subject, good, bad)
            if isinstance(attributed, Unresolved):
                return attributed
            found, files = attributed, tuple(attributed.restored)
        at_good = await copy.entries(good, files)
        at_bad = await copy.entries(bad, files)
        at_head = await copy.entries(head, files)
        states = [
            await _file_state(
                copy, path, at_good.get(path), at_bad.get(path), at_head.get(path), found
            )
            for path in files
        ]
        undone = await copy.commits(f"{good}..{bad}", files) if files else []
        newer = await copy.commits(f"{bad}..{head}", files) if files else []
        return RevertFacts(
            head=head,
            good=good,
            bad=bad,
            files=tuple(states),
            undone=tuple(UndoneCommit(s, subj) for s, subj in undone),
            newer=tuple(UndoneCommit(s, subj) for s, subj in newer),
            previous_revert=None,
            notes=dict(found.notes),
        )

    async def _revisions(
        self, copy: WorkingCopy, request: GitRevertRequest
    ) -> tuple[str, str, str] | RevertFailed:
        """The branch head and the good and bad commits, fetched deep enough to hold both;
        a bad revision that is not in the branch's history cannot be reverted there."""
        branch = request.repository.branch
        head = await copy.fetch(depth=self.retry.history_depth)
        await copy.ensure_history(
            head, [request.bad_revision, request.good_revision], start=self.retry.history_depth
        )
        bad = await copy.try_resolve(request.bad_revision)
        if bad is None or not await copy.is_ancestor(bad, head):
            return RevertFailed(
                f"bad revision {request.bad_revision} is not in the history of branch {branch}",
                retriable=False,
            )
        good = await copy.try_resolve(request.good_revision)
        if good is None:
            return RevertFailed(
                f"last good revision {request.good_revision} is not in the history of branch "
                f"{branch}",
                retriable=False,
            )
        return head, good, bad

    async def _attribute(
        self, copy: WorkingCopy, request: GitRevertRequest, subject: Subject, good: str, bad: str
    ) -> Attribution | Unresolved:
        try:
            found = await attribute(
                copy, subject, good, bad, kustomize=self.kustomize, forced=request.files
            )
        except Unattributable as exc:
            return Unresolved(exc.reason, exc.files)
        logger.debug(
            "attributed the change of %s in %d renders: %s",
            subject.describe(),
            found.probes,
            ", ".join(sorted(found.restored)),
        )
        return found

    async def _find_previous(
        self, copy: WorkingCopy, request: GitRevertRequest, bad: str, head: str
    ) -> str | None:
        for sha, trailers in await copy.trailers(f"{bad}..{head}"):
            canaries = trailers.get(TRAILER_CANARY.lower(), [])
            bads = trailers.get(TRAILER_BAD.lower(), [])
            if request.canary in canaries and bad in bads:
                return sha
        return None

    async def _commit(
        self, copy: WorkingCopy, request: GitRevertRequest, facts: RevertFacts, plan: PlannedRevert
    ) -> str:
        updates: list[tuple[str, str | None, str | None]] = []
        for change in plan.changes:
            if change.content is None:
                updates.append((change.path, None, None))
            else:
                updates.append((change.path, change.mode, await copy.hash_blob(change.content)))
        tree = await copy.write_tree(facts.head, updates)
        return await copy.commit_tree(
            tree,
            facts.head,
            plan.message,
            name=request.author.name,
            email=request.author.email,
        )


async def _file_state(
    copy: WorkingCopy,
    path: str,
    at_good: BlobEntry | None,
    at_bad: BlobEntry | None,
    at_head: BlobEntry | None,
    found: Attribution,
) -> FileState:
    """One file at the three revisions. Its good side is what the attribution restores, when
    it restores the file (perhaps only some of its lines), else the file at the good commit."""
    if path in found.restored:
        good_c = found.restored[path]
        good_mode = found.modes.get(path, at_good.mode if at_good else "100644")
    else:
        good_c = await copy.blob(at_good.blob) if at_good else None
        good_mode = at_good.mode if at_good else "100644"
    bad_c = await copy.blob(at_bad.blob) if at_bad else None
    head_c = await copy.blob(at_head.blob) if at_head else None
    merged = merged_ours = None
    conflicts = 0
    if needs_text_merge(good_c, bad_c, head_c):
        assert good_c is not None and bad_c is not None and head_c is not None
        merged, conflicts, merged_ours = await _merge(copy, good_c, bad_c, head_c)
    return FileState(
        path=path,
        good=good_c,
        bad=bad_c,
        head=head_c,
        good_mode=good_mode,
        head_mode=at_head.mode if at_head else good_mode,
        merged=merged if not conflicts else None,
        conflicts=conflicts,
        merged_ours=merged_ours,
    )


async def _merge(
    copy: WorkingCopy, good: bytes, bad: bytes, head: bytes
) -> tuple[bytes | None, int, bytes | None]:
    """Undo bad→good on top of head: (merged, conflicts, merged preferring head's side on
    the conflicts). A file git cannot merge counts as one conflict: a person decides."""
    try:
        merged, conflicts = await copy.merge_file(head, bad, good)
        merged_ours = None
        if conflicts:
            merged_ours, _ = await copy.merge_file(head, bad, good, prefer_ours=True)
    except GitError:
        return None, 1, None
    return merged, conflicts, merged_ours


def _pull_request_spec(request: GitRevertRequest, facts: RevertFacts, side: str) -> NewPullRequest:
    target = request.target or request.canary.partition("/")[2]
    reasons = "\n".join(f"- {r}" for r in request.reason) or "- (no details were given)"
    undone = "\n".join(f"- {c.sha[:12]} {c.subject}" for c in facts.undone) or "- (see the diff)"
    body = (
        f"Canary `{request.canary}` failed its analysis of revision `{facts.bad[:12]}`. "
        f"This pull request restores what made `{target}` differ from the last good "
        f"revision `{facts.good[:12]}`; other changes are kept.\n\n"
        f"**Failed checks**\n{reasons}\n\n**Undoes**\n{undone}\n\n"
        "Opened by canary-engine because the branch is protected "
        "(`spec.gitops.revert.mode: pullRequest`). Merging it lets the GitOps reconciler "
        "converge to the good version."
    )
    return NewPullRequest(
        head=side,
        base=request.repository.branch,
        title=f"Revert {target} to {facts.good[:7]}: canary {request.canary} failed",
        body=body,
    )


def _pull_request_result(
    pull: PullRequest,
    commit: str,
    side: str,
    plan: PlannedRevert,
    created: bool,
) -> RevertResult:
    files = tuple(c.path for c in plan.changes)
    if pull.state == "open":
        return Proposed(commit, pull.url, side, files, created)
    if pull.state == "merged":
        return AlreadyReverted(None, pull.url)
    return Unresolved(
        f"the revert's pull request {pull.url} was closed without merging; Git still holds "
        "the bad revision. Merge a fix, or run canary retry to analyse the revision again",
        files,
        pull.url,
    )


def _redacted(result: RevertResult, redact: Redactor) -> RevertResult:
    reason = getattr(result, "reason", None)
    if isinstance(reason, str):
        return replace(result, reason=redact(reason))  # type: ignore[arg-type,call-arg]
    return result


def _summary(result: RevertResult) -> str:
    if isinstance(result, Reverted):
        return f"reverted in {result.commit_sha[:12]} (attempt {result.attempts})"
    if isinstance(result, Proposed):
        return f"proposed in {result.url} (branch {result.branch}, commit {result.commit_sha[:12]})"
    if isinstance(result, AlreadyReverted):
        return f"already reverted ({(result.commit_sha or 'same content')[:12]})"
    if isinstance(result, Superseded | Unresolved):
        return f"{result.kind}: {result.reason}"
    return f"failed ({'retriable' if result.retriable else 'needs action'}): {result.reason}"
