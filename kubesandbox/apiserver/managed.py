"""Field ownership (``metadata.managedFields``) and server-side apply.

Server-side apply is how the GitOps reconciler writes manifests: every field an applier
sets is recorded as owned by its ``fieldManager``; applying a value that differs from a
field another manager owns is a 409 listing the conflicting fields (unless ``force``
transfers ownership); a field the manager applied before and now omits is removed unless
someone else still owns it; applying to a missing object creates it. Ordinary writes
(create, update, patch) are tracked too, as ``operation: Update`` entries that take over the
fields they change, which is what makes ``kubectl scale`` followed by an apply conflict.

Fields are handled as a flat map from a path (``("f:spec", "f:containers",
'k:{"name":"web"}', "f:image")``, the fieldsV1 element syntax) to the value at that path.
A :class:`Shape` says how lists merge at a place: built-in types use their patch merge
keys (see :mod:`.patching`), custom resources the ``x-kubernetes-list-type`` and
``x-kubernetes-list-map-keys`` of their schema (lists are atomic unless declared).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._util import deep_copy, rfc3339
from .errors import ApiError, Cause
from .patching import json_equal, list_merge_key
from .registry import ResourceType
from .schema import SYSTEM_METADATA

Path = tuple[str, ...]
_PRESENT = "\x00present"


# --- shapes ----------------------------------------------------------------------------------


class Shape:
    """How maps and lists merge at one place of an object (untyped: granular maps, atomic lists)."""

    def field(self, name: str) -> Shape:
        return UNTYPED

    def item(self) -> Shape:
        return UNTYPED

    def list_type(self) -> tuple[str, tuple[str, ...]]:
        return ("atomic", ())

    def map_atomic(self) -> bool:
        return False


UNTYPED = Shape()


class BuiltinShape(Shape):
    def __init__(self, kind: str, path: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.path = path

    def field(self, name: str) -> Shape:
        return BuiltinShape(self.kind, (*self.path, name))

    def item(self) -> Shape:
        return self

    def list_type(self) -> tuple[str, tuple[str, ...]]:
        key = list_merge_key(self.path, self.kind)
        if key is None:
            return ("atomic", ())
        if key == "":
            return ("set", ())
        return ("map", (key,))


class SchemaShape(Shape):
    def __init__(self, schema: Mapping[str, Any] | None) -> None:
        self.schema = schema or {}

    def field(self, name: str) -> Shape:
        props = self.schema.get("properties")
        if isinstance(props, Mapping) and isinstance(props.get(name), Mapping):
            return SchemaShape(props[name])
        addl = self.schema.get("additionalProperties")
        if isinstance(addl, Mapping):
            return SchemaShape(addl)
        return UNTYPED

    def item(self) -> Shape:
        items = self.schema.get("items")
        return SchemaShape(items) if isinstance(items, Mapping) else UNTYPED

    def list_type(self) -> tuple[str, tuple[str, ...]]:
        list_type = self.schema.get("x-kubernetes-list-type")
        if list_type == "map":
            keys = tuple(str(k) for k in self.schema.get("x-kubernetes-list-map-keys") or ())
            return ("map", keys) if keys else ("atomic", ())
        if list_type == "set":
            return ("set", ())
        return ("atomic", ())

    def map_atomic(self) -> bool:
        return self.schema.get("x-kubernetes-map-type") == "atomic"


class RootShape(Shape):
    """The object root: ``metadata`` merges like ObjectMeta, the rest per the type."""

    def __init__(self, rt: ResourceType) -> None:
        self.rt = rt
        self.inner: Shape = SchemaShape(rt.schema) if rt.is_crd else BuiltinShape(rt.kind)

    def field(self, name: str) -> Shape:
        if name == "metadata":
            return BuiltinShape(self.rt.kind, ("metadata",))
        return self.inner.field(name)


# --- flattening ------------------------------------------------------------------------------


def _key_element(item: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    return "k:" + json.dumps({k: item[k] for k in keys}, separators=(",", ":"), sort_keys=True)


def _flatten(value: Any, shape: Shape, path: Path, out: dict[Path, Any]) -> None:
    if isinstance(value, dict) and not shape.map_atomic():
        if not value:
            if path:
                out[path] = {}
            return
        for key, item in value.items():
            _flatten(item, shape.field(key), (*path, "f:" + key), out)
        return
    if isinstance(value, list):
        list_type, keys = shape.list_type()
        if list_type == "map" and all(
            isinstance(i, dict) and all(k in i for k in keys) for i in value
        ):
            for item in value:
                item_path = (*path, _key_element(item, keys))
                out[item_path] = _PRESENT
                _flatten(item, shape.item(), item_path, out)
            if not value:
                out[path] = []
            return
        if list_type == "set" and all(not isinstance(i, (dict, list)) for i in value):
            for item in value:
                out[(*path, "v:" + json.dumps(item, separators=(",", ":")))] = _PRESENT
            if not value:
                out[path] = []
            return
    out[path] = value


def trimmed(
    obj: Mapping[str, Any] | None, rt: ResourceType, subresource: str | None
) -> dict[str, Any]:
    """The part of an object whose fields are owned: no system metadata, status per subresource."""
    if not obj:
        return {}
    view: dict[str, Any] = {}
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if rt.status_subresource:
            if subresource == "status" and key != "status":
                continue
            if subresource != "status" and key == "status":
                continue
        if key == "metadata" and isinstance(value, Mapping):
            meta = {k: v for k, v in value.items() if k not in SYSTEM_METADATA}
            if meta:
                view[key] = meta
            continue
        view[key] = value
    return view


def flatten(
    obj: Mapping[str, Any] | None, rt: ResourceType, subresource: str | None
) -> dict[Path, Any]:
    out: dict[Path, Any] = {}
    _flatten(trimmed(obj, rt, subresource), RootShape(rt), (), out)
    return out


# --- fieldsV1 --------------------------------------------------------------------------------


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    paths = set(paths)
    for path in sorted(paths):
        node = root
        for element in path:
            node = node.setdefault(element, {})
    for path in paths:
        node = root
        for element in path:
            node = node[element]
        if node and "." not in node:
            node["."] = {}
    return root


def from_fields_v1(tree: Any) -> set[Path]:
    out: set[Path] = set()

    def walk(node: Mapping[str, Any], prefix: Path) -> None:
        for key, child in node.items():
            if key == ".":
                out.add(prefix)
            elif isinstance(child, Mapping) and child:
                walk(child, (*prefix, key))
            else:
                out.add((*prefix, key))

    if isinstance(tree, Mapping):
        walk(tree, ())
    return out


def describe(path: Path) -> str:
    """Render a field path like a real server's conflict messages (``.spec.containers[name="a"].image``)."""
    out = ""
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            out += "." + rest
        elif kind == "k":
            try:
                keys = json.loads(rest)
                out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]"
            except ValueError:
                out += f"[{rest}]"
        elif kind == "v":
            out += f"[={rest}]"
        else:
            out += f"[{rest}]"
    return out


