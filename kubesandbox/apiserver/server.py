"""The HTTP face of the sandbox: the Kubernetes REST API over aiohttp on loopback.

kopf, ``kubernetes.aio`` and kubectl talk to this exactly as to a kube-apiserver: legacy
discovery documents, resource paths (``/api/v1/namespaces/<ns>/<plural>/<name>/<sub>`` and
``/apis/<group>/<version>/...``), JSON or YAML bodies, the four patch content types,
``?watch=true`` streams of JSON lines, ``Accept: ...;as=Table`` for server-side printing,
``Status`` bodies for errors and ``Warning`` headers. All semantics live in
:class:`~.store.Store`; this module maps HTTP to store calls, streams watches (with
bookmarks and ``timeoutSeconds``), authenticates bearer tokens to user names (any token is
accepted) and keeps an audit log of every request for RBAC comparisons.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from . import openapi, protobuf, tables
from ._util import dumps, rfc3339_micro
from .aggregator import Aggregator
from .errors import (
    ApiError,
    bad_request,
    invalid_list_options,
    method_not_allowed,
    path_not_found,
    too_large_resource_version,
)
from .registry import ResourceType
from .store import (
    PATCH_APPLY,
    PATCH_TYPES,
    Store,
    Subscription,
    list_option_problems,
    parse_resource_version,
    watch_defaults,
)

log = logging.getLogger("kubesandbox.apiserver")

KUBERNETES_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-canary-sandbox"}
DEFAULT_WATCH_TIMEOUT = 1800.0
# How long a read for a resourceVersion the store has not reached waits before its 504
# (kube-apiserver's watch cache waits 3 s).
FRESHNESS_TIMEOUT = 3.0
MAX_BODY = 64 * 1024 * 1024
_TRUE = ("true", "1", "True", "TRUE")


@dataclass(frozen=True)
class AuditEntry:
    """One request as the audit log records it (verbs as RBAC names them)."""

    time: str
    user: str
    verb: str
    api_group: str
    api_version: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int
    path: str
    user_agent: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _RequestInfo:
    verb: str = "get"
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    recorded: bool = False


_AUDIT = web.RequestKey("canary_sandbox_audit", _RequestInfo)


@dataclass(frozen=True)
class _Target:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


def _is_true(value: str | None) -> bool:
    return value is not None and value in _TRUE


def _optional_bool(value: str | None) -> bool | None:
    return None if value is None else _is_true(value)


def _json_response(
    body: Any, status: int = 200, warnings: tuple[str, ...] = (), retry_after: int | None = None
) -> web.Response:
    response = web.Response(status=status, text=dumps(body), content_type="application/json")
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    for warning in warnings:
        escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.add("Warning", f'299 - "{escaped}"')
    return response


def _wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


class ApiServer:
    """Serves a :class:`Store` over HTTP; see the module docstring for what it speaks."""

    def __init__(
        self,
        store: Store,
        *,
        tokens: Mapping[str, str] | None = None,
        default_user: str = "admin",
        audit_path: Path | None = None,
        bookmark_interval: float = 15.0,
        freshness_timeout: float = FRESHNESS_TIMEOUT,
    ) -> None:
        self.store = store
        self.freshness_timeout = freshness_timeout
        self.tokens: dict[str, str] = dict(tokens or {})
        self.default_user = default_user
        self.audit: list[AuditEntry] = []
        self.audit_path = audit_path
        self.bookmark_interval = bookmark_interval
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._stopping = asyncio.Event()
        self.host = ""
        self.port = 0
        self.app = web.Application(client_max_size=MAX_BODY, middlewares=[self._middleware])
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self.aggregator = Aggregator(store)

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, host, port)
        await self._site.start()
        server = self._site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.host = host
        self.port = int(sockets[0].getsockname()[1]) if sockets else port

    async def stop(self) -> None:
        self._stopping.set()
        self.store.close_watches()
        await self.aggregator.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ auth & audit

    def user_for(self, request: web.Request) -> str:
        impersonated = request.headers.get("Impersonate-User")
        if impersonated:
            return impersonated
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return self.tokens.get(auth[7:].strip(), self.default_user)
        return self.default_user

    def _record(self, request: web.Request, info: _RequestInfo, code: int) -> None:
        if info.recorded:
            return
        info.recorded = True
        entry = AuditEntry(
            time=rfc3339_micro(),
            user=self.user_for(request),
            verb=info.verb,
            api_group=info.group,
            api_version=info.version,
            resource=info.resource,
            subresource=info.subresource,
            namespace=info.namespace,
            name=info.name,
            code=code,
            path=request.path,
            user_agent=request.headers.get("User-Agent", ""),
        )
        self.audit.append(entry)
        if self.audit_path is not None:
            with self.audit_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry.as_dict()) + "\n")

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        info = _RequestInfo()
        request[_AUDIT] = info
        try:
            response = await handler(request)
        except ApiError as exc:
            response = _json_response(exc.status(), exc.code, retry_after=exc.retry_after)
        except web.HTTPException:
            raise
        except Exception as exc:  # a bug in the sandbox: answer like a server would, log it
            log.exception("sandbox API server failed on %s %s", request.method, request.path_qs)
            body = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"sandbox internal error: {exc!r}",
                "reason": "InternalError",
                "code": 500,
            }
            response = _json_response(body, 500)
        self._record(request, info, response.status)
        return response

    # ------------------------------------------------------------------ dispatch

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 3 and parts[0] == "apis":
            apiservice = self.aggregator.apiservice(parts[1], parts[2])
            if apiservice is not None:
                return await self._aggregated(request, parts, apiservice)
        if request.method == "GET":
            special = self._non_resource(path, parts)
            if special is not None:
                return special
        if len(parts) >= 2 and parts[0] == "api":
            return await self._resource(request, "", parts[1], parts[2:])
        if len(parts) >= 3 and parts[0] == "apis":
            return await self._resource(request, parts[1], parts[2], parts[3:])
        raise path_not_found(request.path)

    async def _aggregated(
        self, request: web.Request, parts: list[str], apiservice: Mapping[str, Any]
    ) -> web.StreamResponse:
        """A request under an APIService's group-version, proxied to its Service
        (see :mod:`.aggregator`); the audit log names it as kube-apiserver would."""
        info: _RequestInfo = request[_AUDIT]
        info.group, info.version = parts[1], parts[2]
        rest = parts[3:]
        if len(rest) >= 3 and rest[0] == "namespaces":
            info.namespace, rest = rest[1], rest[2:]
        info.resource = rest[0] if rest else ""
        info.name = rest[1] if len(rest) >= 2 else ""
        info.subresource = rest[2] if len(rest) >= 3 else ""
        verbs = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
        info.verb = verbs.get(request.method, "get" if info.name else "list")
        return await self.aggregator.proxy(request, apiservice, user=self.user_for(request))

    def _non_resource(self, path: str, parts: list[str]) -> web.StreamResponse | None:
        registry = self.store.registry
        if path == "/version":
            return _json_response(
                {
                    **KUBERNETES_VERSION,
                    "gitCommit": "0000000000000000000000000000000000000000",
                    "gitTreeState": "clean",
                    "buildDate": "2026-01-01T00:00:00Z",
                    "goVersion": "go1.23.0",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                }
            )
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok", content_type="text/plain")
        if path == "/api":
            return _json_response(registry.api_versions())
        if path == "/apis":
            return _json_response(self.aggregator.merge_group_list(registry.api_group_list()))
        if path == "/api/v1":
            return _json_response(registry.resource_list("", "v1"))
        if len(parts) == 2 and parts[0] == "apis":
            group = registry.api_group(parts[1]) or self.aggregator.api_group(parts[1])
            if group is None:
                raise path_not_found(path)
            return _json_response(group)
        if len(parts) == 3 and parts[0] == "apis":
            listing = registry.resource_list(parts[1], parts[2])
            if listing is None:
                raise path_not_found(path)
            return _json_response(listing)
        if path == "/openapi/v3":
            return _json_response(openapi.index(registry))
        if len(parts) >= 4 and parts[:2] == ["openapi", "v3"]:
            if parts[2] == "api" and len(parts) == 4:
                doc = openapi.document(registry, "", parts[3])
            elif parts[2] == "apis" and len(parts) == 5:
                doc = openapi.document(registry, parts[3], parts[4])
            else:
                doc = None
            if doc is None:
                raise path_not_found(path)
            return _json_response(doc)
        if parts and parts[0] == "openapi":
            raise path_not_found(path)
        return None

    def _target(self, group: str, version: str, rest: list[str]) -> tuple[_Target | None, bool]:
        """Resolve the path after ``/api/v1`` or ``/apis/<g>/<v>``; ``(None, _)`` for a collection-less path."""
        registry = self.store.registry
        if not registry.has_group_version(group, version):
            raise path_not_found("/".join(["api" if not group else "apis", group, version, *rest]))
        watch_prefix = False
        if rest and rest[0] == "watch":
            watch_prefix = True
            rest = rest[1:]
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            candidate = registry.lookup(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace = rest[1]
                rest = rest[2:]
        if not rest or len(rest) > 3:
            raise path_not_found("/".join(rest))
        rt = registry.lookup(group, version, rest[0])
        if rt is None:
            raise path_not_found(rest[0])
        name = rest[1] if len(rest) >= 2 else None
        subresource = rest[2] if len(rest) == 3 else None
        if namespace is None and rt.namespaced and name is not None:
            raise path_not_found("/".join(rest))
        return _Target(rt, namespace, name, subresource), watch_prefix

    async def _resource(
        self, request: web.Request, group: str, version: str, rest: list[str]
    ) -> web.StreamResponse:
        info: _RequestInfo = request[_AUDIT]
        info.group, info.version = group, version
        target, watch_prefix = self._target(group, version, rest)
        assert target is not None
        rt = target.rt
        info.resource = rt.plural
        info.namespace = target.namespace or ""
        info.name = target.name or ""
        info.subresource = target.subresource or ""
        q = request.query
        method = request.method
        watching = watch_prefix or _is_true(q.get("watch"))

        if target.name is None:
            if method == "GET":
                info.verb = "watch" if watching else "list"
                if watching:
                    return await self._watch(request, rt, target.namespace, info)
                return await self._list(request, rt, target.namespace)
            if method == "POST":
                info.verb = "create"
                return await self._create(request, rt, target.namespace)
            if method == "DELETE":
                info.verb = "deletecollection"
                result = self.store.delete_collection(
                    rt,
                    target.namespace,
                    label_selector=q.get("labelSelector"),
                    field_selector=q.get("fieldSelector"),
                    propagation=await self._propagation(request),
                    dry_run=q.get("dryRun") == "All",
                )
                return _json_response(result)
            raise method_not_allowed(f"{method} is not supported on a collection of {rt.qualified}")

        if watching and method == "GET":
            info.verb = "watch"
            return await self._watch(request, rt, target.namespace, info, name=target.name)
        verb = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)
        if verb is None:
            raise method_not_allowed(f"{method} is not supported on {rt.qualified}/{target.name}")
        info.verb = verb
        if target.subresource == "scale":
            return await self._scale(request, rt, target)
        if target.subresource not in (None, "status") or (
            target.subresource == "status" and not rt.status_subresource
        ):
            raise path_not_found(f"{rt.qualified}/{target.subresource}")
        if method == "GET":
            # get: resourceVersion unset is the latest, "0" any, N not older than N
            await self._wait_until_fresh(parse_resource_version(q.get("resourceVersion")))
            obj = self.store.read(rt, target.namespace, target.name)
            if _wants_table(request):
                return _json_response(
                    tables.table(
                        rt,
                        [obj],
                        resource_version=str(self.store.resource_version),
                        include_object=q.get("includeObject", "Metadata"),
                    )
                )
            return _json_response(obj)
        if method == "DELETE":
            if target.subresource is not None:
                raise method_not_allowed("DELETE is not supported on a subresource")
            return await self._delete(request, rt, target)
        if method == "PUT":
            body = await self._body(request)
            replaced = self.store.replace(
                rt,
                target.namespace,
                target.name,
                body,
                subresource=target.subresource,
                manager=self._manager(request),
                dry_run=q.get("dryRun") == "All",
                field_validation=q.get("fieldValidation"),
            )
            return _json_response(replaced.obj, 200, replaced.warnings)
        # PATCH
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type not in PATCH_TYPES:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: {', '.join(PATCH_TYPES)}",
            )
        patch = await self._body(request, yaml_ok=content_type == PATCH_APPLY)
        patched = self.store.patch(
            rt,
            target.namespace,
            target.name,
            content_type,
            patch,
            subresource=target.subresource,
            manager=q.get("fieldManager", "")
            if content_type == PATCH_APPLY
            else self._manager(request),
            force=_is_true(q.get("force")),
            dry_run=q.get("dryRun") == "All",
            field_validation=q.get("fieldValidation"),
        )
        return _json_response(patched.obj, 201 if patched.created else 200, patched.warnings)

    # ------------------------------------------------------------------ helpers

    def _manager(self, request: web.Request) -> str:
        manager = request.query.get("fieldManager")
        if manager:
            if len(manager) > 128:
                raise bad_request("fieldManager: Too long: may not be more than 128 bytes")
            return manager
        agent = request.headers.get("User-Agent", "")
        return agent.split("/")[0] if agent else "unknown"

    async def _body(self, request: web.Request, *, yaml_ok: bool = False) -> Any:
        raw = await request.read()
        if not raw:
            raise bad_request("the request body is empty")
        content_type = request.headers.get("Content-Type", "")
        if content_type.startswith("application/vnd.kubernetes.protobuf"):
            try:
                return protobuf.decode_object(raw)
            except protobuf.ProtobufError as exc:
                raise ApiError(415, "UnsupportedMediaType", str(exc)) from None
        text = raw.decode("utf-8", errors="replace")
        try:
            return json.loads(text)
        except ValueError as exc:
            if yaml_ok or "yaml" in content_type:
                try:
                    return yaml.safe_load(text)
                except yaml.YAMLError as yexc:
                    raise bad_request(f"the request body is not valid YAML: {yexc}") from None
            raise bad_request(f"the request body is not valid JSON: {exc}") from None

    async def _propagation(self, request: web.Request) -> str | None:
        policy = request.query.get("propagationPolicy")
        if request.body_exists:
            body = await self._body(request)
            if isinstance(body, dict):
                policy = body.get("propagationPolicy") or policy
                orphan = body.get("orphanDependents")
                if policy is None and orphan is not None:
                    policy = "Orphan" if orphan else "Background"
        if policy is None and request.query.get("orphanDependents") is not None:
            policy = "Orphan" if _is_true(request.query.get("orphanDependents")) else "Background"
        return policy

    async def _create(
        self, request: web.Request, rt: ResourceType, namespace: str | None
    ) -> web.StreamResponse:
        body = await self._body(request)
        info: _RequestInfo = request[_AUDIT]
        if isinstance(body, dict):
            info.name = str((body.get("metadata") or {}).get("name") or "")
        result = self.store.create(
            rt,
            namespace,
            body,
            manager=self._manager(request),
            dry_run=request.query.get("dryRun") == "All",
            field_validation=request.query.get("fieldValidation"),
        )
        return _json_response(result.obj, 201, result.warnings)

    async def _delete(
        self, request: web.Request, rt: ResourceType, target: _Target
    ) -> web.StreamResponse:
        assert target.name is not None
        preconditions: dict[str, Any] = {}
        if request.body_exists:
            body = await self._body(request)
            if isinstance(body, dict) and isinstance(body.get("preconditions"), dict):
                preconditions = body["preconditions"]
            dry = body.get("dryRun") if isinstance(body, dict) else None
        else:
            dry = None
        result = self.store.delete(
            rt,
            target.namespace,
            target.name,
            propagation=await self._propagation(request),
            preconditions=preconditions,
            dry_run=request.query.get("dryRun") == "All" or dry == ["All"],
        )
        if result.removed and not (rt.is_crd or rt.kind == "Pod"):
            meta = result.obj.get("metadata") or {}
            return _json_response(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": target.name,
                        "group": rt.group,
                        "kind": rt.plural,
                        "uid": meta.get("uid"),
                    },
                }
            )
        return _json_response(result.obj)

    async def _scale(
        self, request: web.Request, rt: ResourceType, target: _Target
    ) -> web.StreamResponse:
        assert target.name is not None
        if request.method == "GET":
            return _json_response(self.store.read_scale(rt, target.namespace, target.name))
        if request.method == "PUT":
            body = await self._body(request)
            return _json_response(
                self.store.write_scale(
                    rt,
                    target.namespace,
                    target.name,
                    body=body,
                    manager=self._manager(request),
                    dry_run=request.query.get("dryRun") == "All",
                )
            )
        if request.method == "PATCH":
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            patch = await self._body(request, yaml_ok=content_type == PATCH_APPLY)
            return _json_response(
                self.store.write_scale(
                    rt,
                    target.namespace,
                    target.name,
                    patch_type=content_type,
                    patch=patch,
                    manager=self._manager(request),
                    dry_run=request.query.get("dryRun") == "All",
                )
            )
        raise method_not_allowed(f"{request.method} is not supported on {rt.qualified}/scale")

    async def _wait_until_fresh(self, requested: int | None) -> None:
        """Wait (up to ``freshness_timeout``) until the store has reached ``requested``;
        then 504 "Too large resource version", as kube-apiserver's watch cache answers."""
        if not requested or requested <= self.store.resource_version:
            return
        fresh = asyncio.Event()

        def check(_: Any) -> None:
            if self.store.resource_version >= requested:
                fresh.set()

        unlisten = self.store.add_listener(check)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fresh.wait(), self.freshness_timeout)
        finally:
            unlisten()
        if self.store.resource_version < requested:
            raise too_large_resource_version(requested, self.store.resource_version)

    async def _list(
        self, request: web.Request, rt: ResourceType, namespace: str | None
    ) -> web.StreamResponse:
        q = request.query
        try:
            limit = int(q.get("limit", "0") or 0)
        except ValueError:
            raise bad_request(
                f"limit: invalid value {q.get('limit')!r}: expected an integer"
            ) from None
        problems = list_option_problems(
            watch=False,
            resource_version=q.get("resourceVersion"),
            match=q.get("resourceVersionMatch"),
            continue_token=q.get("continue"),
            send_initial_events=_optional_bool(q.get("sendInitialEvents")),
        )
        if problems:
            raise invalid_list_options(problems)
        if not q.get("continue"):
            await self._wait_until_fresh(parse_resource_version(q.get("resourceVersion")))
        listing = self.store.read_list(
            rt,
            namespace,
            label_selector=q.get("labelSelector"),
            field_selector=q.get("fieldSelector"),
            limit=limit,
            continue_token=q.get("continue"),
            resource_version=q.get("resourceVersion"),
            resource_version_match=q.get("resourceVersionMatch"),
        )
        if _wants_table(request):
            return _json_response(
                tables.table(
                    rt,
                    listing["items"],
                    resource_version=listing["metadata"]["resourceVersion"],
                    include_object=q.get("includeObject", "Metadata"),
                    continue_token=listing["metadata"].get("continue"),
                )
            )
        return _json_response(listing)

    # ------------------------------------------------------------------ watch

    def _encode(
        self,
        rt: ResourceType,
        kind: str,
        obj: dict[str, Any],
        event: Any,
        table_mode: bool,
        first: bool,
        include: str,
    ) -> str:
        if table_mode:
            served = self.store.served(rt, obj)
            tbl = tables.table(
                rt,
                [served],
                resource_version=str(served["metadata"].get("resourceVersion", "")),
                include_object=include,
            )
            if not first:
                tbl.pop("columnDefinitions", None)
            return f'{{"type":"{kind}","object":{dumps(tbl)}}}\n'
        if event is not None:
            cached = event.cache.get(rt.api_version)
            if cached is None:
                cached = dumps(self.store.served(rt, obj))
                event.cache[rt.api_version] = cached
            return f'{{"type":"{kind}","object":{cached}}}\n'
        return f'{{"type":"{kind}","object":{dumps(self.store.served(rt, obj))}}}\n'

    async def _watch(
        self,
        request: web.Request,
        rt: ResourceType,
        namespace: str | None,
        info: _RequestInfo,
        *,
        name: str | None = None,
    ) -> web.StreamResponse:
        """A watch stream, as kube-apiserver 1.32 serves one from its watch cache.

        Parameters are validated first (422 ``ListOptions`` invalid, 400 for selectors).
        A stream that cannot start — its resourceVersion left the history (410 Expired),
        or was never reached (504 Too large resource version) — is a 200 whose only line
        is an ``ERROR`` event carrying the ``Status``.
        """
        q = request.query
        field_selector = q.get("fieldSelector")
        if name is not None:
            field_selector = ",".join(filter(None, [field_selector, f"metadata.name={name}"]))
        resource_version = q.get("resourceVersion")
        match, send_initial = watch_defaults(
            resource_version,
            q.get("resourceVersionMatch"),
            _optional_bool(q.get("sendInitialEvents")),
        )
        problems = list_option_problems(
            watch=True,
            resource_version=resource_version,
            match=match,
            continue_token=q.get("continue"),
            send_initial_events=send_initial,
        )
        if problems:
            raise invalid_list_options(problems)
        try:
            timeout = float(q.get("timeoutSeconds", "") or DEFAULT_WATCH_TIMEOUT)
        except ValueError:
            raise bad_request(
                f"timeoutSeconds: invalid value {q.get('timeoutSeconds')!r}"
            ) from None
        response = web.StreamResponse(status=200)
        response.content_type = "application/json"
        response.enable_chunked_encoding()
        try:
            requested = parse_resource_version(resource_version)
            if send_initial:
                await self._wait_until_fresh(requested)
            sub = self.store.watch(
                rt,
                namespace,
                label_selector=q.get("labelSelector"),
                field_selector=field_selector,
                resource_version=resource_version,
                send_initial_events=send_initial,
            )
        except ApiError as exc:
            if exc.code not in (410, 504):
                raise
            self._record(request, info, 200)
            await response.prepare(request)
            await response.write(f'{{"type":"ERROR","object":{dumps(exc.status())}}}\n'.encode())
            await response.write_eof()
            return response
        self._record(request, info, 200)
        try:
            await response.prepare(request)
            await self._stream(
                response,
                rt,
                sub,
                duration=timeout,
                bookmarks=_is_true(q.get("allowWatchBookmarks")),
                table_mode=_wants_table(request),
                include=q.get("includeObject", "Metadata"),
            )
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            sub.close()
        with contextlib.suppress(ConnectionResetError, ConnectionError, RuntimeError):
            await response.write_eof()
        return response

    def _bookmark(
        self, rt: ResourceType, rv: int, annotations: dict[str, str] | None = None
    ) -> str:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if annotations:
            meta["annotations"] = annotations
        obj = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
        return f'{{"type":"BOOKMARK","object":{dumps(obj)}}}\n'

    async def _stream(
        self,
        response: web.StreamResponse,
        rt: ResourceType,
        sub: Subscription,
        *,
        duration: float,
        bookmarks: bool,
        table_mode: bool,
        include: str,
    ) -> None:
        """Write the subscription's events until the timeout, the stop or its end.

        With ``bookmarks``: a BOOKMARK after the initial events (annotated
        ``k8s.io/initial-events-end``), one every ``bookmark_interval`` while nothing is
        pending, and one when the timeout ends the stream. A bookmark's resourceVersion
        never passes an event not yet written and never goes back: it is the store's
        current version when nothing is pending for this watcher (every change of the type
        up to it has been sent or filtered out), else the version the stream has reached
        (its last event or bookmark).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + duration
        next_bookmark = loop.time() + self.bookmark_interval
        initial_left = sub.initial_count if bookmarks and sub.initial_count is not None else -1
        sent_rv = sub.start_rv
        first = True

        def bookmark(annotations: dict[str, str] | None = None) -> str:
            nonlocal sent_rv
            if sub.queue.empty():
                sent_rv = self.store.resource_version
            return self._bookmark(rt, sent_rv, annotations)

        initial_end = {"k8s.io/initial-events-end": "true"}
        if initial_left == 0:
            await response.write(bookmark(initial_end).encode())
            initial_left = -1
        while not self._stopping.is_set():
            now = loop.time()
            if now >= deadline:
                if bookmarks:  # the client resumes from as recent a version as possible
                    await response.write(bookmark().encode())
                return
            # Queued events go out first, without waiting: `asyncio.wait_for` with a timeout
            # of zero cancels `queue.get()` before it runs, however full the queue is, and
            # an overdue bookmark held back by a non-empty queue would keep the timeout at
            # zero and the stream silent until its deadline (seen under load: a watch that
            # went quiet for minutes while its changes waited in the queue).
            if not sub.queue.empty():
                item = sub.queue.get_nowait()
            elif bookmarks and now >= next_bookmark:
                await response.write(bookmark().encode())
                next_bookmark = loop.time() + self.bookmark_interval
                continue
            else:
                wait = deadline - now
                if bookmarks:
                    wait = min(wait, next_bookmark - now)
                try:
                    item = await asyncio.wait_for(sub.queue.get(), timeout=wait)
                except TimeoutError:
                    continue  # a change may have been queued as it timed out: look again
            chunks: list[str] = []
            while item is not None:
                kind, obj, event, rv = item
                chunks.append(self._encode(rt, kind, obj, event, table_mode, first, include))
                sent_rv = max(sent_rv, rv)
                first = False
                if initial_left > 0:
                    initial_left -= 1
                    if initial_left == 0:
                        chunks.append(bookmark(initial_end))
                        initial_left = -1
                if sub.queue.empty():
                    break
                item = sub.queue.get_nowait()
            if chunks:
                await response.write("".join(chunks).encode())
            if item is None:
                return
