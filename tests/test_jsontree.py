"""json_copy: an equal tree that shares nothing mutable with the original."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from canary.jsontree import json_copy

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
trees = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=30,
)


def containers(tree: Any) -> list[int]:
    if isinstance(tree, dict):
        return [id(tree), *(i for v in tree.values() for i in containers(v))]
    if isinstance(tree, list):
        return [id(tree), *(i for v in tree for i in containers(v))]
    return []


@given(trees)
def test_a_copy_is_equal_and_shares_no_dict_or_list(tree: Any) -> None:
    copied = json_copy(tree)
    assert copied == tree
    assert not set(containers(copied)) & set(containers(tree))


def test_changing_a_copy_leaves_the_original_alone() -> None:
    original = {"metadata": {"labels": {"app": "a"}}, "spec": {"ports": [{"port": 80}]}}
    copied = json_copy(original)
    copied["metadata"]["labels"]["app"] = "b"
    copied["spec"]["ports"][0]["port"] = 81
    assert original == {"metadata": {"labels": {"app": "a"}}, "spec": {"ports": [{"port": 80}]}}
