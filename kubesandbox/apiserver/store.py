"""The sandbox's object store: every API object, with a real API server's write semantics.

Everything a client can observe about persistence happens here, in one place and
synchronously (the server runs on one asyncio loop, so each operation is atomic):

* one global ``resourceVersion`` counter; every write gets the next value and produces
  exactly one watch event, kept in a bounded history per resource type (``history_size``
  events of each type, as kube-apiserver keeps one watch cache per type) so a watch can
  resume from a ``resourceVersion`` and a list can be served at an exact one (a paged
  list's continuation, ``resourceVersionMatch=Exact``); older than the history: 410 Expired;
* create / replace / patch (merge, JSON, strategic, server-side apply) / delete, with
  ``generateName``, namespace defaulting and checks, optimistic concurrency (409 on a stale
  ``resourceVersion``), ``metadata.generation`` bumped on spec changes only (and, for
  Deployments, on annotation changes: the apps/v1 strategy), the ``status`` subresource
  split, ``dryRun``, ``fieldValidation``, managedFields;
* CRDs: schema pruning, defaulting and validation of custom resources; creating or
  deleting a CRD changes what is served;
* finalizers and ``deletionTimestamp``; ownerReference garbage collection (background,
  foreground, orphan); namespace and CRD termination.

Objects are stored in their *storage* form and never mutated in place: a write builds a new
dict, so history entries, watch queues and callers may keep references safely. Methods that
take a ``ResourceType`` also accept a kubectl-style name (``"deployments"``,
``"canaries.canary.gitops.dev"``).
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import itertools
import json
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import builtins, managed, schema
from ._util import deep_copy, random_suffix, rfc3339
from .errors import (
    ApiError,
    Cause,
    bad_request,
    forbidden,
    gone,
    invalid,
    invalid_list_options,
    method_not_allowed,
    not_found,
    stale,
    too_large_resource_version,
    unprocessable,
    unsupported_media_type,
)
from .patching import PatchError, PatchFormatError, json_patch, merge_patch, strategic_merge_patch
from .registry import Registry, ResourceType, crd_problems
from .selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    field_value,
    parse_field_selector,
    parse_label_selector,
    selector_from_object,
)

JsonObj = dict[str, Any]
JsonList = list[JsonObj]
StrList = list[str]
ObjKey = tuple[tuple[str, str], str, str]  # (storage key, namespace, name)

CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
NAMESPACE_KEY = ("", "namespaces")
SERVICE_KEY = ("", "services")
DEPLOYMENT_KEY = ("apps", "deployments")
DAEMONSET_KEY = ("apps", "daemonsets")
# apps/v1 shows a DaemonSet's spec.templateGeneration (internal) as this annotation.
TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"
CRD_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"

PATCH_MERGE = "application/merge-patch+json"
PATCH_JSON = "application/json-patch+json"
PATCH_STRATEGIC = "application/strategic-merge-patch+json"
PATCH_APPLY = "application/apply-patch+yaml"
PATCH_TYPES = (PATCH_MERGE, PATCH_JSON, PATCH_STRATEGIC, PATCH_APPLY)

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

EXACT = "Exact"
NOT_OLDER_THAN = "NotOlderThan"
# kube-apiserver's answers (storage/etcd3/errors.go) for lists at a compacted revision.
EXPIRED_LIST = "The resourceVersion for the provided list is too old."
INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You "
    "can start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list."
)


@dataclass
class StoreEvent:
    """One change, as recorded in the history and fanned out to watchers."""

    type: str
    key: tuple[str, str]
    obj: JsonObj
    old: JsonObj | None
    rv: int
    cache: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteResult:
    """The outcome of a write: the object (served form), warnings, whether it was created."""

    obj: JsonObj
    warnings: tuple[str, ...] = ()
    created: bool = False


@dataclass(frozen=True)
class DeleteResult:
    obj: JsonObj
    removed: bool


# (event type, object, the store event it came from or None, the resourceVersion the watcher
# has reached once it has sent this item); None ends the stream.
QueueItem = tuple[str, JsonObj, StoreEvent | None, int] | None


class Subscription:
    """A live watch: matching events are translated per the selectors and queued.

    ``start_rv`` is where the stream starts: events at or below it are never sent (a watch
    from a resourceVersion the store has not reached yet waits for it, as on a real
    server). ``initial_count`` is the number of synthetic ADDED events queued first
    (``None`` when the watch does not send the initial state).
    """

    def __init__(
        self,
        store: Store,
        rt: ResourceType,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
    ) -> None:
        self.store = store
        self.rt = rt
        self.key = rt.key
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.queue: asyncio.Queue[QueueItem] = asyncio.Queue()
        self.closed = False
        self.start_rv = 0
        self.initial_count: int | None = None

    def matches(self, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace", "") != self.namespace:
            return False
        if not self.labels.matches(meta.get("labels")):
            return False
        return self.fields.matches(lambda f: field_value(obj, f))

    def offer(self, event: StoreEvent) -> None:
        """Queue what this watcher sees of ``event`` (kube-apiserver's cacheWatcher rules)."""
        if self.closed or event.rv <= self.start_rv:
            return
        now = self.matches(event.obj)
        if event.type == "ADDED":
            if now:
                self.queue.put_nowait(("ADDED", event.obj, event, event.rv))
        elif event.type == "DELETED":
            if now:
                self.queue.put_nowait(("DELETED", event.obj, event, event.rv))
        else:
            before = event.old is not None and self.matches(event.old)
            if before and now:
                self.queue.put_nowait(("MODIFIED", event.obj, event, event.rv))
            elif now:
                self.queue.put_nowait(("ADDED", event.obj, event, event.rv))
            elif before and event.old is not None:
                # It stopped matching: a DELETED event with the object as it was when it
                # last matched, carrying the resourceVersion of the change.
                last = dict(event.old)
                last["metadata"] = {**event.old["metadata"], "resourceVersion": str(event.rv)}
                self.queue.put_nowait(("DELETED", last, None, event.rv))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)
        self.store._unsubscribe(self)


def parse_resource_version(text: str | None) -> int | None:
    """A ``resourceVersion`` parameter: ``None`` when unset, 0 for ``"0"`` (any), else the number."""
    if text in (None, ""):
        return None
    value = str(text)
    if not value.isdigit():
        raise bad_request(f'invalid resource version "{value}"')
    return int(value)


def watch_defaults(
    resource_version: str | None, match: str | None, send_initial_events: bool | None
) -> tuple[str, bool | None]:
    """kube-apiserver 1.32's ``SetListOptionsDefaults`` for a watch (WatchList is on): a
    watch from ``resourceVersion`` unset or ``"0"`` that names neither ``sendInitialEvents``
    nor ``resourceVersionMatch`` is a ``sendInitialEvents=true`` watch, ``NotOlderThan``."""
    match = match or ""
    if send_initial_events is None and not match and resource_version in (None, "", "0"):
        return NOT_OLDER_THAN, True
    return match, send_initial_events


