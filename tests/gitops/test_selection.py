"""The pure search behind the revert: line hunks, partial restores, and the minimisation."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from canary.adapters.gitops.selection import Part, content_with, hunks_of, minimize

GOOD = b"images:\n- name: podinfo\n  newTag: 1\n- name: backend\n  newTag: 2\nend\n"
BAD = b"images:\n- name: podinfo\n  newTag: 5\n- name: backend\n  newTag: 6\nend\n"


def test_equal_length_replacements_become_one_part_per_line() -> None:
    hunks = hunks_of(GOOD, BAD)
    assert [(h.start, h.bad_lines, h.good_lines) for h in hunks] == [
        (2, ("  newTag: 5\n",), ("  newTag: 1\n",)),
        (4, ("  newTag: 6\n",), ("  newTag: 2\n",)),
    ]
    assert hunks[0].describe() == "line 3"


def test_restoring_some_hunks_keeps_the_others_bad() -> None:
    hunks = hunks_of(GOOD, BAD)
    assert content_with(BAD, hunks, [0]) == GOOD.replace(b"newTag: 2", b"newTag: 6")
    assert content_with(BAD, hunks, [0, 1]) == GOOD
    assert content_with(BAD, hunks, []) == BAD


def test_insertions_and_deletions_are_whole_hunks() -> None:
    good = b"a\nb\nc\n"
    bad = b"a\nx\ny\nz\nc\n"
    (hunk,) = hunks_of(good, bad)
    assert (hunk.start, hunk.end, hunk.good_lines) == (1, 4, ("b\n",))
    assert hunk.describe() == "lines 2-4"
    assert content_with(bad, (hunk,), [0]) == good


lines = st.lists(st.sampled_from(["a\n", "b\n", "c\n", "d\n", "e"]), max_size=8).map(
    lambda ls: "".join(ls).encode()
)


@given(good=lines, bad=lines, data=st.data())
def test_any_subset_of_hunks_applies_and_all_of_them_give_the_good_file(
    good: bytes, bad: bytes, data: st.DataObject
) -> None:
    hunks = hunks_of(good, bad)
    assert content_with(bad, hunks, range(len(hunks))) == good
    chosen = data.draw(st.sets(st.integers(0, max(0, len(hunks) - 1))))
    content_with(bad, hunks, [i for i in chosen if i < len(hunks)])  # never raises


@given(
    parts=st.integers(1, 24),
    needed=st.sets(st.integers(0, 23), max_size=5),
)
def test_minimize_keeps_exactly_the_parts_the_probe_needs(parts: int, needed: set[int]) -> None:
    candidates = [Part(f"f{i}") for i in range(parts)]
    must = {Part(f"f{i}") for i in needed if i < parts}
    calls = 0

    async def probe(reverted: frozenset[Part]) -> bool:
        nonlocal calls
        calls += 1
        return must <= reverted

    result = asyncio.run(minimize(candidates, frozenset(candidates), probe))

    assert result == must
    # Groups are dropped together: far fewer probes than parts when few parts matter.
    if len(must) <= 1:
        assert calls <= 2 * max(1, parts.bit_length()) + 1


async def test_minimize_handles_parts_that_only_matter_together() -> None:
    """A and B both put back, or neither: the invariant (the result renders good) holds."""
    a, b, c = Part("a"), Part("b"), Part("c")

    async def probe(reverted: frozenset[Part]) -> bool:
        return (a in reverted) == (b in reverted)

    result = await minimize([a, b, c], frozenset({a, b, c}), probe)
    assert await probe(result)
    assert c not in result
