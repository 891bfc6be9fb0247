"""The three classic patch formats a real API server accepts, as pure functions.

* JSON merge patch (RFC 7386, ``application/merge-patch+json``): kopf's status and body
  patches, ``kubectl patch --type merge``, client-side ``kubectl apply`` of custom resources.
* JSON patch (RFC 6902, ``application/json-patch+json``): kopf's finalizer edits, guarded by
  a ``test`` op on ``/metadata/resourceVersion`` (a failed ``test`` must be a 422).
* Strategic merge patch (``application/strategic-merge-patch+json``, built-in types only):
  ``kubectl apply``/``patch`` default for Deployments and Services. Lists are merged by their
  patch merge keys (containers by name, ports by containerPort or port, volumeMounts by
  mountPath, ownerReferences by uid, ...) and the ``$patch``, ``$retainKeys``,
  ``$setElementOrder/`` and ``$deleteFromPrimitiveList/`` directives kubectl emits are honoured.

Server-side apply lives in :mod:`.managed`. Every function returns a new document and never
mutates its inputs; failures raise :class:`PatchError` with a message naming the path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._util import deep_copy


class PatchError(ValueError):
    """The patch cannot be applied to this document (the server answers 422)."""


class PatchFormatError(ValueError):
    """The patch document itself is malformed (the server answers 400)."""


# --- JSON merge patch ------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch; ``null`` deletes, lists are replaced wholesale."""
    if not isinstance(patch, dict):
        return deep_copy(patch)
    result = deep_copy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = merge_patch(result.get(key), value)
        else:
            result[key] = deep_copy(value)
    return result


# --- JSON patch ------------------------------------------------------------------------------


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, ``1`` is ``1.0``, containers compare deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise PatchError(f"path must be a string, got {path!r}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"path {path!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(token: str, size: int, *, allow_end: bool, path: str) -> int:
    if token == "-" and allow_end:
        return size
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r} in {path!r}")
    index = int(token)
    limit = size if allow_end else size - 1
    if index > limit:
        raise PatchError(f"array index {index} out of bounds in {path!r}")
    return index


def _walk(doc: Any, tokens: list[str], path: str, scalar: str) -> Any:
    """The value at ``tokens`` below ``doc``; ``scalar`` is the error when a token would
    descend into a scalar (its wording differs between reading a value and finding where
    to write one)."""
    cur = doc
    for token in tokens:
        if isinstance(cur, dict):
            if token not in cur:
                raise PatchError(f"path {path!r}: member {token!r} not found")
            cur = cur[token]
        elif isinstance(cur, list):
            cur = cur[_index(token, len(cur), allow_end=False, path=path)]
        else:
            raise PatchError(scalar.format(path=path, token=token))
    return cur


def _parent(doc: Any, tokens: list[str], path: str) -> tuple[Any, str]:
    scalar = "path {path!r}: cannot descend into a scalar at {token!r}"
    return _walk(doc, tokens[:-1], path, scalar), tokens[-1]


def _get(doc: Any, path: str) -> Any:
    return _walk(doc, _pointer(path), path, "path {path!r} not found")


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return deep_copy(value)
    parent, last = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        parent[last] = deep_copy(value)
    elif isinstance(parent, list):
        parent.insert(_index(last, len(parent), allow_end=True, path=path), deep_copy(value))
    else:
        raise PatchError(f"path {path!r}: parent is not a container")
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent, last = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {path!r}: member {last!r} not found")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(last, len(parent), allow_end=False, path=path))
    raise PatchError(f"path {path!r}: parent is not a container")


def json_patch(document: Any, ops: Any) -> Any:
    """Apply an RFC 6902 patch (add, remove, replace, move, copy, test)."""
    if not isinstance(ops, list):
        raise PatchFormatError("a JSON patch must be a JSON array of operations")
    doc = deep_copy(document)
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"operation {i}: expected an object with 'op' and 'path'")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {i} ({kind} {path}): missing 'value'")
        if kind == "add":
            doc = _add(doc, path, op["value"])
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            if _pointer(path):
                doc, _ = _remove(doc, path)
            doc = _add(doc, path, op["value"])
        elif kind in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise PatchError(f"operation {i} ({kind} {path}): missing 'from'")
            if kind == "move":
                if path.startswith(source + "/"):
                    raise PatchError(f"operation {i}: cannot move {source!r} into its own child")
                doc, value = _remove(doc, source)
            else:
                value = deep_copy(_get(doc, source))
            doc = _add(doc, path, value)
        elif kind == "test":
            if not json_equal(_get(doc, path), op["value"]):
                raise PatchError(f"testing value {path} failed")
        else:
            raise PatchError(f"operation {i}: unsupported op {kind!r}")
    return doc