def list_option_problems(
    *,
    watch: bool,
    resource_version: str | None,
    match: str | None,
    continue_token: str | None,
    send_initial_events: bool | None,
) -> list[Cause]:
    """``ValidateListOptions``: forbidden combinations of list/watch parameters (422)."""
    causes: list[Cause] = []
    field = "resourceVersionMatch"

    def forbid(path: str, detail: str) -> None:
        causes.append(Cause(path, "FieldValueForbidden", f"Forbidden: {detail}"))

    def unsupported(value: str, supported: tuple[str, ...]) -> None:
        listed = ", ".join(f'"{v}"' for v in supported)
        causes.append(
            Cause(
                field,
                "FieldValueNotSupported",
                f'Unsupported value: "{value}": supported values: {listed}',
            )
        )

    if watch:
        if send_initial_events is not None and match != NOT_OLDER_THAN:
            forbid(field, f"sendInitialEvents requires setting {field} to {NOT_OLDER_THAN}")
        if match:
            if send_initial_events is None:
                forbid(
                    field, f"{field} is forbidden for watch unless sendInitialEvents is provided"
                )
            if match != NOT_OLDER_THAN:
                unsupported(match, (NOT_OLDER_THAN,))
            if continue_token:
                forbid(field, f"{field} is forbidden when continue is provided")
        return causes
    if match:
        if not resource_version:
            forbid(field, f"{field} is forbidden unless resourceVersion is provided")
        if continue_token:
            forbid(field, f"{field} is forbidden when continue is provided")
        if match not in (EXACT, NOT_OLDER_THAN):
            unsupported(match, (EXACT, NOT_OLDER_THAN, ""))
        if match == EXACT and resource_version == "0":
            forbid(field, f'{field} "exact" is forbidden for resourceVersion "0"')
    if send_initial_events is not None:
        forbid("sendInitialEvents", "sendInitialEvents is forbidden for list")
    return causes


def encode_continue(rv: int, start: tuple[str, str]) -> str:
    """A continue token: the list's resourceVersion (-1: continue at the latest) and the last key."""
    text = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": list(start)})
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
        rv = int(data["rv"])
        start = (str(data["start"][0]), str(data["start"][1]))
    except (ValueError, KeyError, TypeError, IndexError):
        raise bad_request("invalid continue token: continue key is not valid: malformed") from None
    if rv == 0 or rv < -1:
        raise bad_request(
            "invalid continue token: continue key is not valid: "
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        )
    return rv, start


def get_path(obj: Any, dotted: str) -> Any:
    cur = obj
    for part in dotted.strip(".").split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def set_path(obj: JsonObj, dotted: str, value: Any) -> None:
    parts = dotted.strip(".").split(".")
    cur = obj
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    cur[parts[-1]] = value


def render_selector(selector: Any) -> str:
    """A ``metav1.LabelSelector`` as the ``labelSelector`` query string."""
    try:
        return str(selector_from_object(selector))
    except SelectorError:
        return ""


