"""Copies of decoded JSON trees (the objects the API server sends: dicts, lists and scalars).

``copy.deepcopy`` keeps a memo for shared and cyclic references, which a decoded API object
never has; walking the tree directly is three to five times cheaper. It matters because an
idle pass copies every object it reads from the watch caches (so the caller may change it)
and every object a router builder lays its changes over.
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["json_copy"]

T = TypeVar("T")


def json_copy(value: T) -> T:
    """A copy of ``value`` sharing nothing mutable with it (dicts and lists are new; other
    values are immutable in a decoded JSON tree and are shared)."""
    return _copy(value)  # type: ignore[no-any-return]


def _copy(value: Any) -> Any:
    if type(value) is dict:
        return {k: _copy(v) for k, v in value.items()}
    if type(value) is list:
        return [_copy(v) for v in value]
    return value