# --- strategic merge patch -------------------------------------------------------------------

# Patch merge keys of list fields in built-in types, by field name (see module docstring).
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ownerReferences": "uid",
    "conditions": "type",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "schedulingGates": "name",
    "taints": "key",
}
_PRIMITIVE_MERGE = frozenset({"finalizers"})
_CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})


def list_merge_key(path: Sequence[str], kind: str) -> str | None:
    """The merge key of the list at ``path`` (field names only) or None for an atomic list.

    Returns ``""`` for lists of primitives merged as sets (``metadata.finalizers``).
    """
    if not path:
        return None
    name = path[-1]
    if name in _PRIMITIVE_MERGE:
        return ""
    if name == "ports":
        if kind == "Service" and tuple(path) == ("spec", "ports"):
            return "port"
        if len(path) >= 2 and path[-2] in _CONTAINER_LISTS:
            return "containerPort"
        return None
    return _MERGE_KEYS.get(name)


_DIRECTIVE_PREFIXES = ("$setElementOrder/", "$deleteFromPrimitiveList/")


def _strip(value: Any) -> Any:
    """Remove patch directives from a value that is added as new content."""
    if isinstance(value, dict):
        return {
            k: _strip(v)
            for k, v in value.items()
            if k not in ("$patch", "$retainKeys") and not k.startswith(_DIRECTIVE_PREFIXES)
        }
    if isinstance(value, list):
        return [_strip(v) for v in value if not (isinstance(v, dict) and set(v) == {"$patch"})]
    return value


def strategic_merge_patch(original: Any, patch: Any, kind: str) -> Any:
    """Apply a strategic merge patch to a built-in object of ``kind``."""
    if not isinstance(patch, dict):
        raise PatchFormatError("a strategic merge patch must be a JSON object")
    return _smp_map(original if isinstance(original, dict) else {}, patch, (), kind)


def _smp_map(
    original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...], kind: str
) -> Any:
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip(patch)
    if directive not in (None, "merge", "delete"):
        raise PatchError(f"{'.'.join(path) or '<root>'}: unknown $patch directive {directive!r}")
    result = deep_copy(original)
    orders: dict[str, list[Any]] = {}
    removals: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value if isinstance(value, list) else []
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            removals[key.split("/", 1)[1]] = value if isinstance(value, list) else []
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            if value.get("$patch") == "delete":
                result.pop(key, None)
                continue
            current = result.get(key)
            result[key] = _smp_map(
                current if isinstance(current, dict) else {}, value, (*path, key), kind
            )
        elif isinstance(value, list):
            current = result.get(key)
            result[key] = _smp_list(
                current if isinstance(current, list) else [], value, (*path, key), kind
            )
        else:
            result[key] = value
    for key, values in removals.items():
        if isinstance(result.get(key), list):
            result[key] = [v for v in result[key] if v not in values]
    for key, order in orders.items():
        if isinstance(result.get(key), list):
            result[key] = _reorder(result[key], order, list_merge_key((*path, key), kind))
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _smp_list(original: list[Any], patch: list[Any], path: tuple[str, ...], kind: str) -> list[Any]:
    key = list_merge_key(path, kind)
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [
            _strip(item)
            for item in patch
            if not (isinstance(item, dict) and item.get("$patch") == "replace")
        ]
    if key is None:
        return [_strip(item) for item in patch]
    if key == "":
        result: list[Any] = deep_copy(original)
        for item in patch:
            if item not in result:
                result.append(deep_copy(item))
        return result
    result = deep_copy(original)
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"{'.'.join(path)}: expected objects with merge key {key!r}")
        if key not in item:
            raise PatchError(
                f"{'.'.join(path)}: map in list does not contain the merge key {key!r}"
            )
        match = next(
            (
                i
                for i, cur in enumerate(result)
                if isinstance(cur, dict) and cur.get(key) == item[key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            result = [
                cur for cur in result if not (isinstance(cur, dict) and cur.get(key) == item[key])
            ]
        elif match is None:
            result.append(_strip(item))
        else:
            result[match] = _smp_map(result[match], item, path, kind)
    return result


def _reorder(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    def ident(item: Any) -> Any:
        if key and isinstance(item, dict):
            return item.get(key)
        return item

    wanted = [o.get(key) if key and isinstance(o, dict) else o for o in order]
    position = {repr(v): i for i, v in enumerate(wanted)}
    indexed = list(enumerate(items))
    indexed.sort(key=lambda pair: position.get(repr(ident(pair[1])), len(position) + pair[0]))
    return [item for _i, item in indexed]
