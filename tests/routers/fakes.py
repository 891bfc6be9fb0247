"""An in-memory stand-in for the `Kube` Protocol, with the API server rules the routers rely on.

Objects are keyed by group (not version), kind, namespace and name, so a resource
written as ``v1beta1`` reads back as ``v1`` like on a server that serves both.
``resourceVersion`` is checked on replace (409 Conflict when stale) and create
fails on an existing name (AlreadyExists). Every write is recorded in ``writes`` so
tests can tell "nothing written" from "written the same".
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from canary.jsontree import frozen
from canary.ports import AlreadyExists, Conflict, NotFound, Obj, PatchType

Key = tuple[str, str, str, str]


def _group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


# Kinds the API server keeps outside namespaces: a namespace given for them is ignored.
CLUSTER_SCOPED_KINDS = frozenset({("kuma.io", "TrafficRoute")})


def _cluster_scoped(api_version: str, kind: str) -> bool:
    return (_group(api_version), kind) in CLUSTER_SCOPED_KINDS


def _key(api_version: str, kind: str, namespace: str | None, name: str) -> Key:
    if _cluster_scoped(api_version, kind):
        namespace = ""
    return (_group(api_version), kind, namespace or "", name)


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[Key, Obj] = {}
        self.writes: list[tuple[str, str, str]] = []  # (verb, kind, name)
        self._rv = itertools.count(1)
        self.before_write: Callable[[str, Obj], None] | None = None  # hook to simulate races

    # -------------------------------------------------------------- helpers

    def put(self, obj: Obj) -> Obj:
        """Store an object as if a user had applied it (not recorded as a write)."""
        stored = copy.deepcopy(obj)
        meta = stored.setdefault("metadata", {})
        if not _cluster_scoped(stored["apiVersion"], stored["kind"]):
            meta.setdefault("namespace", "test")
        meta["resourceVersion"] = str(next(self._rv))
        meta.setdefault("uid", f"uid-{meta['name']}")
        self.objects[
            _key(stored["apiVersion"], stored["kind"], meta.get("namespace"), meta["name"])
        ] = stored
        return copy.deepcopy(stored)

    def peek(self, api_version: str, kind: str, name: str, namespace: str = "test") -> Obj | None:
        obj = self.objects.get(_key(api_version, kind, namespace, name))
        if obj is None:
            return None
        out = copy.deepcopy(obj)
        out["apiVersion"] = api_version
        return out

    # ----------------------------------------------------------- the Protocol

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        return self.peek(api_version, kind, name, namespace or "")

    async def read(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Mapping[str, Any] | None:
        """Frozen, as the watch cache's shared objects must never be changed."""
        return frozen(self.peek(api_version, kind, name, namespace or ""))

    async def read_list(
        self, api_version: str, kind: str, namespace: str, *, label_selector: str | None = None
    ) -> Sequence[Mapping[str, Any]]:
        """Frozen, as `read`."""
        return frozen(await self.list(api_version, kind, namespace, label_selector=label_selector))

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        wanted = dict(p.split("=", 1) for p in (label_selector or "").split(",") if p)
        out = []
        for (group, k, ns, name), _obj in sorted(self.objects.items()):
            scoped = namespace and not _cluster_scoped(api_version, kind)
            if group != _group(api_version) or k != kind or (scoped and ns != namespace):
                continue
            obj = self.peek(api_version, kind, name, ns)
            assert obj is not None
            labels = obj["metadata"].get("labels") or {}
            if all(labels.get(k2) == v for k2, v in wanted.items()):
                out.append(obj)
        return out

    async def create(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        key = _key(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        if self.before_write:
            self.before_write("create", obj)
        if key in self.objects:
            raise AlreadyExists(f"{obj['kind']} {meta['name']} already exists", status=409)
        if meta.get("resourceVersion"):
            raise AssertionError("create with a resourceVersion")
        self.writes.append(("create", obj["kind"], meta["name"]))
        return self.put(obj)

    async def replace(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        key = _key(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        if self.before_write:
            self.before_write("replace", obj)
        current = self.objects.get(key)
        if current is None:
            raise NotFound(f"{obj['kind']} {meta['name']} not found", status=404)
        if meta.get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise Conflict(f"{obj['kind']} {meta['name']}: stale resourceVersion", status=409)
        self.writes.append(("replace", obj["kind"], meta["name"]))
        return self.put(obj)

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
        raise NotImplementedError("the routers never patch")

    async def apply(self, obj: Obj, *, field_manager: str, force: bool = False) -> Obj:
        raise NotImplementedError("the routers never apply")

    async def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: Literal["Background", "Foreground", "Orphan"] = "Background",
    ) -> bool:
        return self.objects.pop(_key(api_version, kind, namespace, name), None) is not None