class Store:
    """In-memory API objects with the semantics described in the module docstring."""

    def __init__(self, registry: Registry | None = None, *, history_size: int = 20000) -> None:
        self.registry = registry or Registry()
        self.history_size = max(1, history_size)  # events kept per resource type
        self._rv = 0
        self._objects: dict[tuple[str, str], dict[str, dict[str, JsonObj]]] = {}
        self._by_uid: dict[str, ObjKey] = {}
        self._dependents: dict[str, set[ObjKey]] = {}
        self._history: dict[tuple[str, str], deque[StoreEvent]] = {}
        # per resource type: the newest resourceVersion whose event left the history
        self._expired: dict[tuple[str, str], int] = {}
        self._subs: dict[tuple[str, str], set[Subscription]] = {}
        self._listeners: list[Callable[[StoreEvent], None]] = []
        self._ips = builtins.ClusterIPAllocator()
        for name in INITIAL_NAMESPACES:
            self.create("namespaces", None, {"metadata": {"name": name}}, manager="kube-apiserver")

    # ------------------------------------------------------------------ basics

    @property
    def resource_version(self) -> int:
        return self._rv

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def resolve(self, rt: ResourceType | str) -> ResourceType:
        if isinstance(rt, ResourceType):
            return rt
        found = self.registry.find(rt)
        if found is None:
            raise ApiError(404, "NotFound", f'the server doesn\'t have a resource type "{rt}"')
        return found

    def add_listener(self, callback: Callable[[StoreEvent], None]) -> Callable[[], None]:
        """Call ``callback`` synchronously for every event (in-process watchers); returns an unsubscribe."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def _emit(self, event: StoreEvent) -> None:
        events = self._history.get(event.key)
        if events is None:
            events = self._history[event.key] = deque()
        events.append(event)
        while len(events) > self.history_size:
            self._expired[event.key] = events.popleft().rv
        for sub in list(self._subs.get(event.key, ())):
            sub.offer(event)
        for listener in list(self._listeners):
            listener(event)

    def oldest_resumable(self, rt: ResourceType | str) -> int:
        """The oldest resourceVersion a watch of ``rt`` may start from, and an exact list be
        served at: every later event of the type is still in the history (older: 410)."""
        return self._expired.get(self.resolve(rt).key, 0)

    def _events_since(self, key: tuple[str, str], since: int) -> list[StoreEvent]:
        events = self._history.get(key)
        if not events:
            return []
        index = bisect.bisect_right(events, since, key=lambda e: e.rv)
        return list(itertools.islice(events, index, None))

    def _state_at(self, key: tuple[str, str], rv: int) -> list[JsonObj]:
        """The objects of a type as they were at ``rv`` (the history must reach back to it)."""
        state: dict[tuple[str, str], JsonObj] = {
            (ns, name): obj
            for ns, by_name in self._objects.get(key, {}).items()
            for name, obj in by_name.items()
        }
        for event in reversed(self._history.get(key) or ()):
            if event.rv <= rv:
                break
            meta = event.obj["metadata"]
            ident = (meta.get("namespace", ""), meta["name"])
            if event.type == "ADDED" or event.old is None:
                state.pop(ident, None)
            else:  # MODIFIED or DELETED: the object as it was before
                state[ident] = event.old
        return list(state.values())

    def served(self, rt: ResourceType, obj: JsonObj) -> JsonObj:
        """An object in the form a client of ``rt``'s group/version sees (no copy if equal)."""
        if rt.converter is not None:
            return rt.converter.from_storage(obj)
        if obj.get("apiVersion") != rt.api_version:
            out = dict(obj)
            out["apiVersion"] = rt.api_version
            return out
        return obj

    def _ns(self, rt: ResourceType, namespace: str | None) -> str:
        return (namespace or "") if rt.namespaced else ""

    def _lookup(self, key: tuple[str, str], namespace: str, name: str) -> JsonObj | None:
        return self._objects.get(key, {}).get(namespace, {}).get(name)

    def _existing(self, rt: ResourceType, namespace: str | None, name: str) -> JsonObj:
        obj = self._lookup(rt.key, self._ns(rt, namespace), name)
        if obj is None:
            raise not_found(rt.plural, rt.group, name)
        return obj

    def _storage_rt(self, key: tuple[str, str]) -> ResourceType | None:
        return self.registry.storage_type(key)

    # ------------------------------------------------------------------ indexes

    def _put(self, key: tuple[str, str], obj: JsonObj, old: JsonObj | None) -> None:
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        self._objects.setdefault(key, {}).setdefault(ns, {})[name] = obj
        ident: ObjKey = (key, ns, name)
        self._by_uid[meta["uid"]] = ident
        old_owners = {
            r.get("uid")
            for r in (old or {}).get("metadata", {}).get("ownerReferences") or []
            if isinstance(r, dict)
        }
        new_owners = {
            r.get("uid") for r in meta.get("ownerReferences") or [] if isinstance(r, dict)
        }
        for uid in old_owners - new_owners:
            deps = self._dependents.get(str(uid))
            if deps is not None:
                deps.discard(ident)
                if not deps:
                    del self._dependents[str(uid)]
        for uid in new_owners - old_owners:
            self._dependents.setdefault(str(uid), set()).add(ident)

    def _drop(self, key: tuple[str, str], obj: JsonObj) -> None:
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        by_ns = self._objects.get(key, {})
        names = by_ns.get(ns, {})
        names.pop(name, None)
        if not names:
            by_ns.pop(ns, None)
        self._by_uid.pop(meta["uid"], None)
        ident: ObjKey = (key, ns, name)
        for ref in meta.get("ownerReferences") or []:
            if isinstance(ref, dict):
                deps = self._dependents.get(str(ref.get("uid")))
                if deps is not None:
                    deps.discard(ident)
                    if not deps:
                        del self._dependents[str(ref.get("uid"))]

    def by_uid(self, uid: str) -> JsonObj | None:
        ident = self._by_uid.get(uid)
        return None if ident is None else self._lookup(*ident)

    def dependents_of(self, uid: str) -> JsonList:
        out = []
        for ident in sorted(self._dependents.get(uid, ())):
            obj = self._lookup(*ident)
            if obj is not None:
                out.append(obj)
        return out

    def namespace_is_empty(self, namespace: str) -> bool:
        return not any(
            namespace in by_ns for key, by_ns in self._objects.items() if key != NAMESPACE_KEY
        )

    # ------------------------------------------------------------------ reads

    def read(self, rt: ResourceType | str, namespace: str | None, name: str) -> JsonObj:
        """The object in ``rt``'s served form (a shared reference: do not mutate)."""
        rt = self.resolve(rt)
        return self.served(rt, self._existing(rt, namespace, name))

    def _iter(self, rt: ResourceType, namespace: str | None) -> Iterator[JsonObj]:
        by_ns = self._objects.get(rt.key, {})
        if rt.namespaced and namespace:
            yield from list(by_ns.get(namespace, {}).values())
        else:
            for ns in list(by_ns):
                yield from list(by_ns.get(ns, {}).values())

    def _field_selector(self, rt: ResourceType, text: str | None) -> FieldSelector:
        try:
            parsed = parse_field_selector(text)
        except SelectorError as exc:
            raise bad_request(str(exc)) from None
        aliases = rt.converter.field_aliases if rt.converter else {}
        out = []
        for req in parsed.requirements:
            if req.field not in rt.selectable_fields:
                raise bad_request(f"field label not supported: {req.field}")
            out.append(type(req)(aliases.get(req.field, req.field), req.value, req.negate))
        return FieldSelector(tuple(out))

    def _label_selector(self, text: str | None) -> LabelSelector:
        try:
            return parse_label_selector(text)
        except SelectorError as exc:
            raise bad_request(str(exc)) from None

    def read_list(
        self,
        rt: ResourceType | str,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 0,
        continue_token: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> JsonObj:
        """A ``<Kind>List`` in ``rt``'s served form, sorted by namespace and name.

        The ``resourceVersion`` semantics of kube-apiserver 1.32 (API concepts, "Semantics
        for get and list"): unset is the most recent state; ``"0"`` is any state (served
        as the watch cache does, ignoring ``limit``); another value is "not older than"
        (the current state) unless ``resourceVersionMatch=Exact``, or ``limit`` is set
        without a match, which serve the state at exactly that version from the history
        (410 Expired if it is older). Pages of a ``limit`` list are one snapshot: the
        continue token carries the first page's resourceVersion and every page is served
        at it (410 with a token that continues at the latest state once the history no
        longer reaches back). The list's ``metadata.resourceVersion`` is the version the
        items show.
        """
        rt = self.resolve(rt)
        labels = self._label_selector(label_selector)
        fields = self._field_selector(rt, field_selector)
        match = resource_version_match or ""
        problems = list_option_problems(
            watch=False,
            resource_version=resource_version,
            match=match,
            continue_token=continue_token,
            send_initial_events=None,
        )
        if problems:
            raise invalid_list_options(problems)
        requested = parse_resource_version(resource_version)
        at: int | None = None  # serve the state at this resourceVersion (None: the current one)
        start: tuple[str, str] | None = None
        if continue_token:
            if requested:
                raise bad_request("specifying resource version is not allowed when using continue")
            token_rv, start = decode_continue(continue_token)
            if token_rv > self._rv:
                raise too_large_resource_version(token_rv, self._rv)
            if token_rv > 0:
                if token_rv < self.oldest_resumable(rt):
                    raise gone(INCONSISTENT_CONTINUE, list_continue=encode_continue(-1, start))
                at = token_rv
        elif requested:
            if requested > self._rv:
                raise too_large_resource_version(requested, self._rv)
            if match == EXACT or (not match and limit > 0):
                if requested < self.oldest_resumable(rt):
                    raise gone(EXPIRED_LIST)
                at = requested
        elif requested == 0:
            limit = 0  # "any": the watch cache serves it whole, whatever the limit
        list_rv = self._rv if at is None else at
        namespace = namespace if rt.namespaced else None
        candidates: JsonList
        if at is not None and at < self._rv:
            candidates = [
                o
                for o in self._state_at(rt.key, at)
                if namespace is None or o["metadata"].get("namespace", "") == namespace
            ]
        else:
            candidates = self._current_candidates(rt, namespace, fields)
        items = [
            o
            for o in candidates
            if labels.matches(o["metadata"].get("labels"))
            and fields.matches(lambda f, o=o: field_value(o, f))  # type: ignore[misc]
        ]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        if start is not None:
            items = [
                o
                for o in items
                if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start
            ]
        meta: JsonObj = {"resourceVersion": str(list_rv)}
        if limit and limit > 0 and len(items) > limit:
            last = items[limit - 1]["metadata"]
            meta["continue"] = encode_continue(list_rv, (last.get("namespace", ""), last["name"]))
            if labels.empty and not fields.requirements:  # unknown with selectors
                meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": meta,
            "items": [self.served(rt, o) for o in items],
        }

    def _current_candidates(
        self, rt: ResourceType, namespace: str | None, fields: FieldSelector
    ) -> JsonList:
        """Stored objects of ``rt`` that may match: narrowed by namespace and name hints."""
        ns_hint = fields.value_of("metadata.namespace") if rt.namespaced else None
        name_hint = fields.value_of("metadata.name")
        if ns_hint is not None and namespace and ns_hint != namespace:
            return []
        if ns_hint is not None:
            namespace = ns_hint
        if name_hint is not None and (namespace or not rt.namespaced):
            found = self._lookup(rt.key, namespace or "", name_hint)
            return [found] if found is not None else []
        return list(self._iter(rt, namespace))

    # raw accessors for in-process controllers (shared references: never mutate them)

    def peek(self, rt: ResourceType | str, namespace: str | None, name: str) -> JsonObj | None:
        """The stored object itself, or None. Stored objects are never mutated in place."""
        rt = self.resolve(rt)
        return self._lookup(rt.key, self._ns(rt, namespace), name)

    def peek_all(self, rt: ResourceType | str, namespace: str | None = None) -> JsonList:
        """All stored objects of a type (optionally one namespace), unsorted, no copies."""
        return list(self._iter(self.resolve(rt), namespace))

    # convenience accessors for tests and in-process callers (deep copies)

    def get(
        self, resource: ResourceType | str, name: str, namespace: str | None = None
    ) -> JsonObj | None:
        """A copy of the object, or ``None`` if absent. ``resource`` as kubectl spells it."""
        rt = self.resolve(resource)
        obj = self._lookup(rt.key, self._ns(rt, namespace), name)
        return None if obj is None else deep_copy(self.served(rt, obj))

    def fetch(
        self, resource: ResourceType | str, name: str, namespace: str | None = None
    ) -> JsonObj:
        """A copy of the object; raises a 404 ``ApiError`` if it is absent."""
        rt = self.resolve(resource)
        return deep_copy(self.read(rt, namespace, name))  # type: ignore[no-any-return]

    def list(
        self,
        resource: ResourceType | str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> JsonList:
        """Copies of the matching objects, sorted by namespace and name."""
        result = self.read_list(
            resource, namespace, label_selector=label_selector, field_selector=field_selector
        )
        items: JsonList = deep_copy(result["items"])
        return items

    # ------------------------------------------------------------------ watch

    def watch(
        self,
        rt: ResourceType | str,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        send_initial_events: bool | None = None,
    ) -> Subscription:
        """Subscribe; what the stream starts with is queued at once.

        With ``send_initial_events`` (the default for ``resource_version`` unset or
        ``"0"``): synthetic ADDED events for the current state (which must be at least
        ``resource_version``: 504 otherwise), then every later change. Without it: the
        changes after ``resource_version`` (replayed from the history; older than the
        history of the type: 410 Expired), or after the current state when it is unset or
        ``"0"``. A ``resource_version`` the store has not reached yet starts there.
        """
        rt = self.resolve(rt)
        labels = self._label_selector(label_selector)
        fields = self._field_selector(rt, field_selector)
        since = parse_resource_version(resource_version)
        initial = send_initial_events if send_initial_events is not None else not since
        sub = Subscription(
            self, rt, namespace if rt.namespaced and namespace else None, labels, fields
        )
        if initial:
            if since and since > self._rv:
                raise too_large_resource_version(since, self._rv)
            sub.start_rv = self._rv
            for obj in sorted(
                self._iter(rt, sub.namespace),
                key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]),
            ):
                if sub.matches(obj):
                    sub.queue.put_nowait(("ADDED", obj, None, self._rv))
            sub.initial_count = sub.queue.qsize()
        elif not since:
            sub.start_rv = self._rv
        else:
            sub.start_rv = since
            if since < self._rv:
                oldest = self.oldest_resumable(rt)
                if since < oldest:
                    raise gone(f"too old resource version: {since} ({oldest})")
                for event in self._events_since(rt.key, since):
                    sub.offer(event)
        self._subs.setdefault(rt.key, set()).add(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.key)
        if subs is not None:
            subs.discard(sub)

    def close_watches(self, key: tuple[str, str] | None = None) -> None:
        """End watch streams (of one resource, or all of them)."""
        keys = [key] if key is not None else list(self._subs)
        for k in keys:
            for sub in list(self._subs.get(k, ())):
                sub.close()

    # ------------------------------------------------------------------ decoding & checks

    def _decode(self, rt: ResourceType, body: Any) -> JsonObj:
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON or YAML object")
        kind = body.get("kind")
        if kind not in (None, "", rt.kind):
            raise bad_request(
                f"the kind in the request body ({kind}) does not match the resource {rt.qualified} (kind {rt.kind})"
            )
        api_version = body.get("apiVersion")
        if api_version not in (None, "", rt.api_version):
            group = api_version.rpartition("/")[0] if isinstance(api_version, str) else None
            if group != rt.group or rt.converter is not None:
                raise bad_request(
                    f"the API version in the data ({api_version}) does not match the expected API version ({rt.api_version})"
                )
        obj: JsonObj = deep_copy(body)
        obj["kind"] = rt.kind
        obj["apiVersion"] = rt.api_version
        if rt.converter is not None:
            obj = rt.converter.to_storage(obj)
        elif rt.storage_version and rt.storage_version != rt.version:
            obj["apiVersion"] = f"{rt.group}/{rt.storage_version}"
        meta = obj.get("metadata")
        if meta is None:
            obj["metadata"] = {}
        elif not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        return obj

    def _check_namespace_for_create(self, rt: ResourceType, namespace: str) -> None:
        if not rt.namespaced:
            return
        if not namespace:
            raise bad_request("the namespace of the object must be set for a namespaced resource")
        ns_obj = self._lookup(NAMESPACE_KEY, "", namespace)
        if ns_obj is None:
            raise not_found("namespaces", "", namespace)
        if ns_obj["metadata"].get("deletionTimestamp"):
            raise forbidden(
                f"unable to create new content in namespace {namespace} because it is being terminated",
                resource=rt.plural,
                group=rt.group,
            )

    def _normalize(
        self, rt: ResourceType, obj: JsonObj, old: JsonObj | None, field_validation: str | None
    ) -> StrList:
        """Prune, default and validate; returns warnings, raises 400/422."""
        meta = obj["metadata"]
        name = str(meta.get("name") or meta.get("generateName") or "")
        unknown: list[str] = []
        schema.prune_metadata(meta, "metadata", unknown)
        if rt.is_crd:
            unknown += schema.prune(obj, rt.schema)
        warnings: list[str] = []
        mode = (field_validation or "Warn").capitalize()
        if unknown and mode == "Strict":
            listed = ", ".join(f'unknown field "{p}"' for p in unknown)
            raise bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: strict decoding error: {listed}'
            )
        if unknown and mode == "Warn":
            warnings = [f'unknown field "{p}"' for p in unknown]
        causes: list[Cause] = []
        if rt.is_crd:
            schema.apply_defaults(obj, rt.schema)
            causes += schema.validate(obj, rt.schema)
        else:
            builtins.apply_defaults(rt.kind, obj)
            causes += builtins.validate(rt.kind, obj, old)
            if rt.key == CRD_KEY:
                causes += crd_problems(obj)
        if meta.get("name"):
            causes += builtins.validate_name(rt.kind, str(meta["name"]))
        causes += builtins.validate_labels(meta.get("labels"))
        causes += builtins.validate_annotations(meta.get("annotations"))
        for i, ref in enumerate(meta.get("ownerReferences") or []):
            if not isinstance(ref, dict):
                causes.append(
                    Cause(
                        f"metadata.ownerReferences[{i}]",
                        "FieldValueTypeInvalid",
                        "Invalid value: expected an object",
                    )
                )
                continue
            for key in ("apiVersion", "kind", "name", "uid"):
                if not ref.get(key):
                    causes.append(
                        Cause(
                            f"metadata.ownerReferences[{i}].{key}",
                            "FieldValueRequired",
                            "Required value",
                        )
                    )
        finalizers = meta.get("finalizers")
        if finalizers is not None and (
            not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers)
        ):
            causes.append(
                Cause(
                    "metadata.finalizers",
                    "FieldValueTypeInvalid",
                    "Invalid value: expected a list of strings",
                )
            )
        if causes:
            raise invalid(rt.kind, rt.group, name, causes)
        return warnings

    # ------------------------------------------------------------------ create

    def create(
        self,
        rt: ResourceType | str,
        namespace: str | None,
        body: Any,
        *,
        manager: str = "unknown",
        dry_run: bool = False,
        field_validation: str | None = None,
        managed_fields: JsonList | None = None,
    ) -> WriteResult:
        rt = self.resolve(rt)
        if rt.crd_name is not None:
            crd = self._lookup(CRD_KEY, "", rt.crd_name)
            if crd is not None and crd["metadata"].get("deletionTimestamp"):
                raise method_not_allowed(
                    "create not allowed while custom resource definition is terminating"
                )
        obj = self._decode(rt, body)
        meta = obj["metadata"]
        if rt.namespaced:
            body_ns = meta.get("namespace") or ""
            if namespace and body_ns and body_ns != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = body_ns or namespace or ""
        else:
            meta.pop("namespace", None)
        ns = meta.get("namespace", "")
        self._check_namespace_for_create(rt, ns)
        if meta.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        for key in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "selfLink",
            "managedFields",
        ):
            meta.pop(key, None)
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise invalid(
                    rt.kind,
                    rt.group,
                    "",
                    [
                        Cause(
                            "metadata.name",
                            "FieldValueRequired",
                            "Required value: name or generateName is required",
                        )
                    ],
                )
            for _ in range(20):
                candidate = f"{prefix}{random_suffix()}"
                if self._lookup(rt.key, ns, candidate) is None:
                    meta["name"] = candidate
                    break
            else:
                raise ApiError(
                    409, "AlreadyExists", f"could not generate a unique name with prefix {prefix!r}"
                )
        name = meta["name"]
        if self._lookup(rt.key, ns, name) is not None:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{rt.qualified} "{name}" already exists',
                name=name,
                group=rt.group,
                kind=rt.plural,
            )
        if rt.status_subresource:
            obj.pop("status", None)
        self._initial_status(rt, obj)
        warnings = self._normalize(rt, obj, None, field_validation)
        if rt.key == SERVICE_KEY:
            self._allocate_cluster_ip(obj)
        if rt.key == DAEMONSET_KEY:
            self._template_generation(obj, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339()
        if rt.has_generation:
            meta["generation"] = 1
        meta["managedFields"] = (
            managed_fields
            if managed_fields is not None
            else managed.track_update(None, obj, rt, manager, None)
        )
        if not meta["managedFields"]:
            del meta["managedFields"]
        if dry_run:
            return WriteResult(self.served(rt, obj), tuple(warnings), True)
        meta["resourceVersion"] = str(self._next_rv())
        self._put(rt.key, obj, None)
        self._emit(StoreEvent("ADDED", rt.key, obj, None, self._rv))
        self._after_write(rt.key, None, obj)
        return WriteResult(self.served(rt, obj), tuple(warnings), True)

    def _initial_status(self, rt: ResourceType, obj: JsonObj) -> None:
        if rt.key == NAMESPACE_KEY:
            obj["status"] = {"phase": "Active"}
        elif rt.key == ("", "pods"):
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        elif rt.key == SERVICE_KEY:
            obj["status"] = {"loadBalancer": {}}
        elif rt.status_subresource and not rt.is_crd:
            obj["status"] = {}

    def _allocate_cluster_ip(self, obj: JsonObj) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict) or spec.get("type") == "ExternalName":
            return
        ip = spec.get("clusterIP")
        if ip in (None, ""):
            ip = self._ips.allocate()
            spec["clusterIP"] = ip
        elif ip != "None":
            self._ips.reserve(str(ip))
        spec.setdefault("clusterIPs", [ip])

    # ------------------------------------------------------------------ update

    def replace(
        self,
        rt: ResourceType | str,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        manager: str = "unknown",
        dry_run: bool = False,
        field_validation: str | None = None,
    ) -> WriteResult:
        """PUT: replace the object (or only its status with ``subresource="status"``)."""
        rt = self.resolve(rt)
        self._check_subresource(rt, subresource)
        existing = self._existing(rt, namespace, name)
        obj = self._decode(rt, body)
        self._check_identity(rt, obj, namespace, name)
        sent_rv = obj["metadata"].get("resourceVersion")
        if sent_rv and str(sent_rv) != existing["metadata"]["resourceVersion"]:
            raise stale(rt.plural, rt.group, name)
        new = self._split_status(rt, existing, obj, subresource)
        return self._commit(
            rt,
            existing,
            new,
            manager=manager,
            subresource=subresource,
            dry_run=dry_run,
            field_validation=field_validation,
        )

    @staticmethod
    def _split_status(
        rt: ResourceType, existing: JsonObj, written: JsonObj, subresource: str | None
    ) -> JsonObj:
        """The status subresource rule: a write to /status changes only the status, and
        a write to the main resource of a type with that subresource keeps the status."""
        if subresource == "status":
            new: JsonObj = deep_copy(existing)
            new["metadata"] = Store._status_metadata(rt, existing["metadata"], written["metadata"])
            if "status" in written:
                new["status"] = written["status"]
            else:
                new.pop("status", None)
            return new
        if rt.status_subresource:
            if "status" in existing:
                written["status"] = deep_copy(existing["status"])
            else:
                written.pop("status", None)
        return written

    def _check_subresource(self, rt: ResourceType, subresource: str | None) -> None:
        if subresource is None:
            return
        if subresource not in rt.subresources:
            raise ApiError(
                404,
                "NotFound",
                f"the server could not find the requested resource ({rt.qualified}/{subresource})",
            )

    def _check_identity(
        self, rt: ResourceType, obj: JsonObj, namespace: str | None, name: str
    ) -> None:
        meta = obj["metadata"]
        if meta.get("name") not in (None, "", name):
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and namespace and meta.get("namespace") not in (None, "", namespace):
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )

    def _commit(
        self,
        rt: ResourceType,
        existing: JsonObj,
        new: JsonObj,
        *,
        manager: str,
        subresource: str | None,
        dry_run: bool = False,
        field_validation: str | None = None,
        managed_fields: JsonList | None = None,
    ) -> WriteResult:
        old_meta = existing["metadata"]
        if subresource == "status":
            status_managed = new["metadata"].get("managedFields")
            new["metadata"] = self._status_metadata(rt, old_meta, new["metadata"])
            if managed_fields is None and status_managed is not None:
                new["metadata"]["managedFields"] = status_managed
        meta = new.setdefault("metadata", {})
        for key in (
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise invalid(
                    rt.kind,
                    rt.group,
                    meta["name"],
                    [
                        Cause(
                            "metadata.finalizers",
                            "FieldValueForbidden",
                            f"Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {sorted(added)!r}",
                        )
                    ],
                )
        warnings = self._normalize(rt, new, existing, field_validation)
        if rt.key == SERVICE_KEY:
            self._allocate_cluster_ip(new)
        if rt.key == DAEMONSET_KEY and subresource is None:
            self._template_generation(new, existing)
        if rt.has_generation and subresource is None and self._spec_changed(rt, existing, new):
            meta["generation"] = int(old_meta.get("generation") or 0) + 1
        meta["managedFields"] = (
            managed_fields
            if managed_fields is not None
            else managed.track_update(existing, new, rt, manager, subresource)
        )
        if not meta["managedFields"]:
            del meta["managedFields"]
        if self._same(existing, new):
            return WriteResult(self.served(rt, existing), tuple(warnings))
        if dry_run:
            return WriteResult(self.served(rt, new), tuple(warnings))
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            final = self._remove(rt.key, new)
            return WriteResult(self.served(rt, final), tuple(warnings))
        meta["resourceVersion"] = str(self._next_rv())
        self._put(rt.key, new, existing)
        self._emit(StoreEvent("MODIFIED", rt.key, new, existing, self._rv))
        self._after_write(rt.key, existing, new)
        return WriteResult(self.served(rt, new), tuple(warnings))

    @staticmethod
    def _same(a: JsonObj, b: JsonObj) -> bool:
        if a.keys() != b.keys():
            return False
        for key in a:
            if key == "metadata":
                ma = {k: v for k, v in a[key].items() if k != "resourceVersion"}
                mb = {k: v for k, v in b[key].items() if k != "resourceVersion"}
                if ma != mb:
                    return False
            elif a[key] != b[key]:
                return False
        return True

    @staticmethod
    def _spec_changed(rt: ResourceType, old: JsonObj, new: JsonObj) -> bool:
        """Whether a write to the main resource bumps ``metadata.generation``: any change
        outside metadata (and status, for types with a status subresource) — the rule of
        custom resources and of the apps/v1 strategies — and, for Deployments, a change of
        annotations too (they are copied to the ReplicaSets, so the apps/v1 Deployment
        strategy counts them as desired state). Labels never count."""
        skip = {"metadata", "apiVersion", "kind"}
        if rt.status_subresource:
            skip.add("status")
        keys = (set(old) | set(new)) - skip
        if any(old.get(k) != new.get(k) for k in keys):
            return True
        if rt.key == DEPLOYMENT_KEY:
            before = old["metadata"].get("annotations") or {}
            return before != (new["metadata"].get("annotations") or {})
        return False

    @staticmethod
    def _status_metadata(rt: ResourceType, old_meta: JsonObj, written: JsonObj) -> JsonObj:
        """The metadata a write to ``/status`` leaves: the stored one, except that the
        apps/v1 Deployment status strategy lets annotations through (the deployment
        controller writes its revision annotation there, without a new generation)."""
        meta: JsonObj = deep_copy(old_meta)
        if rt.key == DEPLOYMENT_KEY:
            annotations = written.get("annotations")
            if annotations:
                meta["annotations"] = deep_copy(annotations)
            else:
                meta.pop("annotations", None)
        return meta

    @staticmethod
    def _template_generation(obj: JsonObj, old: JsonObj | None) -> None:
        """apps/v1 DaemonSets show ``spec.templateGeneration`` as an annotation: set from the
        request on create (at least 1), then kept by the server and raised by one whenever
        the pod template changes."""
        annotations = obj["metadata"].setdefault("annotations", {})
        sent = annotations.get(TEMPLATE_GENERATION)
        if sent is not None and not str(sent).lstrip("-").isdigit():
            raise bad_request(
                f'annotation {TEMPLATE_GENERATION}: invalid value "{sent}": not an integer'
            )
        if old is None:
            value = max(1, int(sent or 0))
        else:
            value = int((old["metadata"].get("annotations") or {}).get(TEMPLATE_GENERATION) or 1)
            if (old.get("spec") or {}).get("template") != (obj.get("spec") or {}).get("template"):
                value += 1
        annotations[TEMPLATE_GENERATION] = str(value)

    def update_with(
        self,
        rt: ResourceType | str,
        namespace: str | None,
        name: str,
        mutate: Callable[[JsonObj], None],
        *,
        subresource: str | None = None,
        manager: str = "sandbox",
    ) -> WriteResult:
        """Read-modify-write for in-process controllers: ``mutate`` edits a copy in place."""
        rt = self.resolve(rt)
        storage = self._storage_rt(rt.key) or rt
        existing = self._existing(storage, namespace, name)
        new = deep_copy(existing)
        mutate(new)
        if subresource == "status":
            keep = new.get("status")
            written_meta = new["metadata"]
            new = deep_copy(existing)
            new["metadata"] = self._status_metadata(storage, existing["metadata"], written_meta)
            if keep is None:
                new.pop("status", None)
            else:
                new["status"] = keep
        elif storage.status_subresource:
            if "status" in existing:
                new["status"] = deep_copy(existing["status"])
            else:
                new.pop("status", None)
        return self._commit(storage, existing, new, manager=manager, subresource=subresource)

    # ------------------------------------------------------------------ patch

    def patch(
        self,
        rt: ResourceType | str,
        namespace: str | None,
        name: str,
        patch_type: str,
        patch: Any,
        *,
        subresource: str | None = None,
        manager: str = "unknown",
        force: bool = False,
        dry_run: bool = False,
        field_validation: str | None = None,
    ) -> WriteResult:
        rt = self.resolve(rt)
        self._check_subresource(rt, subresource)
        if patch_type not in PATCH_TYPES:
            raise unsupported_media_type(
                f"the body of the request was in an unknown format - accepted media types include: {', '.join(PATCH_TYPES)}"
            )
        if patch_type == PATCH_STRATEGIC and not rt.strategic_merge:
            raise unsupported_media_type(
                "strategic merge patch is not supported for custom resources; use a JSON merge patch or JSON patch"
            )
        ns = self._ns(rt, namespace)
        existing = self._lookup(rt.key, ns, name)
        if patch_type == PATCH_APPLY:
            return self._apply(
                rt,
                namespace,
                name,
                existing,
                patch,
                manager=manager,
                force=force,
                subresource=subresource,
                dry_run=dry_run,
                field_validation=field_validation,
            )
        if existing is None:
            raise not_found(rt.plural, rt.group, name)
        if force:
            raise bad_request(
                "force is only allowed for apply patches (application/apply-patch+yaml)"
            )
        base = self.served(rt, existing)
        try:
            if patch_type == PATCH_MERGE:
                if not isinstance(patch, dict):
                    raise PatchFormatError("a JSON merge patch for an object must be a JSON object")
                patched = merge_patch(base, patch)
            elif patch_type == PATCH_JSON:
                patched = json_patch(base, patch)
            else:
                patched = strategic_merge_patch(base, patch, rt.kind)
        except PatchFormatError as exc:
            raise bad_request(str(exc)) from None
        except PatchError as exc:
            raise unprocessable(str(exc)) from None
        if not isinstance(patched, dict):
            raise unprocessable("the patched document is not an object")
        meta = patched.get("metadata")
        if not isinstance(meta, dict):
            raise unprocessable("the patch removed the object's metadata")
        if (
            meta.get("resourceVersion") not in (None, "")
            and str(meta["resourceVersion"]) != existing["metadata"]["resourceVersion"]
        ):
            raise stale(rt.plural, rt.group, name)
        if meta.get("name") not in (None, name):
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        new = self._decode(rt, patched)
        new = self._split_status(rt, existing, new, subresource)
        return self._commit(
            rt,
            existing,
            new,
            manager=manager,
            subresource=subresource,
            dry_run=dry_run,
            field_validation=field_validation,
        )

    def _apply(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        existing: JsonObj | None,
        config: Any,
        *,
        manager: str,
        force: bool,
        subresource: str | None,
        dry_run: bool,
        field_validation: str | None,
    ) -> WriteResult:
        if not manager or manager == "unknown":
            raise bad_request("PATCH: fieldManager is required for apply requests")
        if not isinstance(config, dict):
            raise bad_request("an apply patch must be a YAML or JSON object")
        for key in ("apiVersion", "kind"):
            if not config.get(key):
                raise bad_request(f"invalid object: {key} must be set in an apply configuration")
        cmeta = config.get("metadata")
        if not isinstance(cmeta, dict) or cmeta.get("name") not in (None, "", name):
            if isinstance(cmeta, dict) and cmeta.get("name") not in (None, ""):
                raise bad_request(
                    f"the name of the object ({cmeta.get('name')}) does not match the name on the URL ({name})"
                )
        config = self.served(rt, self._decode(rt, config))
        config.setdefault("metadata", {})["name"] = name
        if rt.namespaced and namespace:
            config["metadata"].setdefault("namespace", namespace)
        if existing is None:
            if subresource is not None:
                raise not_found(rt.plural, rt.group, name)
            merged = managed.apply(None, config, rt, manager, force=force, subresource=None)
            managed_fields = merged["metadata"].pop("managedFields", None)
            merged["metadata"].pop("resourceVersion", None)
            return self.create(
                rt,
                namespace,
                merged,
                manager=manager,
                dry_run=dry_run,
                field_validation=field_validation,
                managed_fields=managed_fields,
            )
        sent_rv = cmeta.get("resourceVersion") if isinstance(cmeta, dict) else None
        if sent_rv and str(sent_rv) != existing["metadata"]["resourceVersion"]:
            raise stale(rt.plural, rt.group, name)
        live = self.served(rt, existing)
        merged = managed.apply(live, config, rt, manager, force=force, subresource=subresource)
        managed_fields = merged["metadata"].get("managedFields")
        new = self._decode(rt, merged)
        if subresource == "status":
            status_new = deep_copy(existing)
            status_new["status"] = new.get("status", {})
            new = status_new
        elif rt.status_subresource:
            if "status" in existing:
                new["status"] = deep_copy(existing["status"])
            else:
                new.pop("status", None)
        return self._commit(
            rt,
            existing,
            new,
            manager=manager,
            subresource=subresource,
            dry_run=dry_run,
            field_validation=field_validation,
            managed_fields=managed_fields,
        )

    # ------------------------------------------------------------------ scale

    def _scale_object(self, rt: ResourceType, obj: JsonObj) -> JsonObj:
        spec = rt.scale
        assert spec is not None
        if spec.label_selector_path is None:
            selector = render_selector(get_path(obj, "spec.selector"))
        else:
            selector = (
                str(get_path(obj, spec.label_selector_path) or "")
                if spec.label_selector_path
                else ""
            )
        meta = obj["metadata"]
        status: JsonObj = {"replicas": int(get_path(obj, spec.status_replicas_path) or 0)}
        if selector:
            status["selector"] = selector
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": int(get_path(obj, spec.spec_replicas_path) or 0)},
            "status": status,
        }

    def read_scale(self, rt: ResourceType | str, namespace: str | None, name: str) -> JsonObj:
        rt = self.resolve(rt)
        self._check_subresource(rt, "scale")
        return self._scale_object(rt, self._existing(rt, namespace, name))

    def write_scale(
        self,
        rt: ResourceType | str,
        namespace: str | None,
        name: str,
        *,
        body: Any = None,
        patch_type: str | None = None,
        patch: Any = None,
        manager: str = "unknown",
        dry_run: bool = False,
    ) -> JsonObj:
        rt = self.resolve(rt)
        self._check_subresource(rt, "scale")
        assert rt.scale is not None
        existing = self._existing(rt, namespace, name)
        current = self._scale_object(rt, existing)
        if patch_type is None:
            scale = body
        else:
            try:
                if patch_type == PATCH_JSON:
                    scale = json_patch(current, patch)
                elif patch_type in (PATCH_MERGE, PATCH_STRATEGIC, PATCH_APPLY):
                    scale = merge_patch(current, patch)
                else:
                    raise unsupported_media_type(f"unsupported patch type {patch_type}")
            except PatchFormatError as exc:
                raise bad_request(str(exc)) from None
            except PatchError as exc:
                raise unprocessable(str(exc)) from None
        if not isinstance(scale, dict):
            raise bad_request("the request body must be a Scale object")
        sent_rv = (scale.get("metadata") or {}).get("resourceVersion")
        if sent_rv and str(sent_rv) != existing["metadata"]["resourceVersion"]:
            raise stale(rt.plural, rt.group, name)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise invalid(
                "Scale",
                "autoscaling",
                name,
                [
                    Cause(
                        "spec.replicas",
                        "FieldValueInvalid",
                        f"Invalid value: {replicas}: must be greater than or equal to 0",
                    )
                ],
            )
        new = deep_copy(existing)
        set_path(new, rt.scale.spec_replicas_path, replicas)
        result = self._commit(rt, existing, new, manager=manager, subresource=None, dry_run=dry_run)
        return self._scale_object(rt, result.obj)

    # ------------------------------------------------------------------ delete

    def delete(
        self,
        rt: ResourceType | str,
        namespace: str | None,
        name: str,
        *,
        propagation: str | None = None,
        preconditions: Mapping[str, Any] | None = None,
        dry_run: bool = False,
    ) -> DeleteResult:
        rt = self.resolve(rt)
        existing = self._existing(rt, namespace, name)
        meta = existing["metadata"]
        for key in ("uid", "resourceVersion"):
            wanted = (preconditions or {}).get(key)
            if wanted and str(wanted) != str(meta.get(key)):
                label = "UID" if key == "uid" else "ResourceVersion"
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {rt.qualified} "{name}": Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {meta.get(key)}',
                    name=name,
                    group=rt.group,
                    kind=rt.plural,
                )
        policy = propagation or "Background"
        if policy not in ("Background", "Foreground", "Orphan"):
            raise bad_request(
                f'propagationPolicy: Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan"'
            )
        if dry_run:
            return DeleteResult(self.served(rt, existing), False)
        obj, removed = self._delete(rt.key, existing, policy)
        return DeleteResult(self.served(rt, obj), removed)

    def delete_collection(
        self,
        rt: ResourceType | str,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        propagation: str | None = None,
        dry_run: bool = False,
    ) -> JsonObj:
        rt = self.resolve(rt)
        listed = self.read_list(
            rt, namespace, label_selector=label_selector, field_selector=field_selector
        )
        items = []
        for item in listed["items"]:
            meta = item["metadata"]
            try:
                items.append(
                    self.delete(
                        rt,
                        meta.get("namespace"),
                        meta["name"],
                        propagation=propagation,
                        dry_run=dry_run,
                    ).obj
                )
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    def _blocking_dependents(self, uid: str) -> JsonList:
        out = []
        for dep in self.dependents_of(uid):
            for ref in dep["metadata"].get("ownerReferences") or []:
                if (
                    isinstance(ref, dict)
                    and ref.get("uid") == uid
                    and ref.get("blockOwnerDeletion")
                ):
                    out.append(dep)
                    break
        return out

    def _delete(self, key: tuple[str, str], existing: JsonObj, policy: str) -> tuple[JsonObj, bool]:
        meta = existing["metadata"]
        uid = meta["uid"]
        if meta.get("deletionTimestamp"):
            return existing, False
        if policy == "Orphan":
            self._orphan_dependents(uid)
        finalizers = list(meta.get("finalizers") or [])
        foreground = policy == "Foreground" and bool(self.dependents_of(uid))
        if foreground and FOREGROUND not in finalizers:
            finalizers.append(FOREGROUND)
        terminating_kinds = key in (NAMESPACE_KEY, CRD_KEY)
        if finalizers or terminating_kinds:
            new: JsonObj = deep_copy(existing)
            nmeta = new["metadata"]
            nmeta["deletionTimestamp"] = rfc3339()
            nmeta["deletionGracePeriodSeconds"] = 0
            if finalizers:
                nmeta["finalizers"] = finalizers
            if "generation" in nmeta:
                nmeta["generation"] = int(nmeta["generation"]) + 1
            if key == NAMESPACE_KEY:
                new.setdefault("status", {})["phase"] = "Terminating"
            if key == CRD_KEY:
                self._set_condition(
                    new,
                    "Terminating",
                    "True",
                    "InstanceDeletionInProgress",
                    "CustomResource deletion is in progress",
                )
            nmeta["resourceVersion"] = str(self._next_rv())
            self._put(key, new, existing)
            self._emit(StoreEvent("MODIFIED", key, new, existing, self._rv))
            if foreground:
                for dep in self.dependents_of(uid):
                    dep_key = self._by_uid.get(dep["metadata"]["uid"])
                    if dep_key is not None:
                        self._delete(dep_key[0], dep, "Foreground")
            if key == NAMESPACE_KEY:
                self._terminate_namespace(new)
            elif key == CRD_KEY:
                self._terminate_crd(new)
            current = self._lookup(key, nmeta.get("namespace", ""), nmeta["name"])
            if current is None:
                return new, True
            self._maybe_release_foreground(current)
            still = self._lookup(key, nmeta.get("namespace", ""), nmeta["name"])
            return (still or new), still is None
        return self._remove(key, existing), True

    def _remove(self, key: tuple[str, str], obj: JsonObj) -> JsonObj:
        """Remove for good: DELETED event, then GC, foreground owners and terminations."""
        final = dict(obj)
        final["metadata"] = dict(obj["metadata"])
        final["metadata"]["resourceVersion"] = str(self._next_rv())
        stored = self._lookup(key, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        self._drop(key, stored if stored is not None else obj)
        self._emit(StoreEvent("DELETED", key, final, obj, self._rv))
        meta = final["metadata"]
        if key == SERVICE_KEY:
            ip = (final.get("spec") or {}).get("clusterIP")
            if ip and ip != "None":
                self._ips.release(str(ip))
        if key == CRD_KEY:
            self._unregister_crd(final)
        self._collect_garbage(meta["uid"])
        for ref in meta.get("ownerReferences") or []:
            owner = self.by_uid(str(ref.get("uid"))) if isinstance(ref, dict) else None
            if owner is not None:
                self._maybe_release_foreground(owner)
        ns = meta.get("namespace", "")
        if ns:
            ns_obj = self._lookup(NAMESPACE_KEY, "", ns)
            if ns_obj is not None and ns_obj["metadata"].get("deletionTimestamp"):
                self._finish_namespace(ns_obj)
        storage = self._storage_rt(key)
        if storage is not None and storage.crd_name is not None:
            crd = self._lookup(CRD_KEY, "", storage.crd_name)
            if crd is not None and crd["metadata"].get("deletionTimestamp"):
                self._finish_crd(crd)
        return final

    def _internal_update(
        self, key: tuple[str, str], obj: JsonObj, mutate: Callable[[JsonObj], None], manager: str
    ) -> None:
        rt = self._storage_rt(key)
        if rt is None:
            return
        new = deep_copy(obj)
        mutate(new)
        self._commit(rt, obj, new, manager=manager, subresource=None)

    def _orphan_dependents(self, uid: str) -> None:
        for dep in self.dependents_of(uid):
            ident = self._by_uid.get(dep["metadata"]["uid"])
            if ident is None:
                continue

            def drop_ref(o: JsonObj, uid: str = uid) -> None:
                refs = [
                    r for r in o["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
                ]
                if refs:
                    o["metadata"]["ownerReferences"] = refs
                else:
                    o["metadata"].pop("ownerReferences", None)

            self._internal_update(ident[0], dep, drop_ref, "garbage-collector")

    def _collect_garbage(self, uid: str) -> None:
        for dep in self.dependents_of(uid):
            ident = self._by_uid.get(dep["metadata"]["uid"])
            if ident is None:
                continue
            refs = [r for r in dep["metadata"].get("ownerReferences") or [] if isinstance(r, dict)]
            alive = [r for r in refs if r.get("uid") != uid and str(r.get("uid")) in self._by_uid]
            current = self._lookup(*ident)
            if current is None:
                continue
            if alive:

                def keep_alive(o: JsonObj, uid: str = uid) -> None:
                    o["metadata"]["ownerReferences"] = [
                        r for r in o["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
                    ]

                self._internal_update(ident[0], current, keep_alive, "garbage-collector")
            else:
                self._delete(ident[0], current, "Background")

    def _maybe_release_foreground(self, owner: JsonObj) -> None:
        meta = owner["metadata"]
        if not meta.get("deletionTimestamp") or FOREGROUND not in (meta.get("finalizers") or []):
            return
        if self._blocking_dependents(meta["uid"]):
            return
        ident = self._by_uid.get(meta["uid"])
        if ident is None:
            return

        def release(o: JsonObj) -> None:
            o["metadata"]["finalizers"] = [
                f for f in o["metadata"].get("finalizers") or [] if f != FOREGROUND
            ]

        self._internal_update(ident[0], owner, release, "garbage-collector")

    # namespaces

    def _terminate_namespace(self, ns_obj: JsonObj) -> None:
        name = ns_obj["metadata"]["name"]
        for key, by_ns in list(self._objects.items()):
            if key == NAMESPACE_KEY:
                continue
            for obj in list(by_ns.get(name, {}).values()):
                current = self._lookup(key, name, obj["metadata"]["name"])
                if current is not None:
                    self._delete(key, current, "Background")
        current_ns = self._lookup(NAMESPACE_KEY, "", name)
        if current_ns is not None:
            self._finish_namespace(current_ns)

    def _finish_namespace(self, ns_obj: JsonObj) -> None:
        name = ns_obj["metadata"]["name"]
        if not self.namespace_is_empty(name):
            return
        spec_finalizers = (ns_obj.get("spec") or {}).get("finalizers") or []
        if spec_finalizers:
            new = deep_copy(ns_obj)
            new["spec"]["finalizers"] = []
            new["metadata"]["resourceVersion"] = str(self._next_rv())
            self._put(NAMESPACE_KEY, new, ns_obj)
            self._emit(StoreEvent("MODIFIED", NAMESPACE_KEY, new, ns_obj, self._rv))
            ns_obj = new
        if not ns_obj["metadata"].get("finalizers"):
            self._remove(NAMESPACE_KEY, ns_obj)

    # CRDs

    @staticmethod
    def _set_condition(obj: JsonObj, ctype: str, status: str, reason: str, message: str) -> None:
        conditions = obj.setdefault("status", {}).setdefault("conditions", [])
        for cond in conditions:
            if cond.get("type") == ctype:
                if cond.get("status") != status:
                    cond["lastTransitionTime"] = rfc3339()
                cond.update({"status": status, "reason": reason, "message": message})
                return
        conditions.append(
            {
                "type": ctype,
                "status": status,
                "lastTransitionTime": rfc3339(),
                "reason": reason,
                "message": message,
            }
        )

    def _after_write(self, key: tuple[str, str], old: JsonObj | None, new: JsonObj) -> None:
        if key != CRD_KEY or new["metadata"].get("deletionTimestamp"):
            return
        self.registry.set_crd(new)
        spec = new["spec"]

        def establish(o: JsonObj) -> None:
            finalizers = o["metadata"].setdefault("finalizers", [])
            if CRD_FINALIZER not in finalizers:
                finalizers.append(CRD_FINALIZER)
            names = dict(spec["names"])
            status = o.setdefault("status", {})
            status["acceptedNames"] = names
            stored = list(status.get("storedVersions") or [])
            storage = next(v["name"] for v in spec["versions"] if v.get("storage"))
            if storage not in stored:
                stored.append(storage)
            status["storedVersions"] = stored
            self._set_condition(o, "NamesAccepted", "True", "NoConflicts", "no conflicts found")
            self._set_condition(
                o,
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
            )

        current = self._lookup(CRD_KEY, "", new["metadata"]["name"])
        if current is None:
            return
        rt = self._storage_rt(CRD_KEY)
        assert rt is not None
        updated = deep_copy(current)
        establish(updated)
        self._commit(rt, current, updated, manager="kube-apiserver", subresource=None)
        # the finalizer went through the main resource; the status through the status rules:
        current = self._lookup(CRD_KEY, "", new["metadata"]["name"])
        if current is not None and current.get("status") != updated.get("status"):
            fresh = deep_copy(current)
            fresh["status"] = updated["status"]
            self._commit(rt, current, fresh, manager="kube-apiserver", subresource="status")

    def _terminate_crd(self, crd: JsonObj) -> None:
        types = self.registry.crd_types(crd["metadata"]["name"])
        if types:
            key = types[0].key
            for by_name in list(self._objects.get(key, {}).values()):
                for obj in list(by_name.values()):
                    current = self._lookup(
                        key, obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
                    )
                    if current is not None:
                        self._delete(key, current, "Background")
        current = self._lookup(CRD_KEY, "", crd["metadata"]["name"])
        if current is not None:
            self._finish_crd(current)

    def _finish_crd(self, crd: JsonObj) -> None:
        types = self.registry.crd_types(crd["metadata"]["name"])
        if types and any(self._objects.get(types[0].key, {}).values()):
            return
        finalizers = crd["metadata"].get("finalizers") or []
        if CRD_FINALIZER in finalizers:

            def release(o: JsonObj) -> None:
                o["metadata"]["finalizers"] = [
                    f for f in o["metadata"].get("finalizers") or [] if f != CRD_FINALIZER
                ]

            self._internal_update(CRD_KEY, crd, release, "kube-apiserver")
        elif not finalizers:
            self._remove(CRD_KEY, crd)

    def _unregister_crd(self, crd: JsonObj) -> None:
        types = self.registry.drop_crd(crd["metadata"]["name"])
        for key in {t.key for t in types}:
            self.close_watches(key)
            self._objects.pop(key, None)
            # a CRD created again starts a new history: older versions are expired
            self._history.pop(key, None)
            self._expired[key] = self._rv

    # ------------------------------------------------------------------ manifests

    def apply_manifest(self, obj: Mapping[str, Any], *, manager: str = "sandbox") -> JsonObj:
        """Create the object, or replace it (keeping status, finalizers) if it exists."""
        if not isinstance(obj, Mapping) or not obj.get("apiVersion") or not obj.get("kind"):
            raise bad_request("a manifest needs apiVersion and kind")
        rt = self.registry.kind_type(str(obj["apiVersion"]), str(obj["kind"]))
        if rt is None:
            raise ApiError(
                404,
                "NotFound",
                f'no matches for kind "{obj["kind"]}" in version "{obj["apiVersion"]}"',
            )
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or ("default" if rt.namespaced else None)
        existing = self._lookup(rt.key, self._ns(rt, namespace), str(meta.get("name", "")))
        if existing is None:
            return self.create(rt, namespace, dict(obj), manager=manager).obj
        body = deep_copy(dict(obj))
        bmeta = body.setdefault("metadata", {})
        bmeta["resourceVersion"] = existing["metadata"]["resourceVersion"]
        if "finalizers" not in bmeta and existing["metadata"].get("finalizers"):
            bmeta["finalizers"] = list(existing["metadata"]["finalizers"])
        return self.replace(rt, namespace, str(meta["name"]), body, manager=manager).obj
