"""Which parts of a bad change made the target bad: the smallest revert that restores it.

Between the last good and the bad revision, a commit (or several) may change many things:
the target's image in an overlay's ``images:``, another application's tag in the same
file, a README, a patch that only another cluster uses. Reverting everything undoes other
people's work; reverting only "the files that declare the target" misses overlays, patches,
components and values files. The reverter therefore asks the renderer: it starts from the
good state of every changed file (which renders the good target by definition) and tries to
*keep* each part of the bad change. A part whose bad version leaves the target as it was
at the good revision is kept; a part that changes the target is reverted.

Parts are tried at two levels. First whole files (a file created or deleted between the two
revisions is always one part). Then, inside each file that must change, the hunks of the
line diff between good and bad, and inside a hunk that replaces n lines by n lines, each
line: so ``newTag: v3`` of one image is undone while the neighbouring image's new tag stays.

Groups of parts are tried together first and split only when the group matters (the
classic delta-debugging scheme), so a large change with a few relevant parts costs a few
renders per relevant part rather than one per part. The search keeps one invariant: the
current set of reverted parts always renders the good target, so whatever order the
parts are tried in, the answer restores the target exactly.

This module is pure: :func:`minimize` drives an async ``probe`` supplied by the caller,
which materialises a candidate and renders it.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "ChangedFile",
    "Hunk",
    "Part",
    "content_with",
    "hunks_of",
    "minimize",
]


@dataclass(frozen=True, slots=True)
class ChangedFile:
    """One file that differs between the good and the bad revision (None: absent)."""

    path: str
    good: bytes | None
    bad: bytes | None
    good_mode: str = "100644"
    bad_mode: str = "100644"

    @property
    def is_text(self) -> bool:
        try:
            for side in (self.good, self.bad):
                if side is not None:
                    side.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return self.good is not None and self.bad is not None and self.good_mode == self.bad_mode


@dataclass(frozen=True, slots=True)
class Hunk:
    """Lines ``[start, end)`` of the bad file, which were ``good_lines`` at the good revision."""

    start: int
    end: int
    good_lines: tuple[str, ...]
    bad_lines: tuple[str, ...]

    def describe(self) -> str:
        if self.end > self.start:
            span = (
                f"line {self.start + 1}"
                if self.end - self.start == 1
                else (f"lines {self.start + 1}-{self.end}")
            )
        else:
            span = f"before line {self.start + 1}"
        return span


@dataclass(frozen=True, slots=True, order=True)
class Part:
    """A revertible part of the bad change: a whole file (``hunk`` None) or one hunk."""

    path: str
    hunk: int | None = None


def _lines(content: bytes) -> list[str]:
    return content.decode("utf-8").splitlines(keepends=True)


def hunks_of(good: bytes, bad: bytes) -> tuple[Hunk, ...]:
    """The line hunks turning ``good`` into ``bad``; equal-length replacements are split into
    single lines (a YAML list of images changes one line per image)."""
    good_lines, bad_lines = _lines(good), _lines(bad)
    matcher = difflib.SequenceMatcher(a=good_lines, b=bad_lines, autojunk=False)
    found: list[Hunk] = []
    for tag, g1, g2, b1, b2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag == "replace" and g2 - g1 == b2 - b1:
            for offset in range(g2 - g1):
                found.append(
                    Hunk(
                        b1 + offset,
                        b1 + offset + 1,
                        (good_lines[g1 + offset],),
                        (bad_lines[b1 + offset],),
                    )
                )
            continue
        found.append(Hunk(b1, b2, tuple(good_lines[g1:g2]), tuple(bad_lines[b1:b2])))
    return tuple(found)


def content_with(bad: bytes, hunks: Sequence[Hunk], reverted: Iterable[int]) -> bytes:
    """``bad`` with the hunks numbered ``reverted`` put back to their good lines."""
    lines = _lines(bad)
    for index in sorted(set(reverted), reverse=True):
        hunk = hunks[index]
        lines[hunk.start : hunk.end] = list(hunk.good_lines)
    return "".join(lines).encode("utf-8")


Probe = Callable[[frozenset[Part]], Awaitable[bool]]


async def minimize(
    candidates: Sequence[Part], reverted: frozenset[Part], probe: Probe
) -> frozenset[Part]:
    """Drop from ``reverted`` every part of ``candidates`` whose bad version keeps the target
    good. ``probe(parts)`` answers whether reverting exactly ``parts`` (and leaving every other
    part bad) renders the good target; it must hold for ``reverted`` on entry."""
    current = frozenset(reverted)

    async def visit(group: Sequence[Part]) -> None:
        nonlocal current
        if not group:
            return
        trial = current - frozenset(group)
        if await probe(trial):
            current = trial
            return
        if len(group) == 1:
            return  # this part makes the target bad: it stays reverted
        middle = len(group) // 2
        await visit(group[:middle])
        await visit(group[middle:])

    await visit(list(candidates))
    return current
