"""Revert a failed canary's change in Git, so the reconciler converges to the last good version.

After a failed run the traffic is already back on the primary; this module makes Git agree.
It restores the files that hold the target's manifests (and the ConfigMaps and Secrets it
tracks) to their content at the last good revision by reverse-applying the diff good..bad,
restricted to those files, onto the *current* branch head with a 3-way merge. Unrelated later
edits (elsewhere in those files, and in every other file) survive; files created after the good
revision are deleted and deleted ones restored. The commit is pushed without force; when the
push is rejected because the branch moved, everything is recomputed from the new head.

The work splits in three:

* gather (I/O): fetch, deepen the shallow history as needed, read the files at good, bad and
  head, run ``git merge-file`` where both sides changed, list the commits involved, and look
  for an earlier revert commit with our trailers -> :class:`RevertFacts`;
* plan (pure): :func:`plan_revert` decides Reverted / AlreadyReverted / Superseded /
  NothingToRevert / RevertFailed and builds the commit message (:func:`revert_message`);
* execute (I/O): write the tree with a private index, ``commit-tree``, ``push``.

Restart safety: a revert commit carries the trailers ``Canary: <ns>/<name>`` and
``Canary-Bad-Revision: <sha>``; finding one after the bad revision means the job is done
(:class:`AlreadyReverted`), so a controller killed between the push and its status update
never makes a second commit. Files already equal to the good revision also count as done.

Results never contain a credential: every message passes through the repository's redactor.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from canary.adapters.gitops.credentials import Redactor
from canary.adapters.gitops.git import (
    GitError,
    GitFailure,
    check_relative_path,
    check_revision,
)
from canary.adapters.gitops.manifests import ManifestFiles, ObjectRef, find_manifest_files
from canary.adapters.gitops.workspace import GitRepository, WorkingCopy, Workspace

__all__ = [
    "DEFAULT_IDENTITY",
    "TRAILER_BAD",
    "TRAILER_CANARY",
    "TRAILER_GOOD",
    "TRAILER_REVERTS",
    "AlreadyReverted",
    "CommitIdentity",
    "FileState",
    "NothingToRevert",
    "PlannedRevert",
    "RetryPolicy",
    "RevertFacts",
    "RevertFailed",
    "RevertRequest",
    "RevertResult",
    "Reverted",
    "Reverter",
    "Superseded",
    "UndoneCommit",
    "plan_revert",
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
class RevertRequest:
    """What to revert, where, and why.

    ``files`` are repository-relative paths (found by the caller or by
    :func:`~canary.adapters.gitops.manifests.find_manifest_files` at the good and the bad
    revision). ``reason`` lines say why the canary failed, e.g. ``"request-success-rate 91.2%
    < 99% (5 failed checks, threshold 5)"``. ``target`` names the workload in the subject
    (defaults to the canary's name).
    """

    repository: GitRepository
    files: tuple[str, ...]
    good_revision: str
    bad_revision: str
    canary: str
    reason: tuple[str, ...] = ()
    target: str | None = None
    author: CommitIdentity = DEFAULT_IDENTITY

    def validated(self) -> RevertRequest:
        """Normalise and check every field; raise ValueError or GitError naming the field."""
        self.repository.validated()
        namespace, sep, name = self.canary.partition("/")
        if not sep or not _NAME_RE.match(namespace) or not _NAME_RE.match(name):
            raise ValueError(f"canary: expected '<namespace>/<name>', got {self.canary!r}")
        if not self.files:
            raise ValueError("files: expected at least one repository-relative file")
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
        return RevertRequest(
            repository=self.repository,
            files=files,
            good_revision=check_revision(self.good_revision, what="good revision"),
            bad_revision=check_revision(self.bad_revision, what="bad revision"),
            canary=self.canary,
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
    """A revert commit was pushed."""

    commit_sha: str
    reverted_commits: tuple[UndoneCommit, ...]
    files: tuple[str, ...] = ()
    attempts: int = 1
    kind: Literal["Reverted"] = "Reverted"


@dataclass(frozen=True, slots=True)
class AlreadyReverted:
    """Git already holds the revert: our commit (``commit_sha``) or equal content (None)."""

    commit_sha: str | None
    kind: Literal["AlreadyReverted"] = "AlreadyReverted"


@dataclass(frozen=True, slots=True)
class Superseded:
    """The target's files changed again after the bad revision on the same lines (for
    example someone committed a fix); reverting would undo that, so nothing was done."""

    reason: str
    newer_commits: tuple[UndoneCommit, ...]
    kind: Literal["Superseded"] = "Superseded"


@dataclass(frozen=True, slots=True)
class NothingToRevert:
    """The target's files are identical at the good and the bad revision."""

    reason: str
    kind: Literal["NothingToRevert"] = "NothingToRevert"


