"""Attribute a bad change to the files (and lines) that made the target bad, by rendering.

Given the last good and the bad revision, :func:`attribute` answers "what exactly must go
back so that the target is as it was at the good revision, and nothing else": it writes the
bad tree into a private scratch directory, renders it the way the target's owner renders
it (plain manifests, real kustomize), projects the target out of the rendering
(:mod:`.subjects`), and lets :func:`~canary.adapters.gitops.selection.minimize` try keeping
each part of the bad change. Every probe rewrites only the files that differ from the
previous probe.

A change that cannot be attributed raises :class:`Unattributable` with the file and the
reason (the target is missing at the good revision, a render fails, or the target renders
the same at both revisions, so the change came from outside the repository).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from canary.adapters.gitops.kustomize import Kustomize
from canary.adapters.gitops.render import render_manifests
from canary.adapters.gitops.selection import (
    ChangedFile,
    Hunk,
    Part,
    content_with,
    hunks_of,
    minimize,
)
from canary.adapters.gitops.subjects import Projection, Subject
from canary.adapters.gitops.workspace import WorkingCopy
from canary.errors import CanaryError

__all__ = ["Attribution", "Unattributable", "attribute"]

#: Beyond this many changed files, the search works on files only (no line-level parts).
MAX_LINE_LEVEL_FILES = 50
#: Beyond this many changed files (or this many bytes of them), the change is not attributed:
#: a person is asked instead of rendering a monorepo's month of changes.
MAX_CHANGED_FILES = 2000
MAX_CHANGED_BYTES = 64 * 1024 * 1024
#: A chart directory listed for a projection stops here.
MAX_LISTED_FILES = 5000


class Unattributable(CanaryError):
    """The target's change cannot be isolated. ``files`` are the files concerned."""

    def __init__(self, reason: str, files: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.files = tuple(files)


@dataclass(frozen=True, slots=True)
class Attribution:
    """What to put back: for each file, the content that undoes the target's part of the
    change (None: the file must not exist), with the mode and a few words for the commit
    message. ``probes`` counts the renders it took."""

    restored: Mapping[str, bytes | None]
    modes: Mapping[str, str]
    notes: Mapping[str, str]
    probes: int = 0


class _Scratch:
    """A private copy of the bad tree whose changed files can be set to any candidate.

    Reads stay inside the copy: a path that leaves it (``..``, an absolute path, a symbolic
    link pointing out) is never followed, and a symbolic link reads as its target text, as
    git stores it. Listing a directory stops at :data:`MAX_LISTED_FILES`."""

    def __init__(self, root: Path, changes: Mapping[str, ChangedFile]) -> None:
        self.root = root.resolve()
        self.changes = changes
        self.current: dict[str, bytes | None] = {p: c.bad for p, c in changes.items()}

    def _inside(self, path: str) -> Path | None:
        if not path or path.startswith("/") or ".." in path.split("/"):
            return None
        candidate = self.root / path
        parent = candidate.parent.resolve()
        if parent != self.root and self.root not in parent.parents:
            return None  # a directory on the way is a link out of the copy
        return candidate

    def read(self, path: str) -> bytes | None:
        if path in self.current:
            return self.current[path]
        file = self._inside(path)
        if file is None:
            return None
        try:
            if file.is_symlink():
                return os.readlink(file).encode("utf-8", "surrogateescape")
            return file.read_bytes() if file.is_file() else None
        except OSError:
            return None

    def list(self, directory: str) -> Sequence[str]:
        base = self._inside(directory) if directory else self.root
        if base is None or base.is_symlink() or not base.is_dir():
            return ()
        out: list[str] = []
        for top, dirs, names in os.walk(base, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if name.startswith("."):
                    continue
                out.append((Path(top) / name).relative_to(self.root).as_posix())
                if len(out) >= MAX_LISTED_FILES:
                    return sorted(out)
        return sorted(out)

    def set(self, wanted: Mapping[str, bytes | None]) -> None:
        # Deletions first: a file that becomes a directory (or the other way round) between
        # the two revisions must make room before the other side is written.
        for path, content in sorted(wanted.items(), key=lambda item: item[1] is not None):
            if self.current.get(path) == content and path in self.current:
                continue
            file = self.root / path
            if content is None:
                if file.is_symlink() or file.is_file():
                    file.unlink()
                elif file.is_dir():
                    shutil.rmtree(file)
            else:
                self._make_room(file)
                change = self.changes[path]
                mode = change.good_mode if content == change.good else change.bad_mode
                if mode == "120000":
                    os.symlink(content.decode("utf-8", "surrogateescape"), file)
                else:
                    file.write_bytes(content)
            self.current[path] = content

    def _make_room(self, file: Path) -> None:
        """Remove whatever stands where ``file`` goes: a directory, a link, or a file where
        one of its parent directories must be."""
        for parent in reversed(file.relative_to(self.root).parents[:-1]):
            at = self.root / parent
            if at.is_symlink() or at.is_file():
                at.unlink()
        file.parent.mkdir(parents=True, exist_ok=True)
        if file.is_symlink() or file.is_file():
            file.unlink()
        elif file.is_dir():
            shutil.rmtree(file)


async def attribute(
    copy: WorkingCopy,
    subject: Subject,
    good: str,
    bad: str,
    *,
    kustomize: Kustomize,
    forced: Sequence[str] = (),
) -> Attribution:
    """The smallest restore of the bad change that gives the target back its good form.

    ``forced`` are repository-relative files or directories (``spec.gitops.paths``) whose
    changes are always put back whole. Raises :class:`Unattributable`.
    """
    changed = await copy.changed(good, bad)
    if not changed:
        raise Unattributable(
            f"the good revision {good[:12]} and the bad revision {bad[:12]} have the same "
            "files: the change that failed was not made in Git"
        )
    if len(changed) > MAX_CHANGED_FILES:
        raise Unattributable(
            f"{len(changed)} files changed between the good revision {good[:12]} and the bad "
            f"revision {bad[:12]} (more than {MAX_CHANGED_FILES}): too many to attribute the "
            "failure to; revert by hand",
        )
    ids = [e.blob for _, before, after in changed for e in (before, after) if e is not None]
    contents = await copy.blobs(ids, max_bytes=MAX_CHANGED_BYTES)
    if contents is None:
        raise Unattributable(
            f"the files changed between {good[:12]} and {bad[:12]} hold more than "
            f"{MAX_CHANGED_BYTES // (1024 * 1024)} MiB: too much to attribute; revert by hand",
        )
    changes: dict[str, ChangedFile] = {}
    for path, before, after in changed:
        changes[path] = ChangedFile(
            path,
            contents[before.blob] if before else None,
            contents[after.blob] if after else None,
            before.mode if before else "100644",
            after.mode if after else "100644",
        )
    forced_paths = {
        p for p in changes if any(p == f or p.startswith(f.rstrip("/") + "/") for f in forced)
    }
    scratch_dir = Path(
        await asyncio.to_thread(tempfile.mkdtemp, prefix="attribute-", dir=copy.tmp_dir)
    )
    try:
        await copy.materialize(bad, scratch_dir)
        scratch = _Scratch(scratch_dir, changes)
        search = _Search(scratch, subject, changes, forced_paths, good, bad, kustomize)
        return await search.run()
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch_dir, True)


@dataclass
class _Search:
    """The state of one search: how often it rendered, the render errors of the last probe
    (for the messages), the units it renders and the files it splits into line hunks.

    A class rather than one long function because the probes share that state, and each
    level of the search (whole files, then lines) reads best as a step of its own."""

    scratch: _Scratch
    subject: Subject
    changes: Mapping[str, ChangedFile]
    forced: set[str]
    good: str
    bad: str
    kustomize: Kustomize
    hunks: dict[str, tuple[Hunk, ...]] = field(default_factory=dict)
    probes: int = 0
    errors_seen: list[str] = field(default_factory=list)
    scope: set[str] | None = None  # the render units that make the target, once known
    good_key: str | None = None  # the target's rendering at the good revision

    async def run(self) -> Attribution:
        """Whole files first, then the lines of the files that must go back; a search
        narrowed to the target's render units is checked against a full render."""
        at_good = await self.baselines()
        needed = await self.needed_files()
        if len(needed) <= MAX_LINE_LEVEL_FILES:
            needed = await self.needed_lines(needed)
        if self.scope is not None and (await self.project(needed, full=True)).key != at_good:
            # The scoped search missed an interaction with another unit: search it all again.
            self.scope = None
            self.hunks.clear()
            needed = await self.needed_files()
        return self.attribution(needed)

    def candidate(self, parts: frozenset[Part]) -> dict[str, bytes | None]:
        """The tree's changed files with ``parts`` put back (and the forced files)."""
        wanted: dict[str, bytes | None] = {}
        for path, change in self.changes.items():
            if Part(path) in parts or path in self.forced:
                wanted[path] = change.good
            elif path in self.hunks:
                chosen = [p.hunk for p in parts if p.path == path and p.hunk is not None]
                assert change.bad is not None
                wanted[path] = content_with(change.bad, self.hunks[path], chosen)  # type: ignore[arg-type]
            else:
                wanted[path] = change.bad
        return wanted

    async def project(self, parts: frozenset[Part], *, full: bool = False) -> Projection:
        self.probes += 1
        await asyncio.to_thread(self.scratch.set, self.candidate(parts))
        if not getattr(self.subject, "renders", True):
            return await asyncio.to_thread(self.subject.project, (), self.scratch)
        loaded = await render_manifests(
            self.scratch.root,
            self.subject.source_path,
            kustomize=self.kustomize,
            strict=False,
            only=None if full else self.scope,
        )
        self.errors_seen[:] = [str(e) for e in loaded.errors]
        return await asyncio.to_thread(self.subject.project, loaded.manifests, self.scratch)

    async def renders_good(self, parts: frozenset[Part]) -> bool:
        return (await self.project(parts)).key == self.good_key

    def _errors(self) -> str:
        return f" ({'; '.join(self.errors_seen)})" if self.errors_seen else ""

    async def baselines(self) -> str:
        """Render the target at the good and the bad revision, narrow the later renders to
        the units that make it, and return its good form's key. Raises
        :class:`Unattributable` when the good revision lacks it or both revisions agree."""
        subject, good = self.subject, self.good[:12]
        everything = frozenset(Part(p) for p in self.changes)
        at_good = await self.project(everything, full=True)
        if not at_good.found:
            raise Unattributable(
                f"{subject.describe()} is not among the objects of "
                f"{subject.source_path or 'the repository root'} at the good revision {good}"
                f"{self._errors()}; cannot tell which change made it fail",
                sorted(self.changes),
            )
        self.good_key = at_good.key
        at_bad = await self.project(frozenset(), full=True)
        # From here on, render only the units (kustomizations, files) that make the target at
        # the good or the bad revision: the other applications under the path cannot change it.
        if at_good.units:
            self.scope = set(at_good.units) | set(at_bad.units)
            if (await self.project(everything)).key != at_good.key:
                self.scope = None  # something outside the units matters after all: render it all
        if at_bad.key == at_good.key and not self.forced:
            origins = ", ".join(at_good.origins) or "its files"
            raise Unattributable(
                f"{subject.describe()} renders the same at the good revision {good} and the "
                f"bad revision {self.bad[:12]} (from {origins}){self._errors()}: the change "
                "that failed did not come from this repository (a remote base, a chart or "
                "image tag resolved outside Git, or an edit made with kubectl)",
                list(at_good.origins),
            )
        return at_good.key

    async def needed_files(self) -> frozenset[Part]:
        """Level 1: the fewest whole files to put back."""
        files = [Part(p) for p in sorted(self.changes) if p not in self.forced]
        return await minimize(files, frozenset(files), self.renders_good)

    async def needed_lines(self, needed: frozenset[Part]) -> frozenset[Part]:
        """Level 2: within each needed text file, the fewest hunks to put back."""
        for part in sorted(needed):
            change = self.changes[part.path]
            if not change.is_text:
                continue
            assert change.good is not None and change.bad is not None
            found = hunks_of(change.good, change.bad)
            if len(found) < 2:
                continue
            self.hunks[part.path] = found
            lines = [Part(part.path, i) for i in range(len(found))]
            without_file = (needed - {part}) | frozenset(lines)
            if not await self.renders_good(without_file):
                # Cannot happen (all lines back equals the good file), but stay correct.
                del self.hunks[part.path]
                continue
            needed = await minimize(lines, without_file, self.renders_good)
        return needed

    def attribution(self, needed: frozenset[Part]) -> Attribution:
        """The restore that ``needed`` stands for, with a note for each file."""
        restored: dict[str, bytes | None] = {}
        modes: dict[str, str] = {}
        notes: dict[str, str] = {}
        final = self.candidate(needed)
        for path, change in sorted(self.changes.items()):
            if path not in self.forced and Part(path) not in needed and path not in self.hunks:
                continue
            note = self._note(path, change, needed)
            if note is None:
                continue
            notes[path] = note
            content = final[path]
            restored[path] = content
            modes[path] = change.good_mode if content == change.good else change.bad_mode
        if not restored:
            raise Unattributable(
                f"no part of the change between {self.good[:12]} and {self.bad[:12]} affects "
                f"{self.subject.describe()}",
                sorted(self.changes),
            )
        return Attribution(restored, modes, notes, self.probes)

    def _note(self, path: str, change: ChangedFile, needed: frozenset[Part]) -> str | None:
        """What putting ``path`` back does, in words; None when none of its hunks is needed."""
        if path not in self.hunks:
            if change.good is None:
                return "deleted (created after the good revision)"
            if change.bad is None:
                return "restored (deleted after the good revision)"
            return "restored"
        chosen = sorted(p.hunk for p in needed if p.path == path and p.hunk is not None)
        if not chosen:
            return None
        total = len(self.hunks[path])
        where = ", ".join(self.hunks[path][i].describe() for i in chosen)
        if len(chosen) == total:
            return f"restored {where}"
        return (
            f"restored {where}; {total - len(chosen)} other change(s) kept "
            f"(they do not affect {self.subject.describe()})"
        )
