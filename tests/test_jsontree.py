"""json_copy: an equal tree that shares nothing mutable with the original; frozen: an equal
tree that refuses every change (what the fakes lend a reader, as the watch cache does)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.jsontree import FrozenError, frozen, json_copy, shared_copy

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


@given(trees)
def test_a_frozen_tree_equals_the_plain_one_and_copies_back_to_plain(tree: Any) -> None:
    lent = frozen(tree)
    assert lent == tree and tree == lent
    for plain in (json_copy(lent), copy.deepcopy(lent)):
        assert plain == tree
        assert all(type(node) in (dict, list) for node in _nodes(plain))


def _nodes(tree: Any) -> list[Any]:
    if isinstance(tree, dict):
        return [tree, *(n for v in tree.values() for n in _nodes(v))]
    if isinstance(tree, list):
        return [tree, *(n for v in tree for n in _nodes(v))]
    return []


@pytest.mark.parametrize(
    "change",
    [
        lambda o: o.__setitem__("kind", "x"),
        lambda o: o.pop("spec"),
        lambda o: o.setdefault("status", {}),
        lambda o: o.update(kind="x"),
        lambda o: o["metadata"]["labels"].__setitem__("app", "b"),
        lambda o: o["metadata"].__delitem__("labels"),
        lambda o: o["spec"]["ports"].append({"port": 81}),
        lambda o: o["spec"]["ports"][0].__setitem__("port", 81),
        lambda o: o["spec"]["ports"].sort(),
        lambda o: o["spec"]["ports"].__iadd__([1]),
    ],
)
def test_every_change_to_a_frozen_tree_is_refused(change: Any) -> None:
    original = {
        "kind": "Service",
        "metadata": {"labels": {"app": "a"}},
        "spec": {"ports": [{"port": 80}]},
    }
    lent = frozen(original)
    with pytest.raises(FrozenError):
        change(lent)
    assert lent == original


def test_a_shared_copy_is_equal_shares_its_strings_and_nothing_mutable() -> None:
    first = json.loads('{"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": [1, "x"]}')
    second = json.loads('{"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": [1, "x"]}')
    assert first["metadata"]["name"] is not second["metadata"]["name"]  # two documents
    a, b = shared_copy(first), shared_copy(second)
    assert a == first and b == second
    assert a["metadata"]["name"] is b["metadata"]["name"]  # values shared
    key_a = next(iter(a["metadata"]["labels"]))
    key_b = next(iter(b["metadata"]["labels"]))
    assert key_a is key_b  # keys shared
    a["metadata"]["labels"]["app"] = "changed"
    a["spec"].append(2)
    assert first["metadata"]["labels"]["app"] == "web" and first["spec"] == [1, "x"]


def test_a_shared_copy_leaves_long_strings_alone_and_thaws_frozen_trees() -> None:
    doc = '{"data": {"v": "%s"}}' % ("x" * 100)
    a, b = shared_copy(frozen(json.loads(doc))), shared_copy(json.loads(doc))
    assert a["data"]["v"] is not b["data"]["v"]  # a one-off string is not worth a table entry
    assert type(a) is dict and type(a["data"]) is dict
    a["data"]["v"] += "!"  # a plain, changeable copy
    assert len(a["data"]["v"]) == 101


@given(trees)
def test_a_shared_copy_is_an_equal_tree_sharing_no_container(tree: Any) -> None:
    copied = shared_copy(tree)
    assert copied == tree
    assert not set(containers(copied)) & set(containers(tree))