@dataclass(frozen=True, slots=True)
class RevertFailed:
    """The revert could not be made. ``retriable``: the same call may succeed later without
    anyone changing anything (remote unreachable, timeout, branch kept moving); False means
    a person has to act (credentials, a conflict, a wrong revision)."""

    reason: str
    retriable: bool
    kind: Literal["RevertFailed"] = "RevertFailed"


RevertResult = Reverted | AlreadyReverted | Superseded | NothingToRevert | RevertFailed


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


def plan_revert(request: RevertRequest, facts: RevertFacts) -> RevertResult | PlannedRevert:
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
        return NothingToRevert(
            f"{', '.join(request.files)} are identical at the good revision {facts.good[:12]} "
            f"and the bad revision {facts.bad[:12]}; the failure did not come from these files"
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
    request: RevertRequest, facts: RevertFacts, changes: Sequence[FileChange]
) -> str:
    """The commit message: subject, why, what it undoes, and machine-readable trailers."""
    target = request.target or request.canary.partition("/")[2]
    lines = [
        f"Revert {target} to {facts.good[:7]}: canary {request.canary} failed",
        "",
        f"Canary {request.canary} failed its analysis of revision {facts.bad[:12]}.",
        f"canary-engine restores the files of its target to the last good revision "
        f"{facts.good[:12]}; other files and unrelated later changes are kept.",
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
            what = "restored"
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
class RetryPolicy:
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


@dataclass
class Reverter:
    """Makes revert commits. Share one per process (it holds no state of its own beyond the
    :class:`Workspace`'s cache and locks)."""

    workspace: Workspace
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    jitter_source: Callable[[], float] = random.random

    async def revert(self, request: RevertRequest) -> RevertResult:
        redact = Redactor.for_credentials(request.repository.credentials)
        try:
            checked = request.validated()
        except (GitError, ValueError) as exc:
            return RevertFailed(redact(f"invalid revert request: {exc}"), retriable=False)
        try:
            async with self.workspace.open(checked.repository) as copy:
                result = await self._revert(copy, checked)
        except GitError as exc:
            result = RevertFailed(redact(str(exc)), retriable=exc.retriable)
        except OSError as exc:
            result = RevertFailed(redact(f"local error in the Git cache: {exc}"), retriable=True)
        logger.info(
            "revert %s for canary %s in %s: %s",
            checked.bad_revision[:12],
            checked.canary,
            checked.repository.display,
            redact(_summary(result)),
        )
        return result

    async def _revert(self, copy: WorkingCopy, request: RevertRequest) -> RevertResult:
        branch = request.repository.branch
        for attempt in range(1, self.retry.attempts + 1):
            facts = await self.gather(copy, request)
            if isinstance(facts, RevertFailed):
                return facts
            plan = plan_revert(request, facts)
            if not isinstance(plan, PlannedRevert):
                return plan
            commit = await self._commit(copy, request, facts, plan)
            try:
                await copy.push(commit)
            except GitError as exc:
                if exc.kind is not GitFailure.REJECTED:
                    raise
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

    async def locate_files(
        self,
        repository: GitRepository,
        path: str,
        refs: Sequence[ObjectRef],
        revisions: Sequence[str],
        *,
        default_namespace: str | None = None,
    ) -> ManifestFiles | RevertFailed:
        """The files under ``path`` that declare any of ``refs`` (the target and the ConfigMaps
        and Secrets it tracks) at any of ``revisions``. Pass the good and the bad revision: a
        manifest that moved between them is then reverted as a move (the new file deleted, the
        old one restored). ``default_namespace`` is the namespace given to manifests without
        one (the GitSource's namespace; None matches any)."""
        redact = Redactor.for_credentials(repository.credentials)
        try:
            clean_path = check_relative_path(path, what="path")
            revs = [check_revision(r, what=f"revisions[{i}]") for i, r in enumerate(revisions)]
            found: list[ManifestFiles] = []
            async with self.workspace.open(repository) as copy:
                head = await copy.fetch(depth=self.retry.history_depth)
                await copy.ensure_history(head, revs, start=self.retry.history_depth)
                for rev in revs:
                    if await copy.try_resolve(rev) is None:
                        return RevertFailed(
                            f"revision {rev} is not in the history of branch {repository.branch}",
                            retriable=False,
                        )
                    tree = await copy.snapshot(rev)
                    found.append(
                        await asyncio.to_thread(
                            find_manifest_files,
                            tree,
                            clean_path,
                            refs,
                            default_namespace=default_namespace,
                        )
                    )
        except GitError as exc:
            return RevertFailed(redact(str(exc)), retriable=exc.retriable)
        except OSError as exc:
            return RevertFailed(redact(f"local error in the Git cache: {exc}"), retriable=True)
        by_ref: dict[ObjectRef, list[str]] = {}
        for result in found:
            for ref, files in result.found.items():
                by_ref.setdefault(ref, [])
                by_ref[ref] += [f for f in files if f not in by_ref[ref]]
        return ManifestFiles(
            files=tuple(sorted({f for files in by_ref.values() for f in files})),
            found={ref: tuple(files) for ref, files in by_ref.items()},
            missing=tuple(ref for ref in dict.fromkeys(refs) if ref not in by_ref),
        )

    async def gather(self, copy: WorkingCopy, request: RevertRequest) -> RevertFacts | RevertFailed:
        """Fetch and read everything the plan needs (see :class:`RevertFacts`)."""
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
        previous = await self._find_previous(copy, request, bad, head)
        files = request.files
        at_good = await copy.entries(good, files)
        at_bad = await copy.entries(bad, files)
        at_head = await copy.entries(head, files)
        states = []
        for path in files:
            g, b, h = at_good.get(path), at_bad.get(path), at_head.get(path)
            good_c = await copy.blob(g.blob) if g else None
            bad_c = await copy.blob(b.blob) if b else None
            head_c = await copy.blob(h.blob) if h else None
            merged = merged_ours = None
            conflicts = 0
            if needs_text_merge(good_c, bad_c, head_c):
                assert good_c is not None and bad_c is not None and head_c is not None
                try:
                    merged, conflicts = await copy.merge_file(head_c, bad_c, good_c)
                    if conflicts:
                        merged_ours, _ = await copy.merge_file(
                            head_c, bad_c, good_c, prefer_ours=True
                        )
                except GitError:
                    merged, conflicts = None, 1  # binary or unmergeable: a person decides
            states.append(
                FileState(
                    path=path,
                    good=good_c,
                    bad=bad_c,
                    head=head_c,
                    good_mode=g.mode if g else "100644",
                    head_mode=h.mode if h else (g.mode if g else "100644"),
                    merged=merged if not conflicts else None,
                    conflicts=conflicts,
                    merged_ours=merged_ours,
                )
            )
        undone = await copy.commits(f"{good}..{bad}", files)
        newer = await copy.commits(f"{bad}..{head}", files)
        return RevertFacts(
            head=head,
            good=good,
            bad=bad,
            files=tuple(states),
            undone=tuple(UndoneCommit(s, subj) for s, subj in undone),
            newer=tuple(UndoneCommit(s, subj) for s, subj in newer),
            previous_revert=previous,
        )

    async def _find_previous(
        self, copy: WorkingCopy, request: RevertRequest, bad: str, head: str
    ) -> str | None:
        for sha, trailers in await copy.trailers(f"{bad}..{head}"):
            canaries = trailers.get(TRAILER_CANARY.lower(), [])
            bads = trailers.get(TRAILER_BAD.lower(), [])
            if request.canary in canaries and bad in bads:
                return sha
        return None

    async def _commit(
        self, copy: WorkingCopy, request: RevertRequest, facts: RevertFacts, plan: PlannedRevert
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


def _summary(result: RevertResult) -> str:
    if isinstance(result, Reverted):
        return f"reverted in {result.commit_sha[:12]} (attempt {result.attempts})"
    if isinstance(result, AlreadyReverted):
        return f"already reverted ({(result.commit_sha or 'same content')[:12]})"
    if isinstance(result, Superseded | NothingToRevert):
        return f"{result.kind}: {result.reason}"
    return f"failed ({'retriable' if result.retriable else 'needs action'}): {result.reason}"