# --- entries ---------------------------------------------------------------------------------


@dataclass
class Entry:
    """One ``managedFields`` entry, with its field set parsed (mutable while computing)."""

    manager: str
    operation: str
    api_version: str
    time: str
    subresource: str
    fields: set[Path]

    def same(self, manager: str, operation: str, subresource: str) -> bool:
        return (self.manager, self.operation, self.subresource) == (manager, operation, subresource)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(self.fields),
        }
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def parse_entries(obj: Mapping[str, Any] | None) -> list[Entry]:
    raw = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    entries: list[Entry] = []
    if not isinstance(raw, list):
        return entries
    for item in raw:
        if not isinstance(item, Mapping) or not item.get("manager"):
            continue
        entries.append(
            Entry(
                manager=str(item.get("manager")),
                operation=str(item.get("operation", "Update")),
                api_version=str(item.get("apiVersion", "")),
                time=str(item.get("time", "")),
                subresource=str(item.get("subresource", "")),
                fields=from_fields_v1(item.get("fieldsV1")),
            )
        )
    return entries


def render_entries(entries: list[Entry]) -> list[dict[str, Any]]:
    return [e.as_dict() for e in entries if e.fields]


def _changed(old: dict[Path, Any], new: dict[Path, Any]) -> tuple[set[Path], set[Path]]:
    changed = {p for p, v in new.items() if p not in old or not json_equal(old[p], v)}
    removed = set(old) - set(new)
    return changed, removed


def track_update(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    rt: ResourceType,
    manager: str,
    subresource: str | None,
) -> list[dict[str, Any]]:
    """The managedFields after an ordinary write (``operation: Update``) by ``manager``."""
    sub = subresource or ""
    entries = parse_entries(old)
    changed, removed = _changed(
        flatten(old, rt, subresource) if old else {}, flatten(new, rt, subresource)
    )
    if not changed and not removed:
        return render_entries(entries)
    for e in entries:
        if e.subresource == sub:
            e.fields -= changed
            e.fields -= removed
    if changed:
        target = next((e for e in entries if e.same(manager, "Update", sub)), None)
        if target is None:
            target = Entry(manager, "Update", rt.api_version, rfc3339(), sub, set())
            entries.append(target)
        target.fields |= changed
        target.time = rfc3339()
        target.api_version = rt.api_version
    return render_entries(entries)


# --- server-side apply -----------------------------------------------------------------------


def _remove_path(obj: Any, path: Path) -> None:
    if len(path) >= 2 and path[-2].startswith("k:") and path[-1].startswith("f:"):
        if path[-1][2:] in json.loads(path[-2][2:]):
            return  # a key field stays as long as its list item does
    parents: list[tuple[Any, Any]] = []
    cur = obj
    for element in path[:-1]:
        nxt = _step(cur, element)
        if nxt is None:
            return
        parents.append((cur, element))
        cur = nxt
    _delete_child(cur, path[-1])
    # drop maps and lists left empty by the removal (they were only there to hold the removed
    # field or item); a real server never answers with an empty one (omitempty)
    for parent, element in reversed(parents):
        child = _step(parent, element)
        if isinstance(child, dict | list) and not child and element.startswith("f:"):
            _delete_child(parent, element)
        else:
            break


