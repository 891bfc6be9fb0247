"""`FakeKube`: an in-memory API server behind the `canary.ports.Kube` port.

Why it exists: a reconcile pass is mostly reads and writes through `Kube`, and what a
test wants to know is which objects ended up in the cluster, which calls were made,
and what the pass does when the API server says no. The sandbox (`kubesandbox`)
answers the first question too, but over HTTP, in a thread, with a workload
simulator; this fake answers all three in the test's own event loop, with no I/O.

What it emulates (the API server behaviour the controller relies on):

* objects stored by ``(apiVersion, kind, namespace, name)``; every read and write
  hands out a deep copy, so a caller that mutates a returned dict changes nothing;
  ``read`` hands out a frozen copy, which raises on any change, as the watch cache's
  shared objects must never be changed;
* ``metadata.resourceVersion`` from one global counter, bumped on every write, and
  honoured as a precondition: ``replace`` and ``apply`` with a stale one, and a
  ``patch`` whose body carries a stale ``metadata.resourceVersion`` (the controller's
  status writes), raise `Conflict`;
* ``metadata.generation``: 1 on create, bumped when anything outside ``metadata`` and
  ``status`` changes; ``uid`` and ``creationTimestamp`` (from the fake clock);
  ``generateName``;
* the status subresource: for every kind but a few without one (ConfigMap, Secret,
  Event, Lease, ...), writes to the main resource keep the stored ``status`` and
  ``subresource="status"`` writes change only ``status``; create drops ``status``;
* finalizers: deleting an object that has some sets ``deletionTimestamp`` and keeps
  it; the write that removes the last finalizer removes the object;
* patches: JSON merge patch (RFC 7386); JSON patch (RFC 6902: add, remove, replace,
  test); ``strategic`` is applied as a merge patch;
* label selectors (``a=b``, ``a!=b``, ``a``, ``!a``, ``a in (x,y)``, ``a notin (x,y)``)
  and field selectors (``path=value``, ``path!=value``) on ``list``;
* errors of `canary.ports`: `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`.

What it does not emulate: admission, defaulting and schema validation (any dict is
accepted), server-side apply's field ownership (``apply`` creates or merges, and never
removes a field left out), garbage collection through ``ownerReferences``, watches, the
``scale`` subresource's own shape (a scale patch is applied to the object), and any
controller (a Deployment never gets pods or a status unless a test writes one).

Test hooks: every call is recorded as a `KubeCall` in `calls`; `fail` makes matching
calls raise (an outage, a forbidden write); `before` runs a function on the store
just before a matching call (another writer racing the controller); `seed`, `edit`
and `peek` read and write the store synchronously, as ``kubectl`` would.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from canary.jsontree import frozen
from canary.ports import (
    AlreadyExists,
    Conflict,
    Invalid,
    KubeError,
    NotFound,
    Obj,
    PatchType,
    Unavailable,
)
from canary.testing.clock import FakeClock
from canary.timestamps import format_time

if TYPE_CHECKING:
    from canary.ports import Kube

__all__ = ["ANY", "FakeKube", "Key", "KubeCall", "merge_patch"]

Verb = Literal["get", "list", "create", "replace", "patch", "apply", "delete"]
WRITE_VERBS: frozenset[str] = frozenset({"create", "replace", "patch", "apply", "delete"})
ANY = "*"  # matches any subresource in `fail` and `before`; None means the main resource

# Kinds whose status is part of the object (no status subresource).
NO_STATUS_SUBRESOURCE = frozenset(
    {
        "ConfigMap",
        "Secret",
        "Event",
        "Lease",
        "ServiceAccount",
        "Endpoints",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
    }
)


@dataclass(frozen=True, slots=True)
class Key:
    """Where an object lives: its identity in the store."""

    api_version: str
    kind: str
    namespace: str  # "" for cluster-scoped objects
    name: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Key:
        meta = obj.get("metadata") or {}
        return cls(
            str(obj.get("apiVersion", "")),
            str(obj.get("kind", "")),
            str(meta.get("namespace") or ""),
            str(meta.get("name") or ""),
        )


@dataclass(frozen=True, slots=True)
class KubeCall:
    """One call made through the port, as a test asserts on it.

    ``body`` is the object written (create, replace, apply), the patch as sent, the
    selectors of a list (None without any), or the propagation policy of a delete.
    """

    verb: Verb
    api_version: str
    kind: str
    namespace: str
    name: str  # "" for list, and for create with generateName
    subresource: str | None = None
    body: Any = None

    @property
    def writes(self) -> bool:
        return self.verb in WRITE_VERBS


@dataclass(slots=True)
class _Rule:
    """A matcher for `FakeKube.fail` and `FakeKube.before`; ``None`` fields match anything."""

    verb: str
    kind: str | None
    name: str | None
    namespace: str | None
    subresource: str | None
    times: int | None  # None: every matching call
    error: KubeError | None = None
    action: Callable[[FakeKube], None] | None = None

    def matches(self, call: KubeCall) -> bool:
        return (
            (self.verb == ANY or self.verb == call.verb)
            and (self.kind is None or self.kind == call.kind)
            and (self.name is None or self.name == call.name)
            and (self.namespace is None or self.namespace == call.namespace)
            and (self.subresource == ANY or self.subresource == call.subresource)
        )

    def consume(self) -> bool:
        """Count one use; False once the rule is spent."""
        if self.times is None:
            return True
        if self.times <= 0:
            return False
        self.times -= 1
        return True


@dataclass(eq=False)
class FakeKube:
    """An in-memory API server; see the module docstring for what it emulates."""

    clock: FakeClock = field(default_factory=FakeClock)
    calls: list[KubeCall] = field(default_factory=list, init=False, repr=False)
    _objects: dict[Key, Obj] = field(default_factory=dict, init=False, repr=False)
    _version: int = field(default=1000, init=False, repr=False)
    _uids: int = field(default=0, init=False, repr=False)
    _rules: list[_Rule] = field(default_factory=list, init=False, repr=False)

    # ------------------------------------------------------------------ test hooks

    def seed(self, *objects: Obj) -> None:
        """Store objects as given (status included), creating or overwriting, as a fixture.

        Missing metadata (uid, resourceVersion, generation, creationTimestamp) is filled in.
        """
        for obj in objects:
            body = copy.deepcopy(obj)
            key = Key.of(body)
            meta = body.setdefault("metadata", {})
            previous = self._objects.get(key)
            meta.setdefault("uid", previous["metadata"]["uid"] if previous else self._uid())
            meta.setdefault("generation", 1)
            meta.setdefault("creationTimestamp", format_time(self.clock.now()))
            meta["resourceVersion"] = self._next_version()
            self._objects[key] = body

    def peek(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        """The stored object (a copy), without recording a call."""
        found = self._objects.get(Key(api_version, kind, namespace or "", name))
        return copy.deepcopy(found) if found is not None else None

    def objects(self, kind: str | None = None, namespace: str | None = None) -> list[Obj]:
        """Every stored object (copies), optionally of one kind and namespace, by key."""
        return [
            copy.deepcopy(obj)
            for key, obj in sorted(self._objects.items(), key=lambda kv: _sort_key(kv[0]))
            if (kind is None or key.kind == kind)
            and (namespace is None or key.namespace == namespace)
        ]

    def edit(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        change: Callable[[Obj], None],
    ) -> Obj:
        """Change an object in place as another client would (``kubectl edit``).

        ``change`` mutates a copy; the result is stored with a new resourceVersion and,
        if anything outside metadata and status changed, a new generation. Not recorded.
        """
        key = Key(api_version, kind, namespace or "", name)
        stored = self._objects.get(key)
        if stored is None:
            raise NotFound(f"{kind} {namespace}/{name} not found", status=404)
        body = copy.deepcopy(stored)
        change(body)
        return copy.deepcopy(self._store(key, stored, body))

    def fail(
        self,
        verb: Verb | Literal["*"],
        *,
        kind: str | None = None,
        name: str | None = None,
        namespace: str | None = None,
        subresource: str | None = ANY,
        error: KubeError | None = None,
        times: int | None = 1,
    ) -> None:
        """Make the next ``times`` matching calls raise ``error`` (default `Unavailable`).

        ``times=None`` fails every matching call. The call is still recorded.
        ``subresource``: `ANY` (the default) matches any, None only the main resource.
        """
        self._rules.append(
            _Rule(
                verb,
                kind,
                name,
                namespace,
                subresource,
                times,
                error=error or Unavailable("injected by FakeKube.fail", status=503),
            )
        )

    def before(
        self,
        verb: Verb | Literal["*"],
        action: Callable[[FakeKube], None],
        *,
        kind: str | None = None,
        name: str | None = None,
        namespace: str | None = None,
        subresource: str | None = ANY,
        times: int | None = 1,
    ) -> None:
        """Run ``action(self)`` just before the next ``times`` matching calls execute.

        This is how a test races the controller: ``action`` edits the object the call is
        about to write, so the call's resourceVersion precondition fails for real.
        """
        self._rules.append(_Rule(verb, kind, name, namespace, subresource, times, action=action))

    def calls_of(
        self, verb: Verb | None = None, kind: str | None = None, name: str | None = None
    ) -> list[KubeCall]:
        return [
            c
            for c in self.calls
            if (verb is None or c.verb == verb)
            and (kind is None or c.kind == kind)
            and (name is None or c.name == name)
        ]

    @property
    def writes(self) -> list[KubeCall]:
        """Every write call made (create, replace, patch, apply, delete), in order."""
        return [c for c in self.calls if c.writes]

    # ------------------------------------------------------------------ the port

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        self._enter(KubeCall("get", api_version, kind, namespace or "", name))
        return self.peek(api_version, kind, name, namespace)

    async def read(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Mapping[str, Any] | None:
        """`get`, recorded as a get, but frozen: a reader that changes what the watch cache
        lends it (`Kube.read`) raises `canary.jsontree.FrozenError` here."""
        return frozen(await self.get(api_version, kind, name, namespace))

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        selectors = {"labelSelector": label_selector, "fieldSelector": field_selector}
        self._enter(
            KubeCall(
                "list",
                api_version,
                kind,
                namespace or "",
                "",
                body={k: v for k, v in selectors.items() if v} or None,
            )
        )
        labels = _parse_label_selector(label_selector or "")
        fields_ = _parse_field_selector(field_selector or "")
        out = []
        for key, obj in sorted(self._objects.items(), key=lambda kv: _sort_key(kv[0])):
            if key.api_version != api_version or key.kind != kind:
                continue
            if namespace and key.namespace != namespace:
                continue
            obj_labels = (obj.get("metadata") or {}).get("labels") or {}
            if all(test(obj_labels) for test in labels) and all(test(obj) for test in fields_):
                out.append(copy.deepcopy(obj))
        return out

    async def read_list(
        self, api_version: str, kind: str, namespace: str, *, label_selector: str | None = None
    ) -> Sequence[Mapping[str, Any]]:
        """`list`, recorded as a list, but frozen (see `read`)."""
        return frozen(await self.list(api_version, kind, namespace, label_selector=label_selector))

    async def create(self, obj: Obj) -> Obj:
        meta = obj.get("metadata") or {}
        key = Key.of(obj)
        self._enter(
            KubeCall(
                "create",
                key.api_version,
                key.kind,
                key.namespace,
                key.name,
                body=copy.deepcopy(obj),
            )
        )
        if not key.name and not meta.get("generateName"):
            raise Invalid("metadata.name: Required value", status=422)
        return self._create(obj)

    async def replace(self, obj: Obj) -> Obj:
        key = Key.of(obj)
        self._enter(
            KubeCall(
                "replace",
                key.api_version,
                key.kind,
                key.namespace,
                key.name,
                body=copy.deepcopy(obj),
            )
        )
        stored = self._require(key)
        self._precondition(stored, (obj.get("metadata") or {}).get("resourceVersion"))
        body = copy.deepcopy(obj)
        return copy.deepcopy(self._store(key, stored, self._main_write(stored, body)))

    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: Any,
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
    ) -> Obj:
        key = Key(api_version, kind, namespace or "", name)
        self._enter(
            KubeCall(
                "patch",
                api_version,
                kind,
                key.namespace,
                name,
                subresource=subresource,
                body=copy.deepcopy(patch),
            )
        )
        stored = self._require(key)
        if patch_type == "json":
            body = _json_patch(stored, patch)
        else:  # merge; strategic is applied as merge (no patch-merge keys)
            if isinstance(patch, Mapping):
                wanted = (patch.get("metadata") or {}).get("resourceVersion")
                self._precondition(stored, wanted)
            body = merge_patch(stored, patch)
            if not isinstance(body, dict):
                raise Invalid("a merge patch must be an object", status=422)
        body.setdefault("metadata", {})["resourceVersion"] = stored["metadata"]["resourceVersion"]
        if subresource == "status":
            body = {**copy.deepcopy(stored), "status": body.get("status")}
            if body["status"] is None:
                body.pop("status")
        elif subresource is None:
            body = self._main_write(stored, body)
        return copy.deepcopy(self._store(key, stored, body))

    async def apply(self, obj: Obj, *, field_manager: str, force: bool = False) -> Obj:
        key = Key.of(obj)
        self._enter(
            KubeCall(
                "apply",
                key.api_version,
                key.kind,
                key.namespace,
                key.name,
                body=copy.deepcopy(obj),
            )
        )
        stored = self._objects.get(key)
        if stored is None:
            return self._create(obj)
        self._precondition(stored, (obj.get("metadata") or {}).get("resourceVersion"))
        body = merge_patch(stored, obj)
        body["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"]
        return copy.deepcopy(self._store(key, stored, self._main_write(stored, body)))

    async def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: Literal["Background", "Foreground", "Orphan"] = "Background",
    ) -> bool:
        key = Key(api_version, kind, namespace or "", name)
        self._enter(KubeCall("delete", api_version, kind, key.namespace, name, body=propagation))
        stored = self._objects.get(key)
        if stored is None:
            return False
        meta = stored["metadata"]
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = format_time(self.clock.now())
                meta["resourceVersion"] = self._next_version()
            return True
        del self._objects[key]
        return True

    # ------------------------------------------------------------------ internals

    def _create(self, obj: Obj) -> Obj:
        body = copy.deepcopy(obj)
        meta = body.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{self._uids + 1:05x}"
        key = Key.of(body)
        if key in self._objects:
            raise AlreadyExists(f"{key.kind} {key.namespace}/{key.name} already exists", status=409)
        meta.pop("deletionTimestamp", None)
        meta["uid"] = self._uid()
        meta["generation"] = 1
        meta["creationTimestamp"] = format_time(self.clock.now())
        if key.kind not in NO_STATUS_SUBRESOURCE:
            body.pop("status", None)
        meta["resourceVersion"] = self._next_version()
        self._objects[key] = body
        return copy.deepcopy(body)

    def _enter(self, call: KubeCall) -> None:
        """Record the call, then run the `before` actions and `fail` rules that match it."""
        self.calls.append(call)
        for rule in list(self._rules):
            if rule.matches(call) and rule.consume():
                if rule.action is not None:
                    rule.action(self)
                elif rule.error is not None:
                    raise rule.error
        self._rules = [r for r in self._rules if r.times is None or r.times > 0]

    def _require(self, key: Key) -> Obj:
        stored = self._objects.get(key)
        if stored is None:
            raise NotFound(f"{key.kind} {key.namespace}/{key.name} not found", status=404)
        return stored

    @staticmethod
    def _precondition(stored: Obj, wanted: Any) -> None:
        current = stored["metadata"]["resourceVersion"]
        if wanted not in (None, "") and str(wanted) != current:
            name = stored["metadata"].get("name")
            raise Conflict(
                f"Operation cannot be fulfilled on {stored.get('kind')} {name!r}: the object "
                f"has been modified (resourceVersion {wanted} is not {current})",
                status=409,
            )

    @staticmethod
    def _main_write(stored: Obj, body: Obj) -> Obj:
        """A write to the main resource: the stored status stays (status subresource)."""
        if stored.get("kind") in NO_STATUS_SUBRESOURCE:
            return body
        out = {k: v for k, v in body.items() if k != "status"}
        if "status" in stored:
            out["status"] = copy.deepcopy(stored["status"])
        return out

    def _store(self, key: Key, stored: Obj, body: Obj) -> Obj:
        """Write ``body`` over ``stored``: identity kept, generation and version bumped."""
        meta = body.setdefault("metadata", {})
        old_meta = stored.get("metadata") or {}
        for fixed in ("uid", "creationTimestamp", "name", "namespace", "deletionTimestamp"):
            if fixed in old_meta:
                meta[fixed] = old_meta[fixed]
            else:
                meta.pop(fixed, None)
        meta["generation"] = int(old_meta.get("generation") or 1) + (
            1 if _spec_of(body) != _spec_of(stored) else 0
        )
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        if body == stored:
            return stored  # a no-op write keeps the resourceVersion, as the API server does
        meta["resourceVersion"] = self._next_version()
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            del self._objects[key]
            return body
        self._objects[key] = body
        return body

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def _uid(self) -> str:
        self._uids += 1
        return f"00000000-0000-4000-8000-{self._uids:012d}"


def _sort_key(key: Key) -> tuple[str, str, str, str]:
    return (key.api_version, key.kind, key.namespace, key.name)


def _spec_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


# ------------------------------------------------------------------ patches


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies it (returns a new value)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out: dict[str, Any] = copy.deepcopy(dict(target)) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise Invalid(f"invalid JSON pointer {path!r}", status=422)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _json_patch(stored: Obj, operations: Any) -> Obj:
    """RFC 6902 add, remove, replace and test, in order; anything else is Invalid.

    Works on a copy, so a patch that fails half-way changes nothing.
    """
    doc: Obj = copy.deepcopy(stored)
    if not isinstance(operations, list):
        raise Invalid("a JSON patch must be a list of operations", status=422)
    for op in operations:
        path = str(op.get("path", ""))
        parent, last = _parent(doc, path)
        kind = op.get("op")
        if kind == "test":
            if _child(parent, last, path) != op.get("value"):
                raise Invalid(f"test of {path} failed", status=422)
        elif kind == "remove":
            _child(parent, last, path)  # must exist
            del parent[int(last) if isinstance(parent, list) else last]
        elif kind in ("add", "replace"):
            _put(parent, last, copy.deepcopy(op.get("value")), path, insert=kind == "add")
        else:
            raise Invalid(f"FakeKube does not support JSON patch op {kind!r}", status=422)
    return doc


def _parent(doc: Obj, path: str) -> tuple[Any, str]:
    """The container a JSON pointer points into, and the last reference token."""
    parts = _pointer(path)
    if not parts:
        raise Invalid("FakeKube does not patch the whole document", status=422)
    parent: Any = doc
    for part in parts[:-1]:
        parent = _child(parent, part, path)
    return parent, parts[-1]


def _child(parent: Any, token: str, path: str) -> Any:
    try:
        return parent[int(token)] if isinstance(parent, list) else parent[token]
    except (KeyError, IndexError, ValueError, TypeError):
        raise Invalid(f"path {path} does not exist", status=422) from None


def _put(parent: Any, token: str, value: Any, path: str, *, insert: bool) -> None:
    if not isinstance(parent, list):
        if not insert:
            _child(parent, token, path)  # replace needs an existing member
        parent[token] = value
    elif token == "-":
        parent.append(value)
    elif insert:
        parent.insert(int(token), value)
    else:
        _child(parent, token, path)
        parent[int(token)] = value


# ------------------------------------------------------------------ selectors

LabelTest = Callable[[Mapping[str, str]], bool]
FieldTest = Callable[[Mapping[str, Any]], bool]
_SET = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_requirements(selector: str) -> Iterable[str]:
    depth, current = 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            yield current
            current = ""
        else:
            current += char
    if current.strip():
        yield current


def _label_equals(key: str, value: str, *, negate: bool = False) -> LabelTest:
    return lambda labels: (labels.get(key) == value) != negate


def _label_in(key: str, values: frozenset[str], *, negate: bool = False) -> LabelTest:
    return lambda labels: (labels.get(key) in values) != negate


def _label_exists(key: str, *, negate: bool = False) -> LabelTest:
    return lambda labels: (key in labels) != negate


def _parse_label_selector(selector: str) -> list[LabelTest]:
    tests: list[LabelTest] = []
    for raw in _split_requirements(selector):
        text = raw.strip()
        if not text:
            continue
        found = _SET.match(text)
        if found:
            values = frozenset(v.strip() for v in found.group(3).split(","))
            tests.append(_label_in(found.group(1), values, negate=found.group(2) == "notin"))
        elif "!=" in text:
            key, value = (p.strip() for p in text.split("!=", 1))
            tests.append(_label_equals(key, value, negate=True))
        elif "=" in text:
            key, value = (p.strip() for p in text.replace("==", "=").split("=", 1))
            tests.append(_label_equals(key, value))
        elif text.startswith("!"):
            tests.append(_label_exists(text[1:].strip(), negate=True))
        else:
            tests.append(_label_exists(text))
    return tests


def _field(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return "" if value is None else str(value)


def _field_equals(path: str, value: str, *, negate: bool = False) -> FieldTest:
    return lambda obj: (_field(obj, path) == value) != negate


def _parse_field_selector(selector: str) -> list[FieldTest]:
    tests: list[FieldTest] = []
    for raw in _split_requirements(selector):
        text = raw.strip()
        if not text:
            continue
        if "!=" in text:
            path, value = (p.strip() for p in text.split("!=", 1))
            tests.append(_field_equals(path, value, negate=True))
        elif "=" in text:
            path, value = (p.strip() for p in text.replace("==", "=").split("=", 1))
            tests.append(_field_equals(path, value))
        else:
            raise Invalid(f"invalid field selector {text!r}", status=400)
    return tests


if TYPE_CHECKING:  # FakeKube satisfies the port (checked by mypy)
    _kube: Kube = FakeKube()
