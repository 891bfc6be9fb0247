"""Watch caches: the controller reads the cluster from memory, as Argo Rollouts does.

Every kind a reconcile pass reads is kept in an :class:`Informer` — a paged list, then a
watch from the list's ``resourceVersion`` with bookmarks; a watch that ends is resumed from
the last version seen, and one the server answers with 410 Gone (the version fell out of its
history) is replaced by a fresh list, whose differences are delivered as events, so no change
is ever missed. :class:`CachedKube` implements the ``canary.ports.Kube`` port over them:

* a read (``get``, ``list``) of a cached kind is answered from memory once its informer has
  synced (a copy, so callers may change what they get); an idle canary's pass makes no API
  call at all;
* a kind is cached from its first read on, if it is one of :data:`CACHED_KINDS` (the kinds a
  pass reads: canaries and their targets, primaries, Services, autoscalers, configs, router
  objects, the GitOps owners of a target); other kinds are read from the API;
* writes go to the API, and the answer is put into the cache at once (when it is newer than
  what the cache holds), so a pass reads its own writes without waiting for the watch.
* ``listen`` hears every change of a kind, and caches it in every watched namespace from then
  on; ``listen(..., start=False)`` only follows the informers of the kind that reads started
  (the operator follows the Canaries' targets so: a new pod template wakes their Canary).

Objects the controller never needs are not kept (Helm's release Secrets, service-account
tokens), and Secrets are kept only in namespaces the controller watches.

Discovery failures are remembered too: a kind the server does not serve (a router's CRDs not
installed, ``flagger.app``) is not asked for again for :data:`MISSING_KIND_TTL` seconds.

A kind whose CRD is deleted while it is watched (the watch ends, the list answers 404) is
reported, not given up: the informer empties its store (a kind that is not served has no
objects, and its listeners hear a DELETED for each), says so in :attr:`Informer.not_served`
(the operator's ``/readyz`` reads it) and in one log line per attempt, and lists again with a
growing delay (:data:`NOT_SERVED_DELAYS`) until the CRD is back, then carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from canary.adapters.kube import KubeClient, WatchEvent, split_api_version
from canary.jsontree import json_copy, shared_copy
from canary.ports import Conflict, KubeError, NotFound, Obj, PatchType

__all__ = [
    "CACHED_KINDS",
    "CacheStats",
    "CachedKube",
    "Informer",
    "label_selector_matches",
]

log = logging.getLogger("canary.adapters.cache")

#: (API group, kind) of everything a reconcile pass reads: cached from the first read on.
CACHED_KINDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("canary.gitops.dev", "Canary"),
        ("canary.gitops.dev", "MetricTemplate"),
        ("canary.gitops.dev", "AlertProvider"),
        ("canary.gitops.dev", "GitSource"),
        ("flagger.app", "Canary"),
        ("apps", "Deployment"),
        ("apps", "DaemonSet"),
        ("", "Service"),
        ("", "ConfigMap"),
        ("", "Secret"),
        ("autoscaling", "HorizontalPodAutoscaler"),
        ("networking.k8s.io", "Ingress"),
        ("networking.istio.io", "VirtualService"),
        ("networking.istio.io", "DestinationRule"),
        ("gateway.networking.k8s.io", "HTTPRoute"),
        ("split.smi-spec.io", "TrafficSplit"),
        ("projectcontour.io", "HTTPProxy"),
        ("gateway.solo.io", "RouteTable"),
        ("gloo.solo.io", "Upstream"),
        ("traefik.io", "TraefikService"),
        ("apisix.apache.org", "ApisixRoute"),
        ("appmesh.k8s.aws", "VirtualNode"),
        ("appmesh.k8s.aws", "VirtualRouter"),
        ("appmesh.k8s.aws", "VirtualService"),
        ("serving.knative.dev", "Service"),
        ("serving.knative.dev", "Revision"),
        ("keda.sh", "ScaledObject"),
        ("kustomize.toolkit.fluxcd.io", "Kustomization"),
        ("source.toolkit.fluxcd.io", "GitRepository"),
        ("helm.toolkit.fluxcd.io", "HelmRelease"),
        ("argoproj.io", "Application"),
    }
)

#: Secrets the controller never reads, and that would fill its memory.
SKIPPED_SECRET_TYPES = frozenset({"helm.sh/release.v1", "kubernetes.io/service-account-token"})
MISSING_KIND_TTL = 300.0
WATCH_TIMEOUT_SECONDS = 300
RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
#: Seconds between the lists of a kind that is not served (its CRD deleted): one log line each.
NOT_SERVED_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


def _version_number(obj: Mapping[str, Any]) -> int | None:
    raw = (obj.get("metadata") or {}).get("resourceVersion")
    try:
        return int(str(raw))
    except (TypeError, ValueError):
        return None


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def label_selector_matches(selector: str | None, labels: Mapping[str, str]) -> bool:
    """Equality- and set-based label selectors (``a=b,c!=d,e in (x,y),f notin (z),g,!h``)."""
    if not selector:
        return True
    for term in _split_terms(selector):
        term = term.strip()
        if not term:
            continue
        if " notin " in term or " in " in term:
            key, op, rest = term.partition(" notin " if " notin " in term else " in ")
            values = {v.strip() for v in rest.strip().strip("()").split(",")}
            present = key.strip() in labels and labels[key.strip()] in values
            if (op.strip() == "in") != present:
                return False
        elif "!=" in term:
            key, _, value = term.partition("!=")
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, _, value = term.partition("==" if "==" in term else "=")
            if labels.get(key.strip()) != value.strip().lstrip("="):
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def _split_terms(selector: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return terms


@dataclass
class CacheStats:
    """What the caches did: reads answered from memory, calls that reached the API."""

    cache_reads: int = 0
    api_reads: int = 0
    api_writes: int = 0
    relists: int = 0
    watch_restarts: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


Listener = Callable[[str, Obj], Awaitable[None] | None]


def _slim(obj: Obj) -> Obj:
    """What the cache keeps of an object: a copy of all of it but ``metadata.managedFields``
    (often half an object's size, and never read by a pass), as controller-runtime's caches
    do, with its repeated strings shared (`shared_copy`: less than half the memory)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return shared_copy(obj)


class _Store:
    """The objects of one informer by (namespace, name), indexed by namespace so that reading
    one namespace never walks (or sorts) the others."""

    def __init__(self, objects: Iterable[Obj] = ()) -> None:
        self._by_namespace: dict[str, dict[str, Obj]] = {}
        for obj in objects:
            self.put(obj)

    @classmethod
    def of_kept(cls, objects: Iterable[Obj]) -> _Store:
        """A store of objects that are already what it keeps (`_slim` copies)."""
        store = cls()
        for obj in objects:
            namespace, name = _key(obj)
            store._by_namespace.setdefault(namespace, {})[name] = obj
        return store

    def get(self, key: tuple[str, str]) -> Obj | None:
        return self._by_namespace.get(key[0], {}).get(key[1])

    def put(self, obj: Obj) -> None:
        namespace, name = _key(obj)
        self._by_namespace.setdefault(namespace, {})[name] = _slim(obj)

    def pop(self, key: tuple[str, str]) -> Obj | None:
        names = self._by_namespace.get(key[0])
        if names is None:
            return None
        found = names.pop(key[1], None)
        if not names:
            del self._by_namespace[key[0]]
        return found

    def in_namespace(self, namespace: str | None) -> list[Obj]:
        """Sorted by (namespace, name), as a list from the API server is."""
        spaces = sorted(self._by_namespace) if namespace is None else [namespace]
        return [
            names[name]
            for ns in spaces
            for names in (self._by_namespace.get(ns, {}),)
            for name in sorted(names)
        ]

    def items(self) -> Iterator[tuple[tuple[str, str], Obj]]:
        for ns, names in self._by_namespace.items():
            for name, obj in names.items():
                yield (ns, name), obj

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and self.get(key) is not None

    def __getitem__(self, key: tuple[str, str]) -> Obj:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return (key for key, _ in self.items())

    def __len__(self) -> int:
        return sum(len(names) for names in self._by_namespace.values())


class Informer:
    """A list + watch cache of one kind (in one namespace, or all, with a label selector)."""

    def __init__(
        self,
        kube: KubeClient,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        keep: Callable[[Obj], bool] | None = None,
        listeners: Iterable[Listener] = (),
        followers: Iterable[Listener] = (),
        stats: CacheStats | None = None,
        watch_timeout: int = WATCH_TIMEOUT_SECONDS,
        on_served: Callable[[str], None] | None = None,
    ) -> None:
        self.kube = kube
        self.api_version = api_version
        self.kind = kind
        self.namespace = namespace
        self.label_selector = label_selector
        self.keep = keep or (lambda _: True)
        self.listeners = list(listeners)
        #: Listeners that only hear this informer's events: they are not why it runs.
        self.followers = list(followers)
        self.stats = stats or CacheStats()
        self.watch_timeout = watch_timeout
        self.store = _Store()
        self.synced = asyncio.Event()
        self.resource_version = ""
        self._task: asyncio.Task[None] | None = None
        self.last_error: str = ""
        #: Why the kind is not served now (its CRD is missing), "" while it is.
        self.not_served: str = ""
        self.on_served = on_served  # told the api version when a missing kind is back

    # -- reading -------------------------------------------------------------------------

    def get(self, name: str, namespace: str | None) -> Obj | None:
        return self.store.get((namespace or "", name))

    def items(self, namespace: str | None = None, label_selector: str | None = None) -> list[Obj]:
        return [
            obj
            for obj in self.store.in_namespace(namespace)
            if label_selector is None
            or label_selector_matches(
                label_selector, (obj.get("metadata") or {}).get("labels") or {}
            )
        ]

    def covers(self, namespace: str | None) -> bool:
        """Whether a read in ``namespace`` can be answered from this cache."""
        return self.namespace is None or self.namespace == namespace

    # -- running -------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"informer:{self.kind}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def remember(self, obj: Obj) -> None:
        """Put an object the controller just wrote into the cache (if newer)."""
        if not self.keep(obj):
            return
        key = _key(obj)
        held = self.store.get(key)
        new, old = _version_number(obj), _version_number(held) if held else None
        if held is None or new is None or old is None or new >= old:
            self.store.put(obj)

    def forget(self, name: str, namespace: str | None) -> None:
        self.store.pop((namespace or "", name))

    async def _notify(self, kind: str, obj: Obj) -> None:
        for listener in (*self.listeners, *self.followers):
            try:
                result = listener(kind, obj)
                if result is not None:
                    await result
            except Exception as exc:  # a listener's bug must not stop the cache
                log.error(
                    "listener of %s failed on %s: %s: %s", self.kind, kind, type(exc).__name__, exc
                )
                log.debug("the failure of the listener", exc_info=exc)

    async def _relist(self) -> None:
        fresh: dict[tuple[str, str], Obj] = {}
        version = ""
        async for page, page_version in self.kube.list_pages(
            self.api_version, self.kind, self.namespace, label_selector=self.label_selector
        ):
            fresh.update((_key(o), _slim(o)) for o in page if self.keep(o))
            version = page_version
        self.stats.relists += 1
        gone = [obj for key, obj in self.store.items() if key not in fresh]
        changed = [
            obj
            for key, obj in fresh.items()
            if key not in self.store
            or (self.store[key].get("metadata") or {}).get("resourceVersion")
            != (obj.get("metadata") or {}).get("resourceVersion")
        ]
        self.store = _Store.of_kept(fresh.values())
        self.resource_version = version
        self.synced.set()
        for obj in gone:
            await self._notify("DELETED", obj)
        for obj in changed:
            await self._notify("MODIFIED", obj)

    async def _apply(self, event: WatchEvent) -> None:
        obj = event.object
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if version:
            self.resource_version = str(version)
        if event.type == "BOOKMARK":
            return
        key = _key(obj)
        if event.type == "DELETED" or not self.keep(obj):
            if self.store.pop(key) is not None or event.type == "DELETED":
                await self._notify("DELETED", obj)
            return
        self.store.put(obj)
        await self._notify(event.type, obj)

    async def _run(self) -> None:
        failures = 0
        need_list = True
        while True:
            delay = 0.0
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                    if self._served_again():
                        failures = 0
                async for event in self.kube.watch(
                    self.api_version,
                    self.kind,
                    self.namespace,
                    label_selector=self.label_selector,
                    resource_version=self.resource_version or None,
                    timeout_seconds=self.watch_timeout,
                ):
                    await self._apply(event)
                    failures = 0
                self.stats.watch_restarts += 1
                self.last_error = ""
            except asyncio.CancelledError:
                raise
            except Conflict:
                # 410 Gone: our version fell out of the server's history. List again; the
                # differences come out as events, so nothing in between is missed.
                self.last_error = "watch expired (410): relisting"
                need_list = True
            except NotFound as exc:
                # The kind is not served: its CRD was deleted (or is not installed yet).
                need_list = True
                failures += 1
                delay = await self._gone(exc, failures)
            except KubeError as exc:  # Unavailable and the rest: a flaky network, a restart
                self.last_error = str(exc)
                failures += 1
            if failures and not delay:
                delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS)) - 1]
                log.info("watch of %s: %s; again in %.1fs", self.kind, self.last_error, delay)
            if delay:
                await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))

    def _what(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.kind} ({self.api_version}){where}"

    async def _gone(self, exc: NotFound, attempt: int) -> float:
        """The kind is not served: forget its objects (a kind that is not served has none),
        say so, and return the delay before looking again. One log line per attempt."""
        self.last_error = str(exc)
        self.not_served = f"{self.kind} ({self.api_version}) is not served: {exc}"
        self.kube.forget_discovery(self.api_version)  # the next attempt asks the server again
        gone = [obj for _, obj in self.store.items()]
        self.store = _Store()
        for obj in gone:
            await self._notify("DELETED", obj)
        delay = NOT_SERVED_DELAYS[min(attempt, len(NOT_SERVED_DELAYS)) - 1]
        # Kinds the controller listens to (Canary, GitSource) matter: WARNING. A kind read on
        # demand (a router's, Flagger's) that is not installed is routine: INFO.
        level = logging.WARNING if self.listeners else logging.INFO
        log.log(
            level,
            "%s is not served by the API server (is its CustomResourceDefinition installed?): "
            "%s; listing again in %.3gs",
            self._what(),
            exc,
            delay,
        )
        return delay

    def _served_again(self) -> bool:
        """After a list: True when the kind was not served before it (its CRD is back)."""
        if not self.not_served:
            return False
        self.not_served = ""
        log.warning("%s is served again: resuming", self._what())
        if self.on_served is not None:
            self.on_served(self.api_version)
        return True