def _step(cur: Any, element: str) -> Any:
    kind, _, rest = element.partition(":")
    if kind == "f" and isinstance(cur, dict):
        return cur.get(rest)
    if kind == "k" and isinstance(cur, list):
        keys = json.loads(rest)
        return next(
            (i for i in cur if isinstance(i, dict) and all(i.get(k) == v for k, v in keys.items())),
            None,
        )
    return None


def _delete_child(cur: Any, element: str) -> None:
    kind, _, rest = element.partition(":")
    if kind == "f" and isinstance(cur, dict):
        cur.pop(rest, None)
    elif kind == "k" and isinstance(cur, list):
        keys = json.loads(rest)
        cur[:] = [
            i
            for i in cur
            if not (isinstance(i, dict) and all(i.get(k) == v for k, v in keys.items()))
        ]
    elif kind == "v" and isinstance(cur, list):
        value = json.loads(rest)
        cur[:] = [i for i in cur if i != value]


def _merge(live: Any, config: Any, shape: Shape) -> Any:
    if isinstance(config, dict) and isinstance(live, dict) and not shape.map_atomic():
        out = dict(live)
        for key, value in config.items():
            out[key] = (
                _merge(live[key], value, shape.field(key)) if key in live else deep_copy(value)
            )
        return out
    if isinstance(config, list) and isinstance(live, list):
        list_type, keys = shape.list_type()
        if list_type == "map" and all(
            isinstance(i, dict) and all(k in i for k in keys) for i in [*live, *config]
        ):
            live_index = {_key_element(i, keys): i for i in live}
            seen: set[str] = set()
            result = []
            for item in config:
                k = _key_element(item, keys)
                seen.add(k)
                result.append(
                    _merge(live_index[k], item, shape.item())
                    if k in live_index
                    else deep_copy(item)
                )
            result += [i for i in live if _key_element(i, keys) not in seen]
            return result
        if list_type == "set":
            result = list(live)
            result += [deep_copy(i) for i in config if i not in result]
            return result
    return deep_copy(config)


def apply(
    live: Mapping[str, Any] | None,
    config: Mapping[str, Any],
    rt: ResourceType,
    manager: str,
    *,
    force: bool,
    subresource: str | None,
) -> dict[str, Any]:
    """Merge an applied configuration into the live object; returns the new object.

    The result carries the new ``metadata.managedFields``. Raises a 409 ``ApiError``
    listing every conflicting field when another manager owns a field whose value the
    configuration changes and ``force`` is false.
    """
    sub = subresource or ""
    entries = parse_entries(live)
    live_flat = flatten(live, rt, subresource) if live else {}
    config_flat = flatten(config, rt, subresource)
    applied = set(config_flat)
    mine = next((e for e in entries if e.same(manager, "Apply", sub)), None)

    conflicts: list[tuple[Entry, Path]] = []
    for entry in entries:
        if entry is mine or entry.subresource != sub:
            continue
        for path in sorted(applied & entry.fields):
            if path in live_flat and not json_equal(live_flat[path], config_flat[path]):
                conflicts.append((entry, path))
    if conflicts and not force:
        causes = tuple(
            Cause(
                describe(path),
                "FieldManagerConflict",
                f'conflict with "{entry.manager}" using {entry.api_version}',
            )
            for entry, path in conflicts
        )
        plural = "conflict" if len(causes) == 1 else "conflicts"
        listed = (
            "\n".join(f"- {c.message}: {c.field}" for c in causes)
            if len(causes) > 1
            else f"{causes[0].message}: {causes[0].field}"
        )
        raise ApiError(
            409, "Conflict", f"Apply failed with {len(causes)} {plural}: {listed}", causes=causes
        )
    for entry, path in conflicts:
        entry.fields.discard(path)

    result: dict[str, Any] = deep_copy(dict(live)) if live else {}
    previously = mine.fields if mine is not None else set()
    others: set[Path] = set()
    for entry in entries:
        if entry is not mine and entry.subresource == sub:
            others |= entry.fields
    held = {p[:i] for p in others for i in range(1, len(p) + 1)}
    for path in sorted(previously - applied, key=len):
        if path not in held:
            _remove_path(result, path)

    view = trimmed(config, rt, subresource)
    merged: dict[str, Any] = _merge(result, view, RootShape(rt))
    for key in ("apiVersion", "kind"):
        if key in config:
            merged[key] = config[key]
    meta = merged.setdefault("metadata", {})
    for key in ("name", "namespace"):
        if key in (config.get("metadata") or {}) and key not in meta:
            meta[key] = config["metadata"][key]

    if mine is None:
        mine = Entry(manager, "Apply", rt.api_version, rfc3339(), sub, set())
        entries.append(mine)
    if mine.fields != applied:
        mine.time = rfc3339()
    mine.fields = applied
    mine.api_version = rt.api_version
    meta["managedFields"] = render_entries(entries)
    return merged
