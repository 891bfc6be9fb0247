"""The one module that talks to the Kubernetes API (implements `canary.ports.Kube`).

Why it exists: every other adapter (workloads, services, routers) needs to read and
write arbitrary objects by ``apiVersion`` + ``kind`` — Deployments, HPAs, Istio
VirtualServices, Gateway API HTTPRoutes — without caring which Python client is
underneath. Keeping the client in one module lets us swap it (the design names
lightkube as the fallback) and gives one place for the cross-cutting rules:

* a timeout on every call (``asyncio.timeout`` around the whole exchange, plus the
  transport's own total timeout);
* an optional client-side rate limit (token bucket; Flagger's defaults are 100 QPS with
  a burst of 250);
* API discovery, cached per group-version, to map a kind to its plural and scope;
* errors translated into the small tree of `canary.ports` (NotFound, Conflict,
  AlreadyExists, Invalid with the server's causes, Forbidden, Unavailable).

Client choice. ``kubernetes.aio`` (kubernetes 37.0.2) provides the configuration
loading (kubeconfig incl. exec/OIDC providers, in-cluster service account with token
refresh) and the aiohttp transport (``ApiClient.param_serialize`` + ``call_api``), and we
use exactly that. Its ``DynamicClient`` is *not* used: its discovery writes a cache file
to the temp directory with blocking file I/O, wraps results in ``ResourceInstance``
objects and translates errors into its own tree. Building the request paths from our
own cached discovery is a few lines and keeps plain dicts end to end.

The ``ApiClient`` owns an aiohttp session, which is bound to the event loop it was first
used in: create the `KubeClient` inside the running loop (`connect`) and close it with
`KubeClient.aclose`.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
from kubernetes.aio.client import ApiClient, Configuration
from kubernetes.aio.config import load_incluster_config, load_kube_config

from canary.ports import (
    AlreadyExists,
    Conflict,
    Forbidden,
    Invalid,
    KubeError,
    NotFound,
    Obj,
    PatchType,
    Unavailable,
)

__all__ = [
    "DEFAULT_BURST",
    "DEFAULT_QPS",
    "DEFAULT_TIMEOUT",
    "KubeClient",
    "RateLimiter",
    "ResourceInfo",
    "WatchEvent",
    "connect",
    "error_from_response",
    "kubeconfig_file",
    "split_api_version",
]

DEFAULT_TIMEOUT = 30.0
DEFAULT_QPS = 100.0
DEFAULT_BURST = 250
USER_AGENT = "canary-engine"
LIST_PAGE_SIZE = 500
UNSERVED_TTL = 10.0  # seconds a "not served" answer of discovery is believed (one ask per 10 s)

_PATCH_CONTENT_TYPES: Mapping[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
_APPLY_CONTENT_TYPE = "application/apply-patch+yaml"

ObjList = list[Obj]


# ----------------------------------------------------------------------------- pure parts


def split_api_version(api_version: str) -> tuple[str, str]:
    """``"apps/v1"`` → ``("apps", "v1")``; ``"v1"`` → ``("", "v1")``."""
    if "/" in api_version:
        group, version = api_version.split("/", 1)
        return group, version
    return "", api_version


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    """What discovery says about one kind: where it lives and whether it is namespaced."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool
    subresources: frozenset[str] = frozenset()

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        group, version = split_api_version(self.api_version)
        parts = ["/api", version] if not group else ["/apis", group, version]
        if self.namespaced and namespace:
            parts += ["namespaces", quote(namespace, safe="")]
        parts.append(self.plural)
        if name is not None:
            parts.append(quote(name, safe=""))
            if subresource:
                parts.append(subresource)
        return "/".join(parts)


def parse_resource_list(api_version: str, doc: Mapping[str, Any]) -> dict[str, ResourceInfo]:
    """Kind → `ResourceInfo` from an ``APIResourceList`` document (``/apis/<g>/<v>``)."""
    subresources: dict[str, set[str]] = {}
    found: dict[str, tuple[str, bool]] = {}
    for entry in doc.get("resources") or ():
        name = str(entry.get("name", ""))
        if "/" in name:
            parent, sub = name.split("/", 1)
            subresources.setdefault(parent, set()).add(sub)
            continue
        kind = str(entry.get("kind", ""))
        if kind and kind not in found:
            found[kind] = (name, bool(entry.get("namespaced", False)))
    return {
        kind: ResourceInfo(
            api_version=api_version,
            kind=kind,
            plural=plural,
            namespaced=namespaced,
            subresources=frozenset(subresources.get(plural, ())),
        )
        for kind, (plural, namespaced) in found.items()
    }