class CachedKube:
    """The ``Kube`` port, answering reads of :data:`CACHED_KINDS` from informers.

    ``namespaces``: the namespaces the controller watches (None: all); informers are
    cluster-wide or per namespace accordingly. ``label_selector`` narrows the Canary
    informer (sharding). Unwatched namespaces and uncached kinds go to the API.
    """

    def __init__(
        self,
        kube: KubeClient,
        *,
        namespaces: tuple[str, ...] | None = None,
        canary_selector: str | None = None,
        cached_kinds: frozenset[tuple[str, str]] = CACHED_KINDS,
    ) -> None:
        self.kube = kube
        self.namespaces = namespaces
        self.canary_selector = canary_selector
        self.cached_kinds = cached_kinds
        self.stats = CacheStats()
        self.informers: dict[tuple[str, str, str | None], Informer] = {}
        #: Kinds not served, by (api version, kind): until when reads of them fail at once.
        self._missing: dict[tuple[str, str], float] = {}
        self._stopping: set[asyncio.Future[None]] = set()
        self._listeners: dict[tuple[str, str], list[Listener]] = {}
        self._followers: dict[tuple[str, str], list[Listener]] = {}

    # -- informers -----------------------------------------------------------------------

    def listen(
        self, api_version: str, kind: str, listener: Listener, *, start: bool = True
    ) -> None:
        """Call ``listener(event_type, object)`` for every change of a kind (and start
        caching it in every watched namespace).

        With ``start=False`` the listener *follows* the kind: it hears the events of the
        informers of the kind that run now or start later (on a first read), and starts
        none, so it costs no memory for a kind the controller does not read otherwise.
        Following a kind does not keep a kind that is not served cached (`_drop`)."""
        group = split_api_version(api_version)[0]
        registry = self._listeners if start else self._followers
        registry.setdefault((group, kind), []).append(listener)
        for (informer_group, informer_kind, _), informer in self.informers.items():
            if (informer_group, informer_kind) == (group, kind):
                (informer.listeners if start else informer.followers).append(listener)
        if start:
            for namespace in self.namespaces or (None,):
                self._informer(api_version, kind, namespace)

    def _informer(self, api_version: str, kind: str, namespace: str | None) -> Informer:
        group = split_api_version(api_version)[0]
        key = (group, kind, namespace)
        informer = self.informers.get(key)
        if informer is None:
            informer = Informer(
                self.kube,
                api_version,
                kind,
                namespace=namespace,
                label_selector=self.canary_selector
                if (group, kind) == ("canary.gitops.dev", "Canary")
                else None,
                keep=_keep_secret if kind == "Secret" and not group else None,
                listeners=self._listeners.get((group, kind), ()),
                followers=self._followers.get((group, kind), ()),
                stats=self.stats,
                on_served=self._served_again,
            )
            self.informers[key] = informer
            informer.start()
        return informer

    def _cached(self, api_version: str, kind: str, namespace: str | None) -> Informer | None:
        group = split_api_version(api_version)[0]
        if (group, kind) not in self.cached_kinds:
            return None
        if self.namespaces is not None and namespace not in self.namespaces:
            return None
        if self._is_missing(api_version, kind):
            return None
        return self._informer(api_version, kind, namespace if self.namespaces else None)

    def peek(self, api_version: str, kind: str, name: str, namespace: str) -> Obj | None:
        """The cached object itself (as `read`), or None when no synced informer of the kind
        covers ``namespace`` yet. Synchronous: it never starts an informer nor asks the API."""
        group = split_api_version(api_version)[0]
        informer = self.informers.get((group, kind, namespace if self.namespaces else None))
        if informer is None or not informer.synced.is_set():
            return None
        return informer.get(name, namespace)

    def _served_again(self, api_version: str) -> None:
        """A kind of ``api_version`` lists again (its CRD is back): reads go through."""
        for key in [k for k in self._missing if k[0] == api_version]:
            del self._missing[key]

    def not_served(self, group: str | None = None) -> list[Informer]:
        """The informers (of ``group``, or all) whose kind is not served now, one per kind."""
        found: dict[tuple[str, str], Informer] = {}
        for (informer_group, kind, _), informer in self.informers.items():
            if informer.not_served and group in (None, informer_group):
                found.setdefault((informer_group, kind), informer)
        return list(found.values())

    async def served(self, api_version: str, kind: str) -> bool:
        """Discovery (`KubeClient.served`): whether the server serves ``kind``."""
        return await self.kube.served(api_version, kind)

    def _is_missing(self, api_version: str, kind: str) -> bool:
        until = self._missing.get((api_version, kind))
        return until is not None and time.monotonic() < until

    def fresh_as(
        self, api_version: str, kind: str, namespace: str | None, resource_version: object
    ) -> bool:
        """Whether the cache of a kind has seen every change up to ``resource_version`` (of
        another object: versions are one sequence across kinds). Two caches are fed by two
        watches, so an object can be newer in one than a related object in the other: a
        reader that relates them (a HelmRelease and the Deployment made from it) asks."""
        informer = self._cached(api_version, kind, namespace)
        wanted = _version_number({"metadata": {"resourceVersion": resource_version}})
        if informer is None or wanted is None:
            return True
        seen = _version_number({"metadata": {"resourceVersion": informer.resource_version}})
        return seen is not None and seen >= wanted

    async def wait_synced(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(i.synced.wait() for i in self.informers.values()))
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        for informer in list(self.informers.values()):
            await informer.stop()
        self.informers.clear()

    # -- the Kube port: reads --------------------------------------------------------------

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        if self._is_missing(api_version, kind):
            raise NotFound(f'the server does not serve {kind} in "{api_version}"', status=404)
        informer = self._cached(api_version, kind, namespace)
        if informer is not None and informer.synced.is_set():
            self.stats.cache_reads += 1
            found = informer.get(name, namespace)
            return json_copy(found) if found is not None else None
        self.stats.api_reads += 1
        self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
        try:
            return await self.kube.get(api_version, kind, name, namespace)
        except NotFound:
            # The server does not serve this group-version at all: remember it for a while.
            if await self._not_served(api_version, kind):
                self._missing[(api_version, kind)] = time.monotonic() + MISSING_KIND_TTL
                self._drop(api_version, kind)
            raise

    async def read(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Mapping[str, Any] | None:
        """The cached object itself, not a copy (see `Kube.read`): the informer replaces an
        object on every watch event and never changes one in place, so a reader sees one
        consistent version."""
        if not self._is_missing(api_version, kind):
            informer = self._cached(api_version, kind, namespace)
            if informer is not None and informer.synced.is_set():
                self.stats.cache_reads += 1
                return informer.get(name, namespace)
        return await self.get(api_version, kind, name, namespace)

    async def _not_served(self, api_version: str, kind: str) -> bool:
        try:
            await self.kube.resource(api_version, kind)
        except NotFound:
            return True
        except KubeError:
            return False
        return False

    def _drop(self, api_version: str, kind: str) -> None:
        """Stop caching a kind read on demand that is not served. A kind something listens
        to (Canary, GitSource) keeps its informer, which waits for the CRD to come back."""
        group = split_api_version(api_version)[0]
        if (group, kind) in self._listeners:
            return
        for key in [k for k in self.informers if k[0] == group and k[1] == kind]:
            informer = self.informers.pop(key)
            task = asyncio.ensure_future(informer.stop())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        if self._is_missing(api_version, kind):
            raise NotFound(f'the server does not serve {kind} in "{api_version}"', status=404)
        if field_selector is None and namespace is not None:
            informer = self._cached(api_version, kind, namespace)
            if informer is not None and informer.synced.is_set():
                self.stats.cache_reads += 1
                return [json_copy(o) for o in informer.items(namespace, label_selector)]
        self.stats.api_reads += 1
        try:
            return await self.kube.list(
                api_version,
                kind,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
            )
        except NotFound:
            if await self._not_served(api_version, kind):
                self._missing[(api_version, kind)] = time.monotonic() + MISSING_KIND_TTL
                self._drop(api_version, kind)
            raise

    async def read_list(
        self, api_version: str, kind: str, namespace: str, *, label_selector: str | None = None
    ) -> Sequence[Mapping[str, Any]]:
        """The cached objects themselves, not copies (see `read`)."""
        if not self._is_missing(api_version, kind):
            informer = self._cached(api_version, kind, namespace)
            if informer is not None and informer.synced.is_set():
                self.stats.cache_reads += 1
                return informer.items(namespace, label_selector)
        return await self.list(api_version, kind, namespace, label_selector=label_selector)

    # -- the Kube port: writes -------------------------------------------------------------

    def _remember(self, obj: Obj) -> Obj:
        if obj.get("kind") == "CustomResourceDefinition":
            self._missing.clear()  # a kind not served before may be served now
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        namespace = (obj.get("metadata") or {}).get("namespace")
        informer = self._cached(api_version, kind, namespace) if api_version and kind else None
        if informer is not None:
            informer.remember(obj)  # the store keeps a copy of its own (`_slim`)
        return obj

    async def create(self, obj: Obj) -> Obj:
        self.stats.api_writes += 1
        return self._remember(await self.kube.create(obj))

    async def replace(self, obj: Obj) -> Obj:
        self.stats.api_writes += 1
        return self._remember(await self.kube.replace(obj))

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
        self.stats.api_writes += 1
        result = await self.kube.patch(
            api_version,
            kind,
            name,
            namespace,
            patch,
            patch_type=patch_type,
            subresource=subresource,
        )
        result.setdefault("apiVersion", api_version)
        result.setdefault("kind", kind)
        return self._remember(result)

    async def apply(self, obj: Obj, *, field_manager: str, force: bool = False) -> Obj:
        self.stats.api_writes += 1
        return self._remember(await self.kube.apply(obj, field_manager=field_manager, force=force))

    async def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        **options: Any,
    ) -> bool:
        self.stats.api_writes += 1
        gone = await self.kube.delete(api_version, kind, name, namespace, **options)
        informer = self._cached(api_version, kind, namespace)
        if informer is not None:
            informer.forget(name, namespace)
        return gone

    def __getattr__(self, name: str) -> Any:
        # Everything else of the client (discovery, watch, aclose of the transport) as is.
        return getattr(self.kube, name)


def _keep_secret(obj: Obj) -> bool:
    return str(obj.get("type") or "") not in SKIPPED_SECRET_TYPES