def _status_document(body: bytes | str | Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The ``Status`` of a failed response; a body that is not JSON (a proxy's error page)
    becomes the message, cut short."""
    if isinstance(body, Mapping):
        return body
    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, Mapping):
        return parsed
    raw = body.decode(errors="replace") if isinstance(body, bytes) else body
    return {"message": raw.strip()[:500]}


def error_from_response(status: int, body: bytes | str | Mapping[str, Any] | None) -> KubeError:
    """Translate a failed response (HTTP status + body, ideally a ``Status``) into the tree."""
    doc = _status_document(body)
    reason = str(doc.get("reason") or "")
    message = str(doc.get("message") or reason or f"HTTP {status}")
    details = doc.get("details") if isinstance(doc.get("details"), Mapping) else {}
    assert isinstance(details, Mapping)
    causes = [
        {k: str(v) for k, v in cause.items() if v is not None}
        for cause in details.get("causes") or ()
        if isinstance(cause, Mapping)
    ]
    if status == 404:
        return NotFound(message, status=status)
    if status == 409:
        if reason == "AlreadyExists":
            return AlreadyExists(message, status=status)
        return Conflict(message, status=status)
    if status == 410:  # Gone: the resourceVersion of a watch or list is too old
        return Conflict(message, status=status)
    if status in (400, 422):
        return Invalid(message, causes=causes, status=status)
    if status in (401, 403):
        return Forbidden(message, status=status)
    if status == 429 or status >= 500:
        return Unavailable(message, status=status)
    return KubeError(message, status=status)


class RateLimiter:
    """A token bucket shared by all calls of one client (client-go's QPS/burst).

    Each call reserves a token; when the bucket is empty the caller sleeps for exactly
    its deficit, so callers are served in arrival order without a background task.
    """

    def __init__(self, qps: float, burst: int, *, clock: Any = time.monotonic) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("qps must be > 0 and burst >= 1")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def reserve(self) -> float:
        """Take one token; return how long the caller must wait before using it."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens > -1e-9 else -self._tokens / self.qps

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
    object: Obj


# ----------------------------------------------------------------------------- the client


class KubeClient:
    """Generic async access to any API resource by apiVersion + kind.

    All methods take and return plain JSON dicts. ``timeout`` bounds every call;
    ``qps``/``burst`` enable the client-side rate limit (None disables it).
    """

    def __init__(
        self,
        api: ApiClient,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        qps: float | None = DEFAULT_QPS,
        burst: int = DEFAULT_BURST,
    ) -> None:
        self._api: Any = api  # kubernetes.aio is untyped
        self.timeout = timeout
        self._limiter = RateLimiter(qps, burst) if qps else None
        self._discovery: dict[str, dict[str, ResourceInfo]] = {}
        self._unserved: dict[str, float] = {}  # api versions the server does not serve, until
        self._discovery_locks: dict[str, asyncio.Lock] = {}
        self._closed = False

    @property
    def host(self) -> str:
        return str(self._api.configuration.host)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._api.close()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --------------------------------------------------------------------- discovery

    async def resource(self, api_version: str, kind: str) -> ResourceInfo:
        """Discovery: the plural and scope of ``kind``; NotFound if the server does not serve it."""
        known = self._discovery.get(api_version)
        if known is not None and kind in known:
            return known[kind]
        unserved = self._unserved.get(api_version)
        if unserved is not None and time.monotonic() < unserved:
            raise NotFound(f'the server does not serve "{api_version}"', status=404)
        lock = self._discovery_locks.setdefault(api_version, asyncio.Lock())
        async with lock:
            known = self._discovery.get(api_version)
            if known is None or kind not in known:
                # First use, or a CRD installed since we last looked: read again.
                try:
                    known = await self._discover(api_version)
                except NotFound:
                    # Not served (flagger.app, a router's CRDs not installed): do not ask
                    # again on every pass; a CRD installed later is seen within ten seconds.
                    self._unserved[api_version] = time.monotonic() + UNSERVED_TTL
                    raise
                self._unserved.pop(api_version, None)
                self._discovery[api_version] = known
        if kind not in known:
            raise NotFound(
                f'the server does not serve kind "{kind}" in "{api_version}"', status=404
            )
        return known[kind]

    async def _discover(self, api_version: str) -> dict[str, ResourceInfo]:
        group, version = split_api_version(api_version)
        path = f"/api/{version}" if not group else f"/apis/{group}/{version}"
        try:
            doc = await self._request("GET", path)
        except NotFound:
            raise NotFound(f'the server does not serve "{api_version}"', status=404) from None
        return parse_resource_list(api_version, doc)

    def forget_discovery(self, api_version: str | None = None) -> None:
        """Drop the discovery cache (e.g. after CRDs were removed or installed): of one
        group-version, or of all of them."""
        if api_version is None:
            self._discovery.clear()
            self._unserved.clear()
        else:
            self._discovery.pop(api_version, None)
            self._unserved.pop(api_version, None)

    async def served(self, api_version: str, kind: str) -> bool:
        """Whether the server serves ``kind`` in ``api_version``: discovery, cached per process
        (a kind found stays found; a kind not served is asked for again after
        :data:`UNSERVED_TTL` seconds, or at once after a CRD is written through this client).
        `Unavailable` when the server cannot tell now."""
        try:
            await self.resource(api_version, kind)
        except NotFound:
            return False
        return True

    # --------------------------------------------------------------------- verbs

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        info = await self.resource(api_version, kind)
        _require_namespace(info, namespace)
        try:
            return await self._request("GET", info.path(namespace, name))
        except NotFound:
            return None

    async def read(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Mapping[str, Any] | None:
        """`get`: an object fresh from the server is nobody else's."""
        return await self.get(api_version, kind, name, namespace)

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjList:
        items, _ = await self.list_versioned(
            api_version,
            kind,
            namespace,
            label_selector=label_selector,
            field_selector=field_selector,
        )
        return items

    async def read_list(
        self, api_version: str, kind: str, namespace: str, *, label_selector: str | None = None
    ) -> Sequence[Mapping[str, Any]]:
        """`list`: objects fresh from the server are nobody else's."""
        return await self.list(api_version, kind, namespace, label_selector=label_selector)

    async def list_versioned(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[ObjList, str]:
        """Every object (paged by :data:`LIST_PAGE_SIZE`) and the list's resourceVersion, the
        point a watch resumes from."""
        items: ObjList = []
        version = ""
        async for page, page_version in self.list_pages(
            api_version,
            kind,
            namespace,
            label_selector=label_selector,
            field_selector=field_selector,
        ):
            items.extend(page)
            version = page_version
        return items, version

    async def list_pages(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> AsyncGenerator[tuple[ObjList, str], None]:
        """The list page by page (:data:`LIST_PAGE_SIZE` objects), each with the list's
        resourceVersion (the last page's is the one a watch resumes from): a watch cache
        keeps its own copy of each page's objects and lets the page go, instead of holding
        every decoded object of a kind twice while it lists."""
        info = await self.resource(api_version, kind)
        query = [("limit", str(LIST_PAGE_SIZE)), *_selectors(label_selector, field_selector)]
        token: str | None = None
        while True:
            page_query = [*query, ("continue", token)] if token else query
            doc = await self._request("GET", info.path(namespace), query=page_query)
            items: ObjList = []
            for item in doc.get("items") or ():
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                items.append(item)
            meta = doc.get("metadata") or {}
            token = meta.get("continue") or None
            yield items, str(meta.get("resourceVersion") or "")
            if not token:
                return

    def _installed(self, obj: Obj) -> None:
        """A CustomResourceDefinition written through this client: what discovery said was
        not served may be served now."""
        if obj.get("kind") == "CustomResourceDefinition":
            self._unserved.clear()

    async def create(self, obj: Obj) -> Obj:
        info, namespace, _ = await self._locate(obj, need_name=False)
        self._installed(obj)
        return await self._request("POST", info.path(namespace), body=obj)

    async def replace(self, obj: Obj) -> Obj:
        info, namespace, name = await self._locate(obj)
        return await self._request("PUT", info.path(namespace, name), body=obj)

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
        info = await self.resource(api_version, kind)
        _require_namespace(info, namespace)
        if patch_type == "json" and not isinstance(patch, list):
            raise TypeError("a JSON patch is a list of operations")
        if patch_type != "json" and not isinstance(patch, Mapping):
            raise TypeError(f"a {patch_type} patch is an object")
        return await self._request(
            "PATCH",
            info.path(namespace, name, subresource),
            body=patch,
            content_type=_PATCH_CONTENT_TYPES[patch_type],
        )

    async def apply(self, obj: Obj, *, field_manager: str, force: bool = False) -> Obj:
        info, namespace, name = await self._locate(obj)
        self._installed(obj)
        query = [("fieldManager", field_manager)]
        if force:
            query.append(("force", "true"))
        return await self._request(
            "PATCH",
            info.path(namespace, name),
            body=obj,
            query=query,
            content_type=_APPLY_CONTENT_TYPE,
        )

    async def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: Literal["Background", "Foreground", "Orphan"] = "Background",
    ) -> bool:
        info = await self.resource(api_version, kind)
        _require_namespace(info, namespace)
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        try:
            await self._request("DELETE", info.path(namespace, name), body=body)
        except NotFound:
            return False
        return True

    async def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int = 300,
    ) -> AsyncGenerator[WatchEvent, None]:
        """Stream change events until the server ends the watch (after ``timeout_seconds``).

        The caller restarts from the last seen ``metadata.resourceVersion``; a too-old
        version raises `Conflict` (HTTP 410), after which the caller lists again.
        ``ERROR`` events are raised as errors, ``BOOKMARK`` events are yielded.
        """
        info = await self.resource(api_version, kind)
        query = [
            ("watch", "true"),
            ("timeoutSeconds", str(timeout_seconds)),
            ("allowWatchBookmarks", "true"),
            *_selectors(label_selector, field_selector),
        ]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        # The server closes the stream after timeoutSeconds; allow a margin before we give up,
        # and bound the silence between two chunks by the same amount.
        transport_timeout = aiohttp.ClientTimeout(
            total=None, connect=self.timeout, sock_read=timeout_seconds + self.timeout
        )
        response = await self._send(
            "GET", info.path(namespace), query=query, transport_timeout=transport_timeout
        )
        try:
            if not 200 <= response.status < 300:
                raise error_from_response(response.status, await response.read())
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    event = _watch_event(line, api_version, kind)
                    if event is not None:
                        yield event
            event = _watch_event(buffer, api_version, kind)
            if event is not None:
                yield event
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unavailable(f"watch {kind} failed: {exc!r}") from exc
        finally:
            response.release()

    async def get_path(self, path: str, params: Mapping[str, str] | None = None) -> Obj | None:
        """GET any API path (``/apis/<group>/<version>/...``, an aggregated API included) as
        decoded JSON; None when the server answers 404. No discovery: the caller knows the path.
        ``params`` are sent as the query string. Other failures raise the `canary.ports` tree."""
        if not path.startswith("/"):
            raise ValueError(f"an API path starts with '/': {path!r}")
        try:
            return await self._request("GET", path, query=list((params or {}).items()))
        except NotFound:
            return None

    # --------------------------------------------------------------------- plumbing

    async def _locate(
        self, obj: Obj, *, need_name: bool = True
    ) -> tuple[ResourceInfo, str | None, str]:
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if not api_version or not kind:
            raise ValueError("the object needs apiVersion and kind")
        info = await self.resource(str(api_version), str(kind))
        meta = obj.get("metadata") or {}
        name = str(meta.get("name") or "")
        if need_name and not name:
            raise ValueError(f"the {kind} needs metadata.name")
        namespace = meta.get("namespace")
        _require_namespace(info, namespace)
        return info, namespace, name

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str = "application/json",
        transport_timeout: aiohttp.ClientTimeout | None = None,
    ) -> aiohttp.ClientResponse:
        """Send one request and return the raw response (the caller reads and releases it)."""
        if self._closed:
            raise Unavailable("the Kubernetes client is closed")
        if self._limiter is not None:
            await self._limiter.acquire()
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            async with asyncio.timeout(self.timeout):
                request = await self._api.param_serialize(
                    method,
                    path,
                    query_params=list(query),
                    header_params=headers,
                    body=body,
                    auth_settings=["BearerToken"],
                )
                rest = await self._api.call_api(
                    *request,
                    _request_timeout=transport_timeout or aiohttp.ClientTimeout(total=self.timeout),
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unavailable(f"{method} {path} failed: {exc!r}") from exc
        response: aiohttp.ClientResponse = rest.response
        return response

    async def _request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str = "application/json",
    ) -> Obj:
        started = time.monotonic()
        response = await self._send(method, path, query=query, body=body, content_type=content_type)
        try:
            remaining = max(0.1, self.timeout - (time.monotonic() - started))
            async with asyncio.timeout(remaining):
                data = await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unavailable(f"{method} {path} failed while reading: {exc!r}") from exc
        finally:
            response.release()
        if not 200 <= response.status < 300:
            raise error_from_response(response.status, data)
        if not data:
            return {}
        try:
            parsed = json.loads(data)
        except ValueError as exc:
            raise KubeError(
                f"{method} {path}: the server answered with invalid JSON", status=response.status
            ) from exc
        if not isinstance(parsed, dict):
            raise KubeError(f"{method} {path}: expected a JSON object", status=response.status)
        return parsed


def _require_namespace(info: ResourceInfo, namespace: str | None) -> None:
    if info.namespaced and not namespace:
        raise ValueError(f"{info.kind} is namespaced: a namespace is required")


def _selectors(label_selector: str | None, field_selector: str | None) -> list[tuple[str, str]]:
    """The query parameters of a list or a watch that narrow it down."""
    query = []
    if label_selector:
        query.append(("labelSelector", label_selector))
    if field_selector:
        query.append(("fieldSelector", field_selector))
    return query


def _watch_event(line: bytes, api_version: str, kind: str) -> WatchEvent | None:
    line = line.strip()
    if not line:
        return None
    try:
        doc = json.loads(line)
    except ValueError as exc:
        raise KubeError(f"watch {kind}: invalid event line") from exc
    etype = doc.get("type")
    obj = doc.get("object") or {}
    if etype == "ERROR":
        raise error_from_response(int(obj.get("code") or 500), obj)
    if etype not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
        raise KubeError(f"watch {kind}: unknown event type {etype!r}")
    obj.setdefault("apiVersion", api_version)
    obj.setdefault("kind", kind)
    return WatchEvent(type=etype, object=obj)


# ----------------------------------------------------------------------------- connecting


def kubeconfig_file(kubeconfig: str | None = None) -> str | None:
    """The kubeconfig file `connect` reads, or None in a pod with a service account (the
    in-cluster configuration). Like kubectl: ``kubeconfig`` (which may be a ``KUBECONFIG``-style
    list: its first entry), else ``$KUBECONFIG``'s first entry, else ``~/.kube/config``."""
    if kubeconfig is None and in_cluster():
        return None
    listed = kubeconfig or os.environ.get("KUBECONFIG", "")
    first = next((p for p in listed.split(os.pathsep) if p), "")
    return os.path.expanduser(first or "~/.kube/config")


def in_cluster() -> bool:
    """True when running in a pod with a service account (the in-cluster config applies)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.exists(
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    )


async def connect(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    request_timeout: float = DEFAULT_TIMEOUT,
    qps: float | None = DEFAULT_QPS,
    burst: int = DEFAULT_BURST,
) -> KubeClient:
    """A `KubeClient` for a kubeconfig file, or the in-cluster service account.

    Without ``kubeconfig``: in-cluster when running in a pod, else ``$KUBECONFIG`` or
    ``~/.kube/config``. Call it inside the event loop that will use the client (the
    aiohttp session is bound to it).
    """
    configuration = Configuration()
    path = kubeconfig_file(kubeconfig)
    if path is None:
        load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        await load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path,
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    api = ApiClient(configuration=configuration)
    api.user_agent = USER_AGENT  # also the field manager of non-apply writes
    return KubeClient(api, timeout=request_timeout, qps=qps, burst=burst)
